/* tests/fuzz/cache_fuzz.c — libFuzzer harness for cache/rules.c and the
 * parsers of core/compress.c.
 *
 * Goal: no Cache-Control value, HTTP date, conditional field, Vary list,
 * key part or Accept-Encoding value a client or backend sends makes the
 * cache's rules or the coding negotiation read out of bounds, crash, or
 * return a value outside its contract.
 *
 * Method: the first input byte picks what the rest is fed to; every
 * parser gets an exactly sized heap copy (ASan sees any read past it).
 * Checks: directive values are unset or non-negative; a parsed date
 * formats and parses back to itself; the decision functions agree with
 * the age they report; a Vary signature or key never exceeds its buffer
 * and is stable; negotiation returns a coding it was offered, or identity.
 */
#include "cache/rules.c"
#include "core/common.c"
#include "core/compress.c"

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "cache_fuzz: check failed: %s (line %d)\n", #cond,         \
			        __LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define FUZZ_FIELDS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* split_fields cuts `p` at newlines into header fields "name:value". */
static size_t split_fields(char *p, size_t len, struct h1_header *h, size_t cap)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len && n < cap; i++) {
		if (i < len && p[i] != '\n')
			continue;
		char *line = p + start;
		size_t ll = i - start;
		char *colon = memchr(line, ':', ll);

		if (colon != NULL) {
			h[n].name = (struct h1_str){line, (size_t)(colon - line)};
			h[n].value = (struct h1_str){colon + 1, ll - (size_t)(colon - line) - 1};
			n++;
		}
		start = i + 1;
	}
	return n;
}

static void check_cc(const char *p, size_t len)
{
	struct cc d;

	cc_init(&d);
	cc_parse(&d, p, len);
	CHECK(d.max_age == CC_UNSET || d.max_age >= 0);
	CHECK(d.s_maxage == CC_UNSET || d.s_maxage >= 0);
	CHECK(d.stale_while_revalidate == CC_UNSET || d.stale_while_revalidate >= 0);
	CHECK(d.stale_if_error == CC_UNSET || d.stale_if_error >= 0);
	CHECK(d.min_fresh == CC_UNSET || d.min_fresh >= 0);
	CHECK(d.max_stale == CC_UNSET || d.max_stale >= 0);
}

static void check_date(const char *p, size_t len)
{
	int64_t t = http_date_parse(p, len);
	char out[32];

	if (t < 0 || t > 253402300799LL) /* the formatter clamps past 9999 */
		return;
	CHECK(http_date_format(t, out) == 29);
	CHECK(http_date_parse(out, 29) == t);
}

static void check_fields(char *p, size_t len, uint8_t sel)
{
	struct h1_header h[FUZZ_FIELDS];
	size_t n = split_fields(p, len, h, FUZZ_FIELDS);
	struct cache_resp_info rs;
	struct cache_req_info rq;
	struct cache_rules_cfg cfg = {sel & 1, 10, 86400, sel & 2};
	struct cache_times t;
	char sig[256], key[256], sig2[256];
	size_t sl, kl;
	int64_t age = -1;

	cache_resp_from_headers(&rs, 200 + (sel % 4) * 100, h, n);
	cache_req_from_headers(&rq, h, n);
	if (rs.date < 0)
		rs.date = 1700000000;
	(void)cache_unstorable(&rq, &rs, &cfg);
	CHECK(cache_freshness_lifetime(&rs, &cfg) >= 0);
	cache_times_init(&t, &rs, &cfg, 1700000000, 1700000001);
	(void)cache_decide(&rq, &t, 1700000000 + (int64_t)sel * 1000, &age);
	CHECK(age >= 0);
	(void)cache_stale_if_error_ok(&rq, &t, 1700000000 + (int64_t)sel * 1000);
	sl = cache_vary_sig(sig, sizeof(sig), h, n, h, n, (sel & 4) ? "br" : NULL);
	CHECK(sl == SIZE_MAX || sl <= sizeof(sig));
	CHECK(cache_vary_sig(sig2, sizeof(sig2), h, n, h, n, (sel & 4) ? "br" : NULL) == sl);
	CHECK(sl == SIZE_MAX || memcmp(sig, sig2, sl) == 0);
	kl = cache_key_build(key, sizeof(key), (struct h1_str){"GET", 3},
	                     n > 0 ? h[0].value : (struct h1_str){"h", 1},
	                     n > 1 ? h[1].value : (struct h1_str){"/", 1},
	                     n > 2 ? &h[2].name : NULL, n > 2 ? 1 : 0, h, n);
	CHECK(kl <= sizeof(key));
	if (n > 1)
		(void)cache_not_modified(h[0].value.ptr, h[0].value.len, h[1].value.ptr,
		                         h[1].value.len, "\"a\"", 3, 1700000000, 1700000000);
}

static void check_negotiation(const char *p, size_t len, uint8_t sel)
{
	static const uint8_t all[] = {ZENC_BR, ZENC_ZSTD, ZENC_GZIP};
	size_t np = sel % 4;
	enum zenc e = zenc_negotiate(p, len, all, np);
	bool offered = e == ZENC_IDENTITY;
	static const char *const types[] = {"text/*", "application/json", "image/svg+xml"};

	for (size_t i = 0; i < np; i++)
		offered |= all[i] == e;
	CHECK(offered);
	(void)ztype_match(p, len, types, 3);
	(void)ztype_precompressed(p, len);
	(void)zenc_parse(p, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	size--;
	p = malloc(size > 0 ? size : 1);
	if (p == NULL)
		return 0;
	memcpy(p, data + 1, size);
	switch (sel >> 6) {
	case 0:
		check_cc(p, size);
		break;
	case 1:
		check_date(p, size);
		break;
	case 2:
		check_fields(p, size, sel);
		break;
	default:
		check_negotiation(p, size, sel);
		break;
	}
	free(p);
	return 0;
}
