/* balancer/least.c — load-aware algorithms: least_conn, weighted_least_conn,
 * random_two and least_time.
 *
 * All read the process-wide live counters (lb_live): requests in flight
 * across every shard, and the EWMA of response times.
 *
 * least_conn and weighted_least_conn scan the whole table: with N backends a
 * pick costs N relaxed loads, which stays well under a microsecond for
 * hundreds of backends (bench/RESULTS.md has the figures). Ties are broken
 * by rotating the starting point, so equal backends share the load instead
 * of the first one taking every tie.
 *
 * random_two and least_time are power-of-two-choices: two random distinct
 * candidates, the better one wins, so a pick costs the same for 4 or 4000
 * backends, and no shard herds onto the single least-loaded backend the way
 * a full scan with stale counts can.
 */
#include "balancer/balancer.h"

#include <stddef.h>
#include <stdlib.h>

/* The scan reads only these two dense arrays plus one lb_live line per
 * backend; going through struct lb_backend (two hundred bytes each) would
 * cost a second cache miss per backend. */
struct least_state {
	uint32_t *uid;
	uint32_t *weight;
};

static int least_build(struct lb_pool *pool)
{
	uint32_t n = pool->num_backends;
	struct least_state *st = calloc(1, sizeof(*st));

	pool->state = NULL;
	if (st == NULL)
		return 0;
	st->uid = calloc(n ? n : 1, sizeof(*st->uid));
	st->weight = calloc(n ? n : 1, sizeof(*st->weight));
	if (st->uid == NULL || st->weight == NULL) {
		free(st->uid);
		free(st->weight);
		free(st);
		return 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		st->uid[i] = pool->backends[i].uid;
		st->weight[i] = pool->backends[i].weight ? pool->backends[i].weight : 1;
	}
	pool->state = st;
	return 1;
}

static void least_release(struct lb_pool *pool)
{
	struct least_state *st = pool->state;

	if (st != NULL) {
		free(st->uid);
		free(st->weight);
	}
	free(st);
	pool->state = NULL;
}

static uint32_t weight_of(const struct lb_pool *pool, uint32_t i)
{
	const struct least_state *st = pool->state;

	return st->weight[i];
}

static uint64_t active_of(const struct lb_pool *pool, uint32_t i)
{
	const struct least_state *st = pool->state;

	if (pool->live == NULL)
		return 0;
	return atomic_load_explicit(&pool->live[st->uid[i]].active, memory_order_relaxed);
}

/* less_loaded says whether a/wa < b/wb, i.e. a*wb < b*wa, in 64 bits. */
static bool less_loaded(uint64_t a, uint32_t wa, uint64_t b, uint32_t wb)
{
	return a * wb < b * wa;
}

enum scan_mode { SCAN_PLAIN, SCAN_WEIGHTED, SCAN_RESOURCE };

/* effective_weight is the weight a scan divides the load by: 1, the
 * configured weight, or (resource) the weight scaled by the capacity the
 * backend's agent reported, in per mille (no report yet: full weight). */
static uint32_t effective_weight(const struct lb_pool *pool, uint32_t i, enum scan_mode mode)
{
	const struct least_state *st = pool->state;
	uint32_t agent;

	if (mode == SCAN_PLAIN)
		return 1;
	if (mode == SCAN_WEIGHTED || pool->live == NULL)
		return weight_of(pool, i);
	agent = atomic_load_explicit(&pool->live[st->uid[i]].agent_permille, memory_order_relaxed);
	if (agent == 0)
		agent = 1000;
	return weight_of(pool, i) * agent;
}

/* scan_range keeps the least loaded of backends [from, to) in *best. */
static void scan_range(const struct lb_pool *pool, const struct lb_ctx *ctx, enum scan_mode mode,
                       uint32_t from, uint32_t to, int32_t *best, uint64_t *best_load,
                       uint32_t *best_w)
{
	for (uint32_t i = from; i < to; i++) {
		uint64_t load = active_of(pool, i);
		uint32_t w = effective_weight(pool, i, mode);

		if (lb_excluded(pool, ctx, i))
			continue;
		if (*best < 0 || less_loaded(load, w, *best_load, *best_w)) {
			*best = (int32_t)i;
			*best_load = load;
			*best_w = w;
		}
	}
}

static int32_t scan_least(const struct lb_pool *pool, struct lb_local *local,
                          const struct lb_ctx *ctx, enum scan_mode mode)
{
	uint32_t n = pool->num_backends;
	uint32_t start;
	int32_t best = -1;
	uint64_t best_load = 0;
	uint32_t best_w = 1;

	if (n == 0 || pool->state == NULL)
		return -1;
	/* Start each scan one further along, in two plain ranges (no division
	 * per backend), so ties rotate. */
	start = (uint32_t)(local->counter++ % n);
	scan_range(pool, ctx, mode, start, n, &best, &best_load, &best_w);
	scan_range(pool, ctx, mode, 0, start, &best, &best_load, &best_w);
	return best;
}

static int32_t least_conn_pick(const struct lb_pool *pool, struct lb_local *local,
                               const struct lb_ctx *ctx)
{
	return scan_least(pool, local, ctx, SCAN_PLAIN);
}

static int32_t weighted_least_conn_pick(const struct lb_pool *pool, struct lb_local *local,
                                        const struct lb_ctx *ctx)
{
	return scan_least(pool, local, ctx, SCAN_WEIGHTED);
}

static int32_t resource_pick(const struct lb_pool *pool, struct lb_local *local,
                             const struct lb_ctx *ctx)
{
	return scan_least(pool, local, ctx, SCAN_RESOURCE);
}

/* two_candidates draws two distinct, not excluded backends; returns how
 * many it found (0, 1 or 2). A few draws, then a scan as a fallback, so
 * heavy exclusion cannot make it loop. */
static int two_candidates(const struct lb_pool *pool, struct lb_local *local,
                          const struct lb_ctx *ctx, uint32_t out[2])
{
	uint32_t n = pool->num_backends;
	int found = 0;

	for (int tries = 0; tries < 8 && found < 2; tries++) {
		uint32_t i = (uint32_t)(lb_random(local) % n);

		if (lb_excluded(pool, ctx, i) || (found == 1 && out[0] == i))
			continue;
		out[found++] = i;
	}
	for (uint32_t i = 0; i < n && found < 2; i++) {
		if (lb_excluded(pool, ctx, i) || (found == 1 && out[0] == i))
			continue;
		out[found++] = i;
	}
	return found;
}

static int32_t random_two_pick(const struct lb_pool *pool, struct lb_local *local,
                               const struct lb_ctx *ctx)
{
	uint32_t c[2];
	int found;

	if (pool->num_backends == 0 || pool->state == NULL)
		return -1;
	found = two_candidates(pool, local, ctx, c);
	if (found == 0)
		return -1;
	if (found == 1)
		return (int32_t)c[0];
	return less_loaded(active_of(pool, c[1]), weight_of(pool, c[1]), active_of(pool, c[0]),
	                   weight_of(pool, c[0]))
	               ? (int32_t)c[1]
	               : (int32_t)c[0];
}

/* time_score is the expected wait at backend i: its response time times
 * the queue it would join (divided by weight by the caller). */
static uint64_t time_score(const struct lb_pool *pool, uint32_t i)
{
	const struct least_state *st = pool->state;
	uint64_t ewma = pool->live != NULL ? atomic_load_explicit(&pool->live[st->uid[i]].ewma_us,
	                                                          memory_order_relaxed)
	                                   : 0;
	uint64_t active = active_of(pool, i);

	/* No sample yet: idle, it scores 0 and is tried at once; with
	 * requests already queued (maybe it never answers), each counts as
	 * 1 ms, so a stuck backend cannot soak up the traffic. */
	if (ewma == 0)
		return (active < (1u << 20) ? active : (1u << 20)) * 1000;
	/* Clamp so score * weight stays far inside 64 bits. */
	ewma = ewma < (1u << 24) ? ewma : (1u << 24);
	active = active < (1u << 20) ? active : (1u << 20);
	return ewma * (active + 1);
}

static int32_t least_time_pick(const struct lb_pool *pool, struct lb_local *local,
                               const struct lb_ctx *ctx)
{
	uint32_t c[2];
	int found;

	if (pool->num_backends == 0 || pool->state == NULL)
		return -1;
	found = two_candidates(pool, local, ctx, c);
	if (found == 0)
		return -1;
	if (found == 1)
		return (int32_t)c[0];
	return less_loaded(time_score(pool, c[1]), weight_of(pool, c[1]), time_score(pool, c[0]),
	                   weight_of(pool, c[0]))
	               ? (int32_t)c[1]
	               : (int32_t)c[0];
}

const struct balancer_ops balancer_least_conn = {
        .name = "least_conn",
        .build = least_build,
        .release = least_release,
        .pick = least_conn_pick,
};

const struct balancer_ops balancer_weighted_least_conn = {
        .name = "weighted_least_conn",
        .build = least_build,
        .release = least_release,
        .pick = weighted_least_conn_pick,
};

const struct balancer_ops balancer_random_two = {
        .name = "random_two",
        .build = least_build,
        .release = least_release,
        .pick = random_two_pick,
};

const struct balancer_ops balancer_least_time = {
        .name = "least_time",
        .build = least_build,
        .release = least_release,
        .pick = least_time_pick,
};

/* resource: weighted_least_conn where each weight is scaled by the spare
 * capacity the backend's agent reports (core/health.c polls it). */
const struct balancer_ops balancer_resource = {
        .name = "resource",
        .build = least_build,
        .release = least_release,
        .pick = resource_pick,
};
