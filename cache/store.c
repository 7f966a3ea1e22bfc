/* cache/store.c — zones, partitions, objects and fill locks (store.h). */
#include "cache/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS_PER_MIB 64 /* bucket array size per MiB of partition budget */

static void obj_free_rcu(struct rcu_head *head)
{
	struct cache_obj *o = caa_container_of(head, struct cache_obj, rcu);

	free(o);
}

void cache_obj_get(struct cache_obj *o)
{
	atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void cache_obj_put(struct cache_obj *o)
{
	if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
		call_rcu(&o->rcu, obj_free_rcu);
}

/* get_live takes a reference unless the count already reached zero (the
 * object is on its way to being freed; RCU keeps its memory valid here). */
static bool get_live(struct cache_obj *o)
{
	uint32_t r = atomic_load_explicit(&o->refs, memory_order_relaxed);

	while (r > 0)
		if (atomic_compare_exchange_weak_explicit(&o->refs, &r, r + 1, memory_order_acquire,
		                                          memory_order_relaxed))
			return true;
	return false;
}

uint64_t cache_obj_size(const struct cache_obj *o)
{
	return sizeof(*o) + o->key_len + o->vary_names_len + o->vary_len + o->head_len +
	       o->etag_len + o->body_cap + 5;
}

struct cache_obj *cache_obj_new(uint64_t h, const char *key, size_t key_len, const char *vary_names,
                                size_t vary_names_len, const char *vary, size_t vary_len,
                                const char *head, size_t head_len, const char *etag,
                                size_t etag_len, uint64_t body_cap)
{
	size_t meta = key_len + vary_names_len + vary_len + head_len + etag_len + 5;
	struct cache_obj *o = malloc(sizeof(*o) + meta + body_cap);
	char *p;

	if (o == NULL)
		return NULL;
	memset(o, 0, sizeof(*o));
	atomic_init(&o->refs, 1);
	atomic_init(&o->dead, false);
	o->hash = h;
	p = o->data;
#define PUT(field, src, len)                                                                       \
	do {                                                                                       \
		o->field = p;                                                                      \
		if ((len) > 0)                                                                     \
			memcpy(p, src, len);                                                       \
		p[len] = '\0';                                                                     \
		p += (len) + 1;                                                                    \
	} while (0)
	PUT(key, key, key_len);
	PUT(vary_names, vary_names, vary_names_len);
	PUT(vary, vary, vary_len);
	PUT(head, head, head_len);
	PUT(etag, etag, etag_len);
#undef PUT
	o->key_len = (uint32_t)key_len;
	o->vary_names_len = (uint32_t)vary_names_len;
	o->vary_len = (uint32_t)vary_len;
	o->head_len = (uint32_t)head_len;
	o->etag_len = (uint32_t)etag_len;
	o->body = p;
	o->body_cap = body_cap;
	o->date = o->last_modified = -1;
	return o;
}

struct cache_obj *cache_obj_clone(const struct cache_obj *o, uint64_t body_cap)
{
	struct cache_obj *t = cache_obj_new(o->hash, o->key, o->key_len, o->vary_names,
	                                    o->vary_names_len, o->vary, o->vary_len, o->head,
	                                    o->head_len, o->etag, o->etag_len, body_cap);

	if (t == NULL)
		return NULL;
	memcpy(t->body, o->body, o->body_len);
	t->body_len = o->body_len;
	t->times = o->times;
	t->status = o->status;
	t->enc = o->enc;
	t->compressible = o->compressible;
	t->auth_ok = o->auth_ok;
	t->purges = o->purges;
	t->date = o->date;
	t->last_modified = o->last_modified;
	t->zone = o->zone;
	return t;
}

/* ---- zones ---- */

/* parse_key_headers splits the configured "A,B" list; false when it holds
 * more than CACHE_KEY_HEADERS names (none may be dropped: requests that
 * differ only in it would share an entry). */
static bool parse_key_headers(struct cache_zone *z)
{
	const char *p = z->cfg.key_headers;

	while (*p != '\0') {
		size_t len = strcspn(p, ",");

		if (z->num_key_headers == CACHE_KEY_HEADERS)
			return false;
		z->key_headers[z->num_key_headers++] = (struct h1_str){p, len};
		p += len + (p[len] == ',');
	}
	return true;
}

struct cache_zone *cache_zone_new(const struct config_cache *cfg, const char *host,
                                  const char *path, uint32_t nparts, char *err, size_t err_len)
{
	struct cache_zone *z = calloc(1, sizeof(*z));
	uint64_t share = cfg->memory / (nparts > 0 ? nparts : 1);
	uint32_t nb = 1024;

	if (z == NULL) {
		snprintf(err, err_len, "out of memory for a cache zone");
		return NULL;
	}
	z->cfg = *cfg;
	snprintf(z->host, sizeof(z->host), "%s", host);
	snprintf(z->path, sizeof(z->path), "%s", path);
	z->rules = (struct cache_rules_cfg){.heuristic = cfg->heuristic,
	                                    .heuristic_percent = 10,
	                                    .heuristic_max = 86400,
	                                    .store_set_cookie = cfg->store_set_cookie};
	if (!parse_key_headers(z)) {
		snprintf(err, err_len, "cache key_headers: at most %d fields", CACHE_KEY_HEADERS);
		free(z);
		return NULL;
	}
	while ((uint64_t)nb < share / (1024 * 1024) * BUCKETS_PER_MIB && nb < (1u << 24))
		nb <<= 1;
	z->nparts = nparts;
	/* Cache-line aligned: each shard's partition and counters on lines of
	 * their own (calloc aligns to 16 only). */
	z->parts = aligned_alloc(RLB_CACHELINE, nparts * sizeof(*z->parts));
	if (z->parts == NULL)
		goto oom;
	memset(z->parts, 0, nparts * sizeof(*z->parts));
	z->stats = aligned_alloc(RLB_CACHELINE, nparts * sizeof(*z->stats));
	if (z->stats == NULL)
		goto oom;
	memset(z->stats, 0, nparts * sizeof(*z->stats));
	for (uint32_t i = 0; i < nparts; i++) {
		struct cache_part *p = &z->parts[i];

		p->buckets = calloc(nb, sizeof(*p->buckets));
		p->mask = nb - 1;
		if (p->buckets == NULL || evict_init(&p->policy, share, 0) != 0)
			goto oom;
	}
	return z;
oom:
	snprintf(err, err_len, "out of memory for a cache zone of %llu bytes",
	         (unsigned long long)cfg->memory);
	cache_zone_free(z);
	return NULL;
}

void cache_zone_free(struct cache_zone *z)
{
	if (z == NULL)
		return;
	for (uint32_t i = 0; z->parts != NULL && i < z->nparts; i++) {
		struct cache_part *p = &z->parts[i];

		for (uint32_t b = 0; p->buckets != NULL && b <= p->mask; b++) {
			struct cache_obj *o = atomic_load(&p->buckets[b]);

			while (o != NULL) {
				struct cache_obj *next = atomic_load(&o->next);

				free(o);
				o = next;
			}
		}
		free(p->buckets);
		if (p->buckets != NULL)
			evict_destroy(&p->policy);
	}
	free(z->parts);
	free(z->stats);
	free(z);
}

/* ---- lookups ---- */

struct cache_obj *cache_lookup(struct cache_zone *z, uint64_t h, const char *key, size_t key_len,
                               cache_match_fn match, void *arg)
{
	struct cache_part *p = &z->parts[cache_owner(z, h)];
	struct cache_obj *o = atomic_load_explicit(&p->buckets[h & p->mask], memory_order_acquire);

	/* Acquire loads pair with the owner's rcu_assign_pointer (a release):
	 * an object's fields are seen complete once its pointer is. */
	for (; o != NULL; o = atomic_load_explicit(&o->next, memory_order_acquire)) {
		if (o->hash != h || o->key_len != key_len || memcmp(o->key, key, key_len) != 0)
			continue;
		if (atomic_load_explicit(&o->dead, memory_order_acquire))
			continue;
		if (match != NULL && !match(o, arg))
			continue;
		if (get_live(o)) {
			evict_touch(&o->node);
			return o;
		}
	}
	return NULL;
}

/* ---- the owner's changes ---- */

/* unlink_obj takes `o` out of its bucket chain and drops the table's
 * reference. Readers still walking past it see a valid `next`. */
static void unlink_obj(struct cache_part *p, struct cache_obj *o)
{
	struct cache_obj *_Atomic *at = &p->buckets[o->hash & p->mask];

	for (struct cache_obj *cur = atomic_load_explicit(at, memory_order_relaxed); cur != NULL;
	     cur = atomic_load_explicit(at, memory_order_relaxed)) {
		if (cur == o) {
			rcu_assign_pointer(*at,
			                   atomic_load_explicit(&o->next, memory_order_relaxed));
			break;
		}
		at = &cur->next;
	}
	atomic_store_explicit(&o->dead, true, memory_order_release);
	o->linked = false;
	atomic_fetch_sub_explicit(&p->bytes, o->node.size, memory_order_relaxed);
	atomic_fetch_sub_explicit(&p->count, 1, memory_order_relaxed);
	cache_obj_put(o);
}

struct evict_arg {
	struct cache_part *part;
	uint64_t n;
};

static void on_evict(struct evict_node *n, void *arg)
{
	struct evict_arg *a = arg;
	struct cache_obj *o = caa_container_of(n, struct cache_obj, node);

	a->n++;
	unlink_obj(a->part, o);
}

/* same_variant: `a` would replace `b` (same key, coding and signature). */
static bool same_variant(const struct cache_obj *a, const struct cache_obj *b)
{
	return a->hash == b->hash && a->key_len == b->key_len && a->enc == b->enc &&
	       a->vary_len == b->vary_len && memcmp(a->key, b->key, a->key_len) == 0 &&
	       memcmp(a->vary, b->vary, a->vary_len) == 0;
}

bool cache_insert(struct cache_zone *z, uint32_t part, struct cache_obj *o, uint64_t *evicted)
{
	struct cache_part *p = &z->parts[part];
	struct cache_obj *_Atomic *head = &p->buckets[o->hash & p->mask];
	struct evict_arg a = {.part = p, .n = 0};
	struct cache_obj *cur = atomic_load_explicit(head, memory_order_relaxed);

	struct cache_obj *oldest = NULL;
	uint32_t variants = 0;

	while (cur != NULL) {
		struct cache_obj *next = atomic_load_explicit(&cur->next, memory_order_relaxed);

		if (same_variant(o, cur)) {
			evict_remove(&p->policy, &cur->node);
			unlink_obj(p, cur);
		} else if (cur->hash == o->hash && cur->key_len == o->key_len &&
		           memcmp(cur->key, o->key, o->key_len) == 0) {
			variants++;
			oldest = cur; /* the chain is newest first */
		}
		cur = next;
	}
	/* Vary on a field clients choose freely (User-Agent) must not grow one
	 * key's chain without bound: the oldest variant makes room. */
	if (variants >= CACHE_VARIANTS_MAX) {
		evict_remove(&p->policy, &oldest->node);
		unlink_obj(p, oldest);
	}
	o->node.hash = o->hash;
	o->node.size = (uint32_t)cache_obj_size(o);
	if (cache_obj_size(o) > UINT32_MAX || !evict_insert(&p->policy, &o->node, on_evict, &a)) {
		*evicted += a.n;
		cache_obj_put(o);
		return false;
	}
	*evicted += a.n;
	o->linked = true;
	atomic_store_explicit(&o->next, atomic_load_explicit(head, memory_order_relaxed),
	                      memory_order_relaxed);
	rcu_assign_pointer(*head, o);
	atomic_fetch_add_explicit(&p->bytes, o->node.size, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->count, 1, memory_order_relaxed);
	return true;
}

/* key_matches: the key "METHOD\0host\0target[\0...]" names `host` ("" =
 * any) and `target` (or a target starting with it). */
static bool key_matches(const struct cache_obj *o, const char *host, const char *target,
                        bool prefix)
{
	const char *m = o->key, *end = o->key + o->key_len;
	const char *h = memchr(m, '\0', (size_t)(end - m));
	const char *t, *te;
	size_t tl = strlen(target);

	if (h == NULL)
		return false;
	h++;
	t = memchr(h, '\0', (size_t)(end - h));
	if (t == NULL)
		return false;
	if (host[0] != '\0' &&
	    ((size_t)(t - h) != strlen(host) || memcmp(h, host, strlen(host)) != 0))
		return false;
	t++;
	te = memchr(t, '\0', (size_t)(end - t));
	if (te == NULL)
		te = end;
	if (prefix)
		return (size_t)(te - t) >= tl && memcmp(t, target, tl) == 0;
	return (size_t)(te - t) == tl && memcmp(t, target, tl) == 0;
}

uint64_t cache_purge(struct cache_zone *z, uint32_t part, const char *host, const char *target,
                     bool prefix)
{
	struct cache_part *p = &z->parts[part];
	uint64_t n = 0;

	for (uint32_t b = 0; b <= p->mask; b++) {
		struct cache_obj *o = atomic_load_explicit(&p->buckets[b], memory_order_relaxed);

		while (o != NULL) {
			struct cache_obj *next =
			        atomic_load_explicit(&o->next, memory_order_relaxed);

			if (key_matches(o, host, target, prefix)) {
				evict_remove(&p->policy, &o->node);
				unlink_obj(p, o);
				n++;
			}
			o = next;
		}
	}
	return n;
}

uint64_t cache_remove_key(struct cache_zone *z, uint32_t part, uint64_t h, const char *key,
                          size_t key_len)
{
	struct cache_part *p = &z->parts[part];
	struct cache_obj *o = atomic_load_explicit(&p->buckets[h & p->mask], memory_order_relaxed);
	uint64_t n = 0;

	while (o != NULL) {
		struct cache_obj *next = atomic_load_explicit(&o->next, memory_order_relaxed);

		if (o->hash == h && o->key_len == key_len && memcmp(o->key, key, key_len) == 0) {
			evict_remove(&p->policy, &o->node);
			unlink_obj(p, o);
			n++;
		}
		o = next;
	}
	return n;
}

/* ---- fill locks ---- */

/* lock_tag: a slot's hash 0 means free, so a key hashing to 0 is tagged
 * CACHE_LOCKS instead (the same slot). */
static uint64_t lock_tag(uint64_t h)
{
	return h != 0 ? h : CACHE_LOCKS;
}

enum cache_lock_result cache_lock_try(struct cache_zone *z, uint64_t h, uint64_t now_ms)
{
	struct cache_lock *l = &z->locks[h % CACHE_LOCKS];

	h = lock_tag(h);
	uint64_t cur = atomic_load_explicit(&l->hash, memory_order_acquire);
	uint32_t st;

	if (cur == h) {
		st = atomic_load_explicit(&l->state, memory_order_acquire);
		if (st != CL_PASS)
			return CLR_WAIT; /* filling, or claimed a moment ago */
		if (atomic_load_explicit(&l->until_ms, memory_order_relaxed) > now_ms)
			return CLR_PASS;
		/* The pass expired: whoever turns it back into a fill owns it,
		 * if the slot still holds this key (it may have been freed and
		 * taken by another key in between: then undo and go alone). */
		if (!atomic_compare_exchange_strong(&l->state, &st, CL_FILLING))
			return CLR_WAIT;
		if (atomic_load_explicit(&l->hash, memory_order_acquire) == h)
			return CLR_FILL;
		st = CL_FILLING;
		atomic_compare_exchange_strong(&l->state, &st, CL_PASS);
		return CLR_NOLOCK;
	}
	if (cur != 0) {
		st = atomic_load_explicit(&l->state, memory_order_acquire);
		if (st != CL_PASS ||
		    atomic_load_explicit(&l->until_ms, memory_order_relaxed) > now_ms)
			return CLR_NOLOCK;
		/* Another key's expired pass: free the slot, then race for it. */
		if (atomic_compare_exchange_strong(&l->state, &st, CL_FREE))
			atomic_store_explicit(&l->hash, 0, memory_order_release);
		cur = 0;
	}
	if (!atomic_compare_exchange_strong(&l->hash, &cur, h))
		return cur == h ? CLR_WAIT : CLR_NOLOCK;
	atomic_store_explicit(&l->state, CL_FILLING, memory_order_release);
	return CLR_FILL;
}

void cache_lock_release(struct cache_zone *z, uint64_t h, bool pass, uint64_t now_ms)
{
	struct cache_lock *l = &z->locks[h % CACHE_LOCKS];

	h = lock_tag(h);

	if (atomic_load_explicit(&l->hash, memory_order_acquire) != h)
		return;
	if (pass) {
		atomic_store_explicit(&l->until_ms, now_ms + CACHE_PASS_MS, memory_order_relaxed);
		atomic_store_explicit(&l->state, CL_PASS, memory_order_release);
		return;
	}
	atomic_store_explicit(&l->state, CL_FREE, memory_order_release);
	atomic_store_explicit(&l->hash, 0, memory_order_release);
}

enum cache_lock_state cache_lock_peek(struct cache_zone *z, uint64_t h, uint64_t now_ms)
{
	struct cache_lock *l = &z->locks[h % CACHE_LOCKS];

	h = lock_tag(h);
	uint32_t st;

	if (atomic_load_explicit(&l->hash, memory_order_acquire) != h)
		return CL_FREE;
	st = atomic_load_explicit(&l->state, memory_order_acquire);
	if (st == CL_PASS && atomic_load_explicit(&l->until_ms, memory_order_relaxed) <= now_ms)
		return CL_FREE;
	return st == CL_PASS ? CL_PASS : CL_FILLING;
}
