/* core/caching.c — the HTTP cache on the request path (caching.h). */
#include "core/caching.h"

#include "cache/store.h"
#include "core/compressing.h"
#include "core/log.h"
#include "core/proxy.h"
#include "core/ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define PURGE_WAIT_MS 3000

static struct cache_zone *zones[CONFIG_ROUTES_MAX];
static uint32_t num_zones;
static struct shard *all_shards;
static uint32_t num_shards;
static bool compression_on;
static _Atomic uint64_t fill_gen; /* bumped whenever a fill ends */

/* A purge asked by the admin thread; each shard gets a message. */
struct cache_purge {
	_Atomic uint32_t pending;
	_Atomic uint64_t removed;
	char host[256];
	char target[CACHE_KEY_MAX];
	bool prefix;
};

/* A purge for one shard: a share of an admin purge (req), or the removal
 * of one key after an unsafe request (req NULL). */
struct cache_purge_msg {
	struct cache_purge_msg *next;
	struct cache_purge *req;
	struct cache_zone *zone;
	uint64_t hash;
	uint32_t key_len;
	char key[];
};

static void push_purge(struct shard *t, struct cache_purge_msg *m)
{
	m->next = atomic_load_explicit(&t->cache_purges, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&t->cache_purges, &m->next, m,
	                                              memory_order_release, memory_order_relaxed))
		;
}

/* A request head parsed again for the cache, with its key. */
struct creq {
	struct h1_msg m;
	char key[CACHE_KEY_MAX];
	size_t key_len;
	uint64_t hash;
	struct cache_req_info rq;
	bool head;
	bool partial; /* Range or If-Range: a hit may answer in full, a miss is not stored */
	bool precond; /* If-Match or If-Unmodified-Since: left to the backend */
};

/* ---- boot ---- */

int caching_boot(const struct config *cfg, uint32_t nshards, char *err, size_t err_len)
{
	compression_on = cfg->compression.enabled;
	for (size_t i = 0; i < cfg->num_routes; i++) {
		const struct config_route *r = &cfg->routes[i];

		struct config_cache cc = r->cache;

		if (!cc.enabled || caching_zone_find(r->host, r->path) >= 0)
			continue;
		if (cc.max_object > cc.memory / nshards) {
			/* Each shard owns memory / shards: a bigger object never fits. */
			rlb_log(LOG_WARN,
			        "routes[%zu].cache: max_object %llu is more than memory / workers "
			        "(%llu): lowered to that",
			        i, (unsigned long long)cc.max_object,
			        (unsigned long long)(cc.memory / nshards));
			cc.max_object = cc.memory / nshards;
		}
		zones[num_zones] = cache_zone_new(&cc, r->host, r->path, nshards, err, err_len);
		if (zones[num_zones] == NULL)
			return 0;
		zones[num_zones]->index = num_zones;
		num_zones++;
	}
	return 1;
}

void caching_shutdown(void)
{
	for (uint32_t i = 0; i < num_zones; i++)
		cache_zone_free(zones[i]);
	num_zones = 0;
}

void caching_set_shards(struct shard *shards, uint32_t n)
{
	all_shards = shards;
	num_shards = n;
}

int32_t caching_zone_find(const char *host, const char *path)
{
	for (uint32_t i = 0; i < num_zones; i++)
		if (strcmp(zones[i]->host, host) == 0 && strcmp(zones[i]->path, path) == 0)
			return (int32_t)i;
	return -1;
}

static struct cache_zone *zone_of(const struct conn *c)
{
	return c->cache_zone > 0 && c->cache_zone <= num_zones ? zones[c->cache_zone - 1] : NULL;
}

static struct cache_stats *stats_of(struct shard *s, const struct conn *c)
{
	return &zone_of(c)->stats[s->id];
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* ---- the request ---- */

/* parse_req parses the upstream head written for `c` and builds its key.
 * The limits are looser than the client's: ringlb's fields were added. */
static bool parse_req(struct shard *s, struct conn *c, struct creq *r)
{
	const struct cache_zone *z = zone_of(c);
	struct h1_limits lim = {s->heads.size, s->heads.size, s->cfg->limits.headers_max};
	struct h1_scan scan = {0};
	struct h1_str get = {"GET", 3};

	if (z == NULL || c->req_head < 0)
		return false;
	memset(&r->m, 0, sizeof(r->m));
	r->m.headers = s->cache_headers; /* s->headers may hold the response's */
	r->m.headers_cap = s->cfg->limits.headers_max;
	if (h1_parse_request(&scan, hpool_data(&s->heads, (uint32_t)c->req_head), c->req_head_len,
	                     &lim, &r->m) != H1_OK)
		return false;
	r->head = h1_str_ieq(r->m.method, "HEAD");
	r->key_len = cache_key_build(r->key, sizeof(r->key), r->head ? get : r->m.method, r->m.host,
	                             r->m.target, z->key_headers, z->num_key_headers, r->m.headers,
	                             r->m.num_headers);
	if (r->key_len == 0)
		return false;
	r->hash = XXH3_64bits(r->key, r->key_len);
	cache_req_from_headers(&r->rq, r->m.headers, r->m.num_headers);
	r->partial = r->precond = false;
	for (size_t i = 0; i < r->m.num_headers; i++) {
		struct h1_str n = r->m.headers[i].name;

		r->partial |= h1_str_ieq(n, "Range") || h1_str_ieq(n, "If-Range");
		r->precond |= h1_str_ieq(n, "If-Match") || h1_str_ieq(n, "If-Unmodified-Since");
	}
	return true;
}

/* ae_norm is what a Vary on Accept-Encoding compares when ringlb
 * compresses: the negotiated coding, not the client's exact wording. */
static const char *ae_norm(uint8_t enc)
{
	return compression_on ? zenc_names[enc] : NULL;
}

struct match_arg {
	const struct h1_msg *m;
	uint8_t enc;
	char sig[CACHE_VARY_MAX];
};

/* match_variant: the stored variant fits the request (coding and the
 * request fields its Vary names). */
static bool match_variant(const struct cache_obj *o, void *arg)
{
	struct match_arg *a = arg;
	struct h1_header vh;
	size_t n;

	/* The coding wanted, or the plain variant of a response that is never
	 * compressed (an image for a client that accepts br). */
	if (o->enc != a->enc && (a->enc == 0 || o->enc != 0 || o->compressible))
		return false;
	if (o->vary_names_len == 0)
		return true;
	vh.name = (struct h1_str){"Vary", 4};
	vh.value = (struct h1_str){o->vary_names, o->vary_names_len};
	n = cache_vary_sig(a->sig, sizeof(a->sig), &vh, 1, a->m->headers, a->m->num_headers,
	                   ae_norm(a->enc));
	return n == o->vary_len && memcmp(a->sig, o->vary, n) == 0;
}

static struct cache_obj *lookup(struct shard *s, struct conn *c, const struct creq *r)
{
	struct match_arg a = {.m = &r->m, .enc = c->cache_enc};

	(void)s;
	return cache_lookup(zone_of(c), r->hash, r->key, r->key_len, match_variant, &a);
}

/* ---- serving from an object ---- */

/* rin_append copies bytes at the end of c->rin (TLS buffers). Returns the
 * bytes taken: fewer when the buffers ran out. */
static size_t rin_append(struct shard *s, struct conn *c, const char *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t space;
		char *at = bufq_space(&c->rin, &s->tls_pool.pool, &space);

		if (at == NULL) {
			uint16_t bid = mempool_get(&s->tls_pool);

			if (bid == BUF_NONE)
				break;
			space = s->tls_pool.pool.buf_size < len - done ? s->tls_pool.pool.buf_size
			                                               : len - done;
			memcpy(bufpool_data(&s->tls_pool.pool, bid), p + done, space);
			bufq_push(&c->rin, &s->tls_pool.pool, bid, (uint32_t)space);
			done += space;
			continue;
		}
		if (space > len - done)
			space = len - done;
		memcpy(at, p + done, space);
		bufq_commit(&c->rin, &s->tls_pool.pool, space);
		done += space;
	}
	return done;
}

static const char *label_name(uint8_t l)
{
	static const char *const names[] = {"", "HIT", "MISS", "STALE", "REVALIDATED"};

	return l < RLB_ARRAY_LEN(names) ? names[l] : "";
}

/* kept_in_304: the head line starting at `p` names one of the fields a 304
 * carries over from the stored response (RFC 9110 §15.4.5). */
static bool kept_in_304(const char *p, size_t len)
{
	static const char *const names[] = {
	        "cache-control:", "content-location:", "date:", "etag:", "expires:",
	        "vary:",          "last-modified:"};

	for (size_t i = 0; i < RLB_ARRAY_LEN(names); i++) {
		size_t n = strlen(names[i]);

		if (len >= n && strncasecmp(p, names[i], n) == 0)
			return true;
	}
	return false;
}

/* write_head writes the response head the cache serves: the stored one (or
 * its 304 form), Content-Length, Age and the X-Cache field. */
static size_t write_head(struct shard *s, struct conn *c, char *out, size_t cap)
{
	const struct cache_obj *o = c->cobj;
	const struct cache_zone *z = zone_of(c);
	int64_t age = cache_current_age(&o->times, now_s());
	size_t len = 0;
	int n;

	(void)s;
	if (c->cache_304) {
		const char *p = memchr(o->head, '\n', o->head_len);
		const char *end = o->head + o->head_len;

		len = (size_t)snprintf(out, cap, "HTTP/1.1 304 Not Modified\r\n");
		for (p = p != NULL ? p + 1 : end; p < end;) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t l = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);

			if (kept_in_304(p, l) && len + l < cap) {
				memcpy(out + len, p, l);
				len += l;
			}
			p += l;
		}
	} else {
		if (o->head_len >= cap)
			return 0;
		memcpy(out, o->head, o->head_len);
		len = o->head_len;
		n = snprintf(out + len, cap - len, "Content-Length: %llu\r\n",
		             (unsigned long long)o->body_len);
		if (n < 0 || (size_t)n >= cap - len)
			return 0;
		len += (size_t)n;
	}
	n = snprintf(out + len, cap - len, "Age: %lld\r\n", (long long)(age < 0 ? 0 : age));
	if (n < 0 || (size_t)n >= cap - len)
		return 0;
	len += (size_t)n;
	if (z->cfg.header[0] != '\0') {
		n = snprintf(out + len, cap - len, "%s: %s\r\n", z->cfg.header,
		             label_name(c->cache_label));
		if (n < 0 || (size_t)n >= cap - len)
			return 0;
		len += (size_t)n;
	}
	if (len + 3 > cap)
		return 0;
	memcpy(out + len, "\r\n", 3);
	return len + 2;
}

/* serve starts answering from `o` (whose reference c takes). */
static void serve(struct shard *s, struct conn *c, struct cache_obj *o, enum cache_label label)
{
	int32_t h;
	size_t n = 0;

	/* A backend's response this replaces (304, 5xx) or a failed one: the
	 * upstream connection must not write into rin again. */
	if (c->up != NULL)
		up_close(s, c->up);
	c->retry_pending = false;
	zx_end(s, c);           /* nothing of a backend's body is compressed now */
	c->cache_store = false; /* nor stored: the object built (if any) goes below */
	h = hpool_get(&s->heads);
	if (c->cobj != NULL && c->cobj != o)
		cache_obj_put(c->cobj);
	c->cobj = o;
	c->cache_mode = CM_SERVE;
	c->cache_label = (uint8_t)label;
	c->cobj_fed = 0;
	c->cobj_direct = false;
	bufq_clear(&c->rin, conn_rinpool(s, c));
	c->rin_tls = true;
	memset(&c->rscan, 0, sizeof(c->rscan));
	c->resp_phase = RESP_HEAD;
	c->resp_fwd = 0;
	if (h >= 0) {
		n = write_head(s, c, hpool_data(&s->heads, (uint32_t)h), s->heads.size);
		if (n > 0 && rin_append(s, c, hpool_data(&s->heads, (uint32_t)h), n) < n)
			n = 0;
		hpool_put(&s->heads, (uint32_t)h);
	}
	if (n == 0) {
		/* No room for even the head: the cache cannot answer now. */
		bufq_clear(&c->rin, conn_rinpool(s, c));
		c->cache_mode = CM_PASS;
		conn_refuse_cached(s, c, 503);
		return;
	}
	if (!c->cache_304 && !c->head_req)
		stats_of(s, c)->bytes_served += o->body_len;
	c->cbody = o->body;
	c->cbody_len = o->body_len;
	if (c->cache_304 || c->head_req)
		c->cobj_fed = o->body_len; /* no body */
	/* The body follows once the head is parsed (proxy.c cache_body): sent
	 * from the object's memory, or copied into rin when transformed. */
}

void caching_fed_all(struct conn *c)
{
	if (c->cobj != NULL)
		c->cobj_fed = c->cbody_len;
}

void caching_feed(struct shard *s, struct conn *c)
{
	const uint64_t max = s->cfg->buffers.conn_bytes_max;
	const struct cache_obj *o = c->cobj;

	if (c->cache_mode != CM_SERVE || o == NULL)
		return;
	while (c->cobj_fed < o->body_len && c->rin.bytes < max) {
		uint64_t want = o->body_len - c->cobj_fed;
		size_t took;

		if (want > max - c->rin.bytes)
			want = max - c->rin.bytes;
		took = rin_append(s, c, o->body + c->cobj_fed, (size_t)want);
		c->cobj_fed += took;
		if (took < want) {
			conn_tls_starve(s, c); /* resumed when TLS buffers come back */
			return;
		}
	}
}

/* ---- deciding ---- */

/* not_modified evaluates the client's conditional fields against `o`. */
static bool not_modified(const struct creq *r, const struct cache_obj *o)
{
	struct h1_str inm = {NULL, 0}, ims = {NULL, 0};

	if (o->status != 200)
		return false;
	for (size_t i = 0; i < r->m.num_headers; i++) {
		if (h1_str_ieq(r->m.headers[i].name, "If-None-Match"))
			inm = r->m.headers[i].value;
		else if (h1_str_ieq(r->m.headers[i].name, "If-Modified-Since"))
			ims = r->m.headers[i].value;
	}
	if (inm.ptr == NULL && ims.ptr == NULL)
		return false;
	return cache_not_modified(inm.ptr, inm.len, ims.ptr, ims.len, o->etag, o->etag_len,
	                          o->last_modified, o->date);
}

static void serve_hit(struct shard *s, struct conn *c, const struct creq *r, struct cache_obj *o,
                      enum cache_label label)
{
	c->cache_304 = not_modified(r, o);
	serve(s, c, o, label);
}

/* revalidation_fields writes the validators of `o` for a conditional
 * request (RFC 9111 §4.3.1). */
static size_t revalidation_fields(const struct cache_obj *o, char *out, size_t cap)
{
	char date[32];
	int n = 0;

	if (o->etag_len > 0)
		n = snprintf(out, cap, "If-None-Match: %s\r\n", o->etag);
	else if (o->last_modified >= 0) {
		http_date_format(o->last_modified, date);
		n = snprintf(out, cap, "If-Modified-Since: %s\r\n", date);
	}
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* make_conditional rewrites the upstream head for a revalidation: the
 * client's own conditional fields out, the entry's validators in. */
static bool make_conditional(struct shard *s, struct conn *c, const struct cache_obj *o)
{
	char *h = hpool_data(&s->heads, (uint32_t)c->req_head);
	size_t len = c->req_head_len, out = 0;
	char extra[CACHE_ETAG_MAX + 64];
	size_t xl = revalidation_fields(o, extra, sizeof(extra));

	if (xl == 0 || len + xl + 2 > s->heads.size)
		return false; /* checked first: the head is rewritten in place */
	/* The head ends "\r\n\r\n"; lines are dropped in place, then the
	 * validators go before the final empty line. */
	for (size_t p = 0; p < len;) {
		const char *nl = memchr(h + p, '\n', len - p);
		size_t l = nl != NULL ? (size_t)(nl - (h + p)) + 1 : len - p;

		if (p + l == len) /* the final empty line */
			break;
		if (l >= 14 && (strncasecmp(h + p, "If-None-Match:", 14) == 0 ||
		                (l >= 18 && strncasecmp(h + p, "If-Modified-Since:", 18) == 0))) {
			p += l;
			continue;
		}
		memmove(h + out, h + p, l);
		out += l;
		p += l;
	}
	if (out + xl + 2 > s->heads.size)
		return false;
	memcpy(h + out, extra, xl);
	memcpy(h + out + xl, "\r\n", 2);
	c->req_head_len = (uint32_t)(out + xl + 2);
	return true;
}

/* refresh_in_background revalidates a stale entry served within its
 * stale-while-revalidate window (RFC 5861 §3) on a fetch of its own, unless
 * another fetch for the key already runs. */
static void refresh_in_background(struct shard *s, struct conn *c, struct cache_obj *o)
{
	struct cache_zone *z = zone_of(c);
	uint64_t h = o->hash;
	struct conn *bg;

	if (cache_lock_try(z, h, s->now_ms) != CLR_FILL)
		return;
	bg = conn_spawn_bg(s, c);
	if (bg == NULL) {
		cache_lock_release(z, h, false, s->now_ms);
		return;
	}
	bg->cache_zone = c->cache_zone;
	bg->cache_enc = c->cache_enc;
	bg->cache_hash = h;
	bg->cache_locked = true;
	bg->cache_req_time = now_s();
	if (make_conditional(s, bg, o)) {
		cache_obj_get(o);
		bg->cstale = o;
		bg->cache_mode = CM_REVAL;
	} else {
		bg->cache_mode = CM_FILL;
	}
	stats_of(s, c)->refreshes++;
	conn_cache_go(s, bg);
}

/* begin_wait parks `c` until the fetch running for its key ends. */
static void begin_wait(struct shard *s, struct conn *c)
{
	const struct cache_zone *z = zone_of(c);

	if (!c->cache_waiting) {
		c->cache_waiting = true;
		c->cache_wait_next = s->cache_waiters;
		s->cache_waiters = c;
		atomic_fetch_add_explicit(&s->cache_nwaiting, 1, memory_order_relaxed);
		c->cache_wait_until = s->now_ms + z->cfg.lock_timeout_ms;
	}
	c->cache_mode = CM_WAIT;
	conn_arm(s, c, c->cache_wait_until > s->now_ms ? c->cache_wait_until - s->now_ms : 1);
}

static void end_wait(struct shard *s, struct conn *c)
{
	if (!c->cache_waiting)
		return;
	for (struct conn **pp = &s->cache_waiters; *pp != NULL; pp = &(*pp)->cache_wait_next) {
		if (*pp == c) {
			*pp = c->cache_wait_next;
			break;
		}
	}
	c->cache_waiting = false;
	c->cache_wait_next = NULL;
	atomic_fetch_sub_explicit(&s->cache_nwaiting, 1, memory_order_relaxed);
}

/* fetch_mode takes the fill lock, or says to wait or to pass. Returns
 * true when the caller must wait. */
static bool fetch_mode(struct shard *s, struct conn *c, const struct creq *r, enum cache_mode m)
{
	switch (cache_lock_try(zone_of(c), r->hash, s->now_ms)) {
	case CLR_FILL:
		c->cache_locked = true;
		c->cache_mode = (uint8_t)m;
		return false;
	case CLR_WAIT:
		return true;
	case CLR_PASS:
		c->cache_mode = CM_PASS;
		return false;
	case CLR_NOLOCK:
		break;
	}
	c->cache_mode = (uint8_t)m;
	return false;
}

/* decide runs the lookup and picks what to do; shared by new requests and
 * waiters re-checking. Returns true when the request was taken care of. */
static bool decide(struct shard *s, struct conn *c, struct creq *r)
{
	struct cache_obj *o;
	int64_t age;

	c->cache_hash = r->hash;
	o = lookup(s, c, r);
	if (o != NULL && r->rq.authorization && !o->auth_ok) {
		/* An entry stored for anyone answers a request with credentials
		 * only when its response said so: the backend decides. */
		cache_obj_put(o);
		end_wait(s, c);
		c->cache_mode = CM_PASS;
		stats_of(s, c)->misses++;
		return false;
	}
	if (o != NULL) {
		enum cache_use use = cache_decide(&r->rq, &o->times, now_s(), &age);

		if (use == CACHE_FRESH || use == CACHE_STALE_SWR) {
			if (c->cache_waiting)
				stats_of(s, c)->coalesced++;
			end_wait(s, c);
			stats_of(s, c)->hits += use == CACHE_FRESH;
			stats_of(s, c)->stale += use != CACHE_FRESH;
			/* Served first: spawning the refresh re-parses into the
			 * scratch that `r` points into. */
			cache_obj_get(o);
			serve_hit(s, c, r, o, use == CACHE_FRESH ? CL_HIT : CL_STALE);
			if (use == CACHE_STALE_SWR && !r->head)
				refresh_in_background(s, c, o);
			cache_obj_put(o);
			return true;
		}
		if (r->head || (r->rq.cc.flags & CC_ONLY_IF_CACHED)) {
			cache_obj_put(o); /* a HEAD is forwarded as it is */
			o = NULL;
		}
	}
	if (r->partial) {
		/* RFC 9110 §14.2 lets a full 200 answer a Range request, which is
		 * what a hit does; a miss goes to the backend alone and its 206
		 * is not stored, nor does it keep the key from being stored. */
		if (o != NULL)
			cache_obj_put(o);
		end_wait(s, c);
		c->cache_mode = CM_PASS;
		stats_of(s, c)->misses++;
		return false;
	}
	if (o == NULL && r->rq.cc.flags & CC_ONLY_IF_CACHED) {
		end_wait(s, c);
		c->cache_mode = CM_PASS;
		conn_refuse_cached(s, c, 504); /* RFC 9111 §5.2.1.7 */
		return true;
	}
	if (r->head && o == NULL) {
		end_wait(s, c);
		c->cache_mode = CM_PASS; /* a HEAD miss is forwarded, not stored */
		stats_of(s, c)->misses++;
		return false;
	}
	if (s->now_ms < c->cache_wait_until || !c->cache_waiting) {
		if (fetch_mode(s, c, r, o != NULL ? CM_REVAL : CM_FILL)) {
			if (o != NULL)
				cache_obj_put(o);
			begin_wait(s, c);
			return true;
		}
	} else {
		c->cache_mode = CM_PASS; /* waited long enough: fetch alone */
	}
	end_wait(s, c);
	/* Only now that this request fetches does its upstream head become
	 * conditional: a waiter's head must keep the client's own fields. An
	 * entry without validators is fetched anew but kept for
	 * stale-if-error. */
	if (o != NULL && c->cache_mode == CM_PASS)
		c->cache_mode = CM_REVAL; /* still revalidate, without the lock */
	if (o != NULL && !make_conditional(s, c, o))
		c->cache_mode = CM_FILL;
	if (c->cstale != NULL)
		cache_obj_put(c->cstale);
	c->cstale = o;
	c->cache_req_time = now_s(); /* the request leaves now (after any wait) */
	stats_of(s, c)->misses++;
	return false;
}

bool caching_begin(struct shard *s, struct conn *c)
{
	struct creq r;

	c->cache_mode = CM_NONE;
	if (zone_of(c) == NULL || !parse_req(s, c, &r))
		return false;
	if (!h1_str_ieq(r.m.method, "GET") && !h1_str_ieq(r.m.method, "HEAD")) {
		/* RFC 9111 §4.4: a successful unsafe request invalidates what is
		 * stored for its target (at the response: caching_response_head). */
		if (!h1_str_ieq(r.m.method, "OPTIONS") && !h1_str_ieq(r.m.method, "TRACE"))
			c->cache_mode = CM_UNSAFE;
		return false;
	}
	if (c->req_body != H1_BODY_NONE)
		return false;
	if (r.precond) {
		c->cache_mode = CM_PASS; /* preconditions: the backend evaluates them */
		return false;
	}
	c->cache_wait_until = 0;
	c->cache_req_time = now_s();
	return decide(s, c, &r);
}

/* ---- waiting ---- */

/* retry_waiter re-checks one waiting request. */
static void retry_waiter(struct shard *s, struct conn *c)
{
	struct creq r;

	if (c->state != CONN_PROXY) {
		end_wait(s, c); /* closing: nothing to serve */
		return;
	}
	if (!parse_req(s, c, &r)) {
		end_wait(s, c);
		c->cache_mode = CM_PASS;
		conn_cache_go(s, c);
		return;
	}
	if (cache_lock_peek(zone_of(c), r.hash, s->now_ms) == CL_FILLING &&
	    s->now_ms < c->cache_wait_until) {
		begin_wait(s, c); /* the fetch still runs: re-arm the timer */
		return;
	}
	if (decide(s, c, &r) && c->cache_mode == CM_WAIT)
		return;
	conn_cache_go(s, c); /* served, answered, or fetching now */
}

bool caching_on_timer(struct shard *s, struct conn *c)
{
	if (!c->cache_waiting)
		return false;
	retry_waiter(s, c); /* past its deadline: it fetches on its own */
	return true;
}

/* ---- storing ---- */

/* stored_field: a response field that goes into a stored head. Framing,
 * hop-by-hop fields, Age (recomputed) and our own label do not. */
static bool stored_field(const struct cache_zone *z, struct h1_str name)
{
	static const char *const skip[] = {"Connection", "Keep-Alive",     "Proxy-Connection",
	                                   "TE",         "Trailer",        "Transfer-Encoding",
	                                   "Upgrade",    "Content-Length", "Age"};

	for (size_t i = 0; i < RLB_ARRAY_LEN(skip); i++)
		if (h1_str_ieq(name, skip[i]))
			return false;
	return z->cfg.header[0] == '\0' || !h1_str_ieq(name, z->cfg.header);
}

/* put_fields appends "Name: value\r\n" for each stored field of `m` not
 * named in `except` (may be NULL). Returns the new length, 0 on overflow. */
static size_t put_fields(const struct cache_zone *z, const struct h1_msg *m,
                         const struct h1_msg *except, char *out, size_t len, size_t cap)
{
	for (size_t i = 0; i < m->num_headers; i++) {
		const struct h1_header *h = &m->headers[i];
		bool replaced = false;

		if (!stored_field(z, h->name))
			continue;
		for (size_t j = 0; except != NULL && j < except->num_headers && !replaced; j++)
			replaced = except->headers[j].name.len == h->name.len &&
			           strncasecmp(except->headers[j].name.ptr, h->name.ptr,
			                       h->name.len) == 0 &&
			           stored_field(z, except->headers[j].name);
		if (replaced)
			continue;
		if (len + h->name.len + h->value.len + 4 > cap)
			return 0;
		memcpy(out + len, h->name.ptr, h->name.len);
		len += h->name.len;
		memcpy(out + len, ": ", 2);
		memcpy(out + len + 2, h->value.ptr, h->value.len);
		len += 2 + h->value.len;
		memcpy(out + len, "\r\n", 2);
		len += 2;
	}
	return len;
}

/* joined_field gathers every `name` field of `m` into out ("a, b"). */
static size_t joined_field(const struct h1_msg *m, const char *name, char *out, size_t cap)
{
	size_t len = 0;

	for (size_t i = 0; i < m->num_headers; i++) {
		const struct h1_str v = m->headers[i].value;

		if (!h1_str_ieq(m->headers[i].name, name))
			continue;
		if (len + v.len + 2 > cap)
			return SIZE_MAX;
		if (len > 0) {
			memcpy(out + len, ", ", 2);
			len += 2;
		}
		memcpy(out + len, v.ptr, v.len);
		len += v.len;
	}
	return len;
}

static const struct h1_str *field(const struct h1_msg *m, const char *name)
{
	for (size_t i = 0; i < m->num_headers; i++)
		if (h1_str_ieq(m->headers[i].name, name))
			return &m->headers[i].value;
	return NULL;
}

/* build_obj makes the object for response `m` (its head: stored fields
 * `head`) to request `r`, with room for `body_cap` body bytes. */
static struct cache_obj *build_obj(struct shard *s, struct conn *c, const struct creq *r,
                                   const struct h1_msg *m, const char *head, size_t head_len,
                                   uint64_t body_cap)
{
	const struct cache_zone *z = zone_of(c);
	char names[CACHE_VARY_MAX], sig[CACHE_VARY_MAX];
	size_t nl = joined_field(m, "Vary", names, sizeof(names)), sl = 0;
	const struct h1_str *etag = field(m, "ETag");
	struct cache_resp_info rs;
	struct cache_obj *o;
	int64_t now = now_s();

	if (nl == SIZE_MAX || (etag != NULL && etag->len >= CACHE_ETAG_MAX))
		return NULL;
	if (nl > 0) {
		struct h1_header vh = {{"Vary", 4}, {names, nl}};

		sl = cache_vary_sig(sig, sizeof(sig), &vh, 1, r->m.headers, r->m.num_headers,
		                    ae_norm(c->zwant));
		if (sl == SIZE_MAX)
			return NULL;
	}
	o = cache_obj_new(r->hash, r->key, r->key_len, names, nl, sig, sl, head, head_len,
	                  etag != NULL ? etag->ptr : "", etag != NULL ? etag->len : 0, body_cap);
	if (o == NULL)
		return NULL;
	cache_resp_from_headers(&rs, m->status, m->headers, m->num_headers);
	if (rs.date < 0)
		rs.date = now;
	cache_times_init(&o->times, &rs, &z->rules, c->cache_req_time, now);
	if (z->cfg.stale_if_error_ms > 0 &&
	    (o->times.sie == CC_UNSET || o->times.sie < (int64_t)(z->cfg.stale_if_error_ms / 1000)))
		o->times.sie = (int64_t)(z->cfg.stale_if_error_ms / 1000);
	o->status = (uint16_t)m->status;
	o->purges = atomic_load_explicit(&((struct cache_zone *)z)->purges, memory_order_acquire);
	o->auth_ok = (rs.cc.flags & (CC_PUBLIC | CC_MUST_REVALIDATE)) || rs.cc.s_maxage != CC_UNSET;
	o->enc = c->zon ? c->zwant : 0;
	o->compressible = !c->zon && zx_eligible(s, c, m);
	o->date = rs.date;
	o->last_modified = rs.last_modified;
	o->zone = (void *)z;
	return o;
}

/* status_line writes "HTTP/1.1 code reason\r\n". */
static size_t status_line(const struct h1_msg *m, char *out, size_t cap)
{
	int n = snprintf(out, cap, "HTTP/1.1 %d %.*s\r\n", m->status, (int)m->reason.len,
	                 m->reason.ptr);

	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* wake_waiters tells every shard with waiting requests that a fill ended. */
static void wake_waiters(struct shard *s)
{
	atomic_fetch_add_explicit(&fill_gen, 1, memory_order_release);
	for (uint32_t i = 0; i < num_shards; i++)
		if (i != s->id &&
		    atomic_load_explicit(&all_shards[i].cache_nwaiting, memory_order_relaxed) > 0)
			ring_msg(&s->ring, ring_fd(&all_shards[i].ring), ring_ud(OP_WAKE, 0, 0));
}

/* insert_local stores `o` in this shard's partition, then releases the
 * fill lock when the object carries it. */
static void insert_local(struct shard *s, struct cache_obj *o)
{
	struct cache_zone *z = o->zone;
	uint64_t h = o->hash, evicted = 0;
	bool release = o->release_lock;
	bool ok;

	if (o->purges != atomic_load_explicit(&z->purges, memory_order_acquire)) {
		/* A purge ran while this response was on its way: what it
		 * removed must not come back. Its waiters fetch again. */
		cache_obj_put(o);
		if (release) {
			cache_lock_release(z, h, false, s->now_ms);
			wake_waiters(s);
		}
		return;
	}
	ok = cache_insert(z, s->id, o, &evicted);

	z->stats[s->id].stores += ok;
	z->stats[s->id].too_big += !ok;
	z->stats[s->id].evictions += evicted;
	if (release) {
		cache_lock_release(z, h, !ok, s->now_ms);
		wake_waiters(s);
	}
}

/* hand_off sends a finished object to its owner shard. */
static void hand_off(struct shard *s, struct cache_obj *o)
{
	uint32_t owner = cache_owner(o->zone, o->hash);
	struct shard *t = &all_shards[owner];
	struct cache_obj *head;

	if (owner == s->id || all_shards == NULL) {
		insert_local(s, o);
		return;
	}
	head = atomic_load_explicit(&t->cache_inbox, memory_order_relaxed);
	do
		o->inbox = head;
	while (!atomic_compare_exchange_weak_explicit(&t->cache_inbox, &head, o,
	                                              memory_order_release, memory_order_relaxed));
	ring_msg(&s->ring, ring_fd(&t->ring), ring_ud(OP_WAKE, 0, 0));
}

/* release_lock ends a fill that stores nothing. */
static void release_lock(struct shard *s, struct conn *c, bool pass)
{
	if (!c->cache_locked)
		return;
	c->cache_locked = false;
	cache_lock_release(zone_of(c), c->cache_hash, pass, s->now_ms);
	wake_waiters(s);
}

static void drop_builder(struct shard *s, struct conn *c, bool pass)
{
	if (c->cobj != NULL && c->cache_mode != CM_SERVE) {
		cache_obj_put(c->cobj);
		c->cobj = NULL;
	}
	c->cache_store = false;
	release_lock(s, c, pass);
}

/* refresh serves the stale entry refreshed by a 304 (RFC 9111 §4.3.4):
 * its fields updated with the 304's, stored again in place of the old. */
static bool refresh(struct shard *s, struct conn *c, const struct creq *r, const struct h1_msg *m)
{
	const struct cache_zone *z = zone_of(c);
	struct cache_obj *old = c->cstale, *o;
	struct h1_header hdrs[CONN_HEADERS_MAX];
	struct h1_msg sm = {.headers = hdrs, .headers_cap = CONN_HEADERS_MAX};
	struct h1_limits lim = {s->heads.size, s->heads.size, CONN_HEADERS_MAX};
	struct h1_scan scan = {0};
	int32_t hb = hpool_get(&s->heads);
	char *buf;
	size_t len;

	if (hb < 0)
		return false;
	buf = hpool_data(&s->heads, (uint32_t)hb);
	/* the stored head, parsed, then re-written with the 304's fields */
	if (old->head_len + 2 > s->heads.size)
		goto fail;
	memcpy(buf, old->head, old->head_len);
	memcpy(buf + old->head_len, "\r\n", 2);
	if (h1_parse_response(&scan, buf, old->head_len + 2, &lim, false, &sm) != H1_OK)
		goto fail;
	{
		char merged[16384];
		size_t sl = status_line(&sm, merged, sizeof(merged));

		len = sl > 0 ? put_fields(z, &sm, m, merged, sl, sizeof(merged)) : 0;
		len = len > 0 ? put_fields(z, m, NULL, merged, len, sizeof(merged)) : 0;
		if (len == 0 || len + 2 > s->heads.size)
			goto fail;
		memcpy(buf, merged, len);
	}
	memcpy(buf + len, "\r\n", 2);
	memset(&scan, 0, sizeof(scan));
	memset(&sm, 0, sizeof(sm));
	sm.headers = hdrs;
	sm.headers_cap = CONN_HEADERS_MAX;
	if (h1_parse_response(&scan, buf, len + 2, &lim, false, &sm) != H1_OK)
		goto fail;
	if (old->enc != 0) {
		/* A compressed body: the 304 speaks of the plain representation
		 * (strong ETag, its own Vary); keep what compression promised. */
		char again[16384];
		size_t al;

		zx_restamp(&sm, old->enc);
		al = status_line(&sm, again, sizeof(again));
		al = al > 0 ? put_fields(z, &sm, NULL, again, al, sizeof(again)) : 0;
		if (al == 0 || al + 2 > s->heads.size)
			goto fail;
		memcpy(buf, again, al);
		len = al;
	}
	o = build_obj(s, c, r, &sm, buf, len, old->body_len);
	if (o == NULL)
		goto fail;
	memcpy(o->body, old->body, old->body_len);
	o->body_len = old->body_len;
	o->enc = old->enc;
	o->compressible = old->compressible;
	o->auth_ok |= old->auth_ok;
	hpool_put(&s->heads, (uint32_t)hb);
	o->release_lock = c->cache_locked;
	c->cache_locked = false;
	cache_obj_get(o); /* one for the table (hand_off), one to serve */
	hand_off(s, o);
	cache_obj_put(old);
	c->cstale = NULL;
	stats_of(s, c)->revalidated++;
	if (c->bg) {
		/* a background refresh: nobody to serve, the 304 is dropped */
		cache_obj_put(o);
		c->cache_mode = CM_PASS;
		return false;
	}
	serve(s, c, o, CL_REVALIDATED);
	return true;
fail:
	hpool_put(&s->heads, (uint32_t)hb);
	return false;
}

/* serve_stale answers with the stale entry the revalidation could not
 * refresh (RFC 5861 stale-if-error). */
static bool serve_stale(struct shard *s, struct conn *c, const struct creq *r)
{
	struct cache_req_info none;

	if (c->bg)
		return false; /* a background refresh has nobody to serve */
	if (r == NULL) {
		cc_init(&none.cc);
		none.authorization = none.pragma_no_cache = false;
	}
	if (!cache_stale_if_error_ok(r != NULL ? &r->rq : &none, &c->cstale->times, now_s()))
		return false;
	release_lock(s, c, false);
	stats_of(s, c)->stale++;
	c->cache_304 = false;
	serve(s, c, c->cstale, CL_STALE);
	c->cstale = NULL;
	return true;
}

/* request_made_it: the response would be storable for a plain request. */
static bool request_made_it(const struct cache_req_info *rq, const struct cache_resp_info *rs,
                            const struct cache_zone *z)
{
	struct cache_req_info plain;

	if (!rq->authorization && !(rq->cc.flags & CC_NO_STORE))
		return false;
	memset(&plain, 0, sizeof(plain));
	cc_init(&plain.cc);
	return cache_unstorable(&plain, rs, &z->rules) == NULL;
}

/* start_store prepares the object for a storable response. */
static void start_store(struct shard *s, struct conn *c, const struct creq *r,
                        const struct h1_msg *m)
{
	const struct cache_zone *z = zone_of(c);
	struct cache_resp_info rs;
	const char *why;
	char head[16384];
	size_t len = status_line(m, head, sizeof(head));
	uint64_t cap;

	cache_resp_from_headers(&rs, m->status, m->headers, m->num_headers);
	why = cache_unstorable(&r->rq, &rs, &z->rules);
	if (why == NULL && m->body == H1_BODY_CLOSE)
		why = "close-delimited body";
	if (why == NULL && r->head)
		why = "HEAD";
	len = len > 0 ? put_fields(z, m, NULL, head, len, sizeof(head)) : 0;
	if (why == NULL && (len == 0 || len + 256 > s->cfg->limits.response_header_bytes_max))
		why = "head too large";
	cap = m->body == H1_BODY_LENGTH ? m->content_length
	      : m->body == H1_BODY_NONE ? 0
	                                : z->cfg.max_object;
	if (why == NULL && len + cap > z->cfg.max_object && m->body == H1_BODY_LENGTH)
		why = "larger than max_object";
	if (why != NULL) {
		rlb_log(LOG_DEBUG, "cache: not storing a %d response: %s", m->status, why);
		stats_of(s, c)->uncacheable++;
		/* The key passes (others skip the lock for a while) only when the
		 * response itself is the reason: not for this request's no-store or
		 * Authorization, a 304 to its own conditional, or an error. */
		drop_builder(s, c,
		             m->status != 304 && m->status != 206 && m->status != 412 &&
		                     m->status != 416 && m->status < 500 &&
		                     !request_made_it(&r->rq, &rs, z));
		return;
	}
	if (m->body == H1_BODY_CHUNKED)
		cap = z->cfg.max_object > len ? z->cfg.max_object - len : 0;
	c->cobj = build_obj(s, c, r, m, head, len, cap);
	if (c->cobj == NULL) {
		drop_builder(s, c, false);
		return;
	}
	c->cache_store = true;
	memset(&c->cache_chunk, 0, sizeof(c->cache_chunk));
}

/* invalidate removes every variant stored for the target of the unsafe
 * request `r` (the key a GET to it would have); its owner does it. */
static void invalidate(struct shard *s, struct conn *c, struct creq *r)
{
	struct cache_zone *z = zone_of(c);
	struct h1_str get = {"GET", 3};
	struct cache_purge_msg *msg;
	uint32_t owner;

	r->key_len =
	        cache_key_build(r->key, sizeof(r->key), get, r->m.host, r->m.target, z->key_headers,
	                        z->num_key_headers, r->m.headers, r->m.num_headers);
	if (r->key_len == 0)
		return;
	r->hash = XXH3_64bits(r->key, r->key_len);
	owner = cache_owner(z, r->hash);
	stats_of(s, c)->invalidated++;
	if (owner == s->id || all_shards == NULL) {
		cache_remove_key(z, s->id, r->hash, r->key, r->key_len);
		return;
	}
	msg = malloc(sizeof(*msg) + r->key_len);
	if (msg == NULL)
		return;
	msg->req = NULL;
	msg->zone = z;
	msg->hash = r->hash;
	msg->key_len = r->key_len;
	memcpy(msg->key, r->key, r->key_len);
	push_purge(&all_shards[owner], msg);
	ring_msg(&s->ring, ring_fd(&all_shards[owner].ring), ring_ud(OP_WAKE, 0, 0));
}

bool caching_response_head(struct shard *s, struct conn *c, const struct h1_msg *m)
{
	struct creq r;
	bool have;

	if (c->cache_mode == CM_UNSAFE) {
		if (m->status < 400 && parse_req(s, c, &r))
			invalidate(s, c, &r);
		return false;
	}
	if (c->cache_mode != CM_FILL && c->cache_mode != CM_REVAL && c->cache_mode != CM_PASS)
		return false;
	have = parse_req(s, c, &r);
	if (c->cstale != NULL && (c->cache_mode == CM_REVAL || c->cache_mode == CM_FILL)) {
		/* a 304 refreshes only when it answers our own validators */
		if (m->status == 304 && c->cache_mode == CM_REVAL) {
			if (have && refresh(s, c, &r, m))
				return true;
			if (c->bg || c->cstale == NULL) {
				/* a background refresh: nobody to answer */
				drop_builder(s, c, false);
				return false;
			}
			/* Not refreshed (no room, no memory): the stale entry is
			 * still right, and the client never sent this condition. */
			release_lock(s, c, false);
			serve(s, c, c->cstale, CL_REVALIDATED);
			c->cstale = NULL;
			return true;
		}
		if (m->status >= 500 && serve_stale(s, c, have ? &r : NULL))
			return true;
	}
	if (c->cache_mode == CM_PASS || !have) {
		drop_builder(s, c, false);
		return false;
	}
	start_store(s, c, &r, m);
	return false;
}

/* tee_target is the object being built when `len` more bytes fit in it;
 * a body that outgrows max_object is abandoned (its key passes). */
static struct cache_obj *tee_target(struct shard *s, struct conn *c, uint64_t len)
{
	struct cache_obj *o = c->cobj;

	if (!c->cache_store || o == NULL || len == 0)
		return NULL;
	if (o->body_len + len > o->body_cap) {
		stats_of(s, c)->too_big++;
		drop_builder(s, c, true);
		return NULL;
	}
	return o;
}

void caching_tee_mem(struct shard *s, struct conn *c, const char *p, size_t len)
{
	struct cache_obj *o = tee_target(s, c, len);

	if (o == NULL)
		return;
	memcpy(o->body + o->body_len, p, len);
	o->body_len += len;
}

void caching_tee(struct shard *s, struct conn *c, uint64_t off, uint64_t len, bool chunked)
{
	struct cache_obj *o = tee_target(s, c, len);

	if (o == NULL)
		return;
	for (uint64_t done = 0; done < len;) {
		size_t run;
		const char *p = bufq_run(&c->rin, conn_rinpool(s, c), off + done, &run);
		size_t used = 0, data = 0;

		if (p == NULL)
			break;
		if (run > len - done)
			run = (size_t)(len - done);
		if (!chunked) {
			memcpy(o->body + o->body_len, p, run);
			o->body_len += run;
			done += run;
			continue;
		}
		/* Decode a copy in place: the data moves to the front. */
		memcpy(o->body + o->body_len, p, run);
		h1_chunked_decode(&c->cache_chunk, &s->chunk_limits, o->body + o->body_len, run,
		                  &used, &data);
		o->body_len += data;
		done += run;
	}
}

void caching_response_done(struct shard *s, struct conn *c)
{
	struct cache_obj *o = c->cobj;

	if (!c->cache_store || o == NULL || c->cache_mode == CM_SERVE)
		return;
	c->cache_store = false;
	c->cobj = NULL;
	if (o->body_cap > o->body_len + 4096) {
		/* a chunked body: keep only what it needs */
		struct cache_obj *t = cache_obj_clone(o, o->body_len);

		if (t != NULL) {
			cache_obj_put(o);
			o = t;
		}
	}
	o->release_lock = c->cache_locked;
	c->cache_locked = false;
	hand_off(s, o);
}

bool caching_stale_on_error(struct shard *s, struct conn *c, int status)
{
	struct creq r;

	if (status < 500 || c->cstale == NULL ||
	    (c->cache_mode != CM_REVAL && c->cache_mode != CM_FILL))
		return false;
	return serve_stale(s, c, parse_req(s, c, &r) ? &r : NULL);
}

size_t caching_extra(const struct conn *c, char *out, size_t cap)
{
	const struct cache_zone *z = zone_of(c);
	int n;

	if (z == NULL || z->cfg.header[0] == '\0' || c->cache_mode == CM_NONE ||
	    c->cache_mode == CM_SERVE || c->cache_mode == CM_UNSAFE)
		return 0;
	n = snprintf(out, cap, "%s: MISS\r\n", z->cfg.header);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void caching_unwait(struct shard *s, struct conn *c)
{
	end_wait(s, c);
}

void caching_drop_store(struct shard *s, struct conn *c)
{
	if (c->cache_store)
		drop_builder(s, c, false);
}

void caching_end(struct shard *s, struct conn *c)
{
	end_wait(s, c);
	if (c->cobj != NULL) {
		cache_obj_put(c->cobj);
		c->cobj = NULL;
	}
	if (c->cstale != NULL) {
		cache_obj_put(c->cstale);
		c->cstale = NULL;
	}
	/* A fetch that ended without storing: waiters try again. */
	release_lock(s, c, false);
	c->cache_mode = CM_NONE;
	c->cache_store = c->cache_304 = c->cobj_direct = false;
	c->cbody = NULL;
	c->cbody_len = 0;
	c->cache_label = CL_NONE;
	c->cache_zone = 0;
}

/* ---- the loop ---- */

static void run_purges(struct shard *s)
{
	struct cache_purge_msg *m =
	        atomic_exchange_explicit(&s->cache_purges, NULL, memory_order_acquire);

	while (m != NULL) {
		struct cache_purge_msg *next = m->next;
		uint64_t n = 0;

		if (m->req == NULL) { /* an unsafe request's target */
			cache_remove_key(m->zone, s->id, m->hash, m->key, m->key_len);
			free(m);
			m = next;
			continue;
		}
		for (uint32_t i = 0; i < num_zones; i++) {
			uint64_t k = cache_purge(zones[i], s->id, m->req->host, m->req->target,
			                         m->req->prefix);

			zones[i]->stats[s->id].purged += k;
			n += k;
		}
		atomic_fetch_add_explicit(&m->req->removed, n, memory_order_relaxed);
		atomic_fetch_sub_explicit(&m->req->pending, 1, memory_order_release);
		free(m);
		m = next;
	}
}

void caching_run(struct shard *s)
{
	struct cache_obj *o;
	uint64_t g;

	if (num_zones == 0)
		return;
	o = atomic_exchange_explicit(&s->cache_inbox, NULL, memory_order_acquire);
	if (o != NULL) {
		struct cache_obj *fifo = NULL;

		while (o != NULL) { /* the inbox is a stack: reverse it */
			struct cache_obj *next = o->inbox;

			o->inbox = fifo;
			fifo = o;
			o = next;
		}
		while (fifo != NULL) {
			struct cache_obj *next = fifo->inbox;

			insert_local(s, fifo);
			fifo = next;
		}
	}
	if (atomic_load_explicit(&s->cache_purges, memory_order_relaxed) != NULL)
		run_purges(s);
	g = atomic_load_explicit(&fill_gen, memory_order_acquire);
	if (g == s->cache_gen_seen || s->cache_waiters == NULL)
		return;
	s->cache_gen_seen = g;
	/* A waiter whose fill still runs costs one peek; the others are
	 * parsed again and decided. Each may leave the list: `next` is read
	 * first (retrying one waiter never touches another). */
	for (struct conn *c = s->cache_waiters, *next; c != NULL; c = next) {
		next = c->cache_wait_next;
		if (cache_lock_peek(zone_of(c), c->cache_hash, s->now_ms) == CL_FILLING &&
		    s->now_ms < c->cache_wait_until)
			continue;
		retry_waiter(s, c);
	}
}

/* ---- admin ---- */

int64_t caching_purge(const char *host, const char *target, bool prefix)
{
	struct cache_purge *req;
	uint64_t removed;

	if (num_zones == 0 || num_shards == 0)
		return 0;
	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return -1;
	snprintf(req->host, sizeof(req->host), "%s", host);
	snprintf(req->target, sizeof(req->target), "%s", target);
	req->prefix = prefix;
	atomic_init(&req->pending, num_shards);
	for (uint32_t i = 0; i < num_zones; i++)
		atomic_fetch_add_explicit(&zones[i]->purges, 1, memory_order_release);
	for (uint32_t i = 0; i < num_shards; i++) {
		struct cache_purge_msg *m = calloc(1, sizeof(*m));
		struct shard *t = &all_shards[i];

		if (m == NULL) {
			atomic_fetch_sub(&req->pending, 1);
			continue;
		}
		m->req = req;
		push_purge(t, m);
	}
	for (int i = 0; i < PURGE_WAIT_MS && atomic_load(&req->pending) > 0; i++)
		usleep(1000);
	if (atomic_load(&req->pending) > 0)
		return -1; /* a shard is gone or stuck: req stays allocated for it */
	removed = atomic_load(&req->removed);
	free(req);
	return (int64_t)removed;
}

size_t caching_stats_json(char *out, size_t cap)
{
	size_t len = 0;
	int n = snprintf(out, cap, "{\"zones\":[");

	if (n < 0 || (size_t)n >= cap)
		return 0;
	len = (size_t)n;
	for (uint32_t i = 0; i < num_zones; i++) {
		const struct cache_zone *z = zones[i];
		struct cache_stats t = {0};
		uint64_t bytes = 0, count = 0;
		char path[sizeof(z->path) * 6];

		for (uint32_t p = 0; p < z->nparts; p++) {
			const struct cache_stats *st = &z->stats[p];

			t.hits += st->hits;
			t.misses += st->misses;
			t.stale += st->stale;
			t.revalidated += st->revalidated;
			t.coalesced += st->coalesced;
			t.stores += st->stores;
			t.evictions += st->evictions;
			t.purged += st->purged;
			t.uncacheable += st->uncacheable;
			t.too_big += st->too_big;
			t.bytes_served += st->bytes_served;
			t.refreshes += st->refreshes;
			t.invalidated += st->invalidated;
			bytes += atomic_load_explicit(&z->parts[p].bytes, memory_order_relaxed);
			count += atomic_load_explicit(&z->parts[p].count, memory_order_relaxed);
		}
		n = snprintf(out + len, cap - len,
		             "%s{\"host\":\"%s\",\"path\":\"%s\",\"memory\":%llu,\"bytes\":%llu,"
		             "\"objects\":%llu,\"hits\":%llu,\"misses\":%llu,\"stale\":%llu,"
		             "\"revalidated\":%llu,\"coalesced\":%llu,\"stores\":%llu,"
		             "\"evictions\":%llu,\"purged\":%llu,\"uncacheable\":%llu,"
		             "\"too_big\":%llu,\"bytes_served\":%llu,\"refreshes\":%llu,"
		             "\"invalidated\":%llu}",
		             i > 0 ? "," : "", z->host, rlb_json_text(path, sizeof(path), z->path),
		             (unsigned long long)z->cfg.memory, (unsigned long long)bytes,
		             (unsigned long long)count, (unsigned long long)t.hits,
		             (unsigned long long)t.misses, (unsigned long long)t.stale,
		             (unsigned long long)t.revalidated, (unsigned long long)t.coalesced,
		             (unsigned long long)t.stores, (unsigned long long)t.evictions,
		             (unsigned long long)t.purged, (unsigned long long)t.uncacheable,
		             (unsigned long long)t.too_big, (unsigned long long)t.bytes_served,
		             (unsigned long long)t.refreshes, (unsigned long long)t.invalidated);
		if (n < 0 || (size_t)n >= cap - len)
			return 0;
		len += (size_t)n;
	}
	n = snprintf(out + len, cap - len, "]}");
	if (n < 0 || (size_t)n >= cap - len)
		return 0;
	return len + (size_t)n;
}
