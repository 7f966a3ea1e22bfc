/* core/config.h — ringlb's configuration: loading YAML (libyaml), quick mode
 * from the command line, defaults, and whole-file validation.
 *
 * The control thread owns a `struct config`: it is built at start-up (or on
 * reload) and never changed afterwards; the snapshot that shards read is
 * derived from it. Every limit has a default here and a line in
 * docs/reference.md.
 *
 * Errors are reported as one line, "FILE:LINE: KEY: what was expected", in
 * the caller's buffer; the first error found wins.
 */
#ifndef RLB_CONFIG_H
#define RLB_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CONFIG_NAME_MAX      64
#define CONFIG_ERR_MAX       512
#define CONFIG_POOLS_MAX     256
#define CONFIG_BACKENDS_MAX  1024 /* per pool */
#define CONFIG_LISTENERS_MAX 64
#define CONFIG_ROUTES_MAX    1024
#define CONFIG_KEY_LINES_MAX 96 /* size of struct config's private _key_lines */

/* A socket address with its textual form as written. */
struct config_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64]; /* "127.0.0.1:8080" or "[::1]:8080" */
};

#define CONFIG_PATH_MAX  512
#define CONFIG_CERTS_MAX 64 /* certificates per TLS listener */

/* One certificate of a TLS listener: its names come from the certificate
 * (subjectAltName DNS entries, else the subject CN). */
struct config_cert {
	char cert[CONFIG_PATH_MAX]; /* PEM: the leaf certificate, then its chain */
	char key[CONFIG_PATH_MAX];  /* PEM private key; refused if others may read it */
	char ocsp[CONFIG_PATH_MAX]; /* DER OCSP response to staple; "" = none */
	uint32_t _line;             /* private to config.c: line of `cert`, 0 if not from a file */
};

enum config_verify_client {
	CONFIG_VERIFY_REQUIRED = 0, /* a client without a valid certificate is refused */
	CONFIG_VERIFY_OPTIONAL,     /* a certificate is asked for; if sent it must verify */
};

/* TLS on a listener (BoringSSL); absent = plain HTTP. */
struct config_tls {
	size_t num_certs;
	struct config_cert *certs;       /* owned; the first is the default certificate */
	uint32_t min_version;            /* 0x0303 (TLS 1.2, default) or 0x0304 (TLS 1.3) */
	char ciphers[CONFIG_PATH_MAX];   /* TLS 1.2 cipher list (TLS 1.3's are fixed) */
	char groups[CONFIG_PATH_MAX];    /* key exchange groups, default "X25519:P-256:P-384" */
	char client_ca[CONFIG_PATH_MAX]; /* PEM CAs for client certificates; "" = no mTLS */
	uint32_t verify_client;          /* enum config_verify_client */
	bool session_tickets;            /* default true */
	char ticket_key_file[CONFIG_PATH_MAX]; /* 80-byte key file shared by nodes; "" = own keys */
	uint64_t ticket_rotate_ms;             /* own keys: a new one this often, default 1h */
	uint64_t hsts_ms;                      /* Strict-Transport-Security max-age; 0 = off */
	bool hsts_subdomains;                  /* add includeSubDomains */
	bool _h2;       /* set by config_validate from the listener's http2 (ALPN offers h2) */
	uint32_t _line; /* private to config.c: line of the `tls` key */
};

/* The default TLS 1.2 cipher list (forward secrecy and AEAD only) and key
 * exchange groups. */
#define CONFIG_TLS_CIPHERS                                                                         \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#define CONFIG_TLS_GROUPS "X25519:P-256:P-384"

/* config_tls_defaults fills a TLS section with its defaults (no certificates). */
void config_tls_defaults(struct config_tls *t);

#define CONFIG_CIDRS_MAX 4096 /* bytes of an inline address list; longer lists go in files */

/* Allow and deny lists by address (core/cidr.c): the longest matching
 * prefix of either list decides; an address no prefix matches is allowed
 * unless an allow list exists. Inline lists are stored "a,b". */
struct config_acl {
	char allow[CONFIG_CIDRS_MAX];
	char deny[CONFIG_CIDRS_MAX];
	char allow_file[CONFIG_PATH_MAX]; /* one prefix per line; "" = none */
	char deny_file[CONFIG_PATH_MAX];
};

struct config_listener {
	struct config_addr addr;
	uint32_t backlog;        /* listen(2) backlog, default 4096 */
	struct config_tls *tls;  /* owned; NULL = plain HTTP */
	uint32_t redirect_https; /* plain listener: answer 308 to https on this port; 0 = off */
	bool http2;              /* TLS listener: offer h2 in ALPN, default true */
	bool proxy_protocol;     /* every connection starts with a PROXY v1/v2 header */
	struct config_acl acl;   /* who may connect (the PROXY header's address, if any) */
	char trusted_proxies[CONFIG_CIDRS_MAX]; /* peers whose X-Forwarded-For (and PROXY
	                                           header) name the client; "" = none */
	uint32_t _line; /* private to config.c: line of `address`, 0 if not from a file */
};

enum config_check_type {
	CONFIG_CHECK_HTTP = 0, /* connect, GET path, accept the listed statuses */
	CONFIG_CHECK_TCP,      /* connect only */
};

#define CONFIG_EXPECT_MAX 8

/* Active health checks of a pool's backends (run off the request path). */
struct config_health {
	bool enabled;        /* a health_check section is present */
	uint32_t type;       /* enum config_check_type, default http */
	char path[256];      /* http: request target, default "/" */
	char method[16];     /* http: GET (default), HEAD or OPTIONS */
	char host[256];      /* http: Host field; empty = the backend's address */
	uint32_t num_expect; /* http: accepted status ranges, default 200-399 */
	uint16_t expect_lo[CONFIG_EXPECT_MAX], expect_hi[CONFIG_EXPECT_MAX];
	uint64_t interval_ms; /* between two checks of one backend, default 2s */
	uint64_t timeout_ms;  /* a check taking longer fails, default 1s, < interval */
	uint32_t rise;        /* successes in a row to mark a backend up, default 2 */
	uint32_t fall;        /* failures in a row to mark it down, default 3 */
	uint32_t _line;       /* private to config.c: line of the section */
};

struct config_backend {
	struct config_addr addr;
	uint32_t weight;             /* 1..1000, default 1 */
	bool backup;                 /* used only when no other backend of the pool is usable */
	uint32_t max_connections;    /* requests in flight at once, all shards; 0 = no limit */
	bool draining;               /* set through the admin API: no new requests */
	struct config_health health; /* its own checks, overriding the pool's (if enabled) */
	uint32_t _line; /* private to config.c: line of `address`, 0 if not from a file */
};

enum config_algorithm {
	CONFIG_ALG_ROUND_ROBIN = 0,
	CONFIG_ALG_WEIGHTED_ROUND_ROBIN,
	CONFIG_ALG_LEAST_CONN,
	CONFIG_ALG_WEIGHTED_LEAST_CONN,
	CONFIG_ALG_RANDOM_TWO,
	CONFIG_ALG_LEAST_TIME,
	CONFIG_ALG_IP_HASH,
	CONFIG_ALG_HASH,
	CONFIG_ALG_RESOURCE,
	CONFIG_ALG_COUNT
};

/* config_algorithm_names[a] is the name of algorithm a, as written in YAML. */
extern const char *const config_algorithm_names[CONFIG_ALG_COUNT];

/* What `hash` hashes (ip_hash always hashes the client address). */
enum config_hash_key {
	CONFIG_HASH_NONE = 0,
	CONFIG_HASH_CLIENT_IP, /* "client_ip" */
	CONFIG_HASH_URI,       /* "uri": the request target as received */
	CONFIG_HASH_HEADER,    /* "header:NAME": the first NAME field's value */
	CONFIG_HASH_COOKIE,    /* "cookie:NAME": the value of cookie NAME */
};

/* The load agent `resource` balancing polls on each backend. */
struct config_agent {
	bool enabled;         /* an agent section is present */
	char path[256];       /* GET target on the backend's address, default "/load" */
	uint64_t interval_ms; /* between two polls of one backend, default 2s */
	uint64_t timeout_ms;  /* a poll taking longer fails (last report kept), default 1s */
	uint32_t _line;       /* private to config.c: line of the section */
};

/* Passive health: eject a backend after consecutive failed requests. */
struct config_passive {
	uint32_t failures;        /* failed requests in a row that eject; 0 = off (default) */
	uint64_t ejection_ms;     /* first ejection, default 10s; doubles on repeat */
	uint64_t ejection_max_ms; /* longest ejection, default 5m */
};

#define CONFIG_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt" /* Debian's system CAs */

/* TLS from ringlb to a pool's backends. */
struct config_pool_tls {
	bool enabled;               /* tls: on */
	bool verify;                /* verify the backend's certificate, default true */
	char ca[CONFIG_PATH_MAX];   /* PEM CAs to verify with; "" = CONFIG_CA_BUNDLE */
	char name[256];             /* SNI and the name verified; "" = verify the backend's IP */
	char cert[CONFIG_PATH_MAX]; /* client certificate (PEM chain); "" = none */
	char key[CONFIG_PATH_MAX];  /* its private key */
};

struct config_pool {
	char name[CONFIG_NAME_MAX];
	enum config_algorithm algorithm;
	uint32_t keepalive;            /* idle connections kept per backend per shard, default 64 */
	uint64_t keepalive_timeout_ms; /* idle upstream connection lifetime, default 60s */
	uint32_t retries;              /* extra tries on connect failure / reused-connection
	                                  failure, default 1 */
	enum config_hash_key hash_key; /* for hash; ip_hash implies CONFIG_HASH_CLIENT_IP */
	char hash_key_name[CONFIG_NAME_MAX]; /* the header or cookie name */
	struct config_health health;
	struct config_passive passive;
	struct config_agent agent;
	uint32_t retry_budget; /* retries at most this % of recent requests (10 s), default 20; 0 =
	                          off */
	uint32_t retry_budget_min; /* retries always allowed per 10 s window, default 100 */
	uint64_t slow_start_ms; /* ramp a recovered or added backend's share over this; 0 = off */
	char sticky_cookie[CONFIG_NAME_MAX]; /* cookie naming the client's backend; "" = off */
	uint32_t queue_max;                  /* requests waiting per shard when every backend is at
	                                        max_connections, default 1024; 0 = 503 at once */
	uint64_t queue_timeout_ms;           /* longest wait in that queue, then 503; default 5s */
	uint32_t hash_balance_factor;        /* percent of the mean load a backend may carry
	                                        (hash, ip_hash); 0 = unbounded, else 101..1000 */
	struct config_pool_tls tls;
	size_t num_backends;
	struct config_backend *backends; /* owned */
	uint32_t _line; /* private to config.c: line of `name`, 0 if not from a file */
};

#define CONFIG_CACHE_KEY_HEADERS_MAX 8 /* key_headers fields per route */

/* An HTTP cache on a route (cache/): a shared cache by RFC 9111. */
struct config_cache {
	bool enabled;        /* cache: on, or a mapping */
	uint64_t memory;     /* budget for stored responses, all shards, default 64MiB */
	uint64_t max_object; /* largest stored response (head + body), default 1MiB */
	char key_headers[CONFIG_PATH_MAX]; /* request fields added to the key, "A,B"; "" = none */
	uint64_t lock_timeout_ms; /* concurrent misses wait this long for the one fetch, default 5s
	                           */
	bool heuristic;        /* heuristic freshness: 10% of Date - Last-Modified, at most 1 day */
	bool store_set_cookie; /* store responses carrying Set-Cookie, default false */
	char header[CONFIG_NAME_MAX]; /* field reporting HIT/MISS/STALE/REVALIDATED, "" = none */
	uint64_t stale_if_error_ms;   /* serve stale this long past expiry when the backend fails,
	                                 beyond the response's own stale-if-error; default 0 */
	uint32_t _line;               /* private to config.c: line of the `cache` key */
};

/* config_cache_defaults fills a route's cache section with its defaults (off). */
void config_cache_defaults(struct config_cache *c);

enum config_rate_key {
	CONFIG_RATE_CLIENT_IP = 0, /* "client_ip" (default) */
	CONFIG_RATE_HEADER,        /* "header:NAME": its value; the client IP when absent */
	CONFIG_RATE_ROUTE,         /* "route": one budget for the whole route */
};

/* A route's request rate limit (core/ratelimit.c, GCRA): one budget per
 * key across every shard. */
struct config_rate_limit {
	bool enabled;                   /* the section is present */
	uint64_t interval_us;           /* 1 / rate ("100/s", "6000/m") */
	char rate_text[32];             /* as written, for messages */
	uint32_t burst;                 /* requests beyond the rate allowed at once, default 0 */
	uint32_t key;                   /* enum config_rate_key */
	char key_name[CONFIG_NAME_MAX]; /* the header of header:NAME */
	uint64_t delay_ms;              /* hold excess requests up to this long instead; 0 = 429 */
	uint32_t status;                /* answer for excess requests, 429 (default) or 503 */
	uint32_t _line;
};

#define CONFIG_FILTER_RULES_MAX 64

/* One request filter rule: every pattern given must match (PCRE2). */
struct config_filter_rule {
	char name[CONFIG_NAME_MAX];   /* for the log line and the counters */
	char path[CONFIG_PATH_MAX];   /* on the request target; "" = not checked */
	char method[CONFIG_PATH_MAX]; /* on the method; "" = not checked */
	char header[CONFIG_NAME_MAX]; /* a field name; "" = not checked */
	char value[CONFIG_PATH_MAX];  /* on each value of `header`; "" = the field is present */
	uint32_t _line;
};

/* A route's request filters (core/filter.c). */
struct config_filter {
	char methods[CONFIG_PATH_MAX]; /* allowed methods "GET,HEAD"; "" = any */
	uint32_t max_uri;              /* longest request target in bytes: 414; 0 = no limit */
	size_t num_rules;
	struct config_filter_rule *rules; /* owned */
};

struct config_route {
	char host[256]; /* exact host, "*.suffix", or empty for any */
	char path[256]; /* path prefix, empty for any */
	char pool[CONFIG_NAME_MAX];
	struct config_cache cache;
	struct config_acl acl;               /* who may use the route */
	struct config_rate_limit rate_limit; /* off unless the section is present */
	struct config_filter filter;         /* the `filters` section */
	uint32_t pool_index;                 /* resolved by validation */
	uint32_t _line; /* private to config.c: line of `pool`, 0 if not from a file */
};

struct config_timeouts {
	uint64_t client_header_ms;     /* whole request head, default 10s: 408 */
	uint64_t client_body_ms;       /* between two reads of a request body, default 60s: 408 */
	uint64_t keepalive_ms;         /* idle client connection between requests, default 75s */
	uint64_t send_ms;              /* a send to the client making no progress, default 60s */
	uint64_t upstream_connect_ms;  /* connect to a backend, default 5s: then retry or 502/504 */
	uint64_t upstream_response_ms; /* waiting for response bytes, default 60s: 504 */
	uint64_t upstream_send_ms;     /* a send to a backend making no progress, default 60s */
	uint64_t drain_ms;             /* graceful shutdown limit, default 30s */
	uint64_t linger_ms; /* reading what a closing client still sends, default 2s; 0 = none */
};

struct config_limits {
	uint32_t conns_max;            /* client connections per shard, default 10000 */
	uint32_t upstream_conns_max;   /* upstream connections per shard, default 10000 */
	size_t request_line_bytes_max; /* default 8KiB: 414 beyond */
	size_t header_bytes_max;       /* whole request head, default 16KiB: 431 beyond */
	uint32_t headers_max;          /* header fields per message, default 100: 431 beyond */
	uint64_t body_bytes_max;       /* request body, default 1GiB; 0 = unlimited: 413 beyond */
	size_t response_header_bytes_max; /* response head from a backend, default 16KiB: 502 */
	uint32_t requests_per_conn; /* requests on one client connection, then it closes; 0 = no
	                               limit (default) */
	uint32_t conns_total;       /* client connections, all shards; 0 = only conns_max */
	uint32_t conns_per_ip;      /* client connections per address, all shards; 0 = no limit */
	uint64_t body_min_rate;     /* request body bytes per second, measured per body_rate_window;
	                               slower: 408; 0 = off (default) */
	uint64_t body_rate_window_ms; /* default 10s */
	uint32_t rate_table_slots;    /* rate limit keys tracked, power of two, default 262144 */
	uint32_t ip_table_slots;      /* client addresses counted for conns_per_ip, default 65536 */
};

struct config_buffers {
	uint32_t count; /* provided buffers per group per shard, power of two, default 1024 */
	size_t size;    /* bytes per buffer, default 16KiB, >= header_bytes_max */
	size_t conn_bytes_max; /* unsent bytes held per connection direction before
	                          reading pauses, default 256KiB */
	uint32_t ring_entries; /* io_uring SQ entries per shard, power of two, default 4096 */
	uint32_t tls_count;    /* TLS plaintext/ciphertext buffers per shard, default 1024 */
};

/* HTTP/2 to clients (TLS listeners with http2), and the limits that keep
 * one connection from costing more than its share. */
struct config_http2 {
	uint32_t max_concurrent_streams; /* streams open at once per connection, default 128 */
	size_t stream_window;            /* per-stream receive window, default 64KiB */
	uint32_t header_table_size;      /* HPACK dynamic table we allow, default 4096 */
	uint32_t max_resets;             /* client stream resets allowed in a burst, default 200 */
	uint32_t reset_rate;             /* ... refilled at this many per second, default 33 */
	uint32_t max_control;       /* SETTINGS/PING/PRIORITY frames in a burst, default 1000 */
	uint32_t control_rate;      /* ... refilled at this many per second, default 100 */
	uint32_t max_continuations; /* CONTINUATION frames per header block, default 8 */
};

/* On-the-fly compression of responses (core/compress.c). */
struct config_compression {
	bool enabled;                    /* default false */
	char encodings[CONFIG_PATH_MAX]; /* preference order, default "br,zstd,gzip" */
	char types[2 * CONFIG_PATH_MAX]; /* media types compressed, "type/sub" or "type/\*" */
	uint64_t min_size;               /* smaller (known-length) bodies are sent as they are */
	uint32_t gzip_level;             /* 1..9, default 6 */
	uint32_t brotli_level;           /* 0..11, default 4 */
	uint32_t zstd_level;             /* 1..19, default 3 */
	uint32_t max_streams;            /* encoders at once per shard, default 32 */
};

#define CONFIG_COMPRESS_TYPES                                                                      \
	"text/html,text/css,text/plain,text/xml,text/javascript,text/markdown,text/csv,"           \
	"application/javascript,application/json,application/xml,application/rss+xml,"             \
	"application/atom+xml,application/ld+json,application/manifest+json,application/wasm,"     \
	"image/svg+xml"

/* What ringlb changes in the fields it passes on (hiding the backends). */
struct config_headers {
	char hide[CONFIG_PATH_MAX];   /* response fields removed, "A,B" */
	char server[CONFIG_PATH_MAX]; /* replaces the backend's Server; "" = keep; "off" = remove */
	bool request_id;         /* X-Request-ID to backends, clients and the log, default true */
	bool request_id_trusted; /* keep a client's X-Request-ID (behind a trusted proxy) */
};

/* Least privilege (core/sandbox.c): whom ringlb runs as once its sockets
 * are bound, and whether a seccomp allow-list confines it. Read at start-up
 * only: a reload keeps the running identity and filter. */
struct config_security {
	char user[CONFIG_NAME_MAX];  /* user name or numeric uid; "" = keep the starting user */
	char group[CONFIG_NAME_MAX]; /* group name or numeric gid; "" = the user's primary group */
	bool seccomp;                /* default false */
};

#define CONFIG_HIDE_HEADERS "X-Powered-By,X-AspNet-Version,X-AspNetMvc-Version"

/* Traffic anomaly detection: per route, the request and 5xx rates of each
 * interval are compared with a slow moving baseline. */
struct config_anomaly {
	bool enabled;          /* default false */
	uint64_t interval_ms;  /* a measurement, default 10s */
	uint64_t baseline_ms;  /* time constant of the baseline (EWMA), default 10m */
	uint32_t factor;       /* percent of the baseline that is a spike, default 300 */
	uint32_t min_rate;     /* requests per second below which nothing is a spike, default 10 */
	uint32_t error_factor; /* percent of the baseline 5xx rate, default 300 */
	uint32_t min_error_rate; /* 5xx per second below which nothing is a spike, default 1 */
};

#define CONFIG_ADMIN_DEFAULT "127.0.0.1:9090"

/* The admin listener (JSON API for live changes); off unless configured. */
struct config_admin {
	bool enabled; /* an admin section is present */
	struct config_addr addr;
	char token[256]; /* bearer token; required unless addr is a loopback address */
};

struct config_access_log {
	bool enabled;
	char path[512];         /* file path, or "-" or "stdout" */
	uint32_t queue_entries; /* per-shard queue of pending lines, default 4096 */
};

struct config {
	char source[512]; /* file name, or "command line" */
	uint32_t workers; /* 0 = auto (one per CPU) */
	bool pin_workers; /* default true */
	size_t num_listeners;
	struct config_listener listeners[CONFIG_LISTENERS_MAX];
	size_t num_pools;
	struct config_pool pools[CONFIG_POOLS_MAX];
	size_t num_routes;
	struct config_route *routes; /* owned; if empty, all requests go to pools[0] */
	struct config_timeouts timeouts;
	struct config_limits limits;
	struct config_buffers buffers;
	struct config_access_log access_log;
	struct config_admin admin;
	struct config_http2 http2;
	struct config_compression compression;
	struct config_headers headers;
	struct config_anomaly anomaly;
	struct config_security security;
	int log_level; /* 0 error, 1 warn, 2 info, 3 debug; default 2 */
	/* Private to config.c: the line of each top-level and section key read
	 * from a file (0 for a default or the command line), so that
	 * config_validate can point cross-field errors at the file. */
	uint32_t _key_lines[CONFIG_KEY_LINES_MAX];
};

/* config_defaults fills `cfg` with every default and no listeners, pools or
 * routes; its source reads "command line" until a file is loaded. It does not
 * free: call config_free first on a cfg that owns memory. */
void config_defaults(struct config *cfg);

/* config_load_file parses and validates the YAML file `path` into `cfg`
 * (defaults first, then the file). Returns 1 on success; on failure returns
 * 0, writes "FILE:LINE: KEY: expectation" into err[0..err_len), and leaves
 * `cfg` safe to pass to config_free. */
int config_load_file(struct config *cfg, const char *path, char *err, size_t err_len);

/* config_load_string is config_load_file on an in-memory YAML document;
 * `name` stands for the file name in error messages. */
int config_load_string(struct config *cfg, const char *name, const char *yaml, size_t len,
                       char *err, size_t err_len);

/* config_parse_file and config_parse_string are config_load_file and
 * config_load_string without the final config_validate, so that quick-mode
 * listeners and backends can be merged into a file's configuration before
 * the caller runs config_validate itself. Same returns and messages. */
int config_parse_file(struct config *cfg, const char *path, char *err, size_t err_len);
int config_parse_string(struct config *cfg, const char *name, const char *yaml, size_t len,
                        char *err, size_t err_len);

/* config_add_listener and config_add_backend build the quick-mode
 * configuration ("--listen ADDR", "--backend ADDR"): backends go to a pool
 * named "default", created on first use. Return 1, or 0 with a message. */
int config_add_listener(struct config *cfg, const char *addr, char *err, size_t err_len);
int config_add_backend(struct config *cfg, const char *addr, char *err, size_t err_len);

/* config_add_cache caches every route (a catch-all route to the first pool
 * when there are none) with `memory` bytes (a size like 256MiB) each: quick
 * mode's --cache. Call after the backends were added. Returns 1, or 0 with a
 * message. */
int config_add_cache(struct config *cfg, const char *memory, char *err, size_t err_len);

/* config_add_tls gives every listener that has no tls section one with the
 * certificate `cert` and key `key` ("--cert FILE --key FILE"). Returns 1, or
 * 0 with a message. */
int config_add_tls(struct config *cfg, const char *cert, const char *key, char *err,
                   size_t err_len);

/* config_validate checks the whole configuration (at least one listener and
 * one pool with a backend, routes name existing pools, size relations such
 * as header_bytes_max <= buffers.size) and resolves route pool indexes.
 * Returns 1, or 0 with a message. */
int config_validate(struct config *cfg, char *err, size_t err_len);

/* config_key_line returns the line of `section`.`key` in the file, else
 * that of the top-level mapping, else 0 (command line), for messages about
 * values checked outside config_validate (security.user is looked up by
 * core/sandbox.c). */
uint32_t config_key_line(const struct config *cfg, const char *section, const char *key);

/* config_free releases what `cfg` owns; safe on a zeroed or half-built cfg. */
void config_free(struct config *cfg);

/* config_parse_addr parses "HOST:PORT", "[V6]:PORT" or ":PORT" (any
 * address) with a numeric host. Returns 1 or 0. */
int config_parse_addr(const char *text, struct config_addr *out);

/* config_parse_duration_ms parses "250ms", "2s", "5m", "1h" (a bare number
 * means seconds). Returns 1 or 0. */
int config_parse_duration_ms(const char *text, uint64_t *out_ms);

/* config_parse_size parses "512", "16KiB", "4MiB", "1GiB" (also KB/MB/GB as
 * powers of 1000, and k/m/g as powers of 1024). Returns 1 or 0. */
int config_parse_size(const char *text, uint64_t *out_bytes);

#endif
