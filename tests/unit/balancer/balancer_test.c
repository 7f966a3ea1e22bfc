/* tests/unit/balancer/balancer_test.c — the registry and the shared inline
 * helpers of balancer.h: algorithm names, exclusion (tried, backup, down),
 * the slow-start ramp and the per-shard random generator.
 * Method: small hand-built pools; no clock is read. */
#include "balancer/balancer.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

static void test_registry(void **state)
{
	static const char *const names[] = {
	        "round_robin", "weighted_round_robin", "least_conn", "weighted_least_conn",
	        "random_two",  "least_time",           "hash"};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_non_null(balancer_find(names[i]));
		assert_string_equal(balancer_find(names[i])->name, names[i]);
		assert_non_null(strstr(balancer_names(), names[i]));
	}
	assert_ptr_equal(balancer_find("ip_hash"), &balancer_hash);
	assert_null(balancer_find("fastest"));
	assert_null(balancer_find(""));
}

static void test_slow_start_ramp(void **state)
{
	(void)state;
	/* No ramp configured, or in service since start-up: full share. */
	assert_int_equal(lb_slow_start_permille(5000, 4000, 0), 1000);
	assert_int_equal(lb_slow_start_permille(5000, 0, 10000), 1000);
	/* Linear over the ramp, never below 10%. */
	assert_int_equal(lb_slow_start_permille(4000, 4000, 10000), 100);
	assert_int_equal(lb_slow_start_permille(4500, 4000, 10000), 100);
	assert_int_equal(lb_slow_start_permille(6000, 4000, 10000), 200);
	assert_int_equal(lb_slow_start_permille(9000, 4000, 10000), 500);
	assert_int_equal(lb_slow_start_permille(13999, 4000, 10000), 999);
	assert_int_equal(lb_slow_start_permille(14000, 4000, 10000), 1000);
	/* A clock read before the mark (another thread set it): the floor. */
	assert_int_equal(lb_slow_start_permille(3000, 4000, 10000), 100);
}

static void test_excluded(void **state)
{
	struct lb_backend b[3] = {{.uid = 0}, {.uid = 1, .backup = true}, {.uid = 2}};
	struct lb_live *live = aligned_alloc(LB_CACHELINE, 3 * sizeof(*live));
	struct lb_pool pool = {.backends = b, .num_backends = 3};
	struct lb_ctx ctx = {0};

	(void)state;
	assert_non_null(live);
	memset(live, 0, 3 * sizeof(*live));
	assert_false(lb_excluded(&pool, &ctx, 0));
	assert_true(lb_excluded(&pool, &ctx, 1)); /* a backup, outside a backup round */
	ctx.exclude = 1u << 2;
	assert_true(lb_excluded(&pool, &ctx, 2)); /* tried */
	ctx.exclude = 0;
	pool.live = live;
	atomic_store(&live[2].down, LB_DOWN_ACTIVE | LB_DOWN_PASSIVE);
	assert_true(lb_excluded(&pool, &ctx, 2));
	ctx.ignore_down = true;
	assert_false(lb_excluded(&pool, &ctx, 2));
	ctx.backups = true;
	assert_false(lb_excluded(&pool, &ctx, 1));
	assert_true(lb_excluded(&pool, &ctx, 0));
	/* max_conns: full at the limit, usable below it, whatever the round. */
	ctx.backups = false;
	b[0].max_conns = 2;
	atomic_store(&live[0].active, 2);
	assert_true(lb_excluded(&pool, &ctx, 0));
	atomic_store(&live[0].active, 1);
	assert_false(lb_excluded(&pool, &ctx, 0));
	free(live);
}

static void test_random_spread(void **state)
{
	struct lb_local local = {0};
	uint32_t count[8] = {0};

	(void)state;
	for (int i = 0; i < 80000; i++)
		count[lb_random(&local) % 8]++;
	for (int i = 0; i < 8; i++)
		assert_true(count[i] > 9000 && count[i] < 11000);
	assert_int_not_equal(local.rng, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_registry),
	        cmocka_unit_test(test_slow_start_ramp),
	        cmocka_unit_test(test_excluded),
	        cmocka_unit_test(test_random_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
