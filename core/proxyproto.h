/* core/proxyproto.h — the receiving side of the PROXY protocol (HAProxy's
 * proxy-protocol.txt, versions 1 and 2): the header a trusted load balancer
 * in front of ringlb sends first on each connection to give the real client
 * address.
 *
 * The parser is pure: no I/O, no allocation, no state between calls. The
 * caller calls pp_parse with all the bytes received so far, again each time
 * more arrive, until it answers PP_DONE or PP_INVALID. A header is at most
 * PP_HEADER_MAX bytes, so re-reading from the start costs little. Results are
 * copied out; nothing points into the caller's buffer. Any thread may call.
 *
 * Early refusal: pp_parse answers PP_INVALID at the first byte that no PROXY
 * header can have there, so a client that sends plain HTTP or TLS instead of
 * a header is refused at once ('G' of "GET", 0x16 of a ClientHello) rather
 * than after a timeout. Inside a v1 address the verdict waits for the space
 * that ends it (each byte is still checked against the address's alphabet
 * and the address's longest length). The answers are monotonic: once a
 * prefix is PP_INVALID every longer input is; once a prefix is PP_DONE every
 * longer input is, with the same pp_info.
 *
 * Choices where the spec leaves room, all on the strict side:
 *   - v1: exactly one space between fields; "TCP4" and "TCP6" addresses must
 *     parse with inet_pton for that family (so no leading zeros in IPv4
 *     octets, no IPv6 zone); ports are 0..65535 in decimal without sign or
 *     leading zeros ("0" itself is fine); the line ends in CRLF (a bare LF or
 *     CR is refused) within PP_V1_MAX bytes. "UNKNOWN" is followed by CRLF,
 *     or by a space and anything but CR and LF up to the CRLF.
 *   - v2 PROXY: TCP over IPv4 (0x11) and IPv6 (0x21) give addresses. UNSPEC
 *     (0x00), UDP (0x12, 0x22) and AF_UNIX (0x31, 0x32) are valid
 *     combinations we do not use, so they fall back to UNSPEC as the spec
 *     (section 2.2) asks: local, after checking that the block holds the
 *     family's addresses and that the TLVs after them fit. Any other family
 *     byte is invalid ("must be rejected as invalid by receivers").
 *   - v2 LOCAL: the spec says the receiver discards the protocol block
 *     "including the family which is ignored", so the family byte and the
 *     whole block after the 16 fixed bytes are skipped unread.
 *   - v2 TLVs are walked only to prove each lies within the length; one with
 *     1 or 2 bytes left over is invalid. Their contents, the CRC32C TLV
 *     included, are not checked: the sender is trusted and TCP checksums the
 *     bytes already.
 */
#ifndef RLB_PROXYPROTO_H
#define RLB_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PP_V1_MAX     107  /* the spec's longest v1 line, CRLF included */
#define PP_HEADER_MAX 1024 /* longest header accepted (v2 with TLVs); longer is invalid */

enum pp_result {
	PP_INCOMPLETE = 0, /* a valid prefix so far: call again with more bytes */
	PP_DONE,           /* a complete header; *out is filled */
	PP_INVALID,        /* cannot be a PROXY header: close the connection */
};

/* What a header says. Written only when pp_parse answers PP_DONE. */
struct pp_info {
	bool local; /* v2 LOCAL, or v1 UNKNOWN / v2 UNSPEC family: keep the socket's own addresses
	             */
	struct sockaddr_storage src, dst; /* AF_INET or AF_INET6 with ports, when !local */
	socklen_t src_len, dst_len;       /* sizeof the sockaddr_in(6); 0 when local */
	size_t header_len;                /* bytes the header takes: the caller drops them */
	uint8_t version;                  /* 1 or 2 */
};

/* pp_parse looks at buf[0..len): PP_INCOMPLETE if more bytes are needed (and
 * could still make a valid header: a prefix that already cannot be a PROXY
 * header is PP_INVALID at once — e.g. "GET " — so a client that sends no
 * header is refused without waiting), PP_DONE with *out filled, or
 * PP_INVALID. *out is left untouched unless PP_DONE. Bytes after
 * out->header_len belong to the connection's payload. */
enum pp_result pp_parse(const uint8_t *buf, size_t len, struct pp_info *out);

/* pp_result_name returns a short static name for `r` ("incomplete"). */
const char *pp_result_name(enum pp_result r);

#endif
