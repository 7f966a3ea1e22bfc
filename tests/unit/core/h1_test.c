/* tests/unit/core/h1_test.c — unit tests for core/h1.c.
 *
 * Goal: every rule of the HTTP/1.1 parser, the chunked decoder and the head
 * writers holds at its edge, each refusal is reported with its own code, and
 * the answer never depends on how the input was split.
 *
 * Method: one cmocka test per rule, each citing the RFC 9110 / 9112 section
 * it comes from. Every head goes through parse_head(), which parses it in
 * one call, then byte by byte (len = 0, 1, 2, ...), then in two calls split
 * at every position, and checks that all runs give the same result and the
 * same message. Inputs are copied into exactly sized heap buffers so that
 * ASan (make SANITIZE=1) sees any read past the end. Chunked bodies are fed
 * and decoded whole, byte by byte and split at every position. Writers are
 * checked against exact expected bytes and at every too-small capacity.
 */
#include "core/h1.c"

#include <setjmp.h> /* cmocka needs these before its header */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#define HDRS 128

static const struct h1_limits lim_std = {8192, 65536, 100};
static const struct h1_chunked_limits clim_std = {4096, 8192};

/* The heap copy of the input the last parse_head() used; its slices stay
 * valid until the next call. */
static char *g_buf;

struct parsed {
	enum h1_result r;
	struct h1_msg m;
	struct h1_header h[HDRS];
};

#define assert_result(got, want)                                                                   \
	do {                                                                                       \
		enum h1_result got_ = (got), want_ = (want);                                       \
		if (got_ != want_) {                                                               \
			print_error("got \"%s\", want \"%s\"\n", h1_result_name(got_),             \
			            h1_result_name(want_));                                        \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

#define assert_str(slice, lit)                                                                     \
	do {                                                                                       \
		struct h1_str s_ = (slice);                                                        \
		if (s_.len != strlen(lit) || memcmp(s_.ptr, (lit), s_.len) != 0) {                 \
			print_error("got \"%.*s\", want \"%s\"\n", (int)s_.len, s_.ptr, (lit));    \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

static void msg_init(struct parsed *p, size_t cap)
{
	memset(&p->m, 0, sizeof(p->m));
	p->m.headers = p->h;
	p->m.headers_cap = cap;
}

static void assert_same_msg(const struct h1_msg *a, const struct h1_msg *b)
{
	assert_ptr_equal(a->method.ptr, b->method.ptr);
	assert_int_equal(a->method.len, b->method.len);
	assert_ptr_equal(a->target.ptr, b->target.ptr);
	assert_int_equal(a->target.len, b->target.len);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->reason.len, b->reason.len);
	assert_int_equal(a->version_minor, b->version_minor);
	assert_int_equal(a->num_headers, b->num_headers);
	for (size_t i = 0; i < a->num_headers; i++) {
		assert_ptr_equal(a->headers[i].name.ptr, b->headers[i].name.ptr);
		assert_int_equal(a->headers[i].name.len, b->headers[i].name.len);
		assert_ptr_equal(a->headers[i].value.ptr, b->headers[i].value.ptr);
		assert_int_equal(a->headers[i].value.len, b->headers[i].value.len);
	}
	assert_int_equal(a->head_len, b->head_len);
	assert_int_equal(a->body, b->body);
	assert_int_equal(a->content_length, b->content_length);
	assert_int_equal(a->conn_flags, b->conn_flags);
	assert_int_equal(a->keep_alive, b->keep_alive);
	assert_int_equal(a->expect_continue, b->expect_continue);
	assert_int_equal(a->expect_other, b->expect_other);
	assert_ptr_equal(a->host.ptr, b->host.ptr);
	assert_int_equal(a->host.len, b->host.len);
}

struct head_opts {
	bool response;
	bool head_request;
	const struct h1_limits *lim; /* NULL: lim_std */
	size_t cap;                  /* 0: HDRS */
};

static enum h1_result head_call(const struct head_opts *o, struct h1_scan *scan, const char *buf,
                                size_t len, struct parsed *p)
{
	const struct h1_limits *lim = o->lim ? o->lim : &lim_std;

	if (o->response)
		return h1_parse_response(scan, buf, len, lim, o->head_request, &p->m);
	return h1_parse_request(scan, buf, len, lim, &p->m);
}

/* parse_head parses s[0..len) whole, byte by byte, and split in two at
 * every position; all must agree. The whole-input result is left in *out. */
static enum h1_result parse_head(const struct head_opts *o, const char *s, size_t len,
                                 struct parsed *out)
{
	static struct parsed inc;
	const size_t cap = o->cap ? o->cap : HDRS;
	struct h1_scan scan = {0};

	free(g_buf);
	g_buf = malloc(len ? len : 1);
	assert_non_null(g_buf);
	memcpy(g_buf, s, len);
	msg_init(out, cap);
	out->r = head_call(o, &scan, g_buf, len, out);

	/* byte by byte: the caller's buffer grows by one byte per call */
	struct h1_scan bscan = {0};
	enum h1_result r = H1_PARTIAL;
	msg_init(&inc, cap);
	for (size_t n = 0; n <= len && r == H1_PARTIAL; n++)
		r = head_call(o, &bscan, g_buf, n, &inc);
	assert_result(r, out->r);
	if (r == H1_OK)
		assert_same_msg(&out->m, &inc.m);

	for (size_t k = 0; k <= len; k++) {
		struct h1_scan sscan = {0};
		msg_init(&inc, cap);
		r = head_call(o, &sscan, g_buf, k, &inc);
		if (r == H1_PARTIAL)
			r = head_call(o, &sscan, g_buf, len, &inc);
		assert_result(r, out->r);
		if (r == H1_OK)
			assert_same_msg(&out->m, &inc.m);
	}
	return out->r;
}

static enum h1_result req(const char *s, struct parsed *p)
{
	const struct head_opts o = {0};

	return parse_head(&o, s, strlen(s), p);
}

static enum h1_result req_lim(const char *s, const struct h1_limits *lim, struct parsed *p)
{
	const struct head_opts o = {.lim = lim};

	return parse_head(&o, s, strlen(s), p);
}

static enum h1_result resp(const char *s, bool head_request, struct parsed *p)
{
	const struct head_opts o = {.response = true, .head_request = head_request};

	return parse_head(&o, s, strlen(s), p);
}

static int group_teardown(void **state)
{
	(void)state;
	free(g_buf);
	g_buf = NULL;
	return 0;
}

/* ---------------------------------------------------------------- requests */

/* RFC 9112 §3: request-line = method SP request-target SP HTTP-version. */
static void test_req_get(void **state)
{
	static struct parsed p;
	const char *s = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
	(void)state;

	assert_result(req(s, &p), H1_OK);
	assert_str(p.m.method, "GET");
	assert_str(p.m.target, "/index.html?q=1");
	assert_int_equal(p.m.version_minor, 1);
	assert_int_equal(p.m.num_headers, 2);
	assert_str(p.h[0].name, "Host");
	assert_str(p.h[0].value, "example.com");
	assert_str(p.h[1].name, "Accept");
	assert_str(p.h[1].value, "*/*");
	assert_str(p.m.host, "example.com");
	assert_int_equal(p.m.head_len, strlen(s));
	assert_int_equal(p.m.body, H1_BODY_NONE); /* RFC 9112 §6.3 item 7 */
	assert_true(p.m.keep_alive);              /* RFC 9112 §9.3 */
	assert_int_equal(p.m.conn_flags, 0);
	assert_false(p.m.expect_continue || p.m.expect_other);
}

/* RFC 9112 §6.3 item 6: Content-Length gives the body length; the head ends
 * at the empty line and the body is not part of it. */
static void test_req_post_content_length(void **state)
{
	static struct parsed p;
	const char *head = "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
	char s[128];
	(void)state;

	snprintf(s, sizeof(s), "%shelloGET / HTTP/1.1\r\n", head);
	assert_result(req(s, &p), H1_OK);
	assert_int_equal(p.m.head_len, strlen(head));
	assert_int_equal(p.m.body, H1_BODY_LENGTH);
	assert_int_equal(p.m.content_length, 5);
}

/* RFC 9110 §8.6: Content-Length: 0 is a body of length zero (BODY_LENGTH). */
static void test_req_content_length_zero(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &p), H1_OK);
	assert_int_equal(p.m.body, H1_BODY_LENGTH);
	assert_int_equal(p.m.content_length, 0);
	assert_result(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 00012\r\n\r\n", &p),
	              H1_OK);
	assert_int_equal(p.m.content_length, 12);
	/* the largest uint64_t */
	assert_result(
	        req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
	            &p),
	        H1_OK);
	assert_true(p.m.content_length == UINT64_MAX);
}

/* RFC 9112 §6.1, §7.1: Transfer-Encoding: chunked, case-insensitive. */
static void test_req_chunked(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &p),
	              H1_OK);
	assert_int_equal(p.m.body, H1_BODY_CHUNKED);
	assert_result(req("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding:  ChUnKeD \r\n\r\n", &p),
	              H1_OK);
	assert_int_equal(p.m.body, H1_BODY_CHUNKED);
}

/* RFC 9112 §9.3, §C.2.2: an HTTP/1.0 request persists only with keep-alive;
 * RFC 9112 §3.2: HTTP/1.0 may lack Host. */
static void test_req_http10(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / HTTP/1.0\r\n\r\n", &p), H1_OK);
	assert_int_equal(p.m.version_minor, 0);
	assert_false(p.m.keep_alive);
	assert_null(p.m.host.ptr);
	assert_result(req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &p), H1_OK);
	assert_true(p.m.keep_alive);
	assert_int_equal(p.m.conn_flags, H1_CONN_KEEP_ALIVE);
	assert_result(req("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &p), H1_OK);
	assert_false(p.m.keep_alive);
	assert_result(req("GET / HTTP/1.0\r\nHost: a\r\nContent-Length: 3\r\n\r\n", &p), H1_OK);
	assert_int_equal(p.m.body, H1_BODY_LENGTH);
}

/* RFC 9110 §7.6.1: Connection options are a comma list of tokens over all
 * Connection fields; RFC 9112 §9.6: "close" ends a 1.1 connection. */
static void test_req_connection_options(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &p), H1_OK);
	assert_false(p.m.keep_alive);
	assert_int_equal(p.m.conn_flags, H1_CONN_CLOSE);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade ,, X-A\r\n"
	                  "connection:\tCLOSE\r\n\r\n",
	                  &p),
	              H1_OK);
	assert_int_equal(p.m.conn_flags, H1_CONN_UPGRADE | H1_CONN_OTHER | H1_CONN_CLOSE);
	assert_false(p.m.keep_alive);
	assert_true(h1_connection_lists(&p.m, (struct h1_str){"x-a", 3}));
	assert_true(h1_connection_lists(&p.m, (struct h1_str){"upgrade", 7}));
	assert_false(h1_connection_lists(&p.m, (struct h1_str){"X-", 2}));
	assert_false(h1_connection_lists(&p.m, (struct h1_str){"", 0}));
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", &p),
	              H1_OK);
	assert_true(p.m.keep_alive);
}

/* RFC 9112 §3.2.2: absolute-form targets are accepted (Host is still
 * required in 1.1); RFC 9112 §3.2.4: asterisk-form for OPTIONS. */
static void test_req_target_forms(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET http://example.com:8080/a/b?c=d#e HTTP/1.1\r\nHost: x\r\n\r\n", &p),
	              H1_OK);
	assert_str(p.m.target, "http://example.com:8080/a/b?c=d#e");
	assert_result(req("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &p), H1_OK);
	assert_str(p.m.method, "OPTIONS");
	assert_str(p.m.target, "*");
	assert_result(req("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", &p),
	              H1_OK);
	assert_str(p.m.target, "example.com:443");
	/* any token is a method (RFC 9110 §9.1) */
	assert_result(req("M-SEARCH! / HTTP/1.1\r\nHost: x\r\n\r\n", &p), H1_OK);
	assert_str(p.m.method, "M-SEARCH!");
}

/* RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the
 * request-line; we skip up to four, and count them in head_len. */
static void test_req_leading_crlf(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_OK);
	assert_str(p.m.method, "GET");
	assert_int_equal(p.m.head_len, 2 + 27);
	assert_result(req("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_OK);
	assert_int_equal(p.m.head_len, 8 + 27);
	assert_result(req("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &p),
	              H1_E_REQUEST_LINE);
}

/* RFC 9110 §5.5: field values may hold obs-text (0x80-0xFF); leading and
 * trailing OWS is not part of the value, inner whitespace is. */
static void test_req_field_values(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9 \xff\r\n\r\n", &p),
	              H1_OK);
	assert_str(p.h[1].value, "caf\xc3\xa9 \xff");
	assert_result(
	        req("GET / HTTP/1.1\r\nHost: a\r\nX: \t a \t b\t \r\nY:\r\nZ: \t\r\n\r\n", &p),
	        H1_OK);
	assert_str(p.h[1].value, "a \t b");
	assert_str(p.h[2].value, "");
	assert_str(p.h[3].value, "");
	assert_str(p.h[1].name, "X");
	/* field names keep their case (RFC 9110 §5.1 says they are
	 * case-insensitive; the writer forwards them as received) */
	assert_result(req("GET / HTTP/1.1\r\nhOsT: a\r\nX-MiXeD: 1\r\n\r\n", &p), H1_OK);
	assert_str(p.h[1].name, "X-MiXeD");
	assert_str(p.m.host, "a");
}

/* RFC 9110 §10.1.1: Expect: 100-continue (case-insensitive) is the only
 * expectation; any other is reported so the caller can answer 417. */
static void test_req_expect(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
	                  "Content-Length: 1\r\n\r\n",
	                  &p),
	              H1_OK);
	assert_true(p.m.expect_continue);
	assert_false(p.m.expect_other);
	assert_result(req("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", &p), H1_OK);
	assert_false(p.m.expect_continue);
	assert_true(p.m.expect_other);
}

/* RFC 9112 §3.2: Host is a uri-host with optional port: IPv6 literals and
 * ports pass. */
static void test_req_host_forms(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n", &p), H1_OK);
	assert_str(p.m.host, "[2001:db8::1]:8443");
	/* an empty Host is allowed when the target has no authority */
	assert_result(req("GET / HTTP/1.1\r\nHost:\r\n\r\n", &p), H1_OK);
	assert_non_null(p.m.host.ptr);
	assert_int_equal(p.m.host.len, 0);
}

/* Incomplete heads are H1_PARTIAL at every length (RFC 9112 §2.1: the head
 * ends with an empty line). */
static void test_req_partial(void **state)
{
	static struct parsed p;
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	const struct head_opts o = {0};
	(void)state;

	for (size_t n = 0; n < strlen(s); n++)
		assert_result(parse_head(&o, s, n, &p), H1_PARTIAL);
	assert_result(parse_head(&o, s, strlen(s), &p), H1_OK);
}

/* ---------------------------------------------------- request refusals */

/* RFC 9112 §2.2: a CR must be followed by LF; we refuse a bare CR wherever
 * it appears, as soon as the next byte shows it. */
static void test_err_bare_cr(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / HTTP/1.1\rHost: a\r\n\r\n", &p), H1_E_BARE_CR);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", &p), H1_E_BARE_CR);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", &p), H1_E_BARE_CR);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", &p), H1_E_BARE_CR);
	assert_result(req("\rGET / HTTP/1.1\r\n\r\n", &p), H1_E_BARE_CR);
	/* undecided while the CR is the last byte */
	assert_result(req("GET / HTTP/1.1\r", &p), H1_PARTIAL);
}

/* RFC 9112 §2.2 lets a recipient accept a bare LF as a line end; we refuse
 * it (a peer that does not would see a different message). */
static void test_err_bare_lf(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / HTTP/1.1\nHost: a\r\n\r\n", &p), H1_E_BARE_LF);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\n\r\n", &p), H1_E_BARE_LF);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\n\n", &p), H1_E_BARE_LF);
	assert_result(req("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_BARE_LF);
	assert_result(req("GET / HTTP/1.1\r\nX: a\nb\r\n\r\n", &p), H1_E_BARE_LF);
}

/* RFC 9110 §5.5: NUL is never allowed in a field value; we refuse it
 * anywhere in the head. */
static void test_err_nul(void **state)
{
	static struct parsed p;
	const struct head_opts o = {0};
	static const char a[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
	static const char b[] = "G\0T / HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char c[] = "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n";
	(void)state;

	assert_result(parse_head(&o, a, sizeof(a) - 1, &p), H1_E_NUL);
	assert_result(parse_head(&o, b, sizeof(b) - 1, &p), H1_E_NUL);
	assert_result(parse_head(&o, c, sizeof(c) - 1, &p), H1_E_NUL);
}

/* RFC 9112 §3.1, RFC 9110 §9.1: method = token. */
static void test_err_method(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_METHOD);
	assert_result(req("GE\x80T / HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_METHOD);
	assert_result(req("GET/ / HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_METHOD);
	assert_result(req("\"GET\" / HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_METHOD);
}

/* RFC 9112 §3.2: request-target is non-empty visible ASCII: controls,
 * whitespace other than the separators, DEL and obs-text are refused. */
static void test_err_target(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_TARGET);
	assert_result(req("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_TARGET);
	assert_result(req("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_TARGET);
	assert_result(req("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_TARGET);
	assert_result(req("GET \r\nHost: a\r\n\r\n", &p), H1_E_TARGET);
}

/* RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive. */
static void test_err_version(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / http/1.1\r\nHost: a\r\n\r\n", &p), H1_E_VERSION);
	assert_result(req("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", &p), H1_E_VERSION);
	assert_result(req("GET / HTTP/11\r\nHost: a\r\n\r\n", &p), H1_E_VERSION);
	assert_result(req("GET / HTTP/1\r\nHost: a\r\n\r\n", &p), H1_E_VERSION);
	assert_result(req("GET / HTTP/1.10\r\nHost: a\r\n\r\n", &p), H1_E_VERSION);
	assert_result(req("GET / HTTP/a.b\r\nHost: a\r\n\r\n", &p), H1_E_VERSION);
}

/* RFC 9110 §2.5, §15.6.6: a well-formed version we do not speak is 505. */
static void test_err_version_unsupported(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &p), H1_E_VERSION_UNSUPPORTED);
	assert_result(req("GET / HTTP/1.2\r\nHost: a\r\n\r\n", &p), H1_E_VERSION_UNSUPPORTED);
	assert_result(req("GET / HTTP/0.9\r\n\r\n", &p), H1_E_VERSION_UNSUPPORTED);
	assert_int_equal(h1_result_status(H1_E_VERSION_UNSUPPORTED), 505);
}

/* RFC 9112 §3: exactly one SP between the three parts; HTTP/0.9 simple
 * requests (no version) are refused. */
static void test_err_request_line(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_REQUEST_LINE);
	assert_result(req("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_REQUEST_LINE);
	assert_result(req(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_REQUEST_LINE);
	assert_result(req("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", &p), H1_E_REQUEST_LINE);
	assert_result(req("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_REQUEST_LINE);
	assert_result(req("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_E_REQUEST_LINE);
	assert_result(req("GET /\r\n\r\n", &p), H1_E_REQUEST_LINE);
	assert_result(req("GET\r\n\r\n", &p), H1_E_REQUEST_LINE);
}

/* RFC 9112 §3: a server answers 414 to a request line over its limit. The
 * limit counts the line without CRLF; the refusal comes as soon as one byte
 * too many has arrived, without waiting for the line end. */
static void test_err_line_too_long(void **state)
{
	static struct parsed p;
	const struct h1_limits lim = {16, 1024, 10};
	const struct head_opts o = {.lim = &lim};
	(void)state;

	/* "GET /ab HTTP/1.1" is 16 bytes, "GET /abc HTTP/1.1" 17 */
	assert_result(req_lim("GET /ab HTTP/1.1\r\nHost: a\r\n\r\n", &lim, &p), H1_OK);
	assert_result(req_lim("GET /abc HTTP/1.1\r\nHost: a\r\n\r\n", &lim, &p),
	              H1_E_LINE_TOO_LONG);
	assert_result(parse_head(&o, "GET /abc HTTP/1.", 16, &p), H1_PARTIAL);
	assert_result(parse_head(&o, "GET /abc HTTP/1.1", 17, &p), H1_E_LINE_TOO_LONG);
	/* a CR in 17th place may still be the line end */
	assert_result(parse_head(&o, "GET /ab HTTP/1.1\r", 17, &p), H1_PARTIAL);
	/* leading empty lines do not count; header lines are not limited */
	assert_result(req_lim("\r\n\r\nGET /ab HTTP/1.1\r\nHost: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
	                      &lim, &p),
	              H1_OK);
	assert_int_equal(h1_result_status(H1_E_LINE_TOO_LONG), 414);
}

/* RFC 6585 §5: a head over head_bytes_max is refused with 431, as soon as
 * head_bytes_max bytes have arrived without its end. */
static void test_err_head_too_large(void **state)
{
	static struct parsed p;
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\nX: 123456\r\n\r\n"; /* 38 bytes */
	struct h1_limits lim = {8192, 38, 10};
	const struct head_opts o = {.lim = &lim};
	(void)state;

	assert_int_equal(strlen(s), 38);
	assert_result(req_lim(s, &lim, &p), H1_OK);
	assert_int_equal(p.m.head_len, 38);
	lim.head_bytes_max = 37;
	assert_result(req_lim(s, &lim, &p), H1_E_HEAD_TOO_LARGE);
	assert_result(parse_head(&o, s, 36, &p), H1_PARTIAL);
	assert_result(parse_head(&o, s, 37, &p), H1_E_HEAD_TOO_LARGE);
	assert_int_equal(h1_result_status(H1_E_HEAD_TOO_LARGE), 431);
}

/* RFC 6585 §5: more fields than headers_max (or the caller's array) is
 * 431; exactly at the limit is fine. */
static void test_err_too_many_headers(void **state)
{
	static struct parsed p;
	char s[8192];
	size_t n = (size_t)snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: a\r\n");
	struct h1_limits lim = {8192, 65536, 100};
	(void)state;

	for (int i = 1; i < 100; i++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, "X-%d: %d\r\n", i, i);
	snprintf(s + n, sizeof(s) - n, "\r\n");
	assert_result(req_lim(s, &lim, &p), H1_OK);
	assert_int_equal(p.m.num_headers, 100);
	assert_str(p.h[99].name, "X-99");
	lim.headers_max = 99;
	assert_result(req_lim(s, &lim, &p), H1_E_TOO_MANY_HEADERS);
	/* the caller's array is a limit too */
	const struct head_opts o = {.cap = 2};
	assert_result(parse_head(&o, "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\n\r\n", 33, &p), H1_OK);
	assert_result(parse_head(&o, "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 1\r\n\r\n", 39, &p),
	              H1_E_TOO_MANY_HEADERS);
	assert_int_equal(h1_result_status(H1_E_TOO_MANY_HEADERS), 431);
}

/* RFC 9112 §5.2: obs-fold is refused (400); so is whitespace before the
 * first field line (RFC 9112 §2.2). */
static void test_err_obs_fold(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", &p), H1_E_OBS_FOLD);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", &p), H1_E_OBS_FOLD);
	assert_result(req("GET / HTTP/1.1\r\n Host: a\r\n\r\n", &p), H1_E_OBS_FOLD);
}

/* RFC 9112 §5.1: no whitespace between field name and colon; a server
 * MUST reject it with 400. */
static void test_err_space_before_colon(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &p), H1_E_SPACE_BEFORE_COLON);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n", &p),
	              H1_E_SPACE_BEFORE_COLON);
}

/* RFC 9110 §5.1: field-name = token, non-empty, followed by ':'. */
static void test_err_header_name(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", &p), H1_E_HEADER_NAME);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nX@Y: v\r\n\r\n", &p), H1_E_HEADER_NAME);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", &p), H1_E_HEADER_NAME);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nX Y: v\r\n\r\n", &p), H1_E_HEADER_NAME);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: v\r\n\r\n", &p),
	              H1_E_HEADER_NAME);
}

/* RFC 9110 §5.5: field values are HTAB, SP, VCHAR and obs-text; other CTLs
 * and DEL are refused. */
static void test_err_header_value(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", &p), H1_E_HEADER_VALUE);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", &p), H1_E_HEADER_VALUE);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[0m\r\n\r\n", &p),
	              H1_E_HEADER_VALUE);
}

/* RFC 9110 §8.6: Content-Length = 1*DIGIT; we also refuse values that do
 * not fit in 64 bits. */
static void test_err_cl_invalid(void **state)
{
	static struct parsed p;
	static const char *const bad[] = {"abc",
	                                  "-1",
	                                  "+5",
	                                  "",
	                                  "5 5",
	                                  "0x10",
	                                  "1e3",
	                                  "5;",
	                                  "18446744073709551616",
	                                  "99999999999999999999999"};
	char s[256];
	(void)state;

	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++) {
		snprintf(s, sizeof(s), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n\r\n",
		         bad[i]);
		assert_result(req(s, &p), H1_E_CL_INVALID);
	}
}

/* RFC 9110 §8.6 lets a recipient collapse "5, 5"; RFC 9112 §6.3 item 5 and
 * §11.2 make any disagreement a smuggling risk, so every list and every
 * second Content-Length field is refused, even when equal. */
static void test_err_cl_duplicate(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", &p),
	              H1_E_CL_DUPLICATE);
	assert_result(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", &p),
	              H1_E_CL_DUPLICATE);
	assert_result(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	                  "content-length: 5\r\n\r\n",
	                  &p),
	              H1_E_CL_DUPLICATE);
	assert_result(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	                  "Content-Length: 6\r\n\r\n",
	                  &p),
	              H1_E_CL_DUPLICATE);
}

/* RFC 9112 §6.1, §6.3 item 3, §11.2: Transfer-Encoding with Content-Length
 * is the classic smuggling vector; refused in either order. */
static void test_err_te_and_cl(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
	                  "Transfer-Encoding: chunked\r\n\r\n",
	                  &p),
	              H1_E_TE_AND_CL);
	assert_result(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	                  "Content-Length: 4\r\n\r\n",
	                  &p),
	              H1_E_TE_AND_CL);
}

/* RFC 9112 §6.1, §6.3 item 4: a request's final coding must be chunked; we
 * decode no other coding, so "chunked" must be the only one, counted over
 * all Transfer-Encoding fields (RFC 9110 §5.3). RFC 9112 §6.1: a server
 * answers 501 to codings it does not understand; a proxy refuses. */
static void test_err_te_unsupported(void **state)
{
	static struct parsed p;
	static const char *const bad[] = {
	        "gzip",         "gzip, chunked", "chunked, chunked", "",
	        "chunked;q=1",  "chunked,",      ", chunked",        "xchunked",
	        "chunked gzip", "\"chunked\"",   "chunked, gzip"};
	char s[256];
	(void)state;

	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++) {
		snprintf(s, sizeof(s),
		         "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n", bad[i]);
		assert_result(req(s, &p), H1_E_TE_UNSUPPORTED);
	}
	assert_result(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	                  "Transfer-Encoding: chunked\r\n\r\n",
	                  &p),
	              H1_E_TE_UNSUPPORTED);
	assert_result(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
	                  "Transfer-Encoding: chunked\r\n\r\n",
	                  &p),
	              H1_E_TE_UNSUPPORTED);
}

/* RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty
 * framing; the connection must close after it, so we refuse it. */
static void test_err_te_http10(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", &p),
	              H1_E_TE_HTTP10);
	assert_result(resp("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, &p),
	              H1_E_TE_HTTP10);
}

/* RFC 9112 §3.2: a 1.1 request without Host, with two, or with an invalid
 * value is answered 400. HTTP/1.0 may lack Host but not repeat it. */
static void test_err_host(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(req("GET / HTTP/1.1\r\n\r\n", &p), H1_E_HOST);
	assert_result(req("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", &p), H1_E_HOST);
	assert_result(req("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", &p), H1_E_HOST);
	assert_result(req("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", &p), H1_E_HOST);
	assert_result(req("GET / HTTP/1.1\r\nHost: evil.com/x\r\n\r\n", &p), H1_E_HOST);
	assert_result(req("GET / HTTP/1.1\r\nHost: user@evil.com\r\n\r\n", &p), H1_E_HOST);
	assert_result(req("GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", &p), H1_E_HOST);
}

/* Every refusal has a name and a status: 414, 431, 505 or 400. */
static void test_result_names_and_statuses(void **state)
{
	(void)state;

	for (int r = 0; r < H1_RESULT_COUNT; r++) {
		const char *name = h1_result_name((enum h1_result)r);
		assert_non_null(name);
		assert_string_not_equal(name, "unknown");
		int st = h1_result_status((enum h1_result)r);
		if (r == H1_OK || r == H1_PARTIAL)
			assert_int_equal(st, 0);
		else if (r == H1_E_LINE_TOO_LONG)
			assert_int_equal(st, 414);
		else if (r == H1_E_HEAD_TOO_LARGE || r == H1_E_TOO_MANY_HEADERS)
			assert_int_equal(st, 431);
		else if (r == H1_E_VERSION_UNSUPPORTED)
			assert_int_equal(st, 505);
		else
			assert_int_equal(st, 400);
	}
	assert_string_equal(h1_result_name(H1_E_BARE_CR), "bare CR");
	assert_string_equal(h1_result_name(H1_RESULT_COUNT), "unknown");
}

/* h1_str_ieq compares ASCII case-insensitively (RFC 9110 §5.1 names). */
static void test_str_ieq(void **state)
{
	(void)state;

	assert_true(h1_str_ieq((struct h1_str){"Content-LENGTH", 14}, "content-length"));
	assert_false(h1_str_ieq((struct h1_str){"Content-Lengt", 13}, "content-length"));
	assert_false(h1_str_ieq((struct h1_str){"Content_Length", 14}, "content-length"));
	assert_true(h1_str_ieq((struct h1_str){"", 0}, ""));
	assert_false(h1_str_ieq((struct h1_str){"\xc3\xa9", 2}, "\xc3\x89"));
}

/* The scan, target and value loops test 8 bytes at a time: put each kind
 * of octet at every offset of a long line, so that it lands in every lane
 * of a word and in the byte-wise tail, and check the RFC 9110 §5.5 /
 * RFC 9112 §3.2 / §2.2 verdict. */
static void test_octet_at_every_offset(void **state)
{
	static struct parsed p;
	static const struct {
		char octet;
		enum h1_result in_value;
		enum h1_result in_target;
	} cases[] = {
	        {'\x01', H1_E_HEADER_VALUE, H1_E_TARGET},
	        {'\x7f', H1_E_HEADER_VALUE, H1_E_TARGET},
	        {'\x1f', H1_E_HEADER_VALUE, H1_E_TARGET},
	        {'\0', H1_E_NUL, H1_E_NUL},
	        {'\t', H1_OK, H1_E_TARGET},
	        {'\x80', H1_OK, H1_E_TARGET},
	        {'\xff', H1_OK, H1_E_TARGET},
	        {'~', H1_OK, H1_OK},
	        {'\n', H1_E_BARE_LF, H1_E_BARE_LF},
	        {'\r', H1_E_BARE_CR, H1_E_BARE_CR},
	};
	const struct head_opts o = {0};
	char s[256];
	(void)state;

	for (size_t c = 0; c < RLB_ARRAY_LEN(cases); c++) {
		for (size_t at = 0; at < 40; at++) {
			char v[41];
			memset(v, 'a', 40);
			v[40] = '\0';
			size_t n = (size_t)snprintf(
			        s, sizeof(s), "GET / HTTP/1.1\r\nHost: h\r\nX: %s\r\n\r\n", v);
			s[16 + 9 + 3 + at] = cases[c].octet;
			assert_result(parse_head(&o, s, n, &p), cases[c].in_value);
			if (cases[c].in_value == H1_OK && cases[c].octet != '\t')
				assert_int_equal(p.h[1].value.len, 40);
			n = (size_t)snprintf(s, sizeof(s), "GET /%s HTTP/1.1\r\nHost: h\r\n\r\n",
			                     v);
			s[5 + at] = cases[c].octet;
			assert_result(parse_head(&o, s, n, &p), cases[c].in_target);
		}
	}
}

/* --------------------------------------------------------------- responses */

/* RFC 9112 §6.3 item 6: Content-Length frames a response; RFC 9112 §4:
 * status-line = HTTP-version SP status-code SP [reason-phrase]. */
static void test_resp_content_length(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", false, &p), H1_OK);
	assert_int_equal(p.m.status, 200);
	assert_str(p.m.reason, "OK");
	assert_int_equal(p.m.version_minor, 1);
	assert_int_equal(p.m.body, H1_BODY_LENGTH);
	assert_int_equal(p.m.content_length, 2);
	assert_int_equal(p.m.head_len, 38);
	assert_true(p.m.keep_alive);
	assert_result(
	        resp("HTTP/1.1 404 Not \t Found \xe9\r\nContent-Length: 0\r\n\r\n", false, &p),
	        H1_OK);
	assert_str(p.m.reason, "Not \t Found \xe9");
	/* responses have no Host rule */
	assert_result(resp("HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\nContent-Length: 0\r\n\r\n",
	                   false, &p),
	              H1_OK);
}

/* RFC 9112 §4: the reason-phrase may be empty; like common clients we also
 * accept a status line that ends right after the code. */
static void test_resp_no_reason(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(resp("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, &p), H1_OK);
	assert_int_equal(p.m.status, 200);
	assert_int_equal(p.m.reason.len, 0);
	assert_result(resp("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", false, &p), H1_OK);
	assert_int_equal(p.m.reason.len, 0);
}

/* RFC 9112 §6.3 item 8: without framing fields the body runs to close, and
 * the connection cannot persist (RFC 9112 §9.3). */
static void test_resp_close_delimited(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(resp("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", false, &p),
	              H1_OK);
	assert_int_equal(p.m.body, H1_BODY_CLOSE);
	assert_false(p.m.keep_alive);
	assert_result(resp("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
	                   "Content-Length: 1\r\n\r\n",
	                   false, &p),
	              H1_OK);
	assert_true(p.m.keep_alive);
	assert_result(resp("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, &p), H1_OK);
	assert_false(p.m.keep_alive);
	assert_result(resp("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
	                   false, &p),
	              H1_OK);
	assert_false(p.m.keep_alive);
}

/* RFC 9112 §6.3 item 4: chunked last frames the body; another final coding
 * means read until close; chunked twice is invalid (RFC 9112 §6.1). */
static void test_resp_transfer_encoding(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, &p),
	              H1_OK);
	assert_int_equal(p.m.body, H1_BODY_CHUNKED);
	assert_true(p.m.keep_alive);
	assert_result(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
	                   "Transfer-Encoding: Chunked\r\n\r\n",
	                   false, &p),
	              H1_OK);
	assert_int_equal(p.m.body, H1_BODY_CHUNKED);
	assert_result(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, &p), H1_OK);
	assert_int_equal(p.m.body, H1_BODY_CLOSE);
	assert_false(p.m.keep_alive);
	assert_result(
	        resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, &p),
	        H1_OK);
	assert_int_equal(p.m.body, H1_BODY_CLOSE);
	assert_result(
	        resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", false, &p),
	        H1_E_TE_UNSUPPORTED);
	assert_result(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", false, &p),
	              H1_E_TE_UNSUPPORTED);
}

/* RFC 9112 §6.3 item 3: TE with CL in a response is refused, as nginx
 * does, rather than letting TE win. */
static void test_resp_te_and_cl(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	                   "Content-Length: 3\r\n\r\n",
	                   false, &p),
	              H1_E_TE_AND_CL);
}

/* RFC 9112 §6.3 item 1: responses to HEAD, and 1xx, 204 and 304, have no
 * body whatever their fields say; Content-Length is still checked. */
static void test_resp_no_body(void **state)
{
	static struct parsed p;
	static const char *const heads[] = {
	        "HTTP/1.1 100 Continue\r\n\r\n",
	        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\nConnection: upgrade\r\n\r\n",
	        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n",
	        "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
	        "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
	};
	(void)state;

	for (size_t i = 0; i < RLB_ARRAY_LEN(heads); i++) {
		assert_result(resp(heads[i], false, &p), H1_OK);
		assert_int_equal(p.m.body, H1_BODY_NONE);
		assert_true(p.m.keep_alive);
	}
	assert_result(resp("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, &p), H1_OK);
	assert_int_equal(p.m.body, H1_BODY_NONE);
	assert_result(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, &p),
	              H1_OK);
	assert_int_equal(p.m.body, H1_BODY_NONE);
	assert_result(resp("HTTP/1.1 200 OK\r\n\r\n", true, &p), H1_OK);
	assert_int_equal(p.m.body, H1_BODY_NONE);
	assert_true(p.m.keep_alive);
	assert_result(resp("HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n", false, &p),
	              H1_E_CL_INVALID);
	assert_result(resp("HTTP/1.1 304 Not Modified\r\nContent-Length: 1, 1\r\n\r\n", false, &p),
	              H1_E_CL_DUPLICATE);
	assert_result(resp("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", true, &p),
	              H1_E_CL_INVALID);
}

/* RFC 9112 §4: status-line syntax; RFC 9110 §15: codes 100..599. */
static void test_err_status(void **state)
{
	static struct parsed p;
	static const char *const bad[] = {
	        "HTTP/1.1 099 X\r\n\r\n",      "HTTP/1.1 600 X\r\n\r\n",
	        "HTTP/1.1 20x OK\r\n\r\n",     "HTTP/1.1  200 OK\r\n\r\n",
	        "HTTP/1.1 2000 OK\r\n\r\n",    "HTTP/1.1 200OK\r\n\r\n",
	        "HTTP/1.1 200 O\x01K\r\n\r\n", "HTTP/1.1\r\n\r\n",
	        "HTTP/1.1 20\r\n\r\n",         "HTTP/1.1\t200 OK\r\n\r\n",
	};
	(void)state;

	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++)
		assert_result(resp(bad[i], false, &p), H1_E_STATUS);
	assert_result(resp("HTTP/2 200 OK\r\n\r\n", false, &p), H1_E_VERSION);
	assert_result(resp("ICY 200 OK\r\n\r\n", false, &p), H1_E_VERSION);
	assert_result(resp("\r\nHTTP/1.1 200 OK\r\n\r\n", false, &p), H1_E_VERSION);
	assert_result(resp("HTTP/2.0 200 OK\r\n\r\n", false, &p), H1_E_VERSION_UNSUPPORTED);
	/* the line limit applies to the status line too */
	const struct h1_limits lim = {12, 1024, 10};
	const struct head_opts o = {.response = true, .lim = &lim};
	assert_result(parse_head(&o, "HTTP/1.1 200\r\n\r\n", 16, &p), H1_OK);
	assert_result(parse_head(&o, "HTTP/1.1 200 \r\n\r\n", 17, &p), H1_E_LINE_TOO_LONG);
}

/* RFC 9112 §2.2 and §5: responses follow the same line and field rules. */
static void test_resp_field_errors(void **state)
{
	static struct parsed p;
	(void)state;

	assert_result(resp("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", false, &p), H1_E_BARE_LF);
	assert_result(resp("HTTP/1.1 200 OK\r\nX : 1\r\n\r\n", false, &p), H1_E_SPACE_BEFORE_COLON);
	assert_result(resp("HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n", false, &p), H1_E_OBS_FOLD);
}

/* ---------------------------------------------------------------- chunked */

/* chunked_check runs the decoder over `body` every way: whole, split in
 * two at every position, byte by byte, and decoding whole and split; all
 * must give `want`, consume `want_consumed` bytes and, on H1_OK, decode to
 * `want_data`. */
static void chunked_check_lim(const char *body, size_t len, const struct h1_chunked_limits *lim,
                              enum h1_result want, size_t want_consumed, const char *want_data)
{
	struct h1_chunked c = {0};
	size_t consumed, c2, d1, d2;
	char *copy = malloc(len + 1);
	char *data = malloc(len + 1);

	assert_non_null(copy);
	assert_non_null(data);
	memcpy(copy, body, len);
	assert_result(h1_chunked_feed(&c, lim, copy, len, &consumed), want);
	assert_int_equal(consumed, want_consumed);
	for (size_t k = 0; k <= len; k++) {
		c = (struct h1_chunked){0};
		enum h1_result r = h1_chunked_feed(&c, lim, copy, k, &consumed);
		c2 = 0;
		if (r == H1_PARTIAL) {
			assert_int_equal(consumed, k);
			r = h1_chunked_feed(&c, lim, copy + k, len - k, &c2);
		}
		assert_result(r, want);
		assert_int_equal(consumed + c2, want_consumed);
	}
	c = (struct h1_chunked){0};
	size_t total = 0;
	enum h1_result r = H1_PARTIAL;
	for (size_t i = 0; i < len && r == H1_PARTIAL; i++) {
		r = h1_chunked_feed(&c, lim, copy + i, 1, &consumed);
		total += consumed;
	}
	assert_result(r, want);
	assert_int_equal(total, want_consumed);

	for (size_t k = 0; k <= len; k++) {
		memcpy(copy, body, len);
		c = (struct h1_chunked){0};
		r = h1_chunked_decode(&c, lim, copy, k, &consumed, &d1);
		c2 = d2 = 0;
		if (r == H1_PARTIAL)
			r = h1_chunked_decode(&c, lim, copy + k, len - k, &c2, &d2);
		assert_result(r, want);
		assert_int_equal(consumed + c2, want_consumed);
		memcpy(data, copy, d1);
		memcpy(data + d1, copy + k, d2);
		if (want == H1_OK) {
			assert_int_equal(d1 + d2, strlen(want_data));
			assert_memory_equal(data, want_data, d1 + d2);
		}
	}
	free(copy);
	free(data);
}

static void chunked_check(const char *body, enum h1_result want, size_t want_consumed,
                          const char *want_data)
{
	chunked_check_lim(body, strlen(body), &clim_std, want, want_consumed, want_data);
}

/* RFC 9112 §7.1: chunked-body = *chunk last-chunk trailer-section CRLF. */
static void test_chunked_basic(void **state)
{
	const char *b = "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
	(void)state;

	chunked_check(b, H1_OK, strlen(b), "Wikipedia in\r\n\r\nchunks.");
	chunked_check("0\r\n\r\n", H1_OK, 5, "");
	chunked_check("a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", H1_OK, 35,
	              "01234567890123456789");
	/* leading zeros are HEXDIG too, up to 16 digits */
	chunked_check("0000000000000003\r\nabc\r\n000\r\n\r\n", H1_OK, 30, "abc");
}

/* The body ends at its final CRLF: what follows is the next message. */
static void test_chunked_trailing_bytes(void **state)
{
	const char *b = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
	struct h1_chunked c = {0};
	size_t consumed;
	(void)state;

	chunked_check(b, H1_OK, 13, "abc");
	assert_result(h1_chunked_feed(&c, &clim_std, b, strlen(b), &consumed), H1_OK);
	/* once done, it stays done and consumes nothing more */
	assert_result(h1_chunked_feed(&c, &clim_std, b + 13, 3, &consumed), H1_OK);
	assert_int_equal(consumed, 0);
}

/* RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS
 * ( token / quoted-string ) ] ), all of it ignored. */
static void test_chunked_extensions(void **state)
{
	const char *b = "3;a\r\nabc\r\n"
	                "3 ; a = b ;c=\"q \\\" \\\\ \t\xe9\"\t;d\r\ndef\r\n"
	                "0;last=\"\"\r\n\r\n";
	(void)state;

	chunked_check(b, H1_OK, strlen(b), "abcdef");
}

/* RFC 9112 §7.1.2: trailer fields are field lines; we check and drop them. */
static void test_chunked_trailers(void **state)
{
	const char *b = "2\r\nhi\r\n0\r\nExpires: never\r\nX-Sum:\t1 2 \xff\r\nE:\r\n\r\n";
	(void)state;

	chunked_check(b, H1_OK, strlen(b), "hi");
}

/* RFC 9112 §7.1: chunk-size = 1*HEXDIG; 16 digits at most so it fits 64
 * bits without overflow. */
static void test_err_chunk_size(void **state)
{
	(void)state;

	chunked_check("x\r\n", H1_E_CHUNK_SIZE, 0, NULL);
	chunked_check("\r\n", H1_E_CHUNK_SIZE, 0, NULL);
	chunked_check("-1\r\n", H1_E_CHUNK_SIZE, 0, NULL);
	chunked_check(" 5\r\n", H1_E_CHUNK_SIZE, 0, NULL);
	chunked_check("0x5\r\n", H1_E_CHUNK_SIZE, 1, NULL);
	chunked_check("5g\r\n", H1_E_CHUNK_SIZE, 1, NULL);
	chunked_check("ffffffffffffffff\r\n", H1_PARTIAL, 18, NULL);
	chunked_check("00000000000000001\r\n", H1_E_CHUNK_SIZE, 16, NULL);
	chunked_check("10000000000000000\r\n", H1_E_CHUNK_SIZE, 16, NULL);
	chunked_check("3\r\nabc\r\nz\r\n", H1_E_CHUNK_SIZE, 8, NULL);
}

/* RFC 9112 §7.1.1 grammar, and RFC 9112 §2.2 / §11.2: the size line must
 * end in CRLF; a bare LF or CR here is a known smuggling vector. The line
 * is limited to line_bytes_max. */
static void test_err_chunk_ext(void **state)
{
	static const char *const bad[] = {
	        "5;\r\n",
	        "5 \r\n",
	        "5;a=\r\n",
	        "5;a \r\n",
	        "5;=b\r\n",
	        "5;a=\"x\r\n",
	        "5;a=b c\r\n",
	        "5;a=\"\x01\"\r\n",
	        "5;a=b\"\r\n",
	        "5;a\"\r\n",
	        "5\n",
	        "5\rX",
	        "5;a\n",
	        "5\r\r\n",
	        "5;a=\"x\"y\r\n",
	};
	(void)state;

	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++) {
		struct h1_chunked c = {0};
		size_t consumed;
		assert_result(h1_chunked_feed(&c, &clim_std, bad[i], strlen(bad[i]), &consumed),
		              H1_E_CHUNK_EXT);
		chunked_check(bad[i], H1_E_CHUNK_EXT, consumed, NULL);
	}
	/* the refusal comes at the first byte that cannot follow */
	chunked_check("5;\r\n", H1_E_CHUNK_EXT, 2, NULL);
	chunked_check("5 \r\n", H1_E_CHUNK_EXT, 2, NULL);
	chunked_check("5\n", H1_E_CHUNK_EXT, 1, NULL);
	chunked_check("5\rX", H1_E_CHUNK_EXT, 2, NULL);

	/* a line of exactly line_bytes_max passes, one more byte does not */
	const struct h1_chunked_limits lim = {8, 64};
	chunked_check_lim("1;abcdef\r\nx\r\n0\r\n\r\n", 18, &lim, H1_OK, 18, "x");
	chunked_check_lim("1;abcdefg\r\nx\r\n0\r\n\r\n", 19, &lim, H1_E_CHUNK_EXT, 8, NULL);
}

/* RFC 9112 §7.1: chunk-data is followed by exactly CRLF. */
static void test_err_chunk_data(void **state)
{
	(void)state;

	chunked_check("3\r\nabcd\r\n", H1_E_CHUNK_DATA, 6, NULL);
	chunked_check("3\r\nabc\n0\r\n\r\n", H1_E_CHUNK_DATA, 6, NULL);
	chunked_check("3\r\nabc\rX", H1_E_CHUNK_DATA, 7, NULL);
	chunked_check("3\r\nabc\r\r\n", H1_E_CHUNK_DATA, 7, NULL);
}

/* RFC 9112 §7.1.2: trailer fields follow field-line syntax (no obs-fold,
 * no whitespace before the colon, valid octets) and end in CRLF; the
 * section is limited to trailer_bytes_max. */
static void test_err_trailer(void **state)
{
	static const char *const bad[] = {
	        "0\r\nX : 1\r\n\r\n",
	        "0\r\n X: 1\r\n\r\n",
	        "0\r\nNoColon\r\n\r\n",
	        "0\r\n: v\r\n\r\n",
	        "0\r\nX: a\x01\r\n\r\n",
	        "0\r\nX: a\nY: b\r\n\r\n",
	        "0\r\nX: a\r\rn",
	        "0\r\n\rX",
	        "0\r\n\n",
	        "0\r\nX: a\x7f\r\n\r\n",
	};
	(void)state;

	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++) {
		struct h1_chunked c = {0};
		size_t consumed;
		const char *b = bad[i];
		assert_result(h1_chunked_feed(&c, &clim_std, b, strlen(b), &consumed),
		              H1_E_TRAILER);
		chunked_check(b, H1_E_TRAILER, consumed, NULL);
	}
	/* "X: 12\r\n" is 7 bytes of trailer section */
	const struct h1_chunked_limits lim = {64, 7};
	chunked_check_lim("0\r\nX: 12\r\n\r\n", 12, &lim, H1_OK, 12, "");
	chunked_check_lim("0\r\nX: 123\r\n\r\n", 13, &lim, H1_E_TRAILER, 10, NULL);
}

/* ----------------------------------------------------------------- writers */

/* check_overflow: the writer fits in exactly `n` bytes, and at every
 * smaller capacity returns 0 without writing past the capacity. */
static void check_overflow(size_t (*write)(char *, size_t, const void *, const void *),
                           const void *a, const void *b, size_t n, const char *want)
{
	char *out = malloc(n + 16);

	assert_non_null(out);
	for (size_t cap = 0; cap < n; cap++) {
		memset(out, 'Z', n + 16);
		assert_int_equal(write(out, cap, a, b), 0);
		for (size_t i = cap; i < n + 16; i++)
			assert_int_equal(out[i], 'Z');
	}
	assert_int_equal(write(out, n, a, b), n);
	assert_memory_equal(out, want, n);
	free(out);
}

static size_t write_req_thunk(char *out, size_t cap, const void *m, const void *f)
{
	return h1_write_request(out, cap, m, f);
}

static size_t write_resp_thunk(char *out, size_t cap, const void *m, const void *f)
{
	return h1_write_response(out, cap, m, f);
}

/* RFC 9110 §7.6.1: a proxy removes Connection, the fields it names, and
 * the other hop-by-hop fields; RFC 9110 §7.6.3: it appends Via; it also
 * rewrites X-Forwarded-For/-Proto (de facto standard). Field order and
 * name case are kept. */
static void test_write_request_hop_by_hop(void **state)
{
	static struct parsed p;
	static char out[2048];
	const char *in = "POST /a?b HTTP/1.1\r\n"
	                 "Host: example.com\r\n"
	                 "Connection: keep-alive, X-Secret\r\n"
	                 "x-secret: s\r\n"
	                 "Keep-Alive: 300\r\n"
	                 "TE: trailers\r\n"
	                 "Upgrade: h2c\r\n"
	                 "Proxy-Connection: keep-alive\r\n"
	                 "Trailer: X-Sum\r\n"
	                 "X-Forwarded-For: 1.1.1.1\r\n"
	                 "User-Agent: t/1\r\n"
	                 "x-forwarded-for: 2.2.2.2, 3.3.3.3\r\n"
	                 "X-Forwarded-Proto: http\r\n"
	                 "VIA: 1.0 a\r\n"
	                 "Via: 1.1 b\r\n"
	                 "accept: */*\r\n"
	                 "Transfer-Encoding: chunked\r\n\r\n";
	const char *want = "POST /a?b HTTP/1.1\r\n"
	                   "Host: example.com\r\n"
	                   "User-Agent: t/1\r\n"
	                   "accept: */*\r\n"
	                   "Transfer-Encoding: chunked\r\n"
	                   "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9\r\n"
	                   "X-Forwarded-Proto: https\r\n"
	                   "Via: 1.0 a, 1.1 b, 1.1 ringlb\r\n\r\n";
	const struct h1_fwd_request fwd = {
	        .client_addr = {"10.0.0.9", 8},
	        .proto = {"https", 5},
	        .target = {"/a?b", 4},
	};
	(void)state;

	assert_result(req(in, &p), H1_OK);
	size_t n = h1_write_request(out, sizeof(out), &p.m, &fwd);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	check_overflow(write_req_thunk, &p.m, &fwd, n, want);
}

/* With fwd->request_id, every received X-Request-ID is dropped and ours is
 * written once, before Via. */
static void test_write_request_request_id(void **state)
{
	static struct parsed p;
	static char out[1024];
	const char *in = "GET / HTTP/1.1\r\n"
	                 "Host: h\r\n"
	                 "X-Request-ID: from-client\r\n"
	                 "x-request-id: again\r\n\r\n";
	const char *want = "GET / HTTP/1.1\r\n"
	                   "Host: h\r\n"
	                   "X-Forwarded-For: 10.0.0.9\r\n"
	                   "X-Forwarded-Proto: http\r\n"
	                   "X-Request-ID: 0123456789abcdef\r\n"
	                   "Via: 1.1 ringlb\r\n\r\n";
	const struct h1_fwd_request fwd = {
	        .client_addr = {"10.0.0.9", 8},
	        .proto = {"http", 4},
	        .request_id = {"0123456789abcdef", 16},
	};
	(void)state;

	assert_result(req(in, &p), H1_OK);
	size_t n = h1_write_request(out, sizeof(out), &p.m, &fwd);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	check_overflow(write_req_thunk, &p.m, &fwd, n, want);
}

/* RFC 9112 §3.2.2: for an absolute-form target the caller passes the
 * origin-form target and the authority as Host, which replaces the
 * received Host in place; RFC 9110 §7.6.3: Via names the client's version. */
static void test_write_request_host_override(void **state)
{
	static struct parsed p;
	static char out[1024];
	const struct h1_fwd_request fwd = {
	        .client_addr = {"::1", 3},
	        .proto = {"http", 4},
	        .target = {"/x", 2},
	        .host = {"backend:8080", 12},
	};
	const char *want = "GET /x HTTP/1.1\r\n"
	                   "Accept: */*\r\n"
	                   "Host: backend:8080\r\n"
	                   "Content-Length: 0\r\n"
	                   "X-Forwarded-For: ::1\r\n"
	                   "X-Forwarded-Proto: http\r\n"
	                   "Via: 1.1 ringlb\r\n\r\n";
	(void)state;

	assert_result(req("GET http://example.com/x HTTP/1.1\r\nAccept: */*\r\n"
	                  "Host: example.com\r\nContent-Length: 0\r\n\r\n",
	                  &p),
	              H1_OK);
	size_t n = h1_write_request(out, sizeof(out), &p.m, &fwd);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	check_overflow(write_req_thunk, &p.m, &fwd, n, want);

	/* HTTP/1.0 without Host: Host is added first; Via says 1.0 */
	const char *want10 = "GET /x HTTP/1.1\r\n"
	                     "Host: backend:8080\r\n"
	                     "Accept: */*\r\n"
	                     "X-Forwarded-For: ::1\r\n"
	                     "X-Forwarded-Proto: http\r\n"
	                     "Via: 1.0 ringlb\r\n\r\n";
	assert_result(req("GET /x HTTP/1.0\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n", &p),
	              H1_OK);
	n = h1_write_request(out, sizeof(out), &p.m, &fwd);
	assert_int_equal(n, strlen(want10));
	assert_memory_equal(out, want10, n);
	check_overflow(write_req_thunk, &p.m, &fwd, n, want10);
}

/* A Connection field naming Content-Length or Host must not make us drop
 * them: the upstream would then frame or route the request differently
 * from us (RFC 9112 §11.2). Fields it names otherwise go. */
static void test_write_request_connection_cannot_strip_framing(void **state)
{
	static struct parsed p;
	static char out[1024];
	const struct h1_fwd_request fwd = {.client_addr = {"1.2.3.4", 7}, .target = {"/", 1}};
	const char *want = "POST / HTTP/1.1\r\n"
	                   "Host: a\r\n"
	                   "Content-Length: 3\r\n"
	                   "X-Forwarded-For: 1.2.3.4\r\n"
	                   "Via: 1.1 ringlb\r\n\r\n";
	(void)state;

	assert_result(
	        req("POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length, host, Cookie\r\n"
	            "Content-Length: 3\r\nCOOKIE: x\r\n\r\n",
	            &p),
	        H1_OK);
	size_t n = h1_write_request(out, sizeof(out), &p.m, &fwd);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	check_overflow(write_req_thunk, &p.m, &fwd, n, want);
}

/* With nothing to add, X-Forwarded-For and -Proto are left out rather than
 * sent empty (RFC 9110 §5.5 allows empty values, but they say nothing), and
 * an empty fwd->target falls back to the received one. */
static void test_write_request_minimal_fwd(void **state)
{
	static struct parsed p;
	static char out[256];
	const struct h1_fwd_request fwd = {0};
	const char *want = "GET /q HTTP/1.1\r\nHost: a\r\nVia: 1.1 ringlb\r\n\r\n";
	const char *want_xff = "GET /q HTTP/1.1\r\nHost: a\r\n"
	                       "X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nVia: 1.1 ringlb\r\n\r\n";
	(void)state;

	assert_result(req("GET /q HTTP/1.1\r\nHost: a\r\n\r\n", &p), H1_OK);
	size_t n = h1_write_request(out, sizeof(out), &p.m, &fwd);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	check_overflow(write_req_thunk, &p.m, &fwd, n, want);
	assert_result(req("GET /q HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: a\r\n"
	                  "X-Forwarded-For:\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n",
	                  &p),
	              H1_OK);
	n = h1_write_request(out, sizeof(out), &p.m, &fwd);
	assert_int_equal(n, strlen(want_xff));
	assert_memory_equal(out, want_xff, n);
	check_overflow(write_req_thunk, &p.m, &fwd, n, want_xff);
}

/* RFC 9112 §4: the status line goes out in the client's version; hop-by-hop
 * fields go (RFC 9110 §7.6.1), Via is appended (§7.6.3), and the framing
 * and persistence we chose are announced (RFC 9112 §6.1, §9.3). */
static void test_write_response(void **state)
{
	static struct parsed p;
	static char out[1024];
	const char *in = "HTTP/1.1 200 Fine\r\n"
	                 "Content-Type: text/plain\r\n"
	                 "Connection: X-Internal\r\n"
	                 "X-Internal: 1\r\n"
	                 "Transfer-Encoding: chunked\r\n"
	                 "Keep-Alive: timeout=5\r\n"
	                 "Via: 1.0 origin\r\n"
	                 "Set-Cookie: a=b\r\n\r\n";
	const struct h1_fwd_response fwd11 = {.keep_alive = true, .chunked = true};
	const char *want11 = "HTTP/1.1 200 Fine\r\n"
	                     "Content-Type: text/plain\r\n"
	                     "Set-Cookie: a=b\r\n"
	                     "Transfer-Encoding: chunked\r\n"
	                     "Via: 1.0 origin, 1.1 ringlb\r\n\r\n";
	const struct h1_fwd_response fwd10 = {.client_http10 = true, .keep_alive = false};
	const char *want10 = "HTTP/1.0 200 Fine\r\n"
	                     "Content-Type: text/plain\r\n"
	                     "Set-Cookie: a=b\r\n"
	                     "Via: 1.0 origin, 1.1 ringlb\r\n"
	                     "Connection: close\r\n\r\n";
	(void)state;

	assert_result(resp(in, false, &p), H1_OK);
	size_t n = h1_write_response(out, sizeof(out), &p.m, &fwd11);
	assert_int_equal(n, strlen(want11));
	assert_memory_equal(out, want11, n);
	check_overflow(write_resp_thunk, &p.m, &fwd11, n, want11);
	n = h1_write_response(out, sizeof(out), &p.m, &fwd10);
	assert_int_equal(n, strlen(want10));
	assert_memory_equal(out, want10, n);
	check_overflow(write_resp_thunk, &p.m, &fwd10, n, want10);

	/* extra field lines (a sticky cookie) go after Via, before Connection */
	const struct h1_fwd_response fwdx = {
	        .keep_alive = false,
	        .extra = {.ptr = "Set-Cookie: SRV=00ff; Path=/\r\n", .len = 30}};
	const char *wantx = "HTTP/1.1 200 Fine\r\n"
	                    "Content-Type: text/plain\r\n"
	                    "Set-Cookie: a=b\r\n"
	                    "Via: 1.0 origin, 1.1 ringlb\r\n"
	                    "Set-Cookie: SRV=00ff; Path=/\r\n"
	                    "Connection: close\r\n\r\n";
	n = h1_write_response(out, sizeof(out), &p.m, &fwdx);
	assert_int_equal(n, strlen(wantx));
	assert_memory_equal(out, wantx, n);
	check_overflow(write_resp_thunk, &p.m, &fwdx, n, wantx);

	/* a 1.0 client kept alive is told so; a 1.0 server shows in Via */
	const struct h1_fwd_response ka10 = {.client_http10 = true, .keep_alive = true};
	const char *want_ka = "HTTP/1.0 404 \r\n"
	                      "Content-Length: 0\r\n"
	                      "Via: 1.0 ringlb\r\n"
	                      "Connection: keep-alive\r\n\r\n";
	assert_result(resp("HTTP/1.0 404 \r\nContent-Length: 0\r\n\r\n", false, &p), H1_OK);
	n = h1_write_response(out, sizeof(out), &p.m, &ka10);
	assert_int_equal(n, strlen(want_ka));
	assert_memory_equal(out, want_ka, n);
	check_overflow(write_resp_thunk, &p.m, &ka10, n, want_ka);
}

static size_t write_error_thunk(char *out, size_t cap, const void *a, const void *b)
{
	const int *st = a;
	const bool *flags = b;

	return h1_write_error(out, cap, *st, flags[0], flags[1]);
}

/* Errors we generate name only the status (no backend detail) and carry
 * Content-Length so the connection can persist (RFC 9112 §6.3). */
static void test_write_error(void **state)
{
	static const int statuses[] = {400, 403, 404, 405, 408, 413, 414, 417,
	                               431, 500, 501, 502, 503, 504, 505};
	char out[512];
	const char *want = "HTTP/1.1 502 Bad Gateway\r\n"
	                   "Content-Type: text/html\r\n"
	                   "Content-Length: 94\r\n"
	                   "Connection: close\r\n\r\n"
	                   "<html><head><title>502 Bad Gateway</title></head>"
	                   "<body><h1>502 Bad Gateway</h1></body></html>\n";
	const int st = 502;
	const bool close11[2] = {false, false};
	(void)state;

	size_t n = h1_write_error(out, sizeof(out), 502, false, false);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	check_overflow(write_error_thunk, &st, close11, n, want);

	n = h1_write_error(out, sizeof(out), 400, true, false);
	out[n] = '\0';
	assert_string_equal(out, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n"
	                         "Content-Length: 94\r\n\r\n"
	                         "<html><head><title>400 Bad Request</title></head>"
	                         "<body><h1>400 Bad Request</h1></body></html>\n");
	n = h1_write_error(out, sizeof(out), 400, true, true);
	out[n] = '\0';
	assert_non_null(strstr(out, "HTTP/1.0 400 Bad Request\r\n"));
	assert_non_null(strstr(out, "\r\nConnection: keep-alive\r\n\r\n"));
	n = h1_write_error(out, sizeof(out), 400, false, true);
	out[n] = '\0';
	assert_non_null(strstr(out, "\r\nConnection: close\r\n\r\n"));

	/* every status fits in 512 bytes and its Content-Length is right */
	for (size_t i = 0; i < RLB_ARRAY_LEN(statuses); i++) {
		n = h1_write_error(out, sizeof(out) - 1, statuses[i], false, false);
		assert_true(n > 0);
		out[n] = '\0';
		const char *body = strstr(out, "\r\n\r\n") + 4;
		unsigned long cl = strtoul(strstr(out, "Content-Length: ") + 16, NULL, 10);
		assert_int_equal(cl, strlen(body));
		assert_non_null(strstr(body, h1_status_reason(statuses[i])));
		assert_string_not_equal(h1_status_reason(statuses[i]), "Unknown");
	}
}

/* RFC 9110 §15: the standard reason phrases. */
/* h1_hop_by_hop: RFC 9110 §7.6.1 fields and those Connection names stay
 * behind (HTTP/2 responses are built from what remains). */
static void test_hop_by_hop(void **state)
{
	static struct parsed p;
	static const struct {
		const char *name;
		bool hop;
	} cases[] = {
	        {"Connection", true},       {"keep-alive", true},
	        {"Proxy-Connection", true}, {"TE", true},
	        {"Trailer", true},          {"Transfer-Encoding", true},
	        {"Upgrade", true},          {"X-Secret", true},
	        {"content-length", false},  {"Content-Type", false},
	        {"Set-Cookie", false},      {"X-Other", false},
	};

	(void)state;
	assert_int_equal(resp("HTTP/1.1 200 OK\r\nConnection: X-Secret, close\r\n"
	                      "Content-Length: 0\r\n\r\n",
	                      false, &p),
	                 H1_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct h1_str n = {cases[i].name, strlen(cases[i].name)};

		assert_int_equal(h1_hop_by_hop(&p.m, n), cases[i].hop);
	}
}

static void test_status_reason(void **state)
{
	(void)state;

	assert_string_equal(h1_status_reason(100), "Continue");
	assert_string_equal(h1_status_reason(200), "OK");
	assert_string_equal(h1_status_reason(308), "Permanent Redirect");
	assert_string_equal(h1_status_reason(413), "Content Too Large");
	assert_string_equal(h1_status_reason(421), "Misdirected Request");
	assert_string_equal(h1_status_reason(422), "Unprocessable Content");
	assert_string_equal(h1_status_reason(431), "Request Header Fields Too Large");
	assert_string_equal(h1_status_reason(505), "HTTP Version Not Supported");
	assert_string_equal(h1_status_reason(306), "Unknown");
	assert_string_equal(h1_status_reason(418), "Unknown");
	assert_string_equal(h1_status_reason(0), "Unknown");
	assert_string_equal(h1_status_reason(-5), "Unknown");
	assert_string_equal(h1_status_reason(999), "Unknown");
	assert_string_equal(h1_status_reason(599), "Unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_req_get),
	        cmocka_unit_test(test_req_post_content_length),
	        cmocka_unit_test(test_req_content_length_zero),
	        cmocka_unit_test(test_req_chunked),
	        cmocka_unit_test(test_req_http10),
	        cmocka_unit_test(test_req_connection_options),
	        cmocka_unit_test(test_req_target_forms),
	        cmocka_unit_test(test_req_leading_crlf),
	        cmocka_unit_test(test_req_field_values),
	        cmocka_unit_test(test_req_expect),
	        cmocka_unit_test(test_req_host_forms),
	        cmocka_unit_test(test_req_partial),
	        cmocka_unit_test(test_err_bare_cr),
	        cmocka_unit_test(test_err_bare_lf),
	        cmocka_unit_test(test_err_nul),
	        cmocka_unit_test(test_err_method),
	        cmocka_unit_test(test_err_target),
	        cmocka_unit_test(test_err_version),
	        cmocka_unit_test(test_err_version_unsupported),
	        cmocka_unit_test(test_err_request_line),
	        cmocka_unit_test(test_err_line_too_long),
	        cmocka_unit_test(test_err_head_too_large),
	        cmocka_unit_test(test_err_too_many_headers),
	        cmocka_unit_test(test_err_obs_fold),
	        cmocka_unit_test(test_err_space_before_colon),
	        cmocka_unit_test(test_err_header_name),
	        cmocka_unit_test(test_err_header_value),
	        cmocka_unit_test(test_err_cl_invalid),
	        cmocka_unit_test(test_err_cl_duplicate),
	        cmocka_unit_test(test_err_te_and_cl),
	        cmocka_unit_test(test_err_te_unsupported),
	        cmocka_unit_test(test_err_te_http10),
	        cmocka_unit_test(test_err_host),
	        cmocka_unit_test(test_result_names_and_statuses),
	        cmocka_unit_test(test_str_ieq),
	        cmocka_unit_test(test_octet_at_every_offset),
	        cmocka_unit_test(test_resp_content_length),
	        cmocka_unit_test(test_resp_no_reason),
	        cmocka_unit_test(test_resp_close_delimited),
	        cmocka_unit_test(test_resp_transfer_encoding),
	        cmocka_unit_test(test_resp_te_and_cl),
	        cmocka_unit_test(test_resp_no_body),
	        cmocka_unit_test(test_err_status),
	        cmocka_unit_test(test_resp_field_errors),
	        cmocka_unit_test(test_chunked_basic),
	        cmocka_unit_test(test_chunked_trailing_bytes),
	        cmocka_unit_test(test_chunked_extensions),
	        cmocka_unit_test(test_chunked_trailers),
	        cmocka_unit_test(test_err_chunk_size),
	        cmocka_unit_test(test_err_chunk_ext),
	        cmocka_unit_test(test_err_chunk_data),
	        cmocka_unit_test(test_err_trailer),
	        cmocka_unit_test(test_write_request_hop_by_hop),
	        cmocka_unit_test(test_write_request_host_override),
	        cmocka_unit_test(test_write_request_request_id),
	        cmocka_unit_test(test_write_request_connection_cannot_strip_framing),
	        cmocka_unit_test(test_write_request_minimal_fwd),
	        cmocka_unit_test(test_write_response),
	        cmocka_unit_test(test_write_error),
	        cmocka_unit_test(test_status_reason),
	        cmocka_unit_test(test_hop_by_hop),
	};

	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
