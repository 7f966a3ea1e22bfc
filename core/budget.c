/* core/budget.c — the retry budget (see budget.h). */
#include "core/budget.h"

#include "core/common.h"

#include <string.h>

void budget_init(struct retry_budget *b, uint64_t window_ms, uint64_t now_ms)
{
	RLB_ASSERT(window_ms >= BUDGET_BUCKETS);
	memset(b, 0, sizeof(*b));
	b->bucket_ms = window_ms / BUDGET_BUCKETS;
	b->newest = now_ms / b->bucket_ms;
}

/* advance slides the window to `now_ms`, clearing the buckets it leaves. */
static uint32_t advance(struct retry_budget *b, uint64_t now_ms)
{
	uint64_t idx = now_ms / b->bucket_ms;

	if (idx > b->newest) {
		uint64_t steps = idx - b->newest;

		if (steps > BUDGET_BUCKETS)
			steps = BUDGET_BUCKETS;
		for (uint64_t k = 1; k <= steps; k++) {
			uint32_t slot = (uint32_t)((b->newest + k) % BUDGET_BUCKETS);

			b->requests[slot] = 0;
			b->retries[slot] = 0;
		}
		b->newest = idx;
	}
	return (uint32_t)(b->newest % BUDGET_BUCKETS);
}

void budget_note_request(struct retry_budget *b, uint64_t now_ms)
{
	b->requests[advance(b, now_ms)]++;
}

bool budget_try_retry(struct retry_budget *b, uint64_t now_ms, uint32_t ratio_pct,
                      uint32_t min_retries)
{
	uint32_t slot = advance(b, now_ms);
	uint64_t requests = 0, retries = 0, allowed;

	if (ratio_pct == 0)
		return true;
	for (uint32_t i = 0; i < BUDGET_BUCKETS; i++) {
		requests += b->requests[i];
		retries += b->retries[i];
	}
	allowed = requests * ratio_pct / 100;
	if (allowed < min_retries)
		allowed = min_retries;
	if (retries >= allowed)
		return false;
	b->retries[slot]++;
	return true;
}
