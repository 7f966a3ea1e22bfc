/* core/budget.h — a retry budget: retries may be at most a fraction of the
 * recent requests, so a failing fleet is not hammered by retries of retries.
 *
 * The window is BUDGET_BUCKETS buckets wide and slides bucket by bucket;
 * counts older than the window are forgotten. A retry is allowed while the
 * window's retries stay below max(min_retries, requests * ratio_pct / 100).
 *
 * Thread: shard-local (each shard keeps one budget per pool).
 */
#ifndef RLB_BUDGET_H
#define RLB_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#define BUDGET_BUCKETS 10

struct retry_budget {
	uint64_t bucket_ms; /* width of one bucket; the window is 10 of them */
	uint64_t newest;    /* index (time / bucket_ms) of the newest bucket */
	uint32_t requests[BUDGET_BUCKETS];
	uint32_t retries[BUDGET_BUCKETS];
};

/* budget_init empties `b`, with a window of `window_ms` (>= BUDGET_BUCKETS). */
void budget_init(struct retry_budget *b, uint64_t window_ms, uint64_t now_ms);

/* budget_note_request counts one request at `now_ms`. */
void budget_note_request(struct retry_budget *b, uint64_t now_ms);

/* budget_try_retry says whether one more retry fits the budget at `now_ms`,
 * and counts it when it does. ratio_pct 0 means no budget (always yes). */
bool budget_try_retry(struct retry_budget *b, uint64_t now_ms, uint32_t ratio_pct,
                      uint32_t min_retries);

#endif
