/* tests/unit/balancer/least_test.c — unit tests for balancer/least.c.
 *
 * Goal: the four load-aware algorithms do what their names promise.
 * least_conn always picks a backend with the fewest requests in flight,
 * follows the load as it changes, shares ties evenly by rotating, honours
 * the exclusion mask and returns -1 when nothing can be picked.
 * weighted_least_conn compares active/weight, so in a steady state the
 * picks follow the weights. random_two (power of two choices) never picks
 * an excluded backend, strongly prefers an idle backend, spreads equal
 * loads evenly, copes with one and two backends and is deterministic for a
 * given generator state. least_time prefers a lower response-time EWMA,
 * still tries a backend without a sample, counts requests in flight and
 * favours heavier backends.
 *
 * Method: the module is #included (statics reachable). Pools are plain
 * `struct lb_pool` tables built in the test with a hand-made, zeroed,
 * cache-line-aligned `struct lb_live` array indexed by uid; the load
 * (live[].active, live[].ewma_us) is set by hand or by a simulated request
 * stream driven by a seeded rand_r, so every run is identical. Picks go
 * through the ops table with a zeroed (or explicitly seeded) `struct
 * lb_local`, as a shard's would; ops->release is called at the end
 * (LeakSanitizer checks in the SANITIZE=1 build). Statistical assertions
 * use margins many standard deviations wide; there are no timing
 * assertions.
 */
#include "balancer/least.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A pool plus the storage it points into. */
struct tpool {
	struct lb_pool pool;
	struct lb_backend *b;
	struct lb_live *live;
	uint32_t n;
};

/* tpool_new builds a pool of `n` backends for `ops`, weights w[] (all 1
 * when w is NULL), uid = index, names 10.0.0.i:80, all loads zero. */
static struct tpool *tpool_new(const struct balancer_ops *ops, uint32_t n, const uint32_t *w)
{
	struct tpool *t = calloc(1, sizeof(*t));
	size_t cnt = n ? n : 1;

	assert_non_null(t);
	t->n = n;
	t->b = calloc(cnt, sizeof(*t->b));
	assert_non_null(t->b);
	t->live = aligned_alloc(LB_CACHELINE, cnt * sizeof(*t->live));
	assert_non_null(t->live);
	memset(t->live, 0, cnt * sizeof(*t->live));
	for (uint32_t i = 0; i < n; i++) {
		t->b[i].uid = i;
		t->b[i].weight = w != NULL ? w[i] : 1;
		snprintf(t->b[i].name, sizeof(t->b[i].name), "10.0.0.%u:80", i);
	}
	t->pool.ops = ops;
	t->pool.backends = t->b;
	t->pool.num_backends = n;
	t->pool.live = t->live;
	assert_int_equal(ops->build(&t->pool), 1);
	return t;
}

static void tpool_free(struct tpool *t)
{
	t->pool.ops->release(&t->pool);
	assert_null(t->pool.state);
	free(t->live);
	free(t->b);
	free(t);
}

static void set_active(struct tpool *t, uint32_t i, uint32_t v)
{
	atomic_store_explicit(&t->live[t->b[i].uid].active, v, memory_order_relaxed);
}

static uint32_t get_active(struct tpool *t, uint32_t i)
{
	return atomic_load_explicit(&t->live[t->b[i].uid].active, memory_order_relaxed);
}

static void set_ewma(struct tpool *t, uint32_t i, uint32_t v)
{
	atomic_store_explicit(&t->live[t->b[i].uid].ewma_us, v, memory_order_relaxed);
}

static int32_t pick(struct tpool *t, struct lb_local *local, uint64_t exclude)
{
	struct lb_ctx ctx = {.exclude = exclude, .hash = 0};
	int32_t b = t->pool.ops->pick(&t->pool, local, &ctx);

	assert_true(b >= -1);
	assert_true(b < (int32_t)t->n);
	return b;
}

/* count_picks makes `picks` picks with loads held fixed and counts them
 * per backend into count[] (zeroed here). */
static void count_picks(struct tpool *t, struct lb_local *local, uint64_t exclude, uint32_t picks,
                        uint32_t *count)
{
	memset(count, 0, t->n * sizeof(*count));
	for (uint32_t k = 0; k < picks; k++) {
		int32_t b = pick(t, local, exclude);

		assert_true(b >= 0);
		count[b]++;
	}
}

/* ---- least_conn ---------------------------------------------------- */

/* The backend with the fewest in-flight requests is picked, every time,
 * whatever the rotating start; changing the counts moves the pick. */
static void test_lc_fewest(void **state)
{
	(void)state;
	const uint32_t act[5] = {7, 3, 9, 1, 4};
	struct tpool *t = tpool_new(&balancer_least_conn, 5, NULL);
	struct lb_local local = {0};

	for (uint32_t i = 0; i < 5; i++)
		set_active(t, i, act[i]);
	for (int k = 0; k < 20; k++)
		assert_int_equal(pick(t, &local, 0), 3);
	set_active(t, 3, 10); /* now 1 (3 in flight) is the least loaded */
	for (int k = 0; k < 20; k++)
		assert_int_equal(pick(t, &local, 0), 1);
	set_active(t, 4, 0);
	for (int k = 0; k < 20; k++)
		assert_int_equal(pick(t, &local, 0), 4);
	set_active(t, 4, 3); /* ties 1 (3) and 4 (3): only those two, shared */
	{
		uint32_t count[5];

		count_picks(t, &local, 0, 100, count);
		assert_int_equal(count[0] + count[2] + count[3], 0);
		assert_true(count[1] > 0 && count[4] > 0);
		assert_int_equal(count[1] + count[4], 100);
	}
	tpool_free(t);
}

/* The pick follows the load: starting idle, each pick adds one request to
 * the chosen backend; the spread between the busiest and the idlest
 * backend never exceeds one, and after k*N picks all carry exactly k. */
static void test_lc_follows_load(void **state)
{
	(void)state;
	const uint32_t n = 6;
	struct tpool *t = tpool_new(&balancer_least_conn, n, NULL);
	struct lb_local local = {0};
	unsigned int seed = 1;

	for (uint32_t k = 0; k < 600; k++) {
		int32_t b = pick(t, &local, 0);
		uint32_t lo = UINT32_MAX, hi = 0;

		assert_true(b >= 0);
		/* The chosen one is a minimum. */
		for (uint32_t i = 0; i < n; i++)
			assert_true(get_active(t, (uint32_t)b) <= get_active(t, i));
		set_active(t, (uint32_t)b, get_active(t, (uint32_t)b) + 1);
		for (uint32_t i = 0; i < n; i++) {
			lo = get_active(t, i) < lo ? get_active(t, i) : lo;
			hi = get_active(t, i) > hi ? get_active(t, i) : hi;
		}
		assert_true(hi - lo <= 1);
	}
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(get_active(t, i), 100);
	/* A burst of completions on one backend draws the next picks to it. */
	set_active(t, 2, 90);
	for (int k = 0; k < 10; k++) {
		assert_int_equal(pick(t, &local, 0), 2);
		set_active(t, 2, get_active(t, 2) + 1);
	}
	/* Random loads: the pick is always a minimum. */
	for (int round = 0; round < 200; round++) {
		uint32_t min = UINT32_MAX;
		int32_t b;

		for (uint32_t i = 0; i < n; i++) {
			set_active(t, i, (uint32_t)rand_r(&seed) % 8);
			min = get_active(t, i) < min ? get_active(t, i) : min;
		}
		b = pick(t, &local, 0);
		assert_true(b >= 0);
		assert_int_equal(get_active(t, (uint32_t)b), min);
	}
	tpool_free(t);
}

/* Equal loads: the rotating start shares ties exactly — over r*N picks
 * every backend is picked r times. */
static void test_lc_ties_rotate(void **state)
{
	(void)state;
	const uint32_t nums[] = {1, 2, 7, 64, 100};

	for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
		uint32_t n = nums[k];
		struct tpool *t = tpool_new(&balancer_least_conn, n, NULL);
		struct lb_local local = {0};
		uint32_t *count = calloc(n, sizeof(*count));

		assert_non_null(count);
		for (uint32_t i = 0; i < n; i++)
			set_active(t, i, 5);
		count_picks(t, &local, 0, 50 * n, count);
		for (uint32_t i = 0; i < n; i++)
			assert_int_equal(count[i], 50);
		free(count);
		tpool_free(t);
	}
}

/* Excluded backends are skipped even when least loaded; the least loaded
 * of the rest wins; all excluded gives -1; an empty pool gives -1. */
static void test_lc_exclusion(void **state)
{
	(void)state;
	const uint32_t act[5] = {7, 3, 9, 1, 4};
	struct tpool *t = tpool_new(&balancer_least_conn, 5, NULL);
	struct lb_local local = {0};
	unsigned int seed = 3;

	for (uint32_t i = 0; i < 5; i++)
		set_active(t, i, act[i]);
	for (int k = 0; k < 10; k++) {
		assert_int_equal(pick(t, &local, 1u << 3), 1);
		assert_int_equal(pick(t, &local, (1u << 3) | (1u << 1)), 4);
		assert_int_equal(pick(t, &local, 0x1f & ~(1u << 2)), 2);
		assert_int_equal(pick(t, &local, 0x1f), -1);
		assert_int_equal(pick(t, &local, UINT64_MAX), -1);
	}
	/* Random masks and loads: never excluded, always a minimum of the rest. */
	for (int round = 0; round < 500; round++) {
		uint64_t mask = (uint64_t)rand_r(&seed) & 0x1f;
		uint32_t min = UINT32_MAX;
		int32_t b;

		for (uint32_t i = 0; i < 5; i++) {
			set_active(t, i, (uint32_t)rand_r(&seed) % 6);
			if (!((mask >> i) & 1) && get_active(t, i) < min)
				min = get_active(t, i);
		}
		b = pick(t, &local, mask);
		if (mask == 0x1f) {
			assert_int_equal(b, -1);
			continue;
		}
		assert_true(b >= 0);
		assert_false((mask >> b) & 1);
		assert_int_equal(get_active(t, (uint32_t)b), min);
	}
	tpool_free(t);

	/* 64 backends, all excluded; 100 backends, the first 64 excluded. */
	t = tpool_new(&balancer_least_conn, 64, NULL);
	assert_int_equal(pick(t, &local, UINT64_MAX), -1);
	tpool_free(t);
	t = tpool_new(&balancer_least_conn, 100, NULL);
	set_active(t, 0, 0);
	for (uint32_t i = 1; i < 100; i++)
		set_active(t, i, 1);
	for (int k = 0; k < 50; k++) {
		int32_t b = pick(t, &local, UINT64_MAX);

		assert_true(b >= 64 && b < 100);
	}
	tpool_free(t);

	t = tpool_new(&balancer_least_conn, 0, NULL);
	assert_int_equal(pick(t, &local, 0), -1);
	assert_int_equal(pick(t, &local, 0), -1);
	tpool_free(t);
}

/* rebuild re-prepares the table after the test changed a backend's uid or
 * weight (the table is immutable once built, as in a real snapshot). */
static void rebuild(struct tpool *t)
{
	t->pool.ops->release(&t->pool);
	assert_int_equal(t->pool.ops->build(&t->pool), 1);
}

/* Loads are read through the uid, not the position in the table: with
 * uids reversed, live[uid] belongs to backend n-1-uid. For all four
 * algorithms (with two backends random_two and least_time always compare
 * both). */
static void test_reads_live_by_uid(void **state)
{
	(void)state;
	const struct balancer_ops *ops[] = {&balancer_least_conn, &balancer_weighted_least_conn,
	                                    &balancer_random_two, &balancer_least_time};
	struct lb_local local = {0};

	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		struct tpool *t = tpool_new(ops[k], 4, NULL);

		for (uint32_t i = 0; i < 4; i++)
			t->b[i].uid = 3 - i;
		rebuild(t);
		for (uint32_t u = 0; u < 4; u++) {
			t->live[u].active = 10;
			t->live[u].ewma_us = 1000;
		}
		t->live[0].active = 2; /* uid 0 is backend 3 */
		for (int q = 0; q < 8; q++)
			assert_int_equal(pick(t, &local, 0x3), 3);
		tpool_free(t);
	}
}

/* ---- weighted_least_conn ------------------------------------------- */

/* active/weight decides: 5/3 < 2/1 picks the weight-3 backend; 7/3 > 2/1
 * picks the weight-1 one; 6/3 == 2/1 is a tie and is shared. */
static void test_wlc_ratio(void **state)
{
	(void)state;
	const uint32_t w[2] = {3, 1};
	struct tpool *t = tpool_new(&balancer_weighted_least_conn, 2, w);
	struct lb_local local = {0};
	uint32_t count[2];

	set_active(t, 0, 5);
	set_active(t, 1, 2);
	for (int k = 0; k < 10; k++)
		assert_int_equal(pick(t, &local, 0), 0);
	set_active(t, 0, 7);
	for (int k = 0; k < 10; k++)
		assert_int_equal(pick(t, &local, 0), 1);
	set_active(t, 0, 6);
	count_picks(t, &local, 0, 100, count);
	assert_int_equal(count[0], 50);
	assert_int_equal(count[1], 50);
	/* Exclusion still wins over the ratio. */
	set_active(t, 0, 0);
	for (int k = 0; k < 10; k++)
		assert_int_equal(pick(t, &local, 1), 1);
	assert_int_equal(pick(t, &local, 3), -1);
	/* Plain least_conn ignores the weights: 5 vs 2 picks backend 1. */
	t->pool.ops = &balancer_least_conn;
	set_active(t, 0, 5);
	set_active(t, 1, 2);
	assert_int_equal(pick(t, &local, 0), 1);
	t->pool.ops = &balancer_weighted_least_conn;
	tpool_free(t);

	t = tpool_new(&balancer_weighted_least_conn, 0, NULL);
	assert_int_equal(pick(t, &local, 0), -1);
	tpool_free(t);
}

/* Steady state: each step one request arrives and is sent where
 * weighted_least_conn says; a uniformly random in-flight request completes
 * with probability 1/2 while fewer than 100 are in flight, and always
 * beyond. Over 10000 steps the share of picks follows the weights within
 * 5% (relative), since in-flight counts settle in proportion to the
 * weights and completions in proportion to the in-flight counts. */
static void test_wlc_steady_state(void **state)
{
	(void)state;
	static const uint32_t weights[][4] = {{1, 2, 3, 4}, {3, 1, 1, 1}, {10, 1, 5, 5}};

	for (size_t c = 0; c < sizeof(weights) / sizeof(weights[0]); c++) {
		const uint32_t *w = weights[c];
		const uint32_t n = 4, steps = 10000;
		struct tpool *t = tpool_new(&balancer_weighted_least_conn, n, w);
		struct lb_local local = {0};
		uint32_t count[4] = {0, 0, 0, 0}, wsum = 0, inflight = 0;
		unsigned int seed = 42 + (unsigned int)c;

		for (uint32_t i = 0; i < n; i++)
			wsum += w[i];
		for (uint32_t k = 0; k < steps; k++) {
			int32_t b = pick(t, &local, 0);

			assert_true(b >= 0);
			count[b]++;
			set_active(t, (uint32_t)b, get_active(t, (uint32_t)b) + 1);
			inflight++;
			if (inflight > 100 || rand_r(&seed) % 2 == 0) {
				uint32_t r = (uint32_t)rand_r(&seed) % inflight, i = 0;

				while (r >= get_active(t, i)) {
					r -= get_active(t, i);
					i++;
				}
				set_active(t, i, get_active(t, i) - 1);
				inflight--;
			}
		}
		for (uint32_t i = 0; i < n; i++) {
			double want = (double)steps * w[i] / wsum;

			if (count[i] < want * 0.95 || count[i] > want * 1.05)
				fail_msg("weights case %zu backend %u: %u picks, want %.0f +-5%%",
				         c, i, count[i], want);
		}
		tpool_free(t);
	}
}

/* ---- random_two ---------------------------------------------------- */

/* Random masks and loads, for 1 to 100 backends: never an excluded
 * backend, including when a single one is left (the fallback scan finds
 * it); -1 exactly when all are excluded. */
static void test_r2_exclusion(void **state)
{
	(void)state;
	const uint32_t nums[] = {1, 2, 3, 10, 64, 100};
	unsigned int seed = 5;

	for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
		uint32_t n = nums[k];
		struct tpool *t = tpool_new(&balancer_random_two, n, NULL);
		struct lb_local local = {0};
		uint64_t full = n >= 64 ? UINT64_MAX : (1ull << n) - 1;

		for (int round = 0; round < 2000; round++) {
			uint64_t mask = ((uint64_t)rand_r(&seed) << 33 ^
			                 (uint64_t)rand_r(&seed) << 2 ^ (uint64_t)rand_r(&seed)) &
			                full;
			int32_t b;

			if (round % 7 == 0) /* leave exactly one backend allowed */
				mask = full &
				       ~(1ull << ((uint32_t)rand_r(&seed) % (n < 64 ? n : 64)));
			for (uint32_t i = 0; i < n; i++)
				set_active(t, i, (uint32_t)rand_r(&seed) % 5);
			b = pick(t, &local, mask);
			if (n <= 64 && mask == full) {
				assert_int_equal(b, -1);
				continue;
			}
			assert_true(b >= 0);
			assert_false(lb_excluded(&t->pool, &(struct lb_ctx){.exclude = mask},
			                         (uint32_t)b));
		}
		if (n <= 64)
			assert_int_equal(pick(t, &local, full), -1);
		tpool_free(t);
	}
}

/* One idle backend among busy ones (N=4: loads 100, 0, 100, 100): it wins
 * whenever it is one of the two candidates, i.e. half the time, far more
 * than 1/N. Assert at least 40% of 10000 picks. */
static void test_r2_prefers_idle(void **state)
{
	(void)state;
	struct tpool *t = tpool_new(&balancer_random_two, 4, NULL);
	struct lb_local local = {0};
	uint32_t count[4];

	for (uint32_t i = 0; i < 4; i++)
		set_active(t, i, 100);
	set_active(t, 1, 0);
	count_picks(t, &local, 0, 10000, count);
	assert_true(count[1] >= 4000);
	assert_true(count[1] <= 6000); /* two random candidates, not a full scan */
	tpool_free(t);
}

/* Equal loads: ties go to the first candidate, a uniform draw, so 40000
 * picks over 8 backends give each 5000 +-20%. */
static void test_r2_uniform(void **state)
{
	(void)state;
	const uint32_t n = 8, picks = 40000;
	struct tpool *t = tpool_new(&balancer_random_two, n, NULL);
	struct lb_local local = {0};
	uint32_t count[8];

	for (uint32_t i = 0; i < n; i++)
		set_active(t, i, 3);
	count_picks(t, &local, 0, picks, count);
	for (uint32_t i = 0; i < n; i++) {
		assert_true(count[i] >= picks / n * 8 / 10);
		assert_true(count[i] <= picks / n * 12 / 10);
	}
	tpool_free(t);
}

/* One backend: always it (-1 when excluded). Two backends: both are
 * always the candidates, so the less loaded always wins; with one
 * excluded the other is always picked. */
static void test_r2_one_and_two(void **state)
{
	(void)state;
	struct tpool *t = tpool_new(&balancer_random_two, 1, NULL);
	struct lb_local local = {0};

	set_active(t, 0, 1000);
	for (int k = 0; k < 50; k++) {
		assert_int_equal(pick(t, &local, 0), 0);
		assert_int_equal(pick(t, &local, 1), -1);
	}
	tpool_free(t);

	t = tpool_new(&balancer_random_two, 2, NULL);
	set_active(t, 0, 5);
	set_active(t, 1, 0);
	for (int k = 0; k < 100; k++)
		assert_int_equal(pick(t, &local, 0), 1);
	set_active(t, 1, 6);
	for (int k = 0; k < 100; k++)
		assert_int_equal(pick(t, &local, 0), 0);
	for (int k = 0; k < 100; k++) {
		assert_int_equal(pick(t, &local, 1), 1);
		assert_int_equal(pick(t, &local, 2), 0);
		assert_int_equal(pick(t, &local, 3), -1);
	}
	/* Weighted: 3 in flight on weight 4 beats 1 on weight 1. */
	t->b[0].weight = 4;
	rebuild(t);
	set_active(t, 0, 3);
	set_active(t, 1, 1);
	for (int k = 0; k < 50; k++)
		assert_int_equal(pick(t, &local, 0), 0);
	tpool_free(t);

	t = tpool_new(&balancer_random_two, 0, NULL);
	assert_int_equal(pick(t, &local, 0), -1);
	tpool_free(t);
}

/* Picks depend only on the generator state: two locals with the same seed
 * give the same sequence; the zero seed is the documented fixed seed;
 * another seed gives another sequence. */
static void test_r2_deterministic(void **state)
{
	(void)state;
	const uint32_t n = 16;
	struct tpool *t = tpool_new(&balancer_random_two, n, NULL);
	struct lb_local a = {.counter = 0, .rng = 12345};
	struct lb_local b = {.counter = 99, .rng = 12345};
	struct lb_local z = {0};
	struct lb_local f = {.counter = 0, .rng = 0x9e3779b97f4a7c15ull};
	struct lb_local o = {.counter = 0, .rng = 54321};
	int differ = 0;

	for (uint32_t i = 0; i < n; i++)
		set_active(t, i, i % 4);
	for (int k = 0; k < 1000; k++) {
		int32_t pa = pick(t, &a, 0x5);
		int32_t pz = pick(t, &z, 0x5);

		assert_int_equal(pa, pick(t, &b, 0x5));
		assert_int_equal(pz, pick(t, &f, 0x5));
		differ += pa != pick(t, &o, 0x5);
	}
	assert_int_equal(a.rng, b.rng);
	assert_true(differ > 100);
	tpool_free(t);
}

/* ---- least_time ---------------------------------------------------- */

/* Equal in-flight counts: the backend with the lowest EWMA wins whenever
 * it is a candidate (half of the picks with N=4), the others share the
 * rest. */
static void test_lt_lower_ewma(void **state)
{
	(void)state;
	struct tpool *t = tpool_new(&balancer_least_time, 4, NULL);
	struct lb_local local = {0};
	uint32_t count[4];

	for (uint32_t i = 0; i < 4; i++) {
		set_active(t, i, 2);
		set_ewma(t, i, 1000);
	}
	set_ewma(t, 2, 200);
	count_picks(t, &local, 0, 10000, count);
	assert_true(count[2] >= 4000);
	for (uint32_t i = 0; i < 4; i++)
		if (i != 2)
			assert_true(count[2] > 2 * count[i]);
	/* Two backends: the faster one always wins. */
	tpool_free(t);
	t = tpool_new(&balancer_least_time, 2, NULL);
	set_ewma(t, 0, 900);
	set_ewma(t, 1, 800);
	for (int k = 0; k < 50; k++)
		assert_int_equal(pick(t, &local, 0), 1);
	tpool_free(t);
}

/* A backend without a sample (EWMA 0) is still picked: against slower
 * backends it is favoured, and against faster ones it still gets its turn
 * (a good share of the picks) while load builds up. */
static void test_lt_no_sample(void **state)
{
	(void)state;
	struct tpool *t = tpool_new(&balancer_least_time, 4, NULL);
	struct lb_local local = {0};
	uint32_t count[4];

	for (uint32_t i = 1; i < 4; i++)
		set_ewma(t, i, 5000);
	count_picks(t, &local, 0, 10000, count);
	assert_true(count[0] >= 4000);

	/* Faster peers (500 µs); each pick adds a request in flight. */
	for (uint32_t i = 1; i < 4; i++)
		set_ewma(t, i, 500);
	memset(count, 0, sizeof(count));
	for (int k = 0; k < 2000; k++) {
		int32_t b = pick(t, &local, 0);

		assert_true(b >= 0);
		count[b]++;
		set_active(t, (uint32_t)b, get_active(t, (uint32_t)b) + 1);
	}
	assert_true(count[0] > 2000 / 14);
	/* Excluded, it is not picked. */
	for (int k = 0; k < 50; k++)
		assert_int_not_equal(pick(t, &local, 1), 0);
	tpool_free(t);
}

/* Requests in flight still count for a backend without a sample: at cold
 * start (every EWMA 0, in flight 20/0/0/0) the busy one is picked least,
 * and a backend that never answers (so never gets a sample) cannot soak up
 * picks as its requests pile up. (Regression: an unsampled backend once
 * scored 0 whatever its in-flight count.) */
static void test_lt_no_sample_counts_active(void **state)
{
	(void)state;
	struct tpool *t = tpool_new(&balancer_least_time, 4, NULL);
	struct lb_local local = {0};
	uint32_t count[4];
	bool cold_ok = true, stuck_ok = true;

	set_active(t, 0, 20);
	count_picks(t, &local, 0, 10000, count);
	print_message("cold start, in flight 20/0/0/0: picks %u %u %u %u\n", count[0], count[1],
	              count[2], count[3]);
	for (uint32_t i = 1; i < 4; i++)
		cold_ok = cold_ok && count[0] < count[i];

	set_active(t, 0, 1000);
	for (uint32_t i = 1; i < 4; i++)
		set_ewma(t, i, 1000);
	count_picks(t, &local, 0, 10000, count);
	print_message("no sample, 1000 in flight: picks %u %u %u %u\n", count[0], count[1],
	              count[2], count[3]);
	for (uint32_t i = 1; i < 4; i++)
		stuck_ok = stuck_ok && count[0] < count[i];
	tpool_free(t);
	assert_true(cold_ok);
	assert_true(stuck_ok);
}

/* Same EWMA, different in-flight counts: the busier backend gets fewer
 * picks; far busier, none at all. */
static void test_lt_active_counts(void **state)
{
	(void)state;
	struct tpool *t = tpool_new(&balancer_least_time, 4, NULL);
	struct lb_local local = {0};
	uint32_t count[4];

	for (uint32_t i = 0; i < 4; i++) {
		set_ewma(t, i, 1000);
		set_active(t, i, 10);
	}
	set_active(t, 0, 0);
	count_picks(t, &local, 0, 10000, count);
	assert_true(count[0] >= 4000);

	for (uint32_t i = 0; i < 4; i++)
		set_active(t, i, 0);
	set_active(t, 0, 10); /* 0 loses every comparison */
	count_picks(t, &local, 0, 10000, count);
	assert_int_equal(count[0], 0);
	for (uint32_t i = 1; i < 4; i++)
		assert_true(count[i] > 2500);

	/* Mild difference: 3 vs 2 in flight, still fewer picks. */
	set_active(t, 0, 3);
	for (uint32_t i = 1; i < 4; i++)
		set_active(t, i, 2);
	count_picks(t, &local, 0, 10000, count);
	for (uint32_t i = 1; i < 4; i++)
		assert_true(count[0] < count[i]);
	tpool_free(t);
}

/* Weights divide the score: with equal EWMA and counts, the weight-4
 * backend wins every comparison (half the picks with N=4); under a load
 * that grows with the picks, heavier backends carry more. */
static void test_lt_weights(void **state)
{
	(void)state;
	const uint32_t w[4] = {4, 1, 1, 1};
	struct tpool *t = tpool_new(&balancer_least_time, 4, w);
	struct lb_local local = {0};
	uint32_t count[4];

	for (uint32_t i = 0; i < 4; i++) {
		set_ewma(t, i, 1000);
		set_active(t, i, 1);
	}
	count_picks(t, &local, 0, 10000, count);
	assert_true(count[0] >= 4000);
	for (uint32_t i = 1; i < 4; i++)
		assert_true(count[0] > 2 * count[i]);

	for (uint32_t i = 0; i < 4; i++)
		set_active(t, i, 0);
	memset(count, 0, sizeof(count));
	for (int k = 0; k < 4000; k++) {
		int32_t b = pick(t, &local, 0);

		assert_true(b >= 0);
		count[b]++;
		set_active(t, (uint32_t)b, get_active(t, (uint32_t)b) + 1);
	}
	for (uint32_t i = 1; i < 4; i++)
		assert_true(count[0] > 2 * count[i]);
	tpool_free(t);
}

/* Huge values do not overflow the comparison: a clamped 2^32-1 µs EWMA and
 * 2^32-1 in flight still lose to a normal backend. */
static void test_lt_clamp(void **state)
{
	(void)state;
	const uint32_t w[2] = {1000, 1};
	struct tpool *t = tpool_new(&balancer_least_time, 2, w);
	struct lb_local local = {0};

	set_ewma(t, 0, UINT32_MAX);
	set_active(t, 0, UINT32_MAX);
	set_ewma(t, 1, 1000);
	set_active(t, 1, 5);
	for (int k = 0; k < 20; k++)
		assert_int_equal(pick(t, &local, 0), 1);
	tpool_free(t);

	t = tpool_new(&balancer_least_time, 0, NULL);
	assert_int_equal(pick(t, &local, 0), -1);
	tpool_free(t);
}

static void test_find(void **state)
{
	(void)state;
	assert_ptr_equal(balancer_find("least_conn"), &balancer_least_conn);
	assert_ptr_equal(balancer_find("weighted_least_conn"), &balancer_weighted_least_conn);
	assert_ptr_equal(balancer_find("random_two"), &balancer_random_two);
	assert_ptr_equal(balancer_find("least_time"), &balancer_least_time);
	assert_string_equal(balancer_least_conn.name, "least_conn");
	assert_string_equal(balancer_weighted_least_conn.name, "weighted_least_conn");
	assert_string_equal(balancer_random_two.name, "random_two");
	assert_string_equal(balancer_least_time.name, "least_time");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_lc_fewest),
	        cmocka_unit_test(test_lc_follows_load),
	        cmocka_unit_test(test_lc_ties_rotate),
	        cmocka_unit_test(test_lc_exclusion),
	        cmocka_unit_test(test_reads_live_by_uid),
	        cmocka_unit_test(test_wlc_ratio),
	        cmocka_unit_test(test_wlc_steady_state),
	        cmocka_unit_test(test_r2_exclusion),
	        cmocka_unit_test(test_r2_prefers_idle),
	        cmocka_unit_test(test_r2_uniform),
	        cmocka_unit_test(test_r2_one_and_two),
	        cmocka_unit_test(test_r2_deterministic),
	        cmocka_unit_test(test_lt_lower_ewma),
	        cmocka_unit_test(test_lt_no_sample),
	        cmocka_unit_test(test_lt_no_sample_counts_active),
	        cmocka_unit_test(test_lt_active_counts),
	        cmocka_unit_test(test_lt_weights),
	        cmocka_unit_test(test_lt_clamp),
	        cmocka_unit_test(test_find),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
