/* core/shard.c — the shard thread: set-up, the event loop, accept, the
 * dispatch of completions, timers, and graceful stop.
 *
 * One loop turn:
 *   1. go RCU-offline, submit everything prepared and wait in the kernel
 *      (ring_wait: one io_uring_enter), come back online;
 *   2. reap every ready completion in batches and dispatch each by the
 *      operation in its user_data, dropping those whose generation is stale;
 *   3. advance the timer wheel;
 *   4. re-arm receives that starved for buffers, and accepts that stopped;
 *   5. check for a stop request and the progress of draining.
 * Going offline before sleeping is what lets the control thread's
 * synchronize_rcu() complete while shards are idle.
 */
#define _LGPL_SOURCE /* inline the QSBR fast paths */
#include "core/shard.h"

#include "core/caching.h"
#include "core/compressing.h"
#include "core/filter.h"
#include "core/h2.h"
#include "core/log.h"
#include "core/proxy.h"
#include "core/snapshot.h"

#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#define TIMER_TICK_MS 10
#define REAP_BATCH    256
#define HEAD_SLACK    1024 /* head buffers: the largest head plus what ringlb adds */

static atomic_bool stop_requested;
static atomic_uint shards_running;

struct shard_boot {
	struct shard *s;
	_Atomic int state; /* 0 starting, 1 running, -1 failed */
};

void shard_request_stop(void)
{
	atomic_store(&stop_requested, true);
}

bool shard_all_exited(void)
{
	return atomic_load(&shards_running) == 0;
}

/* ---- access-log queue (single producer, single consumer) ---- */

void shard_alog_push(struct shard *s, const char *line, size_t len)
{
	struct alog_queue *q = &s->alog;
	uint32_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&q->tail, memory_order_acquire);

	if (q->lines == NULL)
		return;
	if (h - t > q->mask) {
		s->stats.log_dropped++; /* never block the shard on the log */
		return;
	}
	memcpy(q->lines[h & q->mask], line, len);
	q->lines[h & q->mask][len] = '\0';
	/* Release: the line's bytes are visible before the new head. */
	atomic_store_explicit(&q->head, h + 1, memory_order_release);
}

size_t shard_alog_pop(struct shard *s, char *out, size_t cap)
{
	struct alog_queue *q = &s->alog;
	uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
	uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
	size_t n;

	if (q->lines == NULL || t == h)
		return 0;
	n = strnlen(q->lines[t & q->mask], ALOG_LINE_MAX);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, q->lines[t & q->mask], n);
	out[n] = '\0';
	atomic_store_explicit(&q->tail, t + 1, memory_order_release);
	return n;
}

/* ---- set-up ---- */

static void arm_accept(struct shard *s, uint32_t idx);

/* open_listener binds one listening socket. It runs on the main thread,
 * before privileges are dropped, so that ports below 1024 can be bound. */
static int open_listener(const struct config_listener *l, char *err, size_t err_len)
{
	int one = 1;
	int fd = socket(l->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(err, err_len, "listen %s: socket: %s", l->addr.text, strerror(errno));
		return -1;
	}
	/* SO_REUSEPORT gives each shard its own accept queue: the kernel
	 * spreads new connections across shards without a shared lock. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (l->addr.ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&l->addr.ss, l->addr.len) < 0 ||
	    listen(fd, (int)l->backlog) < 0) {
		snprintf(err, err_len, "listen %s: %s", l->addr.text, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int alloc_slabs(struct shard *s)
{
	const struct config *cfg = s->cfg;
	uint32_t nc = cfg->limits.conns_max, nu = cfg->limits.upstream_conns_max;

	s->conns = calloc(nc, sizeof(*s->conns));
	s->conn_free = calloc(nc, sizeof(*s->conn_free));
	s->ups = calloc(nu, sizeof(*s->ups));
	s->up_free = calloc(nu, sizeof(*s->up_free));
	s->idle = calloc(SNAPSHOT_UIDS_MAX, sizeof(*s->idle));
	s->up_sessions = calloc(SNAPSHOT_UIDS_MAX, sizeof(*s->up_sessions));
	s->up_session_ver = calloc(SNAPSHOT_UIDS_MAX, sizeof(*s->up_session_ver));
	s->up_pump_cap = nu;
	s->up_pump = calloc(nu, sizeof(*s->up_pump));
	s->flush_cap = nc;
	s->flush = calloc(nc, sizeof(*s->flush));
	s->alog.lines = cfg->access_log.enabled
	                        ? calloc(cfg->access_log.queue_entries, ALOG_LINE_MAX)
	                        : NULL;
	s->alog.mask = cfg->access_log.queue_entries - 1;
	if (s->conns == NULL || s->conn_free == NULL || s->ups == NULL || s->up_free == NULL ||
	    s->idle == NULL || s->up_sessions == NULL || s->up_session_ver == NULL ||
	    s->up_pump == NULL || s->flush == NULL ||
	    (cfg->access_log.enabled && s->alog.lines == NULL))
		return 0;
	s->filter_scratch = filter_scratch_new();
	if (s->filter_scratch == NULL)
		return 0;
	/* Free lists hand out low slots first, keeping touched memory small. */
	for (uint32_t i = 0; i < nc; i++) {
		s->conns[i].fd = -1;
		s->conn_free[i] = nc - 1 - i;
	}
	s->conn_nfree = nc;
	for (uint32_t i = 0; i < nu; i++) {
		s->ups[i].fd = -1;
		s->up_free[i] = nu - 1 - i;
	}
	s->up_nfree = nu;
	return 1;
}

static void free_slabs(struct shard *s)
{
	free(s->conns);
	s->conns = NULL;
	free(s->conn_free);
	s->conn_free = NULL;
	free(s->ups);
	s->ups = NULL;
	free(s->up_free);
	s->up_free = NULL;
	free(s->idle);
	s->idle = NULL;
	if (s->up_sessions != NULL)
		for (uint32_t i = 0; i < SNAPSHOT_UIDS_MAX; i++)
			tls_session_free(s->up_sessions[i]);
	free(s->up_sessions);
	s->up_sessions = NULL;
	free(s->up_session_ver);
	s->up_session_ver = NULL;
	free(s->up_pump);
	s->up_pump = NULL;
	free(s->flush);
	s->flush = NULL;
	free(s->alog.lines);
	s->alog.lines = NULL;
	filter_scratch_free(s->filter_scratch);
	s->filter_scratch = NULL;
}

static void set_limits(struct shard *s)
{
	const struct config_limits *l = &s->cfg->limits;

	s->req_limits.line_bytes_max = l->request_line_bytes_max;
	s->req_limits.head_bytes_max = l->header_bytes_max;
	s->req_limits.headers_max = l->headers_max;
	s->resp_limits.line_bytes_max = l->response_header_bytes_max;
	s->resp_limits.head_bytes_max = l->response_header_bytes_max;
	s->resp_limits.headers_max = l->headers_max;
	s->chunk_limits.line_bytes_max = 4096;
	s->chunk_limits.trailer_bytes_max = l->header_bytes_max;
}

/* setup_tls maps the TLS buffers and fills in each listener's response
 * options. The buffers are mapped lazily and always: a reload may add a
 * pool with TLS backends. */
static int setup_tls(struct shard *s)
{
	const struct config *cfg = s->cfg;

	for (size_t i = 0; i < cfg->num_listeners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		struct shard_listener *sl = &s->listeners[i];
		int n = 0;

		sl->redirect_port = l->redirect_https;
		if (l->tls != NULL && l->tls->hsts_ms > 0)
			n = snprintf(sl->hsts, sizeof(sl->hsts),
			             "Strict-Transport-Security: max-age=%llu%s\r\n",
			             (unsigned long long)(l->tls->hsts_ms / 1000),
			             l->tls->hsts_subdomains ? "; includeSubDomains" : "");
		sl->hsts_len = n > 0 && (size_t)n < sizeof(sl->hsts) ? (uint32_t)n : 0;
	}
	if (!mempool_init(&s->tls_pool, cfg->buffers.tls_count, (uint32_t)cfg->buffers.size)) {
		snprintf(s->err, sizeof(s->err),
		         "out of memory for TLS buffers; lower buffers.tls_count");
		return 0;
	}
	return 1;
}

static int shard_setup(struct shard *s)
{
	const struct config *cfg = s->cfg;
	size_t head = cfg->limits.header_bytes_max > cfg->limits.response_header_bytes_max
	                      ? cfg->limits.header_bytes_max
	                      : cfg->limits.response_header_bytes_max;

	s->now_ms = rlb_now_ms();
	if (getrandom(&s->request_salt, sizeof(s->request_salt), 0) != sizeof(s->request_salt))
		s->request_salt = s->now_ms * 0x9e3779b97f4a7c15ULL ^ (uint64_t)s->id;
	timer_wheel_init(&s->wheel, s->now_ms, TIMER_TICK_MS);
	set_limits(s);
	/* The listening sockets are bound already (shard_bind_all); the ring
	 * is made here, after the privilege drop, so it never holds root. */
	if (!ring_init(&s->ring, cfg->buffers.ring_entries, cfg->buffers.count,
	               (uint32_t)cfg->buffers.size, s->err, sizeof(s->err)))
		return 0;
	/* Head buffers: at most two per client connection are in use at once
	 * (the request head going upstream, the response head going to the
	 * client): conns_max * 2. */
	if (!hpool_init(&s->heads, cfg->limits.conns_max * 2, (uint32_t)(head + HEAD_SLACK)) ||
	    !alloc_slabs(s)) {
		snprintf(s->err, sizeof(s->err),
		         "out of memory for connection slabs; lower "
		         "limits.conns_max");
		return 0;
	}
	if (!setup_tls(s))
		return 0;
	zx_shard_init(s);
	if (!h2_shard_init(s)) {
		snprintf(s->err, sizeof(s->err), "out of memory for HTTP/2 scratch space");
		return 0;
	}
	for (uint32_t i = 0; i < s->num_listeners; i++)
		arm_accept(s, i);
	return 1;
}

static void close_waiting(struct shard *s)
{
	while (s->num_waiting > 0) {
		close(s->waiting[s->waiting_head]);
		s->waiting_head = (s->waiting_head + 1) % ACCEPT_WAITING_MAX;
		s->num_waiting--;
	}
}

static void close_listeners(struct shard *s)
{
	for (uint32_t i = 0; i < CONFIG_LISTENERS_MAX; i++) {
		if (s->listen_fds[i] >= 0)
			close(s->listen_fds[i]);
		s->listen_fds[i] = -1;
	}
}

static void shard_teardown(struct shard *s)
{
	close_waiting(s);
	close_listeners(s);
	if (s->conns != NULL)
		for (uint32_t i = 0; i < s->cfg->limits.conns_max; i++) {
			if (s->conns[i].fd >= 0)
				close(s->conns[i].fd);
			tls_free(&s->conns[i].tls);
		}
	if (s->ups != NULL)
		for (uint32_t i = 0; i < s->cfg->limits.upstream_conns_max; i++) {
			if (s->ups[i].fd >= 0)
				close(s->ups[i].fd);
			tls_free(&s->ups[i].tls);
		}
	ring_cleanup(&s->ring);
	hpool_cleanup(&s->heads);
	mempool_cleanup(&s->tls_pool);
	zx_shard_free(s);
	h2_shard_free(s);
	free_slabs(s);
}

/* ---- dispatch ---- */

static void arm_accept(struct shard *s, uint32_t idx)
{
	ring_accept_multishot(&s->ring, s->listen_fds[idx], ring_ud(OP_ACCEPT, idx, 0));
	s->accept_on[idx] = true;
}

/* pause_accept stops taking connections when the slab is full, as nginx
 * and HAProxy do at their connection limits: new clients wait in the
 * listen backlog (or reach another shard) instead of being reset. */
static void pause_accept(struct shard *s)
{
	s->accept_paused = true;
	for (uint32_t i = 0; i < s->num_listeners; i++)
		if (s->accept_on[i])
			ring_cancel(&s->ring, ring_ud(OP_ACCEPT, i, 0), ring_ud(OP_ACANCEL, i, 0));
	rlb_log(LOG_WARN, "shard %u: %u connections: limits.conns_max reached, not accepting",
	        s->id, s->cfg->limits.conns_max);
}

/* resume_accept admits the connections that were waiting for a slot, then
 * re-arms accepting once slots are free again (at the end of a loop turn,
 * so one freed slot does not cost a cancel/re-arm cycle each). */
static void resume_accept(struct shard *s)
{
	while (s->num_waiting > 0 && s->conn_nfree > 0) {
		int fd = s->waiting[s->waiting_head];
		uint32_t li = s->waiting_listener[s->waiting_head];

		s->waiting_head = (s->waiting_head + 1) % ACCEPT_WAITING_MAX;
		s->num_waiting--;
		if (!conn_open(s, fd, li))
			close(fd);
	}
	if (!s->accept_paused || s->conn_nfree == 0 || s->draining || s->num_waiting > 0)
		return;
	s->accept_paused = false;
	for (uint32_t i = 0; i < s->num_listeners; i++)
		if (!s->accept_on[i])
			arm_accept(s, i);
}

/* park keeps a connection the kernel accepted after the slab filled (its
 * accept completion was already on the way when accepting paused) until a
 * slot frees, so the connection limit never turns into resets. Beyond
 * ACCEPT_WAITING_MAX it is refused. */
static void park(struct shard *s, int fd, uint32_t listener)
{
	if (s->num_waiting == ACCEPT_WAITING_MAX || s->draining) {
		close(fd);
		s->stats.refused_full++;
		return;
	}
	s->waiting[(s->waiting_head + s->num_waiting) % ACCEPT_WAITING_MAX] = fd;
	s->waiting_listener[(s->waiting_head + s->num_waiting) % ACCEPT_WAITING_MAX] =
	        (uint8_t)listener;
	s->num_waiting++;
}

static void on_accept(struct shard *s, uint32_t idx, const struct ring_cqe *cqe)
{
	if (cqe->res >= 0) {
		if (s->conn_nfree == 0 || s->num_waiting > 0 || s->draining) {
			park(s, cqe->res, idx);
		} else if (conn_open(s, cqe->res, idx)) {
			s->stats.accepted++;
		}
		if (s->conn_nfree == 0 && !s->accept_paused && !s->draining)
			pause_accept(s);
	} else if (cqe->res != -ECANCELED && cqe->res != -EINVAL) {
		rlb_log(LOG_WARN, "shard %u: accept on %s: %s%s", s->id,
		        s->cfg->listeners[idx].addr.text, strerror(-cqe->res),
		        cqe->res == -EMFILE || cqe->res == -ENFILE
		                ? " (raise the open-files limit: ulimit -n)"
		                : "");
	}
	if (ring_cqe_more(cqe) || idx >= s->num_listeners)
		return;
	s->accept_on[idx] = false;
	if (s->draining || s->accept_paused)
		return;
	if (cqe->res == -EMFILE || cqe->res == -ENFILE)
		usleep(10000); /* let connections close before trying again */
	arm_accept(s, idx);
}

static void drop_stale(struct shard *s, const struct ring_cqe *cqe, uint16_t group)
{
	s->stats.stale_cqes++;
	if (ring_cqe_has_buffer(cqe)) {
		struct bufpool *p = ring_pool(&s->ring, group);

		ring_note_buffer(&s->ring, group);
		p->recycle(p, ring_cqe_bid(cqe));
	}
}

static void dispatch(struct shard *s, const struct ring_cqe *cqe)
{
	uint8_t op = ring_ud_op(cqe->ud);
	uint32_t slot = ring_ud_slot(cqe->ud), gen = ring_ud_gen(cqe->ud);

	if (op == OP_ACCEPT) {
		on_accept(s, slot, cqe);
		return;
	}
	if (op == OP_ACANCEL || op == OP_WAKE)
		return; /* a doorbell: caching_run looks at the inboxes every turn */
	if (op >= OP_CRECV && op <= OP_CCANCEL) {
		struct conn *c = slot < s->cfg->limits.conns_max ? &s->conns[slot] : NULL;

		if (c == NULL || c->gen != gen || c->state == CONN_FREE) {
			drop_stale(s, cqe, RING_GROUP_CLIENT);
			return;
		}
		if (op == OP_CRECV)
			conn_on_recv(s, c, cqe);
		else if (op == OP_CSEND)
			conn_on_send(s, c, cqe);
		else
			conn_on_cancel(s, c);
		return;
	}
	struct upconn *u = slot < s->cfg->limits.upstream_conns_max ? &s->ups[slot] : NULL;

	if (u == NULL || u->gen != gen || u->state == UP_FREE) {
		drop_stale(s, cqe, RING_GROUP_UPSTREAM);
		return;
	}
	switch (op) {
	case OP_URECV:
		up_on_recv(s, u, cqe);
		break;
	case OP_USEND:
		up_on_send(s, u, cqe);
		break;
	case OP_UCONNECT:
		up_on_connect(s, u, cqe);
		break;
	case OP_UCANCEL:
		up_on_cancel(s, u);
		break;
	default:
		RLB_ASSERT(!"unknown operation in user_data");
	}
}

/* A timer belongs to a client connection or an upstream one; which is told
 * by the slab its address falls in. */
static void on_timer(struct timer *t, void *arg)
{
	struct shard *s = arg;
	const char *p = (const char *)t;

	if (p >= (const char *)s->conns &&
	    p < (const char *)(s->conns + s->cfg->limits.conns_max)) {
		struct conn *c = &s->conns[(size_t)(p - (const char *)s->conns) / sizeof(*c)];

		conn_on_timer(s, c);
		return;
	}
	RLB_ASSERT(p >= (const char *)s->ups);
	up_on_timer(s, &s->ups[(size_t)(p - (const char *)s->ups) / sizeof(struct upconn)]);
}

static void restart_starved(struct shard *s)
{
	while (s->starved != NULL && s->ring.groups[RING_GROUP_CLIENT].avail > 0) {
		struct conn *c = s->starved;

		s->starved = c->starved_next;
		c->starved_next = NULL;
		if (c->state != CONN_FREE && c->state != CONN_CLOSING && c->starved)
			conn_restart_recv(s, c);
		else
			c->starved = false;
	}
	/* TLS buffers came back: retry every connection that waited for one
	 * (each takes what it can and waits again if they run out). */
	if (s->tls_pool.freed && s->tls_starved != NULL) {
		struct conn *list = s->tls_starved;

		s->tls_starved = NULL;
		while (list != NULL) {
			struct conn *c = list;

			list = c->tls_starved_next;
			c->tls_starved_next = NULL;
			c->tls_starved = false;
			if (c->state != CONN_FREE && c->state != CONN_CLOSING)
				conn_tls_resume(s, c);
		}
	}
	s->tls_pool.freed = false;
	while (s->up_starved != NULL && s->ring.groups[RING_GROUP_UPSTREAM].avail > 0) {
		struct upconn *u = s->up_starved;

		s->up_starved = u->starved_next;
		u->starved_next = NULL;
		if (u->state != UP_FREE && u->state != UP_CLOSING && u->starved)
			up_restart_recv(s, u);
		else
			u->starved = false;
	}
}

/* ---- graceful stop ---- */

static void begin_drain(struct shard *s)
{
	s->draining = true;
	s->drain_deadline_ms = s->now_ms + s->cfg->timeouts.drain_ms;
	for (uint32_t i = 0; i < s->num_listeners; i++)
		shutdown(s->listen_fds[i], SHUT_RDWR); /* ends the multishot accept */
	close_waiting(s);
	for (uint32_t i = 0; i < s->cfg->limits.conns_max; i++)
		if (s->conns[i].state != CONN_FREE)
			conn_drain_idle(s, &s->conns[i]);
	up_close_idle(s);
}

static bool drained(const struct shard *s)
{
	return s->conns_active == 0 && s->up_nfree == s->cfg->limits.upstream_conns_max;
}

static void force_close_all(struct shard *s)
{
	for (uint32_t i = 0; i < s->cfg->limits.conns_max; i++)
		if (s->conns[i].state != CONN_FREE)
			conn_abort(s, &s->conns[i]);
	for (uint32_t i = 0; i < s->cfg->limits.upstream_conns_max; i++)
		if (s->ups[i].state != UP_FREE)
			up_close(s, &s->ups[i]);
}

/* ---- the loop ---- */

static void shard_loop(struct shard *s)
{
	struct ring_cqe cqes[REAP_BATCH];
	bool forced = false;

	for (;;) {
		uint32_t n;

		rcu_thread_offline();
		ring_wait(&s->ring, s->wheel.armed > 0 ? TIMER_TICK_MS : 100);
		rcu_thread_online();
		s->now_ms = rlb_now_ms();
		do {
			n = ring_reap(&s->ring, cqes, REAP_BATCH);
			for (uint32_t i = 0; i < n; i++)
				dispatch(s, &cqes[i]);
		} while (n == REAP_BATCH);
		timer_wheel_advance(&s->wheel, s->now_ms, on_timer, s);
		restart_starved(s);
		caching_run(s); /* objects to insert, purges, waiters to re-check */
		resume_accept(s);
		conn_run_queues(s);
		up_run_pumps(s);
		conn_flush_all(s); /* after timers too: a 408 page is a send */

		if (!s->draining && atomic_load_explicit(&stop_requested, memory_order_relaxed))
			begin_drain(s);
		if (!s->draining)
			continue;
		if (drained(s))
			break;
		if (!forced && s->now_ms >= s->drain_deadline_ms) {
			rlb_log(LOG_WARN, "shard %u: drain timeout: closing %u connections", s->id,
			        s->conns_active);
			force_close_all(s);
			forced = true;
		} else if (forced && s->now_ms >= s->drain_deadline_ms + 2000) {
			break; /* operations that never completed die with the ring */
		}
	}
}

static void pin(struct shard *s)
{
	cpu_set_t set;

	if (s->cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(s->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		rlb_log(LOG_WARN, "shard %u: cannot pin to CPU %d", s->id, s->cpu);
}

static void *shard_main(void *arg)
{
	struct shard_boot *boot = arg;
	struct shard *s = boot->s;

	pin(s);
	rcu_register_thread();
	if (!shard_setup(s)) {
		s->exit_status = 1;
		shard_teardown(s);
		rcu_unregister_thread();
		atomic_fetch_sub(&shards_running, 1);
		atomic_store(&boot->state, -1);
		return NULL;
	}
	rlb_log(LOG_DEBUG, "shard %u: running on CPU %d (ring %s)", s->id, s->cpu,
	        s->ring.defer_taskrun ? "DEFER_TASKRUN" : "plain");
	atomic_store(&boot->state, 1);
	shard_loop(s);
	shard_teardown(s);
	rcu_unregister_thread();
	atomic_fetch_sub(&shards_running, 1);
	return NULL;
}

/* online_cpus lists the CPUs this process may run on, so `workers: auto`
 * respects taskset and cgroup cpusets. */
static uint32_t online_cpus(int *out, uint32_t max)
{
	cpu_set_t set;
	uint32_t n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	for (int i = 0; i < CPU_SETSIZE && n < max; i++)
		if (CPU_ISSET(i, &set))
			out[n++] = i;
	return n;
}

struct shard *shard_bind_all(const struct config *cfg, uint32_t n, char *err, size_t err_len)
{
	struct shard *shards = rlb_xcalloc(n, sizeof(*shards));

	/* Every descriptor is -1 before any is opened, so that a failure
	 * part-way closes only what was opened. */
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < CONFIG_LISTENERS_MAX; j++)
			shards[i].listen_fds[j] = -1;
	for (uint32_t i = 0; i < n; i++) {
		struct shard *s = &shards[i];

		s->id = i;
		s->cfg = cfg;
		for (size_t j = 0; j < cfg->num_listeners; j++) {
			s->listen_fds[j] = open_listener(&cfg->listeners[j], err, err_len);
			if (s->listen_fds[j] < 0) {
				shard_unbind_all(shards, n);
				return NULL;
			}
			s->num_listeners++;
		}
	}
	return shards;
}

void shard_unbind_all(struct shard *shards, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		close_listeners(&shards[i]);
	free(shards);
}

int shard_start_all(struct shard *shards, uint32_t n, struct tls_server *const *tls, char *err,
                    size_t err_len)
{
	const struct config *cfg = shards[0].cfg;
	struct shard_boot *boots = rlb_xcalloc(n, sizeof(*boots));
	int cpus[CPU_SETSIZE];
	uint32_t ncpu = online_cpus(cpus, CPU_SETSIZE);
	int failed = -1;

	atomic_store(&stop_requested, false);
	caching_set_shards(shards, n);
	for (uint32_t i = 0; i < n; i++)
		shards[i].rstats = rlb_xcalloc(CONFIG_ROUTES_MAX + 1, sizeof(struct route_stats));
	protect_set_shards(shards, n);
	for (uint32_t i = 0; i < n; i++) {
		for (size_t j = 0; j < cfg->num_listeners; j++)
			shards[i].listeners[j].tls = tls != NULL ? tls[j] : NULL;
		shards[i].cpu = cfg->pin_workers && ncpu > 0 ? cpus[i % ncpu] : -1;
		boots[i].s = &shards[i];
		atomic_fetch_add(&shards_running, 1);
		if (pthread_create(&shards[i].thread, NULL, shard_main, &boots[i]) != 0) {
			atomic_fetch_sub(&shards_running, 1);
			snprintf(err, err_len, "cannot create shard thread %u", i);
			shard_request_stop();
			for (uint32_t k = i; k < n; k++) {
				close_listeners(&shards[k]); /* never started */
				free(shards[k].rstats);
			}
			shard_join_all(shards, i, NULL, NULL);
			free(boots);
			return 0;
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		while (atomic_load(&boots[i].state) == 0)
			usleep(1000);
		if (atomic_load(&boots[i].state) < 0 && failed < 0)
			failed = (int)i;
	}
	if (failed >= 0) {
		snprintf(err, err_len, "%s", shards[failed].err);
		shard_request_stop();
		shard_join_all(shards, n, NULL, NULL);
		free(boots);
		return 0;
	}
	free(boots);
	return 1;
}

int shard_join_all(struct shard *shards, uint32_t n, void (*poll)(void *), void *arg)
{
	int status = 0;

	while (poll != NULL && !shard_all_exited()) {
		poll(arg);
		usleep(100000);
	}
	for (uint32_t i = 0; i < n; i++) {
		pthread_join(shards[i].thread, NULL);
		if (shards[i].exit_status != 0)
			status = 1;
	}
	if (poll != NULL)
		poll(arg);
	protect_set_shards(NULL, 0);
	for (uint32_t i = 0; i < n; i++)
		free(shards[i].rstats);
	free(shards);
	return status;
}
