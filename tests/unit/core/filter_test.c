/* tests/unit/core/filter_test.c — unit tests for core/filter.c.
 *
 * Goal: each part of a route's filter (method allow-list, max_uri, path,
 * header, header presence and method rules, their AND, rule order) decides
 * as filter.h says at its edges; bad configuration is refused with a message
 * naming the field (and the offset, for a pattern); a pattern driven into
 * the backtracking limits counts as a match (fail closed); counters count.
 *
 * Method: every test runs twice, once with patterns JIT-compiled (when the
 * library has a JIT here) and once forced onto the interpreter, through
 * filter_build_with. Request strings are copied into exactly sized heap
 * buffers without a NUL, so ASan (make SANITIZE=1) sees any read past a
 * slice. Nothing is timed.
 */
#include "core/filter.c"

#include <setjmp.h> /* cmocka needs these before its header */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

static bool g_jit;                  /* this group's way of matching */
static struct filter_scratch *g_fs; /* the "shard's" scratch */
static char g_err[512];             /* the last build's message */
static void *g_allocs[256];         /* request strings of the running test */
static size_t g_num_allocs;

/* str copies `lit` into an exactly sized heap slice (no NUL after it). */
static struct h1_str str(const char *lit)
{
	size_t n = strlen(lit);
	char *p = malloc(n > 0 ? n : 1);

	assert_non_null(p);
	memcpy(p, lit, n);
	assert_true(g_num_allocs < RLB_ARRAY_LEN(g_allocs));
	g_allocs[g_num_allocs++] = p;
	return (struct h1_str){p, n};
}

static int free_strs(void **state)
{
	(void)state;
	while (g_num_allocs > 0)
		free(g_allocs[--g_num_allocs]);
	return 0;
}

static struct config_filter_rule rule(const char *name, const char *path, const char *method,
                                      const char *header, const char *value)
{
	struct config_filter_rule r;

	memset(&r, 0, sizeof(r));
	snprintf(r.name, sizeof(r.name), "%s", name);
	snprintf(r.path, sizeof(r.path), "%s", path);
	snprintf(r.method, sizeof(r.method), "%s", method);
	snprintf(r.header, sizeof(r.header), "%s", header);
	snprintf(r.value, sizeof(r.value), "%s", value);
	return r;
}

static struct config_filter section(const char *methods, uint32_t max_uri,
                                    struct config_filter_rule *rules, size_t num_rules)
{
	struct config_filter cf;

	memset(&cf, 0, sizeof(cf));
	snprintf(cf.methods, sizeof(cf.methods), "%s", methods);
	cf.max_uri = max_uri;
	cf.rules = rules;
	cf.num_rules = num_rules;
	return cf;
}

/* build builds `cf` the way this group matches and expects success. */
static struct filter *build(const struct config_filter *cf)
{
	struct filter *f = filter_build_with(cf, g_jit, g_err, sizeof(g_err));

	if (f == NULL) {
		print_error("build failed: \"%s\"\n", g_err);
		fail();
	}
	assert_string_equal(g_err, "");
	return f;
}

/* build_err expects `cf` to be refused with a message starting `want`. */
static void build_err(const struct config_filter *cf, const char *want)
{
	struct filter *f = filter_build_with(cf, g_jit, g_err, sizeof(g_err));

	assert_null(f);
	if (strncmp(g_err, want, strlen(want)) != 0) {
		print_error("got \"%s\", want it to start \"%s\"\n", g_err, want);
		fail();
	}
}

/* check runs filter_check on a request with `hdrs` as name, value pairs
 * ending in NULL, and expects verdict `want` and rule name `want_name`. */
static void check(const struct filter *f, const char *method, const char *target,
                  const char *const *hdrs, enum filter_verdict want, const char *want_name)
{
	struct h1_header h[16];
	size_t n = 0;
	const char *name = "unset";
	enum filter_verdict v;

	for (; hdrs != NULL && hdrs[2 * n] != NULL; n++) {
		assert_true(n < RLB_ARRAY_LEN(h));
		h[n].name = str(hdrs[2 * n]);
		h[n].value = str(hdrs[2 * n + 1]);
	}
	v = filter_check(f, g_fs, str(method), str(target), h, n, &name);
	if (v != want || (want_name == NULL) != (name == NULL) ||
	    (name != NULL && strcmp(name, want_name) != 0)) {
		print_error("%s %s: got %d \"%s\", want %d \"%s\"\n", method, target, v,
		            name ? name : "(null)", want, want_name ? want_name : "(null)");
		fail();
	}
}

#define PASS(f, m, t, h)          check((f), (m), (t), (h), FILTER_PASS, NULL)
#define BLOCK(f, m, t, h, v, why) check((f), (m), (t), (h), (v), (why))
#define HDRS(...)                 ((const char *const[]){__VA_ARGS__, NULL})

static void test_empty_section(void **state)
{
	struct config_filter cf = section("", 0, NULL, 0);

	(void)state;
	memset(g_err, 'x', sizeof(g_err));
	assert_null(filter_build_with(&cf, g_jit, g_err, sizeof(g_err)));
	assert_string_equal(g_err, "");
	/* no filter: everything passes */
	PASS(NULL, "DELETE", "/../../etc/passwd", NULL);
	assert_int_equal(filter_num_rules(NULL), 0);
	filter_free(NULL);
}

static void test_methods(void **state)
{
	struct config_filter cf = section("GET, HEAD ,POST", 0, NULL, 0);
	struct filter *f = build(&cf);

	(void)state;
	PASS(f, "GET", "/", NULL);
	PASS(f, "HEAD", "/", NULL);
	PASS(f, "POST", "/", NULL);
	BLOCK(f, "DELETE", "/", NULL, FILTER_METHOD, "method");
	/* methods are case-sensitive tokens (RFC 9110 §9.1) */
	BLOCK(f, "get", "/", NULL, FILTER_METHOD, "method");
	/* no prefix or substring matches */
	BLOCK(f, "GE", "/", NULL, FILTER_METHOD, "method");
	BLOCK(f, "GETX", "/", NULL, FILTER_METHOD, "method");
	BLOCK(f, "HEAD,POST", "/", NULL, FILTER_METHOD, "method");
	BLOCK(f, "", "/", NULL, FILTER_METHOD, "method");
	assert_int_equal(filter_num_rules(f), 0);
	filter_free(f);

	cf = section("PURGE", 0, NULL, 0);
	f = build(&cf);
	PASS(f, "PURGE", "/", NULL);
	BLOCK(f, "GET", "/", NULL, FILTER_METHOD, "method");
	filter_free(f);
}

static void test_methods_refused(void **state)
{
	static const char *const bad[] = {",",        "GET,", ",GET",    "GET,,POST",
	                                  "GET POST", " , ",  "GET;POST"};
	struct config_filter cf;

	(void)state;
	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++) {
		cf = section(bad[i], 0, NULL, 0);
		build_err(&cf, "methods: ");
	}
	/* a lower-case entry would never match what clients send */
	cf = section("GET,post", 0, NULL, 0);
	build_err(&cf, "methods: \"post\" is not an upper-case method token");
}

static void test_max_uri(void **state)
{
	struct config_filter cf = section("", 10, NULL, 0);
	struct filter *f = build(&cf);

	(void)state;
	PASS(f, "GET", "/123456789", NULL); /* 10 bytes: at the limit */
	BLOCK(f, "GET", "/1234567890", NULL, FILTER_URI_TOO_LONG, "max_uri");
	BLOCK(f, "GET", "/?q=12345678901234", NULL, FILTER_URI_TOO_LONG, "max_uri");
	PASS(f, "GET", "/", NULL);
	filter_free(f);
}

/* The allow-list is checked before max_uri, and both before any rule. */
static void test_cheap_checks_first(void **state)
{
	struct config_filter_rule rules[] = {rule("all", ".", "", "", "")};
	struct config_filter cf = section("GET", 4, rules, 1);
	struct filter *f = build(&cf);

	(void)state;
	BLOCK(f, "POST", "/long", NULL, FILTER_METHOD, "method");
	BLOCK(f, "GET", "/long", NULL, FILTER_URI_TOO_LONG, "max_uri");
	BLOCK(f, "GET", "/abc", NULL, FILTER_RULE, "all");
	assert_int_equal(filter_rule_hits(f, 0), 1);
	filter_free(f);
}

static void test_path_rules(void **state)
{
	struct config_filter_rule rules[] = {
	        rule("sqli", "(?i)union\\s+select", "", "", ""),
	        rule("traversal", "\\.\\./", "", "", ""),
	};
	struct config_filter cf = section("", 0, rules, RLB_ARRAY_LEN(rules));
	struct filter *f = build(&cf);

	(void)state;
	PASS(f, "GET", "/index.html", NULL);
	PASS(f, "GET", "/search?q=union+station", NULL);
	BLOCK(f, "GET", "/q?id=1 UNION  SELECT pw", NULL, FILTER_RULE, "sqli");
	BLOCK(f, "GET", "/q?id=1+union\tselect", NULL, FILTER_RULE, "sqli");
	BLOCK(f, "GET", "/static/../../etc/passwd", NULL, FILTER_RULE, "traversal");
	/* the query is part of the target */
	BLOCK(f, "GET", "/dl?file=../secret", NULL, FILTER_RULE, "traversal");
	/* targets are matched as received: percent-encoding is not decoded */
	PASS(f, "GET", "/static/%2e%2e/etc/passwd", NULL);
	PASS(f, "GET", "/q?id=1%20union%20select", NULL);
	PASS(f, "GET", "/a..b/c", NULL);
	/* bytes that are not UTF-8 are fine: no UTF mode */
	PASS(f, "GET", "/\xff\xfe/x", NULL);
	BLOCK(f, "GET", "/\xff/../x", NULL, FILTER_RULE, "traversal");
	assert_int_equal(filter_rule_hits(f, 0), 2);
	assert_int_equal(filter_rule_hits(f, 1), 3);
	assert_int_equal(filter_limit_hits(f), 0);
	filter_free(f);
}

static void test_header_rule(void **state)
{
	struct config_filter_rule rules[] = {rule("scanner", "", "", "User-Agent", "(?i)sqlmap")};
	struct config_filter cf = section("", 0, rules, 1);
	struct filter *f = build(&cf);

	(void)state;
	PASS(f, "GET", "/", NULL);
	PASS(f, "GET", "/", HDRS("User-Agent", "curl/8.0"));
	BLOCK(f, "GET", "/", HDRS("User-Agent", "sqlmap/1.7.2#stable (https://sqlmap.org)"),
	      FILTER_RULE, "scanner");
	/* field names compare ignoring case; the value pattern has (?i) */
	BLOCK(f, "GET", "/", HDRS("Host", "a", "user-agent", "SQLMap"), FILTER_RULE, "scanner");
	BLOCK(f, "GET", "/", HDRS("USER-AGENT", "x SqlMap y"), FILTER_RULE, "scanner");
	/* only that field: the pattern in another field does not count */
	PASS(f, "GET", "/", HDRS("Referer", "sqlmap", "User-Agentx", "sqlmap"));
	PASS(f, "GET", "/sqlmap", HDRS("User-Agent", "curl"));
	assert_int_equal(filter_rule_hits(f, 0), 3);
	filter_free(f);
}

static void test_header_twice(void **state)
{
	struct config_filter_rule rules[] = {rule("bad-fwd", "", "", "X-Forwarded-For", "^10\\.")};
	struct config_filter cf = section("", 0, rules, 1);
	struct filter *f = build(&cf);

	(void)state;
	PASS(f, "GET", "/",
	     HDRS("X-Forwarded-For", "192.0.2.1", "x-forwarded-for", "198.51.100.7"));
	/* the second field line matches */
	BLOCK(f, "GET", "/", HDRS("X-Forwarded-For", "192.0.2.1", "x-forwarded-for", "10.0.0.1"),
	      FILTER_RULE, "bad-fwd");
	/* a list in one field line is one value: "^10\." sees its start only */
	PASS(f, "GET", "/", HDRS("X-Forwarded-For", "192.0.2.1, 10.0.0.1"));
	filter_free(f);
}

static void test_header_presence(void **state)
{
	struct config_filter_rule rules[] = {rule("no-debug", "", "", "X-Debug", "")};
	struct config_filter cf = section("", 0, rules, 1);
	struct filter *f = build(&cf);

	(void)state;
	PASS(f, "GET", "/", HDRS("Host", "a", "X-Debugging", "1"));
	BLOCK(f, "GET", "/", HDRS("Host", "a", "x-debug", "1"), FILTER_RULE, "no-debug");
	/* present with an empty value is present */
	BLOCK(f, "GET", "/", HDRS("X-DEBUG", ""), FILTER_RULE, "no-debug");
	filter_free(f);
}

static void test_method_rule(void **state)
{
	struct config_filter_rule rules[] = {rule("trace", "", "^(TRACE|TRACK)$", "", "")};
	struct config_filter cf = section("", 0, rules, 1);
	struct filter *f = build(&cf);

	(void)state;
	PASS(f, "GET", "/", NULL);
	PASS(f, "TRACES", "/", NULL);
	BLOCK(f, "TRACE", "/", NULL, FILTER_RULE, "trace");
	BLOCK(f, "TRACK", "/", NULL, FILTER_RULE, "trace");
	PASS(f, "trace", "/", NULL); /* the pattern is case-sensitive */
	filter_free(f);
}

static void test_and(void **state)
{
	struct config_filter_rule rules[] = {
	        rule("admin-bot", "^/admin", "^POST$", "User-Agent", "(?i)bot")};
	struct config_filter cf = section("", 0, rules, 1);
	struct filter *f = build(&cf);

	(void)state;
	PASS(f, "POST", "/admin/x", HDRS("User-Agent", "Mozilla"));
	PASS(f, "POST", "/public", HDRS("User-Agent", "SomeBot"));
	PASS(f, "GET", "/admin/x", HDRS("User-Agent", "SomeBot"));
	PASS(f, "POST", "/admin/x", NULL); /* header absent */
	BLOCK(f, "POST", "/admin/x", HDRS("User-Agent", "SomeBot"), FILTER_RULE, "admin-bot");
	assert_int_equal(filter_rule_hits(f, 0), 1);
	filter_free(f);
}

static void test_first_rule_wins(void **state)
{
	struct config_filter_rule rules[] = {
	        rule("a", "^/x$", "", "", ""),
	        rule("b", "^/", "", "", ""),
	        rule("c", "", "", "Host", ""),
	};
	struct config_filter cf = section("", 0, rules, RLB_ARRAY_LEN(rules));
	struct filter *f = build(&cf);

	(void)state;
	BLOCK(f, "GET", "/x", HDRS("Host", "h"), FILTER_RULE, "a");
	BLOCK(f, "GET", "/y", HDRS("Host", "h"), FILTER_RULE, "b");
	BLOCK(f, "GET", "*", HDRS("Host", "h"), FILTER_RULE, "c");
	BLOCK(f, "GET", "/x", NULL, FILTER_RULE, "a");
	PASS(f, "OPTIONS", "*", NULL);
	/* only the winner counts */
	assert_int_equal(filter_rule_hits(f, 0), 2);
	assert_int_equal(filter_rule_hits(f, 1), 1);
	assert_int_equal(filter_rule_hits(f, 2), 1);
	filter_free(f);
}

static void test_counters_and_names(void **state)
{
	struct config_filter_rule rules[] = {
	        rule("one", "1", "", "", ""),
	        rule("two", "2", "", "", ""),
	        rule("three", "3", "", "", ""),
	};
	struct config_filter cf = section("", 0, rules, RLB_ARRAY_LEN(rules));
	struct filter *f;

	(void)state;
	f = build(&cf);
	/* the filter keeps no pointer into the configuration */
	memset(rules, 0, sizeof(rules));
	assert_int_equal(filter_num_rules(f), 3);
	assert_string_equal(filter_rule_name(f, 0), "one");
	assert_string_equal(filter_rule_name(f, 1), "two");
	assert_string_equal(filter_rule_name(f, 2), "three");
	for (int i = 0; i < 7; i++)
		BLOCK(f, "GET", "/3", NULL, FILTER_RULE, "three");
	for (int i = 0; i < 5; i++)
		BLOCK(f, "GET", "/1", NULL, FILTER_RULE, "one");
	for (int i = 0; i < 4; i++)
		PASS(f, "GET", "/4", NULL);
	assert_int_equal(filter_rule_hits(f, 0), 5);
	assert_int_equal(filter_rule_hits(f, 1), 0);
	assert_int_equal(filter_rule_hits(f, 2), 7);
	/* rule_name may be NULL; the verdict is the same */
	assert_int_equal(filter_check(f, g_fs, str("GET"), str("/2"), NULL, 0, NULL), FILTER_RULE);
	assert_int_equal(filter_rule_hits(f, 1), 1);
	filter_free(f);
}

/* Empty slices may come with a NULL pointer. */
static void test_empty_strings(void **state)
{
	struct config_filter_rule rules[] = {rule("empty-path", "^$", "", "", "")};
	struct config_filter cf = section("", 0, rules, 1);
	struct filter *f = build(&cf);
	const struct h1_str none = {NULL, 0};
	const struct h1_header h = {{"X-A", 3}, {NULL, 0}};
	const char *name;

	(void)state;
	assert_int_equal(filter_check(f, g_fs, none, none, &h, 1, &name), FILTER_RULE);
	assert_string_equal(name, "empty-path");
	PASS(f, "GET", "/", NULL);
	filter_free(f);
}

static void test_pattern_check(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(filter_pattern_check("(?i)union\\s+select", err, sizeof(err)), 1);
	assert_string_equal(err, "");
	assert_int_equal(filter_pattern_check("ab(c", err, sizeof(err)), 0);
	assert_string_equal(err, "at offset 4: missing closing parenthesis");
	assert_int_equal(filter_pattern_check("a[b", err, sizeof(err)), 0);
	assert_string_equal(err, "at offset 3: missing terminating ] for character class");
	assert_int_equal(filter_pattern_check("x{2,1}", err, sizeof(err)), 0);
	assert_true(strncmp(err, "at offset 5: ", 13) == 0);
	/* bytes, not UTF-8: a pattern may not switch UTF mode on */
	assert_int_equal(filter_pattern_check("(*UTF)a", err, sizeof(err)), 0);
	assert_true(strncmp(err, "at offset ", 10) == 0);
	assert_non_null(strstr(err, "UTF is disabled"));
	/* a short buffer truncates, still terminated */
	assert_int_equal(filter_pattern_check("(", err, 8), 0);
	assert_string_equal(err, "at offs");
}

static void test_bad_patterns(void **state)
{
	struct config_filter_rule rules[] = {
	        rule("ok", "^/ok", "", "", ""),
	        rule("bad", "", "", "", ""),
	};
	struct config_filter cf = section("GET", 0, rules, 2);

	(void)state;
	rules[1] = rule("bad", "/a(b", "", "", "");
	build_err(&cf, "rules[1].path: at offset 4: missing closing parenthesis");
	rules[1] = rule("bad", "", "GET|(", "", "");
	build_err(&cf, "rules[1].method: at offset 5: missing closing parenthesis");
	rules[1] = rule("bad", "", "", "User-Agent", "[z-a]");
	build_err(&cf, "rules[1].value: at offset 3: range out of order");
	rules[1] = rule("bad", "", "", "User-Agent", "(*UTF)x");
	build_err(&cf, "rules[1].value: at offset ");
}

static void test_bad_rules(void **state)
{
	struct config_filter_rule rules[FILTER_RULES_MAX + 1];
	struct config_filter cf = section("", 0, rules, 2);

	(void)state;
	rules[0] = rule("ok", "^/ok", "", "", "");
	rules[1] = rule("", "x", "", "", "");
	build_err(&cf, "rules[1].name: empty");
	rules[1] = rule("nothing", "", "", "", "");
	build_err(&cf, "rules[1]: needs at least one of path, method, header");
	rules[1] = rule("orphan", "", "", "", "x");
	build_err(&cf, "rules[1].value: set without a header");
	rules[1] = rule("ok", "y", "", "", "");
	build_err(&cf, "rules[1].name: \"ok\" is also rules[0]'s");
	rules[1] = rule("sp", "", "", "User Agent", "x");
	build_err(&cf, "rules[1].header: \"User Agent\" is not a field name");
	rules[1] = rule("colon", "", "", "Host:", "");
	build_err(&cf, "rules[1].header: \"Host:\" is not a field name");
	rules[1] = rule("nt", "x", "", "", "");
	memset(rules[1].path, 'a', sizeof(rules[1].path));
	build_err(&cf, "rules[1].path: not terminated");
	for (size_t i = 0; i < RLB_ARRAY_LEN(rules); i++) {
		char name[16];

		snprintf(name, sizeof(name), "r%zu", i);
		rules[i] = rule(name, "x", "", "", "");
	}
	cf.num_rules = FILTER_RULES_MAX + 1;
	build_err(&cf, "rules: 65 rules, at most 64");
	cf.num_rules = FILTER_RULES_MAX;
	filter_free(build(&cf));
}

/* "(a+)+$" on a run of a's ending in something else backtracks
 * exponentially; the limits stop it, and the request is blocked (fail
 * closed) and counted as a limit hit. */
static void test_pathological_fails_closed(void **state)
{
	struct config_filter_rule rules[] = {
	        rule("redos", "(a+)+$", "", "", ""),
	        rule("redos-hdr", "", "", "X-A", "(a+)+$"),
	};
	struct config_filter cf = section("", 0, rules, 2);
	struct filter *f = build(&cf);

	(void)state;
	PASS(f, "GET", "/b", NULL);
	BLOCK(f, "GET", "/aaaa", NULL, FILTER_RULE, "redos"); /* a real match */
	assert_int_equal(filter_limit_hits(f), 0);
	BLOCK(f, "GET", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", NULL, FILTER_RULE, "redos");
	assert_int_equal(filter_limit_hits(f), 1);
	BLOCK(f, "GET", "/b", HDRS("X-A", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"), FILTER_RULE,
	      "redos-hdr");
	assert_int_equal(filter_limit_hits(f), 2);
	assert_int_equal(filter_rule_hits(f, 0), 2);
	assert_int_equal(filter_rule_hits(f, 1), 1);
	filter_free(f);
}

/* The limits leave room for ordinary patterns on long requests: no false
 * blocks from them on a 16 KiB target. */
static void test_long_target_within_limits(void **state)
{
	struct config_filter_rule rules[] = {
	        rule("sqli", "(?i)union\\s+select", "", "", ""),
	        rule("traversal", "\\.\\./", "", "", ""),
	        rule("ext", "\\.(php|asp|cgi)(\\?|$)", "", "", ""),
	        rule("dotstar", ".*secret.*key", "", "", ""),
	};
	struct config_filter cf = section("", 0, rules, RLB_ARRAY_LEN(rules));
	struct filter *f = build(&cf);
	static char target[16384 + 1];

	(void)state;
	for (size_t i = 0; i + 1 < sizeof(target); i++)
		target[i] = "union/secret.x?a=b&"[i % 19];
	target[0] = '/';
	PASS(f, "GET", target, NULL);
	assert_int_equal(filter_limit_hits(f), 0);
	filter_free(f);
}

/* Both ways of matching are really exercised: JIT code exists when the
 * group asks for it (and the library has a JIT), and none otherwise. */
static void test_jit_or_interpreter(void **state)
{
	struct config_filter_rule rules[] = {rule("r", "^/x", "", "", "")};
	struct config_filter cf = section("", 0, rules, 1);
	struct filter *f = build(&cf);
	uint32_t have_jit = 0;
	size_t jit_size = 0;

	(void)state;
	assert_int_equal(pcre2_config(PCRE2_CONFIG_JIT, &have_jit), 0);
	assert_int_equal(pcre2_pattern_info(f->rules[0].path, PCRE2_INFO_JITSIZE, &jit_size), 0);
	if (g_jit) {
		assert_int_equal(f->match_opts, 0);
		if (!have_jit) {
			filter_free(f);
			skip(); /* no JIT in this libpcre2: only the interpreter runs */
		}
		assert_true(jit_size > 0);
	} else {
		assert_int_equal(f->match_opts, PCRE2_NO_JIT);
		assert_int_equal(jit_size, 0);
	}
	BLOCK(f, "GET", "/xy", NULL, FILTER_RULE, "r");
	filter_free(f);
}

static int setup_jit(void **state)
{
	(void)state;
	g_jit = true;
	g_fs = filter_scratch_new();
	return g_fs == NULL ? -1 : 0;
}

static int setup_interp(void **state)
{
	(void)state;
	g_jit = false;
	g_fs = filter_scratch_new();
	return g_fs == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	filter_scratch_free(g_fs);
	g_fs = NULL;
	return 0;
}

#define T(fn) cmocka_unit_test_teardown(fn, free_strs)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_empty_section),
	        T(test_methods),
	        T(test_methods_refused),
	        T(test_max_uri),
	        T(test_cheap_checks_first),
	        T(test_path_rules),
	        T(test_header_rule),
	        T(test_header_twice),
	        T(test_header_presence),
	        T(test_method_rule),
	        T(test_and),
	        T(test_first_rule_wins),
	        T(test_counters_and_names),
	        T(test_empty_strings),
	        T(test_pattern_check),
	        T(test_bad_patterns),
	        T(test_bad_rules),
	        T(test_pathological_fails_closed),
	        T(test_long_target_within_limits),
	        T(test_jit_or_interpreter),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("filter_jit", tests, setup_jit, teardown);
	failed += cmocka_run_group_tests_name("filter_interpreter", tests, setup_interp, teardown);
	return failed == 0 ? 0 : 1;
}
