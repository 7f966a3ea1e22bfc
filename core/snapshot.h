/* core/snapshot.h — the immutable configuration snapshot that shards read.
 *
 * The control thread builds a snapshot from a validated `struct config`
 * and publishes it with rcu_assign_pointer (liburcu QSBR). Shards read the
 * current one with snapshot_current() between two quiescent states and
 * must not keep pointers into it across loop turns: they keep indexes and
 * backend uids instead, and look the snapshot up again (its `version` tells
 * whether indexes are still valid).
 *
 * Backend uids are stable across snapshots (the registry maps "pool/address"
 * to a uid) so that per-shard state indexed by uid — idle upstream
 * connections — survives a reload.
 */
#ifndef RLB_SNAPSHOT_H
#define RLB_SNAPSHOT_H

#include "balancer/balancer.h"
#include "core/config.h"
#include "core/h1.h"
#include "tls/tls.h"

#include <stdbool.h>
#include <stdint.h>

#define SNAPSHOT_UIDS_MAX 16384 /* distinct backends over the process life */

struct cidr_table;
struct filter;
struct snap_prot;

/* An allow/deny list: a lookup gives SNAP_ACL_ALLOW, SNAP_ACL_DENY or 0
 * (no prefix matched: allowed unless default_deny, i.e. an allow list
 * exists). NULL table: everyone is allowed. */
enum { SNAP_ACL_ALLOW = 1, SNAP_ACL_DENY = 2 };
struct snap_acl {
	struct cidr_table *table;
	bool default_deny;
};

struct snap_listener {
	struct snap_acl acl;
	struct cidr_table *trusted; /* trusted_proxies; NULL = none */
	bool proxy_protocol;
};

struct snap_route {
	char host[256];   /* lower-case; "" = any */
	bool host_suffix; /* host was "*.suffix": host holds ".suffix" */
	char path[256];   /* prefix; "" = any */
	size_t host_len, path_len;
	uint32_t pool;
	int32_t cache_zone; /* the route's cache zone (core/caching.c), or -1 */
	uint32_t index;     /* position in the routes list */
	struct snap_acl acl;
	struct config_rate_limit rate_limit;
	struct filter *filter; /* NULL = no filters */
};

struct snap_pool {
	char name[CONFIG_NAME_MAX];
	struct lb_pool lb;
	struct config_health health;
	struct config_health *backend_health; /* [lb.num_backends]; enabled = overrides `health` */
	struct config_passive passive;
	struct config_agent agent;
	enum config_hash_key hash_key;
	char hash_key_name[CONFIG_NAME_MAX];
	size_t hash_key_len;
	uint32_t keepalive;
	uint64_t keepalive_timeout_ms;
	uint32_t retries;
	uint32_t retry_budget, retry_budget_min;
	uint64_t slow_start_ms;
	char sticky_cookie[CONFIG_NAME_MAX];
	size_t sticky_cookie_len;
	uint32_t queue_max;
	uint64_t queue_timeout_ms;
	struct tls_client *tls; /* TLS to the backends; NULL = plain */
};

struct snapshot {
	uint64_t version;
	uint32_t num_pools;
	struct snap_pool *pools;
	uint32_t num_routes;
	struct snap_route *routes;
	struct config_timeouts timeouts;
	uint64_t body_bytes_max;
	uint32_t num_listeners;
	struct snap_listener listeners[CONFIG_LISTENERS_MAX];
	struct snap_prot *prot; /* owns the tables and filters above (shared) */
};

/* Maps backend identities to uids. Control thread only. `live` (optional:
 * NULL leaves load-aware algorithms blind) is the process-wide array of
 * SNAPSHOT_UIDS_MAX live counters that every snapshot's pools point to; it
 * outlives them all. */
struct uid_registry {
	char keys[SNAPSHOT_UIDS_MAX][CONFIG_NAME_MAX + 72];
	uint32_t num;
	struct lb_live *live;
};

/* snapshot_build makes a snapshot from `cfg` (validated). Returns NULL with
 * a message in err on failure (uid space exhausted, out of memory). */
struct snapshot *snapshot_build(const struct config *cfg, struct uid_registry *reg,
                                uint64_t version, char *err, size_t err_len);

/* snapshot_rebuild is snapshot_build for a change that keeps the routes
 * and listeners (the admin API): the allow lists and filters of `prev` are
 * shared instead of read and compiled again. prev NULL = snapshot_build. */
struct snapshot *snapshot_rebuild(const struct config *cfg, struct uid_registry *reg,
                                  uint64_t version, const struct snapshot *prev, char *err,
                                  size_t err_len);

/* snapshot_check_protection builds and drops the allow lists (reading
 * their files) and filters of `cfg`, for `ringlb -t`. Returns 1, or 0 with
 * a message. */
int snapshot_check_protection(const struct config *cfg, char *err, size_t err_len);

/* snapshot_free frees `s` and everything it owns; NULL is fine. Call only
 * after a grace period (synchronize_rcu). */
void snapshot_free(struct snapshot *s);

/* snapshot_publish makes `s` current and returns the previous one, which
 * the caller frees after synchronize_rcu(). Control thread. */
struct snapshot *snapshot_publish(struct snapshot *s);

/* snapshot_current returns the current snapshot. Shard threads, while
 * RCU-online; the result is valid until the next quiescent state. */
const struct snapshot *snapshot_current(void);

/* snapshot_route returns the pool index for a request to `host` (port
 * already stripped) and `path`: the first matching route's pool, else the
 * first pool; -1 only when there is no pool at all. *zone (if not NULL)
 * gets the matching route's cache zone, or -1. */
int32_t snapshot_route(const struct snapshot *s, struct h1_str host, struct h1_str path,
                       int32_t *zone);

/* snapshot_find_route returns the first route matching host and path, or
 * NULL (the request then goes to the first pool). */
const struct snap_route *snapshot_find_route(const struct snapshot *s, struct h1_str host,
                                             struct h1_str path);

/* snapshot_acl_allows looks an address (16 bytes, family 4 or 6) up in an
 * allow/deny list. */
bool snapshot_acl_allows(const struct snap_acl *a, const uint8_t addr[16], int family);

#endif
