/* core/snapshot.c — building, publishing and reading snapshots. */
#include "core/snapshot.h"

#include "core/caching.h"
#include "core/cidr.h"
#include "core/common.h"
#include "core/filter.h"

#include <ctype.h>
#include <string.h>
#include <time.h>
#include <urcu-qsbr.h>
#include <xxhash.h>

static struct snapshot *current_snapshot;

static uint64_t sticky_id(const char *pool, const char *addr)
{
	char key[CONFIG_NAME_MAX + 72];
	int n = snprintf(key, sizeof(key), "%s/%s", pool, addr);

	return XXH3_64bits_withSeed(key, n > 0 ? (size_t)n : 0, 0x737469636b79ull);
}

static int32_t registry_uid(struct uid_registry *reg, const char *pool, const char *addr)
{
	char key[sizeof(reg->keys[0])];

	snprintf(key, sizeof(key), "%s/%s", pool, addr);
	for (uint32_t i = 0; i < reg->num; i++)
		if (strcmp(reg->keys[i], key) == 0)
			return (int32_t)i;
	if (reg->num == SNAPSHOT_UIDS_MAX)
		return -1;
	memcpy(reg->keys[reg->num], key, sizeof(key));
	return (int32_t)reg->num++;
}

static int build_pool(struct snap_pool *sp, const struct config_pool *cp, struct uid_registry *reg,
                      bool reloading, char *err, size_t err_len)
{
	snprintf(sp->name, sizeof(sp->name), "%s", cp->name);
	sp->keepalive = cp->keepalive;
	sp->keepalive_timeout_ms = cp->keepalive_timeout_ms;
	sp->retries = cp->retries;
	sp->retry_budget = cp->retry_budget;
	sp->retry_budget_min = cp->retry_budget_min;
	sp->slow_start_ms = cp->slow_start_ms;
	snprintf(sp->sticky_cookie, sizeof(sp->sticky_cookie), "%s", cp->sticky_cookie);
	sp->sticky_cookie_len = strlen(sp->sticky_cookie);
	sp->queue_max = cp->queue_max;
	sp->queue_timeout_ms = cp->queue_timeout_ms;
	sp->health = cp->health;
	sp->backend_health = rlb_xcalloc(cp->num_backends, sizeof(*sp->backend_health));
	for (size_t i = 0; i < cp->num_backends; i++)
		sp->backend_health[i] = cp->backends[i].health;
	sp->passive = cp->passive;
	sp->agent = cp->agent;
	sp->hash_key = cp->hash_key;
	snprintf(sp->hash_key_name, sizeof(sp->hash_key_name), "%s", cp->hash_key_name);
	sp->hash_key_len = strlen(sp->hash_key_name);
	sp->lb.ops = balancer_find(config_algorithm_names[cp->algorithm]);
	RLB_ASSERT(sp->lb.ops != NULL);
	sp->lb.live = reg->live;
	sp->lb.balance_factor_pct = cp->hash_balance_factor;
	sp->lb.num_backends = (uint32_t)cp->num_backends;
	sp->lb.backends = rlb_xcalloc(cp->num_backends, sizeof(struct lb_backend));
	for (size_t i = 0; i < cp->num_backends; i++) {
		struct lb_backend *b = &sp->lb.backends[i];
		uint32_t known = reg->num;
		int32_t uid = registry_uid(reg, cp->name, cp->backends[i].addr.text);

		if (uid < 0) {
			snprintf(err, err_len,
			         "more than %d distinct backends since start-up; restart ringlb",
			         SNAPSHOT_UIDS_MAX);
			return 0;
		}
		b->uid = (uint32_t)uid;
		/* A backend added by a reload enters service now (slow start);
		 * the first snapshot's backends count as in service all along. */
		if (reg->live != NULL && (uint32_t)uid >= known && reloading)
			atomic_store(&reg->live[uid].up_since_ms, rlb_now_ms());
		b->weight = cp->backends[i].weight;
		b->backup = cp->backends[i].backup;
		b->max_conns = cp->backends[i].max_connections;
		b->draining = cp->backends[i].draining;
		/* XXH3 of "pool/address" with a fixed seed: stable across restarts
		 * and shards, and it reveals nothing about the address. */
		b->sticky_id = sticky_id(cp->name, cp->backends[i].addr.text);
		b->addr = cp->backends[i].addr.ss;
		b->addr_len = cp->backends[i].addr.len;
		snprintf(b->name, sizeof(b->name), "%s", cp->backends[i].addr.text);
	}
	if (cp->tls.enabled) {
		sp->tls = tls_client_new(&cp->tls, cp->name, err, err_len);
		if (sp->tls == NULL)
			return 0;
	}
	if (!sp->lb.ops->build(&sp->lb)) {
		snprintf(err, err_len, "pool %s: out of memory building the balancer", cp->name);
		return 0;
	}
	return 1;
}

static void build_route(struct snap_route *sr, const struct config_route *cr)
{
	const char *h = cr->host;

	if (h[0] == '*' && h[1] == '.') {
		sr->host_suffix = true;
		h++; /* keep the dot: "*.example.com" matches "a.example.com" only */
	}
	for (size_t i = 0; h[i] != '\0' && i + 1 < sizeof(sr->host); i++)
		sr->host[i] = (char)tolower((unsigned char)h[i]);
	sr->host_len = strlen(sr->host);
	snprintf(sr->path, sizeof(sr->path), "%s", cr->path);
	sr->path_len = strlen(sr->path);
	sr->pool = cr->pool_index;
	/* Zones are made at start-up: a route keeps its zone across reloads
	 * by its host and path; one that gained a cache section needs a
	 * restart (caching_zone_find says -1). */
	sr->cache_zone = cr->cache.enabled ? caching_zone_find(cr->host, cr->path) : -1;
	sr->rate_limit = cr->rate_limit;
}

/* build_acl makes an allow/deny table from inline lists and list files;
 * a prefix on both lists is denied (deny entries come last and win). */
static int build_acl(struct snap_acl *a, const struct config_acl *ca, const char *what, char *err,
                     size_t err_len)
{
	struct cidr_entry *arr = NULL;
	size_t n = 0, cap = 0, allows;
	char msg[CONFIG_ERR_MAX - 64];
	int ok = cidr_list_add(ca->allow, SNAP_ACL_ALLOW, &arr, &n, &cap, msg, sizeof(msg)) &&
	         (ca->allow_file[0] == '\0' ||
	          cidr_file_add(ca->allow_file, SNAP_ACL_ALLOW, &arr, &n, &cap, msg, sizeof(msg)));

	allows = n;
	ok = ok && cidr_list_add(ca->deny, SNAP_ACL_DENY, &arr, &n, &cap, msg, sizeof(msg)) &&
	     (ca->deny_file[0] == '\0' ||
	      cidr_file_add(ca->deny_file, SNAP_ACL_DENY, &arr, &n, &cap, msg, sizeof(msg)));
	a->table = NULL;
	a->default_deny = allows > 0;
	if (ok && n > 0)
		a->table = cidr_table_build(arr, n, msg, sizeof(msg));
	free(arr);
	if (!ok || (n > 0 && a->table == NULL)) {
		snprintf(err, err_len, "%s: %s", what, msg);
		return 0;
	}
	return 1;
}

/* The compiled protection of a snapshot: allow lists (inline and from
 * files), trusted proxies and filters. It is built on start-up and on a
 * reload only; the snapshots that admin API changes make (the same routes
 * and listeners, other pools) share it, so a weight change neither reads
 * list files again (perhaps no longer readable after the privilege drop)
 * nor resets the filters' counters. Counted by `refs`, which only the
 * control plane touches (under its lock). */
struct snap_prot {
	uint32_t refs;
	uint32_t num_listeners, num_routes;
	struct snap_listener listeners[CONFIG_LISTENERS_MAX];
	struct snap_acl *route_acl;   /* [num_routes] */
	struct filter **route_filter; /* [num_routes] */
};

static void prot_put(struct snap_prot *p)
{
	if (p == NULL || --p->refs > 0)
		return;
	for (uint32_t i = 0; i < p->num_listeners; i++) {
		cidr_table_free(p->listeners[i].acl.table);
		cidr_table_free(p->listeners[i].trusted);
	}
	for (uint32_t i = 0; i < p->num_routes; i++) {
		cidr_table_free(p->route_acl[i].table);
		filter_free(p->route_filter[i]);
	}
	free(p->route_acl);
	free(p->route_filter);
	free(p);
}

static int build_listeners(struct snap_prot *p, const struct config *cfg, char *err, size_t err_len)
{
	char what[64];

	for (size_t i = 0; i < cfg->num_listeners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		struct snap_listener *sl = &p->listeners[i];
		struct config_acl trusted = {0};
		struct snap_acl t;

		p->num_listeners = (uint32_t)i + 1;
		sl->proxy_protocol = l->proxy_protocol;
		snprintf(what, sizeof(what), "listeners[%zu]", i);
		if (!build_acl(&sl->acl, &l->acl, what, err, err_len))
			return 0;
		snprintf(what, sizeof(what), "listeners[%zu].trusted_proxies", i);
		memcpy(trusted.allow, l->trusted_proxies, sizeof(trusted.allow));
		if (!build_acl(&t, &trusted, what, err, err_len))
			return 0;
		sl->trusted = t.table;
	}
	return 1;
}

/* prot_build compiles the protection of `cfg`; NULL with a message. */
static struct snap_prot *prot_build(const struct config *cfg, char *err, size_t err_len)
{
	struct snap_prot *p = rlb_xcalloc(1, sizeof(*p));
	char what[64], msg[CONFIG_ERR_MAX - 64];

	p->refs = 1;
	p->route_acl = rlb_xcalloc(cfg->num_routes + 1, sizeof(*p->route_acl));
	p->route_filter = rlb_xcalloc(cfg->num_routes + 1, sizeof(*p->route_filter));
	if (!build_listeners(p, cfg, err, err_len)) {
		prot_put(p);
		return NULL;
	}
	for (size_t i = 0; i < cfg->num_routes; i++) {
		p->num_routes = (uint32_t)i + 1;
		snprintf(what, sizeof(what), "routes[%zu]", i);
		if (!build_acl(&p->route_acl[i], &cfg->routes[i].acl, what, err, err_len)) {
			prot_put(p);
			return NULL;
		}
		p->route_filter[i] = filter_build(&cfg->routes[i].filter, msg, sizeof(msg));
		if (p->route_filter[i] == NULL && msg[0] != '\0') {
			snprintf(err, err_len, "%s.filters: %s", what, msg);
			prot_put(p);
			return NULL;
		}
	}
	return p;
}

/* prot_apply gives the snapshot's listeners and routes the set's tables. */
static void prot_apply(struct snapshot *s, struct snap_prot *p)
{
	s->prot = p;
	s->num_listeners = p->num_listeners;
	memcpy(s->listeners, p->listeners, sizeof(s->listeners));
	for (uint32_t i = 0; i < s->num_routes && i < p->num_routes; i++) {
		s->routes[i].acl = p->route_acl[i];
		s->routes[i].filter = p->route_filter[i];
	}
}

int snapshot_check_protection(const struct config *cfg, char *err, size_t err_len)
{
	struct snap_prot *p = prot_build(cfg, err, err_len);

	prot_put(p);
	return p != NULL;
}

struct snapshot *snapshot_build(const struct config *cfg, struct uid_registry *reg,
                                uint64_t version, char *err, size_t err_len)
{
	return snapshot_rebuild(cfg, reg, version, NULL, err, err_len);
}

struct snapshot *snapshot_rebuild(const struct config *cfg, struct uid_registry *reg,
                                  uint64_t version, const struct snapshot *prev, char *err,
                                  size_t err_len)
{
	struct snapshot *s = rlb_xcalloc(1, sizeof(*s));
	struct snap_prot *prot;

	s->version = version;
	s->timeouts = cfg->timeouts;
	s->body_bytes_max = cfg->limits.body_bytes_max;
	s->num_pools = (uint32_t)cfg->num_pools;
	s->pools = rlb_xcalloc(cfg->num_pools, sizeof(*s->pools));
	for (size_t i = 0; i < cfg->num_pools; i++) {
		if (!build_pool(&s->pools[i], &cfg->pools[i], reg, version > 1, err, err_len)) {
			snapshot_free(s);
			return NULL;
		}
	}
	s->num_routes = (uint32_t)cfg->num_routes;
	s->routes = rlb_xcalloc(cfg->num_routes, sizeof(*s->routes));
	for (size_t i = 0; i < cfg->num_routes; i++) {
		build_route(&s->routes[i], &cfg->routes[i]);
		s->routes[i].index = (uint32_t)i;
	}
	if (prev != NULL && prev->prot != NULL && prev->prot->num_routes == cfg->num_routes &&
	    prev->prot->num_listeners == cfg->num_listeners) {
		prot = prev->prot;
		prot->refs++;
	} else {
		prot = prot_build(cfg, err, err_len);
	}
	if (prot == NULL) {
		snapshot_free(s);
		return NULL;
	}
	prot_apply(s, prot);
	return s;
}

void snapshot_free(struct snapshot *s)
{
	if (s == NULL)
		return;
	for (uint32_t i = 0; i < s->num_pools; i++) {
		if (s->pools[i].lb.ops != NULL)
			s->pools[i].lb.ops->release(&s->pools[i].lb);
		free(s->pools[i].lb.backends);
		s->pools[i].lb.backends = NULL;
		free(s->pools[i].backend_health);
		s->pools[i].backend_health = NULL;
		tls_client_free(s->pools[i].tls);
		s->pools[i].tls = NULL;
	}
	free(s->pools);
	s->pools = NULL;
	prot_put(s->prot);
	s->prot = NULL;
	free(s->routes);
	s->routes = NULL;
	free(s);
}

struct snapshot *snapshot_publish(struct snapshot *s)
{
	struct snapshot *old = current_snapshot;

	rcu_assign_pointer(current_snapshot, s);
	return old;
}

const struct snapshot *snapshot_current(void)
{
	return rcu_dereference(current_snapshot);
}

static bool host_matches(const struct snap_route *r, struct h1_str host)
{
	const char *h;

	if (r->host_len == 0)
		return true;
	if (!r->host_suffix) {
		if (host.len != r->host_len)
			return false;
		h = host.ptr;
	} else {
		/* ".example.com" needs at least one label before it. */
		if (host.len <= r->host_len)
			return false;
		h = host.ptr + host.len - r->host_len;
	}
	for (size_t i = 0; i < r->host_len; i++)
		if (tolower((unsigned char)h[i]) != r->host[i])
			return false;
	return true;
}

const struct snap_route *snapshot_find_route(const struct snapshot *s, struct h1_str host,
                                             struct h1_str path)
{
	for (uint32_t i = 0; i < s->num_routes; i++) {
		const struct snap_route *r = &s->routes[i];

		if (!host_matches(r, host))
			continue;
		if (r->path_len > 0 &&
		    (path.len < r->path_len || memcmp(path.ptr, r->path, r->path_len) != 0))
			continue;
		return r;
	}
	return NULL;
}

int32_t snapshot_route(const struct snapshot *s, struct h1_str host, struct h1_str path,
                       int32_t *zone)
{
	const struct snap_route *r = snapshot_find_route(s, host, path);

	if (zone != NULL)
		*zone = r != NULL ? r->cache_zone : -1;
	/* No route matched: the first pool is the default, as HAProxy's
	 * default_backend is. */
	if (r != NULL)
		return (int32_t)r->pool;
	return s->num_pools > 0 ? 0 : -1;
}

bool snapshot_acl_allows(const struct snap_acl *a, const uint8_t addr[16], int family)
{
	uint32_t v;

	if (a->table == NULL)
		return true;
	v = cidr_lookup_ip(a->table, addr, family);
	return v == SNAP_ACL_ALLOW || (v == 0 && !a->default_deny);
}
