/* cache/store.h — where cached responses live: zones, owner partitions,
 * immutable objects, and the fill locks that coalesce misses.
 *
 * A zone is one route's cache. It is split into one partition per shard;
 * a key's partition (its owner) is its hash modulo the number of
 * partitions. Only the owner's thread inserts into, evicts from and purges
 * its partition (the engine sends it what to insert), so a partition needs
 * no lock. Any thread looks up any partition, lock-free: buckets are
 * RCU-protected chains (liburcu QSBR, readers online), objects are
 * immutable once published, and a reader that keeps an object past its
 * read-side section (while sending it) holds a reference. An object is
 * freed after a grace period once the table dropped it and the last
 * reference is gone.
 *
 * Fill locks: a small direct-mapped table of atomic slots per zone. The
 * first miss for a key claims its slot and fetches; concurrent misses on
 * any shard see the claim and wait; the filler releases the slot when the
 * object is stored (waiters then find it) or marks the key "pass" when the
 * response could not be stored (waiters, and later misses for a while, go
 * to the backend on their own). Two keys sharing a slot do not coalesce
 * with each other (the second goes straight to the backend): rare, and
 * never wrong.
 *
 * Thread: as said per function. Nothing here knows about shards or
 * connections.
 */
#ifndef RLB_CACHE_STORE_H
#define RLB_CACHE_STORE_H

#include "cache/evict.h"
#include "cache/rules.h"
#include "core/common.h"
#include "core/config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <urcu-qsbr.h>
#include <urcu/rculist.h>

#define CACHE_LOCKS        4096  /* fill-lock slots per zone */
#define CACHE_PASS_MS      10000 /* an unstorable key skips the lock this long */
#define CACHE_KEY_MAX      1024  /* primary key bytes */
#define CACHE_VARY_MAX     1024  /* variant signature bytes */
#define CACHE_KEY_HEADERS  CONFIG_CACHE_KEY_HEADERS_MAX /* configured extra key fields */
#define CACHE_ETAG_MAX     128
#define CACHE_VARIANTS_MAX 32 /* variants (Vary values, codings) kept per key */

/* One stored response: immutable after cache_obj_publish. */
struct cache_obj {
	struct cache_obj *_Atomic next; /* bucket chain (RCU) */
	struct rcu_head rcu;
	struct evict_node node;  /* owner's eviction queues */
	struct cache_obj *inbox; /* engine: next in the owner's insert inbox */
	void *zone;              /* engine: the zone it is for, while in the inbox */
	_Atomic uint32_t refs;   /* the table's reference + one per reader */
	_Atomic bool dead;       /* out of the table: lookups skip it */
	bool linked;             /* owner: in the table */
	bool release_lock;       /* engine: the owner releases the fill lock once inserted */
	bool compressible;       /* a plain body that ringlb would compress for some clients */
	uint64_t purges;         /* engine: the zone's purge count when its response began */
	bool auth_ok;            /* public, s-maxage or must-revalidate: may answer requests
	                            that carry Authorization (RFC 9111 §3.5) */
	uint8_t enc;             /* content coding of the body (enum zenc) */
	uint16_t status;
	uint64_t hash; /* of the primary key */
	struct cache_times times;
	int64_t date, last_modified; /* seconds, -1 if absent */
	uint32_t key_len, vary_names_len, vary_len, head_len, etag_len;
	uint64_t body_len, body_cap;
	char *key;        /* primary key (cache_key_build) */
	char *vary_names; /* the response's Vary value ("" = none) */
	char *vary;       /* the request's signature for those names */
	char *head;       /* stored fields, "Name: value\r\n" each */
	char *etag;       /* the ETag value ("" = none) */
	char *body;
	char data[];
};

/* Counters one shard writes for one zone; readers sum. */
struct cache_stats {
	uint64_t hits, misses, stale, revalidated, coalesced, stores, evictions, purged;
	uint64_t uncacheable, too_big, bytes_served, refreshes, invalidated;
} __attribute__((aligned(RLB_CACHELINE)));

struct cache_part {
	struct cache_obj *_Atomic *buckets;
	uint32_t mask;
	struct evict_policy policy; /* owner only */
	_Atomic uint64_t bytes, count;
} __attribute__((aligned(RLB_CACHELINE)));

struct cache_lock {
	_Atomic uint64_t hash; /* 0 = free */
	_Atomic uint32_t state;
	_Atomic uint64_t until_ms; /* PASS: until when */
};

enum cache_lock_state { CL_FREE = 0, CL_FILLING, CL_PASS };

/* What cache_lock_try tells the caller to do. */
enum cache_lock_result {
	CLR_FILL = 0, /* it holds the lock: fetch, then store or pass */
	CLR_WAIT,     /* another fetch for the key runs: wait for it */
	CLR_PASS,     /* go to the backend without storing (recently unstorable) */
	CLR_NOLOCK,   /* the slot is held for another key: fetch without the lock */
};

struct cache_zone {
	uint32_t index; /* in the engine's zone table */
	char host[256]; /* the route it was made for: its identity across reloads */
	char path[256];
	struct config_cache cfg;
	struct cache_rules_cfg rules;
	uint32_t num_key_headers;
	struct h1_str key_headers[CACHE_KEY_HEADERS];
	uint32_t nparts;
	struct cache_part *parts;
	struct cache_stats *stats; /* [nparts]: per shard */
	struct cache_lock locks[CACHE_LOCKS];
	_Atomic uint64_t purges; /* bumped by every purge: fills begun before one are dropped */
};

/* cache_zone_new makes a zone for a route with `nparts` partitions, each
 * with memory / nparts bytes. Boot time. Returns NULL with a message. */
struct cache_zone *cache_zone_new(const struct config_cache *cfg, const char *host,
                                  const char *path, uint32_t nparts, char *err, size_t err_len);

/* cache_zone_free frees a zone and every object in it; no thread may use it. */
void cache_zone_free(struct cache_zone *z);

/* cache_owner is the partition that owns keys with hash `h`. */
static inline uint32_t cache_owner(const struct cache_zone *z, uint64_t h)
{
	return (uint32_t)((h >> 32) % z->nparts);
}

/* cache_match decides whether a candidate with the right primary key is
 * the variant the request wants. */
typedef bool (*cache_match_fn)(const struct cache_obj *o, void *arg);

/* cache_lookup finds a live object with hash `h`, key `key` that `match`
 * accepts and takes a reference on it. Any thread, RCU-online. NULL if
 * none. */
struct cache_obj *cache_lookup(struct cache_zone *z, uint64_t h, const char *key, size_t key_len,
                               cache_match_fn match, void *arg);

/* cache_obj_get takes another reference on `o` (the caller holds one). */
void cache_obj_get(struct cache_obj *o);

/* cache_obj_put drops a reference; the last one frees `o` after a grace
 * period. Any RCU-registered thread. */
void cache_obj_put(struct cache_obj *o);

/* cache_obj_new allocates an unpublished object with room for its key,
 * Vary names and signature, stored head, ETag and `body_cap` body bytes
 * (filled in by the caller, body_len starting at 0). One reference, the
 * caller's. NULL when out of memory. */
struct cache_obj *cache_obj_new(uint64_t h, const char *key, size_t key_len, const char *vary_names,
                                size_t vary_names_len, const char *vary, size_t vary_len,
                                const char *head, size_t head_len, const char *etag,
                                size_t etag_len, uint64_t body_cap);

/* cache_obj_clone copies an unpublished object, metadata and body, into a
 * new one with room for `body_cap` (>= its body_len) body bytes. NULL when
 * out of memory. */
struct cache_obj *cache_obj_clone(const struct cache_obj *o, uint64_t body_cap);

/* cache_obj_size is what an object is charged against the budget. */
uint64_t cache_obj_size(const struct cache_obj *o);

/* cache_insert publishes `o` in partition `part` (its owner's), replacing
 * the entry with the same key, coding and variant, evicting others to stay
 * within the budget. Takes the caller's reference. Owner thread only.
 * Returns false (and drops `o`) when it cannot fit. `evicted` counts. */
bool cache_insert(struct cache_zone *z, uint32_t part, struct cache_obj *o, uint64_t *evicted);

/* cache_purge removes from partition `part` every object whose host is
 * `host` ("" = any) and whose target equals `target`, or starts with it
 * when `prefix`. Owner thread only. Returns the number removed. */
uint64_t cache_purge(struct cache_zone *z, uint32_t part, const char *host, const char *target,
                     bool prefix);

/* cache_remove_key removes every variant stored under key `key` (hash
 * `h`) from partition `part`. Owner thread only. Returns the number
 * removed. */
uint64_t cache_remove_key(struct cache_zone *z, uint32_t part, uint64_t h, const char *key,
                          size_t key_len);

/* cache_lock_try claims or inspects the fill lock for hash `h`. */
enum cache_lock_result cache_lock_try(struct cache_zone *z, uint64_t h, uint64_t now_ms);

/* cache_lock_release ends a fill: `pass` marks the key unstorable for
 * CACHE_PASS_MS. Only the thread that got CLR_FILL. */
void cache_lock_release(struct cache_zone *z, uint64_t h, bool pass, uint64_t now_ms);

/* cache_lock_peek says whether a fill for `h` is still running (waiters
 * poll it): CL_FILLING, CL_PASS or CL_FREE. */
enum cache_lock_state cache_lock_peek(struct cache_zone *z, uint64_t h, uint64_t now_ms);

#endif
