/* balancer/roundrobin.c — weighted round robin over a precomputed smooth
 * schedule.
 *
 * build() turns the weights into one cycle of picks with the smooth
 * weighted round-robin rule (the one nginx uses): at each step every
 * backend gains its weight, the richest is picked and pays the total. With
 * weights 5:1:1 the cycle is a a b a c a a — never five in a row. Weights
 * are first divided by their greatest common divisor, and a cycle longer
 * than RR_CYCLE_MAX is scaled down, so the table stays small.
 *
 * pick() walks the cycle with the shard's own counter, so with N shards the
 * fleet sees N interleaved rotations: each backend still gets its share,
 * without any shared counter. Excluded backends (already tried for this
 * request) are skipped. Equal weights give plain rotation. */
#include "balancer/balancer.h"

#include <stdlib.h>
#include <string.h>

#define RR_CYCLE_MAX 65536u

struct rr_state {
	uint32_t len;
	uint32_t cycle[]; /* backend indexes */
};

static uint32_t gcd(uint32_t a, uint32_t b)
{
	while (b != 0) {
		uint32_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* scaled_weights fills w[] with the weights reduced by their gcd and, if the
 * cycle would still be too long, scaled to fit (each at least 1). Returns
 * the cycle length. */
static uint32_t scaled_weights(const struct lb_pool *pool, uint32_t *w)
{
	uint32_t n = pool->num_backends, g = 0;
	uint64_t sum = 0;

	for (uint32_t i = 0; i < n; i++)
		g = gcd(pool->backends[i].weight ? pool->backends[i].weight : 1, g);
	for (uint32_t i = 0; i < n; i++) {
		w[i] = (pool->backends[i].weight ? pool->backends[i].weight : 1) / g;
		sum += w[i];
	}
	if (sum > RR_CYCLE_MAX) {
		uint64_t s2 = 0;

		for (uint32_t i = 0; i < n; i++) {
			w[i] = (uint32_t)((uint64_t)w[i] * (RR_CYCLE_MAX - n) / sum);
			w[i] = w[i] ? w[i] : 1;
			s2 += w[i];
		}
		sum = s2;
	}
	return (uint32_t)sum;
}

static int rr_build(struct lb_pool *pool)
{
	uint32_t n = pool->num_backends, len;
	uint32_t *w = calloc(n ? n : 1, sizeof(*w));
	int64_t *cur = calloc(n ? n : 1, sizeof(*cur));
	struct rr_state *st;

	if (w == NULL || cur == NULL)
		goto fail;
	len = n ? scaled_weights(pool, w) : 0;
	st = malloc(sizeof(*st) + (size_t)len * sizeof(st->cycle[0]));
	if (st == NULL)
		goto fail;
	st->len = len;
	for (uint32_t k = 0; k < len; k++) {
		uint32_t best = 0;

		for (uint32_t i = 0; i < n; i++) {
			cur[i] += w[i];
			if (cur[i] > cur[best])
				best = i;
		}
		cur[best] -= len;
		st->cycle[k] = best;
	}
	free(w);
	free(cur);
	pool->state = st;
	return 1;
fail:
	free(w);
	free(cur);
	return 0;
}

static void rr_release(struct lb_pool *pool)
{
	free(pool->state);
	pool->state = NULL;
}

static int32_t rr_pick(const struct lb_pool *pool, struct lb_local *local, const struct lb_ctx *ctx)
{
	const struct rr_state *st = pool->state;

	if (st == NULL || st->len == 0)
		return -1;
	for (uint32_t i = 0; i < st->len; i++) {
		uint32_t idx = st->cycle[local->counter++ % st->len];

		if (lb_excluded(pool, ctx, idx))
			continue;
		return (int32_t)idx;
	}
	return -1;
}

const struct balancer_ops balancer_round_robin = {
        .name = "round_robin",
        .build = rr_build,
        .release = rr_release,
        .pick = rr_pick,
};

/* weighted_round_robin is the same smooth weighted rotation: round_robin
 * already honours weights, as HAProxy's roundrobin does. The second name
 * exists so configurations written for other balancers read naturally. */
const struct balancer_ops balancer_weighted_round_robin = {
        .name = "weighted_round_robin",
        .build = rr_build,
        .release = rr_release,
        .pick = rr_pick,
};
