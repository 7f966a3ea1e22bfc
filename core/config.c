/* core/config.c — the YAML configuration (libyaml's document API), quick
 * mode, defaults and whole-configuration validation.
 *
 * Runs on the control thread only, at start-up and on reload; it may allocate
 * and is never on the request path.
 *
 * Method: the file is loaded into a libyaml document (every node carries its
 * line), then walked against static key tables. A table row names a key, the
 * field it fills, how to parse it and its bounds, so the loader, the range
 * re-check in config_validate and docs/reference.md all follow one list.
 * Per-key checks happen while parsing, with the value's line; relations
 * between keys (header_bytes_max <= buffers.size, routes naming pools) wait
 * for config_validate, which finds lines in the private _line/_key_lines
 * fields the loader filled in.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "core/cidr.h"
#include "core/common.h"
#include "core/filter.h"
#include "core/ratelimit.h"

#define KIB             1024ULL
#define MIB             (1024ULL * KIB)
#define GIB             (1024ULL * MIB)
#define DURATION_MAX_MS (24ULL * 3600 * 1000) /* no timeout needs more than a day */
#define FILE_BYTES_MAX  (16 * MIB)            /* a configuration is a few KiB */
#define GOT_CHARS_MAX   60                    /* longest value echoed in a message */

/* ---- messages ---- */

/* errorf writes "SOURCE[:LINE]: [KEY: ]MESSAGE" into err and returns 0, so that
 * callers can `return errorf(...)`. Line 0 means "no line" (a default or the
 * command line). */
__attribute__((format(printf, 6, 7))) static int errorf(char *err, size_t err_len,
                                                        const char *source, uint32_t line,
                                                        const char *key, const char *fmt, ...)
{
	char msg[CONFIG_ERR_MAX];
	char where[16] = "";
	va_list ap;

	if (err == NULL || err_len == 0)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(where, sizeof(where), ":%u", line);
	if (key != NULL && key[0] != '\0')
		snprintf(err, err_len, "%s%s: %s: %s", source, where, key, msg);
	else
		snprintf(err, err_len, "%s%s: %s", source, where, msg);
	return 0;
}

/* quote copies a user's value into `out` between double quotes, cut short and
 * with control bytes replaced, because an error message must stay one line. */
static const char *quote(char *out, size_t out_len, const char *s, size_t len)
{
	size_t n = len > GOT_CHARS_MAX ? GOT_CHARS_MAX : len;
	size_t o = 0;

	RLB_ASSERT(out_len >= GOT_CHARS_MAX + 6);
	out[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (n < len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

/* fmt_size writes a byte count the way a user would write it. */
static const char *fmt_size(char *out, size_t out_len, uint64_t v)
{
	if (v >= GIB && v % GIB == 0)
		snprintf(out, out_len, "%lluGiB", (unsigned long long)(v / GIB));
	else if (v >= MIB && v % MIB == 0)
		snprintf(out, out_len, "%lluMiB", (unsigned long long)(v / MIB));
	else if (v >= KIB && v % KIB == 0)
		snprintf(out, out_len, "%lluKiB", (unsigned long long)(v / KIB));
	else
		snprintf(out, out_len, "%llu bytes", (unsigned long long)v);
	return out;
}

/* fmt_duration writes milliseconds the way a user would write them. */
static const char *fmt_duration(char *out, size_t out_len, uint64_t ms)
{
	if (ms >= 3600000 && ms % 3600000 == 0)
		snprintf(out, out_len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms >= 60000 && ms % 60000 == 0)
		snprintf(out, out_len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(out, out_len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(out, out_len, "%llums", (unsigned long long)ms);
	return out;
}

/* ---- value parsers ---- */

/* parse_digits reads one or more decimal digits, refusing overflow, and
 * leaves *end on the first byte after them. */
static int parse_digits(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	if (p == s)
		return 0;
	*end = p;
	*out = v;
	return 1;
}

/* parse_uint accepts a whole string of decimal digits (no sign, no spaces). */
static int parse_uint(const char *text, uint64_t *out)
{
	const char *end;

	return parse_digits(text, &end, out) && *end == '\0';
}

int config_parse_duration_ms(const char *text, uint64_t *out_ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	const char *end;
	uint64_t n;

	if (text == NULL || !parse_digits(text, &end, &n))
		return 0;
	for (size_t i = 0; i < RLB_ARRAY_LEN(units); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (n > UINT64_MAX / units[i].ms)
			return 0;
		*out_ms = n * units[i].ms;
		return 1;
	}
	return 0;
}

int config_parse_size(const char *text, uint64_t *out_bytes)
{
	/* k/m/g are 1024-based as in nginx; KB/MB/GB are SI as in the name. */
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
	        {"", 1},
	        {"B", 1},
	        {"KiB", KIB},
	        {"MiB", MIB},
	        {"GiB", GIB},
	        {"TiB", 1024 * GIB},
	        {"KB", 1000},
	        {"MB", 1000000},
	        {"GB", 1000000000},
	        {"TB", 1000000000000},
	        {"k", KIB},
	        {"K", KIB},
	        {"m", MIB},
	        {"M", MIB},
	        {"g", GIB},
	        {"G", GIB},
	        {"t", 1024 * GIB},
	        {"T", 1024 * GIB},
	};
	const char *end;
	uint64_t n;

	if (text == NULL || !parse_digits(text, &end, &n))
		return 0;
	for (size_t i = 0; i < RLB_ARRAY_LEN(units); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (n > UINT64_MAX / units[i].mult)
			return 0;
		*out_bytes = n * units[i].mult;
		return 1;
	}
	return 0;
}

/* parse_port accepts 1..65535 in decimal; port 0 would mean "any port". */
static int parse_port(const char *s, uint16_t *out)
{
	uint64_t v;

	if (!parse_uint(s, &v) || v == 0 || v > 65535)
		return 0;
	*out = (uint16_t)v;
	return 1;
}

int config_parse_addr(const char *text, struct config_addr *out)
{
	char host[INET6_ADDRSTRLEN];
	const char *colon;
	size_t host_len;
	uint16_t port;

	if (text == NULL || strlen(text) >= sizeof(out->text))
		return 0;
	if (text[0] == '[') {
		/* A v6 address holds colons itself, so it must be bracketed. */
		const char *close = strchr(text, ']');
		if (close == NULL || close[1] != ':')
			return 0;
		host_len = (size_t)(close - text - 1);
		colon = close + 1;
		if (host_len == 0 || host_len >= sizeof(host))
			return 0;
		memcpy(host, text + 1, host_len);
	} else {
		colon = strchr(text, ':');
		if (colon == NULL || strchr(colon + 1, ':') != NULL)
			return 0;
		host_len = (size_t)(colon - text);
		if (host_len >= sizeof(host))
			return 0;
		memcpy(host, text, host_len);
	}
	host[host_len] = '\0';
	if (!parse_port(colon + 1, &port))
		return 0;

	struct config_addr a;
	memset(&a, 0, sizeof(a));
	if (text[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return 0;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		a.len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
		if (host_len == 0)
			s4->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return 0;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		a.len = sizeof(*s4);
	}
	memcpy(a.text, text, strlen(text) + 1);
	*out = a;
	return 1;
}

/* is_name_char: pool names appear in logs, metrics labels and the admin API,
 * so they keep to a charset none of those has to escape. */
static int is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

static int valid_pool_name(const char *s, size_t len)
{
	if (len == 0 || len >= CONFIG_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!is_name_char(s[i]))
			return 0;
	return 1;
}

/* valid_host accepts a DNS-style name, or "*." and one, lower-cased by the
 * caller; a bare "*" is refused because leaving `host` out says the same. */
static int valid_host(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || len > 255)
		return 0;
	if (s[0] == '*') {
		if (len < 3 || s[1] != '.')
			return 0;
		i = 2;
	}
	for (; i < len; i++)
		if (!is_name_char(s[i]) || s[i] == '*')
			return 0;
	return 1;
}

/* valid_path: a prefix of a request target in origin form (RFC 9112 §3.2.1). */
static int valid_path(const char *s, size_t len)
{
	if (len == 0 || len > 255 || s[0] != '/')
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* ---- key tables ---- */

enum field_kind {
	F_UINT,        /* decimal integer in [min, max] */
	F_POW2,        /* power of two in [min, max] */
	F_SIZE,        /* size in bytes in [min, max] */
	F_DURATION,    /* milliseconds in [min, max] */
	F_BOOL,        /* true/false/yes/no/on/off */
	F_ADDR,        /* struct config_addr */
	F_POOL_NAME,   /* char[CONFIG_NAME_MAX] */
	F_POOL_REF,    /* char[CONFIG_NAME_MAX], resolved by config_validate */
	F_HOST,        /* char[256], lower-cased */
	F_PATH,        /* char[256] */
	F_TOKEN,       /* char[256]: visible ASCII, no spaces (a secret) */
	F_METHOD,      /* char[16]: GET, HEAD or OPTIONS */
	F_ADMIN,       /* struct config_admin, a nested mapping (admin_table) */
	F_WORKERS,     /* "auto" or an integer */
	F_LOG_LEVEL,   /* int 0..3 */
	F_ALGORITHM,   /* enum config_algorithm */
	F_HASH_KEY,    /* struct config_pool hash_key and hash_key_name */
	F_HEALTH,      /* struct config_health, a nested mapping (health_table) */
	F_PASSIVE,     /* struct config_passive, a nested mapping (passive_table) */
	F_AGENT,       /* struct config_agent, a nested mapping (agent_table) */
	F_CHECK_TYPE,  /* "http" or "tcp" */
	F_EXPECT,      /* status list: "200", "200-399", "200,204" */
	F_LOG_PATH,    /* struct config_access_log path and enabled */
	F_SECTION,     /* nested mapping, parsed with `sub` */
	F_LISTENERS,   /* the listeners list */
	F_POOLS,       /* the pools list */
	F_ROUTES,      /* the routes list */
	F_BACKENDS,    /* a pool's backends list */
	F_FILE,        /* char[CONFIG_PATH_MAX]: a file name */
	F_TEXT,        /* char[CONFIG_PATH_MAX]: visible ASCII, no spaces (cipher lists) */
	F_TLS,         /* struct config_tls *, a nested mapping (tls_table) */
	F_CERTS,       /* a TLS section's certificates list */
	F_TLS_VERSION, /* "1.2" or "1.3" */
	F_VERIFY,      /* "required" or "optional" */
	F_CACHE,       /* struct config_cache: on/off, or a nested mapping (cache_table) */
	F_LIST,        /* char[]: a list of tokens (YAML list or "a, b"), stored "a,b" */
	F_PATTERN,     /* char[CONFIG_PATH_MAX]: a PCRE2 pattern (printable ASCII) */
	F_RATE,        /* struct config_rate_limit interval_us from "100/s" */
	F_RATE_KEY,    /* struct config_rate_limit key and key_name */
	F_RATE_LIMIT,  /* struct config_rate_limit, a nested mapping (rate_limit_table) */
	F_FILTERS,     /* struct config_filter, a nested mapping (filter_table) */
	F_RULES,       /* a filters section's rules list */
};

#define FL_REQUIRED 1 /* the mapping must hold this key */
#define FL_LINE     2 /* its line goes to the item's _line */

struct table;

struct field {
	const char *key;
	size_t offset;  /* into the struct the table fills */
	uint32_t width; /* bytes, for the integer kinds */
	uint8_t kind;
	uint8_t flags;
	uint64_t min, max;
	const struct table *sub; /* F_SECTION only */
};

struct table {
	const struct field *fields;
	size_t num_fields;
	int line_base; /* first slot in cfg->_key_lines, or -1 in list items */
};

#define FIELD(k, type, member, kind, flags, min, max)                                              \
	{                                                                                          \
		k, offsetof(type, member), sizeof(((type *)0)->member), kind, flags, min, max,     \
		        NULL                                                                       \
	}
#define SECTION(k, member, table)                                                                  \
	{                                                                                          \
		k, offsetof(struct config, member), 0, F_SECTION, 0, 0, 0, table                   \
	}

/* Slots in cfg->_key_lines: slot 0 holds the line of the top-level mapping,
 * the place to blame for a key the file leaves out. */
enum {
	LINE_ROOT = 0,
	LINE_TOP = 1,
	LINE_TIMEOUTS = LINE_TOP + 16,
	LINE_LIMITS = LINE_TIMEOUTS + 9,
	LINE_BUFFERS = LINE_LIMITS + 14,
	LINE_ACCESS_LOG = LINE_BUFFERS + 5,
	LINE_ADMIN = LINE_ACCESS_LOG + 2,
	LINE_HTTP2 = LINE_ADMIN + 2,
	LINE_COMPRESSION = LINE_HTTP2 + 8,
	LINE_HEADERS = LINE_COMPRESSION + 8,
	LINE_ANOMALY = LINE_HEADERS + 4,
	LINE_SECURITY = LINE_ANOMALY + 7,
	LINE_END = LINE_SECURITY + 3,
};
_Static_assert(LINE_END <= CONFIG_KEY_LINES_MAX, "raise CONFIG_KEY_LINES_MAX");

#define T       struct config_timeouts
#define DUR_MAX DURATION_MAX_MS
static const struct field timeouts_fields[] = {
        FIELD("client_header", T, client_header_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("client_body", T, client_body_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("keepalive", T, keepalive_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("send", T, send_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("upstream_connect", T, upstream_connect_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("upstream_response", T, upstream_response_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("upstream_send", T, upstream_send_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("drain", T, drain_ms, F_DURATION, 0, 0, DUR_MAX),   /* 0: close at once */
        FIELD("linger", T, linger_ms, F_DURATION, 0, 0, DUR_MAX), /* 0: no lingering close */
};
#undef T

#define T struct config_limits
static const struct field limits_fields[] = {
        FIELD("conns_max", T, conns_max, F_UINT, 0, 1, 1048576),
        FIELD("upstream_conns_max", T, upstream_conns_max, F_UINT, 0, 1, 1048576),
        /* The upper bounds of the three head sizes are buffers.size, checked in
         * config_validate; MIB here is buffers.size's own maximum. */
        FIELD("request_line_bytes_max", T, request_line_bytes_max, F_SIZE, 0, 64, MIB),
        FIELD("header_bytes_max", T, header_bytes_max, F_SIZE, 0, 256, MIB),
        FIELD("headers_max", T, headers_max, F_UINT, 0, 1, 1024),
        FIELD("body_bytes_max", T, body_bytes_max, F_SIZE, 0, 0, UINT64_MAX),
        FIELD("response_header_bytes_max", T, response_header_bytes_max, F_SIZE, 0, 256, MIB),
        FIELD("requests_per_conn", T, requests_per_conn, F_UINT, 0, 0, 100000000),
        FIELD("conns_total", T, conns_total, F_UINT, 0, 0, 100000000),
        FIELD("conns_per_ip", T, conns_per_ip, F_UINT, 0, 0, 10000000),
        FIELD("body_min_rate", T, body_min_rate, F_SIZE, 0, 0, GIB),
        FIELD("body_rate_window", T, body_rate_window_ms, F_DURATION, 0, 1000, 3600 * 1000),
        FIELD("rate_table_slots", T, rate_table_slots, F_POW2, 0, 64, 1U << 28),
        FIELD("ip_table_slots", T, ip_table_slots, F_POW2, 0, 64, 1U << 28),
};
#undef T

#define T struct config_buffers
static const struct field buffers_fields[] = {
        FIELD("count", T, count, F_POW2, 0, 16, 32768),
        FIELD("size", T, size, F_SIZE, 0, KIB, MIB),
        FIELD("conn_bytes_max", T, conn_bytes_max, F_SIZE, 0, KIB, GIB),
        FIELD("ring_entries", T, ring_entries, F_POW2, 0, 64, 32768),
        FIELD("tls_count", T, tls_count, F_UINT, 0, 16, 65534),
};
#undef T

#define T struct config_access_log
static const struct field access_log_fields[] = {
        FIELD("path", T, path, F_LOG_PATH, 0, 0, 0),
        FIELD("queue_entries", T, queue_entries, F_POW2, 0, 64, 1048576),
};
#undef T

#define T struct config_listener
static const struct field listener_fields[] = {
        FIELD("address", T, addr, F_ADDR, FL_REQUIRED | FL_LINE, 0, 0),
        FIELD("backlog", T, backlog, F_UINT, 0, 1, 65535),
        FIELD("tls", T, tls, F_TLS, 0, 0, 0),
        FIELD("redirect_https", T, redirect_https, F_UINT, 0, 0, 65535),
        FIELD("http2", T, http2, F_BOOL, 0, 0, 1),
        FIELD("proxy_protocol", T, proxy_protocol, F_BOOL, 0, 0, 1),
        FIELD("allow", T, acl.allow, F_LIST, 0, 0, 0),
        FIELD("deny", T, acl.deny, F_LIST, 0, 0, 0),
        FIELD("allow_file", T, acl.allow_file, F_FILE, 0, 0, 0),
        FIELD("deny_file", T, acl.deny_file, F_FILE, 0, 0, 0),
        FIELD("trusted_proxies", T, trusted_proxies, F_LIST, 0, 0, 0),
};
#undef T

#define T struct config_tls
static const struct field tls_fields[] = {
        FIELD("certificates", T, certs, F_CERTS, FL_REQUIRED, 0, 0),
        FIELD("min_version", T, min_version, F_TLS_VERSION, 0, 0, 0),
        FIELD("ciphers", T, ciphers, F_TEXT, 0, 0, 0),
        FIELD("groups", T, groups, F_TEXT, 0, 0, 0),
        FIELD("client_ca", T, client_ca, F_FILE, 0, 0, 0),
        FIELD("verify_client", T, verify_client, F_VERIFY, 0, 0, 0),
        FIELD("session_tickets", T, session_tickets, F_BOOL, 0, 0, 1),
        FIELD("ticket_key_file", T, ticket_key_file, F_FILE, 0, 0, 0),
        FIELD("ticket_rotate", T, ticket_rotate_ms, F_DURATION, 0, 60 * 1000,
              7 * 24 * 3600 * 1000ULL),
        FIELD("hsts", T, hsts_ms, F_DURATION, 0, 0, 2 * 365 * 24 * 3600 * 1000ULL),
        FIELD("hsts_subdomains", T, hsts_subdomains, F_BOOL, 0, 0, 1),
};
#undef T
static const struct table tls_table = {tls_fields, RLB_ARRAY_LEN(tls_fields), -1};

#define T struct config_cert
static const struct field cert_fields[] = {
        FIELD("cert", T, cert, F_FILE, FL_REQUIRED | FL_LINE, 0, 0),
        FIELD("key", T, key, F_FILE, FL_REQUIRED, 0, 0),
        FIELD("ocsp", T, ocsp, F_FILE, 0, 0, 0),
};
#undef T
static const struct table cert_table = {cert_fields, RLB_ARRAY_LEN(cert_fields), -1};

#define T struct config_backend
static const struct field backend_fields[] = {
        FIELD("address", T, addr, F_ADDR, FL_REQUIRED | FL_LINE, 0, 0),
        FIELD("weight", T, weight, F_UINT, 0, 1, 1000),
        FIELD("backup", T, backup, F_BOOL, 0, 0, 1),
        FIELD("max_connections", T, max_connections, F_UINT, 0, 0, 1000000),
        FIELD("health_check", T, health, F_HEALTH, 0, 0, 0),
};
#undef T

#define T struct config_health
static const struct field health_fields[] = {
        FIELD("type", T, type, F_CHECK_TYPE, 0, 0, 0),
        FIELD("path", T, path, F_PATH, 0, 0, 0),
        FIELD("method", T, method, F_METHOD, 0, 0, 0),
        FIELD("host", T, host, F_HOST, 0, 0, 0),
        FIELD("expect", T, num_expect, F_EXPECT, 0, 0, 0),
        FIELD("interval", T, interval_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("timeout", T, timeout_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("rise", T, rise, F_UINT, 0, 1, 100),
        FIELD("fall", T, fall, F_UINT, 0, 1, 100),
};
#undef T
static const struct table health_table = {health_fields, RLB_ARRAY_LEN(health_fields), -1};

#define T struct config_passive
static const struct field passive_fields[] = {
        FIELD("failures", T, failures, F_UINT, 0, 0, 1000),
        FIELD("ejection", T, ejection_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("ejection_max", T, ejection_max_ms, F_DURATION, 0, 1, DUR_MAX),
};
#undef T
static const struct table passive_table = {passive_fields, RLB_ARRAY_LEN(passive_fields), -1};

#define T struct config_agent
static const struct field agent_fields[] = {
        FIELD("path", T, path, F_PATH, 0, 0, 0),
        FIELD("interval", T, interval_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("timeout", T, timeout_ms, F_DURATION, 0, 1, DUR_MAX),
};
#undef T
static const struct table agent_table = {agent_fields, RLB_ARRAY_LEN(agent_fields), -1};

#define T struct config_pool
static const struct field pool_fields[] = {
        FIELD("name", T, name, F_POOL_NAME, FL_REQUIRED | FL_LINE, 0, 0),
        FIELD("algorithm", T, algorithm, F_ALGORITHM, 0, 0, 0),
        FIELD("keepalive", T, keepalive, F_UINT, 0, 0, 65535),
        FIELD("keepalive_timeout", T, keepalive_timeout_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("retries", T, retries, F_UINT, 0, 0, 10),
        FIELD("retry_budget", T, retry_budget, F_UINT, 0, 0, 100),
        FIELD("retry_budget_min", T, retry_budget_min, F_UINT, 0, 0, 1000000),
        FIELD("slow_start", T, slow_start_ms, F_DURATION, 0, 0, DUR_MAX),
        FIELD("sticky_cookie", T, sticky_cookie, F_POOL_NAME, 0, 0, 0),
        FIELD("queue_max", T, queue_max, F_UINT, 0, 0, 1000000),
        FIELD("queue_timeout", T, queue_timeout_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("hash_key", T, hash_key, F_HASH_KEY, 0, 0, 0),
        FIELD("hash_balance_factor", T, hash_balance_factor, F_UINT, 0, 0, 1000),
        FIELD("health_check", T, health, F_HEALTH, 0, 0, 0),
        FIELD("passive_health", T, passive, F_PASSIVE, 0, 0, 0),
        FIELD("agent", T, agent, F_AGENT, 0, 0, 0),
        FIELD("backends", T, backends, F_BACKENDS, FL_REQUIRED, 0, 0),
        FIELD("tls", T, tls.enabled, F_BOOL, 0, 0, 1),
        FIELD("tls_verify", T, tls.verify, F_BOOL, 0, 0, 1),
        FIELD("tls_ca", T, tls.ca, F_FILE, 0, 0, 0),
        FIELD("tls_name", T, tls.name, F_HOST, 0, 0, 0),
        FIELD("tls_cert", T, tls.cert, F_FILE, 0, 0, 0),
        FIELD("tls_key", T, tls.key, F_FILE, 0, 0, 0),
};
#undef T

#define T struct config_route
static const struct field route_fields[] = {
        FIELD("host", T, host, F_HOST, 0, 0, 0),
        FIELD("path", T, path, F_PATH, 0, 0, 0),
        FIELD("pool", T, pool, F_POOL_REF, FL_REQUIRED | FL_LINE, 0, 0),
        FIELD("cache", T, cache, F_CACHE, 0, 0, 0),
        FIELD("allow", T, acl.allow, F_LIST, 0, 0, 0),
        FIELD("deny", T, acl.deny, F_LIST, 0, 0, 0),
        FIELD("allow_file", T, acl.allow_file, F_FILE, 0, 0, 0),
        FIELD("deny_file", T, acl.deny_file, F_FILE, 0, 0, 0),
        FIELD("rate_limit", T, rate_limit, F_RATE_LIMIT, 0, 0, 0),
        FIELD("filters", T, filter, F_FILTERS, 0, 0, 0),
};
#undef T

#define T struct config_cache
static const struct field cache_fields[] = {
        FIELD("memory", T, memory, F_SIZE, 0, 64 * KIB, 1024 * GIB),
        FIELD("max_object", T, max_object, F_SIZE, 0, 1, GIB),
        FIELD("key_headers", T, key_headers, F_LIST, 0, 0, 0),
        FIELD("lock_timeout", T, lock_timeout_ms, F_DURATION, 0, 1, DUR_MAX),
        FIELD("heuristic", T, heuristic, F_BOOL, 0, 0, 1),
        FIELD("store_set_cookie", T, store_set_cookie, F_BOOL, 0, 0, 1),
        FIELD("header", T, header, F_POOL_NAME, 0, 0, 0),
        FIELD("stale_if_error", T, stale_if_error_ms, F_DURATION, 0, 0, DUR_MAX),
};
#undef T
static const struct table cache_table = {cache_fields, RLB_ARRAY_LEN(cache_fields), -1};

#define T struct config_rate_limit
static const struct field rate_limit_fields[] = {
        FIELD("rate", T, interval_us, F_RATE, FL_REQUIRED, 0, 0),
        FIELD("burst", T, burst, F_UINT, 0, 0, 1000000),
        FIELD("key", T, key, F_RATE_KEY, 0, 0, 0),
        FIELD("delay", T, delay_ms, F_DURATION, 0, 0, 60 * 1000),
        FIELD("status", T, status, F_UINT, 0, 429, 503),
};
#undef T
static const struct table rate_limit_table = {rate_limit_fields, RLB_ARRAY_LEN(rate_limit_fields),
                                              -1};

#define T struct config_filter
static const struct field filter_fields[] = {
        FIELD("methods", T, methods, F_LIST, 0, 0, 0),
        FIELD("max_uri", T, max_uri, F_UINT, 0, 0, 1048576),
        FIELD("rules", T, rules, F_RULES, 0, 0, 0),
};
#undef T
static const struct table filter_table = {filter_fields, RLB_ARRAY_LEN(filter_fields), -1};

#define T struct config_filter_rule
static const struct field rule_fields[] = {
        FIELD("name", T, name, F_POOL_NAME, FL_REQUIRED | FL_LINE, 0, 0),
        FIELD("path", T, path, F_PATTERN, 0, 0, 0),
        FIELD("method", T, method, F_PATTERN, 0, 0, 0),
        FIELD("header", T, header, F_POOL_NAME, 0, 0, 0),
        FIELD("value", T, value, F_PATTERN, 0, 0, 0),
};
#undef T
static const struct table rule_table = {rule_fields, RLB_ARRAY_LEN(rule_fields), -1};

#define T struct config_compression
static const struct field compression_fields[] = {
        FIELD("enabled", T, enabled, F_BOOL, 0, 0, 1),
        FIELD("encodings", T, encodings, F_LIST, 0, 0, 0),
        FIELD("types", T, types, F_LIST, 0, 0, 0),
        FIELD("min_size", T, min_size, F_SIZE, 0, 0, GIB),
        FIELD("gzip_level", T, gzip_level, F_UINT, 0, 1, 9),
        FIELD("brotli_level", T, brotli_level, F_UINT, 0, 0, 11),
        FIELD("zstd_level", T, zstd_level, F_UINT, 0, 1, 19),
        FIELD("max_streams", T, max_streams, F_UINT, 0, 1, 100000),
};
#undef T
#undef DUR_MAX

#define TABLE(f, base)                                                                             \
	{                                                                                          \
		f, RLB_ARRAY_LEN(f), base                                                          \
	}
static const struct table timeouts_table = TABLE(timeouts_fields, LINE_TIMEOUTS);
static const struct table limits_table = TABLE(limits_fields, LINE_LIMITS);
static const struct table buffers_table = TABLE(buffers_fields, LINE_BUFFERS);
static const struct table access_log_table = TABLE(access_log_fields, LINE_ACCESS_LOG);
static const struct table listener_table = TABLE(listener_fields, -1);
static const struct table backend_table = TABLE(backend_fields, -1);
static const struct table pool_table = TABLE(pool_fields, -1);
static const struct table route_table = TABLE(route_fields, -1);

#define T struct config_admin
static const struct field admin_fields[] = {
        FIELD("address", T, addr, F_ADDR, 0, 0, 0),
        FIELD("token", T, token, F_TOKEN, 0, 0, 0),
};
#undef T
static const struct table admin_table = TABLE(admin_fields, LINE_ADMIN);

#define T struct config_http2
static const struct field http2_fields[] = {
        FIELD("max_concurrent_streams", T, max_concurrent_streams, F_UINT, 0, 1, 10000),
        FIELD("stream_window", T, stream_window, F_SIZE, 0, 16 * KIB, 16 * MIB),
        FIELD("header_table_size", T, header_table_size, F_UINT, 0, 0, 65536),
        FIELD("max_resets", T, max_resets, F_UINT, 0, 1, 1000000),
        FIELD("reset_rate", T, reset_rate, F_UINT, 0, 1, 1000000),
        FIELD("max_control", T, max_control, F_UINT, 0, 1, 1000000),
        FIELD("control_rate", T, control_rate, F_UINT, 0, 1, 1000000),
        FIELD("max_continuations", T, max_continuations, F_UINT, 0, 0, 1000),
};
#undef T
static const struct table http2_table = TABLE(http2_fields, LINE_HTTP2);
static const struct table compression_table = TABLE(compression_fields, LINE_COMPRESSION);

#define T struct config_headers
static const struct field headers_fields[] = {
        FIELD("hide", T, hide, F_LIST, 0, 0, 0),
        FIELD("server", T, server, F_TEXT, 0, 0, 0),
        FIELD("request_id", T, request_id, F_BOOL, 0, 0, 1),
        FIELD("request_id_trusted", T, request_id_trusted, F_BOOL, 0, 0, 1),
};
#undef T
static const struct table headers_table = TABLE(headers_fields, LINE_HEADERS);

#define T struct config_anomaly
static const struct field anomaly_fields[] = {
        FIELD("enabled", T, enabled, F_BOOL, 0, 0, 1),
        FIELD("interval", T, interval_ms, F_DURATION, 0, 1000, 3600 * 1000),
        FIELD("baseline", T, baseline_ms, F_DURATION, 0, 1000, 7 * 24 * 3600 * 1000ULL),
        FIELD("factor", T, factor, F_UINT, 0, 101, 100000),
        FIELD("min_rate", T, min_rate, F_UINT, 0, 0, 100000000),
        FIELD("error_factor", T, error_factor, F_UINT, 0, 101, 100000),
        FIELD("min_error_rate", T, min_error_rate, F_UINT, 0, 0, 100000000),
};
#undef T
static const struct table anomaly_table = TABLE(anomaly_fields, LINE_ANOMALY);

/* User and group names keep to the pool-name charset, which is POSIX's
 * portable one for user names; a numeric id passes too. */
#define T struct config_security
static const struct field security_fields[] = {
        FIELD("user", T, user, F_POOL_NAME, 0, 0, 0),
        FIELD("group", T, group, F_POOL_NAME, 0, 0, 0),
        FIELD("seccomp", T, seccomp, F_BOOL, 0, 0, 1),
};
#undef T
static const struct table security_table = TABLE(security_fields, LINE_SECURITY);

#define T struct config
static const struct field top_fields[] = {
        FIELD("workers", T, workers, F_WORKERS, 0, 0, 1024),
        FIELD("pin_workers", T, pin_workers, F_BOOL, 0, 0, 1),
        FIELD("log_level", T, log_level, F_LOG_LEVEL, 0, 0, 3),
        FIELD("listeners", T, listeners, F_LISTENERS, 0, 0, 0),
        FIELD("pools", T, pools, F_POOLS, 0, 0, 0),
        FIELD("routes", T, routes, F_ROUTES, 0, 0, 0),
        SECTION("timeouts", timeouts, &timeouts_table),
        SECTION("limits", limits, &limits_table),
        SECTION("buffers", buffers, &buffers_table),
        SECTION("access_log", access_log, &access_log_table),
        FIELD("admin", T, admin, F_ADMIN, 0, 0, 0),
        SECTION("http2", http2, &http2_table),
        SECTION("compression", compression, &compression_table),
        SECTION("headers", headers, &headers_table),
        SECTION("anomaly", anomaly, &anomaly_table),
        SECTION("security", security, &security_table),
};
#undef T
static const struct table top_table = TABLE(top_fields, LINE_TOP);

_Static_assert(RLB_ARRAY_LEN(top_fields) == LINE_TIMEOUTS - LINE_TOP, "top line slots");
_Static_assert(RLB_ARRAY_LEN(timeouts_fields) == LINE_LIMITS - LINE_TIMEOUTS, "timeouts slots");
_Static_assert(RLB_ARRAY_LEN(limits_fields) == LINE_BUFFERS - LINE_LIMITS, "limits slots");
_Static_assert(RLB_ARRAY_LEN(buffers_fields) == LINE_ACCESS_LOG - LINE_BUFFERS, "buffers slots");
_Static_assert(RLB_ARRAY_LEN(access_log_fields) == LINE_ADMIN - LINE_ACCESS_LOG, "log slots");
_Static_assert(RLB_ARRAY_LEN(admin_fields) == LINE_HTTP2 - LINE_ADMIN, "admin slots");
_Static_assert(RLB_ARRAY_LEN(http2_fields) == LINE_COMPRESSION - LINE_HTTP2, "http2 slots");
_Static_assert(RLB_ARRAY_LEN(compression_fields) == LINE_HEADERS - LINE_COMPRESSION, "compression");
_Static_assert(RLB_ARRAY_LEN(headers_fields) == LINE_ANOMALY - LINE_HEADERS, "headers slots");
_Static_assert(RLB_ARRAY_LEN(anomaly_fields) == LINE_SECURITY - LINE_ANOMALY, "anomaly slots");
_Static_assert(RLB_ARRAY_LEN(security_fields) == LINE_END - LINE_SECURITY, "security slots");

/* expectation describes what a field accepts, for "expected X, got Y". */
static const char *expectation(const struct field *f, char *out, size_t out_len)
{
	switch ((enum field_kind)f->kind) {
	case F_UINT:
		snprintf(out, out_len, "an integer from %llu to %llu", (unsigned long long)f->min,
		         (unsigned long long)f->max);
		return out;
	case F_POW2:
		snprintf(out, out_len, "a power of two from %llu to %llu",
		         (unsigned long long)f->min, (unsigned long long)f->max);
		return out;
	case F_SIZE:
		return "a size like 16KiB or 4MiB";
	case F_DURATION:
		return "a duration like 2s or 500ms";
	case F_BOOL:
		return "true or false";
	case F_ADDR:
		return "HOST:PORT with a numeric IP";
	case F_POOL_NAME:
		return "a name of 1 to 63 characters from A-Z a-z 0-9 _ . -";
	case F_POOL_REF:
		return "the name of a pool";
	case F_HOST:
		return "a host name or \"*.suffix\" of at most 255 characters";
	case F_PATH:
		return "a path prefix starting with \"/\" of at most 255 characters, no spaces";
	case F_TOKEN:
		return "1 to 255 visible ASCII characters, no spaces";
	case F_METHOD:
		return "GET, HEAD or OPTIONS";
	case F_ADMIN:
		return "a mapping of admin API settings";
	case F_WORKERS:
		return "\"auto\" or an integer from 1 to 1024";
	case F_LOG_LEVEL:
		return "one of error, warn, info, debug";
	case F_ALGORITHM:
		return "one of round_robin, weighted_round_robin, least_conn, weighted_least_conn, "
		       "random_two, least_time, ip_hash, hash, resource";
	case F_HASH_KEY:
		return "client_ip, uri, header:NAME or cookie:NAME";
	case F_HEALTH:
		return "a mapping of health check settings";
	case F_PASSIVE:
		return "a mapping of passive health settings";
	case F_AGENT:
		return "a mapping of load agent settings";
	case F_CHECK_TYPE:
		return "http or tcp";
	case F_EXPECT:
		return "statuses like 200, 200-399 or 200,204 (100..599, at most 8 items)";
	case F_LOG_PATH:
		return "a file path, \"stdout\", \"-\" or \"off\"";
	case F_SECTION:
	case F_RATE_LIMIT:
	case F_FILTERS:
		return "a mapping";
	case F_LISTENERS:
	case F_POOLS:
	case F_ROUTES:
	case F_BACKENDS:
	case F_CERTS:
	case F_RULES:
		return "a list";
	case F_FILE:
		return "a file name of 1 to 511 characters";
	case F_TEXT:
		return "1 to 511 visible ASCII characters, no spaces";
	case F_TLS:
		return "a mapping of TLS settings";
	case F_TLS_VERSION:
		return "\"1.2\" or \"1.3\"";
	case F_VERIFY:
		return "required or optional";
	case F_CACHE:
		return "on, off, or a mapping of cache settings";
	case F_LIST:
		return f->width == CONFIG_CIDRS_MAX
		               ? "a list of addresses or CIDR prefixes (or \"a, b\"), at most 4095 "
		                 "characters in all (longer lists go in a file)"
		               : "a list of names (or \"a, b\"), 1 to 511 characters in all";
	case F_PATTERN:
		return "a regular expression (PCRE2) of 1 to 511 printable ASCII characters";
	case F_RATE:
		return "a rate like 100/s, 6000/m or 10/h";
	case F_RATE_KEY:
		return "client_ip, route or header:NAME";
	}
	return "a value";
}

/* range_text describes a numeric field's bounds, for "expected X, got Y". */
static const char *range_text(const struct field *f, char *out, size_t out_len)
{
	char a[32], b[32];

	if (f->kind == F_SIZE)
		snprintf(out, out_len, "a size from %s to %s", fmt_size(a, sizeof(a), f->min),
		         fmt_size(b, sizeof(b), f->max));
	else if (f->kind == F_DURATION)
		snprintf(out, out_len, "a duration from %s to %s",
		         fmt_duration(a, sizeof(a), f->min), fmt_duration(b, sizeof(b), f->max));
	else
		return expectation(f, out, out_len);
	return out;
}

static int in_range(const struct field *f, uint64_t v)
{
	if (v < f->min || v > f->max)
		return 0;
	return f->kind != F_POW2 || (v & (v - 1)) == 0;
}

static void store_uint(void *base, const struct field *f, uint64_t v)
{
	char *at = (char *)base + f->offset;

	if (f->width == 4) {
		uint32_t x = (uint32_t)v;
		memcpy(at, &x, sizeof(x));
	} else {
		RLB_ASSERT(f->width == 8);
		memcpy(at, &v, sizeof(v));
	}
}

static uint64_t load_uint(const void *base, const struct field *f)
{
	const char *at = (const char *)base + f->offset;

	if (f->width == 4) {
		uint32_t x;
		memcpy(&x, at, sizeof(x));
		return x;
	}
	RLB_ASSERT(f->width == 8);
	uint64_t v;
	memcpy(&v, at, sizeof(v));
	return v;
}

static int find_field(const struct table *t, const char *key)
{
	for (size_t i = 0; i < t->num_fields; i++)
		if (strcmp(t->fields[i].key, key) == 0)
			return (int)i;
	return -1;
}

/* ---- defaults ---- */

static void health_defaults(struct config_health *h)
{
	memset(h, 0, sizeof(*h));
	h->type = CONFIG_CHECK_HTTP;
	memcpy(h->path, "/", 2);
	memcpy(h->method, "GET", 4);
	h->num_expect = 1;
	h->expect_lo[0] = 200;
	h->expect_hi[0] = 399;
	h->interval_ms = 2000;
	h->timeout_ms = 1000;
	h->rise = 2;
	h->fall = 3;
}

void config_cache_defaults(struct config_cache *c)
{
	memset(c, 0, sizeof(*c));
	c->memory = 64 * MIB;
	c->max_object = MIB;
	c->lock_timeout_ms = 5000;
	memcpy(c->header, "X-Cache", sizeof("X-Cache"));
}

static void pool_defaults(struct config_pool *pool)
{
	memset(pool, 0, sizeof(*pool));
	pool->algorithm = CONFIG_ALG_ROUND_ROBIN;
	pool->keepalive = 64;
	pool->keepalive_timeout_ms = 60 * 1000;
	pool->retries = 1;
	pool->retry_budget = 20;
	pool->retry_budget_min = 100;
	pool->queue_max = 1024;
	pool->queue_timeout_ms = 5000;
	health_defaults(&pool->health);
	memcpy(pool->agent.path, "/load", 6);
	pool->agent.interval_ms = 2000;
	pool->agent.timeout_ms = 1000;
	pool->passive.failures = 0;
	pool->passive.ejection_ms = 10 * 1000;
	pool->passive.ejection_max_ms = 5 * 60 * 1000;
	pool->tls.verify = true;
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->source, sizeof(cfg->source), "command line");
	cfg->workers = 0;
	cfg->pin_workers = true;
	cfg->log_level = 2;
	cfg->timeouts = (struct config_timeouts){
	        .client_header_ms = 10 * 1000,
	        .client_body_ms = 60 * 1000,
	        .keepalive_ms = 75 * 1000,
	        .send_ms = 60 * 1000,
	        .upstream_connect_ms = 5 * 1000,
	        .upstream_response_ms = 60 * 1000,
	        .upstream_send_ms = 60 * 1000,
	        .drain_ms = 30 * 1000,
	        .linger_ms = 2 * 1000,
	};
	cfg->headers = (struct config_headers){.hide = CONFIG_HIDE_HEADERS, .request_id = true};
	cfg->compression = (struct config_compression){
	        .encodings = "br,zstd,gzip",
	        .types = CONFIG_COMPRESS_TYPES,
	        .min_size = 256,
	        .gzip_level = 6,
	        .brotli_level = 4,
	        .zstd_level = 3,
	        .max_streams = 32,
	};
	cfg->limits = (struct config_limits){
	        .conns_max = 10000,
	        .upstream_conns_max = 10000,
	        .request_line_bytes_max = 8 * KIB,
	        .header_bytes_max = 16 * KIB,
	        .headers_max = 100,
	        .body_bytes_max = GIB,
	        .response_header_bytes_max = 16 * KIB,
	        .body_rate_window_ms = 10 * 1000,
	        .rate_table_slots = 262144,
	        .ip_table_slots = 65536,
	};
	cfg->anomaly = (struct config_anomaly){
	        .interval_ms = 10 * 1000,
	        .baseline_ms = 10 * 60 * 1000,
	        .factor = 300,
	        .min_rate = 10,
	        .error_factor = 300,
	        .min_error_rate = 1,
	};
	/* Two groups (client input, upstream input) of 1024 x 16KiB: 32MiB
	 * of receive buffers per shard. */
	cfg->buffers = (struct config_buffers){
	        .count = 1024,
	        .size = 16 * KIB,
	        .conn_bytes_max = 256 * KIB,
	        .ring_entries = 4096,
	        .tls_count = 1024,
	};
	cfg->access_log.enabled = false;
	cfg->access_log.queue_entries = 4096;
	cfg->http2 = (struct config_http2){
	        .max_concurrent_streams = 128,
	        .stream_window = 64 * KIB,
	        .header_table_size = 4096,
	        .max_resets = 200,
	        .reset_rate = 33,
	        .max_control = 1000,
	        .control_rate = 100,
	        .max_continuations = 8,
	};
}

void config_free(struct config *cfg)
{
	/* Every pool slot, not num_pools: a load that failed half-way may have
	 * given a pool its array before counting it. */
	for (size_t i = 0; i < CONFIG_POOLS_MAX; i++) {
		free(cfg->pools[i].backends);
		cfg->pools[i].backends = NULL;
		cfg->pools[i].num_backends = 0;
	}
	for (size_t i = 0; i < CONFIG_LISTENERS_MAX; i++) {
		if (cfg->listeners[i].tls != NULL)
			free(cfg->listeners[i].tls->certs);
		free(cfg->listeners[i].tls);
		cfg->listeners[i].tls = NULL;
	}
	for (size_t i = 0; cfg->routes != NULL && i < cfg->num_routes; i++)
		free(cfg->routes[i].filter.rules);
	free(cfg->routes);
	cfg->routes = NULL;
	cfg->num_routes = 0;
	cfg->num_pools = 0;
	cfg->num_listeners = 0;
}

/* ---- the YAML walk ---- */

struct parse {
	struct config *cfg;
	yaml_document_t *doc;
	char *err;
	size_t err_len;
	char path[256]; /* dotted key of the node being read */
	size_t path_len;
};

static uint32_t node_line(const yaml_node_t *n)
{
	return (uint32_t)n->start_mark.line + 1;
}

__attribute__((format(printf, 3, 4))) static int perr(struct parse *p, uint32_t line,
                                                      const char *fmt, ...)
{
	char msg[CONFIG_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return errorf(p->err, p->err_len, p->cfg->source, line, p->path, "%s", msg);
}

/* path_push appends ".key" or "[i]" to the current key and returns the length
 * to restore with path_pop. */
static size_t path_push(struct parse *p, const char *key, size_t index)
{
	size_t old = p->path_len;
	size_t room = sizeof(p->path) - old;
	int n;

	if (key != NULL)
		n = snprintf(p->path + old, room, old ? ".%s" : "%s", key);
	else
		n = snprintf(p->path + old, room, "[%zu]", index);
	p->path_len = (n < 0 || (size_t)n >= room) ? sizeof(p->path) - 1 : old + (size_t)n;
	/* A quoted key may hold any byte; the message must stay one line. */
	for (size_t i = old; i < p->path_len; i++)
		if ((unsigned char)p->path[i] < 0x20 || p->path[i] == 0x7f)
			p->path[i] = '?';
	return old;
}

static void path_pop(struct parse *p, size_t old)
{
	p->path_len = old;
	p->path[old] = '\0';
}

/* is_null: an empty value ("key:" alone) reads as a null plain scalar. */
static int is_null(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static const char *got(const yaml_node_t *n, char *out, size_t out_len)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	return quote(out, out_len, (const char *)n->data.scalar.value, n->data.scalar.length);
}

static int expected(struct parse *p, const yaml_node_t *n, const char *what)
{
	char g[GOT_CHARS_MAX + 8];

	return perr(p, node_line(n), "expected %s, got %s", what, got(n, g, sizeof(g)));
}

static int bad_value(struct parse *p, const struct field *f, const yaml_node_t *n)
{
	char e[128];

	return expected(p, n, expectation(f, e, sizeof(e)));
}

/* scalar returns the node's text, or NULL after reporting what the field
 * wanted; a NUL inside the value counts as garbage. */
static const char *scalar(struct parse *p, const struct field *f, const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE ||
	    strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
		bad_value(p, f, n);
		return NULL;
	}
	return (const char *)n->data.scalar.value;
}

static int parse_mapping(struct parse *p, const yaml_node_t *map, const struct table *t, void *base,
                         uint32_t *item_line);

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"true", "yes",  "on",  "True", "Yes",
	                                  "On",   "TRUE", "YES", "ON"};
	static const char *const no[] = {"false", "no",    "off", "False", "No",
	                                 "Off",   "FALSE", "NO",  "OFF"};

	for (size_t i = 0; i < RLB_ARRAY_LEN(yes); i++) {
		if (strcmp(v, yes[i]) == 0)
			return *out = true, 1;
		if (strcmp(v, no[i]) == 0)
			return *out = false, 1;
	}
	return 0;
}

/* parse_number reads the integer, size and duration kinds and checks bounds
 * here, where the value's line is known. */
static int parse_number(struct parse *p, const struct field *f, const yaml_node_t *n, void *base)
{
	const char *v = scalar(p, f, n);
	uint64_t x;
	int ok;

	if (v == NULL)
		return 0;
	if (f->kind == F_SIZE)
		ok = config_parse_size(v, &x);
	else if (f->kind == F_DURATION)
		ok = config_parse_duration_ms(v, &x);
	else
		ok = parse_uint(v, &x);
	if (!ok)
		return bad_value(p, f, n);
	if (!in_range(f, x)) {
		char e[128];
		return expected(p, n, range_text(f, e, sizeof(e)));
	}
	store_uint(base, f, x);
	return 1;
}

/* parse_text reads the string kinds into their fixed-size fields. */
static int parse_text(struct parse *p, const struct field *f, const yaml_node_t *n, void *base)
{
	const char *v = scalar(p, f, n);
	char *at = (char *)base + f->offset;
	size_t len;
	int ok = 0;

	if (v == NULL)
		return 0;
	len = strlen(v);
	switch (f->kind) {
	case F_POOL_NAME:
	case F_POOL_REF:
		ok = valid_pool_name(v, len);
		break;
	case F_HOST:
		ok = valid_host(v, len);
		break;
	case F_PATH:
		ok = valid_path(v, len);
		break;
	case F_METHOD:
		ok = strcmp(v, "GET") == 0 || strcmp(v, "HEAD") == 0 || strcmp(v, "OPTIONS") == 0;
		break;
	case F_TOKEN:
	case F_TEXT:
		ok = len > 0 && len < (f->kind == F_TOKEN ? 256 : CONFIG_PATH_MAX);
		for (size_t i = 0; ok && i < len; i++)
			ok = v[i] > 0x20 && v[i] < 0x7f;
		break;
	case F_FILE:
	case F_PATTERN:
		ok = len > 0 && len < CONFIG_PATH_MAX;
		for (size_t i = 0; ok && i < len; i++)
			ok = (unsigned char)v[i] >= 0x20 && v[i] != 0x7f &&
			     (f->kind == F_FILE || (unsigned char)v[i] < 0x80);
		break;
	default:
		RLB_ASSERT(0);
	}
	if (!ok)
		return bad_value(p, f, n);
	memcpy(at, v, len + 1);
	if (f->kind == F_HOST) /* Host matching is case-insensitive (RFC 9110 §4.2.3). */
		for (size_t i = 0; i < len; i++)
			at[i] = (at[i] >= 'A' && at[i] <= 'Z') ? (char)(at[i] - 'A' + 'a') : at[i];
	return 1;
}

const char *const config_algorithm_names[CONFIG_ALG_COUNT] = {
        "round_robin", "weighted_round_robin", "least_conn", "weighted_least_conn",
        "random_two",  "least_time",           "ip_hash",    "hash",
        "resource",
};

/* parse_hash_key reads "client_ip", "uri", "header:NAME" or "cookie:NAME"
 * into the pool. NAME is a token of at most 63 characters. */
static int parse_hash_key(const char *v, struct config_pool *pool)
{
	static const struct {
		const char *prefix;
		enum config_hash_key key;
	} named[] = {{"header:", CONFIG_HASH_HEADER}, {"cookie:", CONFIG_HASH_COOKIE}};
	size_t len;

	pool->hash_key_name[0] = '\0';
	if (strcmp(v, "client_ip") == 0)
		return pool->hash_key = CONFIG_HASH_CLIENT_IP, 1;
	if (strcmp(v, "uri") == 0)
		return pool->hash_key = CONFIG_HASH_URI, 1;
	for (size_t i = 0; i < RLB_ARRAY_LEN(named); i++) {
		size_t pl = strlen(named[i].prefix);

		if (strncmp(v, named[i].prefix, pl) != 0)
			continue;
		len = strlen(v + pl);
		if (len == 0 || len >= sizeof(pool->hash_key_name) ||
		    strpbrk(v + pl, " \t:;,=") != NULL)
			return 0;
		memcpy(pool->hash_key_name, v + pl, len + 1);
		return pool->hash_key = named[i].key, 1;
	}
	return 0;
}

/* parse_expect reads "200", "200-399" or a comma list of those. */
static int parse_expect(const char *v, struct config_health *h)
{
	const char *p = v;

	h->num_expect = 0;
	while (*p != '\0') {
		char *end;
		unsigned long lo = strtoul(p, &end, 10), hi;

		if (end == p || h->num_expect == CONFIG_EXPECT_MAX)
			return 0;
		hi = lo;
		p = end;
		if (*p == '-') {
			hi = strtoul(p + 1, &end, 10);
			if (end == p + 1)
				return 0;
			p = end;
		}
		if (lo < 100 || hi > 599 || lo > hi)
			return 0;
		h->expect_lo[h->num_expect] = (uint16_t)lo;
		h->expect_hi[h->num_expect] = (uint16_t)hi;
		h->num_expect++;
		while (*p == ' ')
			p++;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return 0;
		while (*p == ' ')
			p++;
	}
	return h->num_expect > 0;
}

/* parse_rate_key reads "client_ip", "route" or "header:NAME". */
static int parse_rate_key(const char *v, struct config_rate_limit *rl)
{
	size_t len;

	rl->key_name[0] = '\0';
	if (strcmp(v, "client_ip") == 0)
		return rl->key = CONFIG_RATE_CLIENT_IP, 1;
	if (strcmp(v, "route") == 0)
		return rl->key = CONFIG_RATE_ROUTE, 1;
	if (strncmp(v, "header:", 7) != 0)
		return 0;
	len = strlen(v + 7);
	if (len == 0 || len >= sizeof(rl->key_name) || strpbrk(v + 7, " \t:;,=") != NULL)
		return 0;
	memcpy(rl->key_name, v + 7, len + 1);
	rl->key = CONFIG_RATE_HEADER;
	return 1;
}

/* parse_word reads the kinds spelled as fixed words: bool, workers, log
 * level, algorithm, hash key and the access-log path. */
static int parse_word(struct parse *p, const struct field *f, const yaml_node_t *n, void *base)
{
	static const char *const levels[] = {"error", "warn", "info", "debug"};
	const char *v = scalar(p, f, n);
	char *at = (char *)base + f->offset;
	uint64_t x;

	if (v == NULL)
		return 0;
	switch (f->kind) {
	case F_BOOL:
		return parse_bool(v, (bool *)(void *)at) || bad_value(p, f, n);
	case F_WORKERS:
		if (strcmp(v, "auto") == 0)
			x = 0;
		else if (!parse_uint(v, &x) || x < 1 || x > f->max)
			return bad_value(p, f, n);
		store_uint(base, f, x);
		return 1;
	case F_LOG_LEVEL:
		for (int i = 0; i < (int)RLB_ARRAY_LEN(levels); i++)
			if (strcmp(v, levels[i]) == 0)
				return *(int *)(void *)at = i, 1;
		return bad_value(p, f, n);
	case F_ALGORITHM:
		for (int i = 0; i < CONFIG_ALG_COUNT; i++)
			if (strcmp(v, config_algorithm_names[i]) == 0)
				return *(enum config_algorithm *)(void *)at =
				               (enum config_algorithm)i,
				                                       1;
		return bad_value(p, f, n);
	case F_HASH_KEY:
		return parse_hash_key(v, base) || bad_value(p, f, n);
	case F_CHECK_TYPE:
		if (strcmp(v, "http") != 0 && strcmp(v, "tcp") != 0)
			return bad_value(p, f, n);
		*(uint32_t *)(void *)at =
		        strcmp(v, "tcp") == 0 ? CONFIG_CHECK_TCP : CONFIG_CHECK_HTTP;
		return 1;
	case F_EXPECT:
		return parse_expect(v, base) || bad_value(p, f, n);
	case F_TLS_VERSION:
		if (strcmp(v, "1.2") != 0 && strcmp(v, "1.3") != 0)
			return bad_value(p, f, n);
		*(uint32_t *)(void *)at = strcmp(v, "1.3") == 0 ? 0x0304 : 0x0303;
		return 1;
	case F_VERIFY:
		if (strcmp(v, "required") != 0 && strcmp(v, "optional") != 0)
			return bad_value(p, f, n);
		*(uint32_t *)(void *)at = strcmp(v, "optional") == 0 ? CONFIG_VERIFY_OPTIONAL
		                                                     : CONFIG_VERIFY_REQUIRED;
		return 1;
	case F_RATE: {
		struct config_rate_limit *rl = base;
		if (strlen(v) >= sizeof(rl->rate_text) || !rl_parse_rate(v, &rl->interval_us))
			return bad_value(p, f, n);
		memcpy(rl->rate_text, v, strlen(v) + 1);
		return 1;
	}
	case F_RATE_KEY:
		return parse_rate_key(v, base) || bad_value(p, f, n);
	case F_LOG_PATH: {
		struct config_access_log *log = base;
		size_t len = strlen(v);
		if (len == 0 || len >= sizeof(log->path))
			return bad_value(p, f, n);
		log->enabled = strcmp(v, "off") != 0;
		memcpy(log->path, log->enabled ? v : "", log->enabled ? len + 1 : 1);
		return 1;
	}
	default:
		RLB_ASSERT(0);
		return 0;
	}
}

/* seq_items checks that n is a list (an empty value counts as an empty list)
 * and returns its items and count. */
static int seq_items(struct parse *p, const struct field *f, const yaml_node_t *n,
                     yaml_node_item_t **out_items, size_t *out_num)
{
	if (n->type == YAML_SEQUENCE_NODE) {
		*out_items = n->data.sequence.items.start;
		*out_num = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
		return 1;
	}
	if (is_null(n)) {
		*out_items = NULL;
		*out_num = 0;
		return 1;
	}
	return bad_value(p, f, n);
}

/* parse_item reads one list entry: a mapping through its table, or, where
 * the table allows the shorthand, a plain "HOST:PORT" scalar. */
static int parse_item(struct parse *p, const yaml_node_t *n, const struct table *t, void *item,
                      uint32_t *item_line)
{
	if (n->type == YAML_SCALAR_NODE && t->fields[0].kind == F_ADDR && !is_null(n)) {
		/* Name the key the shorthand stands for, as the long form would. */
		size_t old = path_push(p, t->fields[0].key, 0);
		const char *v = scalar(p, &t->fields[0], n);
		void *addr = (char *)item + t->fields[0].offset;
		if (v == NULL || !config_parse_addr(v, addr))
			return v == NULL ? 0 : bad_value(p, &t->fields[0], n);
		path_pop(p, old);
		*item_line = node_line(n);
		return 1;
	}
	if (n->type != YAML_MAPPING_NODE)
		return expected(
		        p, n, t->fields[0].kind == F_ADDR ? "HOST:PORT or a mapping" : "a mapping");
	return parse_mapping(p, n, t, item, item_line);
}

static int too_many(struct parse *p, const yaml_node_t *n, const char *what, size_t max)
{
	return perr(p, node_line(n), "too many %s (at most %zu)", what, max);
}

static int parse_listeners(struct parse *p, const struct field *f, const yaml_node_t *n)
{
	struct config *cfg = p->cfg;
	yaml_node_item_t *items = NULL;
	size_t num = 0;

	if (!seq_items(p, f, n, &items, &num))
		return 0;
	for (size_t i = 0; i < num; i++) {
		yaml_node_t *item = yaml_document_get_node(p->doc, items[i]);
		size_t old = path_push(p, NULL, i);
		if (cfg->num_listeners == CONFIG_LISTENERS_MAX)
			return too_many(p, item, "listeners", CONFIG_LISTENERS_MAX);
		struct config_listener *l = &cfg->listeners[cfg->num_listeners++];
		memset(l, 0, sizeof(*l));
		l->backlog = 4096;
		l->http2 = true;
		if (!parse_item(p, item, &listener_table, l, &l->_line))
			return 0;
		path_pop(p, old);
	}
	return 1;
}

static int parse_backends(struct parse *p, const struct field *f, const yaml_node_t *n,
                          struct config_pool *pool)
{
	yaml_node_item_t *items = NULL;
	size_t num = 0;

	if (!seq_items(p, f, n, &items, &num))
		return 0;
	if (num == 0)
		return perr(p, node_line(n), "at least one backend is required");
	if (num > CONFIG_BACKENDS_MAX)
		return too_many(p, yaml_document_get_node(p->doc, items[CONFIG_BACKENDS_MAX]),
		                "backends in a pool", CONFIG_BACKENDS_MAX);
	pool->backends = rlb_xcalloc(num, sizeof(*pool->backends));
	for (size_t i = 0; i < num; i++) {
		yaml_node_t *item = yaml_document_get_node(p->doc, items[i]);
		size_t old = path_push(p, NULL, i);
		struct config_backend *b = &pool->backends[pool->num_backends++];
		b->weight = 1;
		/* A backend's own health_check replaces its pool's; the keys it
		 * leaves out take the defaults, whatever the pool says. */
		health_defaults(&b->health);
		if (!parse_item(p, item, &backend_table, b, &b->_line))
			return 0;
		path_pop(p, old);
	}
	return 1;
}

void config_tls_defaults(struct config_tls *t)
{
	memset(t, 0, sizeof(*t));
	t->min_version = 0x0303;
	snprintf(t->ciphers, sizeof(t->ciphers), "%s", CONFIG_TLS_CIPHERS);
	snprintf(t->groups, sizeof(t->groups), "%s", CONFIG_TLS_GROUPS);
	t->verify_client = CONFIG_VERIFY_REQUIRED;
	t->session_tickets = true;
	t->ticket_rotate_ms = 3600 * 1000;
}

/* parse_tls reads a listener's tls section into a section it allocates. */
static int parse_tls(struct parse *p, const struct field *f, const yaml_node_t *n, void *base)
{
	struct config_listener *l = base;

	if (n->type != YAML_MAPPING_NODE)
		return bad_value(p, f, n);
	RLB_ASSERT(l->tls == NULL);
	l->tls = rlb_xcalloc(1, sizeof(*l->tls));
	config_tls_defaults(l->tls);
	l->tls->_line = node_line(n);
	return parse_mapping(p, n, &tls_table, l->tls, NULL);
}

static int parse_certs(struct parse *p, const struct field *f, const yaml_node_t *n,
                       struct config_tls *t)
{
	yaml_node_item_t *items = NULL;
	size_t num = 0;

	if (!seq_items(p, f, n, &items, &num))
		return 0;
	if (num == 0)
		return perr(p, node_line(n), "at least one certificate is required");
	if (num > CONFIG_CERTS_MAX)
		return too_many(p, yaml_document_get_node(p->doc, items[CONFIG_CERTS_MAX]),
		                "certificates", CONFIG_CERTS_MAX);
	t->certs = rlb_xcalloc(num, sizeof(*t->certs));
	for (size_t i = 0; i < num; i++) {
		yaml_node_t *item = yaml_document_get_node(p->doc, items[i]);
		size_t old = path_push(p, NULL, i);
		struct config_cert *c = &t->certs[t->num_certs++];
		if (item->type != YAML_MAPPING_NODE)
			return expected(p, item, "a mapping");
		if (!parse_mapping(p, item, &cert_table, c, &c->_line))
			return 0;
		path_pop(p, old);
	}
	return 1;
}

static int parse_pools(struct parse *p, const struct field *f, const yaml_node_t *n)
{
	struct config *cfg = p->cfg;
	yaml_node_item_t *items = NULL;
	size_t num = 0;

	if (!seq_items(p, f, n, &items, &num))
		return 0;
	for (size_t i = 0; i < num; i++) {
		yaml_node_t *item = yaml_document_get_node(p->doc, items[i]);
		size_t old = path_push(p, NULL, i);
		if (cfg->num_pools == CONFIG_POOLS_MAX)
			return too_many(p, item, "pools", CONFIG_POOLS_MAX);
		struct config_pool *pool = &cfg->pools[cfg->num_pools++];
		pool_defaults(pool);
		if (item->type != YAML_MAPPING_NODE)
			return expected(p, item, "a mapping");
		if (!parse_mapping(p, item, &pool_table, pool, &pool->_line))
			return 0;
		path_pop(p, old);
	}
	return 1;
}

/* parse_list_of reads a list of mappings through table t into a new array
 * of elements of `size` bytes, each with its _line at `line_off`; *count
 * counts the elements as they are begun, so config_free releases a list
 * that failed half-way. The caller stores *out whatever the result. */
static int parse_list_of(struct parse *p, const struct field *f, const yaml_node_t *n,
                         const struct table *t, size_t max, const char *what, size_t size,
                         size_t line_off, void **out, size_t *count)
{
	yaml_node_item_t *items = NULL;
	size_t num = 0;

	if (!seq_items(p, f, n, &items, &num))
		return 0;
	if (num > max)
		return too_many(p, yaml_document_get_node(p->doc, items[max]), what, max);
	if (num == 0)
		return 1;
	*out = rlb_xcalloc(num, size);
	for (size_t i = 0; i < num; i++) {
		yaml_node_t *item = yaml_document_get_node(p->doc, items[i]);
		size_t old = path_push(p, NULL, i);
		char *e = (char *)*out + (*count)++ * size;
		if (item->type != YAML_MAPPING_NODE)
			return expected(p, item, "a mapping");
		if (!parse_mapping(p, item, t, e, (uint32_t *)(void *)(e + line_off)))
			return 0;
		path_pop(p, old);
	}
	return 1;
}

static int parse_routes(struct parse *p, const struct field *f, const yaml_node_t *n)
{
	void *arr = NULL;
	int ok = parse_list_of(p, f, n, &route_table, CONFIG_ROUTES_MAX, "routes",
	                       sizeof(struct config_route), offsetof(struct config_route, _line),
	                       &arr, &p->cfg->num_routes);

	p->cfg->routes = arr;
	return ok;
}

/* parse_nested reads the optional sections that an empty value turns on
 * with their defaults: agent, admin, passive_health, health_check. */
static int parse_nested(struct parse *p, const struct field *f, const yaml_node_t *n, void *base)
{
	switch ((enum field_kind)f->kind) {
	case F_AGENT: {
		struct config_agent *a = (struct config_agent *)(void *)((char *)base + f->offset);

		a->enabled = true;
		a->_line = node_line(n);
		if (is_null(n))
			return 1;
		if (n->type != YAML_MAPPING_NODE)
			return bad_value(p, f, n);
		return parse_mapping(p, n, &agent_table, a, NULL);
	}
	case F_ADMIN: {
		struct config_admin *a = (struct config_admin *)(void *)((char *)base + f->offset);

		a->enabled = true;
		if (is_null(n))
			return 1;
		if (n->type != YAML_MAPPING_NODE)
			return bad_value(p, f, n);
		return parse_mapping(p, n, &admin_table, a, NULL);
	}
	case F_PASSIVE:
		if (is_null(n))
			return 1;
		if (n->type != YAML_MAPPING_NODE)
			return bad_value(p, f, n);
		return parse_mapping(p, n, &passive_table, (char *)base + f->offset, NULL);
	case F_HEALTH: {
		struct config_health *h =
		        (struct config_health *)(void *)((char *)base + f->offset);

		h->enabled = true;
		h->_line = node_line(n);
		if (is_null(n))
			return 1;
		if (n->type != YAML_MAPPING_NODE)
			return bad_value(p, f, n);
		return parse_mapping(p, n, &health_table, h, NULL);
	}
	default:
		RLB_ASSERT(0);
		return 0;
	}
}

/* parse_cache reads a route's cache: "on"/"off" (defaults), or a mapping. */
static int parse_cache(struct parse *p, const struct field *f, const yaml_node_t *n, void *base)
{
	struct config_cache *c = (struct config_cache *)(void *)((char *)base + f->offset);
	bool on;

	config_cache_defaults(c);
	c->_line = node_line(n);
	if (n->type == YAML_SCALAR_NODE && !is_null(n)) {
		if (!parse_bool((const char *)n->data.scalar.value, &on))
			return bad_value(p, f, n);
		c->enabled = on;
		return 1;
	}
	c->enabled = true;
	if (is_null(n))
		return 1;
	if (n->type != YAML_MAPPING_NODE)
		return bad_value(p, f, n);
	return parse_mapping(p, n, &cache_table, c, NULL);
}

/* parse_protection reads a route's rate_limit or filters mapping. */
static int parse_protection(struct parse *p, const struct field *f, const yaml_node_t *n,
                            void *base)
{
	void *at = (char *)base + f->offset;

	if (f->kind == F_FILTERS && is_null(n))
		return 1; /* "filters:" alone: none */
	if (n->type != YAML_MAPPING_NODE)
		return bad_value(p, f, n);
	if (f->kind == F_FILTERS)
		return parse_mapping(p, n, &filter_table, at, NULL);
	struct config_rate_limit *rl = at;
	rl->enabled = true;
	rl->status = 429;
	rl->_line = node_line(n);
	return parse_mapping(p, n, &rate_limit_table, rl, NULL);
}

/* parse_rules reads a filters section's list of rules. */
static int parse_rules(struct parse *p, const struct field *f, const yaml_node_t *n, void *base)
{
	struct config_filter *fl = base;
	void *arr = NULL;
	int ok = parse_list_of(p, f, n, &rule_table, CONFIG_FILTER_RULES_MAX, "rules",
	                       sizeof(struct config_filter_rule),
	                       offsetof(struct config_filter_rule, _line), &arr, &fl->num_rules);

	fl->rules = arr;
	return ok;
}

/* list_append adds one token to a comma-joined list of `cap` bytes. */
static int list_append(char *at, size_t cap, const char *v)
{
	size_t used = strlen(at), len = strlen(v);

	if (len == 0 || used + len + 2 > cap)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (v[i] <= 0x20 || v[i] >= 0x7f || v[i] == ',')
			return 0;
	if (used > 0)
		at[used++] = ',';
	memcpy(at + used, v, len + 1);
	return 1;
}

/* parse_list reads a list of tokens: a YAML list, or one scalar with the
 * tokens separated by commas and spaces. An empty list is allowed. */
static int parse_list(struct parse *p, const struct field *f, const yaml_node_t *n, void *base)
{
	char *at = (char *)base + f->offset;
	size_t cap = f->width;
	char tok[CONFIG_PATH_MAX];

	at[0] = '\0';
	if (n->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			yaml_node_t *e = yaml_document_get_node(p->doc, *it);
			if (e->type != YAML_SCALAR_NODE ||
			    !list_append(at, cap, (const char *)e->data.scalar.value))
				return bad_value(p, f, e);
		}
		return 1;
	}
	if (is_null(n))
		return 1;
	if (n->type != YAML_SCALAR_NODE)
		return bad_value(p, f, n);
	for (const char *v = (const char *)n->data.scalar.value; *v != '\0';) {
		size_t len = 0;

		while (*v == ' ' || *v == ',' || *v == '\t')
			v++;
		while (v[len] != '\0' && v[len] != ' ' && v[len] != ',' && v[len] != '\t')
			len++;
		if (len == 0)
			break;
		if (len >= sizeof(tok))
			return bad_value(p, f, n);
		memcpy(tok, v, len);
		tok[len] = '\0';
		if (!list_append(at, cap, tok))
			return bad_value(p, f, n);
		v += len;
	}
	return 1;
}

static int parse_field(struct parse *p, const struct field *f, const yaml_node_t *n, void *base)
{
	switch ((enum field_kind)f->kind) {
	case F_UINT:
	case F_POW2:
	case F_SIZE:
	case F_DURATION:
		return parse_number(p, f, n, base);
	case F_ADDR: {
		const char *v = scalar(p, f, n);
		if (v == NULL)
			return 0;
		return config_parse_addr(
		               v, (struct config_addr *)(void *)((char *)base + f->offset)) ||
		       bad_value(p, f, n);
	}
	case F_POOL_NAME:
	case F_POOL_REF:
	case F_HOST:
	case F_PATH:
	case F_TOKEN:
	case F_METHOD:
	case F_FILE:
	case F_TEXT:
	case F_PATTERN:
		return parse_text(p, f, n, base);
	case F_TLS_VERSION:
	case F_VERIFY:
		return parse_word(p, f, n, base);
	case F_TLS:
		return parse_tls(p, f, n, base);
	case F_CACHE:
		return parse_cache(p, f, n, base);
	case F_LIST:
		return parse_list(p, f, n, base);
	case F_RATE:
	case F_RATE_KEY:
		return parse_word(p, f, n, base);
	case F_RATE_LIMIT:
	case F_FILTERS:
		return parse_protection(p, f, n, base);
	case F_RULES:
		return parse_rules(p, f, n, base);
	case F_CERTS:
		return parse_certs(p, f, n, base);
	case F_BOOL:
	case F_WORKERS:
	case F_LOG_LEVEL:
	case F_ALGORITHM:
	case F_HASH_KEY:
	case F_CHECK_TYPE:
	case F_EXPECT:
	case F_LOG_PATH:
		return parse_word(p, f, n, base);
	case F_AGENT:
	case F_ADMIN:
	case F_PASSIVE:
	case F_HEALTH:
		return parse_nested(p, f, n, base);
	case F_SECTION:
		if (is_null(n))
			return 1;
		if (n->type != YAML_MAPPING_NODE)
			return bad_value(p, f, n);
		return parse_mapping(p, n, f->sub, (char *)base + f->offset, NULL);
	case F_LISTENERS:
		return parse_listeners(p, f, n);
	case F_POOLS:
		return parse_pools(p, f, n);
	case F_ROUTES:
		return parse_routes(p, f, n);
	case F_BACKENDS:
		return parse_backends(p, f, n, base);
	}
	RLB_ASSERT(0);
	return 0;
}

/* parse_mapping walks one mapping against table t, filling base. Unknown and
 * repeated keys are errors: libyaml keeps both copies of a repeated key, and
 * silently taking one would hide a typo. */
static int parse_mapping(struct parse *p, const yaml_node_t *map, const struct table *t, void *base,
                         uint32_t *item_line)
{
	uint64_t seen = 0;

	RLB_ASSERT(map->type == YAML_MAPPING_NODE);
	RLB_ASSERT(t->num_fields < 64);
	for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(p->doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(p->doc, pair->value);
		char g[GOT_CHARS_MAX + 8];
		if (k->type != YAML_SCALAR_NODE)
			return perr(p, node_line(k), "expected a key name, got %s",
			            got(k, g, sizeof(g)));
		const char *key = (const char *)k->data.scalar.value;
		int i = find_field(t, key);
		size_t old = path_push(p, key, 0);
		if (i < 0)
			return perr(p, node_line(k), "unknown key");
		if (seen & (1ULL << i))
			return perr(p, node_line(k), "duplicate key");
		seen |= 1ULL << i;
		if (!parse_field(p, &t->fields[i], v, base))
			return 0;
		if (t->line_base >= 0)
			p->cfg->_key_lines[t->line_base + i] = node_line(k);
		if ((t->fields[i].flags & FL_LINE) && item_line != NULL)
			*item_line = node_line(k);
		path_pop(p, old);
	}
	for (size_t i = 0; i < t->num_fields; i++) {
		if ((t->fields[i].flags & FL_REQUIRED) && !(seen & (1ULL << i))) {
			size_t old = path_push(p, t->fields[i].key, 0);
			perr(p, node_line(map), "required key is missing");
			path_pop(p, old);
			return 0;
		}
	}
	return 1;
}

/* ---- loading ---- */

/* syntax_error reports libyaml's own message and line. A reader error (bad
 * UTF-8) carries only a byte offset, so its line is counted from the text. */
static int syntax_error(struct parse *p, const yaml_parser_t *parser, const char *yaml, size_t len)
{
	uint32_t line = (uint32_t)parser->problem_mark.line + 1;
	const char *problem = parser->problem ? parser->problem : "malformed YAML";

	if (parser->error == YAML_READER_ERROR) {
		line = 1;
		for (size_t i = 0; i < parser->problem_offset && i < len; i++)
			line += yaml[i] == '\n';
	}
	if (parser->context != NULL)
		return perr(p, line, "syntax error: %s (%s)", problem, parser->context);
	return perr(p, line, "syntax error: %s", problem);
}

/* single_document refuses anything after the first document: a stray
 * "---" would otherwise hide the rest of the file from validation. */
static int single_document(struct parse *p, yaml_parser_t *parser, const char *yaml, size_t len)
{
	yaml_document_t next;
	yaml_node_t *root;
	uint32_t line;

	if (!yaml_parser_load(parser, &next))
		return syntax_error(p, parser, yaml, len);
	root = yaml_document_get_root_node(&next);
	line = root != NULL ? node_line(root) : 0;
	yaml_document_delete(&next);
	if (root == NULL)
		return 1;
	return perr(p, line, "---: a configuration file holds one YAML document");
}

int config_parse_string(struct config *cfg, const char *name, const char *yaml, size_t len,
                        char *err, size_t err_len)
{
	struct parse p = {.cfg = cfg, .err = err, .err_len = err_len};
	yaml_parser_t parser;
	yaml_document_t doc;
	int ok;

	config_defaults(cfg);
	snprintf(cfg->source, sizeof(cfg->source), "%s", name);
	if (!yaml_parser_initialize(&parser))
		return errorf(err, err_len, cfg->source, 0, NULL, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, &doc)) {
		ok = syntax_error(&p, &parser, yaml, len);
		yaml_parser_delete(&parser);
		return ok;
	}
	p.doc = &doc;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	cfg->_key_lines[LINE_ROOT] = root != NULL ? node_line(root) : 1;
	if (root == NULL || is_null(root))
		ok = 1; /* an empty file: all defaults, validation names what is missing */
	else if (root->type != YAML_MAPPING_NODE)
		ok = expected(&p, root, "a mapping of top-level keys");
	else
		ok = parse_mapping(&p, root, &top_table, cfg, NULL);
	yaml_document_delete(&doc);
	if (ok && root != NULL)
		ok = single_document(&p, &parser, yaml, len);
	yaml_parser_delete(&parser);
	return ok;
}

int config_load_string(struct config *cfg, const char *name, const char *yaml, size_t len,
                       char *err, size_t err_len)
{
	return config_parse_string(cfg, name, yaml, len, err, err_len) &&
	       config_validate(cfg, err, err_len);
}

/* read_file reads all of `path` (a FIFO such as <(...) too) into a new buffer. */
static int read_file(const char *path, char **out, size_t *out_len, char *err, size_t err_len)
{
	size_t len = 0, cap = 4096;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errorf(err, err_len, path, 0, NULL, "cannot open: %s", strerror(errno));
	buf = rlb_xcalloc(1, cap);
	for (;;) {
		if (len == cap) {
			if (cap >= FILE_BYTES_MAX) {
				close(fd);
				free(buf);
				return errorf(err, err_len, path, 0, NULL,
				              "too large (at most 16MiB)");
			}
			char *bigger = rlb_xcalloc(1, cap * 2);
			memcpy(bigger, buf, len);
			free(buf);
			buf = bigger;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			free(buf);
			return errorf(err, err_len, path, 0, NULL, "cannot read: %s", strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*out = buf;
	*out_len = len;
	return 1;
}

int config_parse_file(struct config *cfg, const char *path, char *err, size_t err_len)
{
	char *buf = NULL;
	size_t len = 0;
	int ok;

	config_defaults(cfg);
	snprintf(cfg->source, sizeof(cfg->source), "%s", path);
	if (!read_file(path, &buf, &len, err, err_len))
		return 0;
	ok = config_parse_string(cfg, path, buf, len, err, err_len);
	free(buf);
	return ok;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t err_len)
{
	return config_parse_file(cfg, path, err, err_len) && config_validate(cfg, err, err_len);
}

/* ---- quick mode ---- */

int config_add_listener(struct config *cfg, const char *addr, char *err, size_t err_len)
{
	struct config_addr a;

	if (!config_parse_addr(addr, &a))
		return errorf(err, err_len, "command line", 0, "--listen",
		              "expected HOST:PORT with a numeric IP, got \"%s\"", addr);
	if (cfg->num_listeners == CONFIG_LISTENERS_MAX)
		return errorf(err, err_len, "command line", 0, "--listen",
		              "too many listeners (at most %d)", CONFIG_LISTENERS_MAX);
	struct config_listener *l = &cfg->listeners[cfg->num_listeners++];
	memset(l, 0, sizeof(*l));
	l->addr = a;
	l->backlog = 4096;
	l->http2 = true;
	return 1;
}

int config_add_backend(struct config *cfg, const char *addr, char *err, size_t err_len)
{
	struct config_pool *pool = NULL;
	struct config_addr a;

	if (!config_parse_addr(addr, &a))
		return errorf(err, err_len, "command line", 0, "--backend",
		              "expected HOST:PORT with a numeric IP, got \"%s\"", addr);
	for (size_t i = 0; i < cfg->num_pools && pool == NULL; i++)
		if (strcmp(cfg->pools[i].name, "default") == 0)
			pool = &cfg->pools[i];
	if (pool == NULL) {
		if (cfg->num_pools == CONFIG_POOLS_MAX)
			return errorf(err, err_len, "command line", 0, "--backend",
			              "too many pools (at most %d)", CONFIG_POOLS_MAX);
		pool = &cfg->pools[cfg->num_pools++];
		free(pool->backends);
		pool_defaults(pool);
		memcpy(pool->name, "default", sizeof("default"));
	}
	if (pool->num_backends >= CONFIG_BACKENDS_MAX)
		return errorf(err, err_len, "command line", 0, "--backend",
		              "too many backends in a pool (at most %d)", CONFIG_BACKENDS_MAX);
	/* Grow by one: quick mode adds a handful, once, at start-up. */
	struct config_backend *b = rlb_xcalloc(pool->num_backends + 1, sizeof(*b));
	if (pool->num_backends > 0)
		memcpy(b, pool->backends, pool->num_backends * sizeof(*b));
	free(pool->backends);
	pool->backends = b;
	b[pool->num_backends].addr = a;
	b[pool->num_backends].weight = 1;
	pool->num_backends++;
	return 1;
}

int config_add_cache(struct config *cfg, const char *memory, char *err, size_t err_len)
{
	uint64_t bytes;

	if (!config_parse_size(memory, &bytes) || bytes < 64 * KIB)
		return errorf(err, err_len, "command line", 0, "--cache",
		              "expected a size of at least 64KiB like 256MiB, got \"%s\"", memory);
	if (cfg->num_routes == 0) {
		if (cfg->num_pools == 0)
			return errorf(err, err_len, "command line", 0, "--cache",
			              "needs a --backend to cache for");
		cfg->routes = rlb_xcalloc(1, sizeof(*cfg->routes));
		cfg->num_routes = 1;
		snprintf(cfg->routes[0].pool, sizeof(cfg->routes[0].pool), "%s",
		         cfg->pools[0].name);
	}
	for (size_t i = 0; i < cfg->num_routes; i++) {
		struct config_cache *c = &cfg->routes[i].cache;

		config_cache_defaults(c);
		c->enabled = true;
		c->memory = bytes;
		if (c->max_object > bytes)
			c->max_object = bytes;
	}
	return 1;
}

int config_add_tls(struct config *cfg, const char *cert, const char *key, char *err, size_t err_len)
{
	if (strlen(cert) == 0 || strlen(cert) >= CONFIG_PATH_MAX)
		return errorf(err, err_len, "command line", 0, "--cert",
		              "expected a file name of 1 to %d characters", CONFIG_PATH_MAX - 1);
	if (strlen(key) == 0 || strlen(key) >= CONFIG_PATH_MAX)
		return errorf(err, err_len, "command line", 0, "--key",
		              "expected a file name of 1 to %d characters", CONFIG_PATH_MAX - 1);
	for (size_t i = 0; i < cfg->num_listeners; i++) {
		struct config_listener *l = &cfg->listeners[i];
		if (l->tls != NULL)
			continue;
		l->tls = rlb_xcalloc(1, sizeof(*l->tls));
		config_tls_defaults(l->tls);
		l->tls->certs = rlb_xcalloc(1, sizeof(*l->tls->certs));
		l->tls->num_certs = 1;
		snprintf(l->tls->certs[0].cert, CONFIG_PATH_MAX, "%s", cert);
		snprintf(l->tls->certs[0].key, CONFIG_PATH_MAX, "%s", key);
	}
	return 1;
}

/* ---- validation ---- */

/* vctx carries what config_validate's messages need. */
struct vctx {
	struct config *cfg;
	char *err;
	size_t err_len;
};

/* key_line returns the line of a section key, else of the top-level mapping
 * (the place a missing key would go), else 0 for the command line. */
static uint32_t key_line(const struct config *cfg, const struct table *t, const char *key)
{
	int i = find_field(t, key);

	RLB_ASSERT(i >= 0 && t->line_base >= 0);
	return cfg->_key_lines[t->line_base + i];
}

static uint32_t or_root(const struct config *cfg, uint32_t line)
{
	return line != 0 ? line : cfg->_key_lines[LINE_ROOT];
}

uint32_t config_key_line(const struct config *cfg, const char *section, const char *key)
{
	int i = find_field(&top_table, section);
	const struct table *t = i >= 0 ? top_fields[i].sub : NULL;
	uint32_t line;

	if (t == NULL || find_field(t, key) < 0)
		return cfg->_key_lines[LINE_ROOT];
	/* A key the section leaves out: the section's own line. */
	line = key_line(cfg, t, key);
	return or_root(cfg, line != 0 ? line : cfg->_key_lines[top_table.line_base + i]);
}

/* check_fields re-checks the numeric bounds of a table's fields, for a
 * configuration built by code rather than read from a file. */
static int check_fields(struct vctx *v, const struct table *t, const void *base, const char *prefix,
                        uint32_t item_line)
{
	for (size_t i = 0; i < t->num_fields; i++) {
		const struct field *f = &t->fields[i];
		if (f->kind != F_UINT && f->kind != F_POW2 && f->kind != F_SIZE &&
		    f->kind != F_DURATION)
			continue;
		uint64_t x = load_uint(base, f);
		if (in_range(f, x))
			continue;
		char key[192], e[128];
		uint32_t line =
		        t->line_base >= 0 ? v->cfg->_key_lines[t->line_base + i] : item_line;
		snprintf(key, sizeof(key), "%s.%s", prefix, f->key);
		return errorf(v->err, v->err_len, v->cfg->source, or_root(v->cfg, line), key,
		              "expected %s, got %llu%s", range_text(f, e, sizeof(e)),
		              (unsigned long long)x, f->kind == F_DURATION ? "ms" : "");
	}
	return 1;
}

/* check_le checks a <= b and blames the key the file wrote: the dependent
 * one if it is set, else the other. */
static int check_le(struct vctx *v, const char *a_key, uint64_t a, uint32_t a_line,
                    const char *b_key, uint64_t b, uint32_t b_line, int blame_a)
{
	if (a <= b)
		return 1;
	if ((blame_a && (a_line != 0 || b_line == 0)) || (!blame_a && b_line == 0 && a_line != 0))
		return errorf(v->err, v->err_len, v->cfg->source, or_root(v->cfg, a_line), a_key,
		              "must not exceed %s (%llu)", b_key, (unsigned long long)b);
	return errorf(v->err, v->err_len, v->cfg->source, or_root(v->cfg, b_line), b_key,
	              "must be at least %s (%llu)", a_key, (unsigned long long)a);
}

static int validate_sizes(struct vctx *v)
{
	const struct config *c = v->cfg;
	uint32_t rl = key_line(c, &limits_table, "request_line_bytes_max");
	uint32_t hb = key_line(c, &limits_table, "header_bytes_max");
	uint32_t rh = key_line(c, &limits_table, "response_header_bytes_max");
	uint32_t bs = key_line(c, &buffers_table, "size");
	uint32_t cb = key_line(c, &buffers_table, "conn_bytes_max");

	/* A request head and a response head must each fit one provided buffer,
	 * because the parser never joins buffers; the request line is part of
	 * the head. */
	return check_le(v, "limits.request_line_bytes_max", c->limits.request_line_bytes_max, rl,
	                "limits.header_bytes_max", c->limits.header_bytes_max, hb, 1) &&
	       check_le(v, "limits.header_bytes_max", c->limits.header_bytes_max, hb,
	                "buffers.size", c->buffers.size, bs, 1) &&
	       check_le(v, "limits.response_header_bytes_max", c->limits.response_header_bytes_max,
	                rh, "buffers.size", c->buffers.size, bs, 1) &&
	       check_le(v, "buffers.size", c->buffers.size, bs, "buffers.conn_bytes_max",
	                c->buffers.conn_bytes_max, cb, 0);
}

/* validate_cidrs checks an inline address list: "KEY.NAME: expected ...". */
static int validate_cidrs(struct vctx *v, const char *list, const char *key, const char *name,
                          uint32_t line)
{
	struct cidr_entry *arr = NULL;
	size_t n = 0, cap = 0;
	char msg[256], full[128];
	int ok = cidr_list_add(list, 1, &arr, &n, &cap, msg, sizeof(msg));

	free(arr);
	if (ok)
		return 1;
	snprintf(full, sizeof(full), "%s.%s", key, name);
	return errorf(v->err, v->err_len, v->cfg->source, or_root(v->cfg, line), full, "%s", msg);
}

/* validate_acl checks an allow/deny section's inline lists. The list
 * files are read where the tables are built (snapshot.c): on start-up, on a
 * reload and by `ringlb -t`, not on every admin API change. */
static int validate_acl(struct vctx *v, const struct config_acl *a, const char *key, uint32_t line)
{
	return validate_cidrs(v, a->allow, key, "allow", line) &&
	       validate_cidrs(v, a->deny, key, "deny", line);
}

static int validate_listeners(struct vctx *v)
{
	struct config *c = v->cfg;
	uint32_t line = or_root(c, key_line(c, &top_table, "listeners"));
	char key[64];

	if (c->num_listeners == 0)
		return errorf(v->err, v->err_len, c->source, line, "listeners",
		              "at least one listener is required");
	for (size_t i = 0; i < c->num_listeners; i++) {
		const struct config_listener *l = &c->listeners[i];
		snprintf(key, sizeof(key), "listeners[%zu]", i);
		if (!check_fields(v, &listener_table, l, key, l->_line))
			return 0;
		snprintf(key, sizeof(key), "listeners[%zu].address", i);
		if (l->addr.len == 0)
			return errorf(v->err, v->err_len, c->source, or_root(c, l->_line), key,
			              "required key is missing");
		if (l->tls != NULL && l->redirect_https != 0) {
			snprintf(key, sizeof(key), "listeners[%zu].redirect_https", i);
			return errorf(
			        v->err, v->err_len, c->source, or_root(c, l->_line), key,
			        "only for a listener without tls (it would redirect to itself)");
		}
		if (l->tls != NULL)
			l->tls->_h2 = l->http2;
		if (l->tls != NULL && l->tls->num_certs == 0) {
			snprintf(key, sizeof(key), "listeners[%zu].tls.certificates", i);
			return errorf(v->err, v->err_len, c->source, or_root(c, l->tls->_line), key,
			              "at least one certificate is required");
		}
		snprintf(key, sizeof(key), "listeners[%zu]", i);
		if (!validate_acl(v, &l->acl, key, l->_line) ||
		    !validate_cidrs(v, l->trusted_proxies, key, "trusted_proxies", l->_line))
			return 0;
		snprintf(key, sizeof(key), "listeners[%zu].address", i);
		/* Shards bind with SO_REUSEPORT, so a repeated address would not
		 * fail at bind(2); it would silently double the accept queues. */
		for (size_t j = 0; j < i; j++)
			if (c->listeners[j].addr.len == l->addr.len &&
			    memcmp(&c->listeners[j].addr.ss, &l->addr.ss, l->addr.len) == 0)
				return errorf(v->err, v->err_len, c->source, or_root(c, l->_line),
				              key, "same address as listeners[%zu]", j);
	}
	return 1;
}

/* timeout_fits checks a periodic probe's timeout < interval (health checks
 * and load agents), reporting "SECTION_KEY.timeout: must be shorter than
 * SECTION.interval". */
static int timeout_fits(struct vctx *v, const char *section_key, const char *section,
                        uint64_t timeout_ms, uint64_t interval_ms, uint32_t line)
{
	char key[160];

	if (timeout_ms < interval_ms)
		return 1;
	snprintf(key, sizeof(key), "%s.timeout", section_key);
	return errorf(v->err, v->err_len, v->cfg->source, or_root(v->cfg, line), key,
	              "must be shorter than %s.interval (%llums)", section,
	              (unsigned long long)interval_ms);
}

/* validate_hash ties the hash options to the algorithm: hash needs a key,
 * ip_hash always hashes the client address, and the balance factor only
 * means something for the two hashing algorithms. */
static int validate_hash(struct vctx *v, size_t i)
{
	struct config *c = v->cfg;
	struct config_pool *pool = &c->pools[i];
	uint32_t line = or_root(c, pool->_line);
	bool hashing = pool->algorithm == CONFIG_ALG_HASH || pool->algorithm == CONFIG_ALG_IP_HASH;
	char key[96];

	if (pool->algorithm == CONFIG_ALG_IP_HASH) {
		snprintf(key, sizeof(key), "pools[%zu].hash_key", i);
		if (pool->hash_key != CONFIG_HASH_NONE && pool->hash_key != CONFIG_HASH_CLIENT_IP)
			return errorf(v->err, v->err_len, c->source, line, key,
			              "ip_hash always hashes the client address; use algorithm: "
			              "hash for another key");
		pool->hash_key = CONFIG_HASH_CLIENT_IP;
	}
	if (pool->algorithm == CONFIG_ALG_HASH && pool->hash_key == CONFIG_HASH_NONE) {
		snprintf(key, sizeof(key), "pools[%zu].hash_key", i);
		return errorf(v->err, v->err_len, c->source, line, key,
		              "required by algorithm hash: client_ip, uri, header:NAME or "
		              "cookie:NAME");
	}
	snprintf(key, sizeof(key), "pools[%zu].hash_balance_factor", i);
	if (pool->hash_balance_factor != 0 && pool->hash_balance_factor <= 100)
		return errorf(v->err, v->err_len, c->source, line, key,
		              "expected 0 (off) or a percentage above 100, such as 125");
	if (pool->hash_balance_factor != 0 && !hashing)
		return errorf(v->err, v->err_len, c->source, line, key,
		              "only applies to algorithm hash or ip_hash");
	return 1;
}

/* validate_admin turns the admin section on when it names an address, and
 * refuses an admin API reachable beyond loopback without a token. */
static int validate_admin(struct vctx *v)
{
	struct config *c = v->cfg;
	struct config_admin *a = &c->admin;
	bool loopback;

	if (!a->enabled)
		return 1;
	/* An admin section without an address listens on loopback. */
	if (a->addr.len == 0 && !config_parse_addr(CONFIG_ADMIN_DEFAULT, &a->addr))
		return errorf(v->err, v->err_len, c->source, 0, "admin.address", "internal error");
	if (a->addr.ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->addr.ss;

		loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->addr.ss;

		loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	}
	if (!loopback && a->token[0] == '\0')
		return errorf(v->err, v->err_len, c->source, or_root(c, c->_key_lines[LINE_ADMIN]),
		              "admin.token",
		              "required when admin.address is not a loopback address");
	return 1;
}

static int validate_pool(struct vctx *v, size_t i)
{
	struct config *c = v->cfg;
	const struct config_pool *pool = &c->pools[i];
	uint32_t line = or_root(c, pool->_line);
	char key[96];

	snprintf(key, sizeof(key), "pools[%zu].name", i);
	if (!valid_pool_name(pool->name, strnlen(pool->name, sizeof(pool->name))))
		return errorf(v->err, v->err_len, c->source, line, key,
		              "expected a name of 1 to 63 characters from A-Z a-z 0-9 _ . -");
	for (size_t j = 0; j < i; j++)
		if (strcmp(c->pools[j].name, pool->name) == 0)
			return errorf(v->err, v->err_len, c->source, line, key,
			              "duplicate pool name \"%s\" (also pools[%zu])", pool->name,
			              j);
	snprintf(key, sizeof(key), "pools[%zu]", i);
	if (!check_fields(v, &pool_table, pool, key, pool->_line))
		return 0;
	if (!validate_hash(v, i))
		return 0;
	if ((pool->tls.cert[0] != '\0') != (pool->tls.key[0] != '\0')) {
		snprintf(key, sizeof(key), "pools[%zu].%s", i,
		         pool->tls.cert[0] ? "tls_key" : "tls_cert");
		return errorf(v->err, v->err_len, c->source, line, key,
		              "tls_cert and tls_key go together");
	}
	if (!pool->tls.enabled && (pool->tls.cert[0] || pool->tls.ca[0] || pool->tls.name[0])) {
		snprintf(key, sizeof(key), "pools[%zu].tls", i);
		return errorf(v->err, v->err_len, c->source, line, key,
		              "tls_ca, tls_name and tls_cert need tls: on");
	}
	if ((pool->algorithm == CONFIG_ALG_RESOURCE) != pool->agent.enabled) {
		snprintf(key, sizeof(key), "pools[%zu].%s", i,
		         pool->agent.enabled ? "agent" : "algorithm");
		return errorf(v->err, v->err_len, c->source, line, key,
		              pool->agent.enabled
		                      ? "only applies to algorithm resource"
		                      : "resource needs an agent section (agent: {path: /load})");
	}
	snprintf(key, sizeof(key), "pools[%zu].agent", i);
	if (pool->agent.enabled && !timeout_fits(v, key, "agent", pool->agent.timeout_ms,
	                                         pool->agent.interval_ms, pool->agent._line))
		return 0;
	if (pool->passive.ejection_max_ms < pool->passive.ejection_ms) {
		snprintf(key, sizeof(key), "pools[%zu].passive_health.ejection_max", i);
		return errorf(v->err, v->err_len, c->source, line, key,
		              "must be at least passive_health.ejection (%llums)",
		              (unsigned long long)pool->passive.ejection_ms);
	}
	for (size_t b = 0; b < pool->num_backends; b++) {
		const struct config_health *h = &pool->backends[b].health;

		snprintf(key, sizeof(key), "pools[%zu].backends[%zu].health_check", i, b);
		if (h->enabled &&
		    !timeout_fits(v, key, "health_check", h->timeout_ms, h->interval_ms, h->_line))
			return 0;
	}
	snprintf(key, sizeof(key), "pools[%zu].health_check", i);
	if (pool->health.enabled && !timeout_fits(v, key, "health_check", pool->health.timeout_ms,
	                                          pool->health.interval_ms, pool->health._line))
		return 0;
	if (pool->num_backends == 0 || pool->backends == NULL) {
		snprintf(key, sizeof(key), "pools[%zu].backends", i);
		return errorf(v->err, v->err_len, c->source, line, key,
		              "at least one backend is required");
	}
	bool primary = false;

	for (size_t b = 0; b < pool->num_backends; b++)
		primary = primary || !pool->backends[b].backup;
	if (!primary) {
		snprintf(key, sizeof(key), "pools[%zu].backends", i);
		return errorf(v->err, v->err_len, c->source, line, key,
		              "at least one backend must not be a backup");
	}
	for (size_t b = 0; b < pool->num_backends; b++) {
		const struct config_backend *be = &pool->backends[b];
		snprintf(key, sizeof(key), "pools[%zu].backends[%zu]", i, b);
		if (!check_fields(v, &backend_table, be, key, be->_line))
			return 0;
		if (be->addr.len == 0)
			return errorf(v->err, v->err_len, c->source, or_root(c, be->_line), key,
			              "address is missing");
	}
	return 1;
}

/* validate_cache checks one route's cache section. */
static int validate_cache(struct vctx *v, struct config_cache *c, size_t i)
{
	char key[64];
	uint32_t line = or_root(v->cfg, c->_line);

	snprintf(key, sizeof(key), "routes[%zu].cache", i);
	if (!check_fields(v, &cache_table, c, key, line))
		return 0;
	if (c->max_object > c->memory)
		return errorf(v->err, v->err_len, v->cfg->source, line, key,
		              "max_object (%llu bytes) is larger than memory (%llu bytes)",
		              (unsigned long long)c->max_object, (unsigned long long)c->memory);
	if (strcmp(c->header, "off") == 0)
		c->header[0] = '\0';
	size_t names = c->key_headers[0] != '\0';

	for (const char *h = c->key_headers; *h != '\0'; h++) {
		if (!is_name_char(*h) && *h != ',')
			return errorf(v->err, v->err_len, v->cfg->source, line, key,
			              "key_headers: expected header field names, got \"%s\"",
			              c->key_headers);
		names += *h == ',';
	}
	if (names > CONFIG_CACHE_KEY_HEADERS_MAX)
		return errorf(v->err, v->err_len, v->cfg->source, line, key,
		              "key_headers: at most %d fields, got %zu",
		              CONFIG_CACHE_KEY_HEADERS_MAX, names);
	return 1;
}

static int validate_rate_limit(struct vctx *v, const struct config_route *r, size_t i)
{
	const struct config_rate_limit *rl = &r->rate_limit;
	char key[64];

	if (!rl->enabled)
		return 1;
	snprintf(key, sizeof(key), "routes[%zu].rate_limit.status", i);
	if (rl->status != 429 && rl->status != 503)
		return errorf(v->err, v->err_len, v->cfg->source, or_root(v->cfg, rl->_line), key,
		              "expected 429 or 503, got %u", rl->status);
	/* The shared table stores a key's state relative to now in a bounded
	 * span: one interval, the burst and the delay must fit in it. */
	snprintf(key, sizeof(key), "routes[%zu].rate_limit", i);
	if (rl->interval_us * ((uint64_t)rl->burst + 1) + rl->delay_ms * 1000 > RL_SPAN_MAX_US)
		return errorf(v->err, v->err_len, v->cfg->source, or_root(v->cfg, rl->_line), key,
		              "burst %u at %s plus delay spans more than 6 days; lower them",
		              rl->burst, rl->rate_text);
	return 1;
}

/* valid_methods checks "GET,HEAD": tokens of upper-case letters, digits,
 * '-' and '_' (methods are case-sensitive; RFC 9110 §9.1). */
static int valid_methods(const char *m)
{
	for (; *m != '\0'; m++)
		if (!((*m >= 'A' && *m <= 'Z') || (*m >= '0' && *m <= '9') || *m == '-' ||
		      *m == '_' || *m == ','))
			return 0;
	return 1;
}

/* validate_filter compiles every pattern of a route's filters, so a bad one
 * is reported with its place before anything starts. */
static int validate_filter(struct vctx *v, const struct config_filter *fl, size_t i)
{
	struct config *c = v->cfg;
	char key[96], msg[256];

	snprintf(key, sizeof(key), "routes[%zu].filters.methods", i);
	if (!valid_methods(fl->methods))
		return errorf(v->err, v->err_len, c->source, or_root(c, c->routes[i]._line), key,
		              "expected method names in capitals, like GET, HEAD");
	for (size_t j = 0; j < fl->num_rules; j++) {
		const struct config_filter_rule *r = &fl->rules[j];
		const char *pats[3] = {r->path, r->method, r->value};
		const char *names[3] = {"path", "method", "value"};

		snprintf(key, sizeof(key), "routes[%zu].filters.rules[%zu]", i, j);
		if (r->value[0] != '\0' && r->header[0] == '\0')
			return errorf(v->err, v->err_len, c->source, or_root(c, r->_line), key,
			              "value needs header (the field it matches)");
		if (r->path[0] == '\0' && r->method[0] == '\0' && r->header[0] == '\0')
			return errorf(v->err, v->err_len, c->source, or_root(c, r->_line), key,
			              "a rule needs path, method or header");
		for (size_t k = 0; k < j; k++)
			if (strcmp(fl->rules[k].name, r->name) == 0)
				return errorf(v->err, v->err_len, c->source, or_root(c, r->_line),
				              key, "the name \"%s\" is used by rules[%zu]", r->name,
				              k);
		for (int k = 0; k < 3; k++) {
			if (pats[k][0] == '\0' || filter_pattern_check(pats[k], msg, sizeof(msg)))
				continue;
			snprintf(key, sizeof(key), "routes[%zu].filters.rules[%zu].%s", i, j,
			         names[k]);
			return errorf(v->err, v->err_len, c->source, or_root(c, r->_line), key,
			              "bad pattern %s", msg);
		}
	}
	return 1;
}

static int validate_routes(struct vctx *v)
{
	struct config *c = v->cfg;
	char key[64];

	for (size_t i = 0; i < c->num_routes; i++) {
		struct config_route *r = &c->routes[i];
		size_t p = 0;
		while (p < c->num_pools && strcmp(c->pools[p].name, r->pool) != 0)
			p++;
		snprintf(key, sizeof(key), "routes[%zu].pool", i);
		if (p == c->num_pools)
			return errorf(v->err, v->err_len, c->source, or_root(c, r->_line), key,
			              "no pool named \"%.63s\"", r->pool);
		r->pool_index = (uint32_t)p;
		if (r->cache.enabled && !validate_cache(v, &r->cache, i))
			return 0;
		snprintf(key, sizeof(key), "routes[%zu]", i);
		if (!validate_acl(v, &r->acl, key, r->_line) || !validate_rate_limit(v, r, i) ||
		    !validate_filter(v, &r->filter, i))
			return 0;
	}
	return 1;
}

/* validate_headers checks the names in headers.hide. */
static int validate_headers(struct vctx *v)
{
	const char *h = v->cfg->headers.hide;

	for (const char *p = h; *p != '\0'; p++)
		if (!is_name_char(*p) && *p != ',')
			return errorf(v->err, v->err_len, v->cfg->source,
			              or_root(v->cfg, key_line(v->cfg, &headers_table, "hide")),
			              "headers.hide", "expected header field names, got \"%s\"", h);
	return 1;
}

/* validate_compression checks the coding names and media types. */
static int validate_compression(struct vctx *v)
{
	struct config_compression *z = &v->cfg->compression;
	const char *const names[] = {"gzip", "br", "zstd"};
	uint32_t seen = 0;
	char tok[CONFIG_PATH_MAX];

	for (const char *e = z->encodings; *e != '\0';) {
		size_t len = strcspn(e, ",");
		size_t k = 0;

		while (k < RLB_ARRAY_LEN(names) &&
		       (strlen(names[k]) != len || strncmp(names[k], e, len) != 0))
			k++;
		snprintf(tok, sizeof(tok), "%.*s", (int)len, e);
		if (k == RLB_ARRAY_LEN(names) || (seen & (1u << k)))
			return errorf(
			        v->err, v->err_len, v->cfg->source,
			        or_root(v->cfg, key_line(v->cfg, &compression_table, "encodings")),
			        "compression.encodings",
			        "expected br, zstd or gzip, each at most once, got \"%s\"", tok);
		seen |= 1u << k;
		e += len + (e[len] == ',');
	}
	for (const char *t = z->types; *t != '\0';) {
		size_t len = strcspn(t, ",");
		const char *slash = memchr(t, '/', len);

		snprintf(tok, sizeof(tok), "%.*s", (int)len, t);
		if (slash == NULL || slash == t || slash == t + len - 1)
			return errorf(
			        v->err, v->err_len, v->cfg->source,
			        or_root(v->cfg, key_line(v->cfg, &compression_table, "types")),
			        "compression.types",
			        "expected media types like text/html or text/*, got \"%s\"", tok);
		t += len + (t[len] == ',');
	}
	if (z->enabled && z->encodings[0] == '\0')
		return errorf(v->err, v->err_len, v->cfg->source,
		              or_root(v->cfg, key_line(v->cfg, &compression_table, "encodings")),
		              "compression.encodings", "expected at least one coding when enabled");
	return check_fields(v, &compression_table, z, "compression", 0);
}

static int validate_top(struct vctx *v)
{
	struct config *c = v->cfg;

	if (c->workers > 1024)
		return errorf(v->err, v->err_len, c->source,
		              or_root(c, key_line(c, &top_table, "workers")), "workers",
		              "expected \"auto\" or an integer from 1 to 1024, got %u", c->workers);
	if (c->log_level < 0 || c->log_level > 3)
		return errorf(v->err, v->err_len, c->source,
		              or_root(c, key_line(c, &top_table, "log_level")), "log_level",
		              "expected one of error, warn, info, debug, got %d", c->log_level);
	if (c->access_log.enabled && c->access_log.path[0] == '\0')
		return errorf(v->err, v->err_len, c->source,
		              or_root(c, key_line(c, &access_log_table, "path")), "access_log.path",
		              "expected a file path, \"stdout\" or \"-\" when the log is enabled");
	return check_fields(v, &timeouts_table, &c->timeouts, "timeouts", 0) &&
	       check_fields(v, &limits_table, &c->limits, "limits", 0) &&
	       check_fields(v, &buffers_table, &c->buffers, "buffers", 0) &&
	       check_fields(v, &access_log_table, &c->access_log, "access_log", 0) &&
	       check_fields(v, &http2_table, &c->http2, "http2", 0);
}

int config_validate(struct config *cfg, char *err, size_t err_len)
{
	struct vctx v = {.cfg = cfg, .err = err, .err_len = err_len};

	if (!validate_top(&v) || !validate_sizes(&v) || !validate_listeners(&v))
		return 0;
	if (!validate_admin(&v) || !validate_compression(&v) || !validate_headers(&v))
		return 0;
	if (cfg->num_pools == 0)
		return errorf(err, err_len, cfg->source,
		              or_root(cfg, key_line(cfg, &top_table, "pools")), "pools",
		              "at least one pool is required");
	for (size_t i = 0; i < cfg->num_pools; i++)
		if (!validate_pool(&v, i))
			return 0;
	return validate_routes(&v);
}
