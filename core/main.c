/* core/main.c — the command line, start-up, and the control thread.
 *
 * The main thread becomes the control thread once the shards run: it waits
 * for signals (SIGTERM/SIGINT: graceful stop; SIGHUP: reload), writes the
 * access log lines the shards queue, and publishes new snapshots. It never
 * touches a shard's state directly.
 */
#include "core/admin.h"
#include "core/caching.h"
#include "core/compressing.h"
#include "core/config.h"
#include "core/demo.h"
#include "core/health.h"
#include "core/log.h"
#include "core/protect.h"
#include "core/ring.h"
#include "core/sandbox.h"
#include "core/shard.h"
#include "core/snapshot.h"
#include "tls/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#define RINGLB_VERSION "0.1.0"

enum exit_code { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_USAGE = 2, EXIT_START = 3 };

struct options {
	const char *config_path;
	bool test_only;
	bool demo;
	const char *workers;
	const char *access_log;
	const char *log_level;
	const char *listen[CONFIG_LISTENERS_MAX];
	int num_listen;
	const char *backend[CONFIG_BACKENDS_MAX];
	int num_backend;
	const char *cert, *key;
	const char *cache; /* --cache SIZE */
	bool compress;     /* --compress */
};

struct control {
	struct config *cfg;
	const char *config_path;
	struct uid_registry *reg;
	struct shard *shards;
	uint32_t num_shards;
	int alog_fd;
	struct control_plane cp; /* shared with the admin thread */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ringlb [-c FILE] [-t] [options]\n"
	           "       ringlb --listen ADDR --backend ADDR [--backend ADDR ...] [options]\n"
	           "       ringlb demo [--listen ADDR]\n"
	           "\n"
	           "  -c, --config FILE     run with the YAML configuration FILE\n"
	           "  -t, --test            check the configuration and exit (0 = valid)\n"
	           "      --listen ADDR     quick mode: listen on ADDR (e.g. 127.0.0.1:8080)\n"
	           "      --backend ADDR    quick mode: add a backend (round robin)\n"
	           "      --cert FILE       quick mode: serve TLS with this PEM certificate chain\n"
	           "      --key FILE        quick mode: ... and this PEM private key\n"
	           "      --cache SIZE      cache every route in SIZE of memory (e.g. 256MiB)\n"
	           "      --compress        compress responses (br, zstd, gzip)\n"
	           "      --workers N|auto  shard threads (default: one per CPU)\n"
	           "      --access-log PATH write an access log to PATH (or 'stdout')\n"
	           "      --log-level L     error, warn, info (default) or debug\n"
	           "  -v, --version         print the version\n"
	           "  -h, --help            this text\n"
	           "\n"
	           "Signals: SIGTERM/SIGINT stop gracefully (timeouts.drain), SIGHUP reloads -c "
	           "FILE.\n"
	           "Reference: docs/reference.md\n");
}

static int check_args(const struct options *o);

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"test", no_argument, NULL, 't'},
	        {"listen", required_argument, NULL, 'L'},
	        {"backend", required_argument, NULL, 'B'},
	        {"cert", required_argument, NULL, 'C'},
	        {"key", required_argument, NULL, 'K'},
	        {"cache", required_argument, NULL, 'M'},
	        {"compress", no_argument, NULL, 'Z'},
	        {"workers", required_argument, NULL, 'W'},
	        {"access-log", required_argument, NULL, 'A'},
	        {"log-level", required_argument, NULL, 'V'},
	        {"version", no_argument, NULL, 'v'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int ch;

	if (argc > 1 && strcmp(argv[1], "demo") == 0) {
		o->demo = true;
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	while ((ch = getopt_long(argc, argv, "c:tvh", longs, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config_path = optarg;
			break;
		case 't':
			o->test_only = true;
			break;
		case 'W':
			o->workers = optarg;
			break;
		case 'A':
			o->access_log = optarg;
			break;
		case 'V':
			o->log_level = optarg;
			break;
		case 'v':
			printf("ringlb %s\n", RINGLB_VERSION);
			exit(EXIT_OK);
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		case 'L':
			if (o->num_listen == CONFIG_LISTENERS_MAX)
				return 0;
			o->listen[o->num_listen++] = optarg;
			break;
		case 'C':
			o->cert = optarg;
			break;
		case 'K':
			o->key = optarg;
			break;
		case 'M':
			o->cache = optarg;
			break;
		case 'Z':
			o->compress = true;
			break;
		case 'B':
			if (o->num_backend == CONFIG_BACKENDS_MAX)
				return 0;
			o->backend[o->num_backend++] = optarg;
			break;
		default:
			return 0;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ringlb: unexpected argument '%s'\n", argv[optind]);
		return 0;
	}
	return check_args(o);
}

/* check_args refuses combinations of flags that make no sense. */
static int check_args(const struct options *o)
{
	if (o->config_path != NULL &&
	    (o->num_listen > 0 || o->num_backend > 0 || o->demo || o->cert != NULL)) {
		fprintf(stderr,
		        "ringlb: --listen/--backend/--cert/demo cannot be combined with -c\n");
		return 0;
	}
	if ((o->cert == NULL) != (o->key == NULL)) {
		fprintf(stderr, "ringlb: --cert and --key go together\n");
		return 0;
	}
	if (o->demo && o->num_backend > 0) {
		fprintf(stderr, "ringlb: demo brings its own backends; drop --backend\n");
		return 0;
	}
	if (o->config_path == NULL && !o->demo && o->num_backend == 0) {
		fprintf(stderr, "ringlb: nothing to do: give -c FILE, or --listen and --backend\n");
		return 0;
	}
	return 1;
}

/* apply_overrides applies the flags that may modify any configuration. */
static int apply_overrides(struct config *cfg, const struct options *o, char *err, size_t len)
{
	static const char *const levels[] = {"error", "warn", "info", "debug"};

	if (o->workers != NULL) {
		char *end;
		unsigned long n = strtoul(o->workers, &end, 10);

		if (strcmp(o->workers, "auto") == 0)
			cfg->workers = 0;
		else if (*end != '\0' || n < 1 || n > 1024) {
			snprintf(err, len, "--workers: expected auto or 1..1024, got \"%s\"",
			         o->workers);
			return 0;
		} else
			cfg->workers = (uint32_t)n;
	}
	if (o->compress)
		cfg->compression.enabled = true;
	if (o->cache != NULL && !config_add_cache(cfg, o->cache, err, len))
		return 0;
	if (o->access_log != NULL) {
		cfg->access_log.enabled = strcmp(o->access_log, "off") != 0;
		snprintf(cfg->access_log.path, sizeof(cfg->access_log.path), "%s", o->access_log);
	}
	if (o->log_level != NULL) {
		int i;

		for (i = 0; i < 4 && strcmp(levels[i], o->log_level) != 0; i++)
			;
		if (i == 4) {
			snprintf(err, len, "--log-level: expected error, warn, info or debug");
			return 0;
		}
		cfg->log_level = i;
	}
	return 1;
}

static int build_config(struct config *cfg, const struct options *o, char *err, size_t len)
{
	if (o->config_path != NULL) {
		if (!config_parse_file(cfg, o->config_path, err, len))
			return 0;
		return apply_overrides(cfg, o, err, len) && config_validate(cfg, err, len);
	}
	config_defaults(cfg);
	snprintf(cfg->source, sizeof(cfg->source), "command line");
	for (int i = 0; i < o->num_listen; i++)
		if (!config_add_listener(cfg, o->listen[i], err, len))
			return 0;
	if (o->demo) {
		struct config_addr origins[3];

		if (o->num_listen == 0 && !config_add_listener(cfg, "127.0.0.1:8080", err, len))
			return 0;
		if (!demo_start_origins(3, origins, err, len))
			return 0;
		for (int i = 0; i < 3; i++)
			if (!config_add_backend(cfg, origins[i].text, err, len))
				return 0;
	}
	for (int i = 0; i < o->num_backend; i++)
		if (!config_add_backend(cfg, o->backend[i], err, len))
			return 0;
	if (o->cert != NULL && !config_add_tls(cfg, o->cert, o->key, err, len))
		return 0;
	return apply_overrides(cfg, o, err, len) && config_validate(cfg, err, len);
}

/* raise_nofile lifts the soft open-files limit to the hard one: every
 * client and upstream connection is a descriptor. */
static void raise_nofile(const struct config *cfg, uint32_t workers)
{
	struct rlimit rl;
	uint64_t need =
	        (uint64_t)workers * (cfg->limits.conns_max + cfg->limits.upstream_conns_max) + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		rlb_log(LOG_INFO,
		        "open-files limit %llu is below what the limits allow (%llu); connections "
		        "beyond it are refused: raise ulimit -n or lower limits.conns_max",
		        (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

static uint32_t count_workers(const struct config *cfg)
{
	cpu_set_t set;

	if (cfg->workers > 0)
		return cfg->workers;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (uint32_t)CPU_COUNT(&set);
	return 1;
}

static int open_access_log(const struct config *cfg)
{
	const char *p = cfg->access_log.path;

	if (!cfg->access_log.enabled)
		return -1;
	if (strcmp(p, "stdout") == 0 || strcmp(p, "-") == 0)
		return dup(STDOUT_FILENO);
	return open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

/* drain_logs writes the queued access-log lines of every shard, batched
 * into few write(2) calls. Runs on the control thread only. */
static void drain_logs(void *arg)
{
	struct control *ctl = arg;
	char batch[65536];
	size_t used = 0;

	if (ctl->alog_fd < 0 || ctl->shards == NULL)
		return;
	for (uint32_t i = 0; i < ctl->num_shards; i++) {
		for (;;) {
			size_t n;

			if (sizeof(batch) - used < ALOG_LINE_MAX) {
				if (write(ctl->alog_fd, batch, used) < 0)
					rlb_log(LOG_WARN, "access log: %s", strerror(errno));
				used = 0;
			}
			n = shard_alog_pop(&ctl->shards[i], batch + used, sizeof(batch) - used);
			if (n == 0)
				break;
			used += n;
		}
	}
	if (used > 0 && write(ctl->alog_fd, batch, used) < 0)
		rlb_log(LOG_WARN, "access log: %s", strerror(errno));
}

/* reload loads the configuration file again and publishes the routes,
 * pools and backends it describes. What shards sized at start-up (workers,
 * listeners, buffers, limits, client timeouts) needs a restart. A file that
 * does not load is refused and the running configuration stays. */
/* adopt_pools moves the pools and routes of `next` into `cfg` (whose other
 * sections shards read and must not change under them) and leaves `next`
 * holding the old ones, to be freed. */
static void adopt_pools(struct config *cfg, struct config *next)
{
	size_t np = cfg->num_pools, nr = cfg->num_routes;
	struct config_route *routes = cfg->routes;
	struct config_pool *tmp = rlb_xcalloc(CONFIG_POOLS_MAX, sizeof(*tmp));

	memcpy(tmp, cfg->pools, sizeof(cfg->pools));
	memcpy(cfg->pools, next->pools, sizeof(cfg->pools));
	memcpy(next->pools, tmp, sizeof(next->pools));
	free(tmp);
	cfg->num_pools = next->num_pools;
	next->num_pools = np;
	cfg->routes = next->routes;
	cfg->num_routes = next->num_routes;
	next->routes = routes;
	next->num_routes = nr;
	/* Listeners stay (their sockets are bound), but who may connect and
	 * whom they trust is taken from the file like the routes. */
	for (size_t i = 0; i < cfg->num_listeners; i++) {
		struct config_listener *a = &cfg->listeners[i], *b = NULL;

		/* matched by address: the bound sockets are what they are */
		for (size_t j = 0; j < next->num_listeners && b == NULL; j++)
			if (next->listeners[j].addr.len == a->addr.len &&
			    memcmp(&next->listeners[j].addr.ss, &a->addr.ss, a->addr.len) == 0)
				b = &next->listeners[j];
		if (b == NULL)
			continue;
		struct config_acl acl = a->acl;
		char trusted[CONFIG_CIDRS_MAX];
		bool pp = a->proxy_protocol;

		memcpy(trusted, a->trusted_proxies, sizeof(trusted));
		a->acl = b->acl;
		memcpy(a->trusted_proxies, b->trusted_proxies, sizeof(trusted));
		a->proxy_protocol = b->proxy_protocol;
		b->acl = acl;
		memcpy(b->trusted_proxies, trusted, sizeof(trusted));
		b->proxy_protocol = pp;
	}
}

/* adopt_tls_sections takes the TLS sections of `next`'s listeners that
 * control_reload_tls loaded, so that a later reload through the admin API
 * reads the new files. Shards never read these sections after start-up. */
static void adopt_tls_sections(struct config *cfg, struct config *next)
{
	for (size_t i = 0; i < cfg->num_listeners && i < next->num_listeners; i++) {
		struct config_listener *a = &cfg->listeners[i], *b = &next->listeners[i];
		struct config_tls *t;

		if (a->tls == NULL || b->tls == NULL || a->addr.len != b->addr.len ||
		    memcmp(&a->addr.ss, &b->addr.ss, a->addr.len) != 0)
			continue;
		t = a->tls;
		a->tls = b->tls;
		b->tls = t;
	}
}

/* reload loads the configuration file again and publishes the routes,
 * pools and backends it describes (admin changes made since are replaced
 * by the file). What shards sized at start-up (workers, listeners, buffers,
 * limits, client timeouts) needs a restart. A file that does not load is
 * refused and the running configuration stays. */
static void reload(struct control *ctl)
{
	struct config *next = rlb_xcalloc(1, sizeof(*next));
	char err[CONFIG_ERR_MAX];

	if (ctl->config_path == NULL) {
		rlb_log(LOG_WARN, "SIGHUP ignored: no configuration file (-c) to reload");
		free(next);
		return;
	}
	if (!config_load_file(next, ctl->config_path, err, sizeof(err))) {
		rlb_log(LOG_ERROR, "reload refused, keeping the running configuration: %s", err);
		config_free(next);
		free(next);
		return;
	}
	if (strcmp(next->security.user, ctl->cfg->security.user) != 0 ||
	    strcmp(next->security.group, ctl->cfg->security.group) != 0 ||
	    next->security.seccomp != ctl->cfg->security.seccomp)
		rlb_log(LOG_WARN, "security: changes take effect at the next start");
	pthread_mutex_lock(&ctl->cp.lock);
	if (control_reload_tls(&ctl->cp, next, err, sizeof(err)) < 0) {
		pthread_mutex_unlock(&ctl->cp.lock);
		rlb_log(LOG_ERROR, "reload refused, keeping the running configuration: %s", err);
		config_free(next);
		free(next);
		return;
	}
	adopt_tls_sections(ctl->cfg, next);
	adopt_pools(ctl->cfg, next);
	if (!control_publish(&ctl->cp, true, err, sizeof(err))) {
		adopt_pools(ctl->cfg, next); /* put the running pools back */
		pthread_mutex_unlock(&ctl->cp.lock);
		rlb_log(LOG_ERROR, "reload refused, keeping the running configuration: %s", err);
		config_free(next);
		free(next);
		return;
	}
	pthread_mutex_unlock(&ctl->cp.lock);
	config_free(next);
	free(next);
	rlb_log(LOG_INFO, "configuration reloaded from %s (version %llu)", ctl->config_path,
	        (unsigned long long)ctl->cp.version);
}

/* tick_tls rotates session ticket keys when their time has come. */
static void tick_tls(struct control *ctl)
{
	uint64_t now = rlb_now_ms();

	pthread_mutex_lock(&ctl->cp.lock);
	for (size_t i = 0; i < ctl->cfg->num_listeners; i++)
		if (ctl->cp.tls[i] != NULL)
			tls_server_tick(ctl->cp.tls[i], now);
	pthread_mutex_unlock(&ctl->cp.lock);
}

static int control_loop(struct control *ctl)
{
	sigset_t set;
	struct timespec tick = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
	bool stopping = false;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sandbox_selftest_signal() != 0)
		sigaddset(&set, sandbox_selftest_signal());
	while (!shard_all_exited()) {
		int sig = sigtimedwait(&set, NULL, &tick);

		if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
			rlb_log(LOG_INFO, "%s: stopping; in-flight requests have %llu ms",
			        sig == SIGTERM ? "SIGTERM" : "SIGINT",
			        (unsigned long long)ctl->cfg->timeouts.drain_ms);
			shard_request_stop();
			stopping = true;
		} else if (sig == SIGHUP && !stopping) {
			reload(ctl);
		} else if (sig > 0 && sig == sandbox_selftest_signal()) {
			sandbox_selftest_violate();
		}
		drain_logs(ctl);
		tick_tls(ctl);
		pthread_mutex_lock(&ctl->cp.lock);
		protect_tick(ctl->cfg, rlb_now_ms());
		pthread_mutex_unlock(&ctl->cp.lock);
	}
	return shard_join_all(ctl->shards, ctl->num_shards, drain_logs, ctl);
}

static void log_listeners(const struct config *cfg, const struct control *ctl)
{
	for (size_t i = 0; i < cfg->num_listeners; i++) {
		char tls[256] = "";

		if (ctl->cp.tls[i] != NULL)
			tls_server_describe(ctl->cp.tls[i], tls, sizeof(tls));
		rlb_log(LOG_INFO, "listening on %s%s%s%s (%u workers)", cfg->listeners[i].addr.text,
		        tls[0] ? " with TLS: " : "", tls,
		        cfg->listeners[i].redirect_https ? " (redirecting to https)" : "",
		        ctl->num_shards);
	}
}

static void free_tls(struct tls_server **tls)
{
	for (size_t i = 0; i < CONFIG_LISTENERS_MAX; i++) {
		tls_server_free(tls[i]);
		tls[i] = NULL;
	}
}

/* load_tls builds the TLS server of every TLS listener: certificates, keys
 * (refused if others may read them), OCSP staples, client CAs. */
static int load_tls(const struct config *cfg, struct tls_server **tls, char *err, size_t len)
{
	for (size_t i = 0; i < cfg->num_listeners; i++) {
		if (cfg->listeners[i].tls == NULL)
			continue;
		tls[i] = tls_server_new(cfg->listeners[i].tls, cfg->source, i, err, len);
		if (tls[i] == NULL) {
			free_tls(tls);
			return 0;
		}
	}
	return 1;
}

/* check_pool_tls loads the TLS settings of pools with TLS backends (CAs,
 * client certificates), as a start would, for -t. */
static int check_pool_tls(const struct config *cfg, char *err, size_t len)
{
	for (size_t i = 0; i < cfg->num_pools; i++) {
		struct tls_client *cli;

		if (!cfg->pools[i].tls.enabled)
			continue;
		cli = tls_client_new(&cfg->pools[i].tls, cfg->pools[i].name, err, len);
		if (cli == NULL)
			return 0;
		tls_client_free(cli);
	}
	return 1;
}

/* boot sizes what the shards share (compression, cache zones, the backend
 * load counters) and publishes the first snapshot. */
static int boot(struct control *ctl, char *err, size_t err_len)
{
	struct snapshot *snap;

	compressing_boot(ctl->cfg);
	if (!protect_boot(ctl->cfg, err, err_len) ||
	    !caching_boot(ctl->cfg, ctl->num_shards, err, err_len)) {
		fprintf(stderr, "ringlb: %s\n", err);
		return EXIT_CONFIG;
	}
	ctl->reg = rlb_xcalloc(1, sizeof(*ctl->reg));
	ctl->cp.reg = ctl->reg;
	/* One cache line of live load per backend uid, shared by all shards
	 * and every snapshot: 16384 x 64 bytes = 1 MiB. */
	ctl->reg->live = aligned_alloc(LB_CACHELINE, SNAPSHOT_UIDS_MAX * sizeof(struct lb_live));
	if (ctl->reg->live == NULL) {
		fprintf(stderr, "ringlb: out of memory for backend load counters\n");
		return EXIT_START;
	}
	memset(ctl->reg->live, 0, SNAPSHOT_UIDS_MAX * sizeof(struct lb_live));
	snap = snapshot_build(ctl->cfg, ctl->reg, ++ctl->cp.version, err, err_len);
	if (snap == NULL) {
		fprintf(stderr, "ringlb: %s\n", err);
		return EXIT_CONFIG;
	}
	snapshot_publish(snap);
	return EXIT_OK;
}

/* open_privileged does, while ringlb may still be root, everything that
 * may need root: bind every listening socket (ports below 1024), open the
 * access log, read the TLS certificates and keys (often root-only). */
static int open_privileged(struct control *ctl, char *err, size_t err_len)
{
	const struct config *cfg = ctl->cfg;

	ctl->shards = shard_bind_all(cfg, ctl->num_shards, err, err_len);
	if (ctl->shards == NULL) {
		fprintf(stderr, "ringlb: cannot start: %s\n", err);
		return EXIT_START;
	}
	if (!admin_bind(&ctl->cp, err, err_len))
		rlb_log(LOG_ERROR, "%s: the admin API is off", err);
	ctl->alog_fd = open_access_log(cfg);
	if (cfg->access_log.enabled && ctl->alog_fd < 0) {
		fprintf(stderr, "ringlb: access log %s: %s\n", cfg->access_log.path,
		        strerror(errno));
		return EXIT_CONFIG;
	}
	if (!load_tls(cfg, ctl->cp.tls, err, err_len)) {
		fprintf(stderr, "%s\n", err);
		return EXIT_CONFIG;
	}
	return EXIT_OK;
}

/* start_confined drops privileges, then makes the rings: the probe ring
 * and each shard's ring are created by the unprivileged user, so no work
 * a ring queues can run as root. */
static int start_confined(struct control *ctl, const struct sandbox_ids *ids, char *err,
                          size_t err_len)
{
	int ok;

	if (!sandbox_drop(ids, err, err_len) || !ring_probe(err, err_len)) {
		fprintf(stderr, "ringlb: cannot start: %s\n", err);
		return EXIT_START;
	}
	ok = shard_start_all(ctl->shards, ctl->num_shards, ctl->cp.tls, err, err_len);
	if (!ok) {
		ctl->shards = NULL; /* freed, every started shard stopped */
		fprintf(stderr, "ringlb: cannot start: %s\n", err);
		return EXIT_START;
	}
	return EXIT_OK;
}

/* serve starts the control side's threads, confines every thread with
 * seccomp when asked (last: the filter allows no new thread), and runs
 * the control loop until the shards have stopped. */
static int serve(struct control *ctl)
{
	char err[CONFIG_ERR_MAX];
	int status;

	log_listeners(ctl->cfg, ctl);
	if (!health_start())
		rlb_log(LOG_ERROR, "cannot start the health checker: backends count as up");
	if (!admin_start(&ctl->cp, err, sizeof(err)))
		rlb_log(LOG_ERROR, "%s: the admin API is off", err);
	if (ctl->cfg->security.seccomp && !sandbox_seccomp(err, sizeof(err))) {
		rlb_log(LOG_ERROR, "%s: stopping, as security.seccomp asks for it", err);
		shard_request_stop();
		control_loop(ctl);
		status = EXIT_START;
	} else {
		status = control_loop(ctl) == 0 ? EXIT_OK : EXIT_START;
	}
	admin_stop();
	health_stop(); /* before the last snapshot is freed: it reads it */
	ctl->shards = NULL;
	rlb_log(LOG_INFO, "stopped");
	return status;
}

/* shut_down frees whatever start-up made, however far it got. */
static void shut_down(struct control *ctl)
{
	admin_stop(); /* a listener bound by a start that failed later */
	if (ctl->shards != NULL)
		shard_unbind_all(ctl->shards, ctl->num_shards);
	ctl->shards = NULL;
	synchronize_rcu();
	snapshot_free(snapshot_publish(NULL));
	rcu_barrier(); /* cache objects waiting for a grace period are freed */
	caching_shutdown();
	protect_shutdown();
	free_tls(ctl->cp.tls);
	if (ctl->alog_fd >= 0)
		close(ctl->alog_fd);
	if (ctl->reg != NULL)
		free(ctl->reg->live);
	free(ctl->reg);
}

/* run starts ringlb in the order least privilege needs (docs/reference.md,
 * security): bind and open as the starting user, drop privileges, create
 * the rings, start the threads, then seccomp. */
static int run(struct config *cfg, const char *config_path, const struct sandbox_ids *ids)
{
	struct control ctl = {.cfg = cfg, .config_path = config_path, .alog_fd = -1};
	char err[CONFIG_ERR_MAX];
	int status;

	pthread_mutex_init(&ctl.cp.lock, NULL);
	ctl.cp.cfg = cfg;
	ctl.num_shards = count_workers(cfg);
	raise_nofile(cfg, ctl.num_shards);
	status = boot(&ctl, err, sizeof(err));
	if (status == EXIT_OK)
		status = open_privileged(&ctl, err, sizeof(err));
	if (status == EXIT_OK)
		status = start_confined(&ctl, ids, err, sizeof(err));
	if (status == EXIT_OK)
		status = serve(&ctl);
	shut_down(&ctl);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct sandbox_ids ids;
	struct config *cfg = rlb_xcalloc(1, sizeof(*cfg));
	char err[CONFIG_ERR_MAX];
	sigset_t set;
	int status;

	/* Block the control signals before any thread exists (demo origins
	 * start while the configuration is built): every thread inherits the
	 * mask, so the signals reach only the control thread's sigtimedwait. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sandbox_selftest_signal() != 0)
		sigaddset(&set, sandbox_selftest_signal());
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!parse_args(argc, argv, &o)) {
		usage(stderr);
		free(cfg);
		return EXIT_USAGE;
	}
	if (!build_config(cfg, &o, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		config_free(cfg);
		free(cfg);
		return EXIT_CONFIG;
	}
	/* Before anything binds, and for -t too: an unknown user is a
	 * configuration error. */
	if (!sandbox_resolve(cfg, &ids, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		config_free(cfg);
		free(cfg);
		return EXIT_CONFIG;
	}
	if (o.test_only) {
		struct tls_server *tls[CONFIG_LISTENERS_MAX] = {0};

		if (!load_tls(cfg, tls, err, sizeof(err)) ||
		    !check_pool_tls(cfg, err, sizeof(err)) ||
		    !snapshot_check_protection(cfg, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			config_free(cfg);
			free(cfg);
			return EXIT_CONFIG;
		}
		free_tls(tls);
		printf("ringlb: configuration %s is ok\n", cfg->source);
		config_free(cfg);
		free(cfg);
		return EXIT_OK;
	}
	rlb_log_level = cfg->log_level;
	status = run(cfg, o.config_path, &ids);
	config_free(cfg);
	free(cfg);
	return status;
}
