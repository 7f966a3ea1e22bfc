/* cache/evict.h — the eviction policy of the HTTP cache: S3-FIFO (Yang et
 * al., "FIFO queues are all you need for cache eviction", SOSP 2023),
 * counted in bytes.
 *
 * Three FIFO queues: a small queue S (10% of the capacity), a main queue M
 * (the rest) and a ghost G of the 64-bit hashes ("fingerprints") of keys
 * recently evicted from S. A new object enters S, or M directly when its
 * fingerprint is in G (it was evicted too early once). When room is needed:
 * from S's tail, an object hit while in S moves to M and one never hit goes
 * to G and out; from M's tail, an object hit since its last pass has its
 * counter decremented and goes back to M's head (lazy promotion), one not
 * hit goes out. Most objects are requested once; S drops them after a short
 * stay, so a scan of one-time keys cannot flush the working set held in M,
 * and a hit costs one relaxed byte store instead of LRU's list move.
 *
 * Threads: one owner thread (a shard, or whoever holds the cache's lock)
 * calls everything but evict_touch; evict_touch (a hit) may be called by any
 * thread at any time. The hit counter `freq` is an atomic byte written with
 * relaxed loads and stores, no read-modify-write: two racing hits may count
 * as one, and a hit racing the owner's decrement may be lost, which only
 * makes the policy slightly less exact, never unsafe. The caller keeps the
 * node's memory valid while other threads may touch it (the cache frees
 * objects after a grace period).
 *
 * Memory: nodes are intrusive (embedded in the cached object), no operation
 * allocates; the ghost is a fixed table allocated by evict_init, with about
 * 16 bytes per fingerprint, whose oldest entries age out as new ones enter.
 */
#ifndef RLB_EVICT_H
#define RLB_EVICT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define EVICT_FREQ_MAX 3 /* freq is a 2-bit counter */

struct evict_node {
	struct evict_node *next, *prev; /* owned by the policy */
	uint64_t hash;                  /* the key's 64-bit hash (ghost fingerprints) */
	uint32_t size;                  /* bytes charged to the budget */
	_Atomic uint8_t freq;           /* hits since insertion/last pass, 0..3 */
	uint8_t queue;                  /* private: which queue holds it (0: none) */
};

/* A FIFO: insertion at the head, eviction at the tail. */
struct evict_queue {
	struct evict_node *head, *tail;
	uint64_t bytes, count;
};

/* The ghost: a ring of fingerprints in arrival order (the oldest is
 * overwritten) and an open-addressing index of ring positions for lookup. */
struct evict_ghost {
	uint64_t *ring;  /* cap fingerprints */
	uint32_t *index; /* mask + 1 slots: ring position + 1, 0 = empty */
	uint32_t cap, mask;
	uint32_t pos;    /* next ring position to write */
	uint32_t filled; /* ring positions written so far (up to cap) */
	uint32_t live;   /* fingerprints in the index */
};

struct evict_policy {
	struct evict_queue small, main;
	struct evict_ghost ghost;
	uint64_t capacity;  /* bytes */
	uint64_t small_cap; /* S's share: capacity / 10 */
};

/* evict_init prepares a policy for `capacity` bytes and a ghost table of
 * `ghost_entries` fingerprints (0 = a default derived from capacity / 16 KiB,
 * at least 1024). Returns 0, -1 on allocation failure. */
int evict_init(struct evict_policy *p, uint64_t capacity, uint32_t ghost_entries);

/* evict_destroy frees the ghost; nodes still held are forgotten, not
 * called back (the caller frees its objects). */
void evict_destroy(struct evict_policy *p);

/* evict_insert admits node n (n->hash and n->size set by the caller; freq
 * reset here): makes room by evicting others, calling evict_cb(node, arg)
 * for each node it removes from the policy (the callback frees/unlinks the
 * object and must not call back into the policy; the node is already
 * unlinked from the queues when the callback runs). Returns false (and
 * admits nothing, evicts nothing) when n->size > capacity. */
bool evict_insert(struct evict_policy *p, struct evict_node *n,
                  void (*evict_cb)(struct evict_node *, void *), void *arg);

/* evict_touch records a hit on n; any thread (a lost increment under a race
 * is accepted, see above). */
static inline void evict_touch(struct evict_node *n)
{
	uint8_t f = atomic_load_explicit(&n->freq, memory_order_relaxed);

	if (f < EVICT_FREQ_MAX)
		atomic_store_explicit(&n->freq, (uint8_t)(f + 1), memory_order_relaxed);
}

/* evict_remove takes n out of the policy without evicting others (purge,
 * replacement); it does not enter the ghost. */
void evict_remove(struct evict_policy *p, struct evict_node *n);

/* evict_bytes: bytes currently charged. */
uint64_t evict_bytes(const struct evict_policy *p);

/* evict_count: objects held. */
uint64_t evict_count(const struct evict_policy *p);

/* evict_resize changes the capacity (evicting as needed via the callback);
 * the ghost keeps its size. */
void evict_resize(struct evict_policy *p, uint64_t capacity,
                  void (*evict_cb)(struct evict_node *, void *), void *arg);

#endif
