/* core/ratelimit.h — request rate limits (GCRA) and concurrent connection
 * counts, per key, shared by every shard as one limit.
 *
 * The same client's connections land on different shards, so a per-shard
 * limit would let it through N times over. Both tables here are therefore
 * process-wide: allocated once at start-up, then read and written by every
 * shard thread without a lock and without allocating. Each key lives in one
 * 64-bit word that holds a fingerprint of the key and its whole state (a
 * theoretical arrival time, or a connection count), so every change is one
 * compare-and-swap and no reader ever sees half an update.
 *
 * Keys are 64-bit hashes the caller computes (client address + route id,
 * API key + route id, ...). Any value is a valid key, 0 included. The
 * tables mix keys with a per-table random seed before choosing a bucket, so
 * clients cannot aim at one bucket. Two keys whose fingerprints collide in
 * the same bucket share one budget: with 24 fingerprint bits and 8 slots
 * per bucket, a new key meets that with probability below 5e-7.
 *
 * A bucket is 8 words (one cache line). When all 8 hold other live keys, a
 * new key is answered without being tracked: allowed, and counted in an
 * overflow counter (fail-open), because evicting a live key would hand it a
 * fresh budget and refusing would punish an innocent client for its hash.
 * Size the tables at twice the keys expected live at once and the counter
 * stays at 0.
 *
 * Thread: every function is safe from any thread at any time, except
 * rl_*_new (start-up) and rl_*_free (after the last user is gone).
 */
#ifndef RLB_RATELIMIT_H
#define RLB_RATELIMIT_H

#include <stdint.h>

/* A key's TAT is stored modulo 2^RL_TAT_BITS microseconds (12.7 days). */
#define RL_TAT_BITS 40

/* RL_LAG_MAX_US: how far the now_us a caller passes may lag behind the
 * now_us another thread passed for the same key (a time cached per event
 * loop turn, a thread preempted between reading the clock and deciding).
 * A TAT up to this much further ahead than the parameters allow is still
 * taken as real; beyond, as stale (see rl_take). */
#define RL_LAG_MAX_US UINT64_C(1000000)

/* RL_SPAN_MAX_US bounds interval + tolerance + max_delay of one rl_take:
 * how far ahead of now a live TAT may lie (2^39 us less RL_LAG_MAX_US,
 * about 6.36 days; 1/h with a burst of 150 fits). Config must refuse
 * more. */
#define RL_SPAN_MAX_US ((UINT64_C(1) << (RL_TAT_BITS - 1)) - 1 - RL_LAG_MAX_US)

/* A request whose slot another thread changed this many times in a row,
 * between its read and its compare-and-swap, is answered untracked. */
#define RL_TRIES_MAX 1024

/* Rates rl_parse_rate accepts: one per hour to one per microsecond. */
#define RL_INTERVAL_MAX_US UINT64_C(3600000000)
#define RL_INTERVAL_MIN_US UINT64_C(1)

/* ---- rate limits (GCRA) ------------------------------------------------
 *
 * The generic cell rate algorithm keeps one time per key, its theoretical
 * arrival time (TAT): when the key's budget is back to full, minus nothing
 * owed. With emission interval T (1 / rate) and tolerance tau, a request at
 * `now` is allowed iff TAT - now <= tau, and then TAT = max(TAT, now) + T.
 *
 * Burst, as nginx means it: `rate` requests per second on average and
 * `burst` more at once. Pass tau = T * burst: a fresh (or long idle) key
 * admits 1 + burst requests at the same instant, then one per T. Burst 0
 * spaces requests strictly T apart.
 *
 * A rejected request may retry after TAT - tau - now microseconds. In delay
 * mode (max_delay D > 0) a request whose retry time is at most D is
 * admitted instead, with that wait: the caller holds it that long before
 * serving it, and its TAT advanced as if it had been allowed.
 *
 * A live TAT is at most T + tau + D ahead of now, and a TAT in the past
 * means a full budget whatever its age; so a TAT that decodes as further
 * ahead than T + tau + D + RL_LAG_MAX_US is stale (left by parameters since
 * reloaded, or an old TAT wrapped modulo 2^40) and the key starts afresh. */

struct rl_table;

enum rl_verdict {
	RL_ALLOW = 0, /* serve now */
	RL_DELAY,     /* serve after *wait_us */
	RL_REJECT,    /* refuse (429); the client may retry after *wait_us */
};

/* rl_table_new allocates a table of `slots` keys (a power of two, at least
 * 8; anything else is a programmer error). Returns NULL on OOM. */
struct rl_table *rl_table_new(uint32_t slots);

/* rl_table_free frees `t` (nothing on NULL). No thread may still use it. */
void rl_table_free(struct rl_table *t);

/* rl_take decides one request of `key` at now_us (CLOCK_MONOTONIC
 * microseconds, as rlb_now_us reads it). interval_us = T (>= 1),
 * tolerance_us = tau, max_delay_us = D (0 = no delay mode); their sum must
 * be at most RL_SPAN_MAX_US. Sets *wait_us to 0 for RL_ALLOW, to how long to
 * hold the request for RL_DELAY, and to when to retry for RL_REJECT (round
 * it up for a Retry-After in seconds). now_us need not grow from call to
 * call across threads, within RL_LAG_MAX_US. */
enum rl_verdict rl_take(struct rl_table *t, uint64_t key, uint64_t now_us, uint64_t interval_us,
                        uint64_t tolerance_us, uint64_t max_delay_us, uint64_t *wait_us);

/* rl_overflows returns how many requests were allowed untracked so far:
 * their bucket was full of other live keys, or (never seen in practice)
 * their slot changed under them RL_TRIES_MAX times in a row. */
uint64_t rl_overflows(const struct rl_table *t);

/* rl_sweep forgets every key whose TAT is not ahead of now_us (their budget
 * is full anyway, so nothing changes for them). Optional: a TAT is stored
 * modulo 2^40 us, so a key idle for more than about 6.36 days may decode as
 * a TAT in the near future and be refused for up to T + tau + D (a chance
 * of (T + tau + D + RL_LAG_MAX_US) / 2^40 per such pause). Calling rl_sweep at least every
 * few days (the control thread, say hourly) rules that out. Lock-free and
 * safe beside rl_take; returns the slots freed. */
uint64_t rl_sweep(struct rl_table *t, uint64_t now_us);

/* rl_parse_rate parses a rate: "100/s", "6000/m", "10/h", "100" (per
 * second), decimals such as "0.5/s" (up to 6 decimal places), and nginx's
 * "10r/s". Sets *interval_us to the interval T between requests, rounded
 * to the nearest microsecond, and returns 1; returns 0 (leaving
 * *interval_us alone) on anything else, or on a rate outside one per hour
 * to 1,000,000 per second. T is whole microseconds, so high rates round:
 * the rate kept differs from the one asked by up to 0.5 us / T (0.5% at
 * 10,000/s, 5% at 100,000/s, none when T divides evenly). */
int rl_parse_rate(const char *text, uint64_t *interval_us);

/* ---- concurrent connections -------------------------------------------
 *
 * A count per key (client address) of the connections it holds open,
 * across all shards. A slot whose count falls to 0 is free for any key. */

struct rl_conns;

enum rl_conn_result {
	RL_CONN_OK = 0,    /* counted: call rl_conn_release when it closes */
	RL_CONN_LIMIT,     /* refused: the key holds `limit` already; nothing counted */
	RL_CONN_UNTRACKED, /* allowed but not counted (bucket full): do not release */
};

/* rl_conns_new allocates a table of `slots` keys (a power of two, at least
 * 8). Returns NULL on OOM. */
struct rl_conns *rl_conns_new(uint32_t slots);

/* rl_conns_free frees `t` (nothing on NULL). No thread may still use it. */
void rl_conns_free(struct rl_conns *t);

/* RL_CONN_COUNT_MAX: the most connections one key can hold; a larger
 * limit acts as this one. */
#define RL_CONN_COUNT_MAX ((UINT64_C(1) << 24) - 1)

/* rl_conn_acquire counts one more connection of `key` if it holds fewer
 * than `limit` (limit 0 refuses every connection). Exact across threads:
 * at no instant do more than `limit` acquires answered RL_CONN_OK stand
 * unreleased. Under a race an acquire may be refused while the count
 * briefly included another acquire that then backed off. */
enum rl_conn_result rl_conn_acquire(struct rl_conns *t, uint64_t key, uint32_t limit);

/* rl_conn_release uncounts one connection of `key` that rl_conn_acquire
 * answered RL_CONN_OK. Releasing a key that holds none is a programmer
 * error (assertion). */
void rl_conn_release(struct rl_conns *t, uint64_t key);

/* rl_conn_count returns how many connections `key` holds (a snapshot; it
 * may briefly include acquires in flight that are about to back off). */
uint32_t rl_conn_count(const struct rl_conns *t, uint64_t key);

/* rl_conn_overflows returns how many acquires were answered
 * RL_CONN_UNTRACKED so far. */
uint64_t rl_conn_overflows(const struct rl_conns *t);

#endif
