/* cache/rules.h — the HTTP caching rules of RFC 9111 (as a shared cache),
 * RFC 5861 (stale-while-revalidate, stale-if-error) and the conditional
 * requests of RFC 9110 §13, as pure functions.
 *
 * Nothing here allocates, does I/O, reads a clock or keeps state: times come
 * in as seconds since the epoch (int64_t) and every result is written into
 * the caller's structs or buffers. Any thread may call any function. Header
 * fields are `struct h1_header` slices as core/h1.h produces them (values
 * already stripped of leading and trailing whitespace); nothing here keeps a
 * pointer into them after it returns.
 *
 * The cache's life cycle, in the order a caller uses these:
 *   - a request arrives: cache_req_from_headers, cache_key_build;
 *   - a response arrives: cache_resp_from_headers (then set rs.date to the
 *     response time if it is -1), cache_unstorable, cache_vary_sig and
 *     cache_times_init for what is stored;
 *   - a later request hits the entry: cache_decide, then cache_not_modified
 *     to answer 304, or cache_stale_if_error_ok when revalidation failed.
 *
 * Where the RFCs leave a choice, the stricter reading is taken (the choice
 * is written beside the code that makes it).
 */
#ifndef RLB_CACHE_RULES_H
#define RLB_CACHE_RULES_H

#include "core/h1.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- Cache-Control (RFC 9111 §5.2) --- */

#define CC_UNSET (-1)

/* 2^31: what a delta-seconds too large to represent becomes (RFC 9111 §1.2.2). */
#define CC_DELTA_MAX 2147483648ll

enum cc_flag {
	CC_NO_STORE = 1u << 0,         /* no-store */
	CC_NO_CACHE = 1u << 1,         /* no-cache, with or without a field-name list */
	CC_PRIVATE = 1u << 2,          /* private, with or without a field-name list */
	CC_PUBLIC = 1u << 3,           /* public */
	CC_MUST_REVALIDATE = 1u << 4,  /* must-revalidate */
	CC_PROXY_REVALIDATE = 1u << 5, /* proxy-revalidate (also implied by s-maxage) */
	CC_NO_TRANSFORM = 1u << 6,     /* no-transform */
	CC_ONLY_IF_CACHED = 1u << 7,   /* only-if-cached (request) */
	CC_IMMUTABLE = 1u << 8,        /* immutable (RFC 8246) */
};

/* The directives of one message's Cache-Control fields. */
struct cc {
	uint32_t flags; /* CC_* */
	/* Seconds, CC_UNSET when absent, at most CC_DELTA_MAX; max-stale
	 * without a value is INT64_MAX. */
	int64_t max_age, s_maxage, stale_while_revalidate, stale_if_error, max_stale, min_fresh;
};

/* cc_init sets every directive of `d` to absent. */
void cc_init(struct cc *d);

/* cc_parse folds the directives of one Cache-Control field value v[0..len)
 * into `d`; call it once per field line. It never fails: unknown directives
 * and garbage are skipped. A repeated directive keeps its most restrictive
 * value (the smallest; for min-fresh the largest). */
void cc_parse(struct cc *d, const char *v, size_t len);

/* --- HTTP-date (RFC 9110 §5.6.7) --- */

/* http_date_parse parses s[0..len) in IMF-fixdate, RFC 850 or asctime form
 * and returns seconds since the epoch (0 for dates before 1970), or -1 if it
 * is none of them. */
int64_t http_date_parse(const char *s, size_t len);

/* http_date_format writes `t` as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
 * GMT"), NUL-terminated, into `out`, clamping t to years 1970..9999, and
 * returns its length, 29. */
size_t http_date_format(int64_t t, char out[32]);

/* --- what messages say --- */

/* What a request says about caching. */
struct cache_req_info {
	struct cc cc;
	bool authorization;   /* it carries Authorization */
	bool pragma_no_cache; /* Pragma: no-cache and no Cache-Control field (RFC 9111 §5.4) */
};

/* What a response says about caching. */
struct cache_resp_info {
	int status;
	struct cc cc;
	/* -1 when absent or invalid; an invalid Expires is 0 (already expired,
	 * RFC 9111 §5.3); age is the Age field's value. */
	int64_t date, expires, last_modified, age;
	bool has_expires, has_set_cookie, vary_star;
};

/* Cache configuration the rules depend on. */
struct cache_rules_cfg {
	bool heuristic;             /* heuristic freshness allowed (off by default in ringlb) */
	uint32_t heuristic_percent; /* of (Date - Last-Modified), e.g. 10 */
	int64_t heuristic_max;      /* cap in seconds, e.g. 86400 */
	bool store_set_cookie;      /* store responses carrying Set-Cookie (default false) */
};

/* cache_resp_from_headers fills *rs from a response's status and its header
 * fields h[0..n): Cache-Control (all lines folded), Expires, Date,
 * Last-Modified, Age, Set-Cookie, Vary containing "*". A missing Date leaves
 * rs->date at -1; the caller then sets it to the time the response was
 * received (RFC 9110 §6.6.1 lets a recipient add one), which the Expires and
 * heuristic arithmetic needs. */
void cache_resp_from_headers(struct cache_resp_info *rs, int status, const struct h1_header *h,
                             size_t n);

/* cache_req_from_headers fills *rq from a request's header fields h[0..n). */
void cache_req_from_headers(struct cache_req_info *rq, const struct h1_header *h, size_t n);

/* --- storing (RFC 9111 §3) and freshness (§4.2) --- */

/* cache_unstorable says why a response to a GET or HEAD request (the caller
 * checks the method) may not be stored by a shared cache (RFC 9111 §3,
 * §3.5): a static string naming the rule, or NULL when it may be stored. */
const char *cache_unstorable(const struct cache_req_info *rq, const struct cache_resp_info *rs,
                             const struct cache_rules_cfg *cfg);

/* cache_heuristic_status says whether `status` is heuristically cacheable
 * (RFC 9110 §15.1). */
bool cache_heuristic_status(int status);

/* cache_freshness_lifetime returns the freshness lifetime of RFC 9111
 * §4.2.1 for a shared cache: s-maxage, else max-age, else Expires - Date,
 * else (cfg->heuristic, a heuristically cacheable status or public, and a
 * Last-Modified) cfg->heuristic_percent of Date - Last-Modified capped at
 * cfg->heuristic_max (§4.2.2); 0 when there is none. */
int64_t cache_freshness_lifetime(const struct cache_resp_info *rs,
                                 const struct cache_rules_cfg *cfg);

/* cache_initial_age returns the corrected_initial_age of RFC 9111 §4.2.3 for
 * a response whose request was sent at request_time and which was received
 * at response_time. */
int64_t cache_initial_age(const struct cache_resp_info *rs, int64_t request_time,
                          int64_t response_time);

/* What a stored entry keeps to decide later. */
struct cache_times {
	int64_t initial_age, response_time,
	        lifetime; /* current_age = initial_age + (now - response_time) */
	int64_t swr,
	        sie; /* the response's stale-while-revalidate / stale-if-error, CC_UNSET if none */
	/* The response's CC_* flags, with CC_PROXY_REVALIDATE added when it had
	 * s-maxage, which implies it (RFC 9111 §5.2.2.10). */
	uint32_t flags;
};

/* cache_times_init fills *t for response `rs` (whose date the caller has
 * set), sent at request_time and received at response_time. */
void cache_times_init(struct cache_times *t, const struct cache_resp_info *rs,
                      const struct cache_rules_cfg *cfg, int64_t request_time,
                      int64_t response_time);

/* cache_current_age returns the entry's current_age at `now` (RFC 9111 §4.2.3). */
int64_t cache_current_age(const struct cache_times *t, int64_t now);

/* How a stored entry may be used for a request. */
enum cache_use {
	CACHE_FRESH = 0,  /* serve it (fresh, or stale as the request's max-stale allows) */
	CACHE_STALE_SWR,  /* stale, within stale-while-revalidate: serve it and refresh in the
	                     background */
	CACHE_REVALIDATE, /* must be revalidated before use (stale, no-cache, or the request's
	                     max-age/min-fresh); with only-if-cached the caller answers 504 */
};

/* cache_decide says how the entry `t` may answer request `rq` at `now`
 * (RFC 9111 §4, §4.2.4, §5.2.1; RFC 5861 §3) and writes its current age to
 * *age. */
enum cache_use cache_decide(const struct cache_req_info *rq, const struct cache_times *t,
                            int64_t now, int64_t *age);

/* cache_stale_if_error_ok says whether entry `t` may be served at `now`
 * because the origin failed (an error, or a 5xx) while revalidating it
 * (RFC 5861 §4): the request's stale-if-error, or failing that the
 * response's, covers its staleness, and neither must-revalidate,
 * proxy-revalidate nor s-maxage forbids it. */
bool cache_stale_if_error_ok(const struct cache_req_info *rq, const struct cache_times *t,
                             int64_t now);

/* --- conditional requests (RFC 9110 §13) --- */

/* cache_not_modified says whether a GET or HEAD served from cache is
 * answered 304 (RFC 9110 §13.1.1, §13.1.3, §13.2.2): If-None-Match
 * inm[0..inm_len) (all its lines joined by ",") by weak comparison against
 * the entry's ETag etag[0..etag_len), "*" matching any entry; otherwise
 * If-Modified-Since ims[0..ims_len) against the entry's Last-Modified, or
 * its Date without one. Absent fields are NULL/0; absent times -1. */
bool cache_not_modified(const char *inm, size_t inm_len, const char *ims, size_t ims_len,
                        const char *etag, size_t etag_len, int64_t last_modified, int64_t date);

/* --- keys and variants (RFC 9111 §2, §4.1) --- */

/* cache_key_build writes the primary cache key into out[0..cap): method,
 * NUL, lower-cased host, NUL, target (path and query as received), then for
 * each of the configured key headers extra[0..n_extra): NUL, the name
 * lower-cased, '=', that request header's value from h[0..n) (all its lines
 * joined by ","; empty if absent). Returns its length (it is not
 * NUL-terminated), or 0 if it does not fit in `cap`. */
size_t cache_key_build(char *out, size_t cap, struct h1_str method, struct h1_str host,
                       struct h1_str target, const struct h1_str *extra, size_t n_extra,
                       const struct h1_header *h, size_t n);

/* cache_vary_sig writes into out[0..cap) the variant signature of a request
 * (fields h[0..n)) for a response's Vary fields (the lines of vh[0..nvh)
 * named Vary; others are skipped): for each field name listed, in order,
 * the name lower-cased, '\n', the request's value, '\n'. The value is the
 * request's lines of that name joined by ",", with whitespace around each
 * list element removed and empty elements dropped; for Accept-Encoding,
 * `ae_norm` when it is not NULL (the proxy's normalised value). Returns the
 * length (0 when Vary lists nothing), or SIZE_MAX for "Vary: *" or when it
 * does not fit. */
size_t cache_vary_sig(char *out, size_t cap, const struct h1_header *vh, size_t nvh,
                      const struct h1_header *h, size_t n, const char *ae_norm);

#endif
