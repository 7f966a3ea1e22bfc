/* balancer/balancer.h — backend tables and the pick interface.
 *
 * A pool's backend table (`struct lb_pool`) is part of an immutable
 * snapshot: the control thread builds it, shards only read it. What an
 * algorithm must change per pick on one shard (a round-robin position, a
 * random generator) lives in `struct lb_local`, which each shard owns for
 * each pool, so picks take no lock.
 *
 * What the whole process must agree on — requests in flight per backend
 * and the EWMA of its response times — lives in `struct lb_live`, one cache
 * line per backend, indexed by the backend's stable uid and shared by all
 * shards. Sharing is the point of these two numbers (least_conn must count
 * the requests of every shard), so they are the one place shards write
 * shared memory on the request path: relaxed atomics, no locks. The array
 * outlives every snapshot.
 *
 * Each algorithm is one file exporting `const struct balancer_ops`. This
 * module knows nothing of shards or connections.
 */
#ifndef RLB_BALANCER_H
#define RLB_BALANCER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LB_CACHELINE 64

struct lb_backend {
	uint32_t uid;       /* stable across snapshots; indexes lb_live and per-shard arrays */
	uint32_t weight;    /* 1..1000 */
	bool backup;        /* picked only in a backup round (lb_ctx.backups) */
	uint32_t max_conns; /* at most this many in flight (lb_live.active); 0 = no limit */
	uint64_t sticky_id; /* names it in a sticky cookie without revealing its address */
	bool draining;      /* takes no new request; those in flight finish */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char name[64]; /* the address as configured, for logs */
};

/* Live load of one backend, shared by every shard. */
struct lb_live {
	_Atomic uint64_t eject_until_ms; /* end of the current passive ejection */
	_Atomic uint64_t up_since_ms;    /* when it (re)entered service; 0 = since start-up */
	_Atomic uint32_t active;         /* requests in flight to this backend, all shards */
	_Atomic uint32_t ewma_us;        /* EWMA of time to response head, µs; 0 = no sample */
	_Atomic uint32_t down;           /* nonzero: skip it (LB_DOWN_* bits) */
	_Atomic uint32_t fails;          /* consecutive failed requests (passive checks) */
	_Atomic uint32_t ejections;      /* passive ejections in a row (back-off grows) */
	_Atomic uint32_t agent_permille; /* capacity the backend's agent reports; 0 = none yet */
	_Atomic int32_t last_check; /* last health check: HTTP status, 1 tcp ok, -errno; 0 = none */
	char _pad[LB_CACHELINE - 2 * sizeof(uint64_t) - 7 * sizeof(uint32_t)];
} __attribute__((aligned(LB_CACHELINE)));

#define LB_DOWN_ACTIVE  1u /* active health checks failed (the checker sets and clears) */
#define LB_DOWN_PASSIVE 2u /* ejected after consecutive failures (shards set, checker clears) */

_Static_assert(sizeof(struct lb_live) == LB_CACHELINE, "one cache line per backend");

struct balancer_ops;

/* One pool's table. Immutable once published. */
struct lb_pool {
	const struct balancer_ops *ops;
	struct lb_backend *backends;
	uint32_t num_backends;
	void *state;                 /* algorithm state made by ops->build; immutable */
	struct lb_live *live;        /* the process-wide array, indexed by backend uid */
	uint32_t balance_factor_pct; /* hash: bounded load, e.g. 125 (percent of the mean); 0 = off
	                              */
};

/* Per shard, per pool mutable state. Zero is a valid initial state. */
struct lb_local {
	uint64_t counter; /* rotation position */
	uint64_t rng;     /* xorshift state; 0 is replaced by a fixed seed */
};

/* What a pick may consider about the request. */
struct lb_ctx {
	uint64_t exclude; /* bit i set: backend i was already tried (i < 64) */
	uint64_t hash;    /* hash of the request's key (ip_hash, hash) */
	bool ignore_down; /* consider backends marked down (every one is down: fail open) */
	bool backups;     /* pick among the backup backends instead of the others */
};

struct balancer_ops {
	const char *name;
	/* build prepares pool->state from the table. Control thread. Returns 1
	 * or 0 (out of memory). */
	int (*build)(struct lb_pool *pool);
	/* release frees pool->state. Control thread, after a grace period. */
	void (*release)(struct lb_pool *pool);
	/* pick returns the index of the backend to use, or -1 when none can
	 * be used. Shard thread; must not block or allocate. */
	int32_t (*pick)(const struct lb_pool *pool, struct lb_local *local,
	                const struct lb_ctx *ctx);
};

/* balancer_find returns the algorithm named `name`, or NULL. */
const struct balancer_ops *balancer_find(const char *name);

/* balancer_names lists the accepted algorithm names, for error messages. */
const char *balancer_names(void);

/* lb_active reads the requests in flight to backend `i` of `pool`. */
static inline uint32_t lb_active(const struct lb_pool *pool, uint32_t i)
{
	if (pool->live == NULL)
		return 0;
	return atomic_load_explicit(&pool->live[pool->backends[i].uid].active,
	                            memory_order_relaxed);
}

/* lb_ewma_us reads backend `i`'s response-time EWMA (0 = unknown). */
static inline uint32_t lb_ewma_us(const struct lb_pool *pool, uint32_t i)
{
	if (pool->live == NULL)
		return 0;
	return atomic_load_explicit(&pool->live[pool->backends[i].uid].ewma_us,
	                            memory_order_relaxed);
}

/* lb_down_uid says whether the backend with `uid` is marked down. */
static inline bool lb_down_uid(const struct lb_pool *pool, const struct lb_ctx *ctx, uint32_t uid)
{
	if (pool->live == NULL || ctx->ignore_down)
		return false;
	return atomic_load_explicit(&pool->live[uid].down, memory_order_relaxed) != 0;
}

/* lb_excluded says whether backend `i` must not be picked: already tried
 * for this request, not of the round's kind (backup or not), at its
 * max_conns, or marked down by health checks. */
static inline bool lb_excluded(const struct lb_pool *pool, const struct lb_ctx *ctx, uint32_t i)
{
	if (i < 64 && ((ctx->exclude >> i) & 1) != 0)
		return true;
	if (pool->backends[i].backup != ctx->backups || pool->backends[i].draining)
		return true;
	if (pool->backends[i].max_conns != 0 && pool->live != NULL &&
	    atomic_load_explicit(&pool->live[pool->backends[i].uid].active, memory_order_relaxed) >=
	            pool->backends[i].max_conns)
		return true;
	return lb_down_uid(pool, ctx, pool->backends[i].uid);
}

/* lb_random returns the next number of the shard's generator (xorshift64*). */
static inline uint64_t lb_random(struct lb_local *local)
{
	uint64_t x = local->rng ? local->rng : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	local->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* lb_slow_start_permille is the share (per mille, 100..1000) of its traffic
 * a backend should take `now_ms` after it (re)entered service at
 * `up_since_ms`, ramping linearly over `ramp_ms`: 1000 once the ramp is
 * over, when there is none, or for a backend in service since start-up
 * (up_since_ms 0). It starts at 100 so a recovering backend is never
 * starved of the requests that show it works. */
static inline uint32_t lb_slow_start_permille(uint64_t now_ms, uint64_t up_since_ms,
                                              uint64_t ramp_ms)
{
	uint64_t p;

	if (ramp_ms == 0 || up_since_ms == 0 || now_ms >= up_since_ms + ramp_ms)
		return 1000;
	p = now_ms > up_since_ms ? (now_ms - up_since_ms) * 1000 / ramp_ms : 0;
	return p < 100 ? 100 : (uint32_t)p;
}

extern const struct balancer_ops balancer_round_robin;
extern const struct balancer_ops balancer_weighted_round_robin;
extern const struct balancer_ops balancer_least_conn;
extern const struct balancer_ops balancer_weighted_least_conn;
extern const struct balancer_ops balancer_random_two;
extern const struct balancer_ops balancer_least_time;
extern const struct balancer_ops balancer_resource; /* weighted_least_conn x agent capacity */
extern const struct balancer_ops balancer_hash; /* Maglev; ip_hash is hash on the client address */

#endif
