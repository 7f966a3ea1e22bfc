/* core/caching.h — the HTTP cache on the request path: lookups, serving
 * hits, coalescing misses across shards, storing responses, revalidation
 * and stale fallbacks, purges. The storage itself is cache/store.c.
 *
 * How a cached request goes:
 *   - start_request writes the upstream head as usual, then asks
 *     caching_begin. It parses that head again (the client's head is gone),
 *     builds the key, looks it up in the owner partition (lock-free, any
 *     shard) and decides: serve a hit (a response head made from the
 *     object is written into the response queue as if a backend had sent
 *     it, so HTTP/1.1, TLS and HTTP/2 clients all take the usual response
 *     path; the body is then sent from the object's own memory, or copied
 *     when it is compressed on the way), revalidate a stale entry, wait for
 *     another shard's fetch of the same key, or fetch.
 *   - A fetch that may be stored copies the body into a new object as it
 *     is classified (caching_tee), then hands the object to the owner shard
 *     (its inbox and a MSG_RING doorbell), which inserts it; the fill lock
 *     is released and every shard with waiters re-checks them.
 *
 * Thread: shard threads, except caching_boot (main, before the shards),
 * caching_purge and caching_stats_json (admin thread).
 */
#ifndef RLB_CACHING_H
#define RLB_CACHING_H

#include "core/conn.h"

#include <stddef.h>

/* What the cache does for the current request (conn.cache_mode). */
enum cache_mode {
	CM_NONE = 0, /* not cached (no zone, or a method the cache does not serve) */
	CM_FILL,     /* fetching; the response is stored if the rules allow */
	CM_REVAL,    /* fetching conditionally for the stale entry in cstale */
	CM_PASS,     /* fetching; the response is not stored */
	CM_WAIT,     /* waiting for another fetch of the same key */
	CM_SERVE,    /* the response comes from cobj */
	CM_UNSAFE,   /* an unsafe method: a success invalidates the target's entries */
};

/* What the X-Cache field says (conn.cache_label). */
enum cache_label { CL_NONE = 0, CL_HIT, CL_MISS, CL_STALE, CL_REVALIDATED };

/* caching_boot makes one zone per route with a cache section, each split
 * into `nshards` partitions. Returns 1, or 0 with a message. */
int caching_boot(const struct config *cfg, uint32_t nshards, char *err, size_t err_len);

/* caching_shutdown frees the zones once every shard has stopped. */
void caching_shutdown(void);

/* caching_set_shards tells the module the shards, for doorbells. */
void caching_set_shards(struct shard *shards, uint32_t n);

/* caching_zone_find returns the zone made for the route (host, path), or
 * -1. Used by snapshot builds, so a reload keeps routes on their zones. */
int32_t caching_zone_find(const char *host, const char *path);

/* caching_begin decides what the cache does for the request just routed
 * (c->cache_zone set, upstream head written). Returns true when the
 * request is taken care of (served from cache, or waiting); false when the
 * caller must get an upstream connection as usual. */
bool caching_begin(struct shard *s, struct conn *c);

/* caching_fed_all marks the served object's body as fully given (sent
 * from its memory instead of copied). */
void caching_fed_all(struct conn *c);

/* caching_feed copies more of a served object into c->rin. */
void caching_feed(struct shard *s, struct conn *c);

/* caching_response_head sees a final response head from the backend of a
 * cached request. Returns true when the cache answers instead (a 304 that
 * refreshed the stale entry, or a 5xx replaced by the stale entry): the
 * caller drops the backend's response. */
bool caching_response_head(struct shard *s, struct conn *c, const struct h1_msg *m);

/* caching_tee copies `len` response body bytes at c->rin offset `off`
 * into the object being built; `chunked` when they still carry the
 * chunked framing. */
void caching_tee(struct shard *s, struct conn *c, uint64_t off, uint64_t len, bool chunked);

/* caching_tee_mem copies `len` body bytes at `p` (a compressed body) into
 * the object being built. */
void caching_tee_mem(struct shard *s, struct conn *c, const char *p, size_t len);

/* caching_response_done runs when the backend's response is complete:
 * the object goes to its owner. */
void caching_response_done(struct shard *s, struct conn *c);

/* caching_stale_on_error serves the stale entry instead of the error
 * page `status` when the rules allow it. Returns true when it does. */
bool caching_stale_on_error(struct shard *s, struct conn *c, int status);

/* caching_extra writes the X-Cache field for a response from the backend
 * into out; returns its length. */
size_t caching_extra(const struct conn *c, char *out, size_t cap);

/* caching_unwait takes `c` off the shard's waiting list (it is closing). */
void caching_unwait(struct shard *s, struct conn *c);

/* caching_drop_store abandons the object being built from the response
 * (the body is cut or corrupt); the fill lock is released. */
void caching_drop_store(struct shard *s, struct conn *c);

/* caching_end releases what the transaction held: references, the fill
 * lock (waiters then retry), the object being built, the waiter entry. */
void caching_end(struct shard *s, struct conn *c);

/* caching_run, once per loop turn: inserts the objects other shards sent,
 * runs purges, and re-checks waiting requests when a fill ended. */
void caching_run(struct shard *s);

/* caching_on_timer handles a waiting request's timer: it stops waiting and
 * fetches on its own. Returns true when `c` was waiting. */
bool caching_on_timer(struct shard *s, struct conn *c);

/* caching_purge removes every object whose host is `host` ("" = any) and
 * whose target is `target` (or starts with it when `prefix`), in every
 * zone; each owner shard removes its own. Admin thread, RCU-offline.
 * Returns the number removed, or -1 when shards did not answer in time. */
int64_t caching_purge(const char *host, const char *target, bool prefix);

/* caching_stats_json writes {"zones":[...]} with each zone's usage and
 * counters (summed over shards). Returns the length, 0 if it did not fit. */
size_t caching_stats_json(char *out, size_t cap);

#endif
