/* core/filter.c — per-route request filtering with PCRE2 (see filter.h).
 *
 * Patterns are compiled once, in 8-bit byte mode (PCRE2_NEVER_UTF), and
 * JIT-compiled when the library has a JIT for this CPU; a pattern the JIT
 * cannot take is matched by the interpreter instead, with the same results.
 * struct filter is immutable after filter_build except for its hit counters,
 * which live in their own cache lines so that a shard counting a hit does not
 * steal the line every other shard reads the compiled rules from.
 */
#include "core/filter.h"

#include "core/common.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

/* The allow-list holds at most one method per two bytes of "A,B,...". */
#define FILTER_METHODS_MAX ((sizeof(((struct config_filter *)0)->methods) + 1) / 2)

/* The JIT stack each shard matches on: a deep pattern that needs more hits
 * PCRE2_ERROR_JIT_STACKLIMIT, which fails closed like the other limits. */
#define FILTER_JIT_STACK_MIN (32 * 1024)
#define FILTER_JIT_STACK_MAX (512 * 1024)

struct filter_rule {
	const pcre2_code *path;   /* on the request target; NULL = not checked */
	const pcre2_code *method; /* on the method; NULL = not checked */
	const pcre2_code *value;  /* on each value of `header`; NULL = presence */
	size_t header_len;        /* 0 = no header condition */
	char header[sizeof(((struct config_filter_rule *)0)->header)];
	char name[sizeof(((struct config_filter_rule *)0)->name)];
};

/* One counter per cache line: shards bump them on every blocked request. */
struct filter_counter {
	_Alignas(RLB_CACHELINE) _Atomic uint64_t n;
};

struct filter {
	uint32_t match_opts; /* pcre2_match options: 0, or PCRE2_NO_JIT (tests) */
	uint32_t max_uri;    /* 0 = no limit */
	size_t num_methods;  /* 0 = any method */
	struct {
		uint16_t off, len; /* a token in method_buf */
	} methods[FILTER_METHODS_MAX];
	char method_buf[sizeof(((struct config_filter *)0)->methods)];
	/* num_rules + 1 counters: hits per rule, then matches that hit a limit */
	struct filter_counter *hits;
	size_t num_rules;
	struct filter_rule rules[];
};

struct filter_scratch {
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jit_stack;
};

_Static_assert(sizeof(struct filter_counter) == RLB_CACHELINE, "one counter per cache line");
_Static_assert(FILTER_METHODS_MAX <= UINT16_MAX, "method offsets fit uint16_t");

/* seterr writes a message for the caller's err buffer (truncated to fit). */
static void seterr(char *err, size_t err_len, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

/* --- building --- */

/* is_tchar says whether `c` may appear in a token (RFC 9110 §5.6.2): method
 * names and field names are tokens. */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* compile compiles pat[0..len) in byte mode, JIT-compiling it when `jit`. On
 * a syntax error it returns NULL with "at offset N: message" in err. */
static pcre2_code *compile(const char *pat, size_t len, bool jit, char *err, size_t err_len)
{
	int code;
	PCRE2_SIZE off;
	pcre2_code *re;

	/* NEVER_UTF: requests are bytes, and a (*UTF) pattern would make every
	 * request that is not valid UTF-8 a match error, which fails closed. */
	re = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_NEVER_UTF, &code, &off, NULL);
	if (re == NULL) {
		PCRE2_UCHAR msg[256];

		if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
			snprintf((char *)msg, sizeof(msg), "PCRE2 error %d", code);
		seterr(err, err_len, "at offset %zu: %s", (size_t)off, (const char *)msg);
		return NULL;
	}
	/* A JIT failure (no JIT for this CPU, a pattern it cannot take, no
	 * memory) is not an error: pcre2_match then runs the interpreter. */
	if (jit)
		(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

int filter_pattern_check(const char *pat, char *err, size_t err_len)
{
	pcre2_code *re;

	RLB_ASSERT(pat != NULL);
	RLB_ASSERT(err != NULL && err_len > 0);
	err[0] = '\0';
	re = compile(pat, PCRE2_ZERO_TERMINATED, false, err, err_len);
	if (re == NULL)
		return 0;
	pcre2_code_free(re);
	return 1;
}

/* skip_ws returns the first index from `i` that is not SP or HTAB. */
static size_t skip_ws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

/* parse_methods fills f's allow-list from "GET, HEAD,POST". Methods are
 * case-sensitive (RFC 9110 §9.1), so a lower-case entry is refused rather
 * than left to never match the "GET" clients send. */
static int parse_methods(struct filter *f, const char *list, char *err, size_t err_len)
{
	size_t n = strnlen(list, sizeof(f->method_buf));

	if (n == sizeof(f->method_buf)) {
		seterr(err, err_len, "methods: not terminated");
		return 0;
	}
	memcpy(f->method_buf, list, n + 1);
	/* Each turn takes one entry and the comma after it; a trailing comma
	 * leaves an empty last entry, which is refused. */
	for (size_t i = 0; n > 0 && i <= n; i++) {
		size_t start = skip_ws(list, i, n), end = start;

		while (end < n && list[end] != ',' && list[end] != ' ' && list[end] != '\t')
			end++;
		i = skip_ws(list, end, n);
		if (start == end || (i < n && list[i] != ',')) {
			seterr(err, err_len,
			       "methods: \"%s\" is not a comma-separated list of methods", list);
			return 0;
		}
		for (size_t k = start; k < end; k++) {
			unsigned char c = (unsigned char)list[k];

			if (!is_tchar(c) || (c >= 'a' && c <= 'z')) {
				seterr(err, err_len,
				       "methods: \"%.*s\" is not an upper-case method token",
				       (int)(end - start), list + start);
				return 0;
			}
		}
		RLB_ASSERT(f->num_methods < FILTER_METHODS_MAX);
		f->methods[f->num_methods].off = (uint16_t)start;
		f->methods[f->num_methods].len = (uint16_t)(end - start);
		f->num_methods++;
	}
	return 1;
}

/* build_pattern compiles one rule field; "" leaves *out NULL. */
static int build_pattern(const pcre2_code **out, const char *pat, size_t cap, size_t i,
                         const char *field, bool jit, char *err, size_t err_len)
{
	size_t len = strnlen(pat, cap);
	char msg[320];
	pcre2_code *re;

	*out = NULL;
	if (len == cap) {
		seterr(err, err_len, "rules[%zu].%s: not terminated", i, field);
		return 0;
	}
	if (len == 0)
		return 1;
	re = compile(pat, len, jit, msg, sizeof(msg));
	if (re == NULL) {
		seterr(err, err_len, "rules[%zu].%s: %s", i, field, msg);
		return 0;
	}
	*out = re;
	return 1;
}

/* build_rule fills `r` from config rule `i`, compiling its patterns. */
static int build_rule(struct filter_rule *r, const struct config_filter_rule *c, size_t i, bool jit,
                      char *err, size_t err_len)
{
	size_t name_len = strnlen(c->name, sizeof(c->name));
	size_t header_len = strnlen(c->header, sizeof(c->header));

	if (name_len == 0 || name_len == sizeof(c->name)) {
		seterr(err, err_len, "rules[%zu].name: %s", i,
		       name_len ? "not terminated" : "empty");
		return 0;
	}
	memcpy(r->name, c->name, name_len + 1);
	if (header_len == sizeof(c->header)) {
		seterr(err, err_len, "rules[%zu].header: not terminated", i);
		return 0;
	}
	for (size_t k = 0; k < header_len; k++) {
		if (!is_tchar((unsigned char)c->header[k])) {
			seterr(err, err_len, "rules[%zu].header: \"%s\" is not a field name", i,
			       c->header);
			return 0;
		}
	}
	memcpy(r->header, c->header, header_len + 1);
	r->header_len = header_len;
	if (header_len == 0 && c->value[0] != '\0') {
		seterr(err, err_len, "rules[%zu].value: set without a header", i);
		return 0;
	}
	if (!build_pattern(&r->path, c->path, sizeof(c->path), i, "path", jit, err, err_len) ||
	    !build_pattern(&r->method, c->method, sizeof(c->method), i, "method", jit, err,
	                   err_len) ||
	    !build_pattern(&r->value, c->value, sizeof(c->value), i, "value", jit, err, err_len))
		return 0;
	if (r->path == NULL && r->method == NULL && header_len == 0) {
		seterr(err, err_len, "rules[%zu]: needs at least one of path, method, header", i);
		return 0;
	}
	return 1;
}

/* check_names refuses two rules of one name: the name keys the counters. */
static int check_names(const struct filter *f, char *err, size_t err_len)
{
	for (size_t i = 0; i < f->num_rules; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(f->rules[i].name, f->rules[j].name) == 0) {
				seterr(err, err_len, "rules[%zu].name: \"%s\" is also rules[%zu]'s",
				       i, f->rules[i].name, j);
				return 0;
			}
		}
	}
	return 1;
}

/* filter_build_with is filter_build; `jit` false keeps every pattern on the
 * interpreter, so the tests can cover both ways of matching. */
static struct filter *filter_build_with(const struct config_filter *cf, bool jit, char *err,
                                        size_t err_len)
{
	struct filter *f;

	RLB_ASSERT(cf != NULL);
	RLB_ASSERT(err != NULL && err_len > 0);
	RLB_ASSERT(cf->num_rules == 0 || cf->rules != NULL);
	err[0] = '\0';
	if (cf->methods[0] == '\0' && cf->max_uri == 0 && cf->num_rules == 0)
		return NULL; /* nothing configured: no filtering */
	if (cf->num_rules > FILTER_RULES_MAX) {
		seterr(err, err_len, "rules: %zu rules, at most %d", cf->num_rules,
		       FILTER_RULES_MAX);
		return NULL;
	}
	f = rlb_xcalloc(1, sizeof(*f) + cf->num_rules * sizeof(f->rules[0]));
	f->match_opts = jit ? 0 : PCRE2_NO_JIT;
	f->max_uri = cf->max_uri;
	f->hits = aligned_alloc(RLB_CACHELINE, (cf->num_rules + 1) * sizeof(*f->hits));
	if (f->hits == NULL) {
		seterr(err, err_len, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i <= cf->num_rules; i++)
		atomic_init(&f->hits[i].n, 0);
	if (!parse_methods(f, cf->methods, err, err_len))
		goto fail;
	for (size_t i = 0; i < cf->num_rules; i++) {
		/* counted as we go, so that filter_free frees what was built */
		f->num_rules = i + 1;
		if (!build_rule(&f->rules[i], &cf->rules[i], i, jit, err, err_len))
			goto fail;
	}
	if (!check_names(f, err, err_len))
		goto fail;
	return f;
fail:
	RLB_ASSERT(err[0] != '\0');
	filter_free(f);
	return NULL;
}

struct filter *filter_build(const struct config_filter *cf, char *err, size_t err_len)
{
	return filter_build_with(cf, true, err, err_len);
}

void filter_free(struct filter *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->num_rules; i++) {
		/* pcre2_code_free takes a non-const pointer; we own these. */
		pcre2_code_free((pcre2_code *)f->rules[i].path);
		pcre2_code_free((pcre2_code *)f->rules[i].method);
		pcre2_code_free((pcre2_code *)f->rules[i].value);
	}
	free(f->hits);
	free(f);
}

/* --- per-thread scratch --- */

struct filter_scratch *filter_scratch_new(void)
{
	struct filter_scratch *fs = calloc(1, sizeof(*fs));

	if (fs == NULL)
		return NULL;
	/* One ovector pair: we only ask whether a pattern matched. */
	fs->md = pcre2_match_data_create(1, NULL);
	fs->mctx = pcre2_match_context_create(NULL);
	fs->jit_stack = pcre2_jit_stack_create(FILTER_JIT_STACK_MIN, FILTER_JIT_STACK_MAX, NULL);
	if (fs->md == NULL || fs->mctx == NULL || fs->jit_stack == NULL) {
		filter_scratch_free(fs);
		return NULL;
	}
	pcre2_set_match_limit(fs->mctx, FILTER_MATCH_LIMIT);
	pcre2_set_depth_limit(fs->mctx, FILTER_DEPTH_LIMIT);
	pcre2_set_heap_limit(fs->mctx, FILTER_HEAP_LIMIT_KB);
	/* Our own JIT stack, so JIT matching never runs on (or is bounded by)
	 * the shard's machine stack. */
	pcre2_jit_stack_assign(fs->mctx, NULL, fs->jit_stack);
	return fs;
}

void filter_scratch_free(struct filter_scratch *fs)
{
	if (fs == NULL)
		return;
	pcre2_match_data_free(fs->md);
	pcre2_match_context_free(fs->mctx);
	pcre2_jit_stack_free(fs->jit_stack);
	free(fs);
}

/* --- matching --- */

/* matches runs `re` over `s`. Anything but a clean "no match" is a match:
 * a hostile request that drives a pattern into its limits is blocked, not
 * waved through (fail closed), and counted among the limit hits. */
static bool matches(const struct filter *f, struct filter_scratch *fs, const pcre2_code *re,
                    struct h1_str s)
{
	/* An empty slice may carry a NULL pointer, which pcre2_match refuses. */
	PCRE2_SPTR subject = s.len > 0 ? (PCRE2_SPTR)s.ptr : (PCRE2_SPTR) "";
	int rc = pcre2_match(re, subject, s.len, 0, f->match_opts, fs->md, fs->mctx);

	/* rc == 0: matched, but the groups did not fit our one-pair ovector. */
	if (rc >= 0)
		return true;
	if (rc == PCRE2_ERROR_NOMATCH)
		return false;
	atomic_fetch_add_explicit(&f->hits[f->num_rules].n, 1, memory_order_relaxed);
	return true;
}

static bool method_allowed(const struct filter *f, struct h1_str method)
{
	for (size_t i = 0; i < f->num_methods; i++) {
		if (method.len == f->methods[i].len &&
		    memcmp(method.ptr, f->method_buf + f->methods[i].off, method.len) == 0)
			return true;
	}
	return false;
}

/* header_matches says whether some field named r->header has a value that
 * r->value matches (or, without a value pattern, whether one is present). */
static bool header_matches(const struct filter *f, struct filter_scratch *fs,
                           const struct filter_rule *r, const struct h1_header *headers,
                           size_t nheaders)
{
	for (size_t i = 0; i < nheaders; i++) {
		const struct h1_header *h = &headers[i];

		if (h->name.len != r->header_len || !h1_str_ieq(h->name, r->header))
			continue;
		if (r->value == NULL || matches(f, fs, r->value, h->value))
			return true;
	}
	return false;
}

/* rule_matches ANDs a rule's conditions, cheapest first: the method is
 * short, and a missing header rules a header rule out without any regex. */
static bool rule_matches(const struct filter *f, struct filter_scratch *fs,
                         const struct filter_rule *r, struct h1_str method, struct h1_str target,
                         const struct h1_header *headers, size_t nheaders)
{
	if (r->method != NULL && !matches(f, fs, r->method, method))
		return false;
	if (r->header_len > 0 && !header_matches(f, fs, r, headers, nheaders))
		return false;
	if (r->path != NULL && !matches(f, fs, r->path, target))
		return false;
	return true;
}

enum filter_verdict filter_check(const struct filter *f, struct filter_scratch *fs,
                                 struct h1_str method, struct h1_str target,
                                 const struct h1_header *headers, size_t nheaders,
                                 const char **rule_name)
{
	const char *name = NULL;
	enum filter_verdict v = FILTER_PASS;

	if (f == NULL)
		goto out;
	RLB_ASSERT_HOT(fs != NULL);
	RLB_ASSERT_HOT(nheaders == 0 || headers != NULL);
	if (f->num_methods > 0 && !method_allowed(f, method)) {
		v = FILTER_METHOD;
		name = "method";
		goto out;
	}
	if (f->max_uri > 0 && target.len > f->max_uri) {
		v = FILTER_URI_TOO_LONG;
		name = "max_uri";
		goto out;
	}
	for (size_t i = 0; i < f->num_rules; i++) {
		if (rule_matches(f, fs, &f->rules[i], method, target, headers, nheaders)) {
			atomic_fetch_add_explicit(&f->hits[i].n, 1, memory_order_relaxed);
			v = FILTER_RULE;
			name = f->rules[i].name;
			break;
		}
	}
out:
	if (rule_name != NULL)
		*rule_name = name;
	return v;
}

/* --- metrics --- */

uint64_t filter_rule_hits(const struct filter *f, size_t i)
{
	RLB_ASSERT(f != NULL);
	RLB_ASSERT(i < f->num_rules);
	return atomic_load_explicit(&f->hits[i].n, memory_order_relaxed);
}

uint64_t filter_limit_hits(const struct filter *f)
{
	RLB_ASSERT(f != NULL);
	return atomic_load_explicit(&f->hits[f->num_rules].n, memory_order_relaxed);
}

size_t filter_num_rules(const struct filter *f)
{
	return f == NULL ? 0 : f->num_rules;
}

const char *filter_rule_name(const struct filter *f, size_t i)
{
	RLB_ASSERT(f != NULL);
	RLB_ASSERT(i < f->num_rules);
	return f->rules[i].name;
}
