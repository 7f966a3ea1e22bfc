/* cache/rules.c — RFC 9111 shared-cache rules, RFC 5861 stale extensions and
 * RFC 9110 conditionals as pure functions (see rules.h for the contract).
 *
 * Parsing is forgiving where the RFCs ask recipients to be robust (unknown
 * Cache-Control directives, spacing, quoted arguments) and strict where a
 * lenient reading could serve something the origin did not allow: an
 * invalid max-age or s-maxage makes the response stale, an invalid
 * stale-while-revalidate or stale-if-error is ignored, and a repeated
 * directive keeps its most restrictive value (RFC 9111 §4.2.1: "the most
 * restrictive directive should be honored").
 *
 * All arithmetic on times saturates instead of overflowing: a hostile
 * Age or max-age can make an entry look very old or very fresh, never wrap.
 */
#include "cache/rules.h"

#include "core/common.h"

#include <string.h>

/* --- small helpers --- */

static inline char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static inline bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* slice_ieq says whether a[0..an) and b[0..bn) are equal ignoring ASCII case. */
static bool slice_ieq(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++) {
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	}
	return true;
}

/* str_ieq says whether `s` equals the lower-case literal `lit`, ignoring case. */
static bool str_ieq(struct h1_str s, const char *lit)
{
	return slice_ieq(s.ptr, s.len, lit, strlen(lit));
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* trim removes OWS from both ends of `s`. */
static struct h1_str trim(struct h1_str s)
{
	while (s.len > 0 && is_ows(s.ptr[0])) {
		s.ptr++;
		s.len--;
	}
	while (s.len > 0 && is_ows(s.ptr[s.len - 1]))
		s.len--;
	return s;
}

/* list_next takes the next element of the comma-separated list in *rest
 * (RFC 9110 §5.6.1) into *e, trimmed of OWS, and returns false at the end.
 * Empty elements come back empty. A comma inside a quoted string (a
 * Cache-Control argument, an entity-tag) does not split; an unterminated
 * quote runs to the end. */
static bool list_next(struct h1_str *rest, struct h1_str *e)
{
	size_t i = 0;
	bool quoted = false;

	if (rest->ptr == NULL || rest->len == 0)
		return false;
	for (; i < rest->len; i++) {
		char c = rest->ptr[i];

		if (quoted && c == '\\' && i + 1 < rest->len)
			i++;
		else if (c == '"')
			quoted = !quoted;
		else if (c == ',' && !quoted)
			break;
	}
	*e = trim((struct h1_str){rest->ptr, i});
	if (i < rest->len)
		i++; /* the comma */
	rest->ptr += i;
	rest->len -= i;
	return true;
}

/* parse_delta parses delta-seconds (RFC 9111 §1.2.2: 1*DIGIT) from
 * p[0..n) into *out. A value too large becomes 2^31, as §1.2.2 requires.
 * Signs, spaces and anything but digits make it invalid (false). */
static bool parse_delta(const char *p, size_t n, int64_t *out)
{
	int64_t v = 0;

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return false;
		if (v < CC_DELTA_MAX)
			v = v * 10 + (p[i] - '0');
	}
	*out = min64(v, CC_DELTA_MAX);
	return true;
}

/* --- Cache-Control --- */

void cc_init(struct cc *d)
{
	RLB_ASSERT(d != NULL);
	d->flags = 0;
	d->max_age = CC_UNSET;
	d->s_maxage = CC_UNSET;
	d->stale_while_revalidate = CC_UNSET;
	d->stale_if_error = CC_UNSET;
	d->max_stale = CC_UNSET;
	d->min_fresh = CC_UNSET;
}

/* Directives that are flags. An argument is ignored: `no-cache="Set-Cookie"`
 * and `private="Set-Cookie"` are qualified forms (RFC 9111 §5.2.2.4,
 * §5.2.2.7) that a cache may treat as the unqualified ones; ringlb does, so
 * it never serves an entry with some fields stripped — stricter, never
 * wrong. */
static const struct {
	const char *name;
	uint32_t flag;
} cc_flags[] = {
        {"no-store", CC_NO_STORE},
        {"no-cache", CC_NO_CACHE},
        {"private", CC_PRIVATE},
        {"public", CC_PUBLIC},
        {"must-revalidate", CC_MUST_REVALIDATE},
        {"proxy-revalidate", CC_PROXY_REVALIDATE},
        {"no-transform", CC_NO_TRANSFORM},
        {"only-if-cached", CC_ONLY_IF_CACHED},
        {"immutable", CC_IMMUTABLE},
};

/* How a delta-seconds directive takes its value and folds repeats. */
enum cc_delta_mode {
	CC_D_STALE,  /* smallest wins; missing or invalid is 0 (RFC 9111 §4.2.1: treat as stale) */
	CC_D_MIN,    /* smallest wins; invalid is ignored (it would only relax) */
	CC_D_MAX,    /* largest wins (min-fresh: the larger is stricter); invalid ignored */
	CC_D_STALEX, /* max-stale: smallest wins; without a value, any staleness (§5.2.1.2) */
};

static const struct {
	const char *name;
	size_t off;
	enum cc_delta_mode mode;
} cc_deltas[] = {
        {"max-age", offsetof(struct cc, max_age), CC_D_STALE},
        {"s-maxage", offsetof(struct cc, s_maxage), CC_D_STALE},
        {"stale-while-revalidate", offsetof(struct cc, stale_while_revalidate), CC_D_MIN},
        {"stale-if-error", offsetof(struct cc, stale_if_error), CC_D_MIN},
        {"max-stale", offsetof(struct cc, max_stale), CC_D_STALEX},
        {"min-fresh", offsetof(struct cc, min_fresh), CC_D_MAX},
};

/* One directive's argument: `present` when there was "=", `clean` when the
 * element had nothing after the name or argument but whitespace. */
struct cc_arg {
	struct h1_str v;
	bool present, clean;
};

static void fold_min(int64_t *slot, int64_t v)
{
	if (*slot == CC_UNSET || v < *slot)
		*slot = v;
}

static void cc_apply_delta(int64_t *slot, enum cc_delta_mode mode, const struct cc_arg *a)
{
	int64_t v = 0;
	bool ok = a->present && a->clean && parse_delta(a->v.ptr, a->v.len, &v);

	switch (mode) {
	case CC_D_STALE:
		fold_min(slot, ok ? v : 0);
		break;
	case CC_D_MIN:
		if (ok)
			fold_min(slot, v);
		break;
	case CC_D_MAX:
		if (ok && (*slot == CC_UNSET || v > *slot))
			*slot = v;
		break;
	case CC_D_STALEX:
		if (ok)
			fold_min(slot, v);
		else if (!a->present && a->clean)
			fold_min(slot, INT64_MAX);
		break;
	}
}

static void cc_apply(struct cc *d, struct h1_str name, const struct cc_arg *a)
{
	/* RFC 9111 §5.2: directive names compare case-insensitively. */
	for (size_t i = 0; i < RLB_ARRAY_LEN(cc_flags); i++) {
		if (str_ieq(name, cc_flags[i].name)) {
			d->flags |= cc_flags[i].flag;
			return;
		}
	}
	for (size_t i = 0; i < RLB_ARRAY_LEN(cc_deltas); i++) {
		if (str_ieq(name, cc_deltas[i].name)) {
			cc_apply_delta((int64_t *)(void *)((char *)d + cc_deltas[i].off),
			               cc_deltas[i].mode, a);
			return;
		}
	}
	/* §5.2.3: unknown directives are ignored. */
}

/* cc_split splits one list element into a directive name and argument:
 * token [ "=" ( token / quoted-string ) ] (RFC 9111 §5.2), whitespace
 * around "=" tolerated. A quoted argument is returned without its quotes
 * (escapes left in: no delta-seconds contains one). */
static struct h1_str cc_split(struct h1_str e, struct cc_arg *a)
{
	size_t i = 0;
	struct h1_str rest;

	while (i < e.len && e.ptr[i] != '=' && !is_ows(e.ptr[i]) && e.ptr[i] != '"')
		i++;
	rest = trim((struct h1_str){e.ptr + i, e.len - i});
	*a = (struct cc_arg){.v = {NULL, 0}, .present = false, .clean = rest.len == 0};
	if (rest.len == 0 || rest.ptr[0] != '=')
		return (struct h1_str){e.ptr, i};
	rest = trim((struct h1_str){rest.ptr + 1, rest.len - 1});
	a->present = true;
	if (rest.len > 0 && rest.ptr[0] == '"') {
		size_t j = 1;

		while (j < rest.len && rest.ptr[j] != '"')
			j += (rest.ptr[j] == '\\' && j + 1 < rest.len) ? 2 : 1;
		a->v = (struct h1_str){rest.ptr + 1, j < rest.len ? j - 1 : rest.len - 1};
		a->clean = j + 1 == rest.len; /* closed, and nothing after */
	} else {
		size_t j = 0;

		while (j < rest.len && !is_ows(rest.ptr[j]) && rest.ptr[j] != '"')
			j++;
		a->v = (struct h1_str){rest.ptr, j};
		a->clean = j == rest.len;
	}
	return (struct h1_str){e.ptr, i};
}

void cc_parse(struct cc *d, const char *v, size_t len)
{
	struct h1_str rest = {v, len}, e;

	RLB_ASSERT(d != NULL);
	RLB_ASSERT(v != NULL || len == 0);
	while (list_next(&rest, &e)) {
		struct cc_arg a;
		struct h1_str name = cc_split(e, &a);

		if (name.len > 0)
			cc_apply(d, name, &a);
	}
}

/* --- HTTP-date --- */

static const char day_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const day_names_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                              "Thursday", "Friday", "Saturday"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* num parses exactly n digits at s, or returns -1. */
static int num(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Day and month names are case-sensitive (RFC 9110 §5.6.7: %s"..."). The
 * day name is checked to be one, not to agree with the date. */
static bool is_day_name(const char *s)
{
	for (int i = 0; i < 7; i++) {
		if (memcmp(s, day_names[i], 3) == 0)
			return true;
	}
	return false;
}

static int month_of(const char *s)
{
	for (int i = 0; i < 12; i++) {
		if (memcmp(s, month_names[i], 3) == 0)
			return i + 1;
	}
	return -1;
}

/* days_from_civil counts days from 1970-01-01 to y-m-d in the proleptic
 * Gregorian calendar (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* to_epoch checks the fields and converts them: -1 when out of range, 0
 * for a time before 1970 (so -1 stays the one "invalid"). Second 60 is a
 * leap second (RFC 5322 §3.3) and counts as the next minute's 0. */
static int64_t to_epoch(int y, int m, int d, const char *hms)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int hh, mm, ss;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	if (hms[2] != ':' || hms[5] != ':')
		return -1;
	hh = num(hms, 2);
	mm = num(hms + 3, 2);
	ss = num(hms + 6, 2);
	if (y < 0 || m < 1 || d < 1 || d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
		return -1;
	if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
		return -1;
	int64_t t = days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
	return t < 0 ? 0 : t;
}

/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes). */
static int64_t parse_imf(const char *s)
{
	if (!is_day_name(s) || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
	    s[16] != ' ' || s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0)
		return -1;
	return to_epoch(num(s + 12, 4), month_of(s + 8), num(s + 5, 2), s + 17);
}

/* asctime: "Sun Nov  6 08:49:37 1994" (24 bytes; the day is SP DIGIT or
 * 2DIGIT). */
static int64_t parse_asctime(const char *s)
{
	int d = s[8] == ' ' ? num(s + 9, 1) : num(s + 8, 2);

	if (!is_day_name(s) || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
		return -1;
	return to_epoch(num(s + 20, 4), month_of(s + 4), d, s + 11);
}

/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT". The two-digit year would
 * need the current time to place (RFC 9110 §5.6.7: more than 50 years
 * ahead means the past century); this module reads no clock, so it uses
 * the fixed POSIX window instead: 70-99 are 19xx, 00-69 are 20xx. */
static int64_t parse_rfc850(const char *s, size_t len)
{
	for (int i = 0; i < 7; i++) {
		size_t n = strlen(day_names_long[i]);

		if (len != n + 24 || memcmp(s, day_names_long[i], n) != 0 || s[n] != ',' ||
		    s[n + 1] != ' ')
			continue;
		const char *r = s + n + 2;
		if (r[2] != '-' || r[6] != '-' || r[9] != ' ' || r[18] != ' ' ||
		    memcmp(r + 19, "GMT", 3) != 0)
			return -1;
		int yy = num(r + 7, 2);
		if (yy < 0)
			return -1;
		return to_epoch(yy < 70 ? 2000 + yy : 1900 + yy, month_of(r + 3), num(r, 2),
		                r + 10);
	}
	return -1;
}

int64_t http_date_parse(const char *s, size_t len)
{
	if (s == NULL)
		return -1;
	if (len == 29)
		return parse_imf(s);
	if (len == 24)
		return parse_asctime(s);
	return parse_rfc850(s, len);
}

/* put_digits writes v as exactly n decimal digits at p. */
static void put_digits(char *p, int64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

size_t http_date_format(int64_t t, char out[32])
{
	int64_t y, days, secs;
	int m, d;

	/* Four-digit years only: 1970-01-01 .. 9999-12-31T23:59:59. */
	t = min64(max64(t, 0), 253402300799ll);
	days = t / 86400;
	secs = t % 86400;
	civil_from_days(days, &y, &m, &d);
	memcpy(out, day_names[(days + 4) % 7], 3); /* 1970-01-01 was a Thursday */
	memcpy(out + 3, ", ", 2);
	put_digits(out + 5, d, 2);
	out[7] = ' ';
	memcpy(out + 8, month_names[m - 1], 3);
	out[11] = ' ';
	put_digits(out + 12, y, 4);
	out[16] = ' ';
	put_digits(out + 17, secs / 3600, 2);
	out[19] = ':';
	put_digits(out + 20, secs / 60 % 60, 2);
	out[22] = ':';
	put_digits(out + 23, secs % 60, 2);
	memcpy(out + 25, " GMT", 5); /* with the NUL */
	return 29;
}

/* --- what messages say --- */

/* resp_field folds one response field into *rs. */
static void resp_field(struct cache_resp_info *rs, struct h1_str name, struct h1_str v)
{
	int64_t t;

	if (str_ieq(name, "cache-control")) {
		cc_parse(&rs->cc, v.ptr, v.len);
	} else if (str_ieq(name, "expires")) {
		/* RFC 9111 §5.3: an invalid Expires (e.g. "0") means already
		 * expired. Of several, the earliest counts (§4.2.1). */
		t = max64(http_date_parse(v.ptr, v.len), 0);
		rs->expires = rs->has_expires ? min64(rs->expires, t) : t;
		rs->has_expires = true;
	} else if (str_ieq(name, "date")) {
		if (rs->date < 0)
			rs->date = http_date_parse(v.ptr, v.len);
	} else if (str_ieq(name, "last-modified")) {
		if (rs->last_modified < 0)
			rs->last_modified = http_date_parse(v.ptr, v.len);
	} else if (str_ieq(name, "age")) {
		/* §5.1: an invalid Age is ignored; of several, the largest
		 * (the entry looks older, never fresher). */
		if (parse_delta(v.ptr, v.len, &t))
			rs->age = max64(rs->age, t);
	} else if (str_ieq(name, "set-cookie")) {
		rs->has_set_cookie = true;
	} else if (str_ieq(name, "vary")) {
		struct h1_str rest = v, e;

		while (list_next(&rest, &e)) {
			if (e.len == 1 && e.ptr[0] == '*')
				rs->vary_star = true;
		}
	}
}

void cache_resp_from_headers(struct cache_resp_info *rs, int status, const struct h1_header *h,
                             size_t n)
{
	RLB_ASSERT(rs != NULL);
	RLB_ASSERT(h != NULL || n == 0);
	rs->status = status;
	cc_init(&rs->cc);
	rs->date = -1;
	rs->expires = -1;
	rs->last_modified = -1;
	rs->age = -1;
	rs->has_expires = false;
	rs->has_set_cookie = false;
	rs->vary_star = false;
	for (size_t i = 0; i < n; i++)
		resp_field(rs, h[i].name, h[i].value);
}

void cache_req_from_headers(struct cache_req_info *rq, const struct h1_header *h, size_t n)
{
	bool has_cc = false, pragma = false;

	RLB_ASSERT(rq != NULL);
	RLB_ASSERT(h != NULL || n == 0);
	cc_init(&rq->cc);
	rq->authorization = false;
	for (size_t i = 0; i < n; i++) {
		struct h1_str rest = h[i].value, e;

		if (str_ieq(h[i].name, "cache-control")) {
			has_cc = true;
			cc_parse(&rq->cc, h[i].value.ptr, h[i].value.len);
		} else if (str_ieq(h[i].name, "authorization")) {
			rq->authorization = true;
		} else if (str_ieq(h[i].name, "pragma")) {
			while (list_next(&rest, &e))
				pragma |= str_ieq(e, "no-cache");
		}
	}
	/* RFC 9111 §5.4: Pragma counts only without Cache-Control. */
	rq->pragma_no_cache = pragma && !has_cc;
}

/* --- storing and freshness --- */

bool cache_heuristic_status(int status)
{
	/* RFC 9110 §15.1. */
	switch (status) {
	case 200:
	case 203:
	case 204:
	case 206:
	case 300:
	case 301:
	case 308:
	case 404:
	case 405:
	case 410:
	case 414:
	case 501:
		return true;
	default:
		return false;
	}
}

/* heuristic_ok says whether heuristic freshness may apply to rs: allowed
 * by configuration and, for lack of explicit freshness, a heuristically
 * cacheable status or public (RFC 9111 §4.2.2). */
static bool heuristic_ok(const struct cache_resp_info *rs, const struct cache_rules_cfg *cfg)
{
	return cfg != NULL && cfg->heuristic &&
	       (cache_heuristic_status(rs->status) || (rs->cc.flags & CC_PUBLIC));
}

const char *cache_unstorable(const struct cache_req_info *rq, const struct cache_resp_info *rs,
                             const struct cache_rules_cfg *cfg)
{
	bool explicit_fresh;

	RLB_ASSERT(rq != NULL);
	RLB_ASSERT(rs != NULL);
	/* §3: the status must be final; 206 and 304 need a cache that
	 * understands them (range assembly, freshening), which this one does
	 * not. must-understand is not parsed, so no-store beside it holds. */
	if (rs->status < 200)
		return "interim status";
	if (rs->status == 206 || rs->status == 304 || rs->status > 599)
		return "status not understood";
	if (rq->cc.flags & CC_NO_STORE) /* §5.2.1.5 */
		return "request no-store";
	if (rs->cc.flags & CC_NO_STORE) /* §5.2.2.5 */
		return "no-store";
	if (rs->cc.flags & CC_PRIVATE) /* §5.2.2.7: a shared cache */
		return "private";
	/* §3.5: a shared cache stores an answer to an authorized request only
	 * when the response says so. */
	if (rq->authorization && !(rs->cc.flags & (CC_MUST_REVALIDATE | CC_PUBLIC)) &&
	    rs->cc.s_maxage == CC_UNSET)
		return "authorization";
	if (rs->has_set_cookie && !(cfg != NULL && cfg->store_set_cookie))
		return "set-cookie";
	if (rs->vary_star) /* §4.1: "*" never matches */
		return "vary *";
	/* §3: explicit freshness, a heuristically cacheable status or public
	 * (both useful only with heuristics on). A no-cache response is stored
	 * with whatever lifetime it has: it is revalidated before every use
	 * (§5.2.2.4), so a 304 can still save the body transfer. */
	explicit_fresh =
	        rs->has_expires || rs->cc.max_age != CC_UNSET || rs->cc.s_maxage != CC_UNSET;
	if (!explicit_fresh && !(rs->cc.flags & CC_NO_CACHE) && !heuristic_ok(rs, cfg))
		return "no freshness";
	return NULL;
}

int64_t cache_freshness_lifetime(const struct cache_resp_info *rs,
                                 const struct cache_rules_cfg *cfg)
{
	int64_t d, life;

	RLB_ASSERT(rs != NULL);
	/* §4.2.1: the first that applies, in this order, for a shared cache. */
	if (rs->cc.s_maxage != CC_UNSET)
		return rs->cc.s_maxage;
	if (rs->cc.max_age != CC_UNSET)
		return rs->cc.max_age;
	if (rs->has_expires) {
		/* The caller puts the response time in date when Date was
		 * missing; if it did not, nothing anchors Expires: stale. */
		if (rs->date < 0)
			return 0;
		return max64(sat_sub(rs->expires, rs->date), 0);
	}
	/* §4.2.2: a fraction of the time since Last-Modified, and only if
	 * that is in the past of Date. */
	if (!heuristic_ok(rs, cfg) || rs->last_modified < 0 || rs->date < rs->last_modified)
		return 0;
	d = rs->date - rs->last_modified;
	if (__builtin_mul_overflow(d, (int64_t)cfg->heuristic_percent, &life))
		life = INT64_MAX;
	return max64(min64(life / 100, cfg->heuristic_max), 0);
}

int64_t cache_initial_age(const struct cache_resp_info *rs, int64_t request_time,
                          int64_t response_time)
{
	/* RFC 9111 §4.2.3. A response time before the request time (a clock
	 * step) counts as no delay. */
	int64_t age_value = max64(rs->age, 0);
	int64_t apparent_age = rs->date >= 0 ? max64(sat_sub(response_time, rs->date), 0) : 0;
	int64_t response_delay = max64(sat_sub(response_time, request_time), 0);
	int64_t corrected_age_value = sat_add(age_value, response_delay);

	return max64(apparent_age, corrected_age_value);
}

void cache_times_init(struct cache_times *t, const struct cache_resp_info *rs,
                      const struct cache_rules_cfg *cfg, int64_t request_time,
                      int64_t response_time)
{
	RLB_ASSERT(t != NULL);
	RLB_ASSERT(rs != NULL);
	t->initial_age = cache_initial_age(rs, request_time, response_time);
	t->response_time = response_time;
	t->lifetime = cache_freshness_lifetime(rs, cfg);
	t->swr = rs->cc.stale_while_revalidate;
	t->sie = rs->cc.stale_if_error;
	t->flags = rs->cc.flags;
	/* §5.2.2.10: s-maxage also implies proxy-revalidate. */
	if (rs->cc.s_maxage != CC_UNSET)
		t->flags |= CC_PROXY_REVALIDATE;
}

int64_t cache_current_age(const struct cache_times *t, int64_t now)
{
	/* §4.2.3: resident_time = now - response_time (never negative). */
	return sat_add(t->initial_age, max64(sat_sub(now, t->response_time), 0));
}

/* forbids_stale says whether the response forbids serving it stale:
 * must-revalidate (§5.2.2.2), proxy-revalidate and s-maxage (§5.2.2.8,
 * §5.2.2.10, in a shared cache), no-cache (§4.2.4). */
static bool forbids_stale(const struct cache_times *t)
{
	return t->flags & (CC_MUST_REVALIDATE | CC_PROXY_REVALIDATE | CC_NO_CACHE);
}

enum cache_use cache_decide(const struct cache_req_info *rq, const struct cache_times *t,
                            int64_t now, int64_t *age)
{
	int64_t a, left, staleness;

	RLB_ASSERT(rq != NULL);
	RLB_ASSERT(t != NULL);
	a = cache_current_age(t, now);
	if (age != NULL)
		*age = a;
	/* §5.2.2.4: a no-cache response is validated before each reuse;
	 * §5.2.1.4 and §5.4: so is any entry for a no-cache request. */
	if ((t->flags & CC_NO_CACHE) || (rq->cc.flags & CC_NO_CACHE) || rq->pragma_no_cache)
		return CACHE_REVALIDATE;
	/* §5.2.1.1: nothing older than the request's max-age, stale or not. */
	if (rq->cc.max_age != CC_UNSET && a > rq->cc.max_age)
		return CACHE_REVALIDATE;
	left = sat_sub(t->lifetime, a);
	/* §5.2.1.3: min-fresh wants it fresh for that much longer; stale
	 * will not do, whatever max-stale or stale-while-revalidate say. */
	if (rq->cc.min_fresh != CC_UNSET)
		return left > 0 && left >= rq->cc.min_fresh ? CACHE_FRESH : CACHE_REVALIDATE;
	if (left > 0) /* §4.2: fresh while freshness_lifetime > current_age */
		return CACHE_FRESH;
	staleness = sat_sub(a, t->lifetime);
	if (forbids_stale(t)) /* §4.2.4 */
		return CACHE_REVALIDATE;
	/* §5.2.1.2: the client accepts that much staleness ("no more than"). */
	if (rq->cc.max_stale != CC_UNSET && staleness <= rq->cc.max_stale)
		return CACHE_FRESH;
	/* RFC 5861 §3: "up to" that many seconds stale, refreshed meanwhile. */
	if (t->swr != CC_UNSET && staleness <= t->swr)
		return CACHE_STALE_SWR;
	return CACHE_REVALIDATE;
}

bool cache_stale_if_error_ok(const struct cache_req_info *rq, const struct cache_times *t,
                             int64_t now)
{
	int64_t window, staleness;

	RLB_ASSERT(rq != NULL);
	RLB_ASSERT(t != NULL);
	/* RFC 5861 §4 says "regardless of other freshness information", but
	 * RFC 9111 §4.2.4 (later) lets no-cache, must-revalidate,
	 * proxy-revalidate and s-maxage prohibit any stale response. */
	if (forbids_stale(t))
		return false;
	/* The client's own limit, when it gives one, is what it accepts
	 * (§4.2.4: stale is allowed when the client permits it); else the
	 * origin's. */
	window = rq->cc.stale_if_error != CC_UNSET ? rq->cc.stale_if_error : t->sie;
	if (window == CC_UNSET)
		return false;
	staleness = sat_sub(cache_current_age(t, now), t->lifetime);
	return staleness <= window;
}

/* --- conditional requests --- */

/* opaque_tag drops the weakness indicator (%s"W/", RFC 9110 §8.8.3), so
 * that what is left, quotes included, compares byte by byte: the weak
 * comparison of §8.8.3.2. */
static struct h1_str opaque_tag(struct h1_str e)
{
	if (e.len >= 2 && e.ptr[0] == 'W' && e.ptr[1] == '/') {
		e.ptr += 2;
		e.len -= 2;
	}
	return e;
}

/* inm_matches evaluates If-None-Match's condition as "matches" (§13.1.2):
 * "*" matches any current representation, which a stored entry is; else
 * some listed entity-tag weakly equals the entry's. */
static bool inm_matches(struct h1_str inm, struct h1_str etag)
{
	struct h1_str e, mine = opaque_tag(trim(etag));

	while (list_next(&inm, &e)) {
		if (e.len == 1 && e.ptr[0] == '*')
			return true;
		e = opaque_tag(e);
		if (mine.len > 0 && e.len == mine.len && memcmp(e.ptr, mine.ptr, e.len) == 0)
			return true;
	}
	return false;
}

bool cache_not_modified(const char *inm, size_t inm_len, const char *ims, size_t ims_len,
                        const char *etag, size_t etag_len, int64_t last_modified, int64_t date)
{
	int64_t since, modified;

	/* RFC 9110 §13.2.2: If-None-Match first; when present,
	 * If-Modified-Since is not evaluated (§13.1.3). */
	if (inm != NULL)
		return inm_matches((struct h1_str){inm, inm_len}, (struct h1_str){etag, etag_len});
	if (ims == NULL)
		return false;
	/* §13.1.3: an invalid date (or a list) is ignored. */
	since = http_date_parse(ims, ims_len);
	if (since < 0)
		return false;
	/* RFC 9111 §4.3.2: the stored Last-Modified, else its Date. */
	modified = last_modified >= 0 ? last_modified : date;
	if (modified < 0)
		return false;
	/* §13.1.3: "not modified" when modified no later than the date. */
	return modified <= since;
}

/* --- keys and variants --- */

/* A bounded writer: once something does not fit, `over` stays set. */
struct wbuf {
	char *p;
	size_t cap, len;
	bool over;
};

static void w_put(struct wbuf *w, const char *s, size_t n, bool lower)
{
	if (w->over || n > w->cap - w->len) {
		w->over = true;
		return;
	}
	for (size_t i = 0; i < n; i++)
		w->p[w->len + i] = lower ? ascii_lower(s[i]) : s[i];
	w->len += n;
}

static void w_byte(struct wbuf *w, char c)
{
	w_put(w, &c, 1, false);
}

size_t cache_key_build(char *out, size_t cap, struct h1_str method, struct h1_str host,
                       struct h1_str target, const struct h1_str *extra, size_t n_extra,
                       const struct h1_header *h, size_t n)
{
	struct wbuf w = {out, cap, 0, false};

	RLB_ASSERT(out != NULL || cap == 0);
	RLB_ASSERT(extra != NULL || n_extra == 0);
	/* Host is case-insensitive (RFC 3986 §3.2.2); the target is not. */
	w_put(&w, method.ptr, method.len, false);
	w_byte(&w, '\0');
	w_put(&w, host.ptr, host.len, true);
	w_byte(&w, '\0');
	w_put(&w, target.ptr, target.len, false);
	for (size_t i = 0; i < n_extra; i++) {
		bool first = true;

		w_byte(&w, '\0');
		w_put(&w, extra[i].ptr, extra[i].len, true);
		w_byte(&w, '=');
		for (size_t j = 0; j < n; j++) {
			if (!slice_ieq(h[j].name.ptr, h[j].name.len, extra[i].ptr, extra[i].len))
				continue;
			if (!first)
				w_byte(&w, ',');
			w_put(&w, h[j].value.ptr, h[j].value.len, false);
			first = false;
		}
	}
	return w.over ? 0 : w.len;
}

/* vary_value writes the request's value of field `name` for a variant
 * signature: its lines' list elements, trimmed, empty ones dropped, joined
 * by "," (RFC 9110 §5.3 lets lines combine that way). */
static void vary_value(struct wbuf *w, struct h1_str name, const struct h1_header *h, size_t n,
                       const char *ae_norm)
{
	bool first = true;

	if (ae_norm != NULL && str_ieq(name, "accept-encoding")) {
		w_put(w, ae_norm, strlen(ae_norm), false);
		return;
	}
	for (size_t j = 0; j < n; j++) {
		struct h1_str rest = h[j].value, e;

		if (!slice_ieq(h[j].name.ptr, h[j].name.len, name.ptr, name.len))
			continue;
		while (list_next(&rest, &e)) {
			if (e.len == 0)
				continue;
			if (!first)
				w_byte(w, ',');
			w_put(w, e.ptr, e.len, false);
			first = false;
		}
	}
}

size_t cache_vary_sig(char *out, size_t cap, const struct h1_header *vh, size_t nvh,
                      const struct h1_header *h, size_t n, const char *ae_norm)
{
	struct wbuf w = {out, cap, 0, false};

	RLB_ASSERT(out != NULL || cap == 0);
	RLB_ASSERT(vh != NULL || nvh == 0);
	for (size_t i = 0; i < nvh; i++) {
		struct h1_str rest = vh[i].value, e;

		if (!str_ieq(vh[i].name, "vary"))
			continue;
		while (list_next(&rest, &e)) {
			if (e.len == 0)
				continue;
			/* RFC 9111 §4.1: "*" always fails to match. */
			if (e.len == 1 && e.ptr[0] == '*')
				return SIZE_MAX;
			w_put(&w, e.ptr, e.len, true);
			w_byte(&w, '\n');
			vary_value(&w, e, h, n, ae_norm);
			w_byte(&w, '\n');
		}
	}
	return w.over ? SIZE_MAX : w.len;
}
