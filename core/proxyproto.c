/* core/proxyproto.c — PROXY protocol v1 and v2 header parser (proxyproto.h).
 *
 * The first byte picks the version: 'P' can only start the v1 line, CR can
 * only start the v2 signature, anything else is refused on the spot.
 *
 * v1 is read through a cursor over at most PP_V1_MAX bytes. Each piece of
 * the line (a literal, an address, a port) is read by one function that
 * answers PP_DONE when its piece is complete, PP_INCOMPLETE when the input
 * ends inside it and PP_INVALID at the first byte that cannot belong there.
 * A line that has not ended when PP_V1_MAX bytes are visible is invalid.
 *
 * v2 is read at fixed offsets: each field is judged as soon as its bytes are
 * present, and the TLV walk stops at the first TLV whose header has not
 * arrived yet. Nothing is written to the caller's struct until the whole
 * header has been accepted.
 *
 * Pure functions; no state, any thread.
 */
#include "core/proxyproto.h"

#include "core/common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* The v2 signature (spec section 2.2): CR LF CR LF NUL CR LF "QUIT" LF. */
static const uint8_t pp_v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

#define PP_V2_FIXED        16 /* signature, ver_cmd, fam, 2-byte length */
#define PP_V2_CMD_LOCAL    0x0
#define PP_V2_CMD_PROXY    0x1
#define PP_V2_ADDR_UNKNOWN SIZE_MAX /* pp_v2_addr_len: not a valid family byte */
#define PP_TLV_HEAD        3        /* type, 2-byte length */

_Static_assert(PP_V1_MAX <= PP_HEADER_MAX, "a v1 line must fit the header limit");
_Static_assert(PP_V2_FIXED + 216 <= PP_HEADER_MAX, "an AF_UNIX v2 header must fit");

static const char *const pp_result_names[] = {
        [PP_INCOMPLETE] = "incomplete",
        [PP_DONE] = "done",
        [PP_INVALID] = "invalid",
};

const char *pp_result_name(enum pp_result r)
{
	if ((unsigned)r >= RLB_ARRAY_LEN(pp_result_names))
		return "unknown";
	return pp_result_names[r];
}

/* Propagates anything but PP_DONE from a piece reader to the caller. */
#define PP_TRY(expr)                                                                               \
	do {                                                                                       \
		enum pp_result pp_r_ = (expr);                                                     \
		if (pp_r_ != PP_DONE)                                                              \
			return pp_r_;                                                              \
	} while (0)

/* --- v1 --- */

struct pp_cur {
	const uint8_t *buf;
	size_t len; /* bytes visible: never more than PP_V1_MAX */
	size_t pos; /* next byte to read; <= len */
};

/* Octets an address may hold: bit 0 for IPv4 (dotted decimal), bit 1 for
 * IPv6 (hex groups, colons, and a dotted IPv4 tail). Judging each byte as it
 * arrives refuses garbage without waiting for the space after it. */
#define PP_ADDR_V4 1
#define PP_ADDR_V6 2
static const uint8_t pp_addr_chars[256] = {
        ['0' ... '9'] = PP_ADDR_V4 | PP_ADDR_V6,
        ['.'] = PP_ADDR_V4 | PP_ADDR_V6,
        ['a' ... 'f'] = PP_ADDR_V6,
        ['A' ... 'F'] = PP_ADDR_V6,
        [':'] = PP_ADDR_V6,
};

/* pp_v1_lit reads the literal `lit`, which may be cut short by the input. */
static enum pp_result pp_v1_lit(struct pp_cur *c, const char *lit)
{
	for (; *lit != '\0'; lit++, c->pos++) {
		if (c->pos == c->len)
			return PP_INCOMPLETE;
		if (c->buf[c->pos] != (uint8_t)*lit)
			return PP_INVALID;
	}
	return PP_DONE;
}

/* pp_v1_addr reads an address of `family` and the space after it into *ss.
 * The text is judged by inet_pton once the space shows where it ends. */
static enum pp_result pp_v1_addr(struct pp_cur *c, int family, struct sockaddr_storage *ss,
                                 socklen_t *ss_len)
{
	const uint8_t mask = family == AF_INET ? PP_ADDR_V4 : PP_ADDR_V6;
	const size_t text_max = family == AF_INET ? INET_ADDRSTRLEN - 1 : INET6_ADDRSTRLEN - 1;
	const size_t start = c->pos;
	char text[INET6_ADDRSTRLEN];

	for (;; c->pos++) {
		if (c->pos == c->len)
			return PP_INCOMPLETE;
		const uint8_t ch = c->buf[c->pos];
		if (ch == ' ')
			break;
		if (!(pp_addr_chars[ch] & mask) || c->pos - start == text_max)
			return PP_INVALID;
	}
	const size_t text_len = c->pos - start;
	RLB_ASSERT(text_len < sizeof(text));
	memcpy(text, c->buf + start, text_len);
	text[text_len] = '\0';
	c->pos++; /* the space */

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in sin = {.sin_family = AF_INET};
		if (inet_pton(AF_INET, text, &sin.sin_addr) != 1)
			return PP_INVALID;
		memcpy(ss, &sin, sizeof(sin));
		*ss_len = sizeof(sin);
	} else {
		struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
		if (inet_pton(AF_INET6, text, &sin6.sin6_addr) != 1)
			return PP_INVALID;
		memcpy(ss, &sin6, sizeof(sin6));
		*ss_len = sizeof(sin6);
	}
	return PP_DONE;
}

/* pp_v1_port reads a port and the byte `term` after it: 1*DIGIT, no leading
 * zero unless the port is 0, at most 65535. Each rule is judged at the byte
 * that breaks it. */
static enum pp_result pp_v1_port(struct pp_cur *c, uint8_t term, uint16_t *out_port)
{
	const size_t start = c->pos;
	uint32_t port = 0;

	for (;; c->pos++) {
		if (c->pos == c->len)
			return PP_INCOMPLETE;
		const uint8_t ch = c->buf[c->pos];
		if (ch == term && c->pos > start)
			break;
		if (ch < '0' || ch > '9')
			return PP_INVALID;
		if (c->pos > start && c->buf[start] == '0')
			return PP_INVALID; /* a leading zero */
		port = port * 10 + (uint32_t)(ch - '0');
		if (port > 65535)
			return PP_INVALID;
	}
	c->pos++; /* term */
	*out_port = (uint16_t)port;
	return PP_DONE;
}

/* pp_set_port stores `port` (host order) into an AF_INET(6) address. */
static void pp_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	const uint16_t net = htons(port);

	if (ss->ss_family == AF_INET)
		memcpy((uint8_t *)ss + offsetof(struct sockaddr_in, sin_port), &net, sizeof(net));
	else
		memcpy((uint8_t *)ss + offsetof(struct sockaddr_in6, sin6_port), &net, sizeof(net));
}

/* pp_v1_unknown reads what follows "UNKNOWN": CRLF, or a space and any bytes
 * but CR and LF, then CRLF. The spec says the rest of the line is ignored;
 * a bare LF or a CR not followed by LF still makes it invalid. */
static enum pp_result pp_v1_unknown(struct pp_cur *c)
{
	if (c->pos == c->len)
		return PP_INCOMPLETE;
	if (c->buf[c->pos] == ' ') {
		for (c->pos++; c->pos < c->len && c->buf[c->pos] != '\r'; c->pos++) {
			if (c->buf[c->pos] == '\n')
				return PP_INVALID;
		}
	}
	return pp_v1_lit(c, "\r\n");
}

/* pp_v1_line reads "PROXY TCP4|TCP6 src dst sport dport\r\n" or
 * "PROXY UNKNOWN...\r\n" into *info. */
static enum pp_result pp_v1_line(struct pp_cur *c, struct pp_info *info)
{
	uint16_t sport, dport;
	int family;

	PP_TRY(pp_v1_lit(c, "PROXY "));
	if (c->pos == c->len)
		return PP_INCOMPLETE;
	if (c->buf[c->pos] == 'U') {
		PP_TRY(pp_v1_lit(c, "UNKNOWN"));
		info->local = true;
		return pp_v1_unknown(c);
	}
	PP_TRY(pp_v1_lit(c, "TCP"));
	if (c->pos == c->len)
		return PP_INCOMPLETE;
	if (c->buf[c->pos] == '4')
		family = AF_INET;
	else if (c->buf[c->pos] == '6')
		family = AF_INET6;
	else
		return PP_INVALID;
	c->pos++;
	PP_TRY(pp_v1_lit(c, " "));
	PP_TRY(pp_v1_addr(c, family, &info->src, &info->src_len));
	PP_TRY(pp_v1_addr(c, family, &info->dst, &info->dst_len));
	PP_TRY(pp_v1_port(c, ' ', &sport));
	PP_TRY(pp_v1_port(c, '\r', &dport));
	PP_TRY(pp_v1_lit(c, "\n"));
	pp_set_port(&info->src, sport);
	pp_set_port(&info->dst, dport);
	return PP_DONE;
}

static enum pp_result pp_v1(const uint8_t *buf, size_t len, struct pp_info *info)
{
	struct pp_cur c = {.buf = buf, .len = len < PP_V1_MAX ? len : PP_V1_MAX, .pos = 0};
	enum pp_result r = pp_v1_line(&c, info);

	RLB_ASSERT_HOT(c.pos <= c.len);
	if (r == PP_INCOMPLETE && len >= PP_V1_MAX)
		return PP_INVALID; /* no CRLF within the spec's 107 bytes */
	if (r == PP_DONE) {
		info->version = 1;
		info->header_len = c.pos;
	}
	return r;
}

/* --- v2 --- */

static size_t pp_be16(const uint8_t *p)
{
	return (size_t)p[0] << 8 | p[1];
}

/* pp_v2_addr_len returns the bytes of addresses and ports family byte `fam`
 * puts at the start of the block (spec section 2.2), or PP_V2_ADDR_UNKNOWN
 * for a byte that is none of the valid combinations. */
static size_t pp_v2_addr_len(uint8_t fam)
{
	switch (fam) {
	case 0x00: /* UNSPEC */
		return 0;
	case 0x11: /* TCP over IPv4 */
	case 0x12: /* UDP over IPv4 */
		return 12;
	case 0x21: /* TCP over IPv6 */
	case 0x22: /* UDP over IPv6 */
		return 36;
	case 0x31: /* AF_UNIX stream */
	case 0x32: /* AF_UNIX datagram */
		return 216;
	default:
		return PP_V2_ADDR_UNKNOWN;
	}
}

/* pp_v2_tlvs walks the TLVs in buf[off..end), of which buf[0..len) has
 * arrived, proving that each lies within `end`. */
static enum pp_result pp_v2_tlvs(const uint8_t *buf, size_t len, size_t off, size_t end)
{
	RLB_ASSERT(off <= end && end <= PP_HEADER_MAX);
	while (off < end) {
		if (end - off < PP_TLV_HEAD)
			return PP_INVALID; /* leftover bytes that are no TLV */
		if (len < off + PP_TLV_HEAD)
			return PP_INCOMPLETE;
		const size_t value_len = pp_be16(buf + off + 1);
		if (value_len > end - off - PP_TLV_HEAD)
			return PP_INVALID; /* runs past the header */
		off += PP_TLV_HEAD + value_len;
	}
	return len < end ? PP_INCOMPLETE : PP_DONE;
}

/* pp_v2_addrs fills *info from a complete PROXY header of family `fam`. */
static void pp_v2_addrs(const uint8_t *buf, uint8_t fam, struct pp_info *info)
{
	const uint8_t *a = buf + PP_V2_FIXED;

	if (fam == 0x11) {
		struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
		memcpy(&src.sin_addr, a, 4);
		memcpy(&dst.sin_addr, a + 4, 4);
		memcpy(&src.sin_port, a + 8, 2);
		memcpy(&dst.sin_port, a + 10, 2);
		memcpy(&info->src, &src, sizeof(src));
		memcpy(&info->dst, &dst, sizeof(dst));
		info->src_len = info->dst_len = sizeof(src);
	} else if (fam == 0x21) {
		struct sockaddr_in6 src = {.sin6_family = AF_INET6},
		                    dst = {.sin6_family = AF_INET6};
		memcpy(&src.sin6_addr, a, 16);
		memcpy(&dst.sin6_addr, a + 16, 16);
		memcpy(&src.sin6_port, a + 32, 2);
		memcpy(&dst.sin6_port, a + 34, 2);
		memcpy(&info->src, &src, sizeof(src));
		memcpy(&info->dst, &dst, sizeof(dst));
		info->src_len = info->dst_len = sizeof(src);
	} else {
		info->local = true; /* UNSPEC, UDP, AF_UNIX: the spec's UNSPEC fallback */
	}
}

static enum pp_result pp_v2(const uint8_t *buf, size_t len, struct pp_info *info)
{
	if (memcmp(buf, pp_v2_sig, len < sizeof(pp_v2_sig) ? len : sizeof(pp_v2_sig)) != 0)
		return PP_INVALID;
	if (len <= 12)
		return PP_INCOMPLETE;
	const uint8_t ver = buf[12] >> 4, cmd = buf[12] & 0xf;
	if (ver != 2 || (cmd != PP_V2_CMD_LOCAL && cmd != PP_V2_CMD_PROXY))
		return PP_INVALID;
	if (len <= 13)
		return PP_INCOMPLETE;
	const uint8_t fam = buf[13];
	const size_t addr_len = pp_v2_addr_len(fam);
	if (cmd == PP_V2_CMD_PROXY && addr_len == PP_V2_ADDR_UNKNOWN)
		return PP_INVALID;
	if (len < PP_V2_FIXED)
		return PP_INCOMPLETE;
	const size_t block_len = pp_be16(buf + 14);
	const size_t total = PP_V2_FIXED + block_len;
	if (total > PP_HEADER_MAX)
		return PP_INVALID;

	if (cmd == PP_V2_CMD_LOCAL) {
		/* The block, family included, is discarded unread (spec 2.2). */
		if (len < total)
			return PP_INCOMPLETE;
		info->local = true;
	} else {
		if (block_len < addr_len)
			return PP_INVALID; /* too short for the family's addresses */
		PP_TRY(pp_v2_tlvs(buf, len, PP_V2_FIXED + addr_len, total));
		pp_v2_addrs(buf, fam, info);
	}
	info->version = 2;
	info->header_len = total;
	return PP_DONE;
}

enum pp_result pp_parse(const uint8_t *buf, size_t len, struct pp_info *out)
{
	struct pp_info info;
	enum pp_result r;

	RLB_ASSERT(out != NULL);
	RLB_ASSERT(buf != NULL || len == 0);
	if (len == 0)
		return PP_INCOMPLETE;
	memset(&info, 0, sizeof(info));
	if (buf[0] == 'P')
		r = pp_v1(buf, len, &info);
	else if (buf[0] == pp_v2_sig[0])
		r = pp_v2(buf, len, &info);
	else
		return PP_INVALID; /* plain HTTP, TLS, or anything else */
	if (r != PP_DONE)
		return r;
	RLB_ASSERT(info.header_len <= len && info.header_len <= PP_HEADER_MAX);
	RLB_ASSERT(info.local == (info.src_len == 0));
	*out = info;
	return PP_DONE;
}
