/* balancer/roundrobin.c — plain round robin.
 *
 * Each shard walks the table with its own counter, so with N shards the
 * fleet sees N interleaved rotations: every backend still gets 1/num of the
 * requests, without any shared counter. Excluded backends (already tried
 * for this request) are skipped. */
#include "balancer/balancer.h"

#include <string.h>

static int rr_build(struct lb_pool *pool)
{
	pool->state = NULL;
	return 1;
}

static void rr_release(struct lb_pool *pool)
{
	pool->state = NULL;
}

static int32_t rr_pick(const struct lb_pool *pool, struct lb_local *local,
                       const struct lb_ctx *ctx)
{
	uint32_t n = pool->num_backends;

	if (n == 0)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t idx = (uint32_t)(local->counter++ % n);

		if (idx < 64 && (ctx->exclude >> idx) & 1)
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

static const struct balancer_ops *const all_ops[] = {
	&balancer_round_robin,
};

const struct balancer_ops *balancer_find(const char *name)
{
	for (size_t i = 0; i < sizeof(all_ops) / sizeof(all_ops[0]); i++)
		if (strcmp(all_ops[i]->name, name) == 0)
			return all_ops[i];
	return NULL;
}

const char *balancer_names(void)
{
	return "round_robin";
}
