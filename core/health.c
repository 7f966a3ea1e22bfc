/* core/health.c — the active health checker (see health.h).
 *
 * Each checked backend has one `struct check`, indexed by backend uid, with
 * a small state machine: IDLE until due, CONNECTING (non-blocking connect),
 * SENDING the request (http), READING the status line (http), then back to
 * IDLE with the verdict. All checks in flight share one poll(2); a check
 * not finished by its deadline fails as a timeout. The thread is an RCU
 * reader of the snapshot and copies what it needs, so nothing it holds
 * points into a snapshot across turns.
 */
#define _LGPL_SOURCE
#include "core/health.h"

#include "core/common.h"

#include "core/log.h"
#include "core/snapshot.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#define HEALTH_TICK_MS 100
/* checks[] holds the health check of backend uid at [uid] and its load
 * agent poll at [SNAPSHOT_UIDS_MAX + uid]. */
#define CHECK_SLOTS (2 * SNAPSHOT_UIDS_MAX)

enum check_phase {
	CHECK_IDLE = 0,
	CHECK_CONNECTING,
	CHECK_HANDSHAKE, /* TLS pools: HTTP checks and agent polls speak TLS */
	CHECK_SENDING,
	CHECK_READING
};

struct check {
	uint32_t uid;
	bool agent;   /* a load-agent poll, not a health check */
	bool present; /* still in the current snapshot */
	bool down;
	uint8_t phase;
	int fd;
	struct tls_client *tls; /* the pool's: use only right after sync_checks */
	void *ssl;              /* the check's TLS session, or NULL */
	short want;             /* poll events a TLS step waits for */
	char name[64];
	char pool[CONFIG_NAME_MAX];
	struct sockaddr_storage addr;
	socklen_t addr_len;
	struct config_health cfg;
	struct lb_live *live;
	uint64_t due_ms, deadline_ms;
	uint32_t ok, fails;
	char req[1024];
	size_t req_len, req_sent;
	char resp[512];
	int32_t result; /* what the admin API shows: HTTP status, 1 tcp ok, -errno */
	size_t resp_len;
};

static struct check **checks; /* [CHECK_SLOTS] */
static pthread_t checker;
static atomic_bool stop_checker;
static bool started;

static void close_check(struct check *c)
{
	if (c->ssl != NULL)
		tls_sock_free(c->ssl);
	c->ssl = NULL;
	c->want = 0;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->phase = CHECK_IDLE;
}

/* verdict records one check's outcome and flips the backend's state after
 * `rise` successes or `fall` failures in a row. */
static void verdict(struct check *c, bool ok, const char *reason, uint64_t now)
{
	close_check(c);
	if (c->agent) {
		/* A load agent that cannot be reached says nothing about the
		 * backend's health: keep its last report, try again later. */
		c->due_ms = now + c->cfg.interval_ms;
		rlb_log(LOG_DEBUG, "agent of %s (pool %s): %s", c->name, c->pool,
		        reason != NULL ? reason : "no answer");
		return;
	}
	atomic_store_explicit(&c->live[c->uid].last_check, c->result, memory_order_relaxed);
	c->due_ms = now + c->cfg.interval_ms;
	if (ok) {
		c->fails = 0;
		c->ok++;
		if (c->down && c->ok >= c->cfg.rise) {
			c->down = false;
			atomic_store_explicit(&c->live[c->uid].up_since_ms, now,
			                      memory_order_relaxed);
			atomic_fetch_and_explicit(&c->live[c->uid].down, ~LB_DOWN_ACTIVE,
			                          memory_order_relaxed);
			rlb_log(LOG_WARN, "backend %s (pool %s) is up", c->name, c->pool);
		}
		return;
	}
	c->ok = 0;
	c->fails++;
	if (!c->down && c->fails >= c->cfg.fall) {
		c->down = true;
		atomic_fetch_or_explicit(&c->live[c->uid].down, LB_DOWN_ACTIVE,
		                         memory_order_relaxed);
		rlb_log(LOG_WARN, "backend %s (pool %s) is down: %s", c->name, c->pool, reason);
	}
}

static bool status_expected(const struct config_health *h, int status)
{
	for (uint32_t i = 0; i < h->num_expect; i++)
		if (status >= h->expect_lo[i] && status <= h->expect_hi[i])
			return true;
	return false;
}

static void start_check(struct check *c, uint64_t now)
{
	int fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		c->result = -errno;
		verdict(c, false, "socket() failed", now);
		return;
	}
	c->fd = fd;
	c->deadline_ms = now + c->cfg.timeout_ms;
	c->resp_len = 0;
	c->req_sent = 0;
	c->req_len = 0;
	if (c->cfg.type == CONFIG_CHECK_HTTP) {
		int n = snprintf(c->req, sizeof(c->req),
		                 "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ringlb-health\r\n"
		                 "Connection: close\r\n\r\n",
		                 c->cfg.method[0] ? c->cfg.method : "GET", c->cfg.path,
		                 c->cfg.host[0] ? c->cfg.host : c->name);

		c->req_len = n > 0 && (size_t)n < sizeof(c->req) ? (size_t)n : 0;
	}
	/* The TLS session is made now, while c->tls (the snapshot's) is sure to
	 * be alive: the checker goes offline between here and the handshake. */
	if (c->tls != NULL && c->cfg.type == CONFIG_CHECK_HTTP) {
		c->ssl = tls_sock_new(c->tls, fd, (struct sockaddr *)&c->addr);
		if (c->ssl == NULL) {
			c->result = -ENOMEM;
			verdict(c, false, "out of memory for TLS", now);
			return;
		}
	}
	if (connect(fd, (struct sockaddr *)&c->addr, c->addr_len) == 0 || errno == EINPROGRESS) {
		c->phase = CHECK_CONNECTING;
		return;
	}
	c->result = -errno;
	verdict(c, false, strerror(errno), now);
}

/* agent_verdict reads a load agent's answer (documented in the reference):
 * a body with "weight=N%" (or "weight=N"), the share of its weight the
 * backend offers, or "cpu=X mem=Y" (fractions, or percentages with %),
 * whose busier resource decides: capacity = 1 - max(cpu, mem). The result
 * goes to lb_live.agent_permille (at least 1 per mille). A poll that fails
 * keeps the last report. */
static void agent_verdict(struct check *c, uint64_t now)
{
	const char *body = strstr(c->resp, "\r\n\r\n");
	int status = 0;
	double weight = -1, cpu = -1, mem = -1;
	long permille;

	close_check(c);
	c->due_ms = now + c->cfg.interval_ms;
	if (sscanf(c->resp, "HTTP/1.%*1[01] %3d", &status) != 1 || status < 200 || status > 299 ||
	    body == NULL) {
		rlb_log(LOG_DEBUG, "agent of %s (pool %s): no usable answer", c->name, c->pool);
		return;
	}
	for (const char *p = body + 4; *p != '\0'; p++) {
		double v;
		char pct = 0;
		int used = 0;

		if (sscanf(p, "weight=%lf%n%c", &v, &used, &pct) >= 1 && used > 0)
			weight = pct == '%' || v > 1 ? v / 100.0 : v;
		else if (sscanf(p, "cpu=%lf%n%c", &v, &used, &pct) >= 1 && used > 0)
			cpu = pct == '%' || v > 1 ? v / 100.0 : v;
		else if (sscanf(p, "mem=%lf%n%c", &v, &used, &pct) >= 1 && used > 0)
			mem = pct == '%' || v > 1 ? v / 100.0 : v;
		else
			continue;
		p += used > 0 ? used - 1 : 0;
	}
	if (weight < 0 && cpu < 0 && mem < 0) {
		rlb_log(LOG_DEBUG, "agent of %s (pool %s): nothing to read", c->name, c->pool);
		return;
	}
	if (weight < 0)
		weight = 1.0 - (cpu > mem ? cpu : mem);
	permille = (long)(weight * 1000.0 + 0.5);
	permille = permille < 1 ? 1 : permille > 1000 ? 1000 : permille;
	atomic_store_explicit(&c->live[c->uid].agent_permille, (uint32_t)permille,
	                      memory_order_relaxed);
}

/* step advances a check whose socket is ready. */
/* tls_step runs one TLS operation of a check. Returns 1 with *out_n set
 * when it completed (bytes; 0 at the end of the response), 0 when the
 * check must wait for c->want or has failed (the verdict is given). */
static int tls_step(struct check *c, enum tls_sock_op op, void *buf, size_t len, uint64_t now,
                    ssize_t *out_n)
{
	char reason[96];
	int r = c->ssl != NULL ? tls_sock_io(c->ssl, op, buf, len) : TLS_SOCK_ERROR;

	c->want = 0;
	if (r == TLS_SOCK_WANT_READ || r == TLS_SOCK_WANT_WRITE) {
		c->want = r == TLS_SOCK_WANT_READ ? POLLIN : POLLOUT;
		return 0;
	}
	if (r == TLS_SOCK_ERROR && (op != TLS_SOCK_READ || c->ssl == NULL)) {
		c->result = -EPROTO;
		snprintf(reason, sizeof(reason), "TLS: %s",
		         c->ssl != NULL ? tls_sock_error(c->ssl) : "out of memory");
		verdict(c, false, reason, now);
		return 0;
	}
	if (op == TLS_SOCK_HANDSHAKE)
		c->phase = CHECK_SENDING;
	*out_n = r < 0 ? -1 : r;
	return 1;
}

static void step(struct check *c, short revents, uint64_t now)
{
	char reason[96];
	int err = 0;
	socklen_t len = sizeof(err);
	ssize_t n;

	if (c->phase == CHECK_CONNECTING) {
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0 || (revents & (POLLERR | POLLHUP)) != 0) {
			c->result = -(err ? err : ECONNREFUSED);
			snprintf(reason, sizeof(reason), "connect: %s",
			         strerror(err ? err : ECONNREFUSED));
			verdict(c, false, reason, now);
			return;
		}
		if (c->cfg.type == CONFIG_CHECK_TCP) {
			c->result = 1;
			verdict(c, true, NULL, now);
			return;
		}
		c->phase = c->ssl != NULL ? CHECK_HANDSHAKE : CHECK_SENDING;
	}
	if (c->phase == CHECK_HANDSHAKE && !tls_step(c, TLS_SOCK_HANDSHAKE, NULL, 0, now, &n))
		return;
	if (c->phase == CHECK_SENDING) {
		if (c->ssl != NULL) {
			if (!tls_step(c, TLS_SOCK_WRITE, c->req + c->req_sent,
			              c->req_len - c->req_sent, now, &n))
				return;
		} else {
			n = send(c->fd, c->req + c->req_sent, c->req_len - c->req_sent,
			         MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN) {
				c->result = -errno;
				verdict(c, false, "send failed", now);
				return;
			}
		}
		c->req_sent += n > 0 ? (size_t)n : 0;
		if (c->req_sent == c->req_len)
			c->phase = CHECK_READING;
		return;
	}
	if (c->ssl != NULL) {
		if (!tls_step(c, TLS_SOCK_READ, c->resp + c->resp_len,
		              sizeof(c->resp) - 1 - c->resp_len, now, &n))
			return;
	} else {
		n = recv(c->fd, c->resp + c->resp_len, sizeof(c->resp) - 1 - c->resp_len, 0);
		if (n < 0 && errno == EAGAIN)
			return;
	}
	if (n > 0)
		c->resp_len += (size_t)n;
	c->resp[c->resp_len] = '\0';
	if (c->agent) {
		if (n <= 0 || c->resp_len == sizeof(c->resp) - 1)
			agent_verdict(c, now);
		return;
	}
	if (c->resp_len >= 12 || n <= 0) {
		int status = 0;

		if (sscanf(c->resp, "HTTP/1.%*1[01] %3d", &status) != 1) {
			c->result = -EPROTO;
			verdict(c, false,
			        n <= 0 ? "closed without a response" : "not an HTTP response", now);
			return;
		}
		snprintf(reason, sizeof(reason), "status %d", status);
		c->result = status;
		verdict(c, status_expected(&c->cfg, status), reason, now);
	}
}

/* keep_check makes sure backend `b` of `sp` has its check (or agent poll)
 * and refreshes what it copies from the snapshot. */
static void keep_check(const struct snap_pool *sp, const struct lb_backend *b,
                       const struct config_health *own, bool agent, uint64_t now)
{
	uint32_t slot = agent ? SNAPSHOT_UIDS_MAX + b->uid : b->uid;
	struct check *c = checks[slot];

	if (c == NULL) {
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			return;
		c->fd = -1;
		c->uid = b->uid;
		c->agent = agent;
		c->due_ms = now;
		checks[slot] = c;
	}
	c->present = true;
	if (agent) {
		memset(&c->cfg, 0, sizeof(c->cfg));
		c->cfg.type = CONFIG_CHECK_HTTP;
		memcpy(c->cfg.path, sp->agent.path, sizeof(c->cfg.path));
		c->cfg.interval_ms = sp->agent.interval_ms;
		c->cfg.timeout_ms = sp->agent.timeout_ms;
	} else {
		c->cfg = own != NULL ? *own : sp->health;
	}
	c->live = sp->lb.live;
	c->tls = sp->tls;
	c->addr = b->addr;
	c->addr_len = b->addr_len;
	snprintf(c->name, sizeof(c->name), "%s", b->name);
	snprintf(c->pool, sizeof(c->pool), "%s", sp->name);
}

/* sync_checks makes the check table follow the current snapshot. */
static void sync_checks(uint64_t now)
{
	const struct snapshot *snap = snapshot_current();

	for (uint32_t u = 0; u < CHECK_SLOTS; u++)
		if (checks[u] != NULL)
			checks[u]->present = false;
	for (uint32_t p = 0; snap != NULL && p < snap->num_pools; p++) {
		const struct snap_pool *sp = &snap->pools[p];

		if (sp->lb.live == NULL)
			continue;
		for (uint32_t i = 0; i < sp->lb.num_backends; i++) {
			const struct config_health *own =
			        sp->backend_health != NULL ? &sp->backend_health[i] : NULL;

			if ((own != NULL && own->enabled) || sp->health.enabled)
				keep_check(sp, &sp->lb.backends[i],
				           own != NULL && own->enabled ? own : NULL, false, now);
			if (sp->agent.enabled)
				keep_check(sp, &sp->lb.backends[i], NULL, true, now);
		}
	}
	for (uint32_t u = 0; u < CHECK_SLOTS; u++) {
		struct check *c = checks[u];

		if (c == NULL || c->present)
			continue;
		/* No longer checked: whatever it was, it counts as up again (and
		 * without an agent, at full capacity). */
		close_check(c);
		if (c->live != NULL && !c->agent)
			atomic_fetch_and_explicit(&c->live[c->uid].down, ~LB_DOWN_ACTIVE,
			                          memory_order_relaxed);
		if (c->live != NULL && c->agent)
			atomic_store_explicit(&c->live[c->uid].agent_permille, 0,
			                      memory_order_relaxed);
		free(c);
		checks[u] = NULL;
	}
}

/* readmit ends passive ejections whose back-off is over. A pool with
 * active checks takes the backend back only once its latest check passed
 * ("it returns through active checks"); without them, the back-off alone
 * decides. */
static void readmit(uint64_t now)
{
	const struct snapshot *snap = snapshot_current();

	for (uint32_t p = 0; snap != NULL && p < snap->num_pools; p++) {
		const struct snap_pool *sp = &snap->pools[p];

		if (sp->passive.failures == 0 || sp->lb.live == NULL)
			continue;
		for (uint32_t i = 0; i < sp->lb.num_backends; i++) {
			const struct lb_backend *b = &sp->lb.backends[i];
			struct lb_live *l = &sp->lb.live[b->uid];
			const struct check *c = checks[b->uid];

			if ((atomic_load(&l->down) & LB_DOWN_PASSIVE) == 0 ||
			    now < atomic_load(&l->eject_until_ms))
				continue;
			if (sp->health.enabled && (c == NULL || c->fails > 0 || c->ok == 0))
				continue;
			atomic_store(&l->up_since_ms, now);
			atomic_fetch_and(&l->down, ~LB_DOWN_PASSIVE);
			atomic_store(&l->fails, 0);
			rlb_log(LOG_WARN, "backend %s (pool %s) is back after its ejection",
			        b->name, sp->name);
		}
	}
}

static void check_turn(struct pollfd *pfds, struct check **polled)
{
	uint64_t now = rlb_now_ms();
	int timeout = HEALTH_TICK_MS;
	nfds_t n = 0;

	sync_checks(now);
	readmit(now);
	for (uint32_t u = 0; u < CHECK_SLOTS; u++) {
		struct check *c = checks[u];

		if (c == NULL)
			continue;
		if (c->phase == CHECK_IDLE && now >= c->due_ms)
			start_check(c, now);
		if (c->phase == CHECK_IDLE)
			continue;
		pfds[n].fd = c->fd;
		pfds[n].events = c->want != 0                ? c->want
		                 : c->phase == CHECK_READING ? POLLIN
		                                             : POLLOUT;
		pfds[n].revents = 0;
		polled[n++] = c;
	}
	rcu_thread_offline(); /* nothing from the snapshot is held across the wait */
	if (n > 0)
		poll(pfds, n, timeout);
	else
		usleep((useconds_t)timeout * 1000);
	rcu_thread_online();
	now = rlb_now_ms();
	for (nfds_t i = 0; i < n; i++) {
		struct check *c = polled[i];
		char reason[64];

		if (pfds[i].revents != 0)
			step(c, pfds[i].revents, now);
		if (c->phase != CHECK_IDLE && now >= c->deadline_ms) {
			snprintf(reason, sizeof(reason), "timeout after %llums",
			         (unsigned long long)c->cfg.timeout_ms);
			c->result = -ETIMEDOUT;
			verdict(c, false, reason, now);
		}
	}
}

static void *checker_main(void *arg)
{
	struct pollfd *pfds = calloc(CHECK_SLOTS, sizeof(*pfds));
	struct check **polled = calloc(CHECK_SLOTS, sizeof(*polled));

	(void)arg;
	rcu_register_thread();
	while (pfds != NULL && polled != NULL && !atomic_load(&stop_checker)) {
		check_turn(pfds, polled);
		rcu_quiescent_state();
	}
	for (uint32_t u = 0; u < CHECK_SLOTS; u++) {
		if (checks[u] != NULL)
			close_check(checks[u]);
		free(checks[u]);
		checks[u] = NULL;
	}
	rcu_unregister_thread();
	free(pfds);
	free(polled);
	return NULL;
}

int health_start(void)
{
	checks = calloc(CHECK_SLOTS, sizeof(*checks));
	if (checks == NULL)
		return 0;
	atomic_store(&stop_checker, false);
	if (pthread_create(&checker, NULL, checker_main, NULL) != 0) {
		free(checks);
		checks = NULL;
		return 0;
	}
	started = true;
	return 1;
}

void health_stop(void)
{
	if (!started)
		return;
	atomic_store(&stop_checker, true);
	pthread_join(checker, NULL);
	started = false;
	free(checks);
	checks = NULL;
}
