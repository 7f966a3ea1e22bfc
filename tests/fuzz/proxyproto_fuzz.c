/* tests/fuzz/proxyproto_fuzz.c — libFuzzer harness for core/proxyproto.c.
 *
 * Goal: no input makes pp_parse read out of bounds or crash, and its answer
 * never depends on how much of the input has arrived, beyond what the
 * protocol allows: a prefix of an input is incomplete, or gives the same
 * final answer as the whole input.
 *
 * Method: the first input byte picks two prefix lengths; the rest is what a
 * client sent. The whole input and both prefixes are parsed, each from an
 * exactly sized heap copy so ASan sees any read past the bytes given, and
 * compared: INVALID on a prefix implies INVALID on the whole; DONE on a
 * prefix implies DONE on the whole with the same pp_info; when the whole is
 * DONE, every prefix shorter than header_len is INCOMPLETE and every longer
 * one DONE (checked at the two picked lengths and at header_len - 1 and
 * header_len). A DONE answer must describe a well-formed header (lengths,
 * families), and its addresses, written again as a v1 line and as a v2
 * header, must parse back to the same addresses.
 */
#include "core/common.c"
#include "core/proxyproto.c"

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "proxyproto_fuzz: check failed: %s (line %d)\n", #cond,    \
			        __LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static enum pp_result fuzz_parse(const uint8_t *buf, size_t len, struct pp_info *out)
{
	uint8_t *copy = malloc(len ? len : 1);

	CHECK(copy != NULL);
	memcpy(copy, buf, len);
	memset(out, 0, sizeof(*out));
	enum pp_result r = pp_parse(copy, len, out);
	free(copy);
	CHECK(r == PP_INCOMPLETE || r == PP_DONE || r == PP_INVALID);
	return r;
}

static bool fuzz_same_info(const struct pp_info *a, const struct pp_info *b)
{
	return a->local == b->local && a->version == b->version && a->header_len == b->header_len &&
	       a->src_len == b->src_len && a->dst_len == b->dst_len &&
	       memcmp(&a->src, &b->src, a->src_len) == 0 &&
	       memcmp(&a->dst, &b->dst, a->dst_len) == 0;
}

/* fuzz_check_done checks that a DONE answer for buf[0..len) describes a
 * well-formed header. */
static void fuzz_check_done(const uint8_t *buf, size_t len, const struct pp_info *info)
{
	CHECK(info->header_len <= len && info->header_len <= PP_HEADER_MAX);
	if (info->version == 1) {
		CHECK(info->header_len <= PP_V1_MAX && info->header_len >= 15);
		CHECK(memcmp(buf, "PROXY ", 6) == 0);
		CHECK(memcmp(buf + info->header_len - 2, "\r\n", 2) == 0);
	} else {
		CHECK(info->version == 2);
		CHECK(info->header_len >= PP_V2_FIXED);
		CHECK(info->header_len == PP_V2_FIXED + pp_be16(buf + 14));
	}
	if (info->local) {
		CHECK(info->src_len == 0 && info->dst_len == 0);
		return;
	}
	CHECK(info->src.ss_family == info->dst.ss_family);
	CHECK(info->src_len == info->dst_len);
	if (info->src.ss_family == AF_INET)
		CHECK(info->src_len == sizeof(struct sockaddr_in));
	else
		CHECK(info->src.ss_family == AF_INET6 &&
		      info->src_len == sizeof(struct sockaddr_in6));
}

/* fuzz_check_prefix compares the answer for the first `n` bytes with the
 * answer for all of them. */
static void fuzz_check_prefix(const uint8_t *buf, size_t n, enum pp_result whole,
                              const struct pp_info *whole_info)
{
	struct pp_info info;
	enum pp_result r = fuzz_parse(buf, n, &info);

	if (r == PP_INVALID)
		CHECK(whole == PP_INVALID);
	if (r == PP_DONE)
		CHECK(whole == PP_DONE && fuzz_same_info(&info, whole_info));
	if (whole == PP_INCOMPLETE)
		CHECK(r == PP_INCOMPLETE);
	if (whole == PP_DONE)
		CHECK(n < whole_info->header_len ? r == PP_INCOMPLETE : r == PP_DONE);
}

/* fuzz_reencode writes the addresses of `info` as a v1 line and as a v2
 * header; both must parse back to the same addresses. */
static void fuzz_reencode(const struct pp_info *info)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], line[PP_V1_MAX + 1];
	uint8_t hdr[PP_V2_FIXED + 36];
	const bool v4 = info->src.ss_family == AF_INET;
	const size_t addr_len = v4 ? 4 : 16;
	const uint8_t *sa, *da, *sp, *dp;
	struct pp_info back;

	if (v4) {
		sa = (const uint8_t *)&info->src + offsetof(struct sockaddr_in, sin_addr);
		da = (const uint8_t *)&info->dst + offsetof(struct sockaddr_in, sin_addr);
		sp = (const uint8_t *)&info->src + offsetof(struct sockaddr_in, sin_port);
		dp = (const uint8_t *)&info->dst + offsetof(struct sockaddr_in, sin_port);
	} else {
		sa = (const uint8_t *)&info->src + offsetof(struct sockaddr_in6, sin6_addr);
		da = (const uint8_t *)&info->dst + offsetof(struct sockaddr_in6, sin6_addr);
		sp = (const uint8_t *)&info->src + offsetof(struct sockaddr_in6, sin6_port);
		dp = (const uint8_t *)&info->dst + offsetof(struct sockaddr_in6, sin6_port);
	}
	CHECK(inet_ntop(info->src.ss_family, sa, src, sizeof(src)) != NULL);
	CHECK(inet_ntop(info->dst.ss_family, da, dst, sizeof(dst)) != NULL);
	int n = snprintf(line, sizeof(line), "PROXY TCP%c %s %s %u %u\r\n", v4 ? '4' : '6', src,
	                 dst, (unsigned)(sp[0] << 8 | sp[1]), (unsigned)(dp[0] << 8 | dp[1]));
	CHECK(n > 0 && (size_t)n < sizeof(line));
	CHECK(fuzz_parse((const uint8_t *)line, (size_t)n, &back) == PP_DONE);
	CHECK(back.header_len == (size_t)n && back.version == 1);
	back.version = info->version;
	back.header_len = info->header_len;
	CHECK(fuzz_same_info(&back, info));

	memcpy(hdr, pp_v2_sig, sizeof(pp_v2_sig));
	hdr[12] = 0x21;
	hdr[13] = v4 ? 0x11 : 0x21;
	hdr[14] = 0;
	hdr[15] = (uint8_t)(2 * addr_len + 4);
	memcpy(hdr + 16, sa, addr_len);
	memcpy(hdr + 16 + addr_len, da, addr_len);
	memcpy(hdr + 16 + 2 * addr_len, sp, 2);
	memcpy(hdr + 18 + 2 * addr_len, dp, 2);
	const size_t hdr_len = 16 + 2 * addr_len + 4;
	CHECK(fuzz_parse(hdr, hdr_len, &back) == PP_DONE);
	CHECK(back.header_len == hdr_len && back.version == 2);
	back.version = info->version;
	back.header_len = info->header_len;
	CHECK(fuzz_same_info(&back, info));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_info whole_info;

	if (size < 1)
		return 0;
	const uint8_t sel = data[0];
	const uint8_t *buf = data + 1;
	const size_t len = size - 1;
	const size_t split1 = (size_t)sel * len / 255;
	const size_t split2 = ((size_t)sel * 37 + 11) % (len + 1);

	enum pp_result whole = fuzz_parse(buf, len, &whole_info);
	fuzz_check_prefix(buf, split1, whole, &whole_info);
	fuzz_check_prefix(buf, split2, whole, &whole_info);
	if (whole != PP_DONE)
		return 0;
	fuzz_check_done(buf, len, &whole_info);
	fuzz_check_prefix(buf, whole_info.header_len - 1, whole, &whole_info);
	fuzz_check_prefix(buf, whole_info.header_len, whole, &whole_info);
	if (!whole_info.local)
		fuzz_reencode(&whole_info);
	return 0;
}
