/* tests/fuzz/h1_fuzz.c — libFuzzer harness for core/h1.c.
 *
 * Goal: no input makes the parser, the chunked decoder or the writers read or
 * write out of bounds, crash, or give an answer that depends on how the input
 * was split across calls.
 *
 * Method: the first input byte picks the limits and the writer options, the
 * second picks a split point; the rest is the message. Each parser runs
 * once on the whole message, once in two calls split at that point (each call
 * on an exactly sized copy, so ASan sees any read past the bytes given), and
 * once byte by byte; all three must agree. A successful head is written back
 * with h1_write_request / h1_write_response into exactly sized buffers, must
 * not fit one byte shorter, and must parse again with the same framing.
 */
#include "core/common.c"
#include "core/h1.c"

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "h1_fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define FUZZ_HEADERS_CAP  64
#define FUZZ_BYTEWISE_MAX 4096 /* byte-by-byte runs only on inputs this small */

struct fuzz_cfg {
	struct h1_limits lim;
	struct h1_chunked_limits clim;
	bool head_request;
	bool client_http10;
	bool keep_alive;
	bool override_host;
};

/* One parse result with its slices stored as offsets, so results from
 * different copies of the same bytes compare equal. */
struct fuzz_head {
	enum h1_result r;
	struct h1_msg m;
	struct h1_header h[FUZZ_HEADERS_CAP];
};

static void fuzz_cfg_from(uint8_t sel, struct fuzz_cfg *cfg)
{
	static const size_t line_max[] = {8192, 4, 17, 64};
	static const size_t head_max[] = {65536, 2, 40, 200};
	static const size_t headers_max[] = {FUZZ_HEADERS_CAP, 0, 1, 3};

	cfg->lim.line_bytes_max = line_max[sel & 3];
	cfg->lim.head_bytes_max = head_max[(sel >> 2) & 3];
	cfg->lim.headers_max = headers_max[(sel >> 4) & 3];
	cfg->clim.line_bytes_max = line_max[(sel >> 2) & 3];
	cfg->clim.trailer_bytes_max = head_max[sel & 3];
	cfg->head_request = sel & 0x40;
	cfg->client_http10 = sel & 0x80;
	cfg->keep_alive = sel & 0x10;
	cfg->override_host = sel & 0x20;
}

static enum h1_result fuzz_parse_call(bool is_request, const struct fuzz_cfg *cfg,
                                      struct h1_scan *scan, const char *buf, size_t len,
                                      struct fuzz_head *out)
{
	out->m.headers = out->h;
	out->m.headers_cap = FUZZ_HEADERS_CAP;
	if (is_request)
		return h1_parse_request(scan, buf, len, &cfg->lim, &out->m);
	return h1_parse_response(scan, buf, len, &cfg->lim, cfg->head_request, &out->m);
}

static bool fuzz_str_eq(struct h1_str a, const char *abase, struct h1_str b, const char *bbase)
{
	if (a.len != b.len)
		return false;
	if (a.len == 0)
		return true;
	return a.ptr - abase == b.ptr - bbase;
}

/* fuzz_head_eq compares two results; on H1_OK every field must match. */
static void fuzz_head_eq(const struct fuzz_head *a, const char *abase, const struct fuzz_head *b,
                         const char *bbase)
{
	CHECK(a->r == b->r);
	if (a->r != H1_OK)
		return;
	CHECK(fuzz_str_eq(a->m.method, abase, b->m.method, bbase));
	CHECK(fuzz_str_eq(a->m.target, abase, b->m.target, bbase));
	CHECK(fuzz_str_eq(a->m.reason, abase, b->m.reason, bbase));
	CHECK(fuzz_str_eq(a->m.host, abase, b->m.host, bbase));
	CHECK(a->m.status == b->m.status && a->m.version_minor == b->m.version_minor);
	CHECK(a->m.num_headers == b->m.num_headers && a->m.head_len == b->m.head_len);
	CHECK(a->m.body == b->m.body && a->m.conn_flags == b->m.conn_flags);
	CHECK(a->m.body != H1_BODY_LENGTH || a->m.content_length == b->m.content_length);
	CHECK(a->m.keep_alive == b->m.keep_alive);
	CHECK(a->m.expect_continue == b->m.expect_continue);
	CHECK(a->m.expect_other == b->m.expect_other);
	for (size_t i = 0; i < a->m.num_headers; i++) {
		CHECK(fuzz_str_eq(a->h[i].name, abase, b->h[i].name, bbase));
		CHECK(fuzz_str_eq(a->h[i].value, abase, b->h[i].value, bbase));
	}
}

static char *fuzz_copy(const char *p, size_t n)
{
	char *c = malloc(n ? n : 1);

	CHECK(c != NULL);
	memcpy(c, p, n);
	return c;
}

/* fuzz_parse_split parses in two calls, each on its own exact copy. The
 * result's slices point into *out_base, which the caller frees. */
static void fuzz_parse_split(bool is_request, const struct fuzz_cfg *cfg, const char *buf,
                             size_t len, size_t split, struct fuzz_head *out, char **out_base)
{
	struct h1_scan scan = {0};
	char *first = fuzz_copy(buf, split);

	out->r = fuzz_parse_call(is_request, cfg, &scan, first, split, out);
	*out_base = first;
	if (out->r != H1_PARTIAL)
		return;
	CHECK(scan.pos <= split);
	free(first);
	*out_base = fuzz_copy(buf, len);
	out->r = fuzz_parse_call(is_request, cfg, &scan, *out_base, len, out);
}

static void fuzz_parse_bytewise(bool is_request, const struct fuzz_cfg *cfg, const char *buf,
                                size_t len, struct fuzz_head *out)
{
	struct h1_scan scan = {0};

	out->r = H1_PARTIAL;
	for (size_t n = 0; n <= len && out->r == H1_PARTIAL; n++)
		out->r = fuzz_parse_call(is_request, cfg, &scan, buf, n, out);
}

static void fuzz_write_request(const struct fuzz_cfg *cfg, const struct h1_msg *m)
{
	static char out[1 << 17];
	struct h1_fwd_request fwd = {
	        .client_addr = {"192.0.2.7", 9},
	        .proto = {"https", 5},
	        .target = m->target,
	};

	/* An HTTP/1.0 request without Host must get one upstream. */
	if (cfg->override_host || m->host.ptr == NULL)
		fwd.host = (struct h1_str){"backend.example:8080", 20};
	size_t n = h1_write_request(out, sizeof(out), m, &fwd);
	CHECK(n > 0);
	char *exact = malloc(n);
	CHECK(exact != NULL && h1_write_request(exact, n, m, &fwd) == n);
	CHECK(memcmp(exact, out, n) == 0);
	CHECK(h1_write_request(exact, n - 1, m, &fwd) == 0);
	free(exact);

	struct h1_limits big = {sizeof(out), sizeof(out), FUZZ_HEADERS_CAP * 2};
	struct h1_header h[FUZZ_HEADERS_CAP * 2];
	struct h1_msg again = {.headers = h, .headers_cap = FUZZ_HEADERS_CAP * 2};
	struct h1_scan scan = {0};
	CHECK(h1_parse_request(&scan, out, n, &big, &again) == H1_OK);
	CHECK(again.head_len == n && again.body == m->body);
	CHECK(again.body != H1_BODY_LENGTH || again.content_length == m->content_length);
	CHECK(again.method.len == m->method.len && again.target.len == m->target.len);
}

static void fuzz_write_response(const struct fuzz_cfg *cfg, const struct h1_msg *m)
{
	static char out[1 << 17];
	struct h1_fwd_response fwd = {
	        .client_http10 = cfg->client_http10,
	        .keep_alive = cfg->keep_alive,
	        .chunked = m->body == H1_BODY_CHUNKED && !cfg->client_http10,
	};
	size_t n = h1_write_response(out, sizeof(out), m, &fwd);

	CHECK(n > 0);
	char *exact = malloc(n);
	CHECK(exact != NULL && h1_write_response(exact, n, m, &fwd) == n);
	CHECK(memcmp(exact, out, n) == 0);
	CHECK(h1_write_response(exact, n - 1, m, &fwd) == 0);
	free(exact);

	struct h1_limits big = {sizeof(out), sizeof(out), FUZZ_HEADERS_CAP * 2};
	struct h1_header h[FUZZ_HEADERS_CAP * 2];
	struct h1_msg again = {.headers = h, .headers_cap = FUZZ_HEADERS_CAP * 2};
	struct h1_scan scan = {0};
	CHECK(h1_parse_response(&scan, out, n, &big, cfg->head_request, &again) == H1_OK);
	CHECK(again.head_len == n && again.status == m->status);
	if (!cfg->client_http10 || m->body != H1_BODY_CHUNKED)
		CHECK(again.body == m->body);
}

static void fuzz_head(bool is_request, const struct fuzz_cfg *cfg, const char *buf, size_t len,
                      size_t split)
{
	static struct fuzz_head whole, part, bytewise;
	struct h1_scan scan = {0};
	char *base;

	whole.r = fuzz_parse_call(is_request, cfg, &scan, buf, len, &whole);
	CHECK(whole.r != H1_OK || whole.m.head_len <= len);
	fuzz_parse_split(is_request, cfg, buf, len, split, &part, &base);
	fuzz_head_eq(&whole, buf, &part, base);
	free(base);
	if (len <= FUZZ_BYTEWISE_MAX) {
		fuzz_parse_bytewise(is_request, cfg, buf, len, &bytewise);
		fuzz_head_eq(&whole, buf, &bytewise, buf);
	}
	if (whole.r != H1_OK)
		return;
	CHECK(whole.m.head_len <= cfg->lim.head_bytes_max);
	if (is_request)
		fuzz_write_request(cfg, &whole.m);
	else
		fuzz_write_response(cfg, &whole.m);
}

/* fuzz_chunked feeds the body whole, split and byte by byte, and decodes it
 * whole and split; every run must agree, and decoding must keep exactly the
 * chunk data. */
static void fuzz_chunked(const struct fuzz_cfg *cfg, const char *buf, size_t len, size_t split)
{
	struct h1_chunked c = {0};
	size_t consumed, c1, c2, d1, d2, whole_data;
	enum h1_result r = h1_chunked_feed(&c, &cfg->clim, buf, len, &consumed);

	CHECK(consumed <= len && (r != H1_PARTIAL || consumed == len));
	c = (struct h1_chunked){0};
	enum h1_result r1 = h1_chunked_feed(&c, &cfg->clim, buf, split, &c1);
	c2 = 0;
	if (r1 == H1_PARTIAL)
		r1 = h1_chunked_feed(&c, &cfg->clim, buf + split, len - split, &c2);
	CHECK(r1 == r && c1 + c2 == consumed);

	if (len <= FUZZ_BYTEWISE_MAX) {
		c = (struct h1_chunked){0};
		enum h1_result rb = H1_PARTIAL;
		size_t i = 0, n;
		for (; i < len && rb == H1_PARTIAL; i++) {
			rb = h1_chunked_feed(&c, &cfg->clim, buf + i, 1, &n);
			CHECK(n <= 1);
		}
		CHECK(rb == r && i - (rb == H1_PARTIAL || rb == H1_OK ? 0 : 1) == consumed);
	}

	char *one = fuzz_copy(buf, len);
	char *two = fuzz_copy(buf, len);
	c = (struct h1_chunked){0};
	CHECK(h1_chunked_decode(&c, &cfg->clim, one, len, &c1, &whole_data) == r);
	CHECK(c1 == consumed && whole_data <= consumed);
	c = (struct h1_chunked){0};
	r1 = h1_chunked_decode(&c, &cfg->clim, two, split, &c1, &d1);
	c2 = d2 = 0;
	if (r1 == H1_PARTIAL)
		r1 = h1_chunked_decode(&c, &cfg->clim, two + split, len - split, &c2, &d2);
	CHECK(r1 == r && c1 + c2 == consumed && d1 + d2 == whole_data);
	CHECK(memcmp(one, two, d1) == 0 && memcmp(one + d1, two + split, d2) == 0);
	free(one);
	free(two);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_cfg cfg;

	if (size < 2)
		return 0;
	fuzz_cfg_from(data[0], &cfg);
	const char *buf = (const char *)data + 2;
	const size_t len = size - 2;
	const size_t split = (size_t)data[1] * len / 255;

	fuzz_head(true, &cfg, buf, len, split);
	fuzz_head(false, &cfg, buf, len, split);
	cfg.head_request = !cfg.head_request;
	fuzz_head(false, &cfg, buf, len, split);
	fuzz_chunked(&cfg, buf, len, split);
	return 0;
}
