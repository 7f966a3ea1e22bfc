/* tests/unit/core/proxyproto_test.c — unit tests for core/proxyproto.c.
 *
 * Goal: every valid form of the PROXY protocol header (v1 TCP4, TCP6,
 * UNKNOWN; v2 PROXY over TCP/IPv4 and IPv6 with and without TLVs, the UNSPEC
 * fallbacks, LOCAL) is accepted with the right addresses and the exact
 * header length, and every malformed one is refused at the very byte that
 * makes it malformed, so a client that sends no header is not waited for.
 *
 * Method: every input goes through parse_checked(), which parses each of its
 * prefixes (0, 1, 2, ... len bytes: the byte-at-a-time feeding a connection
 * sees), each on an exactly sized heap copy so ASan (make SANITIZE=1) sees
 * any read past the bytes given. The answers must be PP_INCOMPLETE up to
 * some length and then the same final answer for every longer prefix, with
 * the same pp_info on PP_DONE, and *out untouched when not PP_DONE.
 * parse_checked returns the length at which the answer became final: for
 * PP_DONE it is the header length, for PP_INVALID it names the byte that
 * broke the header. Refusals are written as the prefix before that byte.
 */
#include "core/proxyproto.c"

#include <setjmp.h> /* cmocka needs these before its header */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#define S(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* The v2 TCP/IPv4 address block used throughout: 192.0.2.1:56324 ->
 * 198.51.100.2:443. */
static const uint8_t block4[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb};

/* The v2 TCP/IPv6 address block: [2001:db8::1]:65535 -> [2001:db8::2]:80. */
static const uint8_t block6[36] = {
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    1,    0x20, 0x01,
        0x0d, 0xb8, 0,    0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0,    80,
};

#define assert_result(got, want)                                                                   \
	do {                                                                                       \
		enum pp_result got_ = (got), want_ = (want);                                       \
		if (got_ != want_) {                                                               \
			print_error("got \"%s\", want \"%s\"\n", pp_result_name(got_),             \
			            pp_result_name(want_));                                        \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

static void assert_same_info(const struct pp_info *a, const struct pp_info *b)
{
	assert_int_equal(a->local, b->local);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->header_len, b->header_len);
	assert_int_equal(a->src_len, b->src_len);
	assert_int_equal(a->dst_len, b->dst_len);
	assert_memory_equal(&a->src, &b->src, a->src_len);
	assert_memory_equal(&a->dst, &b->dst, a->dst_len);
}

/* parse_one parses in[0..n) from an exact heap copy; *out is preset to a
 * pattern that must survive any answer but PP_DONE. */
static enum pp_result parse_one(const uint8_t *in, size_t n, struct pp_info *out)
{
	uint8_t *copy = malloc(n ? n : 1);
	struct pp_info pattern;

	assert_non_null(copy);
	memcpy(copy, in, n);
	memset(&pattern, 0xa5, sizeof(pattern));
	memcpy(out, &pattern, sizeof(pattern));
	enum pp_result r = pp_parse(copy, n, out);
	free(copy);
	if (r != PP_DONE)
		assert_memory_equal(out, &pattern, sizeof(pattern));
	return r;
}

/* parse_checked parses every prefix of in[0..len) and checks that the
 * answers are monotonic (see the file comment). It returns the answer for
 * the whole input, leaves its pp_info in *out, and sets *decided_at to the
 * shortest prefix that already gave that answer. */
static enum pp_result parse_checked(const uint8_t *in, size_t len, struct pp_info *out,
                                    size_t *decided_at)
{
	struct pp_info first, now;
	enum pp_result final = PP_INCOMPLETE;

	*decided_at = len;
	for (size_t n = 0; n <= len; n++) {
		enum pp_result r = parse_one(in, n, &now);
		if (final == PP_INCOMPLETE) {
			final = r;
			*decided_at = n;
			first = now;
			continue;
		}
		assert_result(r, final);
		if (r == PP_DONE)
			assert_same_info(&first, &now);
	}
	if (final == PP_INCOMPLETE)
		*decided_at = len;
	if (final == PP_DONE) {
		assert_int_equal(first.header_len, *decided_at);
		assert_true(first.header_len <= PP_HEADER_MAX);
		*out = first;
	}
	return final;
}

/* expect_done parses in[0..len), which must hold a header of header_len
 * bytes and then payload, and returns what it says in *out. */
static void expect_done(const uint8_t *in, size_t len, size_t header_len, struct pp_info *out)
{
	size_t at;

	assert_result(parse_checked(in, len, out, &at), PP_DONE);
	assert_int_equal(out->header_len, header_len);
}

/* expect_done_str parses the string header `hdr` followed by `payload`. */
static void expect_done_str(const char *hdr, const char *payload, struct pp_info *out)
{
	char in[512];
	const size_t hlen = strlen(hdr), plen = strlen(payload);

	assert_true(hlen + plen <= sizeof(in));
	memcpy(in, hdr, hlen);
	memcpy(in + hlen, payload, plen);
	expect_done((const uint8_t *)in, hlen + plen, hlen, out);
}

/* expect_invalid_at says in[0..len) is refused as soon as `at` bytes are
 * visible, and not before. */
static void expect_invalid_at(const uint8_t *in, size_t len, size_t at)
{
	struct pp_info info;
	size_t got_at;

	assert_result(parse_checked(in, len, &info, &got_at), PP_INVALID);
	if (got_at != at) {
		print_error("refused at %zu bytes, want %zu: \"%.*s\"\n", got_at, at, (int)len,
		            (const char *)in);
		fail();
	}
}

/* expect_refused_after says the string `in` is refused at the byte just
 * after its prefix `before` (which it must start with). */
static void expect_refused_after(const char *in, const char *before)
{
	const size_t blen = strlen(before);

	assert_true(strncmp(in, before, blen) == 0);
	expect_invalid_at((const uint8_t *)in, strlen(in), blen + 1);
}

static void expect_incomplete(const uint8_t *in, size_t len)
{
	struct pp_info info;
	size_t at;

	assert_result(parse_checked(in, len, &info, &at), PP_INCOMPLETE);
}

static void assert_addr4(const struct sockaddr_storage *ss, socklen_t len, const char *ip,
                         uint16_t port)
{
	struct sockaddr_in sin;
	struct in_addr want;

	assert_int_equal(len, sizeof(sin));
	memcpy(&sin, ss, sizeof(sin));
	assert_int_equal(sin.sin_family, AF_INET);
	assert_int_equal(inet_pton(AF_INET, ip, &want), 1);
	assert_memory_equal(&sin.sin_addr, &want, sizeof(want));
	assert_int_equal(ntohs(sin.sin_port), port);
}

static void assert_addr6(const struct sockaddr_storage *ss, socklen_t len, const char *ip,
                         uint16_t port)
{
	struct sockaddr_in6 sin6;
	struct in6_addr want;

	assert_int_equal(len, sizeof(sin6));
	memcpy(&sin6, ss, sizeof(sin6));
	assert_int_equal(sin6.sin6_family, AF_INET6);
	assert_int_equal(inet_pton(AF_INET6, ip, &want), 1);
	assert_memory_equal(&sin6.sin6_addr, &want, sizeof(want));
	assert_int_equal(ntohs(sin6.sin6_port), port);
	assert_int_equal(sin6.sin6_flowinfo, 0);
	assert_int_equal(sin6.sin6_scope_id, 0);
}

static void assert_local(const struct pp_info *info, uint8_t version)
{
	assert_true(info->local);
	assert_int_equal(info->version, version);
	assert_int_equal(info->src_len, 0);
	assert_int_equal(info->dst_len, 0);
}

/* v2_raw writes a v2 header with `declared` in the length field and the
 * given block after it (which may be shorter or longer than declared). */
static size_t v2_raw(uint8_t *out, uint8_t ver_cmd, uint8_t fam, size_t declared, const void *block,
                     size_t block_len)
{
	memcpy(out, sig, sizeof(sig));
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(declared >> 8);
	out[15] = (uint8_t)declared;
	if (block_len > 0)
		memcpy(out + 16, block, block_len);
	return 16 + block_len;
}

static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *block, size_t block_len)
{
	return v2_raw(out, ver_cmd, fam, block_len, block, block_len);
}

/* tlv appends one TLV to buf at *off. */
static void tlv(uint8_t *buf, size_t *off, uint8_t type, const void *value, size_t value_len)
{
	buf[*off] = type;
	buf[*off + 1] = (uint8_t)(value_len >> 8);
	buf[*off + 2] = (uint8_t)value_len;
	if (value_len > 0)
		memcpy(buf + *off + 3, value, value_len);
	*off += 3 + value_len;
}

/* --- general --- */

static void test_result_name(void **state)
{
	(void)state;
	assert_string_equal(pp_result_name(PP_INCOMPLETE), "incomplete");
	assert_string_equal(pp_result_name(PP_DONE), "done");
	assert_string_equal(pp_result_name(PP_INVALID), "invalid");
	assert_string_equal(pp_result_name((enum pp_result)42), "unknown");
}

static void test_short_prefixes_wait(void **state)
{
	struct pp_info info;

	(void)state;
	assert_result(pp_parse(NULL, 0, &info), PP_INCOMPLETE);
	expect_incomplete(S("P"));
	expect_incomplete(S("PROXY"));
	expect_incomplete(S("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r"));
	expect_incomplete(S("\r"));
	expect_incomplete(sig, sizeof(sig));
}

/* A client that sends HTTP or TLS instead of a header is refused at the
 * first byte that cannot start one. */
static void test_early_refusal(void **state)
{
	static const uint8_t client_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00,
	                                       0x01, 0x00, 0x01, 0xfc};

	(void)state;
	expect_refused_after("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "");
	expect_invalid_at(client_hello, sizeof(client_hello), 1);
	expect_refused_after("PUT /x HTTP/1.1\r\n", "P");
	expect_refused_after("POST /x HTTP/1.1\r\n", "P");
	expect_refused_after("PATCH /x HTTP/1.1\r\n", "P");
	expect_refused_after("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "PR");
	expect_refused_after("PROPFIND / HTTP/1.1\r\n", "PRO");
	expect_refused_after("PROXYX", "PROXY");
	expect_refused_after("\r\nGET / HTTP/1.1\r\n", "\r\n");
	expect_refused_after("\n", "");
	expect_refused_after(" PROXY TCP4", "");
}

/* --- v1 --- */

static void test_v1_tcp4(void **state)
{
	static const char in[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
	                         "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct pp_info info;

	(void)state;
	expect_done(S(in), strlen("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"), &info);
	assert_false(info.local);
	assert_int_equal(info.version, 1);
	assert_addr4(&info.src, info.src_len, "192.0.2.1", 56324);
	assert_addr4(&info.dst, info.dst_len, "198.51.100.2", 443);

	expect_done_str("PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n", "", &info);
	assert_addr4(&info.src, info.src_len, "255.255.255.255", 65535);
	assert_addr4(&info.dst, info.dst_len, "0.0.0.0", 0);
}

static void test_v1_tcp6(void **state)
{
	struct pp_info info;

	(void)state;
	expect_done_str("PROXY TCP6 2001:db8::1 2001:DB8::2 65535 80\r\n", "GET", &info);
	assert_false(info.local);
	assert_int_equal(info.version, 1);
	assert_addr6(&info.src, info.src_len, "2001:db8::1", 65535);
	assert_addr6(&info.dst, info.dst_len, "2001:db8::2", 80);

	expect_done_str("PROXY TCP6 ::ffff:192.0.2.1 :: 1 10\r\n", "\r\n", &info);
	assert_addr6(&info.src, info.src_len, "::ffff:192.0.2.1", 1);
	assert_addr6(&info.dst, info.dst_len, "::", 10);

	/* The longest plain IPv6 form still fits the 107 bytes. */
	static const char full[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	                           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe 65535 65535\r\n";
	expect_done_str(full, "", &info);
	assert_addr6(&info.dst, info.dst_len, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
}

static void test_v1_unknown(void **state)
{
	char line[PP_V1_MAX + 8];
	struct pp_info info;

	(void)state;
	expect_done_str("PROXY UNKNOWN\r\n", "GET / HTTP/1.1\r\n", &info);
	assert_local(&info, 1);
	expect_done_str("PROXY UNKNOWN ffff:f::1 ffff:f::2 65535 65535\r\n", "", &info);
	assert_local(&info, 1);
	expect_done_str("PROXY UNKNOWN \r\n", "", &info);
	/* Whatever follows the space is ignored, even if it is no address. */
	expect_done_str("PROXY UNKNOWN  x\ty\x01\xff\r\n", "", &info);
	assert_local(&info, 1);

	/* Exactly PP_V1_MAX bytes with the CRLF is the longest line accepted. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + PP_V1_MAX - 2, "\r\nGET", 5);
	expect_done((const uint8_t *)line, PP_V1_MAX + 3, PP_V1_MAX, &info);
	assert_local(&info, 1);
}

static void test_v1_ports(void **state)
{
	struct pp_info info;

	(void)state;
	expect_done_str("PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", "", &info);
	assert_addr4(&info.src, info.src_len, "1.2.3.4", 0);
	assert_addr4(&info.dst, info.dst_len, "5.6.7.8", 65535);
	expect_done_str("PROXY TCP4 1.2.3.4 5.6.7.8 10 9\r\n", "", &info);
	assert_addr4(&info.src, info.src_len, "1.2.3.4", 10);

	expect_refused_after("PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n",
	                     "PROXY TCP4 1.2.3.4 5.6.7.8 6553");
	expect_refused_after("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
	                     "PROXY TCP4 1.2.3.4 5.6.7.8 1 6553");
	expect_refused_after("PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n",
	                     "PROXY TCP4 1.2.3.4 5.6.7.8 9999");
	expect_refused_after("PROXY TCP4 1.2.3.4 5.6.7.8 100000 1\r\n",
	                     "PROXY TCP4 1.2.3.4 5.6.7.8 10000");
	expect_refused_after("PROXY TCP4 1.2.3.4 5.6.7.8 01 1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 0");
	expect_refused_after("PROXY TCP4 1.2.3.4 5.6.7.8 00 1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 0");
	expect_refused_after("PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\n",
	                     "PROXY TCP4 1.2.3.4 5.6.7.8 1 0");
	expect_refused_after("PROXY TCP4 1.2.3.4 5.6.7.8 +1 1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 ");
	expect_refused_after("PROXY TCP4 1.2.3.4 5.6.7.8 -1 1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 ");
	expect_refused_after("PROXY TCP4 1.2.3.4 5.6.7.8 0x10 1\r\n",
	                     "PROXY TCP4 1.2.3.4 5.6.7.8 0");
	expect_refused_after("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 ");
	expect_refused_after("PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n",
	                     "PROXY TCP4 1.2.3.4 5.6.7.8 1 2");
}

/* Each refusal, at the byte that makes it one. */
static void test_v1_malformed(void **state)
{
	static const struct {
		const char *in, *before;
	} cases[] = {
	        {"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ""},
	        {"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY "},
	        {"PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY"},
	        {"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY "},
	        {"PROXY unknown\r\n", "PROXY "},
	        {"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP"},
	        {"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY U"},
	        {"PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP"},
	        {"PROXY TCP4\r\n", "PROXY TCP4"},
	        {"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 "},
	        {"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4 "},
	        {"PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 "},
	        {"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 "},
	        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2"},
	        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2"},
	        {"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1"},
	        {"PROXY TCP4 1.2.3.4 5.6.7.8\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8"},
	        {"PROXY TCP4 1.2.3.4\r\n", "PROXY TCP4 1.2.3.4"},
	        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2"},
	        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"},
	        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"},
	        /* addresses of the other family */
	        {"PROXY TCP4 ::1 ::2 1 2\r\n", "PROXY TCP4 "},
	        {"PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n", "PROXY TCP4 2001"},
	        {"PROXY TCP4 1.2.3.4 ::2 1 2\r\n", "PROXY TCP4 1.2.3.4 "},
	        {"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP6 1.2.3.4"},
	        {"PROXY TCP6 ::1 5.6.7.8 1 2\r\n", "PROXY TCP6 ::1 5.6.7.8"},
	        /* addresses that inet_pton refuses */
	        {"PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n", "PROXY TCP4 256.1.1.1"},
	        {"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3"},
	        {"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4.5"},
	        {"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 01.2.3.4"},
	        {"PROXY TCP4 1..2.3 5.6.7.8 1 2\r\n", "PROXY TCP4 1..2.3"},
	        {"PROXY TCP4 1111111111111111 5.6.7.8 1 2\r\n", "PROXY TCP4 111111111111111"},
	        {"PROXY TCP4 a.b.c.d 5.6.7.8 1 2\r\n", "PROXY TCP4 "},
	        {"PROXY TCP6 fe80::1%eth0 ::2 1 2\r\n", "PROXY TCP6 fe80::1"},
	        {"PROXY TCP6 2001:db8::g ::2 1 2\r\n", "PROXY TCP6 2001:db8::"},
	        {"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::2 1 2\r\n", "PROXY TCP6 1:2:3:4:5:6:7:8:9"},
	        {"PROXY TCP6 1:::2 ::2 1 2\r\n", "PROXY TCP6 1:::2"},
	        {"PROXY TCP6 [::1] ::2 1 2\r\n", "PROXY TCP6 "},
	        /* UNKNOWN */
	        {"PROXY UNKNOWNX\r\n", "PROXY UNKNOWN"},
	        {"PROXY UNKNOWN\n", "PROXY UNKNOWN"},
	        {"PROXY UNKNOWN\rX", "PROXY UNKNOWN\r"},
	        {"PROXY UNKNOWN foo\nbar\r\n", "PROXY UNKNOWN foo"},
	        {"PROXY UNKNOWN foo\rbar\r\n", "PROXY UNKNOWN foo\r"},
	        {"PROXY UNKNOW\r\n", "PROXY UNKNOW"},
	};

	(void)state;
	for (size_t i = 0; i < RLB_ARRAY_LEN(cases); i++)
		expect_refused_after(cases[i].in, cases[i].before);
}

/* No CRLF within PP_V1_MAX bytes: refused when the 107th byte arrives. */
static void test_v1_too_long(void **state)
{
	char line[PP_V1_MAX + 8];

	(void)state;
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + PP_V1_MAX - 1, "\r\n", 2);
	expect_invalid_at((const uint8_t *)line, PP_V1_MAX + 1, PP_V1_MAX);

	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	expect_invalid_at((const uint8_t *)line, sizeof(line), PP_V1_MAX);

	/* Valid addresses, but the IPv4-tailed IPv6 forms make it 116 bytes. */
	expect_invalid_at(S("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
	                    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.254 65535 65535\r\n"),
	                  PP_V1_MAX);
}

/* A NUL inside the line is refused like any other byte out of place. */
static void test_v1_nul(void **state)
{
	(void)state;
	expect_invalid_at(S("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"), 19);
	expect_invalid_at(S("PROXY TCP4 1.2.3.4 5.6.7.8 1\0 2\r\n"), 29);
	expect_invalid_at(S("PROXY\0"), 6);
}

/* --- v2 --- */

static void test_v2_tcp4(void **state)
{
	uint8_t buf[128];
	struct pp_info info;

	(void)state;
	size_t n = v2(buf, 0x21, 0x11, block4, sizeof(block4));
	memcpy(buf + n, "GET / HTTP/1.1\r\n", 16);
	expect_done(buf, n + 16, 28, &info);
	assert_false(info.local);
	assert_int_equal(info.version, 2);
	assert_addr4(&info.src, info.src_len, "192.0.2.1", 56324);
	assert_addr4(&info.dst, info.dst_len, "198.51.100.2", 443);
}

/* TLVs after the addresses are skipped, whatever they hold. */
static void test_v2_tcp4_tlvs(void **state)
{
	static const uint8_t ssl_sub[] = {0x01, 0, 0, 0, 0, 0x21, 0, 3, 'T', 'L', 'S'};
	uint8_t block[256], buf[512];
	size_t off = sizeof(block4);
	struct pp_info info;

	(void)state;
	memcpy(block, block4, sizeof(block4));
	tlv(block, &off, 0x01, "h2", 2);                  /* ALPN */
	tlv(block, &off, 0x02, "example.com", 11);        /* AUTHORITY */
	tlv(block, &off, 0x03, "\xde\xad\xbe\xef", 4);    /* CRC32C: not checked */
	tlv(block, &off, 0x04, NULL, 0);                  /* NOOP */
	tlv(block, &off, 0x05, "id-1234", 7);             /* UNIQUE_ID */
	tlv(block, &off, 0x20, ssl_sub, sizeof(ssl_sub)); /* SSL with sub-TLVs */
	tlv(block, &off, 0xe0, "custom", 6);              /* PP2_TYPE_MIN_CUSTOM */
	size_t n = v2(buf, 0x21, 0x11, block, off);
	memcpy(buf + n, "GET /", 5);
	expect_done(buf, n + 5, 16 + off, &info);
	assert_addr4(&info.src, info.src_len, "192.0.2.1", 56324);
	assert_addr4(&info.dst, info.dst_len, "198.51.100.2", 443);

	/* A TLV whose value ends exactly at the end of the header. */
	off = sizeof(block4);
	tlv(block, &off, 0x04, NULL, 0);
	n = v2(buf, 0x21, 0x11, block, off);
	expect_done(buf, n, n, &info);
}

static void test_v2_tcp6(void **state)
{
	uint8_t block[64], buf[128];
	size_t off = sizeof(block6);
	struct pp_info info;

	(void)state;
	size_t n = v2(buf, 0x21, 0x21, block6, sizeof(block6));
	memcpy(buf + n, "\x16\x03\x01", 3); /* TLS after the header is payload */
	expect_done(buf, n + 3, 52, &info);
	assert_false(info.local);
	assert_int_equal(info.version, 2);
	assert_addr6(&info.src, info.src_len, "2001:db8::1", 65535);
	assert_addr6(&info.dst, info.dst_len, "2001:db8::2", 80);

	memcpy(block, block6, sizeof(block6));
	tlv(block, &off, 0x01, "http/1.1", 8);
	n = v2(buf, 0x21, 0x21, block, off);
	expect_done(buf, n, 16 + off, &info);
	assert_addr6(&info.src, info.src_len, "2001:db8::1", 65535);
}

/* LOCAL keeps the socket's addresses; its block is discarded unread. */
static void test_v2_local(void **state)
{
	uint8_t block[64], buf[128];
	size_t off = 0;
	struct pp_info info;

	(void)state;
	size_t n = v2(buf, 0x20, 0x00, NULL, 0);
	memcpy(buf + n, "GET", 3);
	expect_done(buf, n + 3, 16, &info);
	assert_local(&info, 2);

	tlv(block, &off, 0x05, "health-check", 12);
	n = v2(buf, 0x20, 0x00, block, off);
	expect_done(buf, n, n, &info);
	assert_local(&info, 2);

	/* With TCP4 addresses, as some senders write them. */
	n = v2(buf, 0x20, 0x11, block4, sizeof(block4));
	expect_done(buf, n, n, &info);
	assert_local(&info, 2);

	/* The spec: the family "is ignored", and the block with it. */
	n = v2(buf, 0x20, 0xff, "\x01\x02", 2);
	expect_done(buf, n, 18, &info);
	assert_local(&info, 2);
	n = v2(buf, 0x20, 0x11, "\x01", 1);
	expect_done(buf, n, 17, &info);
	assert_local(&info, 2);
}

/* PROXY with a valid family we have no use for falls back to UNSPEC
 * (spec section 2.2): local, once the block is proven well formed. */
static void test_v2_unspec_fallbacks(void **state)
{
	static const uint8_t fams[] = {0x12, 0x22, 0x31, 0x32};
	static const size_t addr_lens[] = {12, 36, 216, 216};
	uint8_t block[300], buf[400];
	struct pp_info info;
	size_t off = 0;

	(void)state;
	size_t n = v2(buf, 0x21, 0x00, NULL, 0);
	expect_done(buf, n, 16, &info);
	assert_local(&info, 2);
	tlv(block, &off, 0x02, "a.example", 9);
	n = v2(buf, 0x21, 0x00, block, off);
	expect_done(buf, n, n, &info);
	assert_local(&info, 2);

	for (size_t i = 0; i < RLB_ARRAY_LEN(fams); i++) {
		memset(block, 0x7f, sizeof(block));
		n = v2(buf, 0x21, fams[i], block, addr_lens[i]);
		expect_done(buf, n, 16 + addr_lens[i], &info);
		assert_local(&info, 2);
		off = addr_lens[i];
		tlv(block, &off, 0x01, "h2", 2);
		n = v2(buf, 0x21, fams[i], block, off);
		expect_done(buf, n, 16 + off, &info);
		assert_local(&info, 2);
	}
}

static void test_v2_bad_signature(void **state)
{
	uint8_t buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(sig); i++) {
		static const uint8_t flips[] = {0x01, 0x20, 0x80, 0xff};
		for (size_t f = 0; f < sizeof(flips); f++) {
			size_t n = v2(buf, 0x21, 0x11, block4, sizeof(block4));
			buf[i] ^= flips[f];
			if (i == 0 && buf[0] == 'P')
				continue; /* that would start a v1 line */
			expect_invalid_at(buf, n, i + 1);
		}
	}
}

static void test_v2_bad_version_command(void **state)
{
	uint8_t buf[64];

	(void)state;
	for (unsigned vc = 0; vc < 256; vc++) {
		if (vc == 0x20 || vc == 0x21)
			continue;
		size_t n = v2(buf, (uint8_t)vc, 0x11, block4, sizeof(block4));
		expect_invalid_at(buf, n, 13);
	}
}

/* Family bytes other than the spec's seven combinations: PROXY refuses them
 * at once. */
static void test_v2_bad_family(void **state)
{
	uint8_t buf[64];

	(void)state;
	for (unsigned fam = 0; fam < 256; fam++) {
		if (pp_v2_addr_len((uint8_t)fam) != PP_V2_ADDR_UNKNOWN)
			continue;
		size_t n = v2(buf, 0x21, (uint8_t)fam, block4, sizeof(block4));
		expect_invalid_at(buf, n, 14);
	}
	assert_int_equal(pp_v2_addr_len(0x01), PP_V2_ADDR_UNKNOWN);
	assert_int_equal(pp_v2_addr_len(0x10), PP_V2_ADDR_UNKNOWN);
	assert_int_equal(pp_v2_addr_len(0x13), PP_V2_ADDR_UNKNOWN);
	assert_int_equal(pp_v2_addr_len(0x41), PP_V2_ADDR_UNKNOWN);
}

/* The length field is judged as soon as it arrives. */
static void test_v2_lengths(void **state)
{
	static const struct {
		uint8_t fam;
		size_t block_len;
	} short_blocks[] = {{0x11, 11}, {0x11, 0},  {0x12, 11},  {0x21, 35},
	                    {0x21, 12}, {0x22, 35}, {0x31, 215}, {0x32, 0}};
	static const uint8_t zeros[PP_HEADER_MAX];
	uint8_t block[PP_HEADER_MAX], buf[PP_HEADER_MAX + 64];
	struct pp_info info;

	(void)state;
	memset(block, 0, sizeof(block));
	for (size_t i = 0; i < RLB_ARRAY_LEN(short_blocks); i++) {
		size_t n = v2(buf, 0x21, short_blocks[i].fam, block, short_blocks[i].block_len);
		expect_invalid_at(buf, n, 16);
	}

	/* PP_HEADER_MAX exactly is accepted, one byte more is not. */
	size_t off = sizeof(block4);
	memcpy(block, block4, sizeof(block4));
	tlv(block, &off, 0x04, zeros, PP_HEADER_MAX - 16 - 12 - 3);
	assert_int_equal(off, PP_HEADER_MAX - 16);
	size_t n = v2(buf, 0x21, 0x11, block, off);
	expect_done(buf, n, PP_HEADER_MAX, &info);
	n = v2_raw(buf, 0x21, 0x11, PP_HEADER_MAX - 15, block, 12);
	expect_invalid_at(buf, n, 16);
	n = v2_raw(buf, 0x20, 0x00, 0xffff, NULL, 0);
	expect_invalid_at(buf, n, 16);
	n = v2_raw(buf, 0x21, 0x00, 0xffff, NULL, 0);
	expect_invalid_at(buf, n, 16);

	/* A declared length longer than what has arrived waits for the rest. */
	n = v2_raw(buf, 0x21, 0x11, 20, block4, sizeof(block4));
	expect_incomplete(buf, n);
	n = v2_raw(buf, 0x20, 0x00, 200, NULL, 0);
	expect_incomplete(buf, n);
}

static void test_v2_tlv_overrun(void **state)
{
	uint8_t block[64], buf[128];
	size_t off;

	(void)state;
	memcpy(block, block4, sizeof(block4));

	/* A TLV's length runs past the header: refused when it arrives. */
	off = sizeof(block4);
	tlv(block, &off, 0x01, "h2", 2);
	block[off - 3] = 5; /* value length 2 -> 5 */
	size_t n = v2(buf, 0x21, 0x11, block, off);
	expect_invalid_at(buf, n, 16 + 12 + 3);
	block[off - 4] = 1; /* value length 0x105 */
	n = v2(buf, 0x21, 0x11, block, off);
	expect_invalid_at(buf, n, 16 + 12 + 3);

	/* One or two bytes after the addresses make no TLV header. */
	n = v2(buf, 0x21, 0x11, block, 13);
	expect_invalid_at(buf, n, 16);
	n = v2(buf, 0x21, 0x11, block, 14);
	expect_invalid_at(buf, n, 16);

	/* The same after a good TLV: known once that TLV's length is read. */
	off = sizeof(block4);
	tlv(block, &off, 0x01, "h2", 2);
	block[off++] = 0x04;
	n = v2(buf, 0x21, 0x11, block, off);
	expect_invalid_at(buf, n, 16 + 12 + 3);

	/* The second TLV overruns. */
	off = sizeof(block4);
	tlv(block, &off, 0x01, "h2", 2);
	tlv(block, &off, 0x02, "ab", 2);
	block[off - 3] = 3;
	n = v2(buf, 0x21, 0x11, block, off);
	expect_invalid_at(buf, n, 16 + 12 + 5 + 3);

	/* Under UNSPEC the TLVs start right after the fixed 16 bytes. */
	n = v2(buf, 0x21, 0x00, "\x04\x00\x05", 3);
	expect_invalid_at(buf, n, 19);
	n = v2(buf, 0x21, 0x21, block6, sizeof(block6));
	buf[15] = 37;
	buf[n] = 0x04;
	expect_invalid_at(buf, n + 1, 16);
}

/* Every octet at every offset of a valid header: whatever the answer, the
 * answers over the prefixes stay monotonic (parse_checked's checks). */
static void mutate_all(const uint8_t *in, size_t len)
{
	uint8_t mutated[128];
	struct pp_info info;
	size_t at;

	assert_true(len <= sizeof(mutated));
	for (size_t i = 0; i < len; i++) {
		for (unsigned v = 0; v < 256; v++) {
			memcpy(mutated, in, len);
			mutated[i] = (uint8_t)v;
			parse_checked(mutated, len, &info, &at);
		}
	}
}

static void test_every_octet_at_every_offset(void **state)
{
	uint8_t block[64], buf[128];
	size_t off = sizeof(block4);

	(void)state;
	mutate_all(S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nX"));
	mutate_all(S("PROXY TCP6 ::1 ::2 1 2\r\nX"));
	mutate_all(S("PROXY UNKNOWN x\r\nX"));
	memcpy(block, block4, sizeof(block4));
	tlv(block, &off, 0x01, "h2", 2);
	mutate_all(buf, v2(buf, 0x21, 0x11, block, off));
	mutate_all(buf, v2(buf, 0x21, 0x21, block6, sizeof(block6)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_result_name),
	        cmocka_unit_test(test_short_prefixes_wait),
	        cmocka_unit_test(test_early_refusal),
	        cmocka_unit_test(test_v1_tcp4),
	        cmocka_unit_test(test_v1_tcp6),
	        cmocka_unit_test(test_v1_unknown),
	        cmocka_unit_test(test_v1_ports),
	        cmocka_unit_test(test_v1_malformed),
	        cmocka_unit_test(test_v1_too_long),
	        cmocka_unit_test(test_v1_nul),
	        cmocka_unit_test(test_v2_tcp4),
	        cmocka_unit_test(test_v2_tcp4_tlvs),
	        cmocka_unit_test(test_v2_tcp6),
	        cmocka_unit_test(test_v2_local),
	        cmocka_unit_test(test_v2_unspec_fallbacks),
	        cmocka_unit_test(test_v2_bad_signature),
	        cmocka_unit_test(test_v2_bad_version_command),
	        cmocka_unit_test(test_v2_bad_family),
	        cmocka_unit_test(test_v2_lengths),
	        cmocka_unit_test(test_v2_tlv_overrun),
	        cmocka_unit_test(test_every_octet_at_every_offset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
