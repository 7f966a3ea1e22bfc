/* tests/unit/balancer/roundrobin_test.c — unit tests for balancer/roundrobin.c.
 *
 * Goal: round robin is exactly fair — with equal weights, over N picks (N a
 * multiple of the backend count) every backend is picked N/num times in
 * strict rotation; with weights, over whole cycles every backend is picked
 * in proportion to its weight, smoothly (5:1:1 gives a a b a c a a) — it
 * never returns an excluded backend, it returns -1 when every backend is
 * excluded or the pool is empty, and balancer_find knows "round_robin" and
 * nothing else.
 *
 * Method: the module is #included so the precomputed cycle (struct
 * rr_state) can be inspected. Pools are plain `struct lb_pool` tables built
 * in the test, prepared with ops->build and picked through the ops table
 * exactly as a shard would, with a zeroed `struct lb_local`; ops->release
 * frees the state (LeakSanitizer checks in the SANITIZE=1 build).
 */
#include "balancer/roundrobin.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* pool_new_weighted builds a pool of `num` backends with weights w[]
 * (all 1 when w is NULL). */
static struct lb_pool *pool_new_weighted(uint32_t num, const uint32_t *w)
{
	struct lb_pool *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->ops = &balancer_round_robin;
	p->num_backends = num;
	p->backends = calloc(num ? num : 1, sizeof(*p->backends));
	assert_non_null(p->backends);
	for (uint32_t i = 0; i < num; i++) {
		p->backends[i].uid = i;
		p->backends[i].weight = w != NULL ? w[i] : 1;
	}
	assert_int_equal(p->ops->build(p), 1);
	assert_non_null(p->state);
	return p;
}

static struct lb_pool *pool_new(uint32_t num)
{
	return pool_new_weighted(num, NULL);
}

static uint32_t cycle_len(const struct lb_pool *p)
{
	return ((const struct rr_state *)p->state)->len;
}

static void pool_free(struct lb_pool *p)
{
	p->ops->release(p);
	assert_null(p->state);
	free(p->backends);
	free(p);
}

static void test_fair(void **state)
{
	(void)state;
	const uint32_t nums[] = {1, 3, 7, 64, 100};

	for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
		uint32_t num = nums[k];
		struct lb_pool *p = pool_new(num);
		struct lb_local local;
		struct lb_ctx ctx = {0};
		uint32_t *count = calloc(num, sizeof(*count));
		const uint32_t rounds = 37;

		assert_non_null(count);
		memset(&local, 0, sizeof(local));
		memset(&ctx, 0, sizeof(ctx));
		for (uint32_t i = 0; i < num * rounds; i++) {
			int32_t b = p->ops->pick(p, &local, &ctx);

			assert_true(b >= 0);
			assert_true((uint32_t)b < num);
			/* Strict rotation: pick i is backend i mod num. */
			assert_int_equal(b, i % num);
			count[b]++;
		}
		for (uint32_t b = 0; b < num; b++)
			assert_int_equal(count[b], rounds);
		free(count);
		pool_free(p);
	}
}

/* Two shards (two lb_local) rotate independently over one table. */
static void test_independent_locals(void **state)
{
	(void)state;
	struct lb_pool *p = pool_new(3);
	struct lb_local a, b;
	struct lb_ctx ctx = {0};

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&ctx, 0, sizeof(ctx));
	assert_int_equal(p->ops->pick(p, &a, &ctx), 0);
	assert_int_equal(p->ops->pick(p, &a, &ctx), 1);
	assert_int_equal(p->ops->pick(p, &b, &ctx), 0);
	assert_int_equal(p->ops->pick(p, &a, &ctx), 2);
	assert_int_equal(p->ops->pick(p, &b, &ctx), 1);
	pool_free(p);
}

/* An excluded backend is never picked; the others still share the picks
 * (each at least N/(num-excluded) - 1 times over N picks). */
static void test_exclusion(void **state)
{
	(void)state;
	const uint32_t nums[] = {3, 7, 64, 100};

	for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
		uint32_t num = nums[k];
		struct lb_pool *p = pool_new(num);
		struct lb_local local;
		struct lb_ctx ctx = {0};
		uint32_t *count = calloc(num, sizeof(*count));
		uint32_t allowed = 0;
		const uint32_t picks = 20 * num;

		assert_non_null(count);
		memset(&local, 0, sizeof(local));
		/* Exclude every third backend below 64, and backend 1. */
		ctx.exclude = 0;
		for (uint32_t i = 0; i < num && i < 64; i += 3)
			ctx.exclude |= 1ull << i;
		ctx.exclude |= 1ull << 1;
		for (uint32_t i = 0; i < num; i++)
			allowed += !(i < 64 && (ctx.exclude >> i) & 1);
		for (uint32_t i = 0; i < picks; i++) {
			int32_t b = p->ops->pick(p, &local, &ctx);

			assert_true(b >= 0);
			assert_true((uint32_t)b < num);
			assert_false(b < 64 && (ctx.exclude >> b) & 1);
			count[b]++;
		}
		for (uint32_t b = 0; b < num; b++) {
			if (b < 64 && (ctx.exclude >> b) & 1)
				assert_int_equal(count[b], 0);
			else
				assert_true(count[b] >= picks / allowed - 1);
		}
		free(count);
		pool_free(p);
	}
}

/* Only one backend left: it is picked every time. */
static void test_exclusion_one_left(void **state)
{
	(void)state;
	struct lb_pool *p = pool_new(7);
	struct lb_local local;
	struct lb_ctx ctx = {0};

	memset(&local, 0, sizeof(local));
	ctx.exclude = 0x7f & ~(1ull << 4);
	for (int i = 0; i < 50; i++)
		assert_int_equal(p->ops->pick(p, &local, &ctx), 4);
	pool_free(p);
}

/* All excluded: -1, for sizes up to 64 (the mask's width). */
static void test_all_excluded(void **state)
{
	(void)state;
	const uint32_t nums[] = {1, 3, 7, 63, 64};

	for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
		uint32_t num = nums[k];
		struct lb_pool *p = pool_new(num);
		struct lb_local local;
		struct lb_ctx ctx = {0};

		memset(&local, 0, sizeof(local));
		ctx.exclude = num == 64 ? UINT64_MAX : (1ull << num) - 1;
		for (int i = 0; i < 5; i++)
			assert_int_equal(p->ops->pick(p, &local, &ctx), -1);
		/* Lifting the mask brings picks back. */
		ctx.exclude = 0;
		assert_true(p->ops->pick(p, &local, &ctx) >= 0);
		pool_free(p);
	}
}

/* Backends at index >= 64 cannot be excluded (the mask has 64 bits): with
 * 100 backends and the first 64 excluded, picks go to 64..99. */
static void test_beyond_mask(void **state)
{
	(void)state;
	struct lb_pool *p = pool_new(100);
	struct lb_local local;
	struct lb_ctx ctx = {0};

	memset(&local, 0, sizeof(local));
	ctx.exclude = UINT64_MAX;
	for (int i = 0; i < 200; i++) {
		int32_t b = p->ops->pick(p, &local, &ctx);

		assert_true(b >= 64);
		assert_true(b < 100);
	}
	pool_free(p);
}

static void test_empty_pool(void **state)
{
	(void)state;
	struct lb_pool *p = pool_new(0);
	struct lb_local local;
	struct lb_ctx ctx = {0};

	memset(&local, 0, sizeof(local));
	memset(&ctx, 0, sizeof(ctx));
	assert_int_equal(p->ops->pick(p, &local, &ctx), -1);
	assert_int_equal(p->ops->pick(p, &local, &ctx), -1);
	pool_free(p);
}

/* 5:1:1 gives the documented smooth cycle a a b a c a a, repeated. */
static void test_weighted_smooth_cycle(void **state)
{
	(void)state;
	const uint32_t w[3] = {5, 1, 1};
	const int32_t want[7] = {0, 0, 1, 0, 2, 0, 0};
	struct lb_pool *p = pool_new_weighted(3, w);
	struct lb_local local;
	struct lb_ctx ctx = {0};

	memset(&local, 0, sizeof(local));
	memset(&ctx, 0, sizeof(ctx));
	assert_int_equal(cycle_len(p), 7);
	for (int i = 0; i < 7 * 5; i++)
		assert_int_equal(p->ops->pick(p, &local, &ctx), want[i % 7]);
	pool_free(p);
}

/* Over whole cycles each backend gets exactly its weight's share; weights
 * with a common divisor give the same short cycle as the reduced ones. */
static void test_weighted_exact_shares(void **state)
{
	(void)state;
	static const uint32_t w1[] = {3, 1, 7, 2};
	static const uint32_t w2[] = {1000, 1};
	static const uint32_t w3[] = {4, 6, 10}; /* gcd 2: cycle 2:3:5 */
	static const uint32_t w4[] = {1, 1, 1000};
	const struct {
		const uint32_t *w;
		uint32_t num, cycle;
	} cases[] = {
	        {w1, 4, 13},
	        {w2, 2, 1001},
	        {w3, 3, 10},
	        {w4, 3, 1002},
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct lb_pool *p = pool_new_weighted(cases[k].num, cases[k].w);
		struct lb_local local;
		struct lb_ctx ctx = {0};
		uint32_t count[8];
		uint32_t g = 0;
		const uint32_t rounds = 3;

		memset(&local, 0, sizeof(local));
		memset(&ctx, 0, sizeof(ctx));
		memset(count, 0, sizeof(count));
		assert_int_equal(cycle_len(p), cases[k].cycle);
		for (uint32_t i = 0; i < rounds * cases[k].cycle; i++) {
			int32_t b = p->ops->pick(p, &local, &ctx);

			assert_true(b >= 0);
			assert_true((uint32_t)b < cases[k].num);
			count[b]++;
		}
		for (uint32_t i = 0; i < cases[k].num; i++)
			g = gcd(cases[k].w[i], g);
		for (uint32_t i = 0; i < cases[k].num; i++)
			assert_int_equal(count[i], rounds * cases[k].w[i] / g);
		pool_free(p);
	}
}

/* Random weights (1..1000) for 64 and 100 backends: exact shares when the
 * reduced cycle fits RR_CYCLE_MAX; when it does not, the cycle is scaled
 * down to fit, every backend keeps at least one pick per cycle, and a
 * heavier backend never gets fewer picks than a lighter one. */
static void test_weighted_random_and_scaled(void **state)
{
	(void)state;
	unsigned int seed = 7;

	for (int round = 0; round < 6; round++) {
		uint32_t num = round % 2 ? 100 : 64;
		uint32_t w[100], count[100];
		uint64_t sum = 0;
		uint32_t g = 0, len;
		struct lb_pool *p;
		struct lb_local local;
		struct lb_ctx ctx = {0};

		for (uint32_t i = 0; i < num; i++) {
			/* Rounds 4 and 5 use near-1000 coprime weights: sum > 65536. */
			w[i] = round >= 4 ? 999 + i % 2 : 1 + (uint32_t)rand_r(&seed) % 1000;
			g = gcd(w[i], g);
		}
		for (uint32_t i = 0; i < num; i++)
			sum += w[i] / g;
		p = pool_new_weighted(num, w);
		len = cycle_len(p);
		assert_true(len <= RR_CYCLE_MAX);
		memset(&local, 0, sizeof(local));
		memset(&ctx, 0, sizeof(ctx));
		memset(count, 0, sizeof(count));
		for (uint32_t i = 0; i < len; i++)
			count[p->ops->pick(p, &local, &ctx)]++;
		for (uint32_t i = 0; i < num; i++) {
			assert_true(count[i] >= 1);
			if (sum <= RR_CYCLE_MAX)
				assert_int_equal(count[i], w[i] / g);
			for (uint32_t j = 0; j < num; j++)
				if (w[i] > w[j])
					assert_true(count[i] >= count[j]);
		}
		if (sum <= RR_CYCLE_MAX)
			assert_int_equal(len, sum);
		else
			assert_true(round >= 4);
		pool_free(p);
	}
}

/* With weights, exclusion still never returns an excluded backend, and the
 * rest keep their relative shares: 5:1:1 with backend 0 excluded
 * alternates between 1 and 2. */
static void test_weighted_exclusion(void **state)
{
	(void)state;
	const uint32_t w[3] = {5, 1, 1};
	struct lb_pool *p = pool_new_weighted(3, w);
	struct lb_local local;
	struct lb_ctx ctx = {0};
	uint32_t count[3] = {0, 0, 0};

	memset(&local, 0, sizeof(local));
	ctx.exclude = 1;
	for (int i = 0; i < 100; i++) {
		int32_t b = p->ops->pick(p, &local, &ctx);

		assert_true(b == 1 || b == 2);
		count[b]++;
	}
	assert_int_equal(count[1], 50);
	assert_int_equal(count[2], 50);
	ctx.exclude = 0x6;
	for (int i = 0; i < 20; i++)
		assert_int_equal(p->ops->pick(p, &local, &ctx), 0);
	ctx.exclude = 0x7;
	assert_int_equal(p->ops->pick(p, &local, &ctx), -1);
	pool_free(p);
}

static void test_find(void **state)
{
	(void)state;
	assert_ptr_equal(balancer_find("round_robin"), &balancer_round_robin);
	assert_string_equal(balancer_round_robin.name, "round_robin");
	assert_null(balancer_find(""));
	assert_null(balancer_find("roundrobin"));
	assert_null(balancer_find("Round_Robin"));
	assert_null(balancer_find("round_robin "));
	assert_null(balancer_find("maglev"));
	assert_non_null(strstr(balancer_names(), "round_robin"));
}

/* Backup backends: never picked in a normal round, and the only ones
 * picked in a backup round (the proxy runs one when no primary is usable);
 * health marks (lb_live.down) exclude them in both. */
static void test_backups(void **state)
{
	(void)state;
	struct lb_pool *p = pool_new(4);
	struct lb_local local;
	struct lb_ctx ctx = {0};
	struct lb_live *live = aligned_alloc(LB_CACHELINE, 4 * sizeof(*live));

	assert_non_null(live);
	memset(live, 0, 4 * sizeof(*live));
	memset(&local, 0, sizeof(local));
	p->backends[2].backup = true;
	p->backends[3].backup = true;
	for (int i = 0; i < 40; i++) {
		int32_t b = p->ops->pick(p, &local, &ctx);

		assert_true(b == 0 || b == 1);
	}
	ctx.backups = true;
	for (int i = 0; i < 40; i++) {
		int32_t b = p->ops->pick(p, &local, &ctx);

		assert_true(b == 2 || b == 3);
	}
	p->live = live;
	atomic_store(&live[2].down, LB_DOWN_ACTIVE);
	for (int i = 0; i < 40; i++)
		assert_int_equal(p->ops->pick(p, &local, &ctx), 3);
	atomic_store(&live[3].down, LB_DOWN_PASSIVE);
	assert_int_equal(p->ops->pick(p, &local, &ctx), -1);
	ctx.ignore_down = true;
	assert_true(p->ops->pick(p, &local, &ctx) >= 2);
	p->live = NULL;
	free(live);
	pool_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fair),
	        cmocka_unit_test(test_independent_locals),
	        cmocka_unit_test(test_exclusion),
	        cmocka_unit_test(test_exclusion_one_left),
	        cmocka_unit_test(test_all_excluded),
	        cmocka_unit_test(test_beyond_mask),
	        cmocka_unit_test(test_empty_pool),
	        cmocka_unit_test(test_weighted_smooth_cycle),
	        cmocka_unit_test(test_weighted_exact_shares),
	        cmocka_unit_test(test_weighted_random_and_scaled),
	        cmocka_unit_test(test_weighted_exclusion),
	        cmocka_unit_test(test_backups),
	        cmocka_unit_test(test_find),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
