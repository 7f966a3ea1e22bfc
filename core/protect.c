/* core/protect.c — abuse control on the request path (see protect.h).
 *
 * Connection admission runs once per connection: the listener's allow and
 * deny lists, then the process-wide connection count, then the count of the
 * client's address in a shared table (core/ratelimit.c) — a client's
 * connections land on every shard, so a per-shard count would let it have
 * `workers` times its share. Request checks run once per routed request, in
 * order of cost: the route's allow list (one lookup), its filters (PCRE2),
 * its rate limit (one compare-and-swap on a shared word).
 *
 * Anomaly detection runs on the control thread: every anomaly.interval it
 * sums the routes' counters over the shards and compares the interval's
 * request and 5xx rates with an exponentially weighted baseline.
 */
#include "core/protect.h"

#include "core/cidr.h"
#include "core/conn.h"
#include "core/filter.h"
#include "core/log.h"
#include "core/proxyproto.h"
#include "core/ratelimit.h"
#include "core/snapshot.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

static struct rl_table *rates;
static struct rl_conns *ips;
static _Atomic uint32_t conns_total;
/* The shards whose counters the admin and control threads read; set and
 * cleared under shards_lock, which readers hold while they read, so that
 * shard_join_all can free the counters once it has cleared the pointer. */
static pthread_mutex_t shards_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shard *all_shards;
static uint32_t num_shards;

/* Per route (index + 1): the control thread's anomaly state. */
struct anomaly {
	double base_rps, base_eps;   /* baselines: requests and 5xx per second */
	double last_rps, last_eps;   /* the last interval's rates */
	uint64_t last_req, last_err; /* totals at the last interval */
	uint64_t intervals;          /* intervals seen (the baseline warms up first) */
	uint64_t spikes, error_spikes;
	bool in_spike, in_error_spike;
};
static struct anomaly anomalies[CONFIG_ROUTES_MAX + 1];
static uint64_t anomaly_next_ms;
static uint64_t anomaly_last_ms;
static uint64_t sweep_next_ms;

int protect_boot(const struct config *cfg, char *err, size_t err_len)
{
	rates = rl_table_new(cfg->limits.rate_table_slots);
	ips = rl_conns_new(cfg->limits.ip_table_slots);
	if (rates == NULL || ips == NULL) {
		protect_shutdown();
		snprintf(err, err_len,
		         "out of memory for the rate limit tables; lower limits.rate_table_slots "
		         "or limits.ip_table_slots");
		return 0;
	}
	atomic_store(&conns_total, 0);
	memset(anomalies, 0, sizeof(anomalies));
	anomaly_next_ms = anomaly_last_ms = 0;
	return 1;
}

void protect_shutdown(void)
{
	rl_table_free(rates);
	rl_conns_free(ips);
	rates = NULL;
	ips = NULL;
}

void protect_set_shards(struct shard *shards, uint32_t n)
{
	pthread_mutex_lock(&shards_lock);
	all_shards = shards;
	num_shards = n;
	pthread_mutex_unlock(&shards_lock);
}

/* set_addr stores a socket address as (16 bytes, family), IPv4-mapped IPv6
 * as IPv4, and its text. */
static void set_addr(const struct sockaddr *sa, uint8_t out[16], uint8_t *fam, char *text,
                     size_t cap)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	sa_family_t family;

	memset(out, 0, 16);
	*fam = 0;
	/* Copied, not read through cast pointers: the caller's storage is a
	 * sockaddr_storage, and strict aliasing allows the compiler to assume a
	 * sockaddr_in read does not see it. */
	memcpy(&family, &sa->sa_family, sizeof(family));
	if (family == AF_INET) {
		struct sockaddr_in in;

		memcpy(&in, sa, sizeof(in));
		memcpy(out, &in.sin_addr, 4);
		*fam = 4;
	} else if (family == AF_INET6) {
		struct sockaddr_in6 in6;

		memcpy(&in6, sa, sizeof(in6));
		if (memcmp(in6.sin6_addr.s6_addr, mapped, 12) == 0) {
			memcpy(out, in6.sin6_addr.s6_addr + 12, 4);
			*fam = 4;
		} else {
			memcpy(out, in6.sin6_addr.s6_addr, 16);
			*fam = 6;
		}
	}
	if (text != NULL && (*fam == 0 || inet_ntop(*fam == 4 ? AF_INET : AF_INET6, out, text,
	                                            (socklen_t)cap) == NULL))
		text[0] = '\0';
}

static void set_reason(struct conn *c, const char *why)
{
	snprintf(c->block_reason, sizeof(c->block_reason), "%s", why);
}

static uint64_t addr_key(const uint8_t a[16], uint8_t fam, uint64_t seed)
{
	uint64_t k = XXH3_64bits_withSeed(a, fam == 4 ? 4 : 16, seed ^ fam);

	return k != 0 ? k : 1;
}

/* admit applies the connection-level limits to c->caddr. */
static int admit(struct shard *s, struct conn *c)
{
	const struct snapshot *snap = snapshot_current();
	const struct config_limits *lim = &s->cfg->limits;

	if (c->listener < snap->num_listeners &&
	    !snapshot_acl_allows(&snap->listeners[c->listener].acl, c->caddr, c->cfam)) {
		s->stats.refused_acl++;
		return 0;
	}
	if (lim->conns_total > 0) {
		if (atomic_fetch_add_explicit(&conns_total, 1, memory_order_relaxed) >=
		    lim->conns_total) {
			atomic_fetch_sub_explicit(&conns_total, 1, memory_order_relaxed);
			s->stats.refused_total++;
			return 0;
		}
		c->counted_total = true;
	}
	if (lim->conns_per_ip > 0 && c->cfam != 0) {
		uint64_t key = addr_key(c->caddr, c->cfam, 0x636f6e6e);

		switch (rl_conn_acquire(ips, key, lim->conns_per_ip)) {
		case RL_CONN_OK:
			c->ip_key = key;
			c->counted_ip = true;
			break;
		case RL_CONN_LIMIT:
			s->stats.refused_per_ip++;
			protect_conn_close(s, c);
			return 0;
		default:
			s->stats.ip_untracked++; /* the table is full here: allowed, not counted */
			break;
		}
	}
	return 1;
}

int protect_conn_open(struct shard *s, struct conn *c, const struct sockaddr *sa)
{
	const struct snapshot *snap = snapshot_current();

	c->counted_total = c->counted_ip = false;
	c->rl_hold = c->rl_granted = false;
	set_addr(sa, c->caddr, &c->cfam, c->peer, sizeof(c->peer));
	c->pp_wait =
	        c->listener < snap->num_listeners && snap->listeners[c->listener].proxy_protocol;
	if (c->pp_wait) {
		/* Only a trusted peer may speak for its clients. */
		const struct cidr_table *t = snap->listeners[c->listener].trusted;

		if (t != NULL && cidr_lookup_ip(t, c->caddr, c->cfam) == 0) {
			s->stats.proxy_errors++;
			return 0;
		}
		return 1;
	}
	return admit(s, c);
}

int protect_proxy_header(struct shard *s, struct conn *c, struct bufq *q, struct bufpool *pool)
{
	struct pp_info pi;
	enum pp_result r;
	size_t len;
	const char *p;

	if (q->bytes == 0)
		return 1;
	bufq_linearize(q, pool);
	p = bufq_front(q, pool, &len);
	r = pp_parse((const uint8_t *)p, len, &pi);
	if (r == PP_INCOMPLETE && len < q->bytes && len < PP_HEADER_MAX)
		r = PP_INVALID; /* linearized, the front would hold the whole header */
	if (r == PP_INCOMPLETE)
		return 1;
	if (r == PP_INVALID) {
		s->stats.proxy_errors++;
		rlb_log(LOG_DEBUG, "client %s: bad PROXY protocol header", c->peer);
		return 0;
	}
	bufq_consume(q, pool, pi.header_len);
	if (!pi.local)
		set_addr((const struct sockaddr *)&pi.src, c->caddr, &c->cfam, c->peer,
		         sizeof(c->peer));
	c->pp_wait = false;
	return admit(s, c);
}

void protect_conn_close(struct shard *s, struct conn *c)
{
	(void)s;
	if (c->counted_total)
		atomic_fetch_sub_explicit(&conns_total, 1, memory_order_relaxed);
	if (c->counted_ip)
		rl_conn_release(ips, c->ip_key);
	c->counted_total = c->counted_ip = false;
}

/* forwarded_client finds the request's client behind trusted proxies: the
 * X-Forwarded-For elements are read from the right (the nearest proxy
 * appended the last one); the first address that is not a trusted proxy is
 * the client. A malformed element ends the walk: what is left of it was
 * written by someone we do not trust. */
static void forwarded_client(struct conn *c, const struct h1_msg *m, const struct cidr_table *t)
{
	for (size_t i = m->num_headers; i-- > 0;) {
		struct h1_str v = m->headers[i].value;
		size_t end = v.len;

		if (!h1_str_ieq(m->headers[i].name, "X-Forwarded-For"))
			continue;
		/* A field holds one element more than it has commas, as if the
		 * fields were joined into one list: a leading comma, or an
		 * empty field, is an empty element and ends the walk. */
		for (bool more = true; more;) {
			size_t start = end, a, b;
			uint8_t addr[16];
			int fam;

			while (start > 0 && v.ptr[start - 1] != ',')
				start--;
			for (a = start; a < end && (v.ptr[a] == ' ' || v.ptr[a] == '\t'); a++)
				;
			for (b = end; b > a && (v.ptr[b - 1] == ' ' || v.ptr[b - 1] == '\t'); b--)
				;
			if (b == a || !cidr_parse_ip(v.ptr + a, b - a, addr, &fam))
				return;
			memcpy(c->raddr, addr, 16);
			c->rfam = (uint8_t)fam;
			if (cidr_lookup_ip(t, addr, fam) == 0)
				return;
			more = start > 0;
			end = more ? start - 1 : 0;
		}
	}
}

static void resolve_client(struct conn *c, const struct h1_msg *m, const struct snapshot *snap)
{
	const struct cidr_table *t =
	        c->listener < snap->num_listeners ? snap->listeners[c->listener].trusted : NULL;

	memcpy(c->raddr, c->caddr, 16);
	c->rfam = c->cfam;
	if (t != NULL && c->cfam != 0 && cidr_lookup_ip(t, c->caddr, c->cfam) != 0)
		forwarded_client(c, m, t);
	if (c->rfam == 0 || inet_ntop(c->rfam == 4 ? AF_INET : AF_INET6, c->raddr, c->client,
	                              sizeof(c->client)) == NULL)
		memcpy(c->client, c->peer, sizeof(c->client));
}

/* log_block writes a warning for a refused request, at most 10 a second
 * per shard: a flood must not turn into a flood of log writes. */
static void log_block(struct shard *s, const struct conn *c, const struct h1_msg *m,
                      const char *what, const struct snap_route *r)
{
	if (s->now_ms - s->block_log_ms >= 1000) {
		s->block_log_ms = s->now_ms;
		s->block_log_count = 0;
	}
	if (++s->block_log_count > 10)
		return;
	rlb_log(LOG_WARN, "client %s: \"%.*s %.*s\" refused by routes[%u] %s", c->client,
	        (int)(m->method.len < 16 ? m->method.len : 16), m->method.ptr,
	        (int)(m->target.len < 200 ? m->target.len : 200), m->target.ptr, r->index, what);
}

static uint64_t rate_key(const struct conn *c, const struct h1_msg *m, const struct snap_route *r)
{
	const struct config_rate_limit *rl = &r->rate_limit;
	uint64_t seed = 0x726c0000ULL + r->index;

	if (rl->key == CONFIG_RATE_ROUTE)
		return XXH3_64bits_withSeed("route", 5, seed) | 1;
	if (rl->key == CONFIG_RATE_HEADER)
		for (size_t i = 0; i < m->num_headers; i++)
			if (h1_str_ieq(m->headers[i].name, rl->key_name) &&
			    m->headers[i].value.len > 0)
				return XXH3_64bits_withSeed(m->headers[i].value.ptr,
				                            m->headers[i].value.len, seed ^ 0x68) |
				       1;
	return addr_key(c->raddr, c->rfam, seed);
}

static enum protect_verdict rate_limit(struct shard *s, struct conn *c, const struct h1_msg *m,
                                       const struct snap_route *r, int *status)
{
	const struct config_rate_limit *rl = &r->rate_limit;
	struct route_stats *rs = &s->rstats[c->route];
	uint64_t wait = 0, tol = rl->interval_us * rl->burst;
	/* HTTP/2 streams are not held: a stream waiting in the parent's
	 * buffers would stall the streams behind it. */
	uint64_t max_delay = c->h2_stream ? 0 : rl->delay_ms * 1000;
	enum rl_verdict v;

	v = rl_take(rates, rate_key(c, m, r), rlb_now_us(), rl->interval_us, tol, max_delay, &wait);
	if (v == RL_ALLOW)
		return PROTECT_PASS;
	if (v == RL_DELAY) {
		rs->delayed++;
		c->rl_hold = true;
		timer_arm(&s->wheel, &c->timer, s->now_ms + (wait + 999) / 1000);
		return PROTECT_HOLD;
	}
	rs->rate_limited++;
	set_reason(c, "rate_limited");
	c->retry_after = (uint32_t)((wait + 999999) / 1000000);
	if (c->retry_after == 0)
		c->retry_after = 1;
	*status = (int)rl->status;
	return PROTECT_REFUSE;
}

enum protect_verdict protect_request(struct shard *s, struct conn *c, const struct h1_msg *m,
                                     const struct snapshot *snap, const struct snap_route *r,
                                     int *status)
{
	struct route_stats *rs;
	const char *rule = NULL;
	enum filter_verdict fv;
	bool granted = c->rl_granted; /* a held request's turn has come: once */

	c->rl_granted = false;
	resolve_client(c, m, snap);
	c->route = r != NULL ? (uint16_t)(r->index + 1) : 0;
	rs = &s->rstats[c->route];
	if (!granted)
		rs->requests++;
	if (r == NULL)
		return PROTECT_PASS;
	if (!snapshot_acl_allows(&r->acl, c->raddr, c->rfam)) {
		rs->denied++;
		set_reason(c, "denied");
		*status = 403;
		return PROTECT_REFUSE;
	}
	if (r->filter != NULL) {
		fv = filter_check(r->filter, s->filter_scratch, m->method, m->target, m->headers,
		                  m->num_headers, &rule);
		if (fv != FILTER_PASS) {
			rs->filtered++;
			set_reason(c, rule != NULL ? rule : "filter");
			*status = fv == FILTER_URI_TOO_LONG ? 414 : 403;
			log_block(s, c, m, rule, r);
			return PROTECT_REFUSE;
		}
	}
	if (r->rate_limit.enabled && !granted)
		return rate_limit(s, c, m, r, status);
	return PROTECT_PASS;
}

void protect_note_status(struct shard *s, const struct conn *c)
{
	if (c->status >= 500 && c->status < 600)
		s->rstats[c->route].errors++;
}

void protect_body_start(struct shard *s, struct conn *c)
{
	c->body_win_ms = c->body_last_ms = s->now_ms;
	c->body_win_bytes = 0;
	c->body_paused = false;
}

/* window_check closes a body rate window that has run its length: too few
 * bytes in it while we were reading is too slow. A window in which reading
 * was paused at any time (the backend was not taking the body) does not
 * count. */
static bool window_check(struct shard *s, struct conn *c, bool reading)
{
	const struct config_limits *lim = &s->cfg->limits;
	uint64_t elapsed = s->now_ms - c->body_win_ms;

	if (lim->body_min_rate == 0 || c->h2_stream || elapsed < lim->body_rate_window_ms)
		return true;
	if (reading && !c->body_paused && c->body_win_bytes * 1000 < lim->body_min_rate * elapsed) {
		s->stats.body_too_slow++;
		set_reason(c, "body_too_slow");
		return false;
	}
	c->body_win_ms = s->now_ms;
	c->body_win_bytes = 0;
	c->body_paused = !c->recv_on; /* still paused: the next window starts paused */
	return true;
}

static uint64_t body_deadline(const struct shard *s, const struct conn *c)
{
	const struct config_limits *lim = &s->cfg->limits;
	uint64_t stall = c->body_last_ms + s->cfg->timeouts.client_body_ms;
	uint64_t win = c->body_win_ms + lim->body_rate_window_ms;

	return lim->body_min_rate == 0 || c->h2_stream || win > stall ? stall : win;
}

bool protect_body_rate(struct shard *s, struct conn *c, uint64_t bytes)
{
	c->body_win_bytes += bytes;
	return window_check(s, c, true);
}

void protect_body_progress(struct shard *s, struct conn *c)
{
	c->body_last_ms = s->now_ms;
	timer_arm(&s->wheel, &c->timer, body_deadline(s, c));
}

bool protect_body_timer(struct shard *s, struct conn *c)
{
	if (s->now_ms >= c->body_last_ms + s->cfg->timeouts.client_body_ms)
		return false;
	if (!window_check(s, c, c->recv_on))
		return false;
	timer_arm(&s->wheel, &c->timer, body_deadline(s, c));
	return true;
}

/* ---- anomaly detection (control thread) ---- */

static void route_totals(uint32_t idx, uint64_t *req, uint64_t *err)
{
	*req = *err = 0;
	for (uint32_t i = 0; i < num_shards; i++) {
		const struct route_stats *rs = &all_shards[i].rstats[idx];

		*req += rs->requests;
		*err += rs->errors;
	}
}

/* spike compares a rate with its baseline; it warns once when a spike
 * starts and once when it ends. */
static bool spike(double rate, double base, uint32_t factor, uint32_t floor)
{
	return rate >= (double)floor && rate > base * (double)factor / 100.0;
}

static void observe(const struct config *cfg, uint32_t idx, double secs, double alpha)
{
	const struct config_anomaly *an = &cfg->anomaly;
	struct anomaly *a = &anomalies[idx];
	uint64_t req, err;
	bool warm, hot, hot_err;

	route_totals(idx, &req, &err);
	a->last_rps = (double)(req - a->last_req) / secs;
	a->last_eps = (double)(err - a->last_err) / secs;
	a->last_req = req;
	a->last_err = err;
	warm = a->intervals >= 3; /* the first intervals only seed the baseline */
	hot = warm && spike(a->last_rps, a->base_rps, an->factor, an->min_rate);
	hot_err = warm && spike(a->last_eps, a->base_eps, an->error_factor, an->min_error_rate);
	if (hot && !a->in_spike) {
		a->spikes++;
		rlb_log(LOG_WARN,
		        "anomaly: routes[%d] request rate %.1f/s is %.1fx its baseline %.1f/s",
		        (int)idx - 1, a->last_rps,
		        a->last_rps / (a->base_rps > 0 ? a->base_rps : 1), a->base_rps);
	}
	if (hot_err && !a->in_error_spike) {
		a->error_spikes++;
		rlb_log(LOG_WARN,
		        "anomaly: routes[%d] 5xx rate %.1f/s against a baseline of %.1f/s",
		        (int)idx - 1, a->last_eps, a->base_eps);
	}
	if (!hot && a->in_spike)
		rlb_log(LOG_INFO, "anomaly: routes[%d] request rate back to %.1f/s", (int)idx - 1,
		        a->last_rps);
	a->in_spike = hot;
	a->in_error_spike = hot_err;
	/* A spike does not teach the baseline that it is normal. */
	if (a->intervals == 0) {
		a->base_rps = a->last_rps;
		a->base_eps = a->last_eps;
	} else {
		if (!hot)
			a->base_rps += alpha * (a->last_rps - a->base_rps);
		if (!hot_err)
			a->base_eps += alpha * (a->last_eps - a->base_eps);
	}
	a->intervals++;
}

static void anomaly_tick(const struct config *cfg, uint64_t now_ms);

void protect_tick(const struct config *cfg, uint64_t now_ms)
{
	const struct config_anomaly *an = &cfg->anomaly;

	/* Forget keys whose budget is full again, hourly: a key idle for a
	 * multiple of the table's clock span could otherwise look busy. */
	if (rates != NULL && now_ms >= sweep_next_ms) {
		if (sweep_next_ms != 0)
			rl_sweep(rates, rlb_now_us());
		sweep_next_ms = now_ms + 3600 * 1000;
	}
	if (!an->enabled)
		return;
	pthread_mutex_lock(&shards_lock);
	if (all_shards != NULL)
		anomaly_tick(cfg, now_ms);
	pthread_mutex_unlock(&shards_lock);
}

static void anomaly_tick(const struct config *cfg, uint64_t now_ms)
{
	const struct config_anomaly *an = &cfg->anomaly;
	uint32_t n = (uint32_t)cfg->num_routes + 1;
	double secs, alpha;

	if (anomaly_next_ms == 0) {
		for (uint32_t i = 0; i < n; i++)
			route_totals(i, &anomalies[i].last_req, &anomalies[i].last_err);
		anomaly_last_ms = now_ms;
		anomaly_next_ms = now_ms + an->interval_ms;
		return;
	}
	if (now_ms < anomaly_next_ms)
		return;
	secs = (double)(now_ms - anomaly_last_ms) / 1000.0;
	alpha = 1.0 - exp(-(double)(now_ms - anomaly_last_ms) / (double)an->baseline_ms);
	for (uint32_t i = 0; i < n; i++)
		observe(cfg, i, secs, alpha);
	anomaly_last_ms = now_ms;
	anomaly_next_ms = now_ms + an->interval_ms;
}

/* ---- GET /api/protection ---- */

#define PUT(...)                                                                                   \
	do {                                                                                       \
		int n_ = snprintf(buf + len, len < cap ? cap - len : 0, __VA_ARGS__);              \
		len += n_ > 0 ? (size_t)n_ : 0;                                                    \
	} while (0)

static size_t route_json(const struct config *cfg, const struct snapshot *snap, uint32_t idx,
                         char *buf, size_t cap)
{
	struct route_stats t = {0};
	const struct anomaly *a = &anomalies[idx];
	const struct filter *f =
	        idx > 0 && idx - 1 < snap->num_routes ? snap->routes[idx - 1].filter : NULL;
	size_t len = 0;

	for (uint32_t i = 0; i < num_shards; i++) {
		const struct route_stats *rs = &all_shards[i].rstats[idx];

		t.requests += rs->requests;
		t.errors += rs->errors;
		t.rate_limited += rs->rate_limited;
		t.delayed += rs->delayed;
		t.denied += rs->denied;
		t.filtered += rs->filtered;
	}
	if (idx == 0) {
		PUT("{\"route\": null");
	} else {
		/* each byte escapes to at most 6 */
		char host[sizeof(cfg->routes[0].host) * 6], path[sizeof(cfg->routes[0].path) * 6];

		PUT("{\"route\": %u, \"host\": \"%s\", \"path\": \"%s\"", idx - 1,
		    rlb_json_text(host, sizeof(host), cfg->routes[idx - 1].host),
		    rlb_json_text(path, sizeof(path), cfg->routes[idx - 1].path));
	}
	PUT(", \"requests\": %llu, \"errors_5xx\": %llu, \"rate_limited\": %llu, \"delayed\": "
	    "%llu, "
	    "\"denied\": %llu, \"filtered\": %llu, \"rules\": {",
	    (unsigned long long)t.requests, (unsigned long long)t.errors,
	    (unsigned long long)t.rate_limited, (unsigned long long)t.delayed,
	    (unsigned long long)t.denied, (unsigned long long)t.filtered);
	for (size_t i = 0; f != NULL && i < filter_num_rules(f); i++)
		PUT("%s\"%s\": %llu", i > 0 ? ", " : "", filter_rule_name(f, i),
		    (unsigned long long)filter_rule_hits(f, i));
	PUT("}, \"anomaly\": {\"spikes\": %llu, \"error_spikes\": %llu, \"in_spike\": %s, "
	    "\"rate\": %.2f, \"baseline\": %.2f, \"error_rate\": %.2f, \"error_baseline\": %.2f}}",
	    (unsigned long long)a->spikes, (unsigned long long)a->error_spikes,
	    a->in_spike || a->in_error_spike ? "true" : "false", a->last_rps, a->base_rps,
	    a->last_eps, a->base_eps);
	return len;
}

static size_t stats_json(const struct config *cfg, char *buf, size_t cap);

size_t protect_stats_json(const struct config *cfg, char *buf, size_t cap)
{
	size_t len;

	pthread_mutex_lock(&shards_lock);
	len = stats_json(cfg, buf, cap);
	pthread_mutex_unlock(&shards_lock);
	return len;
}

static size_t stats_json(const struct config *cfg, char *buf, size_t cap)
{
	const struct snapshot *snap = snapshot_current();
	struct shard_stats t = {0};
	size_t len = 0;

	for (uint32_t i = 0; i < num_shards; i++) {
		const struct shard_stats *st = &all_shards[i].stats;

		t.refused_total += st->refused_total;
		t.refused_per_ip += st->refused_per_ip;
		t.refused_acl += st->refused_acl;
		t.proxy_errors += st->proxy_errors;
		t.ip_untracked += st->ip_untracked;
		t.body_too_slow += st->body_too_slow;
		t.conn_request_limit += st->conn_request_limit;
		t.refused_full += st->refused_full;
	}
	PUT("{\"connections\": {\"open_counted\": %u, \"refused_conns_total\": %llu, "
	    "\"refused_conns_per_ip\": %llu, \"refused_acl\": %llu, \"refused_shard_full\": %llu, "
	    "\"proxy_protocol_errors\": %llu, \"per_ip_untracked\": %llu, \"body_too_slow\": %llu, "
	    "\"closed_requests_per_conn\": %llu}, \"rate_table_overflows\": %llu, \"routes\": [",
	    atomic_load_explicit(&conns_total, memory_order_relaxed),
	    (unsigned long long)t.refused_total, (unsigned long long)t.refused_per_ip,
	    (unsigned long long)t.refused_acl, (unsigned long long)t.refused_full,
	    (unsigned long long)t.proxy_errors, (unsigned long long)t.ip_untracked,
	    (unsigned long long)t.body_too_slow, (unsigned long long)t.conn_request_limit,
	    (unsigned long long)(rates != NULL ? rl_overflows(rates) : 0));
	for (uint32_t i = 0; i <= cfg->num_routes && snap != NULL; i++) {
		if (i > 0)
			PUT(", ");
		if (len < cap)
			len += route_json(cfg, snap, i, buf + len, cap - len);
	}
	PUT("]}");
	return len < cap ? len : (cap > 0 ? cap - 1 : 0);
}
