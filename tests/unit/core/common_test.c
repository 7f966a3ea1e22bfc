/* tests/unit/core/common_test.c — the shared helpers of core/common.c.
 *
 * Goal: rlb_json_text makes any configured string safe inside a JSON
 * string (quotes, backslashes, control bytes, bytes beyond ASCII) and never
 * writes past its buffer; the clocks move forward.
 * Method: exact expected strings; truncation into small buffers that ASan
 * bounds exactly (heap copies of the buffer size). */
#include "core/common.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_json_text_escapes(void **state)
{
	char out[128];

	(void)state;
	assert_string_equal(rlb_json_text(out, sizeof(out), "/plain/path?x=1"), "/plain/path?x=1");
	assert_string_equal(rlb_json_text(out, sizeof(out), "/q\"x\\y/"), "/q\\\"x\\\\y/");
	assert_string_equal(rlb_json_text(out, sizeof(out), "a\tb\x01"), "a\\u0009b\\u0001");
	assert_string_equal(rlb_json_text(out, sizeof(out), "/caf\xc3\xa9\x7f"),
	                    "/caf\\u00c3\\u00a9\\u007f");
	assert_string_equal(rlb_json_text(out, sizeof(out), ""), "");
}

/* A short buffer gets a NUL-terminated prefix that never splits an escape. */
static void test_json_text_truncates(void **state)
{
	(void)state;
	for (size_t cap = 1; cap < 40; cap++) {
		char *out = malloc(cap);

		assert_non_null(out);
		rlb_json_text(out, cap,
		              "\"\"\"\"\"\x01\x02\x03"
		              "abcdefghij\\\\\\");
		assert_true(strlen(out) < cap);
		/* no escape is cut: every backslash starts a whole escape */
		for (const char *p = out; *p != '\0'; p++) {
			if (*p != '\\')
				continue;
			assert_true(p[1] == '"' || p[1] == '\\' || (p[1] == 'u' && strlen(p) >= 6));
			p += p[1] == 'u' ? 5 : 1;
		}
		free(out);
	}
}

static void test_clocks(void **state)
{
	uint64_t a = rlb_now_us(), b;

	(void)state;
	b = rlb_now_us();
	assert_true(b >= a);
	assert_true(rlb_now_ms() >= a / 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_json_text_escapes),
	        cmocka_unit_test(test_json_text_truncates),
	        cmocka_unit_test(test_clocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
