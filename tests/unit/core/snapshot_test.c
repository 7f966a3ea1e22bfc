/* tests/unit/core/snapshot_test.c — unit tests for core/snapshot.c.
 *
 * Goal: a snapshot built from a validated configuration routes requests the
 * way docs promise — exact hosts case-insensitively, "*.suffix" hosts only
 * with at least one label before the suffix, path prefixes, first matching
 * route wins, no routes and no match both mean pool 0 (the first pool is the
 * default, docs/reference.md), -1 only without any pool — carries every
 * pool's backends with uids that stay the same across rebuilds and differ
 * between distinct pool/address pairs, and is published and read through
 * RCU with the previous snapshot handed back to the caller.
 *
 * Method: the module is #included so its statics (the registry, the current
 * pointer) are reachable. Configurations come from YAML strings through
 * config_load_string, as at start-up; the uid registry (a few MiB) lives on
 * the heap. Request hosts and paths are h1_str slices cut from larger
 * buffers, so a match that read past `len` would be caught. Everything
 * built is freed, so the SANITIZE=1 build's LeakSanitizer checks the error
 * path of snapshot_build too.
 */
#include "core/snapshot.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define ROUTED                                                                                     \
	"listeners: [\"127.0.0.1:8080\"]\n"                                                        \
	"pools:\n"                                                                                 \
	"  - name: fallback\n"                                                                     \
	"    backends: [10.0.0.2:80]\n"                                                            \
	"  - name: api\n"                                                                          \
	"    keepalive: 7\n"                                                                       \
	"    keepalive_timeout: 9s\n"                                                              \
	"    retries: 2\n"                                                                         \
	"    backends:\n"                                                                          \
	"      - address: 127.0.0.1:9001\n"                                                        \
	"        weight: 5\n"                                                                      \
	"      - 127.0.0.1:9002\n"                                                                 \
	"  - name: web\n"                                                                          \
	"    backends: [127.0.0.1:9001, \"[::1]:9003\"]\n"                                         \
	"  - name: static\n"                                                                       \
	"    backends: [10.0.0.1:80]\n"                                                            \
	"routes:\n"                                                                                \
	"  - host: API.example.com\n"                                                              \
	"    path: /v1/\n"                                                                         \
	"    pool: api\n"                                                                          \
	"  - host: api.example.com\n"                                                              \
	"    pool: web\n"                                                                          \
	"  - host: \"*.Example.com\"\n"                                                            \
	"    pool: static\n"                                                                       \
	"  - path: /static/\n"                                                                     \
	"    pool: static\n"                                                                       \
	"  - host: exact.org\n"                                                                    \
	"    path: /\n"                                                                            \
	"    pool: web\n"                                                                          \
	"timeouts:\n"                                                                              \
	"  client_header: 3s\n"                                                                    \
	"limits:\n"                                                                                \
	"  body_bytes_max: 1MiB\n"

#define UNROUTED                                                                                   \
	"listeners: [\"127.0.0.1:8080\"]\n"                                                        \
	"pools:\n"                                                                                 \
	"  - name: first\n"                                                                        \
	"    backends: [127.0.0.1:9001]\n"                                                         \
	"  - name: second\n"                                                                       \
	"    backends: [127.0.0.1:9002]\n"

/* Pool indexes in ROUTED. The first pool, "fallback", is where a request
 * that matches no route goes (docs/reference.md, routes). */
enum { P_FALLBACK, P_API, P_WEB, P_STATIC };
#define NO_ROUTE P_FALLBACK

static struct config *load(const char *yaml)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char err[CONFIG_ERR_MAX] = "";

	assert_non_null(cfg);
	if (!config_load_string(cfg, "snap.yaml", yaml, strlen(yaml), err, sizeof(err)))
		fail_msg("config: %s", err);
	return cfg;
}

static void unload(struct config *cfg)
{
	config_free(cfg);
	free(cfg);
}

static struct uid_registry *reg_new(void)
{
	struct uid_registry *reg = calloc(1, sizeof(*reg));

	assert_non_null(reg);
	return reg;
}

static struct snapshot *build(const struct config *cfg, struct uid_registry *reg, uint64_t version)
{
	char err[256] = "";
	struct snapshot *s = snapshot_build(cfg, reg, version, err, sizeof(err));

	if (s == NULL)
		fail_msg("snapshot_build: %s", err);
	return s;
}

/* route copies host and path into the middle of larger buffers padded with
 * letters that would change the answer if read, and routes the slices. */
static int32_t route(const struct snapshot *s, const char *host, const char *path)
{
	char hbuf[512], pbuf[512];
	size_t hl = strlen(host), pl = strlen(path);
	struct h1_str h, p;

	assert_true(hl + 8 < sizeof(hbuf));
	assert_true(pl + 8 < sizeof(pbuf));
	memset(hbuf, 'q', sizeof(hbuf));
	memset(pbuf, 'q', sizeof(pbuf));
	memcpy(hbuf + 4, host, hl);
	memcpy(pbuf + 4, path, pl);
	h.ptr = hbuf + 4;
	h.len = hl;
	p.ptr = pbuf + 4;
	p.len = pl;
	return snapshot_route(s, h, p, NULL);
}

static void test_build_contents(void **state)
{
	(void)state;
	struct config *cfg = load(ROUTED);
	struct uid_registry *reg = reg_new();
	struct snapshot *s = build(cfg, reg, 42);
	const struct snap_pool *api;

	assert_int_equal(s->version, 42);
	assert_int_equal(s->num_pools, 4);
	assert_int_equal(s->num_routes, 5);
	assert_int_equal(s->timeouts.client_header_ms, 3000);
	assert_int_equal(s->timeouts.upstream_connect_ms, cfg->timeouts.upstream_connect_ms);
	assert_int_equal(s->body_bytes_max, 1024 * 1024);
	api = &s->pools[P_API];
	assert_string_equal(api->name, "api");
	assert_int_equal(api->keepalive, 7);
	assert_int_equal(api->keepalive_timeout_ms, 9000);
	assert_int_equal(api->retries, 2);
	assert_ptr_equal(api->lb.ops, &balancer_round_robin);
	assert_int_equal(api->lb.num_backends, 2);
	assert_string_equal(api->lb.backends[0].name, "127.0.0.1:9001");
	assert_int_equal(api->lb.backends[0].weight, 5);
	assert_int_equal(api->lb.backends[1].weight, 1);
	assert_int_equal(api->lb.backends[0].addr_len, sizeof(struct sockaddr_in));
	assert_memory_equal(&api->lb.backends[0].addr, &cfg->pools[P_API].backends[0].addr.ss,
	                    sizeof(struct sockaddr_in));
	assert_string_equal(s->pools[P_WEB].lb.backends[1].name, "[::1]:9003");
	assert_int_equal(s->pools[P_WEB].lb.backends[1].addr.ss_family, AF_INET6);
	assert_int_equal(s->pools[P_WEB].lb.backends[1].addr_len, sizeof(struct sockaddr_in6));
	/* Routes are stored lower-case, with the "*" of a suffix dropped. */
	assert_string_equal(s->routes[0].host, "api.example.com");
	assert_string_equal(s->routes[0].path, "/v1/");
	assert_false(s->routes[0].host_suffix);
	assert_string_equal(s->routes[2].host, ".example.com");
	assert_true(s->routes[2].host_suffix);
	assert_int_equal(s->routes[2].host_len, 12);
	assert_string_equal(s->routes[3].host, "");
	assert_int_equal(s->routes[4].pool, P_WEB);
	/* The snapshot owns its memory: freeing the config leaves it intact. */
	unload(cfg);
	assert_string_equal(s->pools[P_WEB].name, "web");
	assert_int_equal(route(s, "api.example.com", "/v1/x"), P_API);
	snapshot_free(s);
	free(reg);
}

static void test_route_exact_host(void **state)
{
	(void)state;
	struct config *cfg = load(ROUTED);
	struct uid_registry *reg = reg_new();
	struct snapshot *s = build(cfg, reg, 1);

	/* Case-insensitive exact host; first match wins (route 0 before 1). */
	assert_int_equal(route(s, "api.example.com", "/v1/users"), P_API);
	assert_int_equal(route(s, "API.EXAMPLE.COM", "/v1/"), P_API);
	assert_int_equal(route(s, "Api.Example.Com", "/v2/"), P_WEB);
	assert_int_equal(route(s, "api.example.com", "/"), P_WEB);
	assert_int_equal(route(s, "api.example.com", ""), P_WEB);
	/* Path prefixes are case-sensitive and must be whole prefixes. */
	assert_int_equal(route(s, "api.example.com", "/V1/users"), P_WEB);
	assert_int_equal(route(s, "api.example.com", "/v1"), P_WEB);
	/* An exact host is not a prefix or suffix match. */
	assert_int_equal(route(s, "api.example.co", "/v1/"), NO_ROUTE);
	assert_int_equal(route(s, "api.example.comm", "/v1/"), NO_ROUTE);
	assert_int_equal(route(s, "xapi.example.org", "/"), NO_ROUTE);
	/* exact.org needs a path starting with "/". */
	assert_int_equal(route(s, "exact.org", "/"), P_WEB);
	assert_int_equal(route(s, "EXACT.ORG", "/anything"), P_WEB);
	assert_int_equal(route(s, "exact.org", ""), NO_ROUTE);
	assert_int_equal(route(s, "exact.org", "*"), NO_ROUTE);
	assert_int_equal(route(s, "a.exact.org", "/"), NO_ROUTE);
	snapshot_free(s);
	unload(cfg);
	free(reg);
}

static void test_route_wildcard(void **state)
{
	(void)state;
	struct config *cfg = load(ROUTED);
	struct uid_registry *reg = reg_new();
	struct snapshot *s = build(cfg, reg, 1);

	assert_int_equal(route(s, "a.example.com", "/"), P_STATIC);
	assert_int_equal(route(s, "b.a.example.com", "/x"), P_STATIC);
	assert_int_equal(route(s, "B.A.EXAMPLE.COM", "/x"), P_STATIC);
	assert_int_equal(route(s, "a.example.com", ""), P_STATIC);
	/* api.example.com is caught by routes 0 and 1 first. */
	assert_int_equal(route(s, "api.example.com", "/static/x"), P_WEB);
	/* The bare suffix and look-alikes do not match. */
	assert_int_equal(route(s, "example.com", "/"), NO_ROUTE);
	assert_int_equal(route(s, ".example.com", "/"),
	                 NO_ROUTE); /* empty label: matches nothing */
	assert_int_equal(route(s, "xexample.com", "/"), NO_ROUTE);
	assert_int_equal(route(s, "a.xexample.com", "/"), NO_ROUTE);
	assert_int_equal(route(s, "a.example.com.evil", "/"), NO_ROUTE);
	assert_int_equal(route(s, "a.example.co", "/"), NO_ROUTE);
	/* Route 3 (any host, /static/ prefix) catches the rest. */
	assert_int_equal(route(s, "example.com", "/static/app.js"), P_STATIC);
	assert_int_equal(route(s, "", "/static/"), P_STATIC);
	assert_int_equal(route(s, "other.net", "/static"), NO_ROUTE);
	assert_int_equal(route(s, "", "/"), NO_ROUTE);
	assert_int_equal(route(s, "", ""), NO_ROUTE);
	snapshot_free(s);
	unload(cfg);
	free(reg);
}

/* A leading ".example.com" in the request host is "" + suffix: the empty
 * first label matches nothing, checked above; here the suffix must match
 * at a label boundary even when the host is one character longer. */
static void test_route_wildcard_boundary(void **state)
{
	(void)state;
	struct config *cfg = load(ROUTED);
	struct uid_registry *reg = reg_new();
	struct snapshot *s = build(cfg, reg, 1);

	assert_int_equal(route(s, "x.example.com", "/"), P_STATIC);
	assert_int_equal(route(s, "xxexample.com", "/"), NO_ROUTE);
	snapshot_free(s);
	unload(cfg);
	free(reg);
}

/* Without routes every request goes to pool 0; without pools (a snapshot
 * no valid config yields, built by hand) there is no pool to go to: -1. */
static void test_route_no_routes(void **state)
{
	(void)state;
	struct config *cfg = load(UNROUTED);
	struct uid_registry *reg = reg_new();
	struct snapshot *s = build(cfg, reg, 1);
	struct snapshot empty;

	assert_int_equal(s->num_routes, 0);
	assert_int_equal(route(s, "anything", "/"), 0);
	assert_int_equal(route(s, "", ""), 0);
	memset(&empty, 0, sizeof(empty));
	assert_int_equal(route(&empty, "anything", "/"), -1);
	/* Routes but no pool: an unmatched request has nowhere to go. */
	{
		struct snap_route r;

		memset(&r, 0, sizeof(r));
		snprintf(r.host, sizeof(r.host), "only.host");
		r.host_len = strlen(r.host);
		empty.routes = &r;
		empty.num_routes = 1;
		assert_int_equal(route(&empty, "other.host", "/"), -1);
	}
	snapshot_free(s);
	unload(cfg);
	free(reg);
}

/* Backend uids: the same across two builds with the same registry, distinct
 * for distinct pool/address pairs (the same address in two pools is two
 * backends), dense from 0, and kept when a reload adds and removes
 * backends. */
static void test_uids(void **state)
{
	(void)state;
	struct config *cfg = load(ROUTED);
	struct uid_registry *reg = reg_new();
	struct snapshot *a = build(cfg, reg, 1);
	struct snapshot *b = build(cfg, reg, 2);
	uint32_t seen[16];
	uint32_t num_seen = 0;

	assert_int_equal(reg->num, 6);
	for (uint32_t i = 0; i < a->num_pools; i++) {
		assert_int_equal(a->pools[i].lb.num_backends, b->pools[i].lb.num_backends);
		for (uint32_t j = 0; j < a->pools[i].lb.num_backends; j++) {
			uint32_t uid = a->pools[i].lb.backends[j].uid;

			assert_int_equal(uid, b->pools[i].lb.backends[j].uid);
			assert_true(uid < reg->num);
			for (uint32_t k = 0; k < num_seen; k++)
				assert_int_not_equal(seen[k], uid);
			seen[num_seen++] = uid;
		}
	}
	assert_int_equal(num_seen, 6);
	/* 127.0.0.1:9001 is in api and in web: two uids. */
	assert_string_equal(a->pools[P_API].lb.backends[0].name, "127.0.0.1:9001");
	assert_string_equal(a->pools[P_WEB].lb.backends[0].name, "127.0.0.1:9001");
	assert_int_not_equal(a->pools[P_API].lb.backends[0].uid,
	                     a->pools[P_WEB].lb.backends[0].uid);

	/* A reload that reorders pools, drops one backend and adds another:
	 * survivors keep their uids, the newcomer gets the next one. */
	{
		struct config *cfg2 = load("listeners: [\"127.0.0.1:8080\"]\n"
		                           "pools:\n"
		                           "  - name: web\n"
		                           "    backends: [\"[::1]:9003\", 127.0.0.1:9001]\n"
		                           "  - name: api\n"
		                           "    backends: [127.0.0.1:9002, 127.0.0.1:9009]\n");
		struct snapshot *c = build(cfg2, reg, 3);

		assert_int_equal(c->pools[0].lb.backends[0].uid,
		                 a->pools[P_WEB].lb.backends[1].uid);
		assert_int_equal(c->pools[0].lb.backends[1].uid,
		                 a->pools[P_WEB].lb.backends[0].uid);
		assert_int_equal(c->pools[1].lb.backends[0].uid,
		                 a->pools[P_API].lb.backends[1].uid);
		assert_int_equal(c->pools[1].lb.backends[1].uid, 6);
		assert_int_equal(reg->num, 7);
		snapshot_free(c);
		unload(cfg2);
	}
	snapshot_free(a);
	snapshot_free(b);
	unload(cfg);
	free(reg);
}

/* An exhausted uid space fails the build with a message, freeing what was
 * built (LeakSanitizer checks), and known backends still build. */
static void test_uids_exhausted(void **state)
{
	(void)state;
	struct config *cfg = load(ROUTED);
	struct uid_registry *reg = reg_new();
	struct snapshot *s;
	char err[256] = "";

	s = build(cfg, reg, 1);
	snapshot_free(s);
	/* Pretend the process has seen all but one uid. */
	for (uint32_t i = reg->num; i < SNAPSHOT_UIDS_MAX - 1; i++)
		snprintf(reg->keys[i], sizeof(reg->keys[i]), "gone/%u", i);
	reg->num = SNAPSHOT_UIDS_MAX - 1;
	{
		struct config *cfg2 =
		        load("listeners: [\"127.0.0.1:8080\"]\n"
		             "pools:\n"
		             "  - name: new\n"
		             "    backends: [127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3]\n");

		s = snapshot_build(cfg2, reg, 2, err, sizeof(err));
		assert_null(s);
		assert_non_null(strstr(err, "distinct backends"));
		assert_int_equal(reg->num, SNAPSHOT_UIDS_MAX);
		unload(cfg2);
	}
	/* The original configuration's backends are all registered. */
	s = build(cfg, reg, 3);
	assert_int_equal(s->pools[P_FALLBACK].lb.backends[0].uid, 0);
	snapshot_free(s);
	unload(cfg);
	free(reg);
}

static void test_free_null(void **state)
{
	(void)state;
	snapshot_free(NULL);
}

/* publish returns the previous snapshot; current returns the published
 * one. First without registering the thread with RCU (a single thread
 * reading the pointer needs no registration), then registered, with a
 * grace period before freeing as the control thread does. */
static void test_publish_current(void **state)
{
	(void)state;
	struct config *cfg = load(ROUTED);
	struct uid_registry *reg = reg_new();
	struct snapshot *a = build(cfg, reg, 1);
	struct snapshot *b = build(cfg, reg, 2);
	struct snapshot *old;

	assert_null(snapshot_current());
	assert_null(snapshot_publish(a));
	assert_ptr_equal(snapshot_current(), a);
	assert_int_equal(snapshot_current()->version, 1);
	old = snapshot_publish(b);
	assert_ptr_equal(old, a);
	assert_ptr_equal(snapshot_current(), b);

	rcu_register_thread();
	rcu_read_lock();
	assert_ptr_equal(snapshot_current(), b);
	assert_int_equal(route(snapshot_current(), "a.example.com", "/"), P_STATIC);
	rcu_read_unlock();
	old = snapshot_publish(a);
	assert_ptr_equal(old, b);
	assert_ptr_equal(snapshot_current(), a);
	/* synchronize_rcu from a registered (online) QSBR thread is allowed:
	 * it goes offline while it waits. */
	rcu_quiescent_state();
	synchronize_rcu();
	snapshot_free(old);
	old = snapshot_publish(NULL);
	assert_ptr_equal(old, a);
	assert_null(snapshot_current());
	rcu_unregister_thread();
	synchronize_rcu(); /* unregistered: fine as well */
	snapshot_free(old);
	unload(cfg);
	free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_build_contents),
	        cmocka_unit_test(test_route_exact_host),
	        cmocka_unit_test(test_route_wildcard),
	        cmocka_unit_test(test_route_wildcard_boundary),
	        cmocka_unit_test(test_route_no_routes),
	        cmocka_unit_test(test_uids),
	        cmocka_unit_test(test_uids_exhausted),
	        cmocka_unit_test(test_free_null),
	        cmocka_unit_test(test_publish_current),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
