/* tests/unit/core/compress_test.c — unit tests for core/compress.c.
 *
 * Goal: the module keeps the promises of its header. Negotiation follows
 * RFC 9110 12.5.3 as the header states it: the highest q wins, ties go to
 * the server's order, q=0 excludes, "*" covers what is not listed, x-gzip
 * is gzip, case and whitespace do not matter, malformed members count as
 * q=0 and nothing crashes, and identity is the answer when nothing else is
 * acceptable, even when identity itself is refused (ringlb never sends
 * 406). Content-Type matching ignores parameters, case and whitespace and
 * knows the already-compressed types. Each coding's output decodes, with
 * the library's own decoder, to exactly the input, whatever the split of
 * the input and the size of the output buffers (down to one byte), with
 * flushes mixed in; a flush makes everything given so far decodable; an
 * empty body is a valid empty stream; text really gets smaller. The pool
 * hands out at most max_streams encoders, counts in-use and peak, and a
 * reused encoder (after a finished or an abandoned stream) writes a
 * correct, independent stream.
 *
 * Method: the module is #included so the pool's counters can be checked.
 * Field values are copied into heap buffers of their exact length, so
 * AddressSanitizer catches any read past `len`; output buffers are also
 * allocated at their exact capacity. Input is a 100 KiB HTML-like page and
 * splits come from a fixed-seed xorshift, so every run is identical.
 * Decoding uses inflate (windowBits 31), BrotliDecoderDecompressStream and
 * ZSTD_decompressStream. No timing assertions.
 */
#include "core/compress.c"

#include <brotli/decode.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const uint8_t prefs_bzg[] = {ZENC_BR, ZENC_ZSTD, ZENC_GZIP};

static uint64_t rng_state;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

/* neg negotiates `ae` (NULL: no field) copied to a buffer of its exact
 * length, with the server preferring br, zstd, gzip. */
static enum zenc neg_p(const char *ae, const uint8_t *prefs, size_t nprefs)
{
	size_t len = ae != NULL ? strlen(ae) : 0;
	char *copy = NULL;
	enum zenc e;

	if (ae != NULL) {
		copy = malloc(len ? len : 1);
		assert_non_null(copy);
		memcpy(copy, ae, len);
	}
	e = zenc_negotiate(copy, len, prefs, nprefs);
	free(copy);
	return e;
}

static enum zenc neg(const char *ae)
{
	return neg_p(ae, prefs_bzg, sizeof(prefs_bzg));
}

/* ---- tokens and negotiation ------------------------------------------ */

static void test_parse_names(void **state)
{
	(void)state;
	assert_string_equal(zenc_names[ZENC_IDENTITY], "identity");
	assert_string_equal(zenc_names[ZENC_GZIP], "gzip");
	assert_string_equal(zenc_names[ZENC_BR], "br");
	assert_string_equal(zenc_names[ZENC_ZSTD], "zstd");
	assert_int_equal(zenc_parse("gzip", 4), ZENC_GZIP);
	assert_int_equal(zenc_parse("GZip", 4), ZENC_GZIP);
	assert_int_equal(zenc_parse("x-gzip", 6), ZENC_GZIP);
	assert_int_equal(zenc_parse("BR", 2), ZENC_BR);
	assert_int_equal(zenc_parse("zstd", 4), ZENC_ZSTD);
	assert_int_equal(zenc_parse("identity", 8), ZENC_IDENTITY);
	assert_int_equal(zenc_parse("gzipx", 4), ZENC_GZIP); /* only len bytes count */
	assert_int_equal(zenc_parse("gzi", 3), -1);
	assert_int_equal(zenc_parse("deflate", 7), -1);
	assert_int_equal(zenc_parse("", 0), -1);
	assert_int_equal(zenc_parse(NULL, 0), -1);
}

static void test_negotiate_qvalues(void **state)
{
	(void)state;
	assert_int_equal(neg("gzip;q=0.5, br;q=0.8"), ZENC_BR);
	assert_int_equal(neg("gzip, br;q=0.5"), ZENC_GZIP);
	assert_int_equal(neg("gzip;q=1.0, br;q=0.999"), ZENC_GZIP);
	assert_int_equal(neg("gzip;q=0.001, zstd;q=0.002"), ZENC_ZSTD);
	assert_int_equal(neg("gzip;q=1, zstd;q=1."), ZENC_ZSTD);
	assert_int_equal(neg("deflate, gzip;q=0.1"), ZENC_GZIP);
	assert_int_equal(neg("deflate, compress"), ZENC_IDENTITY);
}

static void test_negotiate_ties(void **state)
{
	static const uint8_t gzip_first[] = {ZENC_GZIP, ZENC_BR};
	static const uint8_t zstd_only[] = {ZENC_ZSTD};
	static const uint8_t junk[] = {ZENC_IDENTITY, 200, ZENC_COUNT, ZENC_GZIP};

	(void)state;
	assert_int_equal(neg("gzip, deflate, br, zstd"), ZENC_BR);
	assert_int_equal(neg("gzip, zstd"), ZENC_ZSTD);
	assert_int_equal(neg("gzip;q=0.5, zstd;q=0.5, br;q=0.4"), ZENC_ZSTD);
	assert_int_equal(neg_p("br, gzip", gzip_first, 2), ZENC_GZIP);
	assert_int_equal(neg_p("br, gzip", zstd_only, 1), ZENC_IDENTITY);
	assert_int_equal(neg_p("*", zstd_only, 1), ZENC_ZSTD);
	assert_int_equal(neg_p("br, gzip", junk, sizeof(junk)), ZENC_GZIP);
	assert_int_equal(neg_p("br, gzip", NULL, 0), ZENC_IDENTITY);
	assert_int_equal(neg_p("br, gzip", prefs_bzg, 0), ZENC_IDENTITY);
}

static void test_negotiate_exclusion_and_star(void **state)
{
	(void)state;
	assert_int_equal(neg("br;q=0, gzip"), ZENC_GZIP);
	assert_int_equal(neg("gzip;q=0"), ZENC_IDENTITY);
	assert_int_equal(neg("gzip;q=0.000"), ZENC_IDENTITY);
	assert_int_equal(neg("*"), ZENC_BR);
	assert_int_equal(neg("*;q=0.5, gzip"), ZENC_GZIP);
	assert_int_equal(neg("br;q=0, *"), ZENC_ZSTD);
	assert_int_equal(neg("br;q=0, zstd;q=0, *;q=0.1"), ZENC_GZIP);
	assert_int_equal(neg("*;q=0"), ZENC_IDENTITY);
	assert_int_equal(neg("*;q=0, gzip"), ZENC_GZIP);
	assert_int_equal(neg("gzip, *;q=0"), ZENC_GZIP);
	/* A coding listed twice keeps its lowest q: a refusal wins. */
	assert_int_equal(neg("gzip;q=0, gzip"), ZENC_IDENTITY);
	assert_int_equal(neg("br, br;q=0.1, gzip;q=0.5"), ZENC_GZIP);
	/* Identity refused: still identity, never 406. */
	assert_int_equal(neg("identity;q=0"), ZENC_IDENTITY);
	assert_int_equal(neg("identity;q=0, *;q=0"), ZENC_IDENTITY);
	assert_int_equal(neg("identity;q=0, gzip"), ZENC_GZIP);
	assert_int_equal(neg("identity"), ZENC_IDENTITY);
}

static void test_negotiate_spelling(void **state)
{
	(void)state;
	assert_int_equal(neg("x-gzip"), ZENC_GZIP);
	assert_int_equal(neg("X-GZIP;q=0.3, br;q=0.2"), ZENC_GZIP);
	assert_int_equal(neg("x-gzip;q=0"), ZENC_IDENTITY);
	assert_int_equal(neg("GZIP"), ZENC_GZIP);
	assert_int_equal(neg("Br"), ZENC_BR);
	assert_int_equal(neg(" \t gzip ; q=0.5 ,BR;Q=0.6 "), ZENC_BR);
	assert_int_equal(neg("gzip,br"), ZENC_BR);
	assert_int_equal(neg("gzip\t,\tzstd\t"), ZENC_ZSTD);
	assert_int_equal(neg("gzip;level=1;q=0.5, br;q=0.4"), ZENC_GZIP);
	assert_int_equal(neg("gzip;foo=\"a,br\";q=0.5, zstd;q=0.4"), ZENC_GZIP);
}

static void test_negotiate_malformed(void **state)
{
	static const char *const bad[] = {
	        "gzip;q=abc",  "gzip;q=1.5", "gzip;q=2",     "gzip;q=0.1234",    "gzip;q=",
	        "gzip;q",      "gzip;=",     "gzip;q=-1",    "gzip;q=.5",        "gzip;q=0.5x",
	        "gzip;q=1.01", "gzip x",     "gzip;q=\"1\"", "gzip;q=0.5;q=bad", "gzip;;",
	        "gzip;q=0 5",  "gzip;q=1e0", "gzip=1",
	};

	(void)state;
	/* Each member here is malformed: q=0, so gzip is not chosen. */
	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++)
		assert_int_equal(neg(bad[i]), ZENC_IDENTITY);
	/* A malformed member does not spoil the others. */
	assert_int_equal(neg("br;q=zz, gzip;q=0.2"), ZENC_GZIP);
	assert_int_equal(neg(";;;,,,gzip,,"), ZENC_GZIP);
	assert_int_equal(neg("\"gzip\", br"), ZENC_BR);
	assert_int_equal(neg("br;x=\"unterminated, gzip"), ZENC_IDENTITY);
	assert_int_equal(neg("gzip;q=0.5;q=0.9"), ZENC_GZIP);
}

static void test_negotiate_empty_absent_fuzz(void **state)
{
	static const char alphabet[] = "gzipbrstd*x-;q=0.15, \t\"\\eEQ";
	char buf[48];

	(void)state;
	assert_int_equal(neg(NULL), ZENC_IDENTITY);
	assert_int_equal(neg(""), ZENC_IDENTITY);
	assert_int_equal(neg("   "), ZENC_IDENTITY);
	assert_int_equal(neg(","), ZENC_IDENTITY);
	assert_int_equal(zenc_negotiate("gzip", 0, prefs_bzg, 3), ZENC_IDENTITY);
	assert_int_equal(zenc_negotiate(NULL, 10, prefs_bzg, 3), ZENC_IDENTITY);
	/* Random junk never crashes and answers a valid coding. */
	rng_state = 0x1234567;
	for (int k = 0; k < 20000; k++) {
		size_t n = rnd() % (sizeof(buf) - 1);
		enum zenc e;

		for (size_t i = 0; i < n; i++)
			buf[i] = rnd() % 8 ? alphabet[rnd() % (sizeof(alphabet) - 1)] : (char)rnd();
		buf[n] = '\0';
		e = zenc_negotiate(buf, n, prefs_bzg, 3);
		assert_true(e >= ZENC_IDENTITY && e < ZENC_COUNT);
	}
}

/* ---- media types ----------------------------------------------------- */

static bool tm(const char *ct, const char *const *types, size_t n)
{
	size_t len = strlen(ct);
	char *copy = malloc(len ? len : 1);
	bool r;

	assert_non_null(copy);
	memcpy(copy, ct, len);
	r = ztype_match(copy, len, types, n);
	free(copy);
	return r;
}

static void test_type_match(void **state)
{
	static const char *const html[] = {"text/html"};
	static const char *const text_any[] = {"text/*"};
	static const char *const any[] = {"*/*"};
	static const char *const mixed[] = {"application/json", "Application/JavaScript",
	                                    "image/*"};

	(void)state;
	assert_true(tm("text/html", html, 1));
	assert_true(tm("text/html; charset=utf-8", html, 1));
	assert_true(tm("TEXT/HTML;charset=UTF-8", html, 1));
	assert_true(tm("  \ttext/html  ", html, 1));
	assert_true(tm(" text/html ; charset=utf-8", html, 1));
	assert_false(tm("text/htmlx", html, 1));
	assert_false(tm("text/htm", html, 1));
	assert_false(tm("text/plain", html, 1));
	assert_true(tm("text/css", text_any, 1));
	assert_true(tm("Text/Plain; format=flowed", text_any, 1));
	assert_false(tm("textx/css", text_any, 1));
	assert_false(tm("text", text_any, 1));
	assert_false(tm("application/json", text_any, 1));
	assert_true(tm("application/json", any, 1));
	assert_false(tm("nonsense", any, 1));
	assert_true(tm("application/javascript", mixed, 3));
	assert_true(tm("image/svg+xml", mixed, 3));
	assert_false(tm("application/jsonx", mixed, 3));
	assert_false(tm("", html, 1));
	assert_false(tm("   ;charset=utf-8", html, 1));
	assert_false(tm("text/html", html, 0));
	assert_false(ztype_match("text/html", 9, NULL, 1));
	assert_false(ztype_match(NULL, 0, html, 1));
}

static bool pre(const char *ct)
{
	return ztype_precompressed(ct, strlen(ct));
}

static void test_type_precompressed(void **state)
{
	static const char *const yes[] = {
	        "image/png",
	        "image/jpeg",
	        "IMAGE/WEBP",
	        "image/avif",
	        "image/gif",
	        "video/mp4",
	        "audio/mpeg",
	        "application/zip",
	        "application/gzip",
	        "application/x-gzip",
	        "application/zstd",
	        "application/x-bzip2",
	        "application/x-xz",
	        "application/pdf",
	        "application/x-7z-compressed",
	        "font/woff",
	        "font/woff2",
	        "application/x-rar-compressed",
	        "application/octet-stream; x=1",
	};
	static const char *const no[] = {
	        "image/svg+xml", "image/svg+xml; charset=utf-8",
	        "image/x-icon",  "image/bmp",
	        "text/html",     "application/json",
	        "text/css",      "application/javascript",
	        "font/ttf",      "",
	        "image",         "application/wasm",
	};

	(void)state;
	for (size_t i = 0; i < RLB_ARRAY_LEN(yes); i++)
		assert_true(pre(yes[i]));
	for (size_t i = 0; i < RLB_ARRAY_LEN(no); i++)
		assert_false(pre(no[i]));
}

/* ---- encoders: helpers ------------------------------------------------ */

#define PAGE_SIZE_TEXT (100 * 1024)

static const char *const words[] = {
        "the",    "proxy",  "server", "request", "response", "upstream", "header",
        "stream", "buffer", "ring",   "shard",   "balancer", "health",   "timeout",
        "cache",  "client", "kernel", "socket",  "memory",   "thread",
};

/* make_page fills buf with an HTML-like page of exactly len bytes. */
static void make_page(char *buf, size_t len, uint64_t seed)
{
	static const char *const open[] = {"<div class=\"item\"><a href=\"/p/", "<p id=\"x",
	                                   "<li><span>", "<tr><td>"};
	static const char *const close[] = {"</a></div>\n", "</p>\n", "</span></li>\n",
	                                    "</td></tr>\n"};
	size_t n = 0;

	rng_state = seed;
	while (n < len) {
		unsigned k = rnd() % 4;
		char piece[256];
		int m = snprintf(piece, sizeof(piece), "%s%u\">", open[k], rnd() % 100000);

		for (unsigned w = 3 + rnd() % 12; w > 0 && m < 200; w--)
			m += snprintf(piece + m, sizeof(piece) - (size_t)m, "%s ",
			              words[rnd() % 20]);
		m += snprintf(piece + m, sizeof(piece) - (size_t)m, "%s", close[k]);
		for (int i = 0; i < m && n < len; i++)
			buf[n++] = piece[i];
	}
}

/* A growing byte string. */
struct bytes {
	uint8_t *p;
	size_t len, cap;
};

static void bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* out_size picks an output capacity: often tiny, 1 byte included. */
static size_t out_size(void)
{
	static const size_t sizes[] = {1, 1, 2, 3, 5, 7, 16, 64, 100, 1000, 4096, 16384};

	return sizes[rnd() % RLB_ARRAY_LEN(sizes)];
}

/* drain_flush flushes z into `c` through buffers of random small sizes. */
static void drain_flush(struct zstream *z, struct bytes *c)
{
	size_t cap, got;

	do {
		uint8_t *out;

		cap = out_size();
		out = malloc(cap);
		assert_non_null(out);
		assert_int_equal(zstream_flush(z, out, cap, &got), ZS_OK);
		assert_true(got <= cap);
		bytes_add(c, out, got);
		free(out);
	} while (got == cap);
}

/* compress_random compresses in[0..len) with z into `c`: input in random
 * slices (empty ones too), output buffers of random small sizes, and now and
 * then a zstream_flush, finishing with all the rest given. */
static void compress_random(struct zstream *z, const void *in, size_t len, struct bytes *c,
                            bool flushes)
{
	const uint8_t *src = in;
	size_t off = 0, guard = 0;
	enum zs_result r;

	do {
		size_t slice = rnd() % 8 == 0 ? 0 : 1 + rnd() % 9000, cap = out_size(), used, got;
		bool finish = off + slice >= len;
		uint8_t *out = malloc(cap);
		uint8_t *piece;

		if (finish)
			slice = len - off;
		/* Exact-size copies let ASan catch reads past the slice. */
		piece = malloc(slice ? slice : 1);
		assert_non_null(out);
		assert_non_null(piece);
		if (slice > 0)
			memcpy(piece, src + off, slice);
		r = zstream_run(z, slice ? piece : NULL, slice, &used, out, cap, &got, finish);
		assert_int_not_equal(r, ZS_ERROR);
		assert_true(used <= slice && got <= cap);
		if (!finish)
			assert_int_equal(r, ZS_OK);
		off += used;
		bytes_add(c, out, got);
		free(out);
		free(piece);
		if (flushes && !finish && rnd() % 16 == 0) {
			uint8_t one;

			if (rnd() % 2) {
				drain_flush(z, c);
			} else {
				/* Start a flush and leave it for zstream_run to end. */
				assert_int_equal(zstream_flush(z, &one, 1, &got), ZS_OK);
				bytes_add(c, &one, got);
			}
		}
		assert_true(++guard < 10 * 1000 * 1000);
	} while (r != ZS_END);
	assert_int_equal(off, len);
}

/* decode decodes c with the coding's own decoder into out (cap bytes);
 * *n is the length decoded. Returns whether the stream was complete. */
static bool decode(enum zenc e, const struct bytes *c, uint8_t *out, size_t cap, size_t *n)
{
	if (e == ZENC_GZIP) {
		z_stream s = {0};
		int r;

		assert_int_equal(inflateInit2(&s, 31), Z_OK);
		s.next_in = c->p;
		s.avail_in = (uInt)c->len;
		s.next_out = out;
		s.avail_out = (uInt)cap;
		r = inflate(&s, Z_SYNC_FLUSH);
		assert_true(r == Z_OK || r == Z_STREAM_END || r == Z_BUF_ERROR);
		*n = cap - s.avail_out;
		inflateEnd(&s);
		return r == Z_STREAM_END && s.avail_in == 0;
	}
	if (e == ZENC_BR) {
		BrotliDecoderState *d = BrotliDecoderCreateInstance(NULL, NULL, NULL);
		size_t ain = c->len, aout = cap;
		const uint8_t *ni = c->p;
		uint8_t *no = out;
		BrotliDecoderResult r;

		assert_non_null(d);
		r = BrotliDecoderDecompressStream(d, &ain, &ni, &aout, &no, NULL);
		assert_int_not_equal(r, BROTLI_DECODER_RESULT_ERROR);
		*n = cap - aout;
		BrotliDecoderDestroyInstance(d);
		return r == BROTLI_DECODER_RESULT_SUCCESS && ain == 0;
	}
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer ib = {c->p, c->len, 0};
	ZSTD_outBuffer ob = {out, cap, 0};
	size_t r;

	assert_non_null(d);
	r = ZSTD_decompressStream(d, &ob, &ib);
	assert_false(ZSTD_isError(r));
	assert_int_equal(ib.pos, ib.size);
	*n = ob.pos;
	ZSTD_freeDCtx(d);
	return r == 0;
}

/* check_decodes asserts c is a complete stream of exactly in[0..len). */
static void check_decodes(enum zenc e, const struct bytes *c, const void *in, size_t len)
{
	uint8_t *out = malloc(len + 4096);
	size_t n;

	assert_non_null(out);
	assert_true(decode(e, c, out, len + 4096, &n));
	assert_int_equal(n, len);
	assert_memory_equal(out, in, len);
	free(out);
}

static void check_magic(enum zenc e, const struct bytes *c)
{
	assert_true(c->len >= 4);
	if (e == ZENC_GZIP)
		assert_true(c->p[0] == 0x1f && c->p[1] == 0x8b);
	if (e == ZENC_ZSTD)
		assert_true(c->p[0] == 0x28 && c->p[1] == 0xb5 && c->p[2] == 0x2f &&
		            c->p[3] == 0xfd);
}

static char *new_page(size_t len, uint64_t seed)
{
	char *p = malloc(len);

	assert_non_null(p);
	make_page(p, len, seed);
	return p;
}

/* ---- encoders: round trips ------------------------------------------- */

static void test_round_trip(void **state)
{
	char *page = new_page(PAGE_SIZE_TEXT, 42);
	struct zpool p;

	(void)state;
	zpool_init(&p, NULL);
	for (int e = ZENC_GZIP; e < ZENC_COUNT; e++) {
		for (int run = 0; run < 3; run++) {
			struct zstream *z = zstream_get(&p, (enum zenc)e);
			struct bytes c = {0};

			assert_non_null(z);
			assert_int_equal(zstream_enc(z), e);
			rng_state = 1000 + (uint64_t)e * 10 + (uint64_t)run;
			compress_random(z, page, PAGE_SIZE_TEXT, &c, run > 0);
			check_magic((enum zenc)e, &c);
			check_decodes((enum zenc)e, &c, page, PAGE_SIZE_TEXT);
			/* Text gets much smaller (about 1/4 here). */
			assert_true(c.len < PAGE_SIZE_TEXT / 3);
			zstream_put(&p, z);
			free(c.p);
		}
	}
	assert_int_equal(zpool_in_use(&p), 0);
	zpool_destroy(&p);
	free(page);
}

/* Every level of every coding round-trips (a smaller page). */
static void test_all_levels(void **state)
{
	const size_t len = 12 * 1024;
	char *page = new_page(len, 7);

	(void)state;
	for (int level = 0; level <= 19; level++) {
		struct zconf conf = {level, level, level, 4};
		struct zpool p;

		zpool_init(&p, &conf);
		assert_true(p.conf.gzip_level >= 1 && p.conf.gzip_level <= 9);
		assert_true(p.conf.br_level >= 0 && p.conf.br_level <= 11);
		assert_true(p.conf.zstd_level >= 1 && p.conf.zstd_level <= 19);
		for (int e = ZENC_GZIP; e < ZENC_COUNT; e++) {
			struct zstream *z = zstream_get(&p, (enum zenc)e);
			struct bytes c = {0};

			assert_non_null(z);
			rng_state = 77 + (uint64_t)level;
			compress_random(z, page, len, &c, true);
			check_decodes((enum zenc)e, &c, page, len);
			zstream_put(&p, z);
			free(c.p);
		}
		zpool_destroy(&p);
	}
	free(page);
}

/* A body far larger than Brotli's 256 KiB slice, given whole in finishing
 * calls: Brotli takes it one slice per call (the rest is given again) and
 * still ends only after the last byte; every coding decodes it. */
static void test_large_single_call(void **state)
{
	const size_t len = 600 * 1024, cap = 1 << 20;
	char *page = new_page(len, 11);
	uint8_t *out = malloc(cap);
	struct zpool p;

	(void)state;
	assert_non_null(out);
	zpool_init(&p, NULL);
	for (int e = ZENC_GZIP; e < ZENC_COUNT; e++) {
		struct zstream *z = zstream_get(&p, (enum zenc)e);
		struct bytes c = {0};
		size_t off = 0, used, got;
		enum zs_result r;
		int calls = 0;

		assert_non_null(z);
		do {
			r = zstream_run(z, page + off, len - off, &used, out, cap, &got, true);
			assert_int_not_equal(r, ZS_ERROR);
			if (e == ZENC_BR)
				assert_true(used <= ZPOOL_BR_SLICE);
			off += used;
			bytes_add(&c, out, got);
			assert_true(++calls < 100);
		} while (r != ZS_END);
		assert_int_equal(off, len);
		if (e == ZENC_BR)
			assert_true(calls >= 3);
		check_decodes((enum zenc)e, &c, page, len);
		zstream_put(&p, z);
		free(c.p);
	}
	zpool_destroy(&p);
	free(out);
	free(page);
}

/* An empty body is a complete stream that decodes to nothing, whether the
 * input pointer is NULL or not, and with a 1-byte output buffer. */
static void test_empty_input(void **state)
{
	struct zpool p;

	(void)state;
	zpool_init(&p, NULL);
	for (int e = ZENC_GZIP; e < ZENC_COUNT; e++) {
		for (int k = 0; k < 2; k++) {
			struct zstream *z = zstream_get(&p, (enum zenc)e);
			struct bytes c = {0};
			enum zs_result r;
			uint8_t one;
			size_t used, got;
			int calls = 0;

			assert_non_null(z);
			do {
				r = zstream_run(z, k ? "x" : NULL, 0, &used, &one, 1, &got, true);
				assert_int_not_equal(r, ZS_ERROR);
				assert_int_equal(used, 0);
				bytes_add(&c, &one, got);
				assert_true(++calls < 1000);
			} while (r != ZS_END);
			check_decodes((enum zenc)e, &c, "", 0);
			/* After the end: nothing more, and input is refused. */
			assert_int_equal(zstream_run(z, NULL, 0, &used, &one, 1, &got, true),
			                 ZS_END);
			assert_int_equal(got, 0);
			assert_int_equal(zstream_run(z, "x", 1, &used, &one, 1, &got, false),
			                 ZS_ERROR);
			assert_int_equal(zstream_flush(z, &one, 1, &got), ZS_OK);
			assert_int_equal(got, 0);
			zstream_put(&p, z);
			free(c.p);
		}
	}
	zpool_destroy(&p);
}

/* feed_all gives z all of in[0..len) without finishing, through 3-byte
 * output buffers, into c. */
static void feed_all(struct zstream *z, const char *in, size_t len, struct bytes *c)
{
	size_t off = 0, used, got;
	uint8_t out[3];

	while (off < len) {
		assert_int_equal(
		        zstream_run(z, in + off, len - off, &used, out, sizeof(out), &got, false),
		        ZS_OK);
		off += used;
		bytes_add(c, out, got);
	}
}

/* After a flush the output so far decodes to all the input so far (and is
 * not yet a complete stream); the finished stream decodes to all of it. A
 * flush before any input is harmless. */
static void test_flush_prefix(void **state)
{
	const size_t len = 40 * 1024, half = 17 * 1024 + 5;
	char *page = new_page(len, 9);
	uint8_t *out = malloc(len + 4096);
	struct zpool p;

	(void)state;
	assert_non_null(out);
	zpool_init(&p, NULL);
	for (int e = ZENC_GZIP; e < ZENC_COUNT; e++) {
		struct zstream *z = zstream_get(&p, (enum zenc)e);
		struct bytes c = {0};
		size_t n, before;

		assert_non_null(z);
		rng_state = 5 + (uint64_t)e;
		drain_flush(z, &c);
		feed_all(z, page, half, &c);
		drain_flush(z, &c);
		assert_false(decode((enum zenc)e, &c, out, len + 4096, &n));
		assert_int_equal(n, half);
		assert_memory_equal(out, page, half);
		/* A second flush with nothing new adds (almost) nothing. */
		before = c.len;
		drain_flush(z, &c);
		assert_true(c.len - before <= 8);
		feed_all(z, page + half, 100, &c);
		drain_flush(z, &c);
		assert_false(decode((enum zenc)e, &c, out, len + 4096, &n));
		assert_int_equal(n, half + 100);
		compress_random(z, page + half + 100, len - half - 100, &c, false);
		check_decodes((enum zenc)e, &c, page, len);
		zstream_put(&p, z);
		free(c.p);
	}
	zpool_destroy(&p);
	free(out);
	free(page);
}

/* ---- the pool --------------------------------------------------------- */

static void test_pool_limit(void **state)
{
	struct zconf conf;
	struct zpool p;
	struct zstream *a, *b, *c;

	(void)state;
	zconf_default(&conf);
	assert_int_equal(conf.gzip_level, 6);
	assert_int_equal(conf.br_level, 4);
	assert_int_equal(conf.zstd_level, 3);
	assert_int_equal(conf.max_streams, 64);
	conf.max_streams = 2;
	zpool_init(&p, &conf);
	assert_int_equal(p.alive, 0); /* nothing allocated yet */
	assert_null(zstream_get(&p, ZENC_IDENTITY));
	assert_null(zstream_get(&p, ZENC_COUNT));
	a = zstream_get(&p, ZENC_GZIP);
	b = zstream_get(&p, ZENC_ZSTD);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(zpool_in_use(&p), 2);
	assert_null(zstream_get(&p, ZENC_BR));
	assert_null(zstream_get(&p, ZENC_GZIP));
	assert_int_equal(zpool_in_use(&p), 2);
	assert_int_equal(zpool_peak(&p), 2);
	/* A put makes room; the idle zstd context is freed for a br one. */
	zstream_put(&p, b);
	assert_int_equal(zpool_in_use(&p), 1);
	c = zstream_get(&p, ZENC_BR);
	assert_non_null(c);
	assert_int_equal(zstream_enc(c), ZENC_BR);
	assert_int_equal(p.alive, 2);
	assert_int_equal(p.nidle[ZENC_ZSTD], 0);
	assert_null(zstream_get(&p, ZENC_ZSTD));
	zstream_put(&p, a);
	zstream_put(&p, c);
	zstream_put(&p, NULL);
	assert_int_equal(zpool_in_use(&p), 0);
	assert_int_equal(zpool_peak(&p), 2);
	assert_true(p.alive <= 2);
	zpool_destroy(&p);

	/* max_streams 0 disables compression. */
	conf.max_streams = 0;
	zpool_init(&p, &conf);
	assert_null(zstream_get(&p, ZENC_GZIP));
	assert_int_equal(zpool_peak(&p), 0);
	zpool_destroy(&p);
}

/* abandon starts a stream on z and leaves it mid-way, some output unread. */
static void abandon(struct zstream *z, const char *in, size_t len)
{
	struct bytes junk = {0};
	uint8_t one;
	size_t got;

	feed_all(z, in, len, &junk);
	assert_int_equal(zstream_flush(z, &one, 1, &got), ZS_OK);
	free(junk.p);
}

/* A context handed out again after a finished or an abandoned stream (even
 * mid-flush) writes a correct stream of its own input only. */
static void test_reuse(void **state)
{
	const size_t len = 30 * 1024;
	char *a = new_page(len, 1), *b = new_page(len, 2);
	struct zconf conf;
	struct zpool p;

	(void)state;
	zconf_default(&conf);
	conf.max_streams = 1;
	zpool_init(&p, &conf);
	for (int e = ZENC_GZIP; e < ZENC_COUNT; e++) {
		for (int k = 0; k < 3; k++) {
			struct zstream *z = zstream_get(&p, (enum zenc)e), *again;
			struct bytes c = {0};

			assert_non_null(z);
			if (k == 0) {
				compress_random(z, a, len, &c, false);
				free(c.p);
				c = (struct bytes){0};
			} else {
				abandon(z, a, k == 1 ? len : 10);
			}
			zstream_put(&p, z);
			again = zstream_get(&p, (enum zenc)e);
			assert_ptr_equal(again, z); /* the same context, reused */
			rng_state = 300 + (uint64_t)k;
			compress_random(again, b, len, &c, true);
			check_decodes((enum zenc)e, &c, b, len);
			zstream_put(&p, again);
			free(c.p);
		}
	}
	assert_int_equal(zpool_peak(&p), 1);
	zpool_destroy(&p);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_names),
	        cmocka_unit_test(test_negotiate_qvalues),
	        cmocka_unit_test(test_negotiate_ties),
	        cmocka_unit_test(test_negotiate_exclusion_and_star),
	        cmocka_unit_test(test_negotiate_spelling),
	        cmocka_unit_test(test_negotiate_malformed),
	        cmocka_unit_test(test_negotiate_empty_absent_fuzz),
	        cmocka_unit_test(test_type_match),
	        cmocka_unit_test(test_type_precompressed),
	        cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_all_levels),
	        cmocka_unit_test(test_large_single_call),
	        cmocka_unit_test(test_empty_input),
	        cmocka_unit_test(test_flush_prefix),
	        cmocka_unit_test(test_pool_limit),
	        cmocka_unit_test(test_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
