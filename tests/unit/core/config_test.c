/* tests/unit/core/config_test.c — unit tests for core/config.c.
 *
 * Goal: every key reads back what the file says, every default is the
 * documented one, and every way a configuration can be wrong yields the one
 * exact "FILE:LINE: KEY: expectation" line a user will see.
 *
 * Method: the module is #included so its statics are reachable. Documents are
 * written one string literal per line, so the line numbers expected in the
 * messages can be counted in the source. Configurations live on the heap
 * (struct config is tens of KiB) and each test frees what it loads, so the
 * SANITIZE=1 build's LeakSanitizer checks every error path for leaks.
 */
#include "core/config.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* A minimal valid document: five lines, the base of most tests. */
#define MINIMAL                                                                                    \
	"listeners:\n"                                                                             \
	"  - address: 127.0.0.1:8080\n"                                                            \
	"pools:\n"                                                                                 \
	"  - name: app\n"                                                                          \
	"    backends: [127.0.0.1:9001]\n"

/* MINIMAL's three pool lines, for documents that write their own listeners. */
#define POOLS                                                                                      \
	"pools:\n"                                                                                 \
	"  - name: app\n"                                                                          \
	"    backends: [127.0.0.1:9001]\n"

static struct config *new_cfg(void)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	assert_non_null(cfg);
	return cfg;
}

static void del_cfg(struct config *cfg)
{
	config_free(cfg);
	free(cfg);
}

/* load runs config_load_string on `yaml` as "ringlb.yaml". */
static int load(struct config *cfg, const char *yaml, char *err)
{
	err[0] = '\0';
	return config_load_string(cfg, "ringlb.yaml", yaml, strlen(yaml), err, CONFIG_ERR_MAX);
}

/* expect_error loads `yaml`, which must fail with exactly `want`. */
static void expect_error(const char *yaml, const char *want)
{
	struct config *cfg = new_cfg();
	char err[CONFIG_ERR_MAX];

	assert_int_equal(load(cfg, yaml, err), 0);
	assert_string_equal(err, want);
	del_cfg(cfg);
}

/* expect_ok loads `yaml`, which must succeed; the caller frees. */
static struct config *expect_ok(const char *yaml)
{
	struct config *cfg = new_cfg();
	char err[CONFIG_ERR_MAX];

	if (!load(cfg, yaml, err))
		fail_msg("unexpected error: %s", err);
	return cfg;
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
	struct config *cfg = new_cfg();

	(void)state;
	config_defaults(cfg);
	assert_string_equal(cfg->source, "command line");
	assert_int_equal(cfg->workers, 0);
	assert_true(cfg->pin_workers);
	assert_int_equal(cfg->log_level, 2);
	assert_int_equal(cfg->num_listeners, 0);
	assert_int_equal(cfg->num_pools, 0);
	assert_int_equal(cfg->num_routes, 0);
	assert_null(cfg->routes);
	assert_int_equal(cfg->timeouts.client_header_ms, 10000);
	assert_int_equal(cfg->timeouts.client_body_ms, 60000);
	assert_int_equal(cfg->timeouts.keepalive_ms, 75000);
	assert_int_equal(cfg->timeouts.send_ms, 60000);
	assert_int_equal(cfg->timeouts.upstream_connect_ms, 5000);
	assert_int_equal(cfg->timeouts.upstream_response_ms, 60000);
	assert_int_equal(cfg->timeouts.upstream_send_ms, 60000);
	assert_int_equal(cfg->timeouts.drain_ms, 30000);
	assert_int_equal(cfg->timeouts.linger_ms, 2000);
	assert_int_equal(cfg->limits.conns_max, 10000);
	assert_int_equal(cfg->limits.upstream_conns_max, 10000);
	assert_int_equal(cfg->limits.request_line_bytes_max, 8192);
	assert_int_equal(cfg->limits.header_bytes_max, 16384);
	assert_int_equal(cfg->limits.headers_max, 100);
	assert_int_equal(cfg->limits.body_bytes_max, 1ULL << 30);
	assert_int_equal(cfg->limits.response_header_bytes_max, 16384);
	assert_int_equal(cfg->buffers.count, 1024);
	assert_int_equal(cfg->buffers.size, 16384);
	assert_int_equal(cfg->buffers.conn_bytes_max, 256 * 1024);
	assert_int_equal(cfg->buffers.ring_entries, 4096);
	assert_false(cfg->access_log.enabled);
	assert_string_equal(cfg->access_log.path, "");
	assert_int_equal(cfg->access_log.queue_entries, 4096);
	del_cfg(cfg);
}

static void test_minimal_file_gets_defaults(void **state)
{
	struct config *cfg = expect_ok(MINIMAL);
	struct config *def = new_cfg();

	(void)state;
	config_defaults(def);
	assert_string_equal(cfg->source, "ringlb.yaml");
	assert_memory_equal(&cfg->timeouts, &def->timeouts, sizeof(def->timeouts));
	assert_memory_equal(&cfg->limits, &def->limits, sizeof(def->limits));
	assert_memory_equal(&cfg->buffers, &def->buffers, sizeof(def->buffers));
	assert_int_equal(cfg->listeners[0].backlog, 4096);
	assert_int_equal(cfg->pools[0].keepalive, 64);
	assert_int_equal(cfg->pools[0].keepalive_timeout_ms, 60000);
	assert_int_equal(cfg->pools[0].retries, 1);
	assert_int_equal(cfg->pools[0].algorithm, CONFIG_ALG_ROUND_ROBIN);
	assert_int_equal(cfg->pools[0].backends[0].weight, 1);
	del_cfg(def);
	del_cfg(cfg);
}

/* ---- a full file ---- */

static const char full_yaml[] = "workers: 8\n"
                                "pin_workers: no\n"
                                "log_level: debug\n"
                                "listeners:\n"
                                "  - address: 10.0.0.1:80\n"
                                "    backlog: 128\n"
                                "  - address: \"[::1]:8443\"\n"
                                "  - \":9090\"\n"
                                "pools:\n"
                                "  - name: web.v2-a_b\n"
                                "    algorithm: round_robin\n"
                                "    keepalive: 0\n"
                                "    keepalive_timeout: 90s\n"
                                "    retries: 3\n"
                                "    backends:\n"
                                "      - address: 10.0.1.1:9001\n"
                                "        weight: 5\n"
                                "      - 10.0.1.2:9002\n"
                                "  - name: other\n"
                                "    backends:\n"
                                "      - \"[2001:db8::7]:81\"\n"
                                "routes:\n"
                                "  - host: \"*.Example.COM\"\n"
                                "    path: /api/\n"
                                "    pool: other\n"
                                "  - host: exact.example.org\n"
                                "    pool: web.v2-a_b\n"
                                "  - path: /\n"
                                "    pool: other\n"
                                "timeouts:\n"
                                "  client_header: 11s\n"
                                "  client_body: 250ms\n"
                                "  keepalive: 2m\n"
                                "  send: 1h\n"
                                "  upstream_connect: 3\n"
                                "  upstream_response: 61s\n"
                                "  upstream_send: 62s\n"
                                "  drain: 0\n"
                                "limits:\n"
                                "  conns_max: 1\n"
                                "  upstream_conns_max: 1048576\n"
                                "  request_line_bytes_max: 4k\n"
                                "  header_bytes_max: 32KiB\n"
                                "  headers_max: 1024\n"
                                "  body_bytes_max: 0\n"
                                "  response_header_bytes_max: 20000\n"
                                "buffers:\n"
                                "  count: 16\n"
                                "  size: 64KiB\n"
                                "  conn_bytes_max: 1MB\n"
                                "  ring_entries: 32768\n"
                                "access_log:\n"
                                "  path: /tmp/access.log\n"
                                "  queue_entries: 1048576\n";

static void check_full_top(const struct config *cfg)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&cfg->listeners[1].addr.ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&cfg->listeners[2].addr.ss;

	assert_int_equal(cfg->workers, 8);
	assert_false(cfg->pin_workers);
	assert_int_equal(cfg->log_level, 3);
	assert_int_equal(cfg->num_listeners, 3);
	assert_string_equal(cfg->listeners[0].addr.text, "10.0.0.1:80");
	assert_int_equal(cfg->listeners[0].backlog, 128);
	assert_int_equal(cfg->listeners[0]._line, 5);
	assert_string_equal(cfg->listeners[1].addr.text, "[::1]:8443");
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 8443);
	assert_int_equal(cfg->listeners[1].backlog, 4096);
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(s4->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(ntohs(s4->sin_port), 9090);
}

static void check_full_pools(const struct config *cfg)
{
	assert_int_equal(cfg->num_pools, 2);
	assert_string_equal(cfg->pools[0].name, "web.v2-a_b");
	assert_int_equal(cfg->pools[0].keepalive, 0);
	assert_int_equal(cfg->pools[0].keepalive_timeout_ms, 90000);
	assert_int_equal(cfg->pools[0].retries, 3);
	assert_int_equal(cfg->pools[0].num_backends, 2);
	assert_string_equal(cfg->pools[0].backends[0].addr.text, "10.0.1.1:9001");
	assert_int_equal(cfg->pools[0].backends[0].weight, 5);
	assert_string_equal(cfg->pools[0].backends[1].addr.text, "10.0.1.2:9002");
	assert_int_equal(cfg->pools[0].backends[1].weight, 1);
	assert_string_equal(cfg->pools[1].name, "other");
	assert_int_equal(cfg->pools[1].num_backends, 1);
	assert_int_equal(cfg->pools[1].backends[0].addr.ss.ss_family, AF_INET6);
	assert_int_equal(cfg->num_routes, 3);
	assert_string_equal(cfg->routes[0].host, "*.example.com"); /* lower-cased */
	assert_string_equal(cfg->routes[0].path, "/api/");
	assert_int_equal(cfg->routes[0].pool_index, 1);
	assert_string_equal(cfg->routes[1].host, "exact.example.org");
	assert_string_equal(cfg->routes[1].path, "");
	assert_int_equal(cfg->routes[1].pool_index, 0);
	assert_string_equal(cfg->routes[2].host, "");
	assert_int_equal(cfg->routes[2].pool_index, 1);
}

static void check_full_sections(const struct config *cfg)
{
	assert_int_equal(cfg->timeouts.client_header_ms, 11000);
	assert_int_equal(cfg->timeouts.client_body_ms, 250);
	assert_int_equal(cfg->timeouts.keepalive_ms, 120000);
	assert_int_equal(cfg->timeouts.send_ms, 3600000);
	assert_int_equal(cfg->timeouts.upstream_connect_ms, 3000);
	assert_int_equal(cfg->timeouts.upstream_response_ms, 61000);
	assert_int_equal(cfg->timeouts.upstream_send_ms, 62000);
	assert_int_equal(cfg->timeouts.drain_ms, 0);
	assert_int_equal(cfg->limits.conns_max, 1);
	assert_int_equal(cfg->limits.upstream_conns_max, 1048576);
	assert_int_equal(cfg->limits.request_line_bytes_max, 4096);
	assert_int_equal(cfg->limits.header_bytes_max, 32768);
	assert_int_equal(cfg->limits.headers_max, 1024);
	assert_int_equal(cfg->limits.body_bytes_max, 0);
	assert_int_equal(cfg->limits.response_header_bytes_max, 20000);
	assert_int_equal(cfg->buffers.count, 16);
	assert_int_equal(cfg->buffers.size, 65536);
	assert_int_equal(cfg->buffers.conn_bytes_max, 1000000);
	assert_int_equal(cfg->buffers.ring_entries, 32768);
	assert_true(cfg->access_log.enabled);
	assert_string_equal(cfg->access_log.path, "/tmp/access.log");
	assert_int_equal(cfg->access_log.queue_entries, 1048576);
}

static void test_full_file(void **state)
{
	struct config *cfg = expect_ok(full_yaml);

	(void)state;
	check_full_top(cfg);
	check_full_pools(cfg);
	check_full_sections(cfg);
	del_cfg(cfg);
}

static void test_load_file_and_example(void **state)
{
	struct config *cfg = new_cfg();
	char err[CONFIG_ERR_MAX] = "";
	char path[] = "/tmp/ringlb_config_test_XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	/* Tests run from the repository root. */
	if (!config_load_file(cfg, "examples/ringlb.yaml", err, sizeof(err)))
		fail_msg("examples/ringlb.yaml: %s", err);
	assert_string_equal(cfg->source, "examples/ringlb.yaml");
	assert_true(cfg->num_listeners >= 1);
	config_free(cfg);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, full_yaml, strlen(full_yaml)), (ssize_t)strlen(full_yaml));
	close(fd);
	assert_int_equal(config_load_file(cfg, path, err, sizeof(err)), 1);
	check_full_sections(cfg);
	config_free(cfg);
	unlink(path);

	assert_int_equal(config_load_file(cfg, "/nonexistent/ringlb.yaml", err, sizeof(err)), 0);
	assert_string_equal(err,
	                    "/nonexistent/ringlb.yaml: cannot open: No such file or directory");
	assert_int_equal(config_load_file(cfg, "/", err, sizeof(err)), 0);
	assert_string_equal(err, "/: cannot read: Is a directory");
	del_cfg(cfg);
}

/* read_text reads a whole small file for the tests; the caller frees. */
static char *read_text(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	char err[CONFIG_ERR_MAX];

	if (!read_file(path, &buf, &len, err, sizeof(err)))
		fail_msg("%s", err);
	char *text = calloc(1, len + 1);
	assert_non_null(text);
	memcpy(text, buf, len);
	free(buf);
	return text;
}

/* The reference page's complete example must stay a valid configuration. */
static void test_reference_example_loads(void **state)
{
	char *doc = read_text("docs/reference.md");
	const char *start = strstr(doc, "## Complete example");
	struct config *cfg = new_cfg();
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_non_null(start);
	start = strstr(start, "```yaml\n");
	assert_non_null(start);
	start += strlen("```yaml\n");
	const char *end = strstr(start, "```");
	assert_non_null(end);
	if (!config_load_string(cfg, "reference.md", start, (size_t)(end - start), err,
	                        sizeof(err)))
		fail_msg("%s", err);
	/* It is the example file, verbatim. */
	char *example = read_text("examples/ringlb.yaml");
	assert_int_equal(strlen(example), (size_t)(end - start));
	assert_memory_equal(example, start, strlen(example));
	free(example);
	free(doc);
	del_cfg(cfg);
}

/* ---- errors, one class at a time ---- */

static void test_error_duration(void **state)
{
	(void)state;
	expect_error(MINIMAL "timeouts:\n"
	                     "  client_header: ten\n",
	             "ringlb.yaml:7: timeouts.client_header: expected a duration like 2s or 500ms, "
	             "got \"ten\"");
	expect_error(
	        MINIMAL "timeouts:\n"
	                "  send: 0ms\n",
	        "ringlb.yaml:7: timeouts.send: expected a duration from 1ms to 24h, got \"0ms\"");
	expect_error(
	        MINIMAL "timeouts:\n"
	                "  drain: 25h\n",
	        "ringlb.yaml:7: timeouts.drain: expected a duration from 0s to 24h, got \"25h\"");
	expect_error(MINIMAL "timeouts:\n"
	                     "  keepalive: -5s\n",
	             "ringlb.yaml:7: timeouts.keepalive: expected a duration like 2s or 500ms, got "
	             "\"-5s\"");
	expect_error(
	        MINIMAL "timeouts:\n"
	                "  keepalive: {a: 1}\n",
	        "ringlb.yaml:7: timeouts.keepalive: expected a duration like 2s or 500ms, got a "
	        "mapping");
}

static void test_error_backend_address(void **state)
{
	(void)state;
	expect_error(
	        "listeners: [\":80\"]\n"
	        "pools:\n"
	        "  - name: app\n"
	        "    backends: [127.0.0.1:9001, localhost:80]\n",
	        "ringlb.yaml:4: pools[0].backends[1].address: expected HOST:PORT with a numeric "
	        "IP, got \"localhost:80\"");
	expect_error(
	        "listeners: [\":80\"]\n"
	        "pools:\n"
	        "  - name: app\n"
	        "    backends:\n"
	        "      - 127.0.0.1:9001\n"
	        "      - address: 127.0.0.1:0\n",
	        "ringlb.yaml:6: pools[0].backends[1].address: expected HOST:PORT with a numeric "
	        "IP, got \"127.0.0.1:0\"");
	expect_error("listeners: [\":80\"]\n"
	             "pools:\n"
	             "  - name: app\n"
	             "    backends:\n"
	             "      - weight: 2\n",
	             "ringlb.yaml:5: pools[0].backends[0].address: required key is missing");
	expect_error(
	        "listeners: [\":80\"]\n"
	        "pools:\n"
	        "  - name: app\n"
	        "    backends:\n"
	        "      - address: 127.0.0.1:1\n"
	        "        weight: 1001\n",
	        "ringlb.yaml:6: pools[0].backends[0].weight: expected an integer from 1 to 1000, "
	        "got \"1001\"");
	expect_error("listeners: [\":80\"]\n"
	             "pools:\n"
	             "  - name: app\n"
	             "    backends: []\n",
	             "ringlb.yaml:4: pools[0].backends: at least one backend is required");
	expect_error("listeners: [\":80\"]\n"
	             "pools:\n"
	             "  - name: app\n",
	             "ringlb.yaml:3: pools[0].backends: required key is missing");
}

static void test_error_route_pool(void **state)
{
	(void)state;
	expect_error(MINIMAL "routes:\n"
	                     "  - host: example.com\n"
	                     "    pool: ap\n",
	             "ringlb.yaml:8: routes[0].pool: no pool named \"ap\"");
	expect_error(MINIMAL "routes:\n"
	                     "  - path: /x\n",
	             "ringlb.yaml:7: routes[0].pool: required key is missing");
	expect_error(
	        MINIMAL "routes:\n"
	                "  - path: api\n"
	                "    pool: app\n",
	        "ringlb.yaml:7: routes[0].path: expected a path prefix starting with \"/\" of at "
	        "most 255 characters, no spaces, got \"api\"");
	expect_error(
	        MINIMAL "routes:\n"
	                "  - host: \"*\"\n"
	                "    pool: app\n",
	        "ringlb.yaml:7: routes[0].host: expected a host name or \"*.suffix\" of at most "
	        "255 characters, got \"*\"");
	expect_error(
	        MINIMAL "routes:\n"
	                "  - host: a.*.com\n"
	                "    pool: app\n",
	        "ringlb.yaml:7: routes[0].host: expected a host name or \"*.suffix\" of at most "
	        "255 characters, got \"a.*.com\"");
	expect_error(MINIMAL "routes: [app]\n",
	             "ringlb.yaml:6: routes[0]: expected a mapping, got \"app\"");
}

static void test_error_listeners(void **state)
{
	(void)state;
	expect_error("listeners: []\n"
	             "pools:\n"
	             "  - name: app\n"
	             "    backends: [127.0.0.1:9001]\n",
	             "ringlb.yaml:1: listeners: at least one listener is required");
	/* Absent: blamed on the top-level mapping's first line. */
	expect_error("# comment\n"
	             "pools:\n"
	             "  - name: app\n"
	             "    backends: [127.0.0.1:9001]\n",
	             "ringlb.yaml:2: listeners: at least one listener is required");
	expect_error("", "ringlb.yaml:1: listeners: at least one listener is required");
	expect_error("listeners: [\":80\"]\n",
	             "ringlb.yaml:1: pools: at least one pool is required");
	expect_error(
	        "listeners:\n"
	        "  - address: 127.0.0.1:80\n"
	        "    backlog: 0\n",
	        "ringlb.yaml:3: listeners[0].backlog: expected an integer from 1 to 65535, got "
	        "\"0\"");
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:80\n"
	             "  - address: 127.0.0.1:80\n" POOLS,
	             "ringlb.yaml:3: listeners[1].address: same address as listeners[0]");
	expect_error("listeners: 127.0.0.1:80\n",
	             "ringlb.yaml:1: listeners: expected a list, got \"127.0.0.1:80\"");
}

static void test_error_sizes_relation(void **state)
{
	(void)state;
	expect_error(MINIMAL "buffers:\n"
	                     "  size: 8KiB\n"
	                     "limits:\n"
	                     "  header_bytes_max: 16KiB\n",
	             "ringlb.yaml:9: limits.header_bytes_max: must not exceed buffers.size (8192)");
	/* Only buffers.size is in the file: it is the key to blame. */
	expect_error(
	        MINIMAL "buffers:\n"
	                "  size: 8KiB\n",
	        "ringlb.yaml:7: buffers.size: must be at least limits.header_bytes_max (16384)");
	expect_error(
	        MINIMAL "limits:\n"
	                "  header_bytes_max: 32KiB\n",
	        "ringlb.yaml:7: limits.header_bytes_max: must not exceed buffers.size (16384)");
	expect_error(MINIMAL "limits:\n"
	                     "  request_line_bytes_max: 8KiB\n"
	                     "  header_bytes_max: 4KiB\n",
	             "ringlb.yaml:7: limits.request_line_bytes_max: must not exceed "
	             "limits.header_bytes_max (4096)");
	expect_error(
	        MINIMAL "limits:\n"
	                "  response_header_bytes_max: 1MiB\n",
	        "ringlb.yaml:7: limits.response_header_bytes_max: must not exceed buffers.size "
	        "(16384)");
	expect_error(
	        MINIMAL "buffers:\n"
	                "  conn_bytes_max: 8KiB\n",
	        "ringlb.yaml:7: buffers.conn_bytes_max: must be at least buffers.size (16384)");
	expect_error(
	        MINIMAL "buffers:\n"
	                "  size: 2MiB\n",
	        "ringlb.yaml:7: buffers.size: expected a size from 1KiB to 1MiB, got \"2MiB\"");
	expect_error(MINIMAL "buffers:\n"
	                     "  count: 100\n",
	             "ringlb.yaml:7: buffers.count: expected a power of two from 16 to 32768, got "
	             "\"100\"");
	expect_error(
	        MINIMAL "limits:\n"
	                "  request_line_bytes_max: 63\n",
	        "ringlb.yaml:7: limits.request_line_bytes_max: expected a size from 64 bytes to "
	        "1MiB, got \"63\"");
}

static void test_error_unknown_and_duplicate_keys(void **state)
{
	(void)state;
	expect_error(MINIMAL "listenerz: []\n", "ringlb.yaml:6: listenerz: unknown key");
	expect_error("listeners: [\":80\"]\n"
	             "pools:\n"
	             "  - name: app\n"
	             "    backendz: [127.0.0.1:9001]\n",
	             "ringlb.yaml:4: pools[0].backendz: unknown key");
	expect_error(MINIMAL "timeouts:\n"
	                     "  client_headers: 1s\n",
	             "ringlb.yaml:7: timeouts.client_headers: unknown key");
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:80\n"
	             "    port: 80\n",
	             "ringlb.yaml:3: listeners[0].port: unknown key");
	expect_error("listeners: [\":80\"]\n"
	             "pools:\n"
	             "  - name: app\n"
	             "    backends:\n"
	             "      - address: 127.0.0.1:1\n"
	             "        wieght: 2\n",
	             "ringlb.yaml:6: pools[0].backends[0].wieght: unknown key");
	expect_error(MINIMAL "routes:\n"
	                     "  - pool: app\n"
	                     "    prefix: /\n",
	             "ringlb.yaml:8: routes[0].prefix: unknown key");
	expect_error(MINIMAL "access_log:\n"
	                     "  file: x\n",
	             "ringlb.yaml:7: access_log.file: unknown key");
	expect_error(MINIMAL "timeouts:\n"
	                     "  send: 1s\n"
	                     "  send: 2s\n",
	             "ringlb.yaml:8: timeouts.send: duplicate key");
	expect_error(MINIMAL "workers: 2\n"
	                     "workers: 3\n",
	             "ringlb.yaml:7: workers: duplicate key");
	expect_error(MINIMAL "\"a\\nb\": 1\n", "ringlb.yaml:6: a?b: unknown key");
	expect_error(MINIMAL "? [a]\n"
	                     ": 1\n",
	             "ringlb.yaml:6: expected a key name, got a list");
}

static void test_error_pools(void **state)
{
	(void)state;
	expect_error(MINIMAL "  - name: app\n"
	                     "    backends: [127.0.0.1:9002]\n",
	             "ringlb.yaml:6: pools[1].name: duplicate pool name \"app\" (also pools[0])");
	expect_error("listeners: [\":80\"]\n"
	             "pools:\n"
	             "  - name: my pool\n",
	             "ringlb.yaml:3: pools[0].name: expected a name of 1 to 63 characters from A-Z "
	             "a-z 0-9 _ . -, got \"my pool\"");
	expect_error("listeners: [\":80\"]\n"
	             "pools:\n"
	             "  - backends: [127.0.0.1:9001]\n",
	             "ringlb.yaml:3: pools[0].name: required key is missing");
	expect_error("listeners: [\":80\"]\n"
	             "pools:\n"
	             "  - name: app\n"
	             "    algorithm: fastest\n",
	             "ringlb.yaml:4: pools[0].algorithm: expected one of round_robin, "
	             "weighted_round_robin, least_conn, weighted_least_conn, random_two, "
	             "least_time, ip_hash, hash, resource, got \"fastest\"");
	expect_error(
	        "listeners: [\":80\"]\n"
	        "pools:\n"
	        "  - name: app\n"
	        "    retries: 11\n",
	        "ringlb.yaml:4: pools[0].retries: expected an integer from 0 to 10, got \"11\"");
	expect_error(
	        "listeners: [\":80\"]\n"
	        "pools:\n"
	        "  - name: app\n"
	        "    keepalive_timeout: 0s\n",
	        "ringlb.yaml:4: pools[0].keepalive_timeout: expected a duration from 1ms to 24h, "
	        "got \"0s\"");
	expect_error("listeners: [\":80\"]\n"
	             "pools: [app]\n",
	             "ringlb.yaml:2: pools[0]: expected a mapping, got \"app\"");
	/* The second pool fails after the first one's backends were allocated:
	 * LeakSanitizer checks that config_free still finds them. */
	expect_error(
	        MINIMAL "  - name: b\n"
	                "    backends: [127.0.0.1:1, 127.0.0.1:2]\n"
	                "    retries: x\n",
	        "ringlb.yaml:8: pools[1].retries: expected an integer from 0 to 10, got \"x\"");
}

static void test_error_top_level_values(void **state)
{
	(void)state;
	expect_error(MINIMAL "workers: 0\n",
	             "ringlb.yaml:6: workers: expected \"auto\" or an integer from 1 to 1024, got "
	             "\"0\"");
	expect_error(MINIMAL "workers: 1025\n",
	             "ringlb.yaml:6: workers: expected \"auto\" or an integer from 1 to 1024, got "
	             "\"1025\"");
	expect_error(MINIMAL "pin_workers: maybe\n",
	             "ringlb.yaml:6: pin_workers: expected true or false, got \"maybe\"");
	expect_error(MINIMAL "log_level: verbose\n",
	             "ringlb.yaml:6: log_level: expected one of error, warn, info, debug, got "
	             "\"verbose\"");
	expect_error(MINIMAL "timeouts: 5s\n",
	             "ringlb.yaml:6: timeouts: expected a mapping, got \"5s\"");
	expect_error(MINIMAL "limits:\n"
	                     "  headers_max: [1]\n",
	             "ringlb.yaml:7: limits.headers_max: expected an integer from 1 to 1024, got a "
	             "list");
	expect_error(MINIMAL "access_log:\n"
	                     "  queue_entries: 63\n",
	             "ringlb.yaml:7: access_log.queue_entries: expected a power of two from 64 to "
	             "1048576, got \"63\"");
	expect_error(MINIMAL "access_log:\n"
	                     "  path: \"\"\n",
	             "ringlb.yaml:7: access_log.path: expected a file path, \"stdout\", \"-\" or "
	             "\"off\", got \"\"");
	/* An escaped NUL would cut the value short in C: refuse it. */
	expect_error(MINIMAL "log_level: \"info\\0x\"\n",
	             "ringlb.yaml:6: log_level: expected one of error, warn, info, debug, got "
	             "\"info?x\"");
	expect_error("- a\n- b\n",
	             "ringlb.yaml:1: expected a mapping of top-level keys, got a list");
}

static void test_error_syntax(void **state)
{
	(void)state;
	expect_error(
	        "listeners:\n"
	        "  - address: 127.0.0.1:80\n"
	        "   bad: [\n",
	        "ringlb.yaml:3: syntax error: did not find expected '-' indicator (while parsing "
	        "a block collection)");
	expect_error(
	        "a: b\n"
	        "c: \"unterminated\n",
	        "ringlb.yaml:3: syntax error: found unexpected end of stream (while scanning a "
	        "quoted scalar)");
	expect_error("a: b\n"
	             "c: \xff\xfe\n",
	             "ringlb.yaml:2: syntax error: invalid leading UTF-8 octet");
	expect_error(
	        "listeners:\n"
	        "  - address: [::1]:80\n",
	        "ringlb.yaml:2: syntax error: did not find expected node content (while parsing "
	        "a flow node)");
}

static void test_error_long_value_is_cut(void **state)
{
	char yaml[600], want[600];
	char big[201];

	(void)state;
	memset(big, 'x', 200);
	big[200] = '\0';
	snprintf(yaml, sizeof(yaml), MINIMAL "log_level: %s\n", big);
	snprintf(want, sizeof(want),
	         "ringlb.yaml:6: log_level: expected one of error, warn, info, debug, got "
	         "\"%.60s...\"",
	         big);
	expect_error(yaml, want);
}

static void test_too_many_listeners(void **state)
{
	char yaml[8192];
	size_t o = 0;

	(void)state;
	o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, "listeners:\n");
	for (int i = 0; i <= CONFIG_LISTENERS_MAX; i++)
		o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, "  - 127.0.0.1:%d\n", 1000 + i);
	expect_error(yaml, "ringlb.yaml:66: listeners[64]: too many listeners (at most 64)");
}

/* ---- shapes that must load ---- */

static void test_backend_scalar_and_mapping(void **state)
{
	struct config *cfg = expect_ok("listeners: [\":80\"]\n"
	                               "pools:\n"
	                               "  - name: app\n"
	                               "    backends:\n"
	                               "      - 127.0.0.1:1\n"
	                               "      - address: \"[::1]:2\"\n"
	                               "        weight: 7\n"
	                               "      - {address: 127.0.0.2:3}\n");

	(void)state;
	assert_int_equal(cfg->pools[0].num_backends, 3);
	assert_string_equal(cfg->pools[0].backends[0].addr.text, "127.0.0.1:1");
	assert_int_equal(cfg->pools[0].backends[0].weight, 1);
	assert_int_equal(cfg->pools[0].backends[0]._line, 5);
	assert_string_equal(cfg->pools[0].backends[1].addr.text, "[::1]:2");
	assert_int_equal(cfg->pools[0].backends[1].weight, 7);
	assert_int_equal(cfg->pools[0].backends[1]._line, 6);
	assert_string_equal(cfg->pools[0].backends[2].addr.text, "127.0.0.2:3");
	assert_int_equal(cfg->pools[0].backends[2].weight, 1);
	del_cfg(cfg);
}

static void test_route_wildcard_and_sections(void **state)
{
	struct config *cfg = expect_ok(MINIMAL "routes:\n"
	                                       "  - host: \"*.EXAMPLE.com\"\n"
	                                       "    pool: app\n"
	                                       "  - host: Example.com\n"
	                                       "    path: /a/b\n"
	                                       "    pool: app\n"
	                                       "timeouts:\n"
	                                       "limits: ~\n"
	                                       "access_log:\n"
	                                       "  path: \"-\"\n");

	(void)state;
	assert_int_equal(cfg->num_routes, 2);
	assert_string_equal(cfg->routes[0].host, "*.example.com");
	assert_string_equal(cfg->routes[0].path, "");
	assert_int_equal(cfg->routes[0]._line, 8);
	assert_string_equal(cfg->routes[1].host, "example.com");
	assert_string_equal(cfg->routes[1].path, "/a/b");
	assert_int_equal(cfg->timeouts.client_header_ms, 10000);
	assert_true(cfg->access_log.enabled);
	assert_string_equal(cfg->access_log.path, "-");
	del_cfg(cfg);

	cfg = expect_ok(MINIMAL "access_log: {path: \"off\"}\n"
	                        "routes: []\n"
	                        "workers: auto\n"
	                        "pin_workers: on\n"
	                        "log_level: error\n");
	assert_false(cfg->access_log.enabled);
	assert_string_equal(cfg->access_log.path, "");
	assert_int_equal(cfg->num_routes, 0);
	assert_null(cfg->routes);
	assert_int_equal(cfg->workers, 0);
	assert_true(cfg->pin_workers);
	assert_int_equal(cfg->log_level, 0);
	del_cfg(cfg);
}

static void test_bools(void **state)
{
	static const char *const yes[] = {"true", "yes", "on", "True", "YES"};
	static const char *const no[] = {"false", "no", "off", "False", "OFF"};
	bool b;

	(void)state;
	for (size_t i = 0; i < RLB_ARRAY_LEN(yes); i++) {
		assert_true(parse_bool(yes[i], &b));
		assert_true(b);
		assert_true(parse_bool(no[i], &b));
		assert_false(b);
	}
	assert_false(parse_bool("1", &b));
	assert_false(parse_bool("", &b));
	assert_false(parse_bool("tru", &b));
}

/* ---- value parsers ---- */

static uint64_t size_of(const char *s)
{
	uint64_t v = 12345;

	if (!config_parse_size(s, &v))
		fail_msg("config_parse_size(\"%s\") failed", s);
	return v;
}

static void test_parse_size(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(size_of("0"), 0);
	assert_int_equal(size_of("512"), 512);
	assert_int_equal(size_of("512B"), 512);
	assert_int_equal(size_of("16KiB"), 16384);
	assert_int_equal(size_of("4MiB"), 4ULL << 20);
	assert_int_equal(size_of("1GiB"), 1ULL << 30);
	assert_int_equal(size_of("2TiB"), 2ULL << 40);
	assert_int_equal(size_of("3KB"), 3000);
	assert_int_equal(size_of("3MB"), 3000000);
	assert_int_equal(size_of("3GB"), 3000000000ULL);
	assert_int_equal(size_of("3TB"), 3000000000000ULL);
	assert_int_equal(size_of("8k"), 8192);
	assert_int_equal(size_of("8K"), 8192);
	assert_int_equal(size_of("2m"), 2ULL << 20);
	assert_int_equal(size_of("2M"), 2ULL << 20);
	assert_int_equal(size_of("1g"), 1ULL << 30);
	assert_int_equal(size_of("1G"), 1ULL << 30);
	assert_int_equal(size_of("1t"), 1ULL << 40);
	assert_int_equal(size_of("18446744073709551615"), UINT64_MAX);
	static const char *const bad[] = {
	        "",
	        "KiB",
	        "-1",
	        "+1",
	        " 1",
	        "1 ",
	        "1.5KiB",
	        "1kib",
	        "1kb",
	        "1Kib",
	        "0x10",
	        "1e3",
	        "abc",
	        "1KiBs",
	        "16 KiB",
	        "1GiB1",
	        "18446744073709551616", /* 2^64 */
	        "17179869184GiB",       /* 2^34 GiB = 2^64 */
	        "18446744073709552KB",  /* just over 2^64 */
	};
	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++)
		if (config_parse_size(bad[i], &v))
			fail_msg("config_parse_size accepted \"%s\"", bad[i]);
	assert_false(config_parse_size(NULL, &v));
}

static uint64_t ms_of(const char *s)
{
	uint64_t v = 12345;

	if (!config_parse_duration_ms(s, &v))
		fail_msg("config_parse_duration_ms(\"%s\") failed", s);
	return v;
}

static void test_parse_duration(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(ms_of("250ms"), 250);
	assert_int_equal(ms_of("2s"), 2000);
	assert_int_equal(ms_of("5m"), 300000);
	assert_int_equal(ms_of("1h"), 3600000);
	assert_int_equal(ms_of("7"), 7000);
	assert_int_equal(ms_of("0"), 0);
	assert_int_equal(ms_of("0ms"), 0);
	assert_int_equal(ms_of("18446744073709551615ms"), UINT64_MAX);
	static const char *const bad[] = {
	        "",
	        "s",
	        "ms",
	        "-1s",
	        "+1s",
	        "1.5s",
	        "1 s",
	        " 1s",
	        "1S",
	        "1sec",
	        "1d",
	        "1hm",
	        "ten",
	        "18446744073709551616ms", /* 2^64 */
	        "18446744073709552s",     /* x1000 overflows */
	        "5124095576030432h",      /* x3600000 overflows */
	};
	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++)
		if (config_parse_duration_ms(bad[i], &v))
			fail_msg("config_parse_duration_ms accepted \"%s\"", bad[i]);
	assert_false(config_parse_duration_ms(NULL, &v));
}

static void test_parse_addr(void **state)
{
	struct config_addr a;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a.ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a.ss;

	(void)state;
	assert_true(config_parse_addr("127.0.0.1:8080", &a));
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	assert_int_equal(s4->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(ntohs(s4->sin_port), 8080);
	assert_string_equal(a.text, "127.0.0.1:8080");

	assert_true(config_parse_addr("[::1]:443", &a));
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	assert_memory_equal(&s6->sin6_addr, &in6addr_loopback, sizeof(in6addr_loopback));
	assert_int_equal(ntohs(s6->sin6_port), 443);
	assert_string_equal(a.text, "[::1]:443");

	assert_true(config_parse_addr(":65535", &a));
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(s4->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(ntohs(s4->sin_port), 65535);
	assert_true(config_parse_addr("[2001:db8::ffff:1.2.3.4]:1", &a));
	assert_true(config_parse_addr("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", &a));

	static const char *const bad[] = {
	        "",
	        ":",
	        "127.0.0.1",
	        "127.0.0.1:",
	        "127.0.0.1:0",
	        "127.0.0.1:65536",
	        "127.0.0.1:-1",
	        "127.0.0.1:+80",
	        "127.0.0.1:80x",
	        "127.0.0.1:8 0",
	        "localhost:80",
	        "example.com:443",
	        "1.2.3:80",
	        "256.0.0.1:80",
	        "1.2.3.4.5:80",
	        "::1:80",
	        "[::1]",
	        "[::1]80",
	        "[::1]:",
	        "[]:80",
	        "[1.2.3.4]:80",
	        "[::1:80",
	        "[fe80::1%eth0]:80",
	        ":0",
	        " 1.2.3.4:80",
	        "1.2.3.4:80 ",
	        "[::1]:80:80",
	};
	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++)
		if (config_parse_addr(bad[i], &a))
			fail_msg("config_parse_addr accepted \"%s\"", bad[i]);
	assert_false(config_parse_addr(NULL, &a));
	/* Longer than config_addr.text can hold. */
	assert_false(config_parse_addr(
	        "[0000:0000:0000:0000:0000:0000:0000:0001]:00000000000000000000000065535", &a));
}

/* ---- quick mode ---- */

static void test_quick_mode(void **state)
{
	struct config *cfg = new_cfg();
	char err[CONFIG_ERR_MAX];

	(void)state;
	config_defaults(cfg);
	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "command line: listeners: at least one listener is required");
	assert_true(config_add_listener(cfg, "127.0.0.1:8080", err, sizeof(err)));
	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "command line: pools: at least one pool is required");
	assert_true(config_add_backend(cfg, "127.0.0.1:9001", err, sizeof(err)));
	assert_true(config_add_backend(cfg, "[::1]:9002", err, sizeof(err)));
	assert_true(config_add_listener(cfg, ":8081", err, sizeof(err)));
	assert_true(config_validate(cfg, err, sizeof(err)));

	assert_int_equal(cfg->num_listeners, 2);
	assert_int_equal(cfg->listeners[0].backlog, 4096);
	assert_string_equal(cfg->listeners[1].addr.text, ":8081");
	assert_int_equal(cfg->num_pools, 1);
	assert_string_equal(cfg->pools[0].name, "default");
	assert_int_equal(cfg->pools[0].keepalive, 64);
	assert_int_equal(cfg->pools[0].retries, 1);
	assert_int_equal(cfg->pools[0].num_backends, 2);
	assert_string_equal(cfg->pools[0].backends[0].addr.text, "127.0.0.1:9001");
	assert_string_equal(cfg->pools[0].backends[1].addr.text, "[::1]:9002");
	assert_int_equal(cfg->pools[0].backends[1].weight, 1);

	assert_int_equal(config_add_backend(cfg, "localhost:80", err, sizeof(err)), 0);
	assert_string_equal(err, "command line: --backend: expected HOST:PORT with a numeric IP, "
	                         "got \"localhost:80\"");
	assert_int_equal(config_add_listener(cfg, "127.0.0.1:0", err, sizeof(err)), 0);
	assert_string_equal(err, "command line: --listen: expected HOST:PORT with a numeric IP, "
	                         "got \"127.0.0.1:0\"");
	assert_true(config_add_listener(cfg, "127.0.0.1:8080", err, sizeof(err)));
	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
	assert_string_equal(err,
	                    "command line: listeners[2].address: same address as listeners[0]");
	del_cfg(cfg);
}

static void test_quick_mode_merges_into_file(void **state)
{
	struct config *cfg = new_cfg();
	char err[CONFIG_ERR_MAX];
	const char *yaml = "pools:\n"
	                   "  - name: app\n"
	                   "    backends: [127.0.0.1:9001]\n";

	(void)state;
	assert_true(config_parse_string(cfg, "f.yaml", yaml, strlen(yaml), err, sizeof(err)));
	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "f.yaml:1: listeners: at least one listener is required");
	assert_true(config_add_listener(cfg, "127.0.0.1:8080", err, sizeof(err)));
	assert_true(config_add_backend(cfg, "127.0.0.1:9002", err, sizeof(err)));
	assert_true(config_validate(cfg, err, sizeof(err)));
	assert_int_equal(cfg->num_pools, 2);
	assert_string_equal(cfg->pools[1].name, "default");
	del_cfg(cfg);
}

static void test_too_many_quick_listeners(void **state)
{
	struct config *cfg = new_cfg();
	char err[CONFIG_ERR_MAX], addr[32];

	(void)state;
	config_defaults(cfg);
	for (int i = 0; i < CONFIG_LISTENERS_MAX; i++) {
		snprintf(addr, sizeof(addr), ":%d", 2000 + i);
		assert_true(config_add_listener(cfg, addr, err, sizeof(err)));
	}
	assert_int_equal(config_add_listener(cfg, ":1", err, sizeof(err)), 0);
	assert_string_equal(err, "command line: --listen: too many listeners (at most 64)");
	del_cfg(cfg);
}

/* ---- config_validate on configurations built in code ---- */

static struct config *valid_cfg(void)
{
	struct config *cfg = new_cfg();
	char err[CONFIG_ERR_MAX];

	config_defaults(cfg);
	assert_true(config_add_listener(cfg, "127.0.0.1:8080", err, sizeof(err)));
	assert_true(config_add_backend(cfg, "127.0.0.1:9001", err, sizeof(err)));
	assert_true(config_validate(cfg, err, sizeof(err)));
	return cfg;
}

static void expect_invalid(struct config *cfg, const char *want)
{
	char err[CONFIG_ERR_MAX];

	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
	assert_string_equal(err, want);
	del_cfg(cfg);
}

static void test_validate_relations(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = valid_cfg();
	cfg->buffers.size = 8192;
	expect_invalid(cfg, "command line: limits.header_bytes_max: must not exceed buffers.size "
	                    "(8192)");
	cfg = valid_cfg();
	cfg->limits.request_line_bytes_max = 32768;
	expect_invalid(cfg, "command line: limits.request_line_bytes_max: must not exceed "
	                    "limits.header_bytes_max (16384)");
	cfg = valid_cfg();
	cfg->limits.response_header_bytes_max = 32768;
	expect_invalid(cfg, "command line: limits.response_header_bytes_max: must not exceed "
	                    "buffers.size (16384)");
	cfg = valid_cfg();
	cfg->buffers.conn_bytes_max = 4096;
	expect_invalid(cfg, "command line: buffers.conn_bytes_max: must be at least buffers.size "
	                    "(16384)");
	/* Equal is allowed on every relation. */
	cfg = valid_cfg();
	cfg->limits.request_line_bytes_max = cfg->limits.header_bytes_max;
	cfg->buffers.conn_bytes_max = cfg->buffers.size;
	cfg->limits.response_header_bytes_max = cfg->buffers.size;
	char err[CONFIG_ERR_MAX];
	assert_true(config_validate(cfg, err, sizeof(err)));
	del_cfg(cfg);
}

static void test_validate_ranges(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = valid_cfg();
	cfg->buffers.count = 100;
	expect_invalid(cfg, "command line: buffers.count: expected a power of two from 16 to "
	                    "32768, got 100");
	cfg = valid_cfg();
	cfg->timeouts.send_ms = 0;
	expect_invalid(cfg, "command line: timeouts.send: expected a duration from 1ms to 24h, got "
	                    "0ms");
	cfg = valid_cfg();
	cfg->workers = 2000;
	expect_invalid(cfg,
	               "command line: workers: expected \"auto\" or an integer from 1 to 1024, "
	               "got 2000");
	cfg = valid_cfg();
	cfg->log_level = 4;
	expect_invalid(cfg,
	               "command line: log_level: expected one of error, warn, info, debug, got "
	               "4");
	cfg = valid_cfg();
	cfg->pools[0].retries = 11;
	expect_invalid(cfg, "command line: pools[0].retries: expected an integer from 0 to 10, got "
	                    "11");
	cfg = valid_cfg();
	cfg->pools[0].backends[0].weight = 0;
	expect_invalid(cfg, "command line: pools[0].backends[0].weight: expected an integer from 1 "
	                    "to 1000, got 0");
	cfg = valid_cfg();
	cfg->listeners[0].backlog = 0;
	expect_invalid(cfg, "command line: listeners[0].backlog: expected an integer from 1 to "
	                    "65535, got 0");
	cfg = valid_cfg();
	cfg->access_log.enabled = true;
	expect_invalid(cfg, "command line: access_log.path: expected a file path, \"stdout\" or "
	                    "\"-\" when the log is enabled");
	cfg = valid_cfg();
	free(cfg->pools[0].backends);
	cfg->pools[0].backends = NULL;
	cfg->pools[0].num_backends = 0;
	expect_invalid(cfg, "command line: pools[0].backends: at least one backend is required");
}

static void test_validate_routes(void **state)
{
	struct config *cfg = valid_cfg();
	char err[CONFIG_ERR_MAX];

	(void)state;
	cfg->routes = calloc(2, sizeof(*cfg->routes));
	cfg->num_routes = 2;
	snprintf(cfg->routes[0].pool, sizeof(cfg->routes[0].pool), "default");
	cfg->routes[0].pool_index = 99;
	snprintf(cfg->routes[1].pool, sizeof(cfg->routes[1].pool), "nope");
	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "command line: routes[1].pool: no pool named \"nope\"");
	assert_int_equal(cfg->routes[0].pool_index, 0);
	snprintf(cfg->routes[1].pool, sizeof(cfg->routes[1].pool), "default");
	assert_true(config_validate(cfg, err, sizeof(err)));
	del_cfg(cfg);
}

/* ---- lifecycle ---- */

static void test_free_zeroed_and_twice(void **state)
{
	struct config *cfg = new_cfg();

	(void)state;
	config_free(cfg); /* zeroed */
	config_free(cfg);
	config_defaults(cfg);
	del_cfg(cfg);
	del_cfg(expect_ok(full_yaml)); /* frees everything once... */
	cfg = expect_ok(full_yaml);
	config_free(cfg);
	assert_null(cfg->routes);
	assert_null(cfg->pools[0].backends);
	assert_int_equal(cfg->num_pools, 0);
	del_cfg(cfg); /* ...and twice is harmless */
}

static void test_failed_load_frees_cleanly(void **state)
{
	(void)state;
	/* Routes are allocated before the bad one is read. */
	expect_error(
	        MINIMAL "routes:\n"
	                "  - pool: app\n"
	                "  - pool: app\n"
	                "    host: \"bad host\"\n",
	        "ringlb.yaml:9: routes[1].host: expected a host name or \"*.suffix\" of at most "
	        "255 characters, got \"bad host\"");
	/* A failing syntax error after a good prefix leaves nothing allocated. */
	expect_error(MINIMAL "x: [\n", "ringlb.yaml:7: syntax error: did not find expected node "
	                               "content (while parsing a flow node)");
}

/* The hash options: required with hash, fixed with ip_hash, bounded load
 * only for the hashing algorithms. */
static void test_hash_options(void **state)
{
	(void)state;
	expect_error("listeners: [\":80\"]\n"
	             "pools:\n"
	             "  - name: app\n"
	             "    algorithm: hash\n"
	             "    backends: [127.0.0.1:9001]\n",
	             "ringlb.yaml:3: pools[0].hash_key: required by algorithm hash: client_ip, "
	             "uri, header:NAME or cookie:NAME");
	expect_error("listeners: [\":80\"]\n"
	             "pools:\n"
	             "  - name: app\n"
	             "    algorithm: ip_hash\n"
	             "    hash_key: uri\n"
	             "    backends: [127.0.0.1:9001]\n",
	             "ringlb.yaml:3: pools[0].hash_key: ip_hash always hashes the client address; "
	             "use algorithm: hash for another key");
	expect_error("listeners: [\":80\"]\n"
	             "pools:\n"
	             "  - name: app\n"
	             "    algorithm: hash\n"
	             "    hash_key: \"header:\"\n"
	             "    backends: [127.0.0.1:9001]\n",
	             "ringlb.yaml:5: pools[0].hash_key: expected client_ip, uri, header:NAME or "
	             "cookie:NAME, got \"header:\"");
	expect_error("listeners: [\":80\"]\n"
	             "pools:\n"
	             "  - name: app\n"
	             "    algorithm: least_conn\n"
	             "    hash_balance_factor: 150\n"
	             "    backends: [127.0.0.1:9001]\n",
	             "ringlb.yaml:3: pools[0].hash_balance_factor: only applies to algorithm hash "
	             "or ip_hash");
	{
		struct config *cfg = expect_ok("listeners: [\":80\"]\n"
		                               "pools:\n"
		                               "  - name: app\n"
		                               "    algorithm: hash\n"
		                               "    hash_key: cookie:session\n"
		                               "    hash_balance_factor: 125\n"
		                               "    backends: [127.0.0.1:9001]\n"
		                               "  - name: ips\n"
		                               "    algorithm: ip_hash\n"
		                               "    backends: [127.0.0.1:9002]\n");
		assert_int_equal(cfg->pools[0].algorithm, CONFIG_ALG_HASH);
		assert_int_equal(cfg->pools[0].hash_key, CONFIG_HASH_COOKIE);
		assert_string_equal(cfg->pools[0].hash_key_name, "session");
		assert_int_equal(cfg->pools[0].hash_balance_factor, 125);
		assert_int_equal(cfg->pools[1].hash_key, CONFIG_HASH_CLIENT_IP);
		del_cfg(cfg);
	}
}

/* health_check: defaults when the section is empty, every setting read
 * back, and the refusals (type, expect, rise, timeout >= interval). */
static void test_health_check(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = expect_ok("listeners: [\":80\"]\n"
	                "pools:\n"
	                "  - name: a\n"
	                "    backends: [127.0.0.1:9001]\n"
	                "    health_check:\n"
	                "  - name: b\n"
	                "    backends: [127.0.0.1:9002]\n"
	                "    health_check: {type: tcp, path: /h, expect: \"200,204-206\",\n"
	                "                   interval: 500ms, timeout: 100ms, rise: 4, fall: 5}\n"
	                "  - name: c\n"
	                "    backends: [127.0.0.1:9003]\n");
	assert_true(cfg->pools[0].health.enabled);
	assert_int_equal(cfg->pools[0].health.type, CONFIG_CHECK_HTTP);
	assert_string_equal(cfg->pools[0].health.path, "/");
	assert_int_equal(cfg->pools[0].health.num_expect, 1);
	assert_int_equal(cfg->pools[0].health.expect_lo[0], 200);
	assert_int_equal(cfg->pools[0].health.expect_hi[0], 399);
	assert_int_equal(cfg->pools[0].health.interval_ms, 2000);
	assert_int_equal(cfg->pools[0].health.timeout_ms, 1000);
	assert_int_equal(cfg->pools[0].health.rise, 2);
	assert_int_equal(cfg->pools[0].health.fall, 3);
	assert_int_equal(cfg->pools[1].health.type, CONFIG_CHECK_TCP);
	assert_string_equal(cfg->pools[1].health.path, "/h");
	assert_int_equal(cfg->pools[1].health.num_expect, 2);
	assert_int_equal(cfg->pools[1].health.expect_lo[1], 204);
	assert_int_equal(cfg->pools[1].health.expect_hi[1], 206);
	assert_int_equal(cfg->pools[1].health.interval_ms, 500);
	assert_int_equal(cfg->pools[1].health.timeout_ms, 100);
	assert_int_equal(cfg->pools[1].health.rise, 4);
	assert_int_equal(cfg->pools[1].health.fall, 5);
	assert_false(cfg->pools[2].health.enabled);
	del_cfg(cfg);
	expect_error(
	        "listeners: [\":80\"]\npools:\n  - name: a\n    backends: [127.0.0.1:1]\n"
	        "    health_check: {type: udp}\n",
	        "ringlb.yaml:5: pools[0].health_check.type: expected http or tcp, got \"udp\"");
	expect_error("listeners: [\":80\"]\npools:\n  - name: a\n    backends: [127.0.0.1:1]\n"
	             "    health_check: {expect: 200-700}\n",
	             "ringlb.yaml:5: pools[0].health_check.expect: expected statuses like 200, "
	             "200-399 or 200,204 (100..599, at most 8 items), got \"200-700\"");
	expect_error(
	        "listeners: [\":80\"]\npools:\n  - name: a\n    backends: [127.0.0.1:1]\n"
	        "    health_check: {rise: 0}\n",
	        "ringlb.yaml:5: pools[0].health_check.rise: expected an integer from 1 to 100, "
	        "got \"0\"");
	expect_error("listeners: [\":80\"]\npools:\n  - name: a\n    backends: [127.0.0.1:1]\n"
	             "    health_check: {interval: 1s, timeout: 1s}\n",
	             "ringlb.yaml:5: pools[0].health_check.timeout: must be shorter than "
	             "health_check.interval (1000ms)");
}

/* health_check method and host, and a backend's own health_check, which
 * replaces the pool's and takes the defaults for what it leaves out. */
static void test_health_method_host_backend(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = expect_ok("listeners: [\":80\"]\n"
	                "pools:\n"
	                "  - name: a\n"
	                "    backends:\n"
	                "      - address: 127.0.0.1:9001\n"
	                "        health_check: {path: /own}\n"
	                "      - 127.0.0.1:9002\n"
	                "    health_check: {method: HEAD, host: Example.COM, interval: 5s}\n");
	assert_string_equal(cfg->pools[0].health.method, "HEAD");
	assert_string_equal(cfg->pools[0].health.host, "example.com");
	assert_int_equal(cfg->pools[0].health.interval_ms, 5000);
	assert_true(cfg->pools[0].backends[0].health.enabled);
	assert_string_equal(cfg->pools[0].backends[0].health.path, "/own");
	assert_string_equal(cfg->pools[0].backends[0].health.method, "GET");
	assert_int_equal(cfg->pools[0].backends[0].health.interval_ms, 2000);
	assert_false(cfg->pools[0].backends[1].health.enabled);
	del_cfg(cfg);
	expect_error("listeners: [\":80\"]\npools:\n  - name: a\n    backends: [127.0.0.1:1]\n"
	             "    health_check: {method: POST}\n",
	             "ringlb.yaml:5: pools[0].health_check.method: expected GET, HEAD or OPTIONS, "
	             "got \"POST\"");
}

/* admin: off without the section, loopback by default with it, and a token
 * required beyond loopback. */
static void test_admin_section(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = expect_ok("listeners: [\":80\"]\npools: [{name: a, backends: [127.0.0.1:1]}]\n");
	assert_false(cfg->admin.enabled);
	del_cfg(cfg);
	cfg = expect_ok("listeners: [\":80\"]\npools: [{name: a, backends: [127.0.0.1:1]}]\n"
	                "admin:\n");
	assert_true(cfg->admin.enabled);
	assert_string_equal(cfg->admin.addr.text, "127.0.0.1:9090");
	del_cfg(cfg);
	cfg = expect_ok("listeners: [\":80\"]\npools: [{name: a, backends: [127.0.0.1:1]}]\n"
	                "admin: {address: \"0.0.0.0:9\", token: t0k3n}\n");
	assert_string_equal(cfg->admin.token, "t0k3n");
	del_cfg(cfg);
	expect_error("listeners: [\":80\"]\npools: [{name: a, backends: [127.0.0.1:1]}]\n"
	             "admin: {address: \"0.0.0.0:9\"}\n",
	             "ringlb.yaml:3: admin.token: required when admin.address is not a loopback "
	             "address");
}

/* agent: required by resource, refused elsewhere, defaults and settings. */
static void test_agent(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = expect_ok("listeners: [\":80\"]\n"
	                "pools:\n"
	                "  - name: a\n"
	                "    algorithm: resource\n"
	                "    agent:\n"
	                "    backends: [127.0.0.1:9001]\n"
	                "  - name: b\n"
	                "    algorithm: resource\n"
	                "    agent: {path: /agent, interval: 5s, timeout: 2s}\n"
	                "    backends: [127.0.0.1:9002]\n");
	assert_int_equal(cfg->pools[0].algorithm, CONFIG_ALG_RESOURCE);
	assert_true(cfg->pools[0].agent.enabled);
	assert_string_equal(cfg->pools[0].agent.path, "/load");
	assert_int_equal(cfg->pools[0].agent.interval_ms, 2000);
	assert_int_equal(cfg->pools[0].agent.timeout_ms, 1000);
	assert_string_equal(cfg->pools[1].agent.path, "/agent");
	assert_int_equal(cfg->pools[1].agent.interval_ms, 5000);
	assert_int_equal(cfg->pools[1].agent.timeout_ms, 2000);
	del_cfg(cfg);
	expect_error("listeners: [\":80\"]\npools:\n  - name: a\n    algorithm: resource\n"
	             "    backends: [127.0.0.1:1]\n",
	             "ringlb.yaml:3: pools[0].algorithm: resource needs an agent section (agent: "
	             "{path: /load})");
	expect_error("listeners: [\":80\"]\npools:\n  - name: a\n    agent: {}\n"
	             "    backends: [127.0.0.1:1]\n",
	             "ringlb.yaml:3: pools[0].agent: only applies to algorithm resource");
	expect_error("listeners: [\":80\"]\npools:\n  - name: a\n    algorithm: resource\n"
	             "    agent: {interval: 1s, timeout: 1s}\n    backends: [127.0.0.1:1]\n",
	             "ringlb.yaml:5: pools[0].agent.timeout: must be shorter than agent.interval "
	             "(1000ms)");
}

/* Only one YAML document per file: a stray "---" must not hide what follows
 * it from validation. */
static void test_second_document_refused(void **state)
{
	(void)state;
	expect_error("listeners: [127.0.0.1:8080]\n"
	             "pools: [{name: a, backends: [127.0.0.1:1]}]\n"
	             "---\n"
	             "bogus: 1\n",
	             "ringlb.yaml:4: ---: a configuration file holds one YAML document");
}

static void test_null_err_buffer(void **state)
{
	struct config *cfg = new_cfg();

	(void)state;
	assert_int_equal(config_load_string(cfg, "x", "a: 1\n", 5, NULL, 0), 0);
	config_defaults(cfg);
	assert_int_equal(config_validate(cfg, NULL, 0), 0);
	del_cfg(cfg);
}

/* ---- TLS listeners ---- */

/* A listener's tls section with one certificate: eight lines, then POOLS. */
#define TLS_MINIMAL                                                                                \
	"listeners:\n"                                                                             \
	"  - address: 127.0.0.1:8443\n"                                                            \
	"    tls:\n"                                                                               \
	"      certificates:\n"                                                                    \
	"        - cert: /etc/ringlb/site.crt\n"                                                   \
	"          key: /etc/ringlb/site.key\n"                                                    \
	"  - address: 127.0.0.1:8080\n"                                                            \
	"    redirect_https: 8443\n" POOLS

/* The http2 section and a listener's http2 switch. */
/* Routes' cache sections: on/off, a mapping, defaults, bounds and the
 * cross-field rule max_object <= memory; quick mode's --cache. */
static void test_cache_section(void **state)
{
	struct config *cfg = expect_ok(MINIMAL "routes:\n"
	                                       "  - path: /a/\n"
	                                       "    pool: app\n"
	                                       "    cache: on\n"
	                                       "  - path: /b/\n"
	                                       "    pool: app\n"
	                                       "    cache:\n"
	                                       "      memory: 1GiB\n"
	                                       "      max_object: 4MiB\n"
	                                       "      key_headers: [X-Tenant, Accept-Language]\n"
	                                       "      lock_timeout: 250ms\n"
	                                       "      heuristic: true\n"
	                                       "      store_set_cookie: yes\n"
	                                       "      header: off\n"
	                                       "      stale_if_error: 1h\n"
	                                       "  - path: /c/\n"
	                                       "    pool: app\n"
	                                       "    cache: off\n"
	                                       "  - path: /d/\n"
	                                       "    pool: app\n");
	const struct config_cache *a = &cfg->routes[0].cache, *b = &cfg->routes[1].cache;

	(void)state;
	assert_true(a->enabled);
	assert_int_equal(a->memory, 64 * 1024 * 1024);
	assert_int_equal(a->max_object, 1024 * 1024);
	assert_int_equal(a->lock_timeout_ms, 5000);
	assert_string_equal(a->header, "X-Cache");
	assert_false(a->heuristic || a->store_set_cookie);
	assert_true(b->enabled);
	assert_int_equal(b->memory, 1024ULL * 1024 * 1024);
	assert_int_equal(b->max_object, 4 * 1024 * 1024);
	assert_string_equal(b->key_headers, "X-Tenant,Accept-Language");
	assert_int_equal(b->lock_timeout_ms, 250);
	assert_true(b->heuristic && b->store_set_cookie);
	assert_string_equal(b->header, ""); /* off */
	assert_int_equal(b->stale_if_error_ms, 3600 * 1000);
	assert_false(cfg->routes[2].cache.enabled);
	assert_false(cfg->routes[3].cache.enabled);
	del_cfg(cfg);

	expect_error(MINIMAL "routes:\n"
	                     "  - pool: app\n"
	                     "    cache: maybe\n",
	             "ringlb.yaml:8: routes[0].cache: expected on, off, or a mapping of cache "
	             "settings, got \"maybe\"");
	expect_error(MINIMAL "routes:\n"
	                     "  - pool: app\n"
	                     "    cache:\n"
	                     "      memory: 1MiB\n"
	                     "      max_object: 2MiB\n",
	             "ringlb.yaml:9: routes[0].cache: max_object (2097152 bytes) is larger than "
	             "memory (1048576 bytes)");
	expect_error(
	        MINIMAL "routes:\n"
	                "  - pool: app\n"
	                "    cache:\n"
	                "      memory: 1KiB\n",
	        "ringlb.yaml:9: routes[0].cache.memory: expected a size from 64KiB to 1024GiB, "
	        "got \"1KiB\"");
	expect_error(MINIMAL "routes:\n"
	                     "  - pool: app\n"
	                     "    cache:\n"
	                     "      key_headers: [\"X Bad\"]\n",
	             "ringlb.yaml:9: routes[0].cache.key_headers: expected a list of names (or "
	             "\"a, b\"), 1 to 511 characters in all, got \"X Bad\"");
	expect_error(MINIMAL "routes:\n"
	                     "  - pool: app\n"
	                     "    cache:\n"
	                     "      colour: blue\n",
	             "ringlb.yaml:9: routes[0].cache.colour: unknown key");
}

/* Quick mode's --cache: a catch-all route to the first pool, cached. */
static void test_config_add_cache(void **state)
{
	struct config *cfg = new_cfg();
	char err[CONFIG_ERR_MAX];

	(void)state;
	config_defaults(cfg);
	assert_true(config_add_listener(cfg, "127.0.0.1:8080", err, sizeof(err)));
	assert_false(config_add_cache(cfg, "64MiB", err, sizeof(err))); /* no pool yet */
	assert_true(config_add_backend(cfg, "127.0.0.1:9001", err, sizeof(err)));
	assert_false(config_add_cache(cfg, "lots", err, sizeof(err)));
	assert_non_null(strstr(err, "--cache"));
	assert_true(config_add_cache(cfg, "256MiB", err, sizeof(err)));
	assert_true(config_validate(cfg, err, sizeof(err)));
	assert_int_equal(cfg->num_routes, 1);
	assert_true(cfg->routes[0].cache.enabled);
	assert_int_equal(cfg->routes[0].cache.memory, 256ULL * 1024 * 1024);
	assert_string_equal(cfg->routes[0].pool, "default");
	del_cfg(cfg);
}

/* The compression section: defaults, lists in both spellings, names and
 * media types checked, levels bounded. */
static void test_compression_section(void **state)
{
	struct config *cfg = expect_ok(MINIMAL);

	(void)state;
	assert_false(cfg->compression.enabled);
	assert_string_equal(cfg->compression.encodings, "br,zstd,gzip");
	assert_non_null(strstr(cfg->compression.types, "text/html"));
	assert_int_equal(cfg->compression.min_size, 256);
	assert_int_equal(cfg->compression.gzip_level, 6);
	assert_int_equal(cfg->compression.brotli_level, 4);
	assert_int_equal(cfg->compression.zstd_level, 3);
	assert_int_equal(cfg->compression.max_streams, 32);
	del_cfg(cfg);

	cfg = expect_ok(MINIMAL "compression:\n"
	                        "  enabled: true\n"
	                        "  encodings: gzip, br\n"
	                        "  types: [text/*, application/json]\n"
	                        "  min_size: 1KiB\n"
	                        "  brotli_level: 11\n"
	                        "  max_streams: 4\n");
	assert_true(cfg->compression.enabled);
	assert_string_equal(cfg->compression.encodings, "gzip,br");
	assert_string_equal(cfg->compression.types, "text/*,application/json");
	assert_int_equal(cfg->compression.min_size, 1024);
	assert_int_equal(cfg->compression.brotli_level, 11);
	assert_int_equal(cfg->compression.max_streams, 4);
	del_cfg(cfg);

	expect_error(
	        MINIMAL "compression:\n"
	                "  encodings: [br, deflate]\n",
	        "ringlb.yaml:7: compression.encodings: expected br, zstd or gzip, each at most "
	        "once, got \"deflate\"");
	expect_error(
	        MINIMAL "compression:\n"
	                "  encodings: [br, br]\n",
	        "ringlb.yaml:7: compression.encodings: expected br, zstd or gzip, each at most "
	        "once, got \"br\"");
	expect_error(MINIMAL "compression:\n"
	                     "  types: [html]\n",
	             "ringlb.yaml:7: compression.types: expected media types like text/html or "
	             "text/*, got \"html\"");
	expect_error(MINIMAL "compression:\n"
	                     "  enabled: true\n"
	                     "  encodings: []\n",
	             "ringlb.yaml:8: compression.encodings: expected at least one coding when "
	             "enabled");
	expect_error(MINIMAL "compression:\n"
	                     "  gzip_level: 10\n",
	             "ringlb.yaml:7: compression.gzip_level: expected an integer from 1 to 9, got "
	             "\"10\"");
}

/* The headers section: defaults, the hide list, Server, request ids. */
static void test_headers_section(void **state)
{
	struct config *cfg = expect_ok(MINIMAL);

	(void)state;
	assert_string_equal(cfg->headers.hide, "X-Powered-By,X-AspNet-Version,X-AspNetMvc-Version");
	assert_string_equal(cfg->headers.server, "");
	assert_true(cfg->headers.request_id);
	assert_false(cfg->headers.request_id_trusted);
	del_cfg(cfg);
	cfg = expect_ok(MINIMAL "headers:\n"
	                        "  hide: [X-Powered-By, X-Runtime]\n"
	                        "  server: ringlb\n"
	                        "  request_id: false\n"
	                        "  request_id_trusted: true\n");
	assert_string_equal(cfg->headers.hide, "X-Powered-By,X-Runtime");
	assert_string_equal(cfg->headers.server, "ringlb");
	assert_false(cfg->headers.request_id);
	assert_true(cfg->headers.request_id_trusted);
	del_cfg(cfg);
	expect_error(MINIMAL "headers:\n"
	                     "  hide: [\"X:Bad\"]\n",
	             "ringlb.yaml:7: headers.hide: expected header field names, got \"X:Bad\"");
}

static void test_protection_sections(void **state)
{
	struct config *cfg = expect_ok(MINIMAL);

	(void)state;
	assert_int_equal(cfg->limits.conns_total, 0);
	assert_int_equal(cfg->limits.conns_per_ip, 0);
	assert_int_equal(cfg->limits.body_min_rate, 0);
	assert_int_equal(cfg->limits.body_rate_window_ms, 10000);
	assert_int_equal(cfg->limits.rate_table_slots, 262144);
	assert_int_equal(cfg->limits.ip_table_slots, 65536);
	assert_false(cfg->listeners[0].proxy_protocol);
	assert_false(cfg->anomaly.enabled);
	assert_int_equal(cfg->anomaly.factor, 300);
	del_cfg(cfg);
	cfg = expect_ok("listeners:\n"
	                "  - address: 127.0.0.1:8080\n"
	                "    proxy_protocol: true\n"
	                "    trusted_proxies: 10.0.0.0/8, 2001:db8::/32\n"
	                "    deny: [192.0.2.0/24]\n" POOLS "routes:\n"
	                "  - pool: app\n"
	                "    allow: [10.0.0.0/8, \"::1\"]\n"
	                "    rate_limit:\n"
	                "      rate: 6000/m\n"
	                "      burst: 20\n"
	                "      key: header:X-API-Key\n"
	                "      delay: 500ms\n"
	                "    filters:\n"
	                "      methods: [GET, HEAD]\n"
	                "      max_uri: 2048\n"
	                "      rules:\n"
	                "        - name: sqli\n"
	                "          path: '(?i)union\\s+select'\n"
	                "        - name: ua\n"
	                "          header: User-Agent\n"
	                "          value: 'sqlmap nikto'\n"
	                "limits:\n"
	                "  conns_per_ip: 100\n"
	                "  body_min_rate: 1KiB\n"
	                "anomaly:\n"
	                "  enabled: true\n"
	                "  factor: 500\n");
	assert_true(cfg->listeners[0].proxy_protocol);
	assert_string_equal(cfg->listeners[0].trusted_proxies, "10.0.0.0/8,2001:db8::/32");
	assert_string_equal(cfg->listeners[0].acl.deny, "192.0.2.0/24");
	assert_string_equal(cfg->routes[0].acl.allow, "10.0.0.0/8,::1");
	assert_true(cfg->routes[0].rate_limit.enabled);
	assert_int_equal(cfg->routes[0].rate_limit.interval_us, 10000);
	assert_int_equal(cfg->routes[0].rate_limit.burst, 20);
	assert_int_equal(cfg->routes[0].rate_limit.key, CONFIG_RATE_HEADER);
	assert_string_equal(cfg->routes[0].rate_limit.key_name, "X-API-Key");
	assert_int_equal(cfg->routes[0].rate_limit.delay_ms, 500);
	assert_int_equal(cfg->routes[0].rate_limit.status, 429);
	assert_string_equal(cfg->routes[0].filter.methods, "GET,HEAD");
	assert_int_equal(cfg->routes[0].filter.max_uri, 2048);
	assert_int_equal(cfg->routes[0].filter.num_rules, 2);
	assert_string_equal(cfg->routes[0].filter.rules[0].path, "(?i)union\\s+select");
	assert_string_equal(cfg->routes[1 - 1].filter.rules[1].value, "sqlmap nikto");
	assert_int_equal(cfg->limits.conns_per_ip, 100);
	assert_int_equal(cfg->limits.body_min_rate, 1024);
	assert_true(cfg->anomaly.enabled);
	assert_int_equal(cfg->anomaly.factor, 500);
	del_cfg(cfg);
	expect_error(MINIMAL "routes:\n"
	                     "  - pool: app\n"
	                     "    deny: [10.0.0.0/33]\n",
	             "ringlb.yaml:7: routes[0].deny: expected an IPv4 or IPv6 address or CIDR "
	             "prefix, got \"10.0.0.0/33\"");
	expect_error(MINIMAL "routes:\n"
	                     "  - pool: app\n"
	                     "    rate_limit: {rate: fast}\n",
	             "ringlb.yaml:8: routes[0].rate_limit.rate: expected a rate like 100/s, 6000/m "
	             "or 10/h, got \"fast\"");
	expect_error(MINIMAL "routes:\n"
	                     "  - pool: app\n"
	                     "    rate_limit: {rate: 1/s, status: 500}\n",
	             "ringlb.yaml:8: routes[0].rate_limit.status: expected 429 or 503, got 500");
	expect_error(MINIMAL "routes:\n"
	                     "  - pool: app\n"
	                     "    filters:\n"
	                     "      rules: [{name: x, value: a}]\n",
	             "ringlb.yaml:9: routes[0].filters.rules[0]: value needs header (the field it "
	             "matches)");
	expect_error(MINIMAL "routes:\n"
	                     "  - pool: app\n"
	                     "    filters:\n"
	                     "      methods: [get]\n",
	             "ringlb.yaml:7: routes[0].filters.methods: expected method names in capitals, "
	             "like GET, HEAD");
}

/* The security section: off by default; names and ids read back as
 * written (core/sandbox.c looks them up); config_key_line finds them. */
static void test_security_section(void **state)
{
	struct config *cfg = expect_ok(MINIMAL);

	(void)state;
	assert_string_equal(cfg->security.user, "");
	assert_string_equal(cfg->security.group, "");
	assert_false(cfg->security.seccomp);
	assert_int_equal(config_key_line(cfg, "security", "user"), 1);
	del_cfg(cfg);
	cfg = expect_ok(MINIMAL "security:\n"
	                        "  user: nobody\n"
	                        "  group: 65534\n"
	                        "  seccomp: true\n");
	assert_string_equal(cfg->security.user, "nobody");
	assert_string_equal(cfg->security.group, "65534");
	assert_true(cfg->security.seccomp);
	assert_int_equal(config_key_line(cfg, "security", "user"), 7);
	assert_int_equal(config_key_line(cfg, "security", "group"), 8);
	del_cfg(cfg);
	cfg = expect_ok(MINIMAL "security:\n"
	                        "  seccomp: true\n");
	assert_int_equal(config_key_line(cfg, "security", "user"), 6); /* the section's line */
	del_cfg(cfg);
	expect_error(MINIMAL "security:\n"
	                     "  user: \"no body\"\n",
	             "ringlb.yaml:7: security.user: expected a name of 1 to 63 characters from A-Z "
	             "a-z 0-9 _ . -, got \"no body\"");
	expect_error(MINIMAL "security:\n"
	                     "  seccomp: maybe\n",
	             "ringlb.yaml:7: security.seccomp: expected true or false, got \"maybe\"");
}

static void test_http2_section(void **state)
{
	struct config *cfg = expect_ok(TLS_MINIMAL);

	(void)state;
	assert_true(cfg->listeners[0].http2);
	assert_true(cfg->listeners[0].tls->_h2);
	assert_int_equal(cfg->http2.max_concurrent_streams, 128);
	assert_int_equal(cfg->http2.stream_window, 64 * 1024);
	assert_int_equal(cfg->http2.header_table_size, 4096);
	assert_int_equal(cfg->http2.max_resets, 200);
	assert_int_equal(cfg->http2.reset_rate, 33);
	assert_int_equal(cfg->http2.max_control, 1000);
	assert_int_equal(cfg->http2.control_rate, 100);
	assert_int_equal(cfg->http2.max_continuations, 8);
	del_cfg(cfg);

	cfg = expect_ok("listeners:\n"
	                "  - address: 127.0.0.1:8443\n"
	                "    http2: false\n"
	                "    tls:\n"
	                "      certificates: [{cert: a.crt, key: a.key}]\n"
	                "http2:\n"
	                "  max_concurrent_streams: 7\n"
	                "  stream_window: 1MiB\n"
	                "  max_continuations: 0\n" POOLS);
	assert_false(cfg->listeners[0].http2);
	assert_false(cfg->listeners[0].tls->_h2);
	assert_int_equal(cfg->http2.max_concurrent_streams, 7);
	assert_int_equal(cfg->http2.stream_window, 1024 * 1024);
	assert_int_equal(cfg->http2.max_continuations, 0);
	del_cfg(cfg);

	expect_error(MINIMAL "http2:\n"
	                     "  max_concurrent_streams: 0\n",
	             "ringlb.yaml:7: http2.max_concurrent_streams: expected an integer from 1 to "
	             "10000, got \"0\"");
	expect_error(MINIMAL "http2:\n"
	                     "  stream_window: 1KiB\n",
	             "ringlb.yaml:7: http2.stream_window: expected a size from 16KiB to 16MiB, got "
	             "\"1KiB\"");
	expect_error(MINIMAL "http2:\n"
	                     "  resets: 5\n",
	             "ringlb.yaml:7: http2.resets: unknown key");
}

static void test_tls_defaults(void **state)
{
	struct config *cfg = expect_ok(TLS_MINIMAL);
	const struct config_tls *t = cfg->listeners[0].tls;
	struct config_tls *def = malloc(sizeof(*def));

	(void)state;
	assert_non_null(t);
	assert_int_equal(t->num_certs, 1);
	assert_string_equal(t->certs[0].cert, "/etc/ringlb/site.crt");
	assert_string_equal(t->certs[0].key, "/etc/ringlb/site.key");
	assert_string_equal(t->certs[0].ocsp, "");
	assert_int_equal(t->certs[0]._line, 5);
	assert_int_equal(t->min_version, 0x0303);
	assert_string_equal(t->ciphers, CONFIG_TLS_CIPHERS);
	assert_string_equal(t->groups, CONFIG_TLS_GROUPS);
	assert_string_equal(t->client_ca, "");
	assert_int_equal(t->verify_client, CONFIG_VERIFY_REQUIRED);
	assert_true(t->session_tickets);
	assert_string_equal(t->ticket_key_file, "");
	assert_int_equal(t->ticket_rotate_ms, 3600000);
	assert_int_equal(t->hsts_ms, 0);
	assert_false(t->hsts_subdomains);
	assert_int_equal(cfg->listeners[0].redirect_https, 0);
	/* The plain listener: no tls, a redirect. */
	assert_null(cfg->listeners[1].tls);
	assert_int_equal(cfg->listeners[1].redirect_https, 8443);
	assert_int_equal(cfg->buffers.tls_count, 1024);
	/* config_tls_defaults gives the same, over any previous content. */
	assert_non_null(def);
	memset(def, 0x5a, sizeof(*def));
	config_tls_defaults(def);
	assert_int_equal(def->num_certs, 0);
	assert_null(def->certs);
	assert_int_equal(def->min_version, t->min_version);
	assert_string_equal(def->ciphers, t->ciphers);
	assert_string_equal(def->groups, t->groups);
	assert_string_equal(def->client_ca, "");
	assert_int_equal(def->verify_client, t->verify_client);
	assert_true(def->session_tickets);
	assert_string_equal(def->ticket_key_file, "");
	assert_int_equal(def->ticket_rotate_ms, t->ticket_rotate_ms);
	assert_int_equal(def->hsts_ms, 0);
	assert_false(def->hsts_subdomains);
	assert_int_equal(def->_line, 0);
	free(def);
	del_cfg(cfg);
}

static void test_tls_every_key(void **state)
{
	struct config *cfg = expect_ok("listeners:\n"
	                               "  - address: 127.0.0.1:8443\n"
	                               "    tls:\n"
	                               "      certificates:\n"
	                               "        - cert: /c/ecdsa.crt\n"
	                               "          key: /c/ecdsa.key\n"
	                               "          ocsp: /c/ecdsa.ocsp\n"
	                               "        - {cert: \"/c/r s a.crt\", key: /c/rsa.key}\n"
	                               "      min_version: \"1.3\"\n"
	                               "      ciphers: ECDHE-ECDSA-AES128-GCM-SHA256\n"
	                               "      groups: X25519:P-256\n"
	                               "      client_ca: /c/ca.pem\n"
	                               "      verify_client: optional\n"
	                               "      session_tickets: false\n"
	                               "      ticket_key_file: /c/tickets.bin\n"
	                               "      ticket_rotate: 2h\n"
	                               "      hsts: 8760h\n"
	                               "      hsts_subdomains: yes\n"
	                               "  - address: 127.0.0.1:9443\n"
	                               "    tls:\n"
	                               "      certificates: [{cert: b.crt, key: b.key}]\n"
	                               "      min_version: 1.2\n"
	                               "      verify_client: required\n"
	                               "      ticket_rotate: 1m\n"
	                               "      hsts: 0\n" POOLS "buffers:\n"
	                               "  tls_count: 65534\n");
	const struct config_tls *t = cfg->listeners[0].tls, *u = cfg->listeners[1].tls;

	(void)state;
	assert_int_equal(t->num_certs, 2);
	assert_string_equal(t->certs[0].cert, "/c/ecdsa.crt");
	assert_string_equal(t->certs[0].key, "/c/ecdsa.key");
	assert_string_equal(t->certs[0].ocsp, "/c/ecdsa.ocsp");
	assert_int_equal(t->certs[0]._line, 5);
	assert_string_equal(t->certs[1].cert, "/c/r s a.crt"); /* file names may hold spaces */
	assert_string_equal(t->certs[1].key, "/c/rsa.key");
	assert_string_equal(t->certs[1].ocsp, "");
	assert_int_equal(t->certs[1]._line, 8);
	assert_int_equal(t->min_version, 0x0304);
	assert_string_equal(t->ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
	assert_string_equal(t->groups, "X25519:P-256");
	assert_string_equal(t->client_ca, "/c/ca.pem");
	assert_int_equal(t->verify_client, CONFIG_VERIFY_OPTIONAL);
	assert_false(t->session_tickets);
	assert_string_equal(t->ticket_key_file, "/c/tickets.bin");
	assert_int_equal(t->ticket_rotate_ms, 2 * 3600000);
	assert_int_equal(t->hsts_ms, 8760ULL * 3600000);
	assert_true(t->hsts_subdomains);
	assert_int_equal(u->num_certs, 1);
	assert_string_equal(u->certs[0].cert, "b.crt");
	assert_int_equal(u->certs[0]._line, 21);
	assert_int_equal(u->min_version, 0x0303);
	assert_int_equal(u->verify_client, CONFIG_VERIFY_REQUIRED);
	assert_int_equal(u->ticket_rotate_ms, 60000);
	assert_int_equal(u->hsts_ms, 0);
	assert_string_equal(u->ciphers, CONFIG_TLS_CIPHERS);
	assert_int_equal(cfg->buffers.tls_count, 65534);
	del_cfg(cfg);
}

static void test_tls_errors(void **state)
{
	(void)state;
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:8443\n"
	             "    tls:\n"
	             "      min_version: \"1.2\"\n" POOLS,
	             "ringlb.yaml:4: listeners[0].tls.certificates: required key is missing");
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:8443\n"
	             "    tls: {}\n" POOLS,
	             "ringlb.yaml:3: listeners[0].tls.certificates: required key is missing");
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:8443\n"
	             "    tls:\n"
	             "      certificates: []\n" POOLS,
	             "ringlb.yaml:4: listeners[0].tls.certificates: at least one certificate is "
	             "required");
	expect_error(
	        "listeners:\n"
	        "  - address: 127.0.0.1:8443\n"
	        "    tls:\n"
	        "      certificates:\n"
	        "        - cert: a.crt\n"
	        "          key: a.key\n"
	        "        - cert: b.crt\n" POOLS,
	        "ringlb.yaml:7: listeners[0].tls.certificates[1].key: required key is missing");
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:8443\n"
	             "    tls:\n"
	             "      certificates:\n"
	             "        - key: a.key\n" POOLS,
	             "ringlb.yaml:5: listeners[0].tls.certificates[0].cert: required key is "
	             "missing");
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:8443\n"
	             "    tls:\n"
	             "      certificates: [a.crt]\n" POOLS,
	             "ringlb.yaml:4: listeners[0].tls.certificates[0]: expected a mapping, got "
	             "\"a.crt\"");
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:8443\n"
	             "    tls:\n"
	             "      certificates: a.crt\n" POOLS,
	             "ringlb.yaml:4: listeners[0].tls.certificates: expected a list, got "
	             "\"a.crt\"");
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:8443\n"
	             "    tls: on\n" POOLS,
	             "ringlb.yaml:3: listeners[0].tls: expected a mapping of TLS settings, got "
	             "\"on\"");
}

/* The value errors, each on the line of its value. */
static void test_tls_value_errors(void **state)
{
	static const struct {
		const char *line; /* line 7 of the document */
		const char *want;
	} cases[] = {
	        {"      min_version: \"1.1\"\n",
	         "ringlb.yaml:7: listeners[0].tls.min_version: expected \"1.2\" or \"1.3\", got "
	         "\"1.1\""},
	        {"      min_version: 1.3.0\n",
	         "ringlb.yaml:7: listeners[0].tls.min_version: expected \"1.2\" or \"1.3\", got "
	         "\"1.3.0\""},
	        {"      verify_client: maybe\n",
	         "ringlb.yaml:7: listeners[0].tls.verify_client: expected required or optional, "
	         "got \"maybe\""},
	        {"      ticket_rotate: 1s\n",
	         "ringlb.yaml:7: listeners[0].tls.ticket_rotate: expected a duration from 1m to "
	         "168h, got \"1s\""},
	        {"      ticket_rotate: 169h\n",
	         "ringlb.yaml:7: listeners[0].tls.ticket_rotate: expected a duration from 1m to "
	         "168h, got \"169h\""},
	        {"      ticket_rotate: soon\n",
	         "ringlb.yaml:7: listeners[0].tls.ticket_rotate: expected a duration like 2s or "
	         "500ms, got \"soon\""},
	        {"      hsts: 17521h\n",
	         "ringlb.yaml:7: listeners[0].tls.hsts: expected a duration from 0s to 17520h, "
	         "got \"17521h\""},
	        {"      session_tickets: maybe\n",
	         "ringlb.yaml:7: listeners[0].tls.session_tickets: expected true or false, got "
	         "\"maybe\""},
	        {"      ciphers: \"A B\"\n",
	         "ringlb.yaml:7: listeners[0].tls.ciphers: expected 1 to 511 visible ASCII "
	         "characters, no spaces, got \"A B\""},
	        {"      groups: \"\"\n",
	         "ringlb.yaml:7: listeners[0].tls.groups: expected 1 to 511 visible ASCII "
	         "characters, no spaces, got \"\""},
	        {"      client_ca: \"\"\n",
	         "ringlb.yaml:7: listeners[0].tls.client_ca: expected a file name of 1 to 511 "
	         "characters, got \"\""},
	        {"      bogus: 1\n", "ringlb.yaml:7: listeners[0].tls.bogus: unknown key"},
	        {"      certificates: []\n",
	         "ringlb.yaml:7: listeners[0].tls.certificates: duplicate key"},
	};
	char yaml[1024];

	(void)state;
	for (size_t i = 0; i < RLB_ARRAY_LEN(cases); i++) {
		snprintf(yaml, sizeof(yaml),
		         "listeners:\n"
		         "  - address: 127.0.0.1:8443\n"
		         "    tls:\n"
		         "      certificates:\n"
		         "        - cert: a.crt\n"
		         "          key: a.key\n"
		         "%s" POOLS,
		         cases[i].line);
		expect_error(yaml, cases[i].want);
	}
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:8443\n"
	             "    tls:\n"
	             "      certificates:\n"
	             "        - cert: a.crt\n"
	             "          key: \"\"\n" POOLS,
	             "ringlb.yaml:6: listeners[0].tls.certificates[0].key: expected a file name "
	             "of 1 to 511 characters, got \"\"");
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:8443\n"
	             "    tls:\n"
	             "      certificates:\n"
	             "        - cert: a.crt\n"
	             "          key: a.key\n"
	             "          pem: a.pem\n" POOLS,
	             "ringlb.yaml:7: listeners[0].tls.certificates[0].pem: unknown key");
}

/* Cross-field checks, and the bounds of buffers.tls_count. */
static void test_tls_validation(void **state)
{
	struct config *cfg;

	(void)state;
	/* redirect_https is blamed on the listener's address line. */
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:8443\n"
	             "    tls:\n"
	             "      certificates: [{cert: a.crt, key: a.key}]\n"
	             "    redirect_https: 443\n" POOLS,
	             "ringlb.yaml:2: listeners[0].redirect_https: only for a listener without tls "
	             "(it would redirect to itself)");
	expect_error("listeners:\n"
	             "  - address: 127.0.0.1:80\n"
	             "    redirect_https: 65536\n" POOLS,
	             "ringlb.yaml:3: listeners[0].redirect_https: expected an integer from 0 to "
	             "65535, got \"65536\"");
	expect_error(MINIMAL "buffers:\n"
	                     "  tls_count: 15\n",
	             "ringlb.yaml:7: buffers.tls_count: expected an integer from 16 to 65534, got "
	             "\"15\"");
	expect_error(MINIMAL "buffers:\n"
	                     "  tls_count: 65535\n",
	             "ringlb.yaml:7: buffers.tls_count: expected an integer from 16 to 65534, got "
	             "\"65535\"");
	cfg = expect_ok(MINIMAL "buffers:\n"
	                        "  tls_count: 16\n");
	assert_int_equal(cfg->buffers.tls_count, 16);
	del_cfg(cfg);
	/* Built in code: a tls section without certificates, tls_count out of
	 * range. */
	cfg = valid_cfg();
	cfg->listeners[0].tls = calloc(1, sizeof(*cfg->listeners[0].tls));
	assert_non_null(cfg->listeners[0].tls);
	config_tls_defaults(cfg->listeners[0].tls);
	expect_invalid(cfg, "command line: listeners[0].tls.certificates: at least one "
	                    "certificate is required");
	cfg = valid_cfg();
	cfg->buffers.tls_count = 8;
	expect_invalid(cfg, "command line: buffers.tls_count: expected an integer from 16 to "
	                    "65534, got 8");
}

/* --cert/--key: every listener without tls gets one, with the defaults and
 * the one certificate; a listener with its own tls keeps it. */
static void test_config_add_tls(void **state)
{
	struct config *cfg = new_cfg();
	char err[CONFIG_ERR_MAX], long_name[CONFIG_PATH_MAX + 1];
	const char *yaml = "listeners:\n"
	                   "  - address: 127.0.0.1:8443\n"
	                   "    tls:\n"
	                   "      certificates: [{cert: own.crt, key: own.key}]\n"
	                   "      min_version: \"1.3\"\n"
	                   "  - 127.0.0.1:9443\n" POOLS;
	const struct config_tls *t;

	(void)state;
	assert_true(config_parse_string(cfg, "f.yaml", yaml, strlen(yaml), err, sizeof(err)));
	assert_true(config_add_listener(cfg, "127.0.0.1:10443", err, sizeof(err)));
	assert_true(config_add_tls(cfg, "/q/site.crt", "/q/site.key", err, sizeof(err)));
	assert_true(config_validate(cfg, err, sizeof(err)));
	assert_int_equal(cfg->num_listeners, 3);
	t = cfg->listeners[0].tls;
	assert_int_equal(t->num_certs, 1);
	assert_string_equal(t->certs[0].cert, "own.crt");
	assert_int_equal(t->min_version, 0x0304);
	for (size_t i = 1; i < 3; i++) {
		t = cfg->listeners[i].tls;
		assert_non_null(t);
		assert_int_equal(t->num_certs, 1);
		assert_string_equal(t->certs[0].cert, "/q/site.crt");
		assert_string_equal(t->certs[0].key, "/q/site.key");
		assert_string_equal(t->certs[0].ocsp, "");
		assert_int_equal(t->certs[0]._line, 0);
		assert_int_equal(t->min_version, 0x0303);
		assert_string_equal(t->ciphers, CONFIG_TLS_CIPHERS);
		assert_true(t->session_tickets);
		assert_int_equal(t->ticket_rotate_ms, 3600000);
	}
	/* Again: nothing left without tls, nothing changes. */
	assert_true(config_add_tls(cfg, "/other.crt", "/other.key", err, sizeof(err)));
	assert_string_equal(cfg->listeners[2].tls->certs[0].cert, "/q/site.crt");
	/* File names: 1 to 511 characters. */
	assert_int_equal(config_add_tls(cfg, "", "/q/site.key", err, sizeof(err)), 0);
	assert_string_equal(err, "command line: --cert: expected a file name of 1 to 511 "
	                         "characters");
	assert_int_equal(config_add_tls(cfg, "/q/site.crt", "", err, sizeof(err)), 0);
	assert_string_equal(err, "command line: --key: expected a file name of 1 to 511 "
	                         "characters");
	memset(long_name, 'x', CONFIG_PATH_MAX);
	long_name[CONFIG_PATH_MAX] = '\0';
	assert_int_equal(config_add_tls(cfg, long_name, "k", err, sizeof(err)), 0);
	assert_string_equal(err, "command line: --cert: expected a file name of 1 to 511 "
	                         "characters");
	long_name[CONFIG_PATH_MAX - 1] = '\0'; /* 511: the longest */
	assert_true(config_add_tls(cfg, "c", long_name, err, sizeof(err)));
	del_cfg(cfg);

	/* A redirecting plain listener that --cert turns into TLS is refused. */
	cfg = new_cfg();
	yaml = "listeners:\n"
	       "  - address: 127.0.0.1:80\n"
	       "    redirect_https: 443\n" POOLS;
	assert_true(config_parse_string(cfg, "f.yaml", yaml, strlen(yaml), err, sizeof(err)));
	assert_true(config_add_tls(cfg, "c.crt", "c.key", err, sizeof(err)));
	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "f.yaml:2: listeners[0].redirect_https: only for a listener "
	                         "without tls (it would redirect to itself)");
	del_cfg(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_minimal_file_gets_defaults),
	        cmocka_unit_test(test_full_file),
	        cmocka_unit_test(test_load_file_and_example),
	        cmocka_unit_test(test_reference_example_loads),
	        cmocka_unit_test(test_error_duration),
	        cmocka_unit_test(test_error_backend_address),
	        cmocka_unit_test(test_error_route_pool),
	        cmocka_unit_test(test_error_listeners),
	        cmocka_unit_test(test_error_sizes_relation),
	        cmocka_unit_test(test_error_unknown_and_duplicate_keys),
	        cmocka_unit_test(test_error_pools),
	        cmocka_unit_test(test_error_top_level_values),
	        cmocka_unit_test(test_error_syntax),
	        cmocka_unit_test(test_error_long_value_is_cut),
	        cmocka_unit_test(test_too_many_listeners),
	        cmocka_unit_test(test_backend_scalar_and_mapping),
	        cmocka_unit_test(test_route_wildcard_and_sections),
	        cmocka_unit_test(test_bools),
	        cmocka_unit_test(test_parse_size),
	        cmocka_unit_test(test_parse_duration),
	        cmocka_unit_test(test_parse_addr),
	        cmocka_unit_test(test_quick_mode),
	        cmocka_unit_test(test_quick_mode_merges_into_file),
	        cmocka_unit_test(test_too_many_quick_listeners),
	        cmocka_unit_test(test_validate_relations),
	        cmocka_unit_test(test_validate_ranges),
	        cmocka_unit_test(test_validate_routes),
	        cmocka_unit_test(test_free_zeroed_and_twice),
	        cmocka_unit_test(test_failed_load_frees_cleanly),
	        cmocka_unit_test(test_hash_options),
	        cmocka_unit_test(test_health_check),
	        cmocka_unit_test(test_agent),
	        cmocka_unit_test(test_admin_section),
	        cmocka_unit_test(test_health_method_host_backend),
	        cmocka_unit_test(test_second_document_refused),
	        cmocka_unit_test(test_null_err_buffer),
	        cmocka_unit_test(test_tls_defaults),
	        cmocka_unit_test(test_tls_every_key),
	        cmocka_unit_test(test_tls_errors),
	        cmocka_unit_test(test_tls_value_errors),
	        cmocka_unit_test(test_tls_validation),
	        cmocka_unit_test(test_config_add_tls),
	        cmocka_unit_test(test_http2_section),
	        cmocka_unit_test(test_headers_section),
	        cmocka_unit_test(test_cache_section),
	        cmocka_unit_test(test_config_add_cache),
	        cmocka_unit_test(test_compression_section),
	        cmocka_unit_test(test_protection_sections),
	        cmocka_unit_test(test_security_section),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
