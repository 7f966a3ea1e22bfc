/* tests/unit/core/budget_test.c — the retry budget's arithmetic.
 *
 * Goal: retries stay within max(min, ratio% of the window's requests),
 * counts leave the window as it slides, and a long pause empties it.
 * Method: drive budget.c with explicit times; nothing reads a clock. */
#include "core/budget.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static uint32_t grant(struct retry_budget *b, uint64_t now, uint32_t pct, uint32_t min,
                      uint32_t asks)
{
	uint32_t yes = 0;

	for (uint32_t i = 0; i < asks; i++)
		yes += budget_try_retry(b, now, pct, min);
	return yes;
}

static void test_ratio_of_requests(void **state)
{
	struct retry_budget b;

	(void)state;
	budget_init(&b, 10000, 0);
	for (int i = 0; i < 100; i++)
		budget_note_request(&b, 500);
	/* 20% of 100 requests: 20 retries, not one more. */
	assert_int_equal(grant(&b, 600, 20, 0, 50), 20);
	assert_false(budget_try_retry(&b, 700, 20, 0));
	/* 10 more requests: 2 more retries. */
	for (int i = 0; i < 10; i++)
		budget_note_request(&b, 800);
	assert_int_equal(grant(&b, 900, 20, 0, 10), 2);
}

static void test_minimum_without_requests(void **state)
{
	struct retry_budget b;

	(void)state;
	budget_init(&b, 10000, 0);
	assert_int_equal(grant(&b, 10, 20, 3, 10), 3);
	/* A ratio of 0 means no budget at all. */
	assert_int_equal(grant(&b, 10, 0, 0, 1000), 1000);
}

static void test_window_slides(void **state)
{
	struct retry_budget b;

	(void)state;
	budget_init(&b, 10000, 0); /* ten buckets of one second */
	for (int i = 0; i < 100; i++)
		budget_note_request(&b, 100);
	assert_int_equal(grant(&b, 200, 10, 0, 100), 10);
	/* 5 s later: the same bucket is still in the window. */
	assert_false(budget_try_retry(&b, 5200, 10, 0));
	/* 10 s later the first bucket left the window: no requests, no retries. */
	assert_false(budget_try_retry(&b, 10100, 10, 0));
	assert_int_equal(grant(&b, 10100, 10, 2, 10), 2);
	for (int i = 0; i < 50; i++)
		budget_note_request(&b, 10500);
	assert_int_equal(grant(&b, 10500, 10, 0, 10), 3); /* 5 allowed, 2 used */
}

static void test_long_pause_empties(void **state)
{
	struct retry_budget b;

	(void)state;
	budget_init(&b, 1000, 0);
	for (int i = 0; i < 1000; i++)
		budget_note_request(&b, 50);
	assert_int_equal(grant(&b, 60, 50, 0, 1000), 500);
	/* An hour later every bucket was cleared exactly once. */
	assert_false(budget_try_retry(&b, 3600000, 50, 0));
	for (int i = 0; i < 10; i++)
		budget_note_request(&b, 3600000);
	assert_int_equal(grant(&b, 3600001, 50, 0, 10), 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ratio_of_requests),
	        cmocka_unit_test(test_minimum_without_requests),
	        cmocka_unit_test(test_window_slides),
	        cmocka_unit_test(test_long_pause_empties),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
