/* core/h1.c — strict, incremental, zero-copy HTTP/1.1 head parser, chunked
 * body decoder, and the writers for the heads ringlb forwards (h1.h).
 *
 * A head is parsed in two phases. The scan phase (h1_scan_head) looks for the
 * empty line that ends the head, resuming at scan->pos on each call. It is
 * the only phase that sees partial input, so it alone enforces the limits and
 * the CRLF rules, and it decides every error at the earliest byte where the
 * error becomes certain. That makes the result independent of how the input
 * was split across calls: a head fed in one piece and the same head fed byte
 * by byte give the same answer. The parse phase then walks the complete head
 * once. Because the scan proved that every line ends in CRLF and that no
 * other CR or LF occurs, the parse loops use the CR as a sentinel instead of
 * checking bounds on every byte. The loops that cover most bytes (the scan,
 * request-target, field values) test 8 bytes per step.
 *
 * The chunked decoder is a byte-driven state machine that keeps everything it
 * needs in struct h1_chunked, so it never looks back at earlier input.
 */
#include "core/h1.h"

#include "core/common.h"

#include <string.h>

/* Leading empty lines a server skips before a request-line (RFC 9112 §2.2
 * says "at least one"); a few tolerate clients that send CRLF after a POST
 * body, more are a waste of our time. */
#define H1_SKIP_LINES_MAX 4

/* --- character classes (256-entry tables, one load per byte) --- */

/* tchar (RFC 9110 §5.6.2): a token character. */
static const uint8_t h1_tchar[256] = {
        ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
        ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
        ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

/* field-value octets (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text. CR, LF, NUL,
 * the other CTLs and DEL are not. Also used for reason-phrase (RFC 9112 §4)
 * and chunk-ext quoted-pair, which allow the same set. */
static const uint8_t h1_fvalue[256] = {
        ['\t'] = 1,
        [0x20 ... 0x7e] = 1,
        [0x80 ... 0xff] = 1,
};

/* Octets of a Host value (RFC 9110 §7.2: uri-host [":" port], where uri-host
 * is an IP-literal, IPv4address or reg-name of RFC 3986 §3.2.2): unreserved,
 * pct-encoded, sub-delims, ":" and the brackets of an IP-literal. */
static const uint8_t h1_hostc[256] = {
        ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['-'] = 1, ['.'] = 1, ['_'] = 1,
        ['~'] = 1,         ['%'] = 1,         ['!'] = 1,         ['$'] = 1, ['&'] = 1, ['\''] = 1,
        ['('] = 1,         [')'] = 1,         ['*'] = 1,         ['+'] = 1, [','] = 1, [';'] = 1,
        ['='] = 1,         [':'] = 1,         ['['] = 1,         [']'] = 1,
};

/* HEXDIG value + 1 (RFC 5234 B.1, case-insensitive); 0 for other octets. */
static const uint8_t h1_hexval[256] = {
        ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
        ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['A'] = 11, ['B'] = 12,
        ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16, ['a'] = 11, ['b'] = 12,
        ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

static inline unsigned char h1_lower(unsigned char c)
{
	return (unsigned char)(c - 'A') < 26 ? (unsigned char)(c | 0x20) : c;
}

static inline bool h1_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Word-at-a-time (SWAR) helpers: the hot loops test 8 bytes per step and
 * fall back to the byte tables only for the word that holds the byte they
 * stop at. h1_has_less is exact for "some byte < n" (n <= 128) and ignores
 * bytes >= 0x80; h1_has_zero is exact for "some byte is 0". */
#define H1_ONES  0x0101010101010101ull
#define H1_HIGHS 0x8080808080808080ull

static inline uint64_t h1_load64(const char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t h1_has_zero(uint64_t x)
{
	return (x - H1_ONES) & ~x & H1_HIGHS;
}

static inline uint64_t h1_has_less(uint64_t x, unsigned n)
{
	return (x - H1_ONES * n) & ~x & H1_HIGHS;
}

/* h1_find_crlf returns the offset of the first CR or LF in buf[i..end), or
 * end. */
static inline size_t h1_find_crlf(const char *buf, size_t i, size_t end)
{
	while (end - i >= 8) {
		uint64_t x = h1_load64(buf + i);
		if (h1_has_zero(x ^ (H1_ONES * '\r')) | h1_has_zero(x ^ (H1_ONES * '\n')))
			break;
		i += 8;
	}
	while (i < end && buf[i] != '\r' && buf[i] != '\n')
		i++;
	return i;
}

/* h1_skip_fvalue returns the first octet at or after p that is not a
 * field-value octet. One must exist before end (the line's CR). */
static inline const char *h1_skip_fvalue(const char *p, const char *end)
{
	for (;;) {
		if (end - p >= 8) {
			uint64_t x = h1_load64(p);
			/* CTLs (HTAB too, resolved bytewise) and DEL */
			if (!(h1_has_less(x, 0x20) | h1_has_zero(x ^ (H1_ONES * 0x7f)))) {
				p += 8;
				continue;
			}
		}
		for (int i = 0; i < 8; i++, p++) {
			if (!h1_fvalue[(unsigned char)*p])
				return p;
		}
	}
}

/* h1_skip_vchar returns the first octet at or after p that is not visible
 * ASCII (0x21-0x7E). One must exist before end (the line's CR). */
static inline const char *h1_skip_vchar(const char *p, const char *end)
{
	for (;;) {
		if (end - p >= 8) {
			uint64_t x = h1_load64(p);
			if (!(h1_has_less(x, 0x21) | h1_has_zero(x ^ (H1_ONES * 0x7f)) |
			      (x & H1_HIGHS))) {
				p += 8;
				continue;
			}
		}
		for (int i = 0; i < 8; i++, p++) {
			if ((unsigned)(unsigned char)*p - 0x21u >= 0x5eu)
				return p;
		}
	}
}

/* h1_ieq_lower compares n bytes of p with the lowercase literal lit,
 * ignoring the case of p. */
static inline bool h1_ieq_lower(const char *p, const char *lit, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (h1_lower((unsigned char)p[i]) != (unsigned char)lit[i])
			return false;
	}
	return true;
}

/* h1_ieq_both compares n bytes of a and b, ignoring ASCII case. */
static inline bool h1_ieq_both(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (h1_lower((unsigned char)a[i]) != h1_lower((unsigned char)b[i]))
			return false;
	}
	return true;
}

#define H1_IS(s, lit) ((s).len == sizeof(lit) - 1 && h1_ieq_lower((s).ptr, lit, sizeof(lit) - 1))

bool h1_str_ieq(struct h1_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && h1_ieq_both(s.ptr, lit, n);
}

/* --- result names and statuses --- */

static const char *const h1_result_names[H1_RESULT_COUNT] = {
        [H1_OK] = "ok",
        [H1_PARTIAL] = "partial",
        [H1_E_BARE_CR] = "bare CR",
        [H1_E_BARE_LF] = "bare LF",
        [H1_E_NUL] = "NUL in head",
        [H1_E_METHOD] = "invalid method",
        [H1_E_TARGET] = "invalid request-target",
        [H1_E_VERSION] = "malformed HTTP version",
        [H1_E_VERSION_UNSUPPORTED] = "unsupported HTTP version",
        [H1_E_REQUEST_LINE] = "malformed request line",
        [H1_E_LINE_TOO_LONG] = "request line too long",
        [H1_E_HEAD_TOO_LARGE] = "head too large",
        [H1_E_TOO_MANY_HEADERS] = "too many header fields",
        [H1_E_OBS_FOLD] = "obsolete line folding",
        [H1_E_SPACE_BEFORE_COLON] = "whitespace before colon",
        [H1_E_HEADER_NAME] = "invalid field name",
        [H1_E_HEADER_VALUE] = "invalid field value",
        [H1_E_CL_INVALID] = "invalid Content-Length",
        [H1_E_CL_DUPLICATE] = "duplicate Content-Length",
        [H1_E_TE_AND_CL] = "Transfer-Encoding with Content-Length",
        [H1_E_TE_UNSUPPORTED] = "unsupported Transfer-Encoding",
        [H1_E_TE_HTTP10] = "Transfer-Encoding in HTTP/1.0",
        [H1_E_HOST] = "missing, duplicate or invalid Host",
        [H1_E_STATUS] = "malformed status line",
        [H1_E_CHUNK_SIZE] = "invalid chunk size",
        [H1_E_CHUNK_EXT] = "invalid chunk extension or line",
        [H1_E_CHUNK_DATA] = "chunk data not followed by CRLF",
        [H1_E_TRAILER] = "invalid trailer section",
};

const char *h1_result_name(enum h1_result r)
{
	if ((unsigned)r >= H1_RESULT_COUNT || h1_result_names[r] == NULL)
		return "unknown";
	return h1_result_names[r];
}

int h1_result_status(enum h1_result r)
{
	switch (r) {
	case H1_OK:
	case H1_PARTIAL:
		return 0;
	case H1_E_LINE_TOO_LONG:
		return 414; /* RFC 9112 §3: long request-target */
	case H1_E_HEAD_TOO_LARGE:
	case H1_E_TOO_MANY_HEADERS:
		return 431; /* RFC 6585 §5 */
	case H1_E_VERSION_UNSUPPORTED:
		return 505; /* RFC 9110 §15.6.6 */
	default:
		return 400;
	}
}

/* --- scan phase --- */

/* h1_scan_head looks for the end of the head in buf[0..len), resuming at
 * s->pos. On H1_OK *out_head_len is set.
 *
 * Every check fires at the first byte that decides it, and when several are
 * decided by the same byte the order is: bare CR, line too long, bare LF,
 * head too large. The same bytes therefore give the same result however they
 * were split. To get there in big steps rather than byte by byte, the search
 * is confined to windows: the head never looks past head_bytes_max (a head
 * that has not ended by then is too large), and the first line never looks
 * past line_bytes_max content bytes plus CRLF. */
static enum h1_result h1_scan_head(struct h1_scan *s, const char *buf, size_t len,
                                   const struct h1_limits *lim, bool is_request,
                                   size_t *out_head_len)
{
	const size_t head_max = lim->head_bytes_max ? lim->head_bytes_max : 1;
	const size_t line_max = lim->line_bytes_max;
	const size_t w = len < head_max ? len : head_max;
	size_t p = s->pos;

	while (p < w) {
		const size_t ls = s->line_start;
		/* Each skipped empty line is exactly CRLF, so the first line
		 * starts at 2 * skipped until it has ended. */
		const bool first = ls == 2 * s->skipped;
		size_t lim_end = w;
		size_t lf;

		if (first && w - ls > 2 && w - ls - 2 > line_max)
			lim_end = ls + line_max + 2;
		if (p > ls && buf[p - 1] == '\r') {
			/* The previous call ended on a CR; this byte decides it
			 * (RFC 9112 §2.2: a CR must be followed by LF). */
			if (buf[p] != '\n')
				return H1_E_BARE_CR;
			lf = p;
		} else {
			/* Bytes before the first CR or LF are line content. */
			const size_t c = h1_find_crlf(buf, p, lim_end);
			if (first && c - ls > line_max)
				return H1_E_LINE_TOO_LONG;
			if (c == lim_end) {
				p = c;
				break;
			}
			/* RFC 9112 §2.2 lets a recipient accept a bare LF; we
			 * do not, since a peer that disagrees would frame the
			 * message apart. */
			if (buf[c] == '\n')
				return H1_E_BARE_LF;
			if (c + 1 == w) {
				p = w; /* undecided until the next byte */
				break;
			}
			if (buf[c + 1] != '\n')
				return H1_E_BARE_CR;
			lf = c + 1;
		}
		p = lf + 1;
		s->line_start = p;
		if (lf - 1 != ls)
			continue;
		if (is_request && first) {
			if (++s->skipped > H1_SKIP_LINES_MAX)
				return H1_E_REQUEST_LINE;
			continue;
		}
		s->pos = p;
		*out_head_len = p;
		return H1_OK;
	}
	s->pos = p;
	if (len >= head_max)
		return H1_E_HEAD_TOO_LARGE;
	return H1_PARTIAL;
}

/* --- parse phase: start lines --- */

/* h1_parse_version checks HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112
 * §2.3, case-sensitive) in p[0..n) and accepts only 1.0 and 1.1. */
static enum h1_result h1_parse_version(const char *p, size_t n, uint8_t *out_minor)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || (unsigned char)(p[5] - '0') > 9 ||
	    p[6] != '.' || (unsigned char)(p[7] - '0') > 9)
		return H1_E_VERSION;
	if (p[5] != '1' || p[7] > '1')
		return H1_E_VERSION_UNSUPPORTED;
	*out_minor = (uint8_t)(p[7] - '0');
	return H1_OK;
}

/* h1_parse_request_line parses request-line = method SP request-target SP
 * HTTP-version (RFC 9112 §3) in [p, eol), where *eol is the line's CR. */
static enum h1_result h1_parse_request_line(const char *p, const char *eol, struct h1_msg *m)
{
	const char *s = p;

	while (h1_tchar[(unsigned char)*p])
		p++;
	/* One SP exactly between the parts: RFC 9112 §3 lets a server
	 * accept other whitespace, but then it parses differently from a
	 * strict peer. */
	if (p == eol || *p == '\t' || (*p == ' ' && p == s))
		return H1_E_REQUEST_LINE;
	if (*p != ' ')
		return H1_E_METHOD;
	m->method = (struct h1_str){s, (size_t)(p - s)};

	/* RFC 9112 §3.2: every form of request-target is made of visible
	 * ASCII; no controls, spaces or octets >= 0x80. */
	s = ++p;
	p = h1_skip_vchar(p, eol);
	if (*p != ' ') {
		if (p == eol && p != s)
			return H1_E_REQUEST_LINE; /* no HTTP-version (HTTP/0.9) */
		return H1_E_TARGET;
	}
	if (p == s)
		return H1_E_REQUEST_LINE; /* two SPs after the method */
	m->target = (struct h1_str){s, (size_t)(p - s)};

	s = ++p;
	if (memchr(s, ' ', (size_t)(eol - s)) != NULL)
		return H1_E_REQUEST_LINE;
	return h1_parse_version(s, (size_t)(eol - s), &m->version_minor);
}

/* h1_parse_status_line parses status-line = HTTP-version SP status-code
 * [SP [reason-phrase]] (RFC 9112 §4); like most clients it accepts a line
 * that ends right after the code. */
static enum h1_result h1_parse_status_line(const char *p, const char *eol, struct h1_msg *m)
{
	const size_t n = (size_t)(eol - p);
	enum h1_result r = h1_parse_version(p, n < 8 ? n : 8, &m->version_minor);

	if (r != H1_OK)
		return r;
	if (n < 12 || p[8] != ' ')
		return H1_E_STATUS;
	int status = 0;
	for (int i = 9; i < 12; i++) {
		unsigned d = (unsigned char)p[i] - (unsigned)'0';
		if (d > 9)
			return H1_E_STATUS;
		status = status * 10 + (int)d;
	}
	/* RFC 9110 §15: status codes are 100..599. */
	if (status < 100 || status > 599)
		return H1_E_STATUS;
	m->status = status;
	m->reason = (struct h1_str){eol, 0};
	if (n == 12)
		return H1_OK;
	if (p[12] != ' ')
		return H1_E_STATUS;
	const char *q = p + 13;
	while (h1_fvalue[(unsigned char)*q])
		q++;
	if (q != eol)
		return H1_E_STATUS;
	m->reason = (struct h1_str){p + 13, (size_t)(eol - p - 13)};
	return H1_OK;
}

/* --- parse phase: fields --- */

/* Field names the parser and the writers treat specially. */
enum h1_field {
	H1_F_OTHER = 0,
	H1_F_CONTENT_LENGTH,
	H1_F_TRANSFER_ENCODING,
	H1_F_HOST,
	H1_F_CONNECTION,
	H1_F_EXPECT,
	H1_F_KEEP_ALIVE,
	H1_F_PROXY_CONNECTION,
	H1_F_TE,
	H1_F_TRAILER,
	H1_F_UPGRADE,
	H1_F_X_FORWARDED_FOR,
	H1_F_X_FORWARDED_PROTO,
	H1_F_VIA,
};

/* h1_field_classify maps a field name to its kind, case-insensitively
 * (RFC 9110 §5.1). The switch on length rejects most names at once. */
static enum h1_field h1_field_classify(struct h1_str n)
{
	switch (n.len) {
	case 2:
		return H1_IS(n, "te") ? H1_F_TE : H1_F_OTHER;
	case 3:
		return H1_IS(n, "via") ? H1_F_VIA : H1_F_OTHER;
	case 4:
		return H1_IS(n, "host") ? H1_F_HOST : H1_F_OTHER;
	case 6:
		return H1_IS(n, "expect") ? H1_F_EXPECT : H1_F_OTHER;
	case 7:
		if (H1_IS(n, "trailer"))
			return H1_F_TRAILER;
		return H1_IS(n, "upgrade") ? H1_F_UPGRADE : H1_F_OTHER;
	case 10:
		if (H1_IS(n, "connection"))
			return H1_F_CONNECTION;
		return H1_IS(n, "keep-alive") ? H1_F_KEEP_ALIVE : H1_F_OTHER;
	case 14:
		return H1_IS(n, "content-length") ? H1_F_CONTENT_LENGTH : H1_F_OTHER;
	case 15:
		return H1_IS(n, "x-forwarded-for") ? H1_F_X_FORWARDED_FOR : H1_F_OTHER;
	case 16:
		return H1_IS(n, "proxy-connection") ? H1_F_PROXY_CONNECTION : H1_F_OTHER;
	case 17:
		if (H1_IS(n, "transfer-encoding"))
			return H1_F_TRANSFER_ENCODING;
		return H1_IS(n, "x-forwarded-proto") ? H1_F_X_FORWARDED_PROTO : H1_F_OTHER;
	default:
		return H1_F_OTHER;
	}
}

/* h1_list_next takes the next element off a comma-separated list (RFC 9110
 * §5.6.1) held in *rest, trimmed of OWS; it may be empty. Returns false once
 * the list is used up. */
static bool h1_list_next(struct h1_str *rest, struct h1_str *out_elem)
{
	if (rest->ptr == NULL)
		return false;
	const char *p = rest->ptr;
	const char *end = p + rest->len;
	const char *comma = memchr(p, ',', rest->len);
	const char *e = comma ? comma : end;

	while (p < e && h1_is_ows(*p))
		p++;
	while (e > p && h1_is_ows(e[-1]))
		e--;
	*out_elem = (struct h1_str){p, (size_t)(e - p)};
	if (comma) {
		rest->ptr = comma + 1;
		rest->len = (size_t)(end - comma - 1);
	} else {
		rest->ptr = NULL;
		rest->len = 0;
	}
	return true;
}

static bool h1_is_token(struct h1_str s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (!h1_tchar[(unsigned char)s.ptr[i]])
			return false;
	}
	return true;
}

/* Framing facts gathered over all fields, decided once the head is read. */
struct h1_facts {
	unsigned cl_count;
	unsigned host_count;
	bool te;              /* some Transfer-Encoding field */
	bool te_bad;          /* an empty or non-token transfer coding */
	unsigned te_codings;  /* codings over all TE fields */
	unsigned te_chunked;  /* of which "chunked" */
	bool te_last_chunked; /* the final coding is "chunked" */
};

/* h1_parse_cl parses Content-Length = 1*DIGIT (RFC 9110 §8.6). A list, even
 * of equal values, is refused: §8.6 allows collapsing it, but a peer that
 * does not would frame the body differently (RFC 9112 §6.3, item 5). */
static enum h1_result h1_parse_cl(struct h1_str v, uint64_t *out)
{
	uint64_t n = 0;

	if (memchr(v.ptr, ',', v.len) != NULL)
		return H1_E_CL_DUPLICATE;
	if (v.len == 0)
		return H1_E_CL_INVALID;
	for (size_t i = 0; i < v.len; i++) {
		unsigned d = (unsigned char)v.ptr[i] - (unsigned)'0';
		if (d > 9 || n > (UINT64_MAX - d) / 10)
			return H1_E_CL_INVALID;
		n = n * 10 + d;
	}
	*out = n;
	return H1_OK;
}

/* h1_note_te adds one Transfer-Encoding field's codings (RFC 9112 §6.1);
 * all TE fields together form one list. Parameters are not supported. */
static void h1_note_te(struct h1_facts *f, struct h1_str v)
{
	struct h1_str rest = v, e;

	f->te = true;
	while (h1_list_next(&rest, &e)) {
		if (!h1_is_token(e)) {
			f->te_bad = true;
			continue;
		}
		bool chunked = H1_IS(e, "chunked");
		f->te_codings++;
		f->te_chunked += chunked;
		f->te_last_chunked = chunked;
	}
}

/* h1_conn_flags collects the connection options of one Connection field
 * (RFC 9110 §7.6.1). */
static unsigned h1_conn_flags(struct h1_str v)
{
	struct h1_str rest = v, e;
	unsigned flags = 0;

	while (h1_list_next(&rest, &e)) {
		if (e.len == 0)
			continue; /* RFC 9110 §5.6.1: empty elements are ignored */
		if (H1_IS(e, "close"))
			flags |= H1_CONN_CLOSE;
		else if (H1_IS(e, "keep-alive"))
			flags |= H1_CONN_KEEP_ALIVE;
		else if (H1_IS(e, "upgrade"))
			flags |= H1_CONN_UPGRADE;
		else
			flags |= H1_CONN_OTHER;
	}
	return flags;
}

static bool h1_host_valid(struct h1_str v)
{
	for (size_t i = 0; i < v.len; i++) {
		if (!h1_hostc[(unsigned char)v.ptr[i]])
			return false;
	}
	return true;
}

/* h1_note_field records what one field means for framing and routing. */
static enum h1_result h1_note_field(struct h1_msg *m, struct h1_facts *f, const struct h1_header *h,
                                    bool is_request)
{
	switch (h1_field_classify(h->name)) {
	case H1_F_CONTENT_LENGTH:
		if (++f->cl_count > 1)
			return H1_E_CL_DUPLICATE; /* even if equal: RFC 9112 §6.3 */
		return h1_parse_cl(h->value, &m->content_length);
	case H1_F_TRANSFER_ENCODING:
		h1_note_te(f, h->value);
		break;
	case H1_F_HOST:
		if (!is_request)
			break;
		/* RFC 9112 §3.2: more than one Host, or an invalid value,
		 * is answered with 400. */
		if (++f->host_count > 1 || !h1_host_valid(h->value))
			return H1_E_HOST;
		m->host = h->value;
		break;
	case H1_F_CONNECTION:
		m->conn_flags |= h1_conn_flags(h->value);
		break;
	case H1_F_EXPECT:
		/* RFC 9110 §10.1.1: 100-continue is the only expectation. */
		if (is_request && H1_IS(h->value, "100-continue"))
			m->expect_continue = true;
		else if (is_request)
			m->expect_other = true;
		break;
	default:
		break;
	}
	return H1_OK;
}

/* h1_field_name_error says why a field line's name did not end in ':'. */
static enum h1_result h1_field_name_error(const char *name, const char *p)
{
	if (p == name || !h1_is_ows(*p))
		return H1_E_HEADER_NAME;
	while (h1_is_ows(*p))
		p++;
	/* RFC 9112 §5.1: no whitespace between field name and colon; a
	 * server must reject it (400), a proxy must remove it. */
	return *p == ':' ? H1_E_SPACE_BEFORE_COLON : H1_E_HEADER_NAME;
}

/* h1_parse_fields parses field-lines (RFC 9112 §5) from p up to end, the CR
 * of the final empty line. */
static enum h1_result h1_parse_fields(const char *p, const char *end, const struct h1_limits *lim,
                                      bool is_request, struct h1_msg *m, struct h1_facts *f)
{
	const size_t max = lim->headers_max < m->headers_cap ? lim->headers_max : m->headers_cap;

	while (p < end) {
		/* RFC 9112 §5.2: obs-fold is refused (and RFC 9112 §2.2:
		 * whitespace before the first field, too). */
		if (h1_is_ows(*p))
			return H1_E_OBS_FOLD;
		if (m->num_headers == max)
			return H1_E_TOO_MANY_HEADERS;
		const char *name = p;
		while (h1_tchar[(unsigned char)*p])
			p++;
		if (*p != ':' || p == name)
			return h1_field_name_error(name, p);
		struct h1_header *h = &m->headers[m->num_headers++];
		h->name = (struct h1_str){name, (size_t)(p - name)};

		p++;
		while (h1_is_ows(*p))
			p++;
		const char *v = p;
		p = h1_skip_fvalue(p, end);
		/* The scan proved every line ends in CRLF, so the loop
		 * stops at the CR unless it met a forbidden octet. */
		if (*p != '\r')
			return *p == '\0' ? H1_E_NUL : H1_E_HEADER_VALUE;
		const char *ve = p;
		while (ve > v && h1_is_ows(ve[-1]))
			ve--;
		h->value = (struct h1_str){v, (size_t)(ve - v)};
		p += 2;

		enum h1_result r = h1_note_field(m, f, h, is_request);
		if (r != H1_OK)
			return r;
	}
	return H1_OK;
}

/* --- parse phase: framing --- */

static bool h1_keep_alive(const struct h1_msg *m)
{
	/* RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with
	 * "keep-alive" (RFC 9112 §C.2.2). */
	if (m->conn_flags & H1_CONN_CLOSE)
		return false;
	return m->version_minor >= 1 || (m->conn_flags & H1_CONN_KEEP_ALIVE);
}

/* h1_frame_request decides the body of a request (RFC 9112 §6.3). */
static enum h1_result h1_frame_request(struct h1_msg *m, const struct h1_facts *f)
{
	if (f->te) {
		/* RFC 9112 §6.1: a 1.0 message with TE is faulty framing. */
		if (m->version_minor == 0)
			return H1_E_TE_HTTP10;
		/* RFC 9112 §6.1 lets a server drop CL; refusing is safer. */
		if (f->cl_count > 0)
			return H1_E_TE_AND_CL;
		/* RFC 9112 §6.3 item 4: chunked must be the final coding;
		 * we decode no other, so it must be the only one. */
		if (f->te_bad || f->te_codings != 1 || !f->te_last_chunked)
			return H1_E_TE_UNSUPPORTED;
		m->body = H1_BODY_CHUNKED;
	} else if (f->cl_count > 0) {
		m->body = H1_BODY_LENGTH;
	} else {
		m->body = H1_BODY_NONE; /* RFC 9112 §6.3 item 7 */
	}
	/* RFC 9112 §3.2: a 1.1 request must have one Host. */
	if (m->version_minor == 1 && f->host_count != 1)
		return H1_E_HOST;
	m->keep_alive = h1_keep_alive(m);
	return H1_OK;
}

/* h1_frame_response decides the body of a response (RFC 9112 §6.3). */
static enum h1_result h1_frame_response(struct h1_msg *m, const struct h1_facts *f,
                                        bool head_request)
{
	if (head_request || m->status < 200 || m->status == 204 || m->status == 304) {
		m->body = H1_BODY_NONE; /* item 1: whatever the fields say */
	} else if (f->te) {
		if (f->cl_count > 0)
			return H1_E_TE_AND_CL; /* item 3, as nginx does */
		if (m->version_minor == 0)
			return H1_E_TE_HTTP10;
		/* RFC 9112 §6.1: chunked at most once, and never empty. */
		if (f->te_bad || f->te_chunked > 1)
			return H1_E_TE_UNSUPPORTED;
		/* item 4: chunked last, or read until close */
		m->body = f->te_last_chunked ? H1_BODY_CHUNKED : H1_BODY_CLOSE;
	} else if (f->cl_count > 0) {
		m->body = H1_BODY_LENGTH; /* item 6 */
	} else {
		m->body = H1_BODY_CLOSE; /* item 8 */
	}
	m->keep_alive = m->body != H1_BODY_CLOSE && h1_keep_alive(m);
	return H1_OK;
}

/* h1_parse_head runs the scan, then parses and frames the complete head. */
static enum h1_result h1_parse_head(struct h1_scan *scan, const char *buf, size_t len,
                                    const struct h1_limits *lim, bool is_request, bool head_request,
                                    struct h1_msg *m)
{
	size_t head_len = 0;
	enum h1_result r = h1_scan_head(scan, buf, len, lim, is_request, &head_len);

	if (r != H1_OK)
		return r;
	/* RFC 9110 §5.5: NUL is never valid; one memchr is cheaper than a
	 * test in every loop below. */
	if (memchr(buf, '\0', head_len) != NULL)
		return H1_E_NUL;

	struct h1_header *headers = m->headers;
	size_t headers_cap = m->headers_cap;
	memset(m, 0, sizeof(*m));
	m->headers = headers;
	m->headers_cap = headers_cap;

	const char *start = buf + 2 * scan->skipped;
	const char *eol = memchr(start, '\r', (size_t)(buf + head_len - start));
	RLB_ASSERT(eol != NULL);
	r = is_request ? h1_parse_request_line(start, eol, m) : h1_parse_status_line(start, eol, m);
	if (r != H1_OK)
		return r;

	struct h1_facts f = {0};
	r = h1_parse_fields(eol + 2, buf + head_len - 2, lim, is_request, m, &f);
	if (r != H1_OK)
		return r;
	m->head_len = head_len;
	return is_request ? h1_frame_request(m, &f) : h1_frame_response(m, &f, head_request);
}

enum h1_result h1_parse_request(struct h1_scan *scan, const char *buf, size_t len,
                                const struct h1_limits *lim, struct h1_msg *out)
{
	return h1_parse_head(scan, buf, len, lim, true, false, out);
}

enum h1_result h1_parse_response(struct h1_scan *scan, const char *buf, size_t len,
                                 const struct h1_limits *lim, bool head_request, struct h1_msg *out)
{
	return h1_parse_head(scan, buf, len, lim, false, head_request, out);
}

bool h1_connection_lists(const struct h1_msg *msg, struct h1_str name)
{
	for (size_t i = 0; i < msg->num_headers; i++) {
		const struct h1_header *h = &msg->headers[i];
		if (h1_field_classify(h->name) != H1_F_CONNECTION)
			continue;
		struct h1_str rest = h->value, e;
		while (h1_list_next(&rest, &e)) {
			if (e.len == name.len && e.len > 0 && h1_ieq_both(e.ptr, name.ptr, e.len))
				return true;
		}
	}
	return false;
}

/* --- chunked bodies (RFC 9112 §7.1) --- */

/* Decoder states. The size-line states come first, so "state < CH_DATA"
 * means "inside a chunk-size line". */
enum {
	CH_SIZE_START = 0, /* first HEXDIG of chunk-size */
	CH_SIZE,           /* more HEXDIG, or what follows chunk-size */
	CH_EXT_BWS,        /* BWS before ";" (after size or ext value) */
	CH_EXT_PRE_NAME,   /* BWS after ";", before chunk-ext-name */
	CH_EXT_NAME,       /* in chunk-ext-name */
	CH_EXT_NAME_BWS,   /* BWS after the name, before "=" or ";" */
	CH_EXT_PRE_VAL,    /* BWS after "=", before chunk-ext-val */
	CH_EXT_TOKEN,      /* in a token chunk-ext-val */
	CH_EXT_QUOTED,     /* in a quoted-string chunk-ext-val */
	CH_EXT_QPAIR,      /* after "\" in a quoted-string */
	CH_EXT_QEND,       /* after the closing DQUOTE */
	CH_SIZE_LF,        /* CR seen, LF due */
	CH_DATA,           /* chunk-data, c->remaining bytes left */
	CH_DATA_CR,        /* CR after chunk-data */
	CH_DATA_LF,        /* LF after chunk-data */
	CH_TR_START,       /* start of a trailer field line, or the final CRLF */
	CH_TR_NAME,        /* in a trailer field name */
	CH_TR_VALUE,       /* in a trailer field value */
	CH_TR_LF,          /* LF ending a trailer field line */
	CH_END_LF,         /* LF of the final CRLF */
	CH_DONE,           /* body complete */
};

/* h1_ch_ext_byte steps the chunk-ext grammar (RFC 9112 §7.1.1):
 * *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ).
 * Returns the next state, or -1 if b is not allowed here. */
static inline int h1_ch_ext_byte(unsigned state, unsigned char b)
{
	const bool ows = b == ' ' || b == '\t';
	const bool tchar = h1_tchar[b];

	switch (state) {
	case CH_EXT_BWS:
		return ows ? CH_EXT_BWS : b == ';' ? CH_EXT_PRE_NAME : -1;
	case CH_EXT_PRE_NAME:
		return ows ? CH_EXT_PRE_NAME : tchar ? CH_EXT_NAME : -1;
	case CH_EXT_NAME:
		if (tchar)
			return CH_EXT_NAME;
		return ows        ? CH_EXT_NAME_BWS
		       : b == '=' ? CH_EXT_PRE_VAL
		       : b == ';' ? CH_EXT_PRE_NAME
		                  : -1;
	case CH_EXT_NAME_BWS:
		return ows        ? CH_EXT_NAME_BWS
		       : b == '=' ? CH_EXT_PRE_VAL
		       : b == ';' ? CH_EXT_PRE_NAME
		                  : -1;
	case CH_EXT_PRE_VAL:
		return ows ? CH_EXT_PRE_VAL : tchar ? CH_EXT_TOKEN : b == '"' ? CH_EXT_QUOTED : -1;
	case CH_EXT_TOKEN:
		return tchar ? CH_EXT_TOKEN : ows ? CH_EXT_BWS : b == ';' ? CH_EXT_PRE_NAME : -1;
	case CH_EXT_QUOTED:
		/* qdtext (RFC 9110 §5.6.4): field-value octets but DQUOTE and "\" */
		if (b == '"')
			return CH_EXT_QEND;
		return b == '\\' ? CH_EXT_QPAIR : h1_fvalue[b] ? CH_EXT_QUOTED : -1;
	case CH_EXT_QPAIR:
		return h1_fvalue[b] ? CH_EXT_QUOTED : -1;
	case CH_EXT_QEND:
		return ows ? CH_EXT_BWS : b == ';' ? CH_EXT_PRE_NAME : -1;
	default:
		return -1;
	}
}

/* h1_ch_line_byte steps a chunk-size line: chunk-size [ chunk-ext ] CRLF.
 * Returns H1_PARTIAL to go on, or an error. */
static inline enum h1_result h1_ch_line_byte(struct h1_chunked *c,
                                             const struct h1_chunked_limits *lim, unsigned char b)
{
	if (c->state == CH_SIZE_LF) {
		/* A bare CR here is a smuggling vector: refuse it. */
		if (b != '\n')
			return H1_E_CHUNK_EXT;
		c->line_len = 0;
		c->state = c->remaining ? CH_DATA : CH_TR_START;
		return H1_PARTIAL;
	}
	const unsigned hex = h1_hexval[b];
	if (c->state == CH_SIZE_START || (c->state == CH_SIZE && hex)) {
		/* 16 HEXDIG fill a uint64_t: more is refused, leading zeros
		 * included, so the size can never overflow. */
		if (!hex || c->line_len == 16)
			return H1_E_CHUNK_SIZE;
		c->remaining = (c->remaining << 4) | (hex - 1);
		c->state = CH_SIZE;
	} else if (b == '\r' && (c->state == CH_SIZE || c->state == CH_EXT_NAME ||
	                         c->state == CH_EXT_TOKEN || c->state == CH_EXT_QEND)) {
		c->state = CH_SIZE_LF;
		return H1_PARTIAL;
	} else if (c->state == CH_SIZE) {
		if (b == ';')
			c->state = CH_EXT_PRE_NAME;
		else if (b == ' ' || b == '\t')
			c->state = CH_EXT_BWS;
		else
			return b == '\n' ? H1_E_CHUNK_EXT : H1_E_CHUNK_SIZE;
	} else {
		int next = h1_ch_ext_byte(c->state, b);
		if (next < 0)
			return H1_E_CHUNK_EXT;
		c->state = (uint8_t)next;
	}
	if (++c->line_len > lim->line_bytes_max)
		return H1_E_CHUNK_EXT;
	return H1_PARTIAL;
}

/* h1_ch_tail_byte steps the CRLF after chunk data, and the trailer section
 * (RFC 9112 §7.1.2) with its final CRLF. Returns H1_PARTIAL to go on, H1_OK
 * at the end of the body, or an error. */
static inline enum h1_result h1_ch_tail_byte(struct h1_chunked *c,
                                             const struct h1_chunked_limits *lim, unsigned char b)
{
	switch (c->state) {
	case CH_DATA_CR:
		if (b != '\r')
			return H1_E_CHUNK_DATA;
		c->state = CH_DATA_LF;
		return H1_PARTIAL;
	case CH_DATA_LF:
		if (b != '\n')
			return H1_E_CHUNK_DATA;
		c->state = CH_SIZE_START;
		return H1_PARTIAL;
	case CH_TR_START:
		if (b == '\r') {
			c->state = CH_END_LF;
			return H1_PARTIAL;
		}
		/* a field line; obs-fold and empty names are refused */
		if (!h1_tchar[b])
			return H1_E_TRAILER;
		c->state = CH_TR_NAME;
		break;
	case CH_TR_NAME:
		if (b != ':' && !h1_tchar[b])
			return H1_E_TRAILER;
		c->state = b == ':' ? CH_TR_VALUE : CH_TR_NAME;
		break;
	case CH_TR_VALUE:
		if (b != '\r' && !h1_fvalue[b])
			return H1_E_TRAILER;
		c->state = b == '\r' ? CH_TR_LF : CH_TR_VALUE;
		break;
	case CH_TR_LF:
		if (b != '\n')
			return H1_E_TRAILER;
		c->state = CH_TR_START;
		break;
	case CH_END_LF:
		if (b != '\n')
			return H1_E_TRAILER;
		c->state = CH_DONE;
		return H1_OK;
	default:
		RLB_ASSERT(0 && "chunked decoder in a bad state");
	}
	/* The trailer section counts its field lines with their CRLFs. */
	if (++c->trailer_len > lim->trailer_bytes_max)
		return H1_E_TRAILER;
	return H1_PARTIAL;
}

/* h1_chunked_run is h1_chunked_feed; with `out` (== buf, writable) it also
 * moves the chunk data to out[0..*out_data_len). Data only ever moves
 * towards the front, so memmove in place is safe. */
static enum h1_result h1_chunked_run(struct h1_chunked *c, const struct h1_chunked_limits *lim,
                                     const char *buf, char *out, size_t len, size_t *out_consumed,
                                     size_t *out_data_len)
{
	enum h1_result r = H1_PARTIAL;
	size_t i = 0, d = 0;

	RLB_ASSERT(buf != NULL || len == 0);
	RLB_ASSERT(c->state <= CH_DONE);
	if (c->state == CH_DONE)
		r = H1_OK;
	while (i < len && r == H1_PARTIAL) {
		if (c->state == CH_DATA) {
			size_t n = len - i;
			if (n > c->remaining)
				n = (size_t)c->remaining;
			if (out != NULL && n > 0)
				memmove(out + d, buf + i, n);
			d += n;
			i += n;
			c->remaining -= n;
			if (c->remaining == 0)
				c->state = CH_DATA_CR;
			continue;
		}
		const unsigned char b = (unsigned char)buf[i];
		if (c->state < CH_DATA)
			r = h1_ch_line_byte(c, lim, b);
		else
			r = h1_ch_tail_byte(c, lim, b);
		/* an error leaves its byte unconsumed; the final LF is ours */
		if (r == H1_PARTIAL || r == H1_OK)
			i++;
	}
	*out_consumed = i;
	*out_data_len = d;
	return r;
}

enum h1_result h1_chunked_feed(struct h1_chunked *c, const struct h1_chunked_limits *lim,
                               const char *buf, size_t len, size_t *out_consumed)
{
	size_t data_len;

	return h1_chunked_run(c, lim, buf, NULL, len, out_consumed, &data_len);
}

enum h1_result h1_chunked_decode(struct h1_chunked *c, const struct h1_chunked_limits *lim,
                                 char *buf, size_t len, size_t *out_consumed, size_t *out_data_len)
{
	return h1_chunked_run(c, lim, buf, buf, len, out_consumed, out_data_len);
}

/* --- writers --- */

/* A bounded output cursor: once something does not fit, nothing more is
 * written and the writer returns 0. */
struct h1_out {
	char *buf;
	size_t cap;
	size_t len;
	bool full;
};

static inline void h1_put(struct h1_out *o, const char *s, size_t n)
{
	if (RLB_UNLIKELY(o->full || o->cap - o->len < n)) {
		o->full = true;
		return;
	}
	if (n > 0)
		memcpy(o->buf + o->len, s, n);
	o->len += n;
}

#define H1_PUT_LIT(o, lit) h1_put((o), (lit), sizeof(lit) - 1)

static inline void h1_put_str(struct h1_out *o, struct h1_str s)
{
	h1_put(o, s.ptr, s.len);
}

static void h1_put_u64(struct h1_out *o, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	h1_put(o, tmp + i, sizeof(tmp) - i);
}

static void h1_put_field(struct h1_out *o, struct h1_str name, struct h1_str value)
{
	h1_put_str(o, name);
	H1_PUT_LIT(o, ": ");
	h1_put_str(o, value);
	H1_PUT_LIT(o, "\r\n");
}

static size_t h1_out_done(const struct h1_out *o)
{
	RLB_ASSERT(o->len <= o->cap);
	return o->full ? 0 : o->len;
}

/* h1_drop_field says whether a received field stays behind at this hop:
 * the hop-by-hop fields of RFC 9110 §7.6.1 (and the de facto Keep-Alive
 * and Proxy-Connection), and the fields Connection names. Content-Length
 * and Host are kept even if Connection names them: dropping them would
 * change the framing or the routing of what we forward. */
static bool h1_drop_field(const struct h1_msg *msg, struct h1_str name, enum h1_field kind)
{
	switch (kind) {
	case H1_F_CONNECTION:
	case H1_F_KEEP_ALIVE:
	case H1_F_PROXY_CONNECTION:
	case H1_F_TE:
	case H1_F_TRAILER:
	case H1_F_TRANSFER_ENCODING:
	case H1_F_UPGRADE:
		return true;
	case H1_F_CONTENT_LENGTH:
	case H1_F_HOST:
		return false;
	default:
		return (msg->conn_flags & H1_CONN_OTHER) && h1_connection_lists(msg, name);
	}
}

bool h1_hop_by_hop(const struct h1_msg *msg, struct h1_str name)
{
	return h1_drop_field(msg, name, h1_field_classify(name));
}

/* h1_put_joined writes the values of every field of `kind`, joined with
 * ", " (RFC 9110 §5.3), each followed by ", ". */
static void h1_put_joined(struct h1_out *o, const struct h1_msg *msg, enum h1_field kind)
{
	for (size_t i = 0; i < msg->num_headers; i++) {
		const struct h1_header *h = &msg->headers[i];
		if (h->value.len == 0 || h1_field_classify(h->name) != kind)
			continue;
		h1_put_str(o, h->value);
		H1_PUT_LIT(o, ", ");
	}
}

static bool h1_has_field(const struct h1_msg *msg, enum h1_field kind)
{
	for (size_t i = 0; i < msg->num_headers; i++) {
		if (h1_field_classify(msg->headers[i].name) == kind)
			return true;
	}
	return false;
}

/* h1_put_request_fields writes the fields of `msg` that go upstream and
 * returns a bit per kind of X-Forwarded-For and Via it held back. */
static unsigned h1_put_request_fields(struct h1_out *o, const struct h1_msg *msg,
                                      const struct h1_fwd_request *fwd)
{
	unsigned seen = 0;

	static const struct h1_str host_name = {"Host", 4};

	/* RFC 9112 §3.2: Host goes first when we add it. */
	if (fwd->host.len > 0 && !h1_has_field(msg, H1_F_HOST))
		h1_put_field(o, host_name, fwd->host);
	for (size_t i = 0; i < msg->num_headers; i++) {
		const struct h1_header *h = &msg->headers[i];
		enum h1_field kind = h1_field_classify(h->name);
		/* X-Forwarded-* and Via are rewritten below, as one field. */
		if (kind == H1_F_X_FORWARDED_FOR || kind == H1_F_VIA) {
			seen |= 1u << kind;
			continue;
		}
		if (kind == H1_F_X_FORWARDED_PROTO || h1_drop_field(msg, h->name, kind))
			continue;
		if (fwd->request_id.len > 0 && h1_str_ieq(h->name, "X-Request-ID"))
			continue; /* ours is sent below */
		if (kind == H1_F_HOST && fwd->host.len > 0)
			h1_put_field(o, h->name, fwd->host);
		else
			h1_put_field(o, h->name, h->value);
	}
	return seen;
}

size_t h1_write_request(char *out, size_t cap, const struct h1_msg *msg,
                        const struct h1_fwd_request *fwd)
{
	struct h1_out o = {out, cap, 0, false};
	const struct h1_str target = fwd->target.len > 0 ? fwd->target : msg->target;

	h1_put_str(&o, msg->method);
	H1_PUT_LIT(&o, " ");
	h1_put_str(&o, target);
	H1_PUT_LIT(&o, " HTTP/1.1\r\n");
	const unsigned seen = h1_put_request_fields(&o, msg, fwd);
	/* We forward the chunked framing as received (RFC 9112 §7.1). */
	if (msg->body == H1_BODY_CHUNKED)
		H1_PUT_LIT(&o, "Transfer-Encoding: chunked\r\n");

	/* X-Forwarded-For: the received chain, then the client we saw. */
	const size_t xff_start = o.len;
	H1_PUT_LIT(&o, "X-Forwarded-For: ");
	const size_t xff_values = o.len;
	if (seen & (1u << H1_F_X_FORWARDED_FOR))
		h1_put_joined(&o, msg, H1_F_X_FORWARDED_FOR);
	if (fwd->client_addr.len > 0)
		h1_put_str(&o, fwd->client_addr);
	else if (!o.full && o.len > xff_values)
		o.len -= 2; /* no address: drop the last ", " */
	if (!o.full && o.len == xff_values)
		o.len = xff_start; /* nothing to say: no field */
	else
		H1_PUT_LIT(&o, "\r\n");
	if (fwd->proto.len > 0) {
		H1_PUT_LIT(&o, "X-Forwarded-Proto: ");
		h1_put_str(&o, fwd->proto);
		H1_PUT_LIT(&o, "\r\n");
	}
	if (fwd->request_id.len > 0) {
		H1_PUT_LIT(&o, "X-Request-ID: ");
		h1_put_str(&o, fwd->request_id);
		H1_PUT_LIT(&o, "\r\n");
	}
	/* RFC 9110 §7.6.3: received-protocol is the client's version. */
	H1_PUT_LIT(&o, "Via: ");
	if (seen & (1u << H1_F_VIA))
		h1_put_joined(&o, msg, H1_F_VIA);
	if (msg->version_minor == 0)
		H1_PUT_LIT(&o, "1.0 ringlb\r\n\r\n");
	else
		H1_PUT_LIT(&o, "1.1 ringlb\r\n\r\n");
	return h1_out_done(&o);
}

size_t h1_write_response(char *out, size_t cap, const struct h1_msg *msg,
                         const struct h1_fwd_response *fwd)
{
	struct h1_out o = {out, cap, 0, false};
	bool via = false;

	RLB_ASSERT(msg->status >= 100 && msg->status <= 999);
	if (fwd->client_http10)
		H1_PUT_LIT(&o, "HTTP/1.0 ");
	else
		H1_PUT_LIT(&o, "HTTP/1.1 ");
	h1_put_u64(&o, (uint64_t)msg->status);
	H1_PUT_LIT(&o, " ");
	h1_put_str(&o, msg->reason);
	H1_PUT_LIT(&o, "\r\n");
	for (size_t i = 0; i < msg->num_headers; i++) {
		const struct h1_header *h = &msg->headers[i];
		enum h1_field kind = h1_field_classify(h->name);
		if (kind == H1_F_VIA) {
			via = true;
			continue;
		}
		if (h1_drop_field(msg, h->name, kind))
			continue;
		h1_put_field(&o, h->name, h->value);
	}
	if (fwd->chunked)
		H1_PUT_LIT(&o, "Transfer-Encoding: chunked\r\n");
	/* RFC 9110 §7.6.3: received-protocol is the server's version. */
	H1_PUT_LIT(&o, "Via: ");
	if (via)
		h1_put_joined(&o, msg, H1_F_VIA);
	if (msg->version_minor == 0)
		H1_PUT_LIT(&o, "1.0 ringlb\r\n");
	else
		H1_PUT_LIT(&o, "1.1 ringlb\r\n");
	/* RFC 9112 §9.3 and §C.2.2: 1.1 persists by default, 1.0 not. */
	if (fwd->extra.len > 0)
		h1_put_str(&o, fwd->extra);
	if (!fwd->keep_alive)
		H1_PUT_LIT(&o, "Connection: close\r\n");
	else if (fwd->client_http10)
		H1_PUT_LIT(&o, "Connection: keep-alive\r\n");
	H1_PUT_LIT(&o, "\r\n");
	return h1_out_done(&o);
}

size_t h1_write_error(char *out, size_t cap, int status, bool keep_alive, bool http10)
{
	return h1_write_error_extra(out, cap, status, keep_alive, http10, NULL);
}

size_t h1_write_error_extra(char *out, size_t cap, int status, bool keep_alive, bool http10,
                            const char *extra)
{
	struct h1_out o = {out, cap, 0, false};
	const char *reason = h1_status_reason(status);
	const size_t reason_len = strlen(reason);
	/* "<html><head><title>", S, "</title></head><body><h1>", S,
	 * "</h1></body></html>\n" with S = "CODE REASON" */
	const size_t body_len = 19 + 25 + 20 + 2 * (4 + reason_len);

	RLB_ASSERT(status >= 100 && status <= 999);
	if (http10)
		H1_PUT_LIT(&o, "HTTP/1.0 ");
	else
		H1_PUT_LIT(&o, "HTTP/1.1 ");
	h1_put_u64(&o, (uint64_t)status);
	H1_PUT_LIT(&o, " ");
	h1_put(&o, reason, reason_len);
	H1_PUT_LIT(&o, "\r\nContent-Type: text/html\r\nContent-Length: ");
	h1_put_u64(&o, body_len);
	if (!keep_alive)
		H1_PUT_LIT(&o, "\r\nConnection: close");
	else if (http10)
		H1_PUT_LIT(&o, "\r\nConnection: keep-alive");
	H1_PUT_LIT(&o, "\r\n");
	if (extra != NULL)
		h1_put(&o, extra, strlen(extra));
	H1_PUT_LIT(&o, "\r\n");

	const size_t body_start = o.len;
	for (int part = 0; part < 2; part++) {
		if (part == 0)
			H1_PUT_LIT(&o, "<html><head><title>");
		else
			H1_PUT_LIT(&o, "</title></head><body><h1>");
		h1_put_u64(&o, (uint64_t)status);
		H1_PUT_LIT(&o, " ");
		h1_put(&o, reason, reason_len);
	}
	H1_PUT_LIT(&o, "</h1></body></html>\n");
	RLB_ASSERT(o.full || o.len - body_start == body_len);
	return h1_out_done(&o);
}

/* Reason phrases of RFC 9110 §15, plus 103 (RFC 8297), 428, 429, 431 and
 * 511 (RFC 6585), and 451 (RFC 7725); indexed by class, then code % 100. */
static const char *const h1_reasons_1xx[] = {
        [0] = "Continue",
        [1] = "Switching Protocols",
        [3] = "Early Hints",
};
static const char *const h1_reasons_2xx[] = {
        [0] = "OK",
        [1] = "Created",
        [2] = "Accepted",
        [3] = "Non-Authoritative Information",
        [4] = "No Content",
        [5] = "Reset Content",
        [6] = "Partial Content",
};
static const char *const h1_reasons_3xx[] = {
        [0] = "Multiple Choices",   [1] = "Moved Permanently",  [2] = "Found",
        [3] = "See Other",          [4] = "Not Modified",       [5] = "Use Proxy",
        [7] = "Temporary Redirect", [8] = "Permanent Redirect",
};
static const char *const h1_reasons_4xx[] = {
        [0] = "Bad Request",
        [1] = "Unauthorized",
        [2] = "Payment Required",
        [3] = "Forbidden",
        [4] = "Not Found",
        [5] = "Method Not Allowed",
        [6] = "Not Acceptable",
        [7] = "Proxy Authentication Required",
        [8] = "Request Timeout",
        [9] = "Conflict",
        [10] = "Gone",
        [11] = "Length Required",
        [12] = "Precondition Failed",
        [13] = "Content Too Large",
        [14] = "URI Too Long",
        [15] = "Unsupported Media Type",
        [16] = "Range Not Satisfiable",
        [17] = "Expectation Failed",
        [21] = "Misdirected Request",
        [22] = "Unprocessable Content",
        [26] = "Upgrade Required",
        [28] = "Precondition Required",
        [29] = "Too Many Requests",
        [31] = "Request Header Fields Too Large",
        [51] = "Unavailable For Legal Reasons",
};
static const char *const h1_reasons_5xx[] = {
        [0] = "Internal Server Error",
        [1] = "Not Implemented",
        [2] = "Bad Gateway",
        [3] = "Service Unavailable",
        [4] = "Gateway Timeout",
        [5] = "HTTP Version Not Supported",
        [11] = "Network Authentication Required",
};

const char *h1_status_reason(int status)
{
	static const struct {
		const char *const *names;
		size_t num;
	} classes[] = {
	        {h1_reasons_1xx, RLB_ARRAY_LEN(h1_reasons_1xx)},
	        {h1_reasons_2xx, RLB_ARRAY_LEN(h1_reasons_2xx)},
	        {h1_reasons_3xx, RLB_ARRAY_LEN(h1_reasons_3xx)},
	        {h1_reasons_4xx, RLB_ARRAY_LEN(h1_reasons_4xx)},
	        {h1_reasons_5xx, RLB_ARRAY_LEN(h1_reasons_5xx)},
	};

	if (status < 100 || status > 599)
		return "Unknown";
	const unsigned cls = (unsigned)status / 100 - 1;
	const unsigned code = (unsigned)status % 100;
	if (code >= classes[cls].num || classes[cls].names[code] == NULL)
		return "Unknown";
	return classes[cls].names[code];
}
