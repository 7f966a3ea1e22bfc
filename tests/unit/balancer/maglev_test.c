/* tests/unit/balancer/maglev_test.c — unit tests for balancer/maglev.c.
 *
 * Goal: the Maglev table behind `hash` and `ip_hash` keeps the promises of
 * its header: the table size is a prime at least 100 times the number of
 * backends; slots (and so keys) are spread evenly, or in proportion to
 * the weights; removing one of N backends moves about 1/N of the keys
 * (those it owned, and few others), adding one moves about 1/(N+1); the
 * same key always maps to the same backend, across picks and across
 * builds; excluded backends are passed over deterministically; with a
 * balance factor no backend exceeds factor x the mean load (bounded-load
 * consistent hashing); an empty pool has no table and picks -1.
 *
 * Method: the module is #included so the table (struct maglev) and
 * table_size() can be inspected. Pools are plain `struct lb_pool` tables
 * built in the test (uid = index, names "10.0.0.i:80", a zeroed,
 * cache-line-aligned `struct lb_live` array), prepared with ops->build and
 * picked through the ops table as a shard would; keys are 64-bit values
 * from a fixed-seed splitmix64, so every run is identical. ops->release
 * frees the table (LeakSanitizer checks in the SANITIZE=1 build). No timing
 * assertions.
 */
#include "balancer/maglev.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct tpool {
	struct lb_pool pool;
	struct lb_backend *b;
	struct lb_live *live;
	uint32_t n;
};

/* tpool_new builds a hash pool of `n` backends named "10.0.0.id[i]:80"
 * (id[i] = i when id is NULL), weights w[] (1 when NULL). */
static struct tpool *tpool_new_ids(uint32_t n, const uint32_t *w, const uint32_t *id)
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
		snprintf(t->b[i].name, sizeof(t->b[i].name), "10.0.0.%u:80",
		         id != NULL ? id[i] : i);
	}
	t->pool.ops = &balancer_hash;
	t->pool.backends = t->b;
	t->pool.num_backends = n;
	t->pool.live = t->live;
	assert_int_equal(t->pool.ops->build(&t->pool), 1);
	return t;
}

static struct tpool *tpool_new(uint32_t n, const uint32_t *w)
{
	return tpool_new_ids(n, w, NULL);
}

static void tpool_free(struct tpool *t)
{
	t->pool.ops->release(&t->pool);
	assert_null(t->pool.state);
	free(t->live);
	free(t->b);
	free(t);
}

static const struct maglev *table(const struct tpool *t)
{
	assert_non_null(t->pool.state);
	return t->pool.state;
}

static int32_t pick(struct tpool *t, uint64_t hash, uint64_t exclude)
{
	struct lb_local local = {0};
	struct lb_ctx ctx = {.exclude = exclude, .hash = hash};
	int32_t b = t->pool.ops->pick(&t->pool, &local, &ctx);

	assert_true(b >= -1);
	assert_true(b < (int32_t)t->n);
	return b;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool is_prime(uint32_t m)
{
	if (m < 2)
		return false;
	for (uint32_t d = 2; (uint64_t)d * d <= m; d++)
		if (m % d == 0)
			return false;
	return true;
}

/* slot_counts counts the table's slots per backend into count[] and checks
 * every slot is filled with a valid index. */
static void slot_counts(const struct tpool *t, uint32_t *count)
{
	const struct maglev *m = table(t);

	memset(count, 0, t->n * sizeof(*count));
	for (uint32_t j = 0; j < m->size; j++) {
		assert_true(m->slot[j] < t->n);
		count[m->slot[j]]++;
	}
}

static void set_active(struct tpool *t, uint32_t i, uint32_t v)
{
	atomic_store_explicit(&t->live[t->b[i].uid].active, v, memory_order_relaxed);
}

static uint32_t get_active(struct tpool *t, uint32_t i)
{
	return atomic_load_explicit(&t->live[t->b[i].uid].active, memory_order_relaxed);
}

/* ---- table size and build ------------------------------------------ */

static void test_table_size(void **state)
{
	(void)state;
	/* One prime size for every pool size the configuration allows
	 * (1..1024), at least 63 slots per backend: a size that followed N
	 * would move every key when N crossed a step. */
	assert_true(is_prime(MAGLEV_SIZE));
	for (uint32_t n = 1; n <= 1024; n++) {
		assert_int_equal(table_size(n), MAGLEV_SIZE);
		assert_true(table_size(n) >= 63 * n);
	}
}

/* One backend owns every slot and every key; 1000 backends fill a
 * 65521-slot table, each owning some slots. */
static void test_build_1_and_1000(void **state)
{
	(void)state;
	struct tpool *t = tpool_new(1, NULL);
	uint64_t seed = 1;
	uint32_t *count;

	assert_int_equal(table(t)->size, table_size(1));
	for (uint32_t j = 0; j < table(t)->size; j++)
		assert_int_equal(table(t)->slot[j], 0);
	for (int k = 0; k < 1000; k++)
		assert_int_equal(pick(t, splitmix64(&seed), 0), 0);
	assert_int_equal(pick(t, 0, 0), 0);
	assert_int_equal(pick(t, UINT64_MAX, 0), 0);
	assert_int_equal(pick(t, 42, 1), -1);
	tpool_free(t);

	t = tpool_new(1000, NULL);
	assert_int_equal(table(t)->size, table_size(1000));
	count = calloc(1000, sizeof(*count));
	assert_non_null(count);
	slot_counts(t, count);
	for (uint32_t i = 0; i < 1000; i++) {
		/* M/N = 65.5; each within 10%. */
		assert_true(count[i] >= 59 && count[i] <= 72);
	}
	free(count);
	tpool_free(t);
}

/* ---- balance -------------------------------------------------------- */

/* Equal weights: slots per backend within 10% of M/N; 200000 random keys,
 * picks per backend within 10% of the mean. */
static void test_balance(void **state)
{
	(void)state;
	const uint32_t nums[] = {5, 10, 50};

	for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
		uint32_t n = nums[k];
		struct tpool *t = tpool_new(n, NULL);
		uint32_t *count = calloc(n, sizeof(*count));
		double mean = (double)table(t)->size / n;
		uint64_t seed = 7 + k;
		const uint32_t keys = 200000;

		assert_non_null(count);
		slot_counts(t, count);
		for (uint32_t i = 0; i < n; i++)
			if (count[i] < mean * 0.9 || count[i] > mean * 1.1)
				fail_msg("N=%u backend %u: %u slots, mean %.1f", n, i, count[i],
				         mean);
		memset(count, 0, n * sizeof(*count));
		for (uint32_t q = 0; q < keys; q++)
			count[pick(t, splitmix64(&seed), 0)]++;
		mean = (double)keys / n;
		for (uint32_t i = 0; i < n; i++)
			if (count[i] < mean * 0.9 || count[i] > mean * 1.1)
				fail_msg("N=%u backend %u: %u picks, mean %.1f", n, i, count[i],
				         mean);
		free(count);
		tpool_free(t);
	}
}

/* Weights 1:2:3 give slot shares within 10% of 1/6, 2/6, 3/6; other
 * weight sets likewise. */
static void test_weights(void **state)
{
	(void)state;
	static const uint32_t w1[] = {1, 2, 3};
	static const uint32_t w2[] = {5, 1, 1, 1, 2};
	static const uint32_t w3[] = {1000, 1, 500};
	const struct {
		const uint32_t *w;
		uint32_t n;
	} cases[] = {{w1, 3}, {w2, 5}, {w3, 3}};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct tpool *t = tpool_new(cases[c].n, cases[c].w);
		uint32_t count[8], wsum = 0;
		uint32_t m = table(t)->size;

		slot_counts(t, count);
		for (uint32_t i = 0; i < cases[c].n; i++)
			wsum += cases[c].w[i];
		for (uint32_t i = 0; i < cases[c].n; i++) {
			double want = (double)m * cases[c].w[i] / wsum;

			/* Weight 1 of 1501 is ~0.7 slot in 251: allow one slot. */
			if (count[i] < want * 0.9 - 1 || count[i] > want * 1.1 + 1)
				fail_msg("case %zu backend %u: %u slots of %u, want %.1f", c, i,
				         count[i], m, want);
			assert_true(count[i] >= 1 || want < 1);
		}
		tpool_free(t);
	}
}

/* ---- disruption ----------------------------------------------------- */

#define DKEYS 100000

/* owner_names records, for DKEYS keys, the name id of the chosen backend. */
static void owners(struct tpool *t, const uint32_t *id, uint32_t *out)
{
	uint64_t seed = 99;

	for (uint32_t q = 0; q < DKEYS; q++) {
		int32_t b = pick(t, splitmix64(&seed), 0);

		assert_true(b >= 0);
		out[q] = id[b];
	}
}

/* Removing backend 3 of 10 (rebuilt with the other 9, same names): all its
 * keys move, about 1/10 of the keys move in all, and fewer than 5% of the
 * keys of the other backends move. */
static void test_disruption_remove(void **state)
{
	(void)state;
	uint32_t id10[10], id9[9];
	uint32_t *before = calloc(DKEYS, sizeof(*before));
	uint32_t *after = calloc(DKEYS, sizeof(*after));
	uint32_t changed = 0, removed_keys = 0, others_changed = 0;
	struct tpool *t;

	assert_non_null(before);
	assert_non_null(after);
	for (uint32_t i = 0, j = 0; i < 10; i++) {
		id10[i] = i;
		if (i != 3)
			id9[j++] = i;
	}
	t = tpool_new_ids(10, NULL, id10);
	owners(t, id10, before);
	tpool_free(t);
	t = tpool_new_ids(9, NULL, id9);
	assert_int_equal(table(t)->size, table_size(10)); /* the same M */
	owners(t, id9, after);
	tpool_free(t);
	for (uint32_t q = 0; q < DKEYS; q++) {
		changed += before[q] != after[q];
		if (before[q] == 3) {
			removed_keys++;
			assert_int_not_equal(after[q], 3);
		} else {
			others_changed += before[q] != after[q];
		}
	}
	print_message("remove 1 of 10: %.4f moved, %.4f of the others' keys moved\n",
	              (double)changed / DKEYS, (double)others_changed / (DKEYS - removed_keys));
	assert_true(removed_keys > DKEYS / 20);
	assert_true(changed < DKEYS * 15 / 100);
	assert_true(others_changed < (DKEYS - removed_keys) * 5 / 100);
	free(before);
	free(after);
}

/* adds_one builds n backends then n+1 (the new one named 10.0.0.n:80) and
 * returns the fraction of keys that moved; keys that moved to anything
 * other than the new backend are counted in *stray. */
static double adds_one(uint32_t n, double *stray)
{
	uint32_t *id = calloc(n + 1, sizeof(*id));
	uint32_t *before = calloc(DKEYS, sizeof(*before));
	uint32_t *after = calloc(DKEYS, sizeof(*after));
	uint32_t changed = 0, strays = 0;
	struct tpool *t;

	assert_non_null(id);
	assert_non_null(before);
	assert_non_null(after);
	for (uint32_t i = 0; i <= n; i++)
		id[i] = i;
	t = tpool_new_ids(n, NULL, id);
	owners(t, id, before);
	tpool_free(t);
	t = tpool_new_ids(n + 1, NULL, id);
	owners(t, id, after);
	tpool_free(t);
	for (uint32_t q = 0; q < DKEYS; q++) {
		changed += before[q] != after[q];
		strays += before[q] != after[q] && after[q] != n;
	}
	*stray = (double)strays / DKEYS;
	free(id);
	free(before);
	free(after);
	return (double)changed / DKEYS;
}

/* Adding a 21st backend to 20: about 1/21 of the keys move, nearly all to
 * the new backend. */
static void test_disruption_add_same_size(void **state)
{
	(void)state;
	double stray, moved;

	assert_int_equal(table_size(20), table_size(21));
	moved = adds_one(20, &stray);
	print_message("add 21st: %.4f moved (%.4f elsewhere)\n", moved, stray);
	assert_true(moved < 0.15);
	assert_true(moved > 0.02);
	assert_true(stray < 0.05);
}

/* Adding an 11th backend to 10: about 1/11 of the keys move. (Regression:
 * the table size once grew with N, and 10 -> 11 backends moved 91% of the
 * keys because `hash mod M` changed for nearly all of them.) */
static void test_disruption_add_eleventh(void **state)
{
	(void)state;
	double stray, moved;

	moved = adds_one(10, &stray);
	print_message("add 11th: %.4f moved (%.4f elsewhere); M %u -> %u\n", moved, stray,
	              table_size(10), table_size(11));
	assert_true(moved < 0.15);
}

/* ---- determinism and exclusion -------------------------------------- */

/* The same key maps to the same backend on every pick and in a second,
 * independent build of the same backends. */
static void test_deterministic(void **state)
{
	(void)state;
	struct tpool *a = tpool_new(10, NULL);
	struct tpool *b = tpool_new(10, NULL);
	uint64_t seed = 5;

	assert_int_equal(table(a)->size, table(b)->size);
	assert_memory_equal(table(a)->slot, table(b)->slot,
	                    table(a)->size * sizeof(table(a)->slot[0]));
	for (int k = 0; k < 10000; k++) {
		uint64_t h = splitmix64(&seed);
		int32_t p = pick(a, h, 0);

		assert_true(p >= 0);
		assert_int_equal(pick(a, h, 0), p);
		assert_int_equal(pick(b, h, 0), p);
		/* The slot is hash mod M. */
		assert_int_equal(p, table(a)->slot[h % table(a)->size]);
	}
	tpool_free(a);
	tpool_free(b);
}

/* Excluding the key's backend gives another backend, the same one every
 * time for that key; the keys of one excluded backend spread over the
 * others; all excluded gives -1. */
static void test_exclusion(void **state)
{
	(void)state;
	const uint32_t n = 8;
	struct tpool *t = tpool_new(n, NULL);
	uint64_t seed = 11;
	uint32_t second[8] = {0};

	for (int k = 0; k < 20000; k++) {
		uint64_t h = splitmix64(&seed);
		int32_t p = pick(t, h, 0), q, r;

		assert_true(p >= 0);
		q = pick(t, h, 1ull << p);
		assert_true(q >= 0);
		assert_int_not_equal(q, p);
		assert_int_equal(pick(t, h, 1ull << p), q);
		r = pick(t, h, (1ull << p) | (1ull << q));
		assert_true(r >= 0 && r != p && r != q);
		assert_int_equal(pick(t, h, (1ull << p) | (1ull << q)), r);
		/* Excluding some other backend leaves the key where it is. */
		assert_int_equal(pick(t, h, 1ull << ((uint32_t)(p + 1) % n)), p);
		if (p == 0)
			second[q]++;
	}
	for (uint32_t i = 1; i < n; i++)
		assert_true(second[i] > 0);
	for (int k = 0; k < 10; k++)
		assert_int_equal(pick(t, splitmix64(&seed), (1ull << n) - 1), -1);
	/* One left: every key goes to it. */
	for (int k = 0; k < 100; k++)
		assert_int_equal(pick(t, splitmix64(&seed), ((1ull << n) - 1) & ~(1ull << 5)), 5);
	tpool_free(t);
}

/* ---- bounded load --------------------------------------------------- */

/* The key's backend far above the mean (100 in flight, others 10) is passed
 * over with a factor of 125%, for a backend under the cap, deterministically;
 * with the factor off the key stays. */
static void test_bounded_passes_over(void **state)
{
	(void)state;
	const uint32_t n = 5;
	struct tpool *t = tpool_new(n, NULL);
	uint64_t seed = 13;

	for (int k = 0; k < 1000; k++) {
		uint64_t h = splitmix64(&seed);
		int32_t home, p;

		t->pool.balance_factor_pct = 0;
		for (uint32_t i = 0; i < n; i++)
			set_active(t, i, 10);
		home = pick(t, h, 0);
		assert_true(home >= 0);
		set_active(t, (uint32_t)home, 100);
		assert_int_equal(pick(t, h, 0), home);
		t->pool.balance_factor_pct = 125;
		p = pick(t, h, 0);
		assert_true(p >= 0);
		assert_int_not_equal(p, home);
		assert_int_equal(pick(t, h, 0), p);
		/* cap = ceil(1.25 * (140 + 1) / 5) = 36 */
		assert_true(get_active(t, (uint32_t)p) + 1 <= 36);
		/* Equal loads: nobody is over the bound, the key stays home. */
		set_active(t, (uint32_t)home, 10);
		assert_int_equal(pick(t, h, 0), home);
	}
	tpool_free(t);
}

/* simulate sends 10000 requests, half of them for one hot key, the rest
 * for random keys, incrementing the chosen backend's count and never
 * decrementing; checks the bound at every step when factor != 0. Returns
 * the hot key's home backend's final count, and the number of hot
 * requests in *hot_reqs. */
static uint32_t simulate(uint32_t n, uint32_t factor, uint32_t *hot_reqs, uint32_t *max_out)
{
	struct tpool *t = tpool_new(n, NULL);
	uint64_t seed = 17, hot = 0x1234567890abcdefull, total = 0;
	int32_t home;
	uint32_t hot_n = 0, home_active, max = 0;

	home = pick(t, hot, 0);
	assert_true(home >= 0);
	t->pool.balance_factor_pct = factor;
	for (uint32_t q = 0; q < 10000; q++) {
		uint64_t r = splitmix64(&seed);
		uint64_t key = (r & 1) ? hot : splitmix64(&seed);
		int32_t b;

		hot_n += (r & 1) != 0;
		b = pick(t, key, 0);
		assert_true(b >= 0);
		set_active(t, (uint32_t)b, get_active(t, (uint32_t)b) + 1);
		total++;
		max = 0;
		for (uint32_t i = 0; i < n; i++)
			max = get_active(t, i) > max ? get_active(t, i) : max;
		if (factor != 0) {
			/* ceil(factor/100 * total / N) + 1 */
			uint64_t bound = (total * factor + 100ull * n - 1) / (100ull * n) + 1;

			if (max > bound)
				fail_msg("step %u: max active %u > bound %llu", q, max,
				         (unsigned long long)bound);
		}
	}
	home_active = get_active(t, (uint32_t)home);
	tpool_free(t);
	*hot_reqs = hot_n;
	*max_out = max;
	return home_active;
}

/* Skewed stream (one key takes 50% of requests): with factor 125% the
 * busiest backend never exceeds ceil(1.25 x mean) + 1; with factor 0 the
 * hot key's backend takes every hot request (about half the total). */
static void test_bounded_simulation(void **state)
{
	(void)state;
	const uint32_t nums[] = {4, 10};

	for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
		uint32_t n = nums[k], hot, max, home;

		home = simulate(n, 125, &hot, &max);
		assert_true(hot > 4500 && hot < 5500);
		assert_true(max <= (10000 * 125 + 100 * n - 1) / (100 * n) + 1);
		assert_true(home < hot);
		home = simulate(n, 0, &hot, &max);
		assert_true(home >= hot);
		assert_int_equal(max, home);
		assert_true(max > 10000 * 125 / (100 * n) + 1);
	}
}

/* ---- empty pool ----------------------------------------------------- */

static void test_empty_pool(void **state)
{
	(void)state;
	struct tpool *t = tpool_new(0, NULL);

	assert_null(t->pool.state);
	assert_int_equal(pick(t, 0, 0), -1);
	assert_int_equal(pick(t, 12345, 0), -1);
	t->pool.balance_factor_pct = 125;
	assert_int_equal(pick(t, 12345, 0), -1);
	tpool_free(t);
}

static void test_find(void **state)
{
	(void)state;
	assert_ptr_equal(balancer_find("hash"), &balancer_hash);
	assert_ptr_equal(balancer_find("ip_hash"), &balancer_hash);
	assert_string_equal(balancer_hash.name, "hash");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_table_size),
	        cmocka_unit_test(test_build_1_and_1000),
	        cmocka_unit_test(test_balance),
	        cmocka_unit_test(test_weights),
	        cmocka_unit_test(test_disruption_remove),
	        cmocka_unit_test(test_disruption_add_same_size),
	        cmocka_unit_test(test_disruption_add_eleventh),
	        cmocka_unit_test(test_deterministic),
	        cmocka_unit_test(test_exclusion),
	        cmocka_unit_test(test_bounded_passes_over),
	        cmocka_unit_test(test_bounded_simulation),
	        cmocka_unit_test(test_empty_pool),
	        cmocka_unit_test(test_find),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
