/* balancer/balancer.h — backend tables and the pick interface.
 *
 * A pool's backend table (`struct lb_pool`) is part of an immutable
 * snapshot: the control thread builds it, shards only read it. Anything an
 * algorithm must change per pick (a round-robin position, later EWMAs and
 * active counts) lives in `struct lb_local`, which each shard owns for each
 * pool, so picks take no lock and touch no shared cache line.
 *
 * Each algorithm is one file exporting one `const struct balancer_ops`.
 * This module knows nothing of shards or connections.
 */
#ifndef RLB_BALANCER_H
#define RLB_BALANCER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct lb_backend {
	uint32_t uid;    /* stable across snapshots; indexes per-shard arrays */
	uint32_t weight; /* 1..1000 */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char name[64]; /* the address as configured, for logs */
};

struct balancer_ops;

/* One pool's table. Immutable once published. */
struct lb_pool {
	const struct balancer_ops *ops;
	struct lb_backend *backends;
	uint32_t num_backends;
	void *state; /* algorithm state made by ops->build; immutable */
};

/* Per shard, per pool mutable state. Zero is the initial state. */
struct lb_local {
	uint64_t counter;
};

/* What a pick may consider about the request. */
struct lb_ctx {
	uint64_t exclude; /* bit i set: backend i was already tried (i < 64) */
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

extern const struct balancer_ops balancer_round_robin;

#endif
