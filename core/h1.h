/* core/h1.h — strict, incremental, zero-copy HTTP/1.1 message parsing
 * (RFC 9110, RFC 9112) and the writers for the heads ringlb forwards.
 *
 * The parser allocates nothing. The caller supplies the header array; every
 * string in a result is a slice into the caller's input buffer, so results are
 * valid only while that buffer is. Any thread may call these functions; they
 * keep state only in the structs the caller passes.
 *
 * Head parsing is incremental: the caller keeps a `struct h1_scan` (zeroed
 * before the first call) and calls again with the same buffer grown by new
 * bytes. The scan resumes where it stopped, so byte-at-a-time input costs
 * O(n) in total. Once the end of the head is found, the head is parsed fully
 * in one pass and the framing of the body is decided.
 *
 * Strictness: anything whose framing could be read two ways is refused
 * (RFC 9112 §11.2, request smuggling). Every refusal has its own result code
 * so callers can count it and tests can name it.
 */
#ifndef RLB_H1_H
#define RLB_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* h1_str is a slice of the caller's buffer; it is not NUL-terminated. */
struct h1_str {
	const char *ptr;
	size_t len;
};

struct h1_header {
	struct h1_str name;  /* a token, as received (case preserved) */
	struct h1_str value; /* leading and trailing SP/HTAB removed */
};

enum h1_result {
	H1_OK = 0,                /* a complete head (or chunked body) was parsed */
	H1_PARTIAL,               /* more input is needed; call again with more bytes */
	H1_E_BARE_CR,             /* CR not followed by LF (RFC 9112 §2.2) */
	H1_E_BARE_LF,             /* LF not preceded by CR (strict reading of §2.2) */
	H1_E_NUL,                 /* NUL byte anywhere in the head (RFC 9110 §5.5) */
	H1_E_METHOD,              /* method is not a token (RFC 9112 §3.1) */
	H1_E_TARGET,              /* empty or invalid request-target (RFC 9112 §3.2) */
	H1_E_VERSION,             /* malformed HTTP-version (RFC 9112 §2.3) */
	H1_E_VERSION_UNSUPPORTED, /* well-formed but not HTTP/1.0 or 1.1: 505 */
	H1_E_REQUEST_LINE,        /* wrong spacing in the request line (§3) */
	H1_E_LINE_TOO_LONG,       /* request line over line_bytes_max: 414 */
	H1_E_HEAD_TOO_LARGE,      /* head over head_bytes_max: 431 */
	H1_E_TOO_MANY_HEADERS,    /* more fields than headers_max: 431 */
	H1_E_OBS_FOLD,            /* line folding (RFC 9112 §5.2) */
	H1_E_SPACE_BEFORE_COLON,  /* whitespace between name and colon (§5.1) */
	H1_E_HEADER_NAME,         /* field name empty or not a token (RFC 9110 §5.1) */
	H1_E_HEADER_VALUE,        /* invalid field-value octet (RFC 9110 §5.5) */
	H1_E_CL_INVALID,          /* Content-Length not 1*DIGIT or overflows (RFC 9110 §8.6) */
	H1_E_CL_DUPLICATE,        /* more than one Content-Length field or a list */
	H1_E_TE_AND_CL,           /* both Transfer-Encoding and Content-Length (RFC 9112 §6.3) */
	H1_E_TE_UNSUPPORTED,      /* a transfer coding other than one final "chunked" (§6.1) */
	H1_E_TE_HTTP10,           /* Transfer-Encoding in an HTTP/1.0 message (§6.1) */
	H1_E_HOST,                /* HTTP/1.1 request without Host, or more than one (§3.2) */
	H1_E_STATUS,              /* malformed status line (RFC 9112 §4) */
	H1_E_CHUNK_SIZE,          /* invalid or overflowing chunk-size (RFC 9112 §7.1) */
	H1_E_CHUNK_EXT,           /* invalid chunk extension, or chunk line too long */
	H1_E_CHUNK_DATA,          /* chunk data not followed by CRLF */
	H1_E_TRAILER,             /* invalid trailer section or trailer too large (§7.1.2) */
	H1_RESULT_COUNT
};

/* h1_result_name returns a short static description of `r` ("bare CR"). */
const char *h1_result_name(enum h1_result r);

/* h1_result_status returns the HTTP status a server answers for request
 * error `r`: 400, 414, 431 or 505; 0 for H1_OK and H1_PARTIAL. */
int h1_result_status(enum h1_result r);

/* How the body that follows a head is delimited (RFC 9112 §6.3). */
enum h1_body {
	H1_BODY_NONE = 0, /* no body: no framing fields, HEAD, 1xx, 204, 304 */
	H1_BODY_LENGTH,   /* exactly content_length bytes (may be 0) */
	H1_BODY_CHUNKED,  /* chunked transfer coding, decoded with h1_chunked */
	H1_BODY_CLOSE,    /* response only: until the server closes */
};

/* Limits the parser enforces; the caller fills them from configuration. */
struct h1_limits {
	size_t line_bytes_max; /* request line (or status line) without CRLF */
	size_t head_bytes_max; /* whole head including the final empty line */
	size_t headers_max;    /* header fields; must be <= the caller's array */
};

/* Connection-option facts gathered while parsing, as bit flags. */
enum {
	H1_CONN_CLOSE = 1u << 0,      /* Connection: close */
	H1_CONN_KEEP_ALIVE = 1u << 1, /* Connection: keep-alive */
	H1_CONN_UPGRADE = 1u << 2,    /* Connection: upgrade */
	H1_CONN_OTHER = 1u << 3,      /* Connection names other fields (to remove) */
};

/* One parsed message head. Zero it before use; fill `headers` and
 * `headers_cap` to point at the caller's array. */
struct h1_msg {
	/* request line (requests only) */
	struct h1_str method;
	struct h1_str target;
	/* status line (responses only) */
	int status;            /* 100..599 */
	struct h1_str reason;  /* may be empty */
	uint8_t version_minor; /* 0 or 1 */

	struct h1_header *headers; /* caller's array */
	size_t headers_cap;
	size_t num_headers;

	size_t head_len; /* bytes of the head, final CRLF CRLF included */

	enum h1_body body;
	uint64_t content_length; /* valid when body == H1_BODY_LENGTH */
	unsigned conn_flags;     /* H1_CONN_* */
	bool keep_alive;         /* persistent after this message (RFC 9112 §9.3) */
	bool expect_continue;    /* request carries Expect: 100-continue */
	bool expect_other;       /* request carries some other expectation */
	struct h1_str host;      /* request's Host value (empty if absent) */
};

/* Resumable scan position; zero it before the first call for a new head. */
struct h1_scan {
	size_t pos;        /* bytes already scanned */
	size_t line_start; /* offset where the current line starts */
	size_t skipped;    /* leading empty lines skipped (requests) */
};

/* h1_parse_request parses a request head from buf[0..len). On H1_OK it
 * fills `out`; out->head_len bytes were the head. On H1_PARTIAL the caller
 * calls again with the same data plus more. Any other result is a refusal;
 * h1_result_status gives the status to answer. Leading CRLFs before the
 * request line are skipped (RFC 9112 §2.2) and counted in head_len. */
enum h1_result h1_parse_request(struct h1_scan *scan, const char *buf, size_t len,
                                const struct h1_limits *lim, struct h1_msg *out);

/* h1_parse_response parses a response head. `head_request` says the request
 * was HEAD, so the response has no body whatever it announces. A response
 * with both Transfer-Encoding and Content-Length is refused (H1_E_TE_AND_CL),
 * as nginx does. 1xx responses have no body; the caller parses the next head
 * after them. */
enum h1_result h1_parse_response(struct h1_scan *scan, const char *buf, size_t len,
                                 const struct h1_limits *lim, bool head_request,
                                 struct h1_msg *out);

/* h1_str_ieq says whether `s` equals the NUL-terminated `lit`, ignoring
 * ASCII case. */
bool h1_str_ieq(struct h1_str s, const char *lit);

/* h1_connection_lists says whether a Connection field of `msg` names the
 * field `name` (so that field is hop-by-hop and must be removed). */
bool h1_connection_lists(const struct h1_msg *msg, struct h1_str name);

/* --- chunked bodies (RFC 9112 §7.1) --- */

/* Decoder state for one chunked body; zero it before the body starts. */
struct h1_chunked {
	uint8_t state;      /* private */
	uint64_t remaining; /* private: data bytes left in the current chunk */
	size_t line_len;    /* private: bytes of the current size/trailer line */
	size_t trailer_len; /* private: bytes of the trailer section so far */
};

/* Limits for chunked decoding. */
struct h1_chunked_limits {
	size_t line_bytes_max;    /* chunk-size line including extensions */
	size_t trailer_bytes_max; /* whole trailer section */
};

/* h1_chunked_feed advances the decoder over buf[0..len) without changing it.
 * It sets *out_consumed to the bytes that belong to the body. Returns H1_OK
 * when the body (last chunk and trailer section) ended within the input —
 * bytes after *out_consumed belong to the next message — H1_PARTIAL when all
 * input was consumed and more is needed, or an H1_E_CHUNK_* / H1_E_TRAILER
 * error. The caller forwards the consumed bytes verbatim. */
enum h1_result h1_chunked_feed(struct h1_chunked *c, const struct h1_chunked_limits *lim,
                               const char *buf, size_t len, size_t *out_consumed);

/* h1_chunked_decode is h1_chunked_feed that also removes the framing: the
 * chunk data among the consumed bytes is moved to the front of buf and
 * *out_data_len says how many data bytes are there. Used to turn a chunked
 * response into a close-delimited one for an HTTP/1.0 client. Trailers are
 * dropped. */
enum h1_result h1_chunked_decode(struct h1_chunked *c, const struct h1_chunked_limits *lim,
                                 char *buf, size_t len, size_t *out_consumed, size_t *out_data_len);

/* --- writers for forwarded heads --- */

/* What the proxy adds to a request it forwards. */
struct h1_fwd_request {
	struct h1_str client_addr; /* textual client IP for X-Forwarded-For */
	struct h1_str proto;       /* "http" or "https" for X-Forwarded-Proto */
	struct h1_str target;      /* origin-form target to send (may differ
	                              from msg->target for absolute-form) */
	struct h1_str host;        /* Host value to send (empty: keep msg's) */
	struct h1_str request_id;  /* X-Request-ID to send instead of any received; empty: none */
};

/* h1_write_request writes the head ringlb sends upstream for request `msg`
 * into out[0..cap): "METHOD target HTTP/1.1", every field except the
 * hop-by-hop ones (Connection and the fields it lists, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade) and except
 * X-Forwarded-Proto (and X-Request-ID when fwd->request_id is set).
 * Content-Length and Host are never removed because Connection names
 * them: that would let a client strip the framing; then
 * "Transfer-Encoding: chunked" when the body is chunked, X-Forwarded-For
 * (the received values followed by the client address, in one field),
 * X-Forwarded-Proto, X-Request-ID (fwd->request_id), and Via ("1.0 ringlb" or
 * "1.1 ringlb", appended to received Via values). Returns the bytes written,
 * or 0 if they do not fit in `cap`. */
size_t h1_write_request(char *out, size_t cap, const struct h1_msg *msg,
                        const struct h1_fwd_request *fwd);

/* What the proxy decides about a response it forwards to the client. */
struct h1_fwd_response {
	bool client_http10;  /* client spoke HTTP/1.0: answer in HTTP/1.0 */
	bool keep_alive;     /* the client connection stays open after */
	bool chunked;        /* body is forwarded chunked (add TE: chunked) */
	struct h1_str extra; /* complete field lines ("Name: value\r\n"...) to add; may be empty */
};

/* h1_write_response writes the head ringlb sends to the client for response
 * `msg`: status line with the received code and reason in the client's
 * version, every field except hop-by-hop ones, then "Transfer-Encoding:
 * chunked" when fwd->chunked, a Via field, and "Connection: close" (or, for
 * an HTTP/1.0 client kept alive, "Connection: keep-alive"). Returns the bytes
 * written, or 0 if they do not fit in `cap`. */
size_t h1_write_response(char *out, size_t cap, const struct h1_msg *msg,
                         const struct h1_fwd_response *fwd);

/* h1_write_error writes a complete response generated by ringlb itself for
 * `status` (400, 403, 404, 405, 408, 413, 414, 417, 431, 500, 501, 502, 503,
 * 504, 505): status line, Content-Type text/html, Content-Length, Connection
 * (close or keep-alive), and a small HTML body naming only the status.
 * Nothing about backends is revealed. Returns bytes written, 0 if `cap` is
 * too small (512 bytes always suffice). */
size_t h1_write_error(char *out, size_t cap, int status, bool keep_alive, bool http10);

/* h1_write_error_extra is h1_write_error with `extra` ("Name: value\r\n"
 * lines, or NULL) added to the head. */
size_t h1_write_error_extra(char *out, size_t cap, int status, bool keep_alive, bool http10,
                            const char *extra);

/* h1_hop_by_hop says whether header `name` of `msg` stays behind at this
 * hop: the hop-by-hop fields (Connection, Keep-Alive, Proxy-Connection, TE,
 * Trailer, Transfer-Encoding, Upgrade) and the fields Connection lists,
 * except Content-Length and Host. */
bool h1_hop_by_hop(const struct h1_msg *msg, struct h1_str name);

/* h1_status_reason returns the standard reason phrase for `status`, or
 * "Unknown". */
const char *h1_status_reason(int status);

#endif
