/* tests/unit/core/protect_test.c — unit tests for core/protect.c.
 *
 * Goal: the protections on the request path do what docs/reference.md says
 * and count what they refuse. The client behind trusted proxies is the
 * right-most X-Forwarded-For element that is not a trusted proxy, across
 * several fields (read as one list), with whitespace around elements; a
 * malformed element, an empty one included, ends the walk and nothing to
 * its left is ever picked; an untrusted peer's X-Forwarded-For is ignored.
 * Route allow lists answer 403 ("denied"), filters 403 or 414 with the
 * rule's name (a copy that outlives the snapshot), rate limits 429 or 503
 * with Retry-After, or hold the request (delay mode) with its timer armed
 * and let it through once when its turn comes, without counting it twice,
 * and the grant does not outlive that pass.
 * Connections: listener allow lists (IPv4-mapped peers as IPv4), conns_total
 * and conns_per_ip across shards, released on close and never leaked by a
 * refusal; PROXY listeners wait for the header, refuse untrusted peers, read
 * a header split across buffers, refuse garbage, keep the socket address
 * for LOCAL, and leave the bytes after the header in the queue. Request
 * bodies: too slow over a window is refused, a window in which reading was
 * paused is not, a stall beyond client_body is, HTTP/2 streams only stall.
 * Anomaly detection: nothing while warming up, one spike counted per spike,
 * spike intervals do not move the baseline, min_rate bounds it. The JSON
 * counters are valid JSON (route paths escaped) and summed over shards.
 *
 * Method: protect.c is #included, so its statics (the shared tables, the
 * anomaly state, forwarded_client) are reachable. Each test loads a YAML
 * configuration with config_load_string, runs protect_boot, builds and
 * publishes a snapshot as the control thread does, and makes two shards by
 * hand (configuration, per-route counters, a timer wheel, a filter scratch).
 * The test thread is the only RCU reader, so a snapshot is freed right after
 * it is unpublished. Request heads are struct h1_msg built by hand whose
 * strings are exact-size heap copies, so the SANITIZE=1 build catches a read
 * past a slice. Times are set by hand (s->now_ms, protect_tick's now_ms);
 * only the rate limit reads the real clock, and its tests use rates slow
 * enough (1/m, 1/s) that only a pause of a second or more between two
 * requests of one test could change a verdict.
 */
#include "core/protect.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define NSHARDS 2

#define POOLS                                                                                      \
	"pools:\n"                                                                                 \
	"  - name: app\n"                                                                          \
	"    backends: [127.0.0.1:9001]\n"

/* Listeners: L_XFF trusts 10/8 and 2001:db8:f::/48 as proxies; L_ACL lets
 * only 127/8 connect, less 127.0.0.9; L_PP wants a PROXY header from
 * 192.0.2.0/24; L_PP_ACL wants one from anyone, then admits 198.51.100/24. */
#define LISTENERS                                                                                  \
	"listeners:\n"                                                                             \
	"  - address: 127.0.0.1:8080\n"                                                            \
	"    trusted_proxies: [10.0.0.0/8, \"2001:db8:f::/48\"]\n"                                 \
	"  - address: 127.0.0.1:8081\n"                                                            \
	"    allow: [127.0.0.0/8]\n"                                                               \
	"    deny: [127.0.0.9]\n"                                                                  \
	"  - address: 127.0.0.1:8082\n"                                                            \
	"    proxy_protocol: true\n"                                                               \
	"    trusted_proxies: [192.0.2.0/24]\n"                                                    \
	"  - address: 127.0.0.1:8083\n"                                                            \
	"    proxy_protocol: true\n"                                                               \
	"    allow: [198.51.100.0/24]\n" POOLS
enum { L_XFF, L_ACL, L_PP, L_PP_ACL };

#define ROUTES                                                                                     \
	"routes:\n"                                                                                \
	"  - path: /private/\n"                                                                    \
	"    pool: app\n"                                                                          \
	"    allow: [198.51.100.0/24]\n"                                                           \
	"  - path: /filtered/\n"                                                                   \
	"    pool: app\n"                                                                          \
	"    filters:\n"                                                                           \
	"      methods: [GET, POST]\n"                                                             \
	"      max_uri: 40\n"                                                                      \
	"      rules:\n"                                                                           \
	"        - name: dotdot\n"                                                                 \
	"          path: '\\.\\./'\n"                                                              \
	"        - name: scanner\n"                                                                \
	"          header: User-Agent\n"                                                           \
	"          value: '(?i)sqlmap'\n"                                                          \
	"  - path: /limited/\n"                                                                    \
	"    pool: app\n"                                                                          \
	"    rate_limit:\n"                                                                        \
	"      rate: 1/m\n"                                                                        \
	"      burst: 1\n"                                                                         \
	"  - path: /limited503/\n"                                                                 \
	"    pool: app\n"                                                                          \
	"    rate_limit:\n"                                                                        \
	"      rate: 1/m\n"                                                                        \
	"      status: 503\n"                                                                      \
	"  - path: /delayed/\n"                                                                    \
	"    pool: app\n"                                                                          \
	"    rate_limit:\n"                                                                        \
	"      rate: 1/s\n"                                                                        \
	"      delay: 5s\n"                                                                        \
	"  - path: /keyed/\n"                                                                      \
	"    pool: app\n"                                                                          \
	"    rate_limit:\n"                                                                        \
	"      rate: 1/m\n"                                                                        \
	"      key: header:X-API-Key\n"
enum { R_PRIVATE, R_FILTERED, R_LIMITED, R_LIMITED503, R_DELAYED, R_KEYED };

#define LIMITS                                                                                     \
	"limits:\n"                                                                                \
	"  conns_total: 3\n"                                                                       \
	"  conns_per_ip: 2\n"                                                                      \
	"  body_min_rate: 1000\n"                                                                  \
	"  body_rate_window: 10s\n"                                                                \
	"timeouts:\n"                                                                              \
	"  client_body: 30s\n"

#define ANOMALY                                                                                    \
	"anomaly:\n"                                                                               \
	"  enabled: true\n"                                                                        \
	"  interval: 1s\n"                                                                         \
	"  baseline: 10s\n"                                                                        \
	"  factor: 300\n"                                                                          \
	"  min_rate: 10\n"                                                                         \
	"  error_factor: 300\n"                                                                    \
	"  min_error_rate: 2\n"

#define FULL LISTENERS ROUTES LIMITS ANOMALY

/* ---- fixture: configuration, tables, snapshot, shards, one connection ---- */

struct fx {
	struct config *cfg;
	struct uid_registry *reg;
	struct snapshot *snap;
	struct shard *sh; /* [NSHARDS] */
	struct conn *c;
};

/* The test's fixture, freed by fx_teardown if a failed assertion left it
 * behind, so that one failure does not fail the tests after it. */
static struct fx *live;

static struct fx *fx_new(const char *yaml)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[CONFIG_ERR_MAX] = "";

	assert_non_null(f);
	f->cfg = calloc(1, sizeof(*f->cfg));
	f->reg = calloc(1, sizeof(*f->reg));
	f->sh = calloc(NSHARDS, sizeof(*f->sh));
	f->c = calloc(1, sizeof(*f->c));
	assert_true(f->cfg != NULL && f->reg != NULL && f->sh != NULL && f->c != NULL);
	if (!config_load_string(f->cfg, "protect.yaml", yaml, strlen(yaml), err, sizeof(err)))
		fail_msg("config: %s", err);
	if (!protect_boot(f->cfg, err, sizeof(err)))
		fail_msg("protect_boot: %s", err);
	f->snap = snapshot_build(f->cfg, f->reg, 1, err, sizeof(err));
	if (f->snap == NULL)
		fail_msg("snapshot_build: %s", err);
	assert_null(snapshot_publish(f->snap));
	for (uint32_t i = 0; i < NSHARDS; i++) {
		struct shard *s = &f->sh[i];

		s->id = i;
		s->cfg = f->cfg;
		s->rstats = calloc(CONFIG_ROUTES_MAX + 1, sizeof(*s->rstats));
		s->filter_scratch = filter_scratch_new();
		assert_true(s->rstats != NULL && s->filter_scratch != NULL);
		timer_wheel_init(&s->wheel, 0, 1);
		s->now_ms = 1000;
	}
	protect_set_shards(f->sh, NSHARDS);
	live = f;
	return f;
}

static void fx_free(struct fx *f)
{
	live = NULL;
	protect_set_shards(NULL, 0);
	protect_shutdown();
	/* The test thread is the only reader: no grace period to wait for. */
	assert_ptr_equal(snapshot_publish(NULL), f->snap);
	snapshot_free(f->snap);
	for (uint32_t i = 0; i < NSHARDS; i++) {
		free(f->sh[i].rstats);
		filter_scratch_free(f->sh[i].filter_scratch);
	}
	config_free(f->cfg);
	free(f->cfg);
	free(f->reg);
	free(f->sh);
	free(f->c);
	free(f);
}

static int fx_teardown(void **state)
{
	(void)state;
	if (live != NULL)
		fx_free(live);
	return 0;
}

static uint32_t open_counted(void)
{
	return atomic_load(&conns_total);
}

/* sa_make fills a sockaddr from an IPv4 or IPv6 address text. */
static const struct sockaddr *sa_make(struct sockaddr_storage *ss, const char *ip)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':') == NULL) {
		struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(40000)};

		assert_int_equal(inet_pton(AF_INET, ip, &in.sin_addr), 1);
		memcpy(ss, &in, sizeof(in));
	} else {
		struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(40000)};

		assert_int_equal(inet_pton(AF_INET6, ip, &in6.sin6_addr), 1);
		memcpy(ss, &in6, sizeof(in6));
	}
	return (const struct sockaddr *)ss;
}

/* conn_open resets `c` (zeroed or used before, its timer armed only in
 * s's wheel) and opens it on `listener` from `ip`. */
static int conn_open(struct shard *s, struct conn *c, uint8_t listener, const char *ip)
{
	struct sockaddr_storage ss;

	timer_disarm(&s->wheel, &c->timer);
	memset(c, 0, sizeof(*c));
	c->listener = listener;
	return protect_conn_open(s, c, sa_make(&ss, ip));
}

/* ---- request heads with exact-size heap strings ---- */

#define REQ_FIELDS_MAX 8

struct req {
	struct h1_msg m;
	struct h1_header h[REQ_FIELDS_MAX];
	char *mem[2 * REQ_FIELDS_MAX + 2];
	size_t nmem;
};

static struct h1_str heap_str(struct req *r, const char *text)
{
	size_t len = strlen(text);
	char *p = malloc(len > 0 ? len : 1);

	assert_non_null(p);
	memcpy(p, text, len);
	r->mem[r->nmem++] = p;
	return (struct h1_str){.ptr = p, .len = len};
}

/* req_make builds "method target" with fields given as name, value pairs
 * ending in NULL. */
static void req_make(struct req *r, const char *method, const char *target, const char *const *kv)
{
	memset(r, 0, sizeof(*r));
	r->m.method = heap_str(r, method);
	r->m.target = heap_str(r, target);
	r->m.headers = r->h;
	r->m.headers_cap = REQ_FIELDS_MAX;
	for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2) {
		assert_true(r->m.num_headers < REQ_FIELDS_MAX);
		r->h[r->m.num_headers].name = heap_str(r, kv[i]);
		r->h[r->m.num_headers].value = heap_str(r, kv[i + 1]);
		r->m.num_headers++;
	}
}

static void req_free(struct req *r)
{
	for (size_t i = 0; i < r->nmem; i++)
		free(r->mem[i]);
	r->nmem = 0;
}

/* request runs protect_request on a fresh head; returns the verdict and
 * sets *status (0 when it passed). */
static enum protect_verdict request(struct fx *f, struct shard *s, const char *method,
                                    const char *target, const char *const *kv, int route,
                                    int *status)
{
	struct req r;
	enum protect_verdict v;

	req_make(&r, method, target, kv);
	*status = 0;
	f->c->block_reason[0] = '\0';
	f->c->retry_after = 0;
	v = protect_request(s, f->c, &r.m, f->snap, route >= 0 ? &f->snap->routes[route] : NULL,
	                    status);
	req_free(&r);
	return v;
}

/* ---- 1. the client behind trusted proxies ---- */

struct xff_case {
	const char *peer;
	const char *xff[4]; /* X-Forwarded-For fields in order; NULL ends */
	const char *want;   /* c->client */
};

static const struct xff_case xff_cases[] = {
        {"10.0.0.5", {"203.0.113.7"}, "203.0.113.7"},
        {"10.0.0.5", {"203.0.113.7, 10.1.2.3"}, "203.0.113.7"},
        /* the last field's last element is the nearest */
        {"10.0.0.5", {"198.51.100.1, 10.9.9.9", "10.1.1.1"}, "198.51.100.1"},
        {"10.0.0.5", {"198.51.100.1", "203.0.113.7"}, "203.0.113.7"},
        {"10.0.0.5", {" 203.0.113.7 \t,\t 10.1.2.3\t"}, "203.0.113.7"},
        /* malformed elements end the walk: the last trusted address stays */
        {"10.0.0.5", {"198.51.100.1,,10.1.2.3"}, "10.1.2.3"},
        {"10.0.0.5", {"198.51.100.1, unknown, 10.1.2.3"}, "10.1.2.3"},
        {"10.0.0.5", {"198.51.100.1", "unknown", "10.1.1.1"}, "10.1.1.1"},
        {"10.0.0.5", {"198.51.100.1, 1.2.3.4:80"}, "10.0.0.5"},
        {"10.0.0.5", {"198.51.100.1, [2001:db8::1]"}, "10.0.0.5"},
        {"10.0.0.5", {"198.51.100.1, 010.1.2.3"}, "10.0.0.5"},
        {"10.0.0.5", {"198.51.100.1, 10.1.2.3/8"}, "10.0.0.5"},
        {"10.0.0.5", {"203.0.113.7,"}, "10.0.0.5"},
        {"10.0.0.5", {"198.51.100.1", ",10.1.2.3"}, "10.1.2.3"},
        {"10.0.0.5", {"198.51.100.1", " \t, 10.1.2.3"}, "10.1.2.3"},
        {"10.0.0.5", {"198.51.100.1", ""}, "10.0.0.5"},
        {"10.0.0.5", {"198.51.100.1", "10.1.2.3", ""}, "10.0.0.5"},
        /* IPv6, and IPv4-mapped IPv6 as IPv4 */
        {"10.0.0.5", {"2001:db8::7, 2001:db8:f::1"}, "2001:db8::7"},
        {"10.0.0.5", {"::ffff:203.0.113.7"}, "203.0.113.7"},
        {"::ffff:10.0.0.5", {"203.0.113.7"}, "203.0.113.7"},
        {"2001:db8:f::2", {"203.0.113.7"}, "203.0.113.7"},
        /* every element trusted: the left-most */
        {"10.0.0.5", {"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
        {"10.0.0.5", {"10.3.3.3", "2001:db8:f::9"}, "10.3.3.3"},
        /* no field, or a peer that is not a trusted proxy */
        {"10.0.0.5", {NULL}, "10.0.0.5"},
        {"192.0.2.1", {"203.0.113.7"}, "192.0.2.1"},
        {"2001:db8::2", {"203.0.113.7"}, "2001:db8::2"},
};

/* xff_client resolves `peer` with the given X-Forwarded-For fields (and
 * other fields around them that must be ignored) and returns c->client. */
static const char *xff_client(struct fx *f, const char *peer, const char *const *xff)
{
	const char *kv[2 * REQ_FIELDS_MAX + 1];
	size_t n = 0;
	struct req r;

	kv[n++] = "X-Real-IP";
	kv[n++] = "198.51.100.99";
	for (size_t i = 0; i < 4 && xff[i] != NULL; i++) {
		kv[n++] = i % 2 == 0 ? "X-Forwarded-For" : "x-forwarded-for";
		kv[n++] = xff[i];
	}
	kv[n++] = "Forwarded";
	kv[n++] = "for=198.51.100.98";
	kv[n] = NULL;
	assert_int_equal(conn_open(&f->sh[0], f->c, L_XFF, peer), 1);
	req_make(&r, "GET", "/", kv);
	resolve_client(f->c, &r.m, f->snap);
	req_free(&r);
	protect_conn_close(&f->sh[0], f->c);
	return f->c->client;
}

static void test_xff_cases(void **state)
{
	struct fx *f = fx_new(LISTENERS);

	(void)state;
	for (size_t i = 0; i < RLB_ARRAY_LEN(xff_cases); i++) {
		const struct xff_case *k = &xff_cases[i];
		const char *got = xff_client(f, k->peer, k->xff);

		if (strcmp(got, k->want) != 0)
			fail_msg("case %zu (peer %s, \"%s\"): client %s, want %s", i, k->peer,
			         k->xff[0] != NULL ? k->xff[0] : "", got, k->want);
	}
	fx_free(f);
}

/* The walk against a model: X-Forwarded-For fields are one list, as if
 * joined with commas (RFC 9110 section 5.3); read from the right, each
 * address becomes the client and a trusted one lets the walk go on; a
 * malformed element, an empty one included, ends it. Random lists of
 * trusted, client and malformed elements with random blanks around them. */
enum { E_TRUSTED, E_CLIENT, E_BAD, E_KINDS };

static const char *const xff_elems[E_KINDS][3] = {
        {"10.1.1.1", "10.2.2.2", "2001:db8:f::5"},
        {"198.51.100.1", "203.0.113.7", "2001:db8::9"},
        {"unknown", "1.2.3.4:80", ""},
};

static uint32_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (uint32_t)(*x >> 32);
}

/* xff_random fills fields[] (and xff[], NULL-terminated) and returns the
 * client the model expects behind peer 10.0.0.5. */
static const char *xff_random(uint64_t *rng, char fields[3][160], const char *xff[4])
{
	static const char *const pads[] = {"", " ", "\t", " \t"};
	const char *flat[9];
	int kinds[9], nflat = 0, nf = 1 + (int)(xorshift(rng) % 3);
	const char *want = "10.0.0.5";

	for (int i = 0; i < nf; i++) {
		int ne = 1 + (int)(xorshift(rng) % 3);
		size_t n = 0;

		for (int j = 0; j < ne; j++) {
			int kind = (int)(xorshift(rng) % E_KINDS);
			const char *text = xff_elems[kind][xorshift(rng) % 3];

			n += (size_t)snprintf(fields[i] + n, 160 - n, "%s%s%s%s", j > 0 ? "," : "",
			                      pads[xorshift(rng) % 4], text,
			                      pads[xorshift(rng) % 4]);
			kinds[nflat] = kind;
			flat[nflat++] = text;
		}
		xff[i] = fields[i];
	}
	xff[nf] = NULL;
	for (int k = nflat; k-- > 0;) {
		if (kinds[k] == E_BAD)
			break;
		want = flat[k];
		if (kinds[k] == E_CLIENT)
			break;
	}
	return want;
}

static void test_xff_model(void **state)
{
	struct fx *f = fx_new(LISTENERS);
	uint64_t rng = 0x9e3779b97f4a7c15u;
	char fields[3][160];
	const char *xff[4];

	(void)state;
	for (int iter = 0; iter < 3000; iter++) {
		const char *want = xff_random(&rng, fields, xff);
		const char *got = xff_client(f, "10.0.0.5", xff);

		if (strcmp(got, want) != 0)
			fail_msg("[\"%s\", \"%s\", \"%s\"]: client %s, want %s", xff[0],
			         xff[1] != NULL ? xff[1] : "-",
			         xff[1] != NULL && xff[2] != NULL ? xff[2] : "-", got, want);
	}
	fx_free(f);
}

/* raddr and rfam carry the address the text names; the peer text stays. */
static void test_xff_raddr(void **state)
{
	struct fx *f = fx_new(LISTENERS);
	const char *v4[] = {"203.0.113.7, 10.1.2.3", NULL};
	const char *v6[] = {"2001:db8::7", NULL};
	const uint8_t want4[16] = {203, 0, 113, 7};
	uint8_t want6[16];

	(void)state;
	assert_string_equal(xff_client(f, "10.0.0.5", v4), "203.0.113.7");
	assert_int_equal(f->c->rfam, 4);
	assert_memory_equal(f->c->raddr, want4, 16);
	assert_string_equal(f->c->peer, "10.0.0.5");
	assert_int_equal(f->c->cfam, 4);
	assert_string_equal(xff_client(f, "::ffff:10.0.0.5", v6), "2001:db8::7");
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::7", want6), 1);
	assert_int_equal(f->c->rfam, 6);
	assert_memory_equal(f->c->raddr, want6, 16);
	assert_string_equal(f->c->peer, "10.0.0.5"); /* mapped peers are written as IPv4 */
	fx_free(f);
}

/* ---- 2. route allow lists, filters, rate limits ---- */

static void test_request_no_route(void **state)
{
	struct fx *f = fx_new(FULL);
	int st;

	(void)state;
	assert_int_equal(conn_open(&f->sh[0], f->c, L_XFF, "192.0.2.1"), 1);
	assert_int_equal(request(f, &f->sh[0], "GET", "/", NULL, -1, &st), PROTECT_PASS);
	assert_int_equal(f->c->route, 0);
	assert_int_equal(f->sh[0].rstats[0].requests, 1);
	assert_string_equal(f->c->block_reason, "");
	protect_conn_close(&f->sh[0], f->c);
	fx_free(f);
}

static void test_request_route_acl(void **state)
{
	struct fx *f = fx_new(FULL);
	const char *inside[] = {"X-Forwarded-For", "198.51.100.7", NULL};
	const char *outside[] = {"X-Forwarded-For", "203.0.113.7", NULL};
	struct route_stats *rs = &f->sh[1].rstats[R_PRIVATE + 1];
	struct shard *s = &f->sh[1];
	int st;

	(void)state;
	/* behind a trusted proxy, the forwarded client is what the list sees */
	assert_int_equal(conn_open(s, f->c, L_XFF, "10.0.0.5"), 1);
	assert_int_equal(request(f, s, "GET", "/private/a", inside, R_PRIVATE, &st), PROTECT_PASS);
	assert_int_equal(request(f, s, "GET", "/private/a", outside, R_PRIVATE, &st),
	                 PROTECT_REFUSE);
	assert_int_equal(st, 403);
	assert_string_equal(f->c->block_reason, "denied");
	assert_string_equal(f->c->client, "203.0.113.7");
	/* the proxy itself is not on the list */
	assert_int_equal(request(f, s, "GET", "/private/a", NULL, R_PRIVATE, &st), PROTECT_REFUSE);
	protect_conn_close(s, f->c);
	/* an untrusted peer cannot claim an address on the list */
	assert_int_equal(conn_open(s, f->c, L_XFF, "203.0.113.7"), 1);
	assert_int_equal(request(f, s, "GET", "/private/a", inside, R_PRIVATE, &st),
	                 PROTECT_REFUSE);
	assert_string_equal(f->c->client, "203.0.113.7");
	protect_conn_close(s, f->c);
	assert_int_equal(conn_open(s, f->c, L_XFF, "198.51.100.8"), 1);
	assert_int_equal(request(f, s, "GET", "/private/a", outside, R_PRIVATE, &st), PROTECT_PASS);
	protect_conn_close(s, f->c);
	assert_int_equal(rs->requests, 5);
	assert_int_equal(rs->denied, 3);
	assert_int_equal(f->sh[0].rstats[R_PRIVATE + 1].requests, 0);
	fx_free(f);
}

/* filtered expects a refusal by the /filtered/ route's filters. */
static void filtered(struct fx *f, const char *method, const char *target, const char *const *kv,
                     int want_status, const char *want_rule)
{
	int st;

	assert_int_equal(request(f, &f->sh[0], method, target, kv, R_FILTERED, &st),
	                 PROTECT_REFUSE);
	assert_int_equal(st, want_status);
	assert_string_equal(f->c->block_reason, want_rule);
}

static void test_request_filters(void **state)
{
	struct fx *f = fx_new(FULL);
	const char *ua_ok[] = {"User-Agent", "curl/8", NULL};
	const char *ua_bad[] = {"Accept", "*/*", "user-agent", "SQLMap/1.7", NULL};
	const struct filter *flt = f->snap->routes[R_FILTERED].filter;
	struct route_stats *rs = &f->sh[0].rstats[R_FILTERED + 1];
	int st;

	(void)state;
	assert_non_null(flt);
	assert_int_equal(conn_open(&f->sh[0], f->c, L_XFF, "192.0.2.1"), 1);
	assert_int_equal(request(f, &f->sh[0], "GET", "/filtered/ok", ua_ok, R_FILTERED, &st),
	                 PROTECT_PASS);
	assert_string_equal(f->c->block_reason, "");
	filtered(f, "DELETE", "/filtered/ok", NULL, 403, "method");
	filtered(f, "GET", "/filtered/0123456789012345678901234567890", NULL, 414, "max_uri");
	filtered(f, "GET", "/filtered/a/../b", NULL, 403, "dotdot");
	filtered(f, "POST", "/filtered/x", ua_bad, 403, "scanner");
	assert_int_equal(rs->requests, 5);
	assert_int_equal(rs->filtered, 4);
	assert_int_equal(rs->denied, 0);
	assert_int_equal(filter_rule_hits(flt, 0), 1);
	assert_int_equal(filter_rule_hits(flt, 1), 1);
	protect_conn_close(&f->sh[0], f->c);
	fx_free(f);
}

/* The reason a refusal is logged with must outlive the snapshot it came
 * from: the access-log line is written when the 403 has been sent, loop
 * turns (quiescent states) later, and a reload may have freed the snapshot
 * and its filters by then. */
static void test_block_reason_outlives_snapshot(void **state)
{
	struct fx *f = fx_new(FULL);
	const struct filter *flt = f->snap->routes[R_FILTERED].filter;
	char err[256] = "";
	struct snapshot *next;

	(void)state;
	assert_int_equal(conn_open(&f->sh[0], f->c, L_XFF, "192.0.2.1"), 1);
	filtered(f, "GET", "/filtered/a/../b", NULL, 403, "dotdot");
	for (size_t i = 0; i < filter_num_rules(flt); i++)
		assert_ptr_not_equal(f->c->block_reason, filter_rule_name(flt, i));
	/* a reload: publish a new snapshot, free the old one after the grace
	 * period (here at once: the test thread is the only reader) */
	next = snapshot_build(f->cfg, f->reg, 2, err, sizeof(err));
	assert_non_null(next);
	assert_ptr_equal(snapshot_publish(next), f->snap);
	snapshot_free(f->snap);
	f->snap = next;
	assert_string_equal(f->c->block_reason, "dotdot");
	protect_conn_close(&f->sh[0], f->c);
	fx_free(f);
}

static void test_request_rate_reject(void **state)
{
	struct fx *f = fx_new(FULL);
	const char *other[] = {"X-Forwarded-For", "198.51.100.2", NULL};
	struct route_stats *rs = &f->sh[0].rstats[R_LIMITED + 1];
	struct shard *s = &f->sh[0];
	int st;

	(void)state;
	assert_int_equal(conn_open(s, f->c, L_XFF, "10.0.0.5"), 1);
	/* 1/m with a burst of 1: two at once, then 429 for about a minute */
	assert_int_equal(request(f, s, "GET", "/limited/", NULL, R_LIMITED, &st), PROTECT_PASS);
	assert_int_equal(request(f, s, "GET", "/limited/", NULL, R_LIMITED, &st), PROTECT_PASS);
	assert_int_equal(request(f, &f->sh[1], "GET", "/limited/", NULL, R_LIMITED, &st),
	                 PROTECT_REFUSE);
	assert_int_equal(st, 429);
	assert_string_equal(f->c->block_reason, "rate_limited");
	assert_in_range(f->c->retry_after, 58, 60);
	assert_false(f->c->rl_hold);
	assert_false(timer_armed(&f->c->timer));
	/* another client behind the same proxy has its own budget */
	assert_int_equal(request(f, s, "GET", "/limited/", other, R_LIMITED, &st), PROTECT_PASS);
	assert_int_equal(rs->requests, 3);
	assert_int_equal(rs->rate_limited, 0);
	assert_int_equal(f->sh[1].rstats[R_LIMITED + 1].rate_limited, 1);
	/* status: 503 */
	assert_int_equal(request(f, s, "GET", "/limited503/", NULL, R_LIMITED503, &st),
	                 PROTECT_PASS);
	assert_int_equal(request(f, s, "GET", "/limited503/", NULL, R_LIMITED503, &st),
	                 PROTECT_REFUSE);
	assert_int_equal(st, 503);
	assert_int_equal(f->sh[0].rstats[R_LIMITED503 + 1].rate_limited, 1);
	protect_conn_close(s, f->c);
	fx_free(f);
}

/* key: header:X-API-Key counts by the field's value; without it (or empty)
 * by the client address. */
static void test_request_rate_header_key(void **state)
{
	struct fx *f = fx_new(FULL);
	const char *k1[] = {"x-api-key", "alpha", NULL};
	const char *k2[] = {"X-API-Key", "beta", NULL};
	const char *empty[] = {"X-API-Key", "", NULL};
	struct shard *s = &f->sh[0];
	int st;

	(void)state;
	assert_int_equal(conn_open(s, f->c, L_XFF, "192.0.2.1"), 1);
	assert_int_equal(request(f, s, "GET", "/keyed/", k1, R_KEYED, &st), PROTECT_PASS);
	assert_int_equal(request(f, s, "GET", "/keyed/", k1, R_KEYED, &st), PROTECT_REFUSE);
	assert_int_equal(request(f, s, "GET", "/keyed/", k2, R_KEYED, &st), PROTECT_PASS);
	assert_int_equal(request(f, s, "GET", "/keyed/", NULL, R_KEYED, &st), PROTECT_PASS);
	assert_int_equal(request(f, s, "GET", "/keyed/", empty, R_KEYED, &st), PROTECT_REFUSE);
	protect_conn_close(s, f->c);
	fx_free(f);
}

/* Delay mode: the second request at 1/s waits about a second (HOLD, timer
 * armed); when proxy.c's timer grants it, the same head passes once and is
 * not counted again. */
static void test_request_rate_delay(void **state)
{
	struct fx *f = fx_new(FULL);
	struct route_stats *rs = &f->sh[0].rstats[R_DELAYED + 1];
	struct shard *s = &f->sh[0];
	int st;

	(void)state;
	s->now_ms = 5000;
	assert_int_equal(conn_open(s, f->c, L_XFF, "192.0.2.1"), 1);
	assert_int_equal(request(f, s, "GET", "/delayed/", NULL, R_DELAYED, &st), PROTECT_PASS);
	assert_false(timer_armed(&f->c->timer));
	assert_int_equal(request(f, s, "GET", "/delayed/", NULL, R_DELAYED, &st), PROTECT_HOLD);
	assert_int_equal(st, 0);
	assert_true(f->c->rl_hold);
	assert_string_equal(f->c->block_reason, "");
	assert_true(timer_armed(&f->c->timer));
	assert_in_range(f->c->timer.expire_tick, 5001, 6000);
	assert_int_equal(rs->delayed, 1);
	assert_int_equal(rs->requests, 2);
	/* what conn_on_timer does when the hold is over */
	f->c->rl_hold = false;
	f->c->rl_granted = true;
	assert_int_equal(request(f, s, "GET", "/delayed/", NULL, R_DELAYED, &st), PROTECT_PASS);
	assert_false(f->c->rl_granted);
	assert_int_equal(rs->requests, 2);
	assert_int_equal(rs->delayed, 1);
	assert_int_equal(rs->rate_limited, 0);
	/* the next one is held again, about two seconds now */
	assert_int_equal(request(f, s, "GET", "/delayed/", NULL, R_DELAYED, &st), PROTECT_HOLD);
	assert_in_range(f->c->timer.expire_tick, 6001, 7000);
	assert_int_equal(rs->requests, 3);
	protect_conn_close(s, f->c);
	fx_free(f);
}

/* A grant is for the held request's next pass only. If that pass does not
 * reach the rate limit (a reload in between left the request with no
 * route, or a route without one), the next request on the connection must
 * not inherit the grant: it is counted and limited as any other. */
static void test_request_grant_once(void **state)
{
	struct fx *f = fx_new(FULL);
	struct route_stats *rs = &f->sh[0].rstats[R_DELAYED + 1];
	struct shard *s = &f->sh[0];
	int st;

	(void)state;
	assert_int_equal(conn_open(s, f->c, L_XFF, "192.0.2.1"), 1);
	assert_int_equal(request(f, s, "GET", "/delayed/", NULL, R_DELAYED, &st), PROTECT_PASS);
	assert_int_equal(request(f, s, "GET", "/delayed/", NULL, R_DELAYED, &st), PROTECT_HOLD);
	f->c->rl_hold = false;
	f->c->rl_granted = true;
	assert_int_equal(request(f, s, "GET", "/delayed/", NULL, -1, &st), PROTECT_PASS);
	assert_false(f->c->rl_granted);
	assert_int_equal(s->rstats[0].requests, 0); /* the held request, counted before */
	assert_int_equal(request(f, s, "GET", "/delayed/", NULL, R_DELAYED, &st), PROTECT_HOLD);
	assert_int_equal(rs->requests, 3);
	assert_int_equal(rs->delayed, 2);
	protect_conn_close(s, f->c);
	fx_free(f);
}

/* HTTP/2 streams are never held: delay mode refuses them. */
static void test_request_rate_delay_h2(void **state)
{
	struct fx *f = fx_new(FULL);
	struct shard *s = &f->sh[0];
	int st;

	(void)state;
	assert_int_equal(conn_open(s, f->c, L_XFF, "192.0.2.1"), 1);
	f->c->h2_stream = true;
	assert_int_equal(request(f, s, "GET", "/delayed/", NULL, R_DELAYED, &st), PROTECT_PASS);
	assert_int_equal(request(f, s, "GET", "/delayed/", NULL, R_DELAYED, &st), PROTECT_REFUSE);
	assert_int_equal(st, 429);
	assert_in_range(f->c->retry_after, 1, 1);
	assert_false(f->c->rl_hold);
	assert_false(timer_armed(&f->c->timer));
	assert_int_equal(s->rstats[R_DELAYED + 1].rate_limited, 1);
	assert_int_equal(s->rstats[R_DELAYED + 1].delayed, 0);
	protect_conn_close(s, f->c);
	fx_free(f);
}

static void test_note_status(void **state)
{
	struct fx *f = fx_new(FULL);
	const int codes[] = {200, 404, 499, 500, 502, 599, 600};
	int st;

	(void)state;
	assert_int_equal(conn_open(&f->sh[0], f->c, L_XFF, "192.0.2.1"), 1);
	assert_int_equal(request(f, &f->sh[0], "GET", "/private/", NULL, R_PRIVATE, &st),
	                 PROTECT_REFUSE);
	for (size_t i = 0; i < RLB_ARRAY_LEN(codes); i++) {
		f->c->status = codes[i];
		protect_note_status(&f->sh[0], f->c);
	}
	assert_int_equal(f->sh[0].rstats[R_PRIVATE + 1].errors, 3);
	protect_conn_close(&f->sh[0], f->c);
	fx_free(f);
}

/* ---- 3. admission ---- */

static void test_conn_listener_acl(void **state)
{
	struct fx *f = fx_new(FULL);
	struct conn *c = f->c;
	struct shard *s = &f->sh[0];

	(void)state;
	assert_int_equal(conn_open(s, c, L_ACL, "127.0.0.1"), 1);
	assert_true(c->counted_total && c->counted_ip);
	assert_false(c->pp_wait);
	protect_conn_close(s, c);
	assert_int_equal(conn_open(s, c, L_ACL, "::ffff:127.0.0.1"), 1);
	assert_string_equal(c->peer, "127.0.0.1");
	assert_int_equal(c->cfam, 4);
	protect_conn_close(s, c);
	assert_int_equal(open_counted(), 0);
	assert_int_equal(conn_open(s, c, L_ACL, "10.0.0.1"), 0);
	assert_int_equal(conn_open(s, c, L_ACL, "127.0.0.9"), 0);
	assert_int_equal(conn_open(s, c, L_ACL, "::ffff:127.0.0.9"), 0);
	assert_int_equal(conn_open(s, c, L_ACL, "::1"), 0); /* an allow list exists */
	assert_false(c->counted_total || c->counted_ip);
	protect_conn_close(s, c); /* what the caller does: releases nothing */
	assert_int_equal(s->stats.refused_acl, 4);
	assert_int_equal(s->stats.refused_total + s->stats.refused_per_ip, 0);
	assert_int_equal(open_counted(), 0);
	fx_free(f);
}

static void test_conns_total(void **state)
{
	struct fx *f = fx_new(FULL);
	struct conn c[4] = {0};
	const char *addrs[] = {"192.0.2.1", "192.0.2.2", "2001:db8::3", "192.0.2.4"};

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(conn_open(&f->sh[i % NSHARDS], &c[i], L_XFF, addrs[i]), 1);
	assert_int_equal(open_counted(), 3);
	/* the fourth, on either shard, is over conns_total */
	assert_int_equal(conn_open(&f->sh[0], &c[3], L_XFF, addrs[3]), 0);
	assert_int_equal(conn_open(&f->sh[1], &c[3], L_XFF, addrs[3]), 0);
	assert_false(c[3].counted_total || c[3].counted_ip);
	protect_conn_close(&f->sh[1], &c[3]);
	assert_int_equal(open_counted(), 3);
	assert_int_equal(f->sh[0].stats.refused_total + f->sh[1].stats.refused_total, 2);
	/* its address was not counted either: it may come in twice later */
	protect_conn_close(&f->sh[1], &c[1]);
	protect_conn_close(&f->sh[1], &c[1]); /* a second close releases nothing */
	assert_int_equal(open_counted(), 2);
	assert_int_equal(conn_open(&f->sh[1], &c[3], L_XFF, addrs[3]), 1);
	assert_int_equal(conn_open(&f->sh[0], &c[1], L_XFF, addrs[3]), 0);
	assert_int_equal(open_counted(), 3);
	protect_conn_close(&f->sh[0], &c[0]);
	assert_int_equal(conn_open(&f->sh[0], &c[1], L_XFF, addrs[3]), 1);
	for (int i = 1; i < 4; i++)
		protect_conn_close(&f->sh[i % NSHARDS], &c[i]);
	assert_int_equal(open_counted(), 0);
	fx_free(f);
}

static void test_conns_per_ip(void **state)
{
	struct fx *f = fx_new(FULL);
	struct conn c[4] = {0};

	(void)state;
	/* two per address, across shards; the mapped form is the same address */
	assert_int_equal(conn_open(&f->sh[0], &c[0], L_XFF, "203.0.113.5"), 1);
	assert_int_equal(conn_open(&f->sh[1], &c[1], L_XFF, "::ffff:203.0.113.5"), 1);
	assert_int_equal(conn_open(&f->sh[0], &c[2], L_XFF, "203.0.113.5"), 0);
	assert_int_equal(f->sh[0].stats.refused_per_ip, 1);
	assert_false(c[2].counted_total || c[2].counted_ip);
	assert_int_equal(open_counted(), 2); /* the refusal gave its total back */
	assert_int_equal(conn_open(&f->sh[1], &c[2], L_XFF, "203.0.113.6"), 1);
	protect_conn_close(&f->sh[1], &c[1]);
	assert_int_equal(conn_open(&f->sh[0], &c[3], L_XFF, "203.0.113.5"), 1);
	protect_conn_close(&f->sh[0], &c[0]);
	protect_conn_close(&f->sh[1], &c[2]);
	protect_conn_close(&f->sh[0], &c[3]);
	assert_int_equal(open_counted(), 0);
	/* everything was released: the address has its two slots again */
	assert_int_equal(conn_open(&f->sh[0], &c[0], L_XFF, "203.0.113.5"), 1);
	assert_int_equal(conn_open(&f->sh[0], &c[1], L_XFF, "203.0.113.5"), 1);
	protect_conn_close(&f->sh[0], &c[0]);
	protect_conn_close(&f->sh[0], &c[1]);
	assert_int_equal(f->sh[0].stats.ip_untracked + f->sh[1].stats.ip_untracked, 0);
	fx_free(f);
}

/* A PROXY listener admits nothing until the header: the peer is only
 * checked against trusted_proxies, and nothing is counted yet. */
static void test_conn_proxy_listener(void **state)
{
	struct fx *f = fx_new(FULL);
	struct shard *s = &f->sh[0];

	(void)state;
	assert_int_equal(conn_open(s, f->c, L_PP, "192.0.2.10"), 1);
	assert_true(f->c->pp_wait);
	assert_false(f->c->counted_total || f->c->counted_ip);
	assert_int_equal(open_counted(), 0);
	protect_conn_close(s, f->c);
	assert_int_equal(conn_open(s, f->c, L_PP, "203.0.113.1"), 0);
	assert_int_equal(s->stats.proxy_errors, 1);
	/* without trusted_proxies any peer may send a header */
	assert_int_equal(conn_open(s, f->c, L_PP_ACL, "203.0.113.1"), 1);
	assert_true(f->c->pp_wait);
	protect_conn_close(s, f->c);
	assert_int_equal(open_counted(), 0);
	fx_free(f);
}

/* ---- 4. the PROXY header ---- */

#define PP_BUFS  8
#define PP_BSIZE 64

struct kernel {
	char region[PP_BUFS * PP_BSIZE];
	struct bufpool pool;
	bool owned[PP_BUFS];
};

static void kernel_recycle(struct bufpool *p, uint16_t bid)
{
	struct kernel *k = p->ctx;

	assert_true(bid < PP_BUFS);
	assert_false(k->owned[bid]);
	k->owned[bid] = true;
}

static struct kernel *kernel_new(void)
{
	struct kernel *k = calloc(1, sizeof(*k));

	assert_non_null(k);
	assert_int_equal(bufpool_init(&k->pool, k->region, PP_BUFS, PP_BSIZE, kernel_recycle, k),
	                 1);
	for (int i = 0; i < PP_BUFS; i++)
		k->owned[i] = true;
	return k;
}

static void kernel_free(struct kernel *k, struct bufq *q)
{
	bufq_clear(q, &k->pool);
	assert_int_equal(k->pool.held, 0);
	bufpool_cleanup(&k->pool);
	free(k);
}

/* recv appends bytes to `q` as a receive into a free buffer would. */
static void recv_bytes(struct kernel *k, struct bufq *q, const void *data, size_t len)
{
	for (uint16_t b = 0; b < PP_BUFS; b++) {
		if (!k->owned[b])
			continue;
		assert_true(len <= PP_BSIZE);
		k->owned[b] = false;
		memcpy(bufpool_data(&k->pool, b), data, len);
		bufq_push(q, &k->pool, b, (uint32_t)len);
		return;
	}
	fail_msg("no free buffer");
}

/* queue_text copies what is left in the queue into out (NUL-terminated). */
static const char *queue_text(struct kernel *k, struct bufq *q, char *out, size_t cap)
{
	struct iovec iov[PP_BUFS];
	uint64_t n = 0, got;
	int cnt = bufq_iov(q, &k->pool, 0, cap - 1, iov, PP_BUFS, &got);

	for (int i = 0; i < cnt; i++) {
		memcpy(out + n, iov[i].iov_base, iov[i].iov_len);
		n += iov[i].iov_len;
	}
	out[n] = '\0';
	return out;
}

static void test_proxy_header_split(void **state)
{
	static const char hdr[] = "PROXY TCP4 198.51.100.7 192.0.2.1 56324 80\r\n";
	static const char http[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct fx *f = fx_new(FULL);
	struct kernel *k = kernel_new();
	struct shard *s = &f->sh[0];
	struct bufq q;
	char rest[256];

	(void)state;
	bufq_init(&q);
	assert_int_equal(conn_open(s, f->c, L_PP_ACL, "203.0.113.1"), 1);
	assert_int_equal(protect_proxy_header(s, f->c, &q, &k->pool), 1); /* nothing yet */
	recv_bytes(k, &q, hdr, 20);
	assert_int_equal(protect_proxy_header(s, f->c, &q, &k->pool), 1);
	assert_true(f->c->pp_wait);
	assert_int_equal(q.bytes, 20);
	recv_bytes(k, &q, hdr + 20, sizeof(hdr) - 1 - 20);
	recv_bytes(k, &q, http, sizeof(http) - 1);
	assert_int_equal(protect_proxy_header(s, f->c, &q, &k->pool), 1);
	assert_false(f->c->pp_wait);
	assert_string_equal(f->c->peer, "198.51.100.7");
	assert_int_equal(f->c->cfam, 4);
	assert_true(f->c->counted_total && f->c->counted_ip);
	assert_int_equal(open_counted(), 1);
	assert_int_equal(q.bytes, sizeof(http) - 1);
	assert_string_equal(queue_text(k, &q, rest, sizeof(rest)), http);
	assert_int_equal(s->stats.proxy_errors, 0);
	protect_conn_close(s, f->c);
	assert_int_equal(open_counted(), 0);
	kernel_free(k, &q);
	fx_free(f);
}

/* One case of a header followed by "x": want is protect_proxy_header's
 * answer, peer the address afterwards. */
static void proxy_case(struct fx *f, uint8_t listener, const char *sock, const void *hdr,
                       size_t len, int want, const char *peer)
{
	struct kernel *k = kernel_new();
	struct shard *s = &f->sh[0];
	struct bufq q;
	char rest[16];

	bufq_init(&q);
	assert_int_equal(conn_open(s, f->c, listener, sock), 1);
	recv_bytes(k, &q, hdr, len);
	recv_bytes(k, &q, "x", 1);
	assert_int_equal(protect_proxy_header(s, f->c, &q, &k->pool), want);
	assert_string_equal(f->c->peer, peer);
	if (want == 1) {
		assert_false(f->c->pp_wait);
		assert_string_equal(queue_text(k, &q, rest, sizeof(rest)), "x");
	}
	protect_conn_close(s, f->c);
	kernel_free(k, &q);
}

static void test_proxy_header_cases(void **state)
{
	static const uint8_t local[] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51,
	                                0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00};
	static const uint8_t v2[] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
	                             0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c, 198,  51,   100,  9,
	                             192,  0,    2,    1,    0xdc, 0x04, 0x00, 0x50};
	static const char bad[] = "GET / HTTP/1.1\r\n";
	static const char v1_out[] = "PROXY TCP4 203.0.113.9 192.0.2.1 56324 80\r\n";
	struct fx *f = fx_new(FULL);
	struct shard *s = &f->sh[0];

	(void)state;
	/* LOCAL keeps the socket's address, which the allow list then sees */
	proxy_case(f, L_PP, "192.0.2.10", local, sizeof(local), 1, "192.0.2.10");
	proxy_case(f, L_PP_ACL, "198.51.100.1", local, sizeof(local), 1, "198.51.100.1");
	assert_int_equal(s->stats.refused_acl, 0);
	proxy_case(f, L_PP_ACL, "203.0.113.1", v2, sizeof(v2), 1, "198.51.100.9");
	/* the header's address is what the listener's allow list sees */
	proxy_case(f, L_PP_ACL, "198.51.100.1", v1_out, sizeof(v1_out) - 1, 0, "203.0.113.9");
	assert_int_equal(s->stats.refused_acl, 1);
	assert_int_equal(s->stats.proxy_errors, 0);
	/* no header */
	proxy_case(f, L_PP, "192.0.2.10", bad, sizeof(bad) - 1, 0, "192.0.2.10");
	assert_int_equal(s->stats.proxy_errors, 1);
	assert_int_equal(open_counted(), 0);
	fx_free(f);
}

/* ---- 5. request body rate ---- */

static void body_begin(struct fx *f, uint64_t now)
{
	struct shard *s = &f->sh[0];

	s->now_ms = now;
	assert_int_equal(conn_open(s, f->c, L_XFF, "192.0.2.1"), 1);
	f->c->recv_on = true;
	protect_body_start(s, f->c);
	protect_body_progress(s, f->c);
}

static bool body_at(struct fx *f, uint64_t now, uint64_t bytes)
{
	f->sh[0].now_ms = now;
	if (!protect_body_rate(&f->sh[0], f->c, bytes))
		return false;
	protect_body_progress(&f->sh[0], f->c);
	return true;
}

static bool timer_at(struct fx *f, uint64_t now)
{
	f->sh[0].now_ms = now;
	return protect_body_timer(&f->sh[0], f->c);
}

/* 1000 B/s over 10 s windows: 10,000 bytes a window. */
static void test_body_rate(void **state)
{
	struct fx *f = fx_new(FULL);
	struct shard *s = &f->sh[0];

	(void)state;
	body_begin(f, 1000);
	assert_int_equal(f->c->timer.expire_tick, 11000); /* the window ends first */
	assert_true(body_at(f, 2000, 6000));
	assert_true(body_at(f, 10999, 3999)); /* the window is not over */
	assert_int_equal(f->c->timer.expire_tick, 11000);
	assert_true(body_at(f, 11000, 1)); /* exactly the rate */
	assert_int_equal(f->c->body_win_ms, 11000);
	assert_int_equal(f->c->body_win_bytes, 0);
	assert_int_equal(f->c->timer.expire_tick, 21000);
	assert_true(body_at(f, 15000, 9000));
	assert_false(body_at(f, 21500, 500)); /* 9,500 bytes in 10.5 s */
	assert_int_equal(s->stats.body_too_slow, 1);
	assert_string_equal(f->c->block_reason, "body_too_slow");
	protect_conn_close(s, f->c);
	/* the timer ends a window in which nothing came */
	body_begin(f, 1000);
	assert_true(body_at(f, 3000, 100));
	assert_false(timer_at(f, 11000));
	assert_int_equal(s->stats.body_too_slow, 2);
	protect_conn_close(s, f->c);
	fx_free(f);
}

/* A window that ends while ringlb is not reading (the backend is not taking
 * the body) does not count; the next one, read in full, does. */
static void test_body_paused(void **state)
{
	struct fx *f = fx_new(FULL);
	struct shard *s = &f->sh[0];

	(void)state;
	body_begin(f, 1000);
	assert_true(body_at(f, 2000, 100));
	f->c->recv_on = false;
	assert_true(timer_at(f, 11000));
	assert_int_equal(f->c->body_win_ms, 11000);
	assert_int_equal(f->c->body_win_bytes, 0);
	assert_int_equal(f->c->timer.expire_tick, 21000);
	assert_int_equal(s->stats.body_too_slow, 0);
	/* reading resumes: the window that began paused is not judged ... */
	f->c->recv_on = true;
	assert_true(body_at(f, 12000, 100));
	assert_true(timer_at(f, 21000));
	assert_int_equal(s->stats.body_too_slow, 0);
	/* ... the next one, read through, is */
	assert_true(body_at(f, 22000, 100));
	assert_false(timer_at(f, 31000));
	assert_int_equal(s->stats.body_too_slow, 1);
	protect_conn_close(s, f->c);
	fx_free(f);
}

/* A pause in the middle of a window (back-pressure from the backend, seen
 * by conn_update_recv) keeps that window from being judged, even when
 * reading has resumed by the time it ends. */
static void test_body_paused_mid_window(void **state)
{
	struct fx *f = fx_new(FULL);
	struct shard *s = &f->sh[0];

	(void)state;
	body_begin(f, 1000);
	assert_true(body_at(f, 1100, 4000));
	f->c->body_paused = true; /* reading paused from 1200 to 10900 */
	assert_true(body_at(f, 11050, 500));
	assert_int_equal(s->stats.body_too_slow, 0);
	assert_int_equal(f->c->body_win_ms, 11050);
	assert_false(f->c->body_paused);
	protect_conn_close(s, f->c);
	fx_free(f);
}

/* client_body (30 s) bounds the gap between two reads; with body_min_rate
 * 0 it is the only bound, and the timer is armed for it. */
static void test_body_stall(void **state)
{
	struct fx *f = fx_new(FULL);
	struct shard *s = &f->sh[0];

	(void)state;
	f->cfg->limits.body_min_rate = 0;
	body_begin(f, 1000);
	assert_int_equal(f->c->timer.expire_tick, 31000);
	assert_true(body_at(f, 20000, 1));
	assert_int_equal(f->c->timer.expire_tick, 50000);
	assert_true(timer_at(f, 49999));
	assert_false(timer_at(f, 50000));
	assert_int_equal(s->stats.body_too_slow, 0);
	protect_conn_close(s, f->c);
	/* with a rate, a stall still ends the body before the rate does */
	f->cfg->limits.body_min_rate = 1;
	f->cfg->limits.body_rate_window_ms = 3600 * 1000;
	body_begin(f, 1000);
	assert_int_equal(f->c->timer.expire_tick, 31000);
	assert_false(timer_at(f, 31000));
	assert_int_equal(s->stats.body_too_slow, 0);
	protect_conn_close(s, f->c);
	fx_free(f);
}

static void test_body_h2_exempt(void **state)
{
	struct fx *f = fx_new(FULL);
	struct shard *s = &f->sh[0];

	(void)state;
	body_begin(f, 1000);
	f->c->h2_stream = true;
	protect_body_progress(s, f->c);
	assert_int_equal(f->c->timer.expire_tick, 31000);
	assert_true(body_at(f, 20000, 1));
	assert_true(body_at(f, 40000, 1));
	assert_true(timer_at(f, 50000));
	assert_false(timer_at(f, 70000));
	assert_int_equal(s->stats.body_too_slow, 0);
	protect_conn_close(s, f->c);
	fx_free(f);
}

/* ---- 6. anomaly detection ---- */

/* interval adds `req` requests and `err` 5xx answers to route index `idx`
 * (split over the shards) and ticks one interval (1 s) later. */
static void interval(struct fx *f, uint64_t *now, uint32_t idx, uint64_t req, uint64_t err)
{
	f->sh[0].rstats[idx].requests += req / 2;
	f->sh[1].rstats[idx].requests += req - req / 2;
	f->sh[1].rstats[idx].errors += err;
	*now += 1000;
	protect_tick(f->cfg, *now);
}

static void test_anomaly_spikes(void **state)
{
	struct fx *f = fx_new(FULL);
	const struct anomaly *a = &anomalies[1];
	uint64_t now = 50000;
	double base;

	(void)state;
	protect_tick(f->cfg, now); /* the first tick only takes the totals */
	protect_tick(f->cfg, now + 999);
	assert_int_equal(a->intervals, 0);
	/* warming up: three intervals seed the baseline, whatever they hold */
	interval(f, &now, 1, 20, 0);
	interval(f, &now, 1, 20, 0);
	interval(f, &now, 1, 500, 0);
	assert_int_equal(a->intervals, 3);
	assert_int_equal(a->spikes, 0);
	assert_false(a->in_spike);
	for (int i = 0; i < 60; i++)
		interval(f, &now, 1, 20, 0);
	assert_int_equal(a->spikes, 0);
	assert_true(a->base_rps > 19.0 && a->base_rps < 21.0);
	base = a->base_rps;
	/* a spike is counted once and does not move the baseline */
	for (int i = 0; i < 3; i++) {
		interval(f, &now, 1, 200, 0);
		assert_true(a->in_spike);
		assert_int_equal(a->spikes, 1);
		assert_true(a->last_rps > 199.0 && a->last_rps < 201.0);
		assert_true(a->base_rps == base);
	}
	interval(f, &now, 1, 20, 0);
	assert_false(a->in_spike);
	interval(f, &now, 1, 61, 0); /* above 300% of 20 */
	assert_int_equal(a->spikes, 2);
	interval(f, &now, 1, 59, 0); /* below: over, and the baseline learns */
	assert_false(a->in_spike);
	assert_true(a->base_rps > base);
	assert_int_equal(a->error_spikes, 0);
	assert_int_equal(anomalies[0].spikes, 0);
	fx_free(f);
}

static void test_anomaly_floors_and_errors(void **state)
{
	struct fx *f = fx_new(FULL);
	const struct anomaly *a = &anomalies[0]; /* requests that matched no route */
	uint64_t now = 1000;

	(void)state;
	protect_tick(f->cfg, now);
	for (int i = 0; i < 10; i++)
		interval(f, &now, 0, 1, 0);
	/* 9/s is nine times the baseline, but below min_rate 10 */
	interval(f, &now, 0, 9, 0);
	assert_int_equal(a->spikes, 0);
	interval(f, &now, 0, 10, 0);
	assert_int_equal(a->spikes, 1);
	/* 5xx: from a baseline of 0, min_error_rate 2 decides */
	interval(f, &now, 0, 1, 0);
	assert_false(a->in_spike);
	interval(f, &now, 0, 1, 1);
	assert_int_equal(a->error_spikes, 0);
	assert_false(a->in_error_spike);
	interval(f, &now, 0, 1, 2);
	assert_int_equal(a->error_spikes, 1);
	assert_true(a->in_error_spike);
	interval(f, &now, 0, 1, 3);
	assert_int_equal(a->error_spikes, 1);
	interval(f, &now, 0, 1, 0);
	assert_false(a->in_error_spike);
	interval(f, &now, 0, 1, 5);
	assert_int_equal(a->error_spikes, 2);
	assert_int_equal(a->spikes, 1);
	/* a tick before the interval is over measures nothing */
	protect_tick(f->cfg, now + 500);
	assert_int_equal(a->intervals, 18);
	fx_free(f);
}

static void test_anomaly_disabled(void **state)
{
	struct fx *f = fx_new(LISTENERS ROUTES);
	uint64_t now = 1000;

	(void)state;
	for (int i = 0; i < 10; i++)
		interval(f, &now, 1, i < 5 ? 10 : 1000, 0);
	assert_int_equal(anomalies[1].intervals, 0);
	assert_int_equal(anomalies[1].spikes, 0);
	fx_free(f);
}

/* ---- 7. GET /api/protection ---- */

/* A minimal JSON reader: json_value skips one value and returns the
 * position after it, or NULL if the text is not JSON. */
static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *json_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (strchr("0123456789abcdefABCDEF", p[i]) == NULL ||
					    p[i] == '\0')
						return NULL;
				p += 4;
			} else if (*p == '\0' || strchr("\"\\/bfnrt", *p) == NULL) {
				return NULL;
			}
		}
	}
	return p + 1;
}

static const char *json_number(const char *p)
{
	const char *q = p;

	if (*q == '-')
		q++;
	if (*q < '0' || *q > '9')
		return NULL;
	while ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' ||
	       *q == '-')
		q++;
	return q;
}

static const char *json_members(const char *p, int depth, char close, bool keys)
{
	p = json_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (keys) {
			p = json_string(json_ws(p));
			if (p == NULL || *(p = json_ws(p)) != ':')
				return NULL;
			p++;
		}
		p = json_value(p, depth + 1);
		if (p == NULL)
			return NULL;
		p = json_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *json_value(const char *p, int depth)
{
	p = json_ws(p);
	if (depth > 16)
		return NULL;
	if (*p == '{')
		return json_members(p, depth, '}', true);
	if (*p == '[')
		return json_members(p, depth, ']', false);
	if (*p == '"')
		return json_string(p);
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	return json_number(p);
}

static void assert_json(const char *text)
{
	const char *end = json_value(text, 0);

	if (end == NULL || *json_ws(end) != '\0')
		fail_msg("not JSON: %s", text);
}

static void assert_has(const char *text, const char *part)
{
	if (strstr(text, part) == NULL)
		fail_msg("no %s in %s", part, text);
}

static void test_stats_json(void **state)
{
	struct fx *f = fx_new(FULL);
	size_t cap = 64 * 1024, len;
	char *buf = malloc(cap);
	int st;

	(void)state;
	assert_non_null(buf);
	assert_int_equal(conn_open(&f->sh[0], f->c, L_XFF, "192.0.2.1"), 1);
	filtered(f, "GET", "/filtered/../", NULL, 403, "dotdot");
	assert_int_equal(request(f, &f->sh[1], "GET", "/private/", NULL, R_PRIVATE, &st),
	                 PROTECT_REFUSE);
	f->sh[0].stats.refused_acl = 1;
	f->sh[1].stats.refused_acl = 2;
	f->sh[1].stats.body_too_slow = 4;
	f->sh[0].rstats[R_PRIVATE + 1].requests += 10;
	f->sh[0].rstats[0].errors = 6;
	f->sh[1].rstats[0].errors = 1;
	len = protect_stats_json(f->cfg, buf, cap);
	assert_int_equal(len, strlen(buf));
	assert_json(buf);
	assert_has(buf, "\"open_counted\": 1,");
	assert_has(buf, "\"refused_acl\": 3,");
	assert_has(buf, "\"body_too_slow\": 4,");
	assert_has(buf, "{\"route\": null, \"requests\": 0, \"errors_5xx\": 7,");
	assert_has(buf,
	           "{\"route\": 0, \"host\": \"\", \"path\": \"/private/\", \"requests\": "
	           "11, \"errors_5xx\": 0, \"rate_limited\": 0, \"delayed\": 0, \"denied\": 1,");
	assert_has(buf, "\"filtered\": 1, \"rules\": {\"dotdot\": 1, \"scanner\": 0}");
	assert_has(buf, "\"route\": 5, \"host\": \"\", \"path\": \"/keyed/\"");
	assert_has(buf, "\"in_spike\": false");
	/* a short buffer gets a terminated prefix */
	memset(buf, 'z', cap);
	assert_int_equal(protect_stats_json(f->cfg, buf, 100), 99);
	assert_int_equal(buf[99], '\0');
	assert_int_equal(buf[100], 'z');
	assert_int_equal(protect_stats_json(f->cfg, buf, len + 1), len);
	assert_int_equal(protect_stats_json(f->cfg, buf, len), len - 1);
	protect_conn_close(&f->sh[0], f->c);
	free(buf);
	fx_free(f);
}

/* A route path may hold any visible byte, '"' and '\\' included
 * (docs/reference.md: "no spaces"); the JSON must stay JSON. */
static void test_stats_json_escapes(void **state)
{
	struct fx *f = fx_new(LISTENERS "routes:\n"
	                                "  - path: '/q\"x\\y/'\n"
	                                "    pool: app\n");
	char buf[4096];

	(void)state;
	assert_string_equal(f->cfg->routes[0].path, "/q\"x\\y/");
	protect_stats_json(f->cfg, buf, sizeof(buf));
	assert_json(buf);
	assert_has(buf, "\"path\": \"/q\\\"x\\\\y/\"");
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_xff_cases, fx_teardown),
	        cmocka_unit_test_teardown(test_xff_model, fx_teardown),
	        cmocka_unit_test_teardown(test_xff_raddr, fx_teardown),
	        cmocka_unit_test_teardown(test_request_no_route, fx_teardown),
	        cmocka_unit_test_teardown(test_request_route_acl, fx_teardown),
	        cmocka_unit_test_teardown(test_request_filters, fx_teardown),
	        cmocka_unit_test_teardown(test_block_reason_outlives_snapshot, fx_teardown),
	        cmocka_unit_test_teardown(test_request_rate_reject, fx_teardown),
	        cmocka_unit_test_teardown(test_request_rate_header_key, fx_teardown),
	        cmocka_unit_test_teardown(test_request_rate_delay, fx_teardown),
	        cmocka_unit_test_teardown(test_request_grant_once, fx_teardown),
	        cmocka_unit_test_teardown(test_request_rate_delay_h2, fx_teardown),
	        cmocka_unit_test_teardown(test_note_status, fx_teardown),
	        cmocka_unit_test_teardown(test_conn_listener_acl, fx_teardown),
	        cmocka_unit_test_teardown(test_conns_total, fx_teardown),
	        cmocka_unit_test_teardown(test_conns_per_ip, fx_teardown),
	        cmocka_unit_test_teardown(test_conn_proxy_listener, fx_teardown),
	        cmocka_unit_test_teardown(test_proxy_header_split, fx_teardown),
	        cmocka_unit_test_teardown(test_proxy_header_cases, fx_teardown),
	        cmocka_unit_test_teardown(test_body_rate, fx_teardown),
	        cmocka_unit_test_teardown(test_body_paused, fx_teardown),
	        cmocka_unit_test_teardown(test_body_paused_mid_window, fx_teardown),
	        cmocka_unit_test_teardown(test_body_stall, fx_teardown),
	        cmocka_unit_test_teardown(test_body_h2_exempt, fx_teardown),
	        cmocka_unit_test_teardown(test_anomaly_spikes, fx_teardown),
	        cmocka_unit_test_teardown(test_anomaly_floors_and_errors, fx_teardown),
	        cmocka_unit_test_teardown(test_anomaly_disabled, fx_teardown),
	        cmocka_unit_test_teardown(test_stats_json, fx_teardown),
	        cmocka_unit_test_teardown(test_stats_json_escapes, fx_teardown),
	};

	rlb_log_level = LOG_ERROR; /* the refusals' warnings are expected */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
