/* tests/unit/cache/rules_test.c — unit tests for cache/rules.c.
 *
 * Goal: the caching rules keep the promises of their header and of the
 * RFCs they cite. Cache-Control parsing is case-insensitive, tolerates
 * spaces, quoted arguments (commas inside them included), garbage and
 * overflow, and folds repeats to the most restrictive value; HTTP-dates
 * parse in all three forms of RFC 9110 §5.6.7, reject malformed ones, and
 * round-trip through the formatter; freshness comes from s-maxage, max-age,
 * Expires - Date or (only when allowed) the heuristic, in that order; ages
 * follow RFC 9111 §4.2.3; every storability rule of §3 and §3.5 refuses
 * with its own reason; cache_decide answers fresh, stale-while-revalidate
 * or revalidate for each request and response directive; stale-if-error
 * windows open and close where they should; If-None-Match and
 * If-Modified-Since evaluate as RFC 9110 §13 says; keys and Vary
 * signatures come out byte-exact, and refuse what does not fit.
 *
 * Method: the module is #included so its static helpers (list_next,
 * parse_delta, the calendar functions) can be reached. Inputs are literal
 * header arrays; times are fixed epoch seconds, never the clock. A
 * fixed-seed generator feeds random bytes to the parsers for a short
 * robustness run (ASan/UBSan catch any stray read). No timing assertions.
 */
#include "cache/rules.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S(lit) ((struct h1_str){(lit), sizeof(lit) - 1})
#define HDR(n, v)                                                                                  \
	{                                                                                          \
		{(n), sizeof(n) - 1},                                                              \
		{                                                                                  \
			(v), sizeof(v) - 1                                                         \
		}                                                                                  \
	}

#define T_1994 784111777ll /* Sun, 06 Nov 1994 08:49:37 GMT */

static const struct cache_rules_cfg cfg_default = {
        .heuristic = false,
        .heuristic_percent = 10,
        .heuristic_max = 86400,
        .store_set_cookie = false,
};

static const struct cache_rules_cfg cfg_heuristic = {
        .heuristic = true,
        .heuristic_percent = 10,
        .heuristic_max = 86400,
        .store_set_cookie = false,
};

static struct cc cc_of(const char *v)
{
	struct cc d;

	cc_init(&d);
	cc_parse(&d, v, strlen(v));
	return d;
}

static struct cache_resp_info resp_of(int status, const struct h1_header *h, size_t n)
{
	struct cache_resp_info rs;

	cache_resp_from_headers(&rs, status, h, n);
	return rs;
}

/* resp_cc is a response with only a Cache-Control value and a Date. */
static struct cache_resp_info resp_cc(int status, const char *cc, int64_t date)
{
	struct cache_resp_info rs = resp_of(status, NULL, 0);

	cc_parse(&rs.cc, cc, strlen(cc));
	rs.date = date;
	return rs;
}

static struct cache_req_info req_cc(const char *cc)
{
	struct cache_req_info rq;
	struct h1_header h[1] = {{S("Cache-Control"), {cc, strlen(cc)}}};

	cache_req_from_headers(&rq, h, cc[0] != '\0' ? 1 : 0);
	return rq;
}

static int64_t date_of(const char *s)
{
	return http_date_parse(s, strlen(s));
}

/* --- Cache-Control --- */

static void test_cc_flags_case_spaces(void **state)
{
	(void)state;
	struct cc d = cc_of("No-Store ,\tPRIVATE,public , Must-Revalidate,proxy-revalidate,"
	                    "NO-TRANSFORM,only-if-cached,  immutable  ,no-cache");

	assert_int_equal(d.flags, CC_NO_STORE | CC_NO_CACHE | CC_PRIVATE | CC_PUBLIC |
	                                  CC_MUST_REVALIDATE | CC_PROXY_REVALIDATE |
	                                  CC_NO_TRANSFORM | CC_ONLY_IF_CACHED | CC_IMMUTABLE);
	assert_int_equal(d.max_age, CC_UNSET);
	assert_int_equal(d.s_maxage, CC_UNSET);
	assert_int_equal(d.stale_while_revalidate, CC_UNSET);
	assert_int_equal(d.stale_if_error, CC_UNSET);
	assert_int_equal(d.max_stale, CC_UNSET);
	assert_int_equal(d.min_fresh, CC_UNSET);

	d = cc_of("MAX-AGE=60, S-MaxAge=120");
	assert_int_equal(d.flags, 0);
	assert_int_equal(d.max_age, 60);
	assert_int_equal(d.s_maxage, 120);
	d = cc_of("max-age = 5"); /* spaces around "=": tolerated */
	assert_int_equal(d.max_age, 5);
	d = cc_of("nostore, no_cache, privately"); /* near misses are unknown */
	assert_int_equal(d.flags, 0);
}

static void test_cc_quoted(void **state)
{
	(void)state;
	struct cc d = cc_of("private=\"Set-Cookie, X-Foo\", max-age=60");

	assert_int_equal(d.flags, CC_PRIVATE);
	assert_int_equal(d.max_age, 60);
	/* Qualified no-cache counts as no-cache (stricter). */
	d = cc_of("no-cache=\"Set-Cookie,Authorization\",s-maxage=10");
	assert_int_equal(d.flags, CC_NO_CACHE);
	assert_int_equal(d.s_maxage, 10);
	/* Recipients accept the quoted form of delta-seconds (§5.2). */
	d = cc_of("max-age=\"30\", stale-if-error=\"7\"");
	assert_int_equal(d.max_age, 30);
	assert_int_equal(d.stale_if_error, 7);
	/* An unknown directive's quoted argument may hold commas and escapes. */
	d = cc_of("community=\"UCI, public\", ext=\"a\\\"b,no-store\", max-age=9");
	assert_int_equal(d.flags, 0);
	assert_int_equal(d.max_age, 9);
	/* An unterminated quote swallows the rest: max-age invalid, so stale. */
	d = cc_of("max-age=\"5, public");
	assert_int_equal(d.flags, 0);
	assert_int_equal(d.max_age, 0);
	/* Something after the closing quote spoils the argument. */
	d = cc_of("max-age=\"5\"x");
	assert_int_equal(d.max_age, 0);
}

static void test_cc_deltas(void **state)
{
	(void)state;
	struct cc d = cc_of("max-age=0, s-maxage=86400, stale-while-revalidate=30, "
	                    "stale-if-error=600, min-fresh=5, max-stale=10");

	assert_int_equal(d.max_age, 0);
	assert_int_equal(d.s_maxage, 86400);
	assert_int_equal(d.stale_while_revalidate, 30);
	assert_int_equal(d.stale_if_error, 600);
	assert_int_equal(d.min_fresh, 5);
	assert_int_equal(d.max_stale, 10);
	d = cc_of("max-stale");
	assert_true(d.max_stale == INT64_MAX);
	d = cc_of("max-age=007");
	assert_int_equal(d.max_age, 7);
}

static void test_cc_invalid(void **state)
{
	(void)state;
	static const char *const stale[] = {"max-age=abc", "max-age=-1", "max-age",
	                                    "max-age=",    "max-age=5x", "max-age=5 junk",
	                                    "max-age=+3",  "max-age=1.5"};

	/* RFC 9111 §4.2.1: invalid freshness information means stale. */
	for (size_t i = 0; i < RLB_ARRAY_LEN(stale); i++) {
		struct cc d = cc_of(stale[i]);

		assert_int_equal(d.max_age, 0);
	}
	assert_int_equal(cc_of("s-maxage=x").s_maxage, 0);
	assert_int_equal(cc_of("s-maxage").s_maxage, 0);
	/* Directives that only relax are ignored when invalid. */
	assert_int_equal(cc_of("stale-while-revalidate=abc").stale_while_revalidate, CC_UNSET);
	assert_int_equal(cc_of("stale-while-revalidate").stale_while_revalidate, CC_UNSET);
	assert_int_equal(cc_of("stale-if-error=-5").stale_if_error, CC_UNSET);
	assert_int_equal(cc_of("min-fresh=-1").min_fresh, CC_UNSET);
	assert_int_equal(cc_of("max-stale=x").max_stale, CC_UNSET);
	assert_int_equal(cc_of("max-stale junk").max_stale, CC_UNSET);
	/* A flag followed by garbage still counts (the restrictive reading). */
	assert_int_equal(cc_of("no-store junk").flags, CC_NO_STORE);
}

static void test_cc_overflow(void **state)
{
	(void)state;
	/* RFC 9111 §1.2.2: too large becomes 2^31. */
	assert_int_equal(cc_of("max-age=2147483647").max_age, 2147483647);
	assert_int_equal(cc_of("max-age=2147483648").max_age, CC_DELTA_MAX);
	assert_int_equal(cc_of("max-age=2147483649").max_age, CC_DELTA_MAX);
	assert_int_equal(cc_of("max-age=99999999999999999999999999999999").max_age, CC_DELTA_MAX);
	assert_int_equal(cc_of("s-maxage=18446744073709551617").s_maxage, CC_DELTA_MAX);
	assert_int_equal(cc_of("max-stale=9223372036854775808").max_stale, CC_DELTA_MAX);
}

static void test_cc_duplicates(void **state)
{
	(void)state;
	struct cc d = cc_of("max-age=60, max-age=30, max-age=90");

	assert_int_equal(d.max_age, 30);
	cc_parse(&d, "max-age=10", 10); /* a second field line folds in */
	assert_int_equal(d.max_age, 10);
	assert_int_equal(cc_of("max-age=60, max-age=bad").max_age, 0);
	assert_int_equal(cc_of("min-fresh=5, min-fresh=10").min_fresh, 10);
	assert_int_equal(cc_of("max-stale, max-stale=5").max_stale, 5);
	assert_int_equal(cc_of("max-stale=5, max-stale").max_stale, 5);
	assert_int_equal(cc_of("stale-if-error=50, stale-if-error=20").stale_if_error, 20);
	assert_int_equal(cc_of("public, public").flags, CC_PUBLIC);
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void test_cc_garbage(void **state)
{
	(void)state;
	static const char alphabet[] = "max-age=\"\\, \t;=0123456789no-cachepublicW/*\x01\xff";
	struct cc d = cc_of(",,, ;;; =5, \"quoted\", =, \"no-store\", no-store,");
	uint64_t seed = 42;
	char buf[48];

	assert_int_equal(d.flags, CC_NO_STORE);
	assert_int_equal(d.max_age, CC_UNSET);
	d = cc_of("");
	assert_int_equal(d.flags, 0);
	cc_parse(&d, NULL, 0);
	assert_int_equal(d.flags, 0);
	/* Random bytes: no crash, no stray read, values in range. */
	for (int i = 0; i < 20000; i++) {
		size_t n = splitmix64(&seed) % sizeof(buf);
		struct cache_resp_info rs;
		struct h1_header h[2];

		for (size_t j = 0; j < n; j++)
			buf[j] = alphabet[splitmix64(&seed) % (sizeof(alphabet) - 1)];
		cc_init(&d);
		cc_parse(&d, buf, n);
		assert_true(d.max_age >= CC_UNSET && d.max_age <= CC_DELTA_MAX);
		assert_true(d.min_fresh >= CC_UNSET && d.min_fresh <= CC_DELTA_MAX);
		h[0] = (struct h1_header){S("Vary"), {buf, n}};
		h[1] = (struct h1_header){S("Expires"), {buf, n}};
		rs = resp_of(200, h, 2);
		assert_true(rs.expires >= 0);
		(void)cache_not_modified(buf, n, buf, n, buf, n, 1, 1);
		(void)http_date_parse(buf, n);
	}
}

static void test_list_next(void **state)
{
	(void)state;
	struct h1_str rest = S(" a ,, \"b,c\" ,d,"), e;

	assert_true(list_next(&rest, &e));
	assert_int_equal(e.len, 1);
	assert_memory_equal(e.ptr, "a", 1);
	assert_true(list_next(&rest, &e));
	assert_int_equal(e.len, 0);
	assert_true(list_next(&rest, &e));
	assert_int_equal(e.len, 5);
	assert_memory_equal(e.ptr, "\"b,c\"", 5);
	assert_true(list_next(&rest, &e));
	assert_memory_equal(e.ptr, "d", 1);
	assert_false(list_next(&rest, &e));
}

/* --- dates --- */

static void test_date_formats(void **state)
{
	(void)state;
	assert_int_equal(date_of("Sun, 06 Nov 1994 08:49:37 GMT"), T_1994);
	assert_int_equal(date_of("Sunday, 06-Nov-94 08:49:37 GMT"), T_1994);
	assert_int_equal(date_of("Sun Nov  6 08:49:37 1994"), T_1994);
	assert_int_equal(date_of("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
	assert_int_equal(date_of("Tue, 29 Feb 2000 12:00:00 GMT"), 951825600);
	assert_int_equal(date_of("Wed Nov 16 08:49:37 1994"), T_1994 + 10 * 86400);
	assert_int_equal(date_of("Wednesday, 01-Jan-20 00:00:00 GMT"), 1577836800);
	assert_int_equal(date_of("Thursday, 01-Jan-70 00:00:00 GMT"), 0);
	assert_int_equal(date_of("Friday, 31-Dec-99 23:59:59 GMT"), 946684799);
	assert_int_equal(date_of("Fri, 31 Dec 9999 23:59:59 GMT"), 253402300799ll);
	/* A leap second counts as the next minute's 0. */
	assert_int_equal(date_of("Sat, 31 Dec 2016 23:59:60 GMT"), 1483228800);
	/* The day name is checked to be one, not to agree. */
	assert_int_equal(date_of("Mon, 06 Nov 1994 08:49:37 GMT"), T_1994);
	/* Before 1970: 0, so -1 stays the only "invalid". */
	assert_int_equal(date_of("Sat, 01 Jan 1966 00:00:00 GMT"), 0);
	assert_int_equal(date_of("Wed, 31 Dec 1969 23:59:59 GMT"), 0);
}

static void test_date_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
	        "",
	        "0",
	        "-1",
	        "Sun, 06 Foo 1994 08:49:37 GMT",
	        "sun, 06 Nov 1994 08:49:37 GMT",
	        "Sun, 06 nov 1994 08:49:37 GMT",
	        "Sun, 06 Nov 1994 08:49:37 UTC",
	        "Sun, 06 Nov 1994 08:49:37 GMT ",
	        " Sun, 06 Nov 1994 08:49:37 GMT",
	        "Sun, 6 Nov 1994 08:49:37 GMT",
	        "Sun 06 Nov 1994 08:49:37 GMT",
	        "Sun, 06-Nov-1994 08:49:37 GMT",
	        "Sun, 31 Apr 1994 08:49:37 GMT",
	        "Sun, 29 Feb 1900 08:49:37 GMT",
	        "Sun, 00 Nov 1994 08:49:37 GMT",
	        "Sun, 06 Nov 1994 24:00:00 GMT",
	        "Sun, 06 Nov 1994 08:60:00 GMT",
	        "Sun, 06 Nov 1994 08:49:61 GMT",
	        "Sun, 06 Nov 1994 08.49.37 GMT",
	        "Sun, 06 Nov 19x4 08:49:37 GMT",
	        "Sunday, 06-Nov-94 08:49:37 UTC",
	        "Sonday, 06-Nov-94 08:49:37 GMT",
	        "Sunday, 06 Nov 94 08:49:37 GMT",
	        "Sunday, 06-Nov-9x 08:49:37 GMT",
	        "Sunday,06-Nov-94 08:49:37 GMT",
	        "Sun Nov 6 08:49:37 1994",
	        "Sun Nov  6 08:49:37 1994 ",
	        "Sun Nov 06 08:49:37 94  ",
	        "Sun Nov  x 08:49:37 1994",
	        "Sun Nov   08:49:37 1994",
	        "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
	};

	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++) {
		if (date_of(bad[i]) != -1)
			fail_msg("parsed \"%s\"", bad[i]);
	}
	assert_int_equal(http_date_parse(NULL, 0), -1);
}

static void test_date_round_trip(void **state)
{
	(void)state;
	char out[32];
	uint64_t seed = 7;

	assert_int_equal(http_date_format(T_1994, out), 29);
	assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
	http_date_format(0, out);
	assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
	http_date_format(951825600, out);
	assert_string_equal(out, "Tue, 29 Feb 2000 12:00:00 GMT");
	/* Clamped to four-digit years. */
	http_date_format(-5, out);
	assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
	http_date_format(INT64_MAX, out);
	assert_string_equal(out, "Fri, 31 Dec 9999 23:59:59 GMT");
	for (int i = 0; i < 20000; i++) {
		int64_t t = (int64_t)(splitmix64(&seed) % 253402300800ull);
		int64_t y;
		int m, d;

		assert_int_equal(http_date_format(t, out), 29);
		assert_int_equal(strlen(out), 29);
		assert_int_equal(http_date_parse(out, 29), t);
		civil_from_days(t / 86400, &y, &m, &d);
		assert_int_equal(days_from_civil(y, m, d), t / 86400);
	}
}

/* --- what messages say --- */

static void test_resp_from_headers(void **state)
{
	(void)state;
	const struct h1_header h[] = {
	        HDR("Cache-Control", "public, max-age=600"),
	        HDR("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
	        HDR("EXPIRES", "Sun, 06 Nov 1994 09:49:37 GMT"),
	        HDR("Expires", "Sun, 06 Nov 1994 09:00:00 GMT"),
	        HDR("Last-Modified", "Sat, 05 Nov 1994 08:49:37 GMT"),
	        HDR("Age", "12"),
	        HDR("Age", "nonsense"),
	        HDR("Set-Cookie", "a=b"),
	        HDR("Vary", "Accept, *"),
	        HDR("cache-control", "max-age=300, must-revalidate"),
	        HDR("Date", "Mon, 07 Nov 1994 08:49:37 GMT"),
	};
	struct cache_resp_info rs = resp_of(200, h, RLB_ARRAY_LEN(h));

	assert_int_equal(rs.status, 200);
	assert_int_equal(rs.cc.flags, CC_PUBLIC | CC_MUST_REVALIDATE);
	assert_int_equal(rs.cc.max_age, 300);
	assert_int_equal(rs.date, T_1994); /* the first */
	assert_true(rs.has_expires);
	assert_int_equal(rs.expires, T_1994 + 623); /* the earliest */
	assert_int_equal(rs.last_modified, T_1994 - 86400);
	assert_int_equal(rs.age, 12);
	assert_true(rs.has_set_cookie);
	assert_true(rs.vary_star);

	const struct h1_header h2[] = {
	        HDR("Expires", "0"),
	        HDR("Date", "yesterday"),
	        HDR("Vary", "Accept-Encoding"),
	        HDR("Age", "99999999999"),
	};
	rs = resp_of(404, h2, RLB_ARRAY_LEN(h2));
	assert_true(rs.has_expires);
	assert_int_equal(rs.expires, 0); /* invalid: already expired (RFC 9111 §5.3) */
	assert_int_equal(rs.date, -1);
	assert_int_equal(rs.last_modified, -1);
	assert_int_equal(rs.age, CC_DELTA_MAX);
	assert_false(rs.has_set_cookie);
	assert_false(rs.vary_star);

	rs = resp_of(204, NULL, 0);
	assert_false(rs.has_expires);
	assert_int_equal(rs.expires, -1);
	assert_int_equal(rs.age, -1);
	assert_int_equal(rs.cc.max_age, CC_UNSET);
}

static void test_req_from_headers(void **state)
{
	(void)state;
	const struct h1_header h1[] = {HDR("Pragma", "foo, No-Cache"), HDR("Authorization", "x")};
	const struct h1_header h2[] = {HDR("Pragma", "no-cache"),
	                               HDR("Cache-Control", "max-age=5")};
	const struct h1_header h3[] = {HDR("Pragma", "no-cachex"),
	                               HDR("cache-control", "no-cache, max-stale")};
	struct cache_req_info rq;

	cache_req_from_headers(&rq, h1, RLB_ARRAY_LEN(h1));
	assert_true(rq.pragma_no_cache);
	assert_true(rq.authorization);
	assert_int_equal(rq.cc.flags, 0);
	/* RFC 9111 §5.4: Pragma is ignored beside Cache-Control. */
	cache_req_from_headers(&rq, h2, RLB_ARRAY_LEN(h2));
	assert_false(rq.pragma_no_cache);
	assert_false(rq.authorization);
	assert_int_equal(rq.cc.max_age, 5);
	cache_req_from_headers(&rq, h3, RLB_ARRAY_LEN(h3));
	assert_false(rq.pragma_no_cache);
	assert_int_equal(rq.cc.flags, CC_NO_CACHE);
	assert_true(rq.cc.max_stale == INT64_MAX);
	cache_req_from_headers(&rq, NULL, 0);
	assert_false(rq.pragma_no_cache);
	assert_false(rq.authorization);
}

/* --- freshness and age --- */

static void test_freshness_sources(void **state)
{
	(void)state;
	const struct h1_header h[] = {
	        HDR("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
	        HDR("Expires", "Sun, 06 Nov 1994 09:49:37 GMT"),
	        HDR("Cache-Control", "max-age=600, s-maxage=60"),
	};
	struct cache_resp_info rs = resp_of(200, h, 3);

	/* §4.2.1: s-maxage, then max-age, then Expires - Date. */
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_default), 60);
	rs.cc.s_maxage = CC_UNSET;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_default), 600);
	rs.cc.max_age = CC_UNSET;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_default), 3600);
	rs.cc.max_age = 0;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_default), 0);
	rs.cc.max_age = CC_UNSET;
	rs.expires = T_1994 - 10; /* before Date */
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_default), 0);
	rs.date = -1; /* the caller did not set it: nothing anchors Expires */
	rs.expires = T_1994 + 10;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_default), 0);
	rs.has_expires = false;
	rs.date = T_1994;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_default), 0);
	assert_int_equal(cache_freshness_lifetime(&rs, NULL), 0);

	/* An invalid Expires is explicit and already expired. */
	const struct h1_header bad[] = {HDR("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
	                                HDR("Expires", "-1"),
	                                HDR("Last-Modified", "Sun, 06 Nov 1994 00:00:00 GMT")};
	rs = resp_of(200, bad, 3);
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_heuristic), 0);
	struct cache_req_info rq = req_cc("");
	assert_null(cache_unstorable(&rq, &rs, &cfg_default));
}

static void test_freshness_heuristic(void **state)
{
	(void)state;
	const struct h1_header h[] = {
	        HDR("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
	        HDR("Last-Modified", "Sun, 06 Nov 1994 06:49:37 GMT"), /* 2 h before */
	};
	struct cache_resp_info rs = resp_of(200, h, 2);
	struct cache_rules_cfg cfg = cfg_heuristic;

	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_default), 0);
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg), 720); /* 10% of 7200 */
	cfg.heuristic_max = 100;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg), 100);
	cfg = cfg_heuristic;
	cfg.heuristic_percent = UINT32_MAX; /* saturates, then the cap */
	rs.last_modified = 0;
	rs.date = 253402300799ll;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg), 86400);
	rs = resp_of(200, h, 2);
	/* Not heuristically cacheable, unless public (§4.2.2). */
	rs.status = 302;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_heuristic), 0);
	rs.cc.flags |= CC_PUBLIC;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_heuristic), 720);
	rs.status = 404;
	rs.cc.flags = 0;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_heuristic), 720);
	/* Explicit freshness beats the heuristic. */
	rs.cc.max_age = 5;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_heuristic), 5);
	rs.cc.max_age = CC_UNSET;
	/* Last-Modified after Date, or none: no heuristic. */
	rs.last_modified = rs.date + 1;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_heuristic), 0);
	rs.last_modified = -1;
	assert_int_equal(cache_freshness_lifetime(&rs, &cfg_heuristic), 0);
}

static void test_initial_age(void **state)
{
	(void)state;
	struct cache_resp_info rs = resp_of(200, NULL, 0);

	/* No Date, no Age: only the response delay. */
	assert_int_equal(cache_initial_age(&rs, 1000, 1003), 3);
	/* A response "received" before its request (clock step): no delay. */
	assert_int_equal(cache_initial_age(&rs, 1003, 1000), 0);
	/* Age plus the delay. */
	rs.age = 50;
	assert_int_equal(cache_initial_age(&rs, 1000, 1003), 53);
	/* apparent_age wins when Date is further back. */
	rs.date = 900;
	assert_int_equal(cache_initial_age(&rs, 1000, 1003), 103);
	/* A Date in the future gives apparent_age 0. */
	rs.date = 5000;
	assert_int_equal(cache_initial_age(&rs, 1000, 1003), 53);
	/* Saturates rather than wraps. */
	rs.age = INT64_MAX - 1;
	assert_true(cache_initial_age(&rs, 0, INT64_MAX) == INT64_MAX);
}

static void test_current_age(void **state)
{
	(void)state;
	const struct h1_header h[] = {
	        HDR("Date", "Sun, 06 Nov 1994 08:49:37 GMT"), HDR("Age", "20"),
	        HDR("Cache-Control", "max-age=100, stale-if-error=9, "
	                             "stale-while-revalidate=8, s-maxage=90")};
	struct cache_resp_info rs = resp_of(200, h, RLB_ARRAY_LEN(h));
	struct cache_times t;

	cache_times_init(&t, &rs, &cfg_default, T_1994 + 5, T_1994 + 7);
	assert_int_equal(t.initial_age, 22); /* Age 20 + 2 s delay > apparent 7 */
	assert_int_equal(t.response_time, T_1994 + 7);
	assert_int_equal(t.lifetime, 90);
	assert_int_equal(t.swr, 8);
	assert_int_equal(t.sie, 9);
	assert_int_equal(t.flags, CC_PROXY_REVALIDATE); /* implied by s-maxage */
	assert_int_equal(cache_current_age(&t, T_1994 + 7), 22);
	assert_int_equal(cache_current_age(&t, T_1994 + 107), 122);
	assert_int_equal(cache_current_age(&t, T_1994), 22); /* now before response */
	t.response_time = INT64_MIN;                         /* saturates rather than wraps */
	assert_true(cache_current_age(&t, INT64_MAX) == INT64_MAX);
}

/* --- storability --- */

static void test_store_status(void **state)
{
	(void)state;
	struct cache_req_info rq = req_cc("");
	struct cache_resp_info rs = resp_cc(200, "max-age=60", 1);
	static const int ok[] = {200, 201, 203, 204, 300, 301, 302, 307, 308,
	                         400, 404, 410, 418, 500, 501, 503, 599};

	for (size_t i = 0; i < RLB_ARRAY_LEN(ok); i++) {
		rs.status = ok[i];
		assert_null(cache_unstorable(&rq, &rs, &cfg_default));
	}
	rs.status = 100;
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "interim status");
	rs.status = 103;
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "interim status");
	rs.status = 206;
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "status not understood");
	rs.status = 304;
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "status not understood");
	rs.status = 600;
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "status not understood");
}

static void test_store_directives(void **state)
{
	(void)state;
	struct cache_req_info rq = req_cc("no-store");
	struct cache_resp_info rs = resp_cc(200, "max-age=60", 1);

	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "request no-store");
	rq = req_cc("no-cache");
	assert_null(cache_unstorable(&rq, &rs, &cfg_default));
	rs = resp_cc(200, "max-age=60, No-Store", 1);
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "no-store");
	rs = resp_cc(200, "max-age=60, private", 1);
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "private");
	rs = resp_cc(200, "max-age=60, private=\"Set-Cookie\"", 1);
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "private");
	rs = resp_cc(200, "public, private, max-age=60", 1);
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "private");
}

static void test_store_authorization(void **state)
{
	(void)state;
	struct cache_req_info rq = req_cc("");
	struct cache_resp_info rs = resp_cc(200, "max-age=60", 1);

	rq.authorization = true;
	/* §3.5: only with must-revalidate, public or s-maxage. */
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "authorization");
	rs = resp_cc(200, "max-age=60, must-revalidate", 1);
	assert_null(cache_unstorable(&rq, &rs, &cfg_default));
	rs = resp_cc(200, "max-age=60, public", 1);
	assert_null(cache_unstorable(&rq, &rs, &cfg_default));
	rs = resp_cc(200, "s-maxage=60", 1);
	assert_null(cache_unstorable(&rq, &rs, &cfg_default));
	rs = resp_cc(200, "max-age=60, proxy-revalidate", 1);
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "authorization");
}

static void test_store_cookie_vary(void **state)
{
	(void)state;
	struct cache_req_info rq = req_cc("");
	const struct h1_header h[] = {HDR("Cache-Control", "max-age=60"), HDR("Set-Cookie", "s=1")};
	const struct h1_header hv[] = {HDR("Cache-Control", "max-age=60"), HDR("Vary", "*")};
	struct cache_resp_info rs = resp_of(200, h, 2);
	struct cache_rules_cfg cfg = cfg_default;

	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "set-cookie");
	assert_string_equal(cache_unstorable(&rq, &rs, NULL), "set-cookie");
	cfg.store_set_cookie = true;
	assert_null(cache_unstorable(&rq, &rs, &cfg));
	rs = resp_of(200, hv, 2);
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "vary *");
}

static void test_store_freshness(void **state)
{
	(void)state;
	struct cache_req_info rq = req_cc("");
	struct cache_resp_info rs = resp_cc(200, "", 1);
	const struct h1_header he[] = {HDR("Expires", "Sun, 06 Nov 1994 08:49:37 GMT")};

	/* §3: explicit freshness, heuristics, or public. */
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "no freshness");
	assert_null(cache_unstorable(&rq, &rs, &cfg_heuristic));
	rs.status = 302;
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_heuristic), "no freshness");
	rs.cc.flags = CC_PUBLIC;
	assert_null(cache_unstorable(&rq, &rs, &cfg_heuristic));
	assert_string_equal(cache_unstorable(&rq, &rs, &cfg_default), "no freshness");
	assert_string_equal(cache_unstorable(&rq, &rs, NULL), "no freshness");
	/* Each explicit source on its own. */
	rs = resp_cc(302, "s-maxage=1", 1);
	assert_null(cache_unstorable(&rq, &rs, &cfg_default));
	rs = resp_cc(302, "max-age=0", 1);
	assert_null(cache_unstorable(&rq, &rs, &cfg_default));
	rs = resp_of(302, he, 1);
	assert_null(cache_unstorable(&rq, &rs, &cfg_default));
	/* no-cache alone: stored, revalidated before each use. */
	rs = resp_cc(200, "no-cache", 1);
	assert_null(cache_unstorable(&rq, &rs, &cfg_default));
}

/* --- using a stored entry --- */

/* times_of builds an entry received at 1000 with age 0, lifetime `life`. */
static struct cache_times times_of(int64_t life, const char *cc)
{
	struct cache_resp_info rs = resp_cc(200, cc, 1000);
	struct cache_times t;

	rs.cc.max_age = life;
	cache_times_init(&t, &rs, &cfg_default, 1000, 1000);
	assert_int_equal(t.initial_age, 0);
	assert_int_equal(t.lifetime, life);
	return t;
}

static enum cache_use decide(const char *req, const struct cache_times *t, int64_t now)
{
	struct cache_req_info rq = req_cc(req);
	int64_t age = -1;
	enum cache_use u = cache_decide(&rq, t, now, &age);

	assert_int_equal(age, cache_current_age(t, now));
	return u;
}

static void test_decide_fresh_stale(void **state)
{
	(void)state;
	struct cache_times t = times_of(60, "");
	struct cache_req_info rq = req_cc("");
	int64_t age = 0;

	assert_int_equal(cache_decide(&rq, &t, 1030, &age), CACHE_FRESH);
	assert_int_equal(age, 30);
	assert_int_equal(decide("", &t, 1059), CACHE_FRESH);
	/* §4.2: fresh only while lifetime > age. */
	assert_int_equal(decide("", &t, 1060), CACHE_REVALIDATE);
	assert_int_equal(decide("", &t, 5000), CACHE_REVALIDATE);
	t = times_of(0, "");
	assert_int_equal(decide("", &t, 1000), CACHE_REVALIDATE);
	assert_int_equal(cache_decide(&rq, &t, 1000, NULL), CACHE_REVALIDATE);
}

static void test_decide_request_directives(void **state)
{
	(void)state;
	struct cache_times t = times_of(60, "");

	/* max-age: nothing older, even fresh. */
	assert_int_equal(decide("max-age=30", &t, 1030), CACHE_FRESH);
	assert_int_equal(decide("max-age=30", &t, 1031), CACHE_REVALIDATE);
	assert_int_equal(decide("max-age=0", &t, 1000), CACHE_FRESH);
	assert_int_equal(decide("max-age=0", &t, 1001), CACHE_REVALIDATE);
	/* min-fresh: fresh for that much longer. */
	assert_int_equal(decide("min-fresh=20", &t, 1040), CACHE_FRESH);
	assert_int_equal(decide("min-fresh=20", &t, 1041), CACHE_REVALIDATE);
	assert_int_equal(decide("min-fresh=0, max-stale", &t, 1070), CACHE_REVALIDATE);
	/* max-stale: that much staleness is acceptable. */
	assert_int_equal(decide("max-stale=10", &t, 1070), CACHE_FRESH);
	assert_int_equal(decide("max-stale=10", &t, 1071), CACHE_REVALIDATE);
	assert_int_equal(decide("max-stale", &t, 900000), CACHE_FRESH);
	/* max-age still bounds a max-stale request. */
	assert_int_equal(decide("max-stale, max-age=65", &t, 1066), CACHE_REVALIDATE);
	assert_int_equal(decide("max-stale, max-age=65", &t, 1065), CACHE_FRESH);
}

static void test_decide_no_cache(void **state)
{
	(void)state;
	struct cache_times t = times_of(60, "");
	struct cache_times nc = times_of(60, "no-cache");
	const struct h1_header pragma[] = {HDR("Pragma", "no-cache")};
	struct cache_req_info rq;

	assert_int_equal(decide("no-cache", &t, 1000), CACHE_REVALIDATE);
	assert_int_equal(decide("", &nc, 1000), CACHE_REVALIDATE);
	assert_int_equal(decide("max-stale", &nc, 1000), CACHE_REVALIDATE);
	cache_req_from_headers(&rq, pragma, 1);
	assert_int_equal(cache_decide(&rq, &t, 1000, NULL), CACHE_REVALIDATE);
}

static void test_decide_forbid_stale(void **state)
{
	(void)state;
	static const char *const forbid[] = {"must-revalidate", "proxy-revalidate", "s-maxage=60"};

	for (size_t i = 0; i < RLB_ARRAY_LEN(forbid); i++) {
		struct cache_times t = times_of(60, forbid[i]);

		t.swr = 100;
		assert_int_equal(decide("max-stale", &t, 1030), CACHE_FRESH);
		assert_int_equal(decide("max-stale", &t, 1061), CACHE_REVALIDATE);
		assert_int_equal(decide("max-stale=1000", &t, 1070), CACHE_REVALIDATE);
		assert_int_equal(decide("", &t, 1070), CACHE_REVALIDATE);
	}
}

static void test_decide_swr(void **state)
{
	(void)state;
	struct cache_times t = times_of(60, "stale-while-revalidate=30");

	assert_int_equal(t.swr, 30);
	assert_int_equal(decide("", &t, 1059), CACHE_FRESH);
	assert_int_equal(decide("", &t, 1060), CACHE_STALE_SWR);
	assert_int_equal(decide("", &t, 1090), CACHE_STALE_SWR);
	assert_int_equal(decide("", &t, 1091), CACHE_REVALIDATE);
	/* The client's max-stale serves it plainly; its limits still apply. */
	assert_int_equal(decide("max-stale=5", &t, 1065), CACHE_FRESH);
	assert_int_equal(decide("max-stale=5", &t, 1070), CACHE_STALE_SWR);
	assert_int_equal(decide("max-age=65", &t, 1070), CACHE_REVALIDATE);
	assert_int_equal(decide("min-fresh=1", &t, 1070), CACHE_REVALIDATE);
	assert_int_equal(decide("no-cache", &t, 1070), CACHE_REVALIDATE);
}

static void test_stale_if_error(void **state)
{
	(void)state;
	struct cache_times t = times_of(60, "stale-if-error=100");
	struct cache_req_info rq = req_cc("");

	assert_true(cache_stale_if_error_ok(&rq, &t, 1030)); /* fresh */
	assert_true(cache_stale_if_error_ok(&rq, &t, 1160));
	assert_false(cache_stale_if_error_ok(&rq, &t, 1161));
	/* The client's window replaces the origin's. */
	rq = req_cc("stale-if-error=10");
	assert_true(cache_stale_if_error_ok(&rq, &t, 1070));
	assert_false(cache_stale_if_error_ok(&rq, &t, 1071));
	rq = req_cc("stale-if-error=1000");
	assert_true(cache_stale_if_error_ok(&rq, &t, 2000));
	t = times_of(60, "");
	assert_true(cache_stale_if_error_ok(&rq, &t, 2000));
	/* Neither gives one: no. */
	rq = req_cc("");
	assert_false(cache_stale_if_error_ok(&rq, &t, 1061));
	/* Forbidden by the response. */
	static const char *const forbid[] = {
	        "must-revalidate, stale-if-error=100", "proxy-revalidate, stale-if-error=100",
	        "s-maxage=60, stale-if-error=100", "no-cache, stale-if-error=100"};
	rq = req_cc("stale-if-error=100");
	for (size_t i = 0; i < RLB_ARRAY_LEN(forbid); i++) {
		t = times_of(60, forbid[i]);
		assert_false(cache_stale_if_error_ok(&rq, &t, 1070));
	}
}

/* --- conditionals --- */

static bool nm_etag(const char *inm, const char *etag)
{
	return cache_not_modified(inm, strlen(inm), NULL, 0, etag, etag ? strlen(etag) : 0, -1, -1);
}

static bool nm_ims(const char *ims, int64_t last_modified, int64_t date)
{
	return cache_not_modified(NULL, 0, ims, strlen(ims), NULL, 0, last_modified, date);
}

static void test_not_modified_etag(void **state)
{
	(void)state;
	assert_true(nm_etag("\"abc\"", "\"abc\""));
	assert_false(nm_etag("\"abc\"", "\"abd\""));
	/* Weak comparison (RFC 9110 §8.8.3.2). */
	assert_true(nm_etag("W/\"abc\"", "\"abc\""));
	assert_true(nm_etag("\"abc\"", "W/\"abc\""));
	assert_true(nm_etag("W/\"abc\"", "W/\"abc\""));
	assert_false(nm_etag("w/\"abc\"", "\"abc\"")); /* %s"W/" */
	/* Lists, spaces, commas inside a tag. */
	assert_true(nm_etag("\"x\", \"y\" ,W/\"abc\"", "\"abc\""));
	assert_true(nm_etag("\"x\",\"a,b\"", "\"a,b\""));
	assert_false(nm_etag("\"a\", \"b\"", "\"a,b\""));
	assert_false(nm_etag("\"abc\"", "abc")); /* quotes are part of the tag */
	/* "*" matches any stored entry, even one without ETag. */
	assert_true(nm_etag("*", "\"abc\""));
	assert_true(nm_etag("*", NULL));
	assert_false(nm_etag("\"abc\"", NULL));
	assert_false(nm_etag("", "\"abc\""));
	assert_false(nm_etag("\"\"", NULL));
}

static void test_not_modified_ims(void **state)
{
	(void)state;
	const char *ims = "Sun, 06 Nov 1994 08:49:37 GMT";

	assert_true(nm_ims(ims, T_1994 - 1, -1));
	assert_true(nm_ims(ims, T_1994, -1)); /* equal: not modified */
	assert_false(nm_ims(ims, T_1994 + 1, -1));
	/* Without Last-Modified, the entry's Date. */
	assert_true(nm_ims(ims, -1, T_1994));
	assert_false(nm_ims(ims, -1, T_1994 + 1));
	assert_true(nm_ims(ims, T_1994, T_1994 + 100)); /* Last-Modified first */
	assert_false(nm_ims(ims, -1, -1));
	/* Other forms parse; an invalid date is ignored. */
	assert_true(nm_ims("Sunday, 06-Nov-94 08:49:37 GMT", T_1994, -1));
	assert_true(nm_ims("Sun Nov  6 08:49:37 1994", T_1994, -1));
	assert_false(nm_ims("yesterday", 0, 0));
	assert_false(nm_ims("Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT", 0, 0));
	assert_false(cache_not_modified(NULL, 0, NULL, 0, "\"a\"", 3, 0, 0));
}

static void test_not_modified_precedence(void **state)
{
	(void)state;
	const char *ims = "Sun, 06 Nov 1994 08:49:37 GMT";

	/* RFC 9110 §13.2.2: If-None-Match decides; If-Modified-Since is not
	 * evaluated beside it. */
	assert_false(cache_not_modified("\"x\"", 3, ims, strlen(ims), "\"y\"", 3, T_1994 - 10, -1));
	assert_true(cache_not_modified("\"y\"", 3, ims, strlen(ims), "\"y\"", 3, T_1994 + 10, -1));
	assert_false(cache_not_modified("", 0, ims, strlen(ims), "\"y\"", 3, T_1994 - 10, -1));
}

/* --- keys and variants --- */

static void test_key_build(void **state)
{
	(void)state;
	const struct h1_header h[] = {
	        HDR("Accept-Language", "en"),
	        HDR("X-Tenant", "Blue"),
	        HDR("x-tenant", "Green"),
	        HDR("Cookie", "a=b"),
	};
	const struct h1_str extra[] = {S("X-Tenant"), S("X-Missing")};
	static const char want[] = "GET\0example.com:8080\0/a/B?q=C\0x-tenant=Blue,Green\0"
	                           "x-missing=";
	char out[256], out2[256];
	size_t n = cache_key_build(out, sizeof(out), S("GET"), S("Example.COM:8080"), S("/a/B?q=C"),
	                           extra, 2, h, RLB_ARRAY_LEN(h));

	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(out, want, n);
	/* Host case does not matter; the target's case and the method do. */
	assert_int_equal(cache_key_build(out2, sizeof(out2), S("GET"), S("example.com:8080"),
	                                 S("/a/B?q=C"), extra, 2, h, RLB_ARRAY_LEN(h)),
	                 n);
	assert_memory_equal(out, out2, n);
	n = cache_key_build(out2, sizeof(out2), S("HEAD"), S("h"), S("/"), NULL, 0, NULL, 0);
	assert_int_equal(n, 8);
	assert_memory_equal(out2, "HEAD\0h\0/", 8);
	/* Too small by any amount: 0, and nothing written past cap. */
	for (size_t cap = 0; cap < sizeof(want) - 1; cap++) {
		memset(out2, 'Z', sizeof(out2));
		assert_int_equal(cache_key_build(out2, cap, S("GET"), S("Example.COM:8080"),
		                                 S("/a/B?q=C"), extra, 2, h, RLB_ARRAY_LEN(h)),
		                 0);
		assert_int_equal(out2[cap], 'Z');
	}
	assert_int_equal(cache_key_build(out2, sizeof(want) - 1, S("GET"), S("Example.COM:8080"),
	                                 S("/a/B?q=C"), extra, 2, h, RLB_ARRAY_LEN(h)),
	                 sizeof(want) - 1);
}

static size_t sig(char *out, const struct h1_header *vh, size_t nvh, const struct h1_header *h,
                  size_t n, const char *ae)
{
	return cache_vary_sig(out, 256, vh, nvh, h, n, ae);
}

static void test_vary_sig(void **state)
{
	(void)state;
	const struct h1_header vh[] = {
	        HDR("Content-Type", "text/html"),
	        HDR("Vary", "Accept-Encoding, ACCEPT-language"),
	        HDR("vary", " ,X-Missing,User-Agent "),
	};
	const struct h1_header h[] = {
	        HDR("User-Agent", "curl/8"),    HDR("accept-language", "en ,  fr"),
	        HDR("Accept-Encoding", "br"),   HDR("Accept-Language", "de,,"),
	        HDR("Accept-Encoding", "gzip"),
	};
	static const char want[] = "accept-encoding\nbr,gzip\naccept-language\nen,fr,de\n"
	                           "x-missing\n\nuser-agent\ncurl/8\n";
	static const char want_ae[] = "accept-encoding\ngzip\naccept-language\nen,fr,de\n"
	                              "x-missing\n\nuser-agent\ncurl/8\n";
	char out[256];
	size_t n = sig(out, vh, 3, h, RLB_ARRAY_LEN(h), NULL);

	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(out, want, n);
	n = sig(out, vh, 3, h, RLB_ARRAY_LEN(h), "gzip");
	assert_int_equal(n, sizeof(want_ae) - 1);
	assert_memory_equal(out, want_ae, n);
	/* Order follows Vary. */
	const struct h1_header vh2[] = {HDR("Vary", "user-agent, accept-encoding")};
	n = sig(out, vh2, 1, h, RLB_ARRAY_LEN(h), NULL);
	assert_int_equal(n, strlen("user-agent\ncurl/8\naccept-encoding\nbr,gzip\n"));
	assert_memory_equal(out, "user-agent\ncurl/8\naccept-encoding\nbr,gzip\n", n);
	/* No Vary, or an empty one: 0. */
	assert_int_equal(sig(out, vh, 1, h, RLB_ARRAY_LEN(h), NULL), 0);
	assert_int_equal(sig(out, NULL, 0, h, RLB_ARRAY_LEN(h), NULL), 0);
	const struct h1_header vh3[] = {HDR("Vary", " , ")};
	assert_int_equal(sig(out, vh3, 1, h, RLB_ARRAY_LEN(h), NULL), 0);
	/* "*" anywhere. */
	const struct h1_header vh4[] = {HDR("Vary", "Accept"), HDR("Vary", "Cookie, *")};
	assert_true(sig(out, vh4, 2, h, RLB_ARRAY_LEN(h), NULL) == SIZE_MAX);
	/* Too small: SIZE_MAX, never past cap. */
	for (size_t cap = 0; cap < sizeof(want) - 1; cap++) {
		memset(out, 'Z', sizeof(out));
		assert_true(cache_vary_sig(out, cap, vh, 3, h, RLB_ARRAY_LEN(h), NULL) == SIZE_MAX);
		assert_int_equal(out[cap], 'Z');
	}
	assert_int_equal(cache_vary_sig(out, sizeof(want) - 1, vh, 3, h, RLB_ARRAY_LEN(h), NULL),
	                 sizeof(want) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cc_flags_case_spaces),
	        cmocka_unit_test(test_cc_quoted),
	        cmocka_unit_test(test_cc_deltas),
	        cmocka_unit_test(test_cc_invalid),
	        cmocka_unit_test(test_cc_overflow),
	        cmocka_unit_test(test_cc_duplicates),
	        cmocka_unit_test(test_cc_garbage),
	        cmocka_unit_test(test_list_next),
	        cmocka_unit_test(test_date_formats),
	        cmocka_unit_test(test_date_invalid),
	        cmocka_unit_test(test_date_round_trip),
	        cmocka_unit_test(test_resp_from_headers),
	        cmocka_unit_test(test_req_from_headers),
	        cmocka_unit_test(test_freshness_sources),
	        cmocka_unit_test(test_freshness_heuristic),
	        cmocka_unit_test(test_initial_age),
	        cmocka_unit_test(test_current_age),
	        cmocka_unit_test(test_store_status),
	        cmocka_unit_test(test_store_directives),
	        cmocka_unit_test(test_store_authorization),
	        cmocka_unit_test(test_store_cookie_vary),
	        cmocka_unit_test(test_store_freshness),
	        cmocka_unit_test(test_decide_fresh_stale),
	        cmocka_unit_test(test_decide_request_directives),
	        cmocka_unit_test(test_decide_no_cache),
	        cmocka_unit_test(test_decide_forbid_stale),
	        cmocka_unit_test(test_decide_swr),
	        cmocka_unit_test(test_stale_if_error),
	        cmocka_unit_test(test_not_modified_etag),
	        cmocka_unit_test(test_not_modified_ims),
	        cmocka_unit_test(test_not_modified_precedence),
	        cmocka_unit_test(test_key_build),
	        cmocka_unit_test(test_vary_sig),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
