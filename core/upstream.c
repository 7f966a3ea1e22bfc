/* core/upstream.c — connections to backends and the per-shard keep-alive
 * pools.
 *
 * Each shard keeps, per backend, a LIFO list of idle connections (the most
 * recently used first: the one least likely to have been closed by the
 * backend's own idle timeout). An idle connection keeps a multishot recv
 * armed, so a backend closing it is noticed at once (recv returns 0) and
 * the connection leaves the pool before a request can pick it. The race
 * that remains — the backend closes just as a request is sent — is caught
 * as UPF_STALE and retried by the client side when the request allows it.
 *
 * Connections are made through the ring (IORING_OP_CONNECT) on blocking
 * sockets: io_uring drives them asynchronously, and a socket must not be
 * O_NONBLOCK or io_uring would return EAGAIN instead of waiting.
 */
#include "core/log.h"
#include "core/proxy.h"
#include "core/snapshot.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint32_t up_slot(const struct shard *s, const struct upconn *u)
{
	return (uint32_t)(u - s->ups);
}

static struct bufpool *upool(struct shard *s)
{
	return ring_pool(&s->ring, RING_GROUP_UPSTREAM);
}

/* reserve counts one more request in flight on backend `b`, for every
 * shard's least_conn and for max_conns. With a limit it is a compare-and-
 * swap, so shards racing for the last slot never overshoot it together.
 * Returns false when the backend is full. */
static bool reserve(struct lb_live *live, const struct lb_backend *b)
{
	_Atomic uint32_t *active;
	uint32_t cur;

	if (live == NULL)
		return true;
	active = &live[b->uid].active;
	if (b->max_conns == 0) {
		atomic_fetch_add_explicit(active, 1, memory_order_relaxed);
		return true;
	}
	cur = atomic_load_explicit(active, memory_order_relaxed);
	while (cur < b->max_conns)
		if (atomic_compare_exchange_weak_explicit(
		            active, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed))
			return true;
	return false;
}

static void release(struct lb_live *live, uint32_t uid)
{
	if (live != NULL)
		atomic_fetch_sub_explicit(&live[uid].active, 1, memory_order_relaxed);
}

/* link_client ties `u` to `c` for one request, whose in-flight count
 * reserve() already took; unlink_client gives it back. */
static void link_client(struct shard *s, struct upconn *u, struct conn *c, struct lb_live *live)
{
	/* c->rin's buffers come from the pool the backend's bytes land in:
	 * the TLS buffers when they are decrypted first. */
	if (c->rin_tls != u->is_tls) {
		bufq_clear(&c->rin, conn_rinpool(s, c));
		c->rin_tls = u->is_tls;
	}
	u->client = c;
	c->up = u;
	u->got_bytes = false;
	u->live = live;
}

static void unlink_client(struct upconn *u)
{
	if (u->client != NULL)
		release(u->live, u->backend_uid);
	if (u->client != NULL)
		u->client->up = NULL;
	u->client = NULL;
}

static void idle_remove(struct shard *s, struct upconn *u)
{
	struct idle_list *l = &s->idle[u->backend_uid];

	if (u->idle_prev != NULL)
		u->idle_prev->idle_next = u->idle_next;
	else
		l->head = u->idle_next;
	if (u->idle_next != NULL)
		u->idle_next->idle_prev = u->idle_prev;
	u->idle_next = u->idle_prev = NULL;
	RLB_ASSERT(l->count > 0);
	l->count--;
}

static void idle_push(struct shard *s, struct upconn *u)
{
	struct idle_list *l = &s->idle[u->backend_uid];

	u->idle_prev = NULL;
	u->idle_next = l->head;
	if (l->head != NULL)
		l->head->idle_prev = u;
	l->head = u;
	l->count++;
}

/* unstarve takes `u` off the shard's starved list (see proxy.c). */
static void unstarve(struct shard *s, struct upconn *u)
{
	for (struct upconn **pp = &s->up_starved; *pp != NULL; pp = &(*pp)->starved_next) {
		if (*pp == u) {
			*pp = u->starved_next;
			break;
		}
	}
	u->starved = false;
	u->starved_next = NULL;
}

/* up_free returns a closed connection's slot. `notify` tells the client
 * side, which is only safe from a completion handler: when the free happens
 * synchronously inside the client's own processing, the caller sees c->up
 * turn NULL and carries on. */
static void up_free(struct shard *s, struct upconn *u, bool notify)
{
	struct conn *c = u->client;

	RLB_ASSERT(u->ops == 0);
	RLB_ASSERT(u->state == UP_CLOSING);
	if (u->starved)
		unstarve(s, u);
	timer_disarm(&s->wheel, &u->timer);
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
	tls_free(&u->tls);
	u->pump_pending = false;
	unlink_client(u);
	u->state = UP_FREE;
	u->gen++;
	s->up_free[s->up_nfree++] = up_slot(s, u);
	if (c != NULL && notify)
		conn_upstream_gone(s, c);
}

void up_close(struct shard *s, struct upconn *u)
{
	if (u->state == UP_FREE || u->state == UP_CLOSING)
		return;
	if (u->state == UP_IDLE)
		idle_remove(s, u);
	u->state = UP_CLOSING;
	timer_disarm(&s->wheel, &u->timer);
	shutdown(u->fd, SHUT_RDWR);
	if (u->ops > 0) {
		ring_cancel_fd(&s->ring, u->fd, ring_ud(OP_UCANCEL, up_slot(s, u), u->gen));
		u->ops++;
		return;
	}
	up_free(s, u, false);
}

static void up_op_done(struct shard *s, struct upconn *u)
{
	RLB_ASSERT(u->ops > 0);
	u->ops--;
	if (u->state == UP_CLOSING && u->ops == 0)
		up_free(s, u, true);
}

static void up_schedule_pump(struct shard *s, struct upconn *u)
{
	if (u->pump_pending || s->num_up_pump == s->up_pump_cap)
		return;
	u->pump_pending = true;
	s->up_pump[s->num_up_pump++] = (uint64_t)u->gen << 32 | up_slot(s, u);
}

void up_update_recv(struct shard *s, struct upconn *u)
{
	uint64_t max = s->cfg->buffers.conn_bytes_max;
	bool room = u->client != NULL && u->client->rin.bytes < max;
	bool want = u->fd >= 0 && !u->starved && !u->tls.eof && u->tls.in.bytes < max &&
	            (u->state == UP_IDLE || (u->state == UP_ACTIVE && room) ||
	             (u->state == UP_CONNECTING && u->tls_started));

	/* TLS records that did not fit c->rin wait in tls.in: decrypt them
	 * once there is room again (at the end of the loop turn). */
	if (u->tls_stalled && room && u->state == UP_ACTIVE)
		up_schedule_pump(s, u);

	if (want && !u->recv_on) {
		ring_recv_multishot(&s->ring, u->fd, RING_GROUP_UPSTREAM,
		                    ring_ud(OP_URECV, up_slot(s, u), u->gen));
		u->ops++;
		u->recv_on = true;
		u->recv_stop = false;
	} else if (!want && u->recv_on && !u->recv_stop && u->state != UP_CLOSING) {
		ring_cancel(&s->ring, ring_ud(OP_URECV, up_slot(s, u), u->gen),
		            ring_ud(OP_UCANCEL, up_slot(s, u), u->gen));
		u->ops++;
		u->recv_stop = true;
	}
}

void up_restart_recv(struct shard *s, struct upconn *u)
{
	u->starved = false;
	up_update_recv(s, u);
}

static bool request_sent(const struct conn *c)
{
	return c->req_phase == REQ_DONE && c->req_fwd == 0 && c->req_head_sent == c->req_head_len;
}

/* up_update_timer re-arms the deadline of an active connection after an
 * event: a send making no progress (upstream_send), or the backend staying
 * silent once the request is out (upstream_response, measured between two
 * reads as nginx's proxy_read_timeout is). While the client is slow to take
 * the response and receiving is paused, the client's send timer governs. */
void up_update_timer(struct shard *s, struct upconn *u)
{
	const struct snapshot *snap = snapshot_current();
	struct conn *c = u->client;

	if (u->state != UP_ACTIVE || c == NULL)
		return;
	if (u->send_on)
		timer_arm(&s->wheel, &u->timer, s->now_ms + snap->timeouts.upstream_send_ms);
	else if (c->resp_phase < RESP_DONE && request_sent(c) &&
	         c->rin.bytes < s->cfg->buffers.conn_bytes_max)
		timer_arm(&s->wheel, &u->timer, s->now_ms + snap->timeouts.upstream_response_ms);
	else
		timer_disarm(&s->wheel, &u->timer);
}

static const char *backend_name(const struct snap_pool *sp, uint32_t uid)
{
	for (uint32_t i = 0; i < sp->lb.num_backends; i++)
		if (sp->lb.backends[i].uid == uid)
			return sp->lb.backends[i].name;
	return "?";
}

/* eject takes the backend out for a back-off that doubles with each
 * ejection in a row (capped); the health checker brings it back. Only the
 * shard that sets the bit computes the back-off, so ejections are counted
 * once even when several shards see the failures. */
static void eject(struct shard *s, struct lb_live *l, const struct snap_pool *sp, uint32_t uid)
{
	const struct config_passive *pc = &sp->passive;
	uint32_t n;
	uint64_t backoff;

	if (atomic_fetch_or_explicit(&l->down, LB_DOWN_PASSIVE, memory_order_relaxed) &
	    LB_DOWN_PASSIVE)
		return;
	n = atomic_fetch_add_explicit(&l->ejections, 1, memory_order_relaxed);
	backoff = pc->ejection_ms << (n < 20 ? n : 20);
	if (backoff > pc->ejection_max_ms)
		backoff = pc->ejection_max_ms;
	atomic_store_explicit(&l->eject_until_ms, s->now_ms + backoff, memory_order_relaxed);
	atomic_store_explicit(&l->fails, 0, memory_order_relaxed);
	rlb_log(LOG_WARN, "backend %s (pool %s) is ejected for %llums after %u failed requests",
	        backend_name(sp, uid), sp->name, (unsigned long long)backoff, pc->failures);
}

void up_report(struct shard *s, struct upconn *u, uint32_t pool, bool ok)
{
	const struct snapshot *snap = snapshot_current();
	const struct snap_pool *sp;
	struct lb_live *l;

	if (u->live == NULL || pool >= snap->num_pools)
		return;
	sp = &snap->pools[pool];
	l = &u->live[u->backend_uid];
	if (ok) {
		/* Read first: most requests succeed, and a store would bounce
		 * the cache line between shards for nothing. */
		if (atomic_load_explicit(&l->fails, memory_order_relaxed) != 0)
			atomic_store_explicit(&l->fails, 0, memory_order_relaxed);
		/* Healthy for a whole ejection_max since the last ejection:
		 * the next one starts from the base back-off again. */
		if (atomic_load_explicit(&l->ejections, memory_order_relaxed) != 0 &&
		    s->now_ms > atomic_load_explicit(&l->eject_until_ms, memory_order_relaxed) +
		                        sp->passive.ejection_max_ms)
			atomic_store_explicit(&l->ejections, 0, memory_order_relaxed);
		return;
	}
	if (sp->passive.failures == 0)
		return;
	if (atomic_fetch_add_explicit(&l->fails, 1, memory_order_relaxed) + 1 >=
	    sp->passive.failures)
		eject(s, l, sp, u->backend_uid);
}

void up_note_response_time(struct shard *s, struct upconn *u, uint64_t t_pick_us)
{
	_Atomic uint32_t *e;
	uint64_t sample, old;

	(void)s;
	if (u->live == NULL)
		return;
	e = &u->live[u->backend_uid].ewma_us;
	sample = rlb_now_us() - t_pick_us;
	sample = sample < UINT32_MAX ? sample : UINT32_MAX;
	sample = sample ? sample : 1;
	/* EWMA with weight 1/8. Shards update it without a lock: a lost
	 * update between two shards only drops one sample. */
	old = atomic_load_explicit(e, memory_order_relaxed);
	atomic_store_explicit(e, (uint32_t)(old ? old - old / 8 + sample / 8 : sample),
	                      memory_order_relaxed);
}

static struct upconn *up_connect(struct shard *s, const struct snap_pool *sp,
                                 const struct lb_backend *b)
{
	struct upconn *u;
	int one = 1;
	int fd;

	if (s->up_nfree == 0) {
		rlb_log(LOG_WARN,
		        "shard %u: upstream connection slab full; raise "
		        "limits.upstream_conns_max",
		        s->id);
		return NULL;
	}
	fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rlb_log(LOG_ERROR, "socket() for backend %s: %s", b->name, strerror(errno));
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	u = &s->ups[s->up_free[--s->up_nfree]];
	RLB_ASSERT(u->state == UP_FREE);
	RLB_ASSERT(u->ops == 0);
	u->fd = fd;
	u->state = UP_CONNECTING;
	u->recv_on = u->recv_stop = u->send_on = u->starved = false;
	u->is_tls = sp->tls != NULL;
	u->tls_stalled = u->pump_pending = u->tls_started = false;
	u->snap_version = snapshot_current()->version;
	tls_link_init(&u->tls);
	/* The TLS session is made now, with the settings of the pool this
	 * connection is for (a reload before the connect completes must not
	 * swap them); a cached session is offered only if it was made under
	 * the same snapshot, so a changed CA or name is never skipped by a
	 * resumption. */
	if (u->is_tls &&
	    !tls_connect(&u->tls, sp->tls, (struct sockaddr *)&b->addr,
	                 s->up_session_ver[b->uid] == u->snap_version ? s->up_sessions[b->uid]
	                                                              : NULL,
	                 upool(s), &s->tls_pool)) {
		rlb_log(LOG_WARN, "shard %u: out of memory for a TLS session to %s", s->id,
		        b->name);
		close(fd);
		u->fd = -1;
		u->state = UP_FREE;
		s->up_free[s->up_nfree++] = up_slot(s, u);
		return NULL;
	}
	u->requests = 0;
	u->backend_uid = b->uid;
	u->idle_timeout_ms = sp->keepalive_timeout_ms;
	u->idle_next = u->idle_prev = NULL;
	memcpy(&u->addr, &b->addr, sizeof(u->addr));
	u->addr_len = b->addr_len;
	ring_connect(&s->ring, fd, (struct sockaddr *)&u->addr, u->addr_len,
	             ring_ud(OP_UCONNECT, up_slot(s, u), u->gen));
	u->ops++;
	timer_arm(&s->wheel, &u->timer,
	          s->now_ms + snapshot_current()->timeouts.upstream_connect_ms);
	s->stats.upstream_connects++;
	return u;
}

/* slow_start lets a backend that just (re)entered service take only part
 * of the requests it is picked for, ramping up over the pool's slow_start:
 * when the draw says no, the pick is made once more without it. */
static int32_t slow_start(struct shard *s, const struct snap_pool *sp, struct conn *c,
                          struct lb_ctx *ctx, int32_t idx)
{
	uint64_t since;
	uint32_t permille;
	int32_t other;

	if (sp->slow_start_ms == 0 || sp->lb.live == NULL || idx >= 64)
		return idx;
	since = atomic_load_explicit(&sp->lb.live[sp->lb.backends[idx].uid].up_since_ms,
	                             memory_order_relaxed);
	permille = lb_slow_start_permille(s->now_ms, since, sp->slow_start_ms);
	if (permille >= 1000 || lb_random(&s->lb_local[c->pool]) % 1000 < permille)
		return idx;
	ctx->exclude |= 1ull << idx;
	other = sp->lb.ops->pick(&sp->lb, &s->lb_local[c->pool], ctx);
	return other >= 0 ? other : idx;
}

static int32_t pick_backend(struct shard *s, const struct snap_pool *sp, struct conn *c,
                            uint64_t lost)
{
	const struct snapshot *snap = snapshot_current();
	struct lb_ctx ctx = {.hash = c->lb_hash};
	int32_t idx;

	if (s->lb_version != snap->version) {
		/* Each shard starts its rotation at its own offset, so the first
		 * requests of a fleet of shards do not all go to backend 0. */
		for (size_t i = 0; i < RLB_ARRAY_LEN(s->lb_local); i++)
			s->lb_local[i].counter = s->id;
		s->lb_version = snap->version;
	}
	/* Rounds, in order, until one yields a backend: the usable primaries
	 * not yet tried for this request; then the usable backups not yet
	 * tried (backups serve only when no primary can); then primaries and
	 * backups again (a retry may return to one); and last every backend
	 * marked down (fail open: a health check can be wrong while backends
	 * still serve). */
	static const struct {
		bool backups, ignore_down, retried;
	} rounds[] = {
	        {false, false, false}, {true, false, false}, {false, false, true},
	        {true, false, true},   {false, true, false}, {true, true, false},
	        {false, true, true},   {true, true, true},
	};
	for (size_t r = 0; r < RLB_ARRAY_LEN(rounds); r++) {
		if (rounds[r].retried && c->tried == 0)
			continue;
		ctx.exclude = (rounds[r].retried ? 0 : c->tried) | lost;
		ctx.backups = rounds[r].backups;
		ctx.ignore_down = rounds[r].ignore_down;
		idx = sp->lb.ops->pick(&sp->lb, &s->lb_local[c->pool], &ctx);
		if (idx >= 0)
			return slow_start(s, sp, c, &ctx, idx);
	}
	return -1;
}

/* pool_full says whether a backend of the pool is at its max_conns: then
 * a failed pick means "wait for a slot", not "no backend". */
static bool pool_full(const struct snap_pool *sp)
{
	for (uint32_t i = 0; i < sp->lb.num_backends; i++) {
		const struct lb_backend *b = &sp->lb.backends[i];

		if (b->max_conns != 0 && sp->lb.live != NULL &&
		    atomic_load_explicit(&sp->lb.live[b->uid].active, memory_order_relaxed) >=
		            b->max_conns)
			return true;
	}
	return false;
}

/* sticky_backend is the backend the client's sticky cookie names, if it
 * can take the request now (first try, usable, slot free). */
static int32_t sticky_backend(const struct snap_pool *sp, struct conn *c)
{
	struct lb_ctx ctx = {0};
	int32_t idx = c->sticky_idx;

	if (idx < 0 || c->tries > 0 || (uint32_t)idx >= sp->lb.num_backends)
		return -1;
	if (lb_excluded(&sp->lb, &ctx, (uint32_t)idx)) {
		ctx.backups = true; /* a sticky backup is fine while it serves */
		if (lb_excluded(&sp->lb, &ctx, (uint32_t)idx))
			return -1;
	}
	return reserve(sp->lb.live, &sp->lb.backends[idx]) ? idx : -1;
}

/* reserve_backend picks a backend and takes its in-flight slot; a backend
 * that filled up between pick and reservation (another shard took the
 * last slot) is skipped and the pick made again. Returns its index, -1
 * when every candidate is full, -2 when there is none at all. */
static int32_t reserve_backend(struct shard *s, const struct snap_pool *sp, struct conn *c)
{
	uint64_t lost = 0;
	int32_t sticky = sticky_backend(sp, c);

	if (sticky >= 0)
		return sticky;
	for (uint32_t attempt = 0; attempt < 8; attempt++) {
		int32_t idx = pick_backend(s, sp, c, lost);

		if (idx < 0)
			return pool_full(sp) ? -1 : -2;
		if (reserve(sp->lb.live, &sp->lb.backends[idx]))
			return idx;
		if (idx < 64)
			lost |= 1ull << idx;
	}
	return -1;
}

int up_acquire(struct shard *s, struct conn *c, bool fresh)
{
	const struct snapshot *snap = snapshot_current();
	const struct snap_pool *sp;
	const struct lb_backend *b;
	struct upconn *u;
	int32_t idx;

	RLB_ASSERT(c->up == NULL);
	if (c->pool >= snap->num_pools)
		return 0; /* the pool went away in a reload */
	sp = &snap->pools[c->pool];
	idx = reserve_backend(s, sp, c);
	if (idx < 0)
		return idx == -1 ? -1 : 0;
	b = &sp->lb.backends[idx];
	/* A sticky pool tells the client where it landed, unless its cookie
	 * already says so. */
	c->sticky_sent = sp->sticky_cookie_len > 0 && idx != c->sticky_idx ? b->sticky_id : 0;
	c->tries++;
	if (idx < 64)
		c->tried |= 1ull << idx;
	c->backend_uid = b->uid;
	c->t_pick_us = rlb_now_us();
	u = fresh ? NULL : s->idle[b->uid].head;
	if (u != NULL && u->is_tls != (sp->tls != NULL)) {
		/* the pool turned TLS on or off in a reload: its idle
		 * connections speak the old way */
		while (s->idle[b->uid].head != NULL)
			up_close(s, s->idle[b->uid].head);
		u = NULL;
	}
	if (u != NULL) {
		idle_remove(s, u);
		u->state = UP_ACTIVE;
		u->requests++;
		s->stats.upstream_reused++;
		link_client(s, u, c, sp->lb.live);
		up_send_more(s, u);
		up_update_timer(s, u);
		up_update_recv(s, u);
		return 1;
	}
	u = up_connect(s, sp, b);
	if (u == NULL) {
		release(sp->lb.live, b->uid);
		return 0;
	}
	link_client(s, u, c, sp->lb.live);
	c->resp_phase = RESP_CONNECT;
	return 1;
}

/* up_account releases `n` request bytes that went to the backend (sent,
 * or taken by BoringSSL): head first, then body bytes from c->in. */
static void up_account(struct shard *s, struct conn *c, uint64_t n)
{
	if (c->req_head_sent < c->req_head_len) {
		uint64_t take = c->req_head_len - c->req_head_sent;

		take = n < take ? n : take;
		c->req_head_sent += (uint32_t)take;
		n -= take;
	}
	if (n > 0) {
		RLB_ASSERT(n <= c->req_fwd);
		bufq_consume(&c->in, conn_inpool(s, c), n);
		c->req_fwd -= n;
	}
}

/* up_send_out sends what is queued in u->tls.out. */
static void up_send_out(struct shard *s, struct upconn *u)
{
	uint64_t bytes = 0;
	int n;

	if (u->send_on || u->tls.out.bytes == 0 || u->state == UP_CLOSING || u->state == UP_FREE)
		return;
	n = bufq_iov(&u->tls.out, &s->tls_pool.pool, 0, UINT64_MAX, u->iov, CONN_IOV_MAX, &bytes);
	memset(&u->msg, 0, sizeof(u->msg));
	u->msg.msg_iov = u->iov;
	u->msg.msg_iovlen = (size_t)n;
	ring_sendmsg(&s->ring, u->fd, &u->msg, ring_ud(OP_USEND, up_slot(s, u), u->gen));
	u->ops++;
	u->send_on = true;
	u->send_inflight = bytes;
}

/* up_tls_send encrypts the request bytes that are ready (a few records at
 * a time) and sends the records. */
static void up_tls_send(struct shard *s, struct upconn *u, struct conn *c)
{
	const uint64_t out_max = 4 * (uint64_t)s->cfg->buffers.size;

	while (u->tls.out.bytes < out_max && s->tls_pool.nfree >= 2 && !u->tls.failed) {
		size_t len = 0, took = 0;
		const char *p = NULL;
		enum tls_result r;

		if (c->req_head >= 0 && c->req_head_sent < c->req_head_len) {
			p = hpool_data(&s->heads, (uint32_t)c->req_head) + c->req_head_sent;
			len = c->req_head_len - c->req_head_sent;
		} else if (c->req_fwd > 0) {
			p = bufq_front(&c->in, conn_inpool(s, c), &len);
			len = len < c->req_fwd ? len : (size_t)c->req_fwd;
		}
		if (p == NULL || len == 0)
			break;
		r = tls_write(&u->tls, p, len < 16384 ? len : 16384, &took);
		up_account(s, c, took);
		if (took > 0 && c->resp_phase == RESP_CONNECT)
			c->resp_phase = RESP_HEAD;
		if (r == TLS_FAILED) {
			shutdown(u->fd, SHUT_RDWR); /* fails through the receive, not here */
			break;
		}
		if (r != TLS_OK && took == 0)
			break;
	}
	/* Stopped for lack of TLS buffers with request bytes left: try again
	 * next turn (the pump list), or nothing would ever resume it. */
	if (!u->tls.failed && (c->req_fwd > 0 || c->req_head_sent < c->req_head_len) &&
	    (s->tls_pool.nfree < 2 || u->tls.want_buffers))
		up_schedule_pump(s, u);
	up_send_out(s, u);
	up_update_timer(s, u);
}

void up_send_more(struct shard *s, struct upconn *u)
{
	struct conn *c = u->client;
	uint64_t bytes = 0;
	int n = 0;

	if (c == NULL || u->send_on || u->state != UP_ACTIVE)
		return;
	if (u->is_tls) {
		up_tls_send(s, u, c);
		return;
	}
	if (c->req_head >= 0 && c->req_head_sent < c->req_head_len) {
		u->iov[n].iov_base =
		        hpool_data(&s->heads, (uint32_t)c->req_head) + c->req_head_sent;
		u->iov[n].iov_len = c->req_head_len - c->req_head_sent;
		bytes += u->iov[n++].iov_len;
	}
	if (c->req_fwd > 0 && c->req_head_sent + bytes == c->req_head_len) {
		uint64_t more = 0;

		n += bufq_iov(&c->in, conn_inpool(s, c), 0, c->req_fwd, u->iov + n,
		              CONN_IOV_MAX - n, &more);
		bytes += more;
	}
	if (bytes == 0)
		return;
	memset(&u->msg, 0, sizeof(u->msg));
	u->msg.msg_iov = u->iov;
	u->msg.msg_iovlen = (size_t)n;
	ring_sendmsg(&s->ring, u->fd, &u->msg, ring_ud(OP_USEND, up_slot(s, u), u->gen));
	u->ops++;
	u->send_on = true;
	u->send_inflight = bytes;
	if (c->resp_phase == RESP_CONNECT)
		c->resp_phase = RESP_HEAD;
	up_update_timer(s, u);
}

void up_finish(struct shard *s, struct upconn *u, bool reusable)
{
	const struct snapshot *snap = snapshot_current();
	struct conn *c = u->client;
	uint32_t keep = 0;

	if (u->state != UP_ACTIVE)
		return;
	if (c != NULL && c->pool < snap->num_pools)
		keep = snap->pools[c->pool].keepalive;
	if (!reusable || s->idle[u->backend_uid].count >= keep) {
		up_close(s, u);
		return;
	}
	RLB_ASSERT(!u->send_on);
	unlink_client(u);
	u->state = UP_IDLE;
	idle_push(s, u);
	timer_arm(&s->wheel, &u->timer, s->now_ms + u->idle_timeout_ms);
	up_update_recv(s, u);
}

/* fail_active tells the client, closes the connection, and lets the client
 * side carry on (retry, error page, or cut response). */
static void fail_active(struct shard *s, struct upconn *u, enum up_fail why)
{
	struct conn *c = u->client;

	/* A stale pooled connection says nothing about the backend. */
	if (c != NULL && why != UPF_STALE)
		up_report(s, u, c->pool, false);

	if (c != NULL)
		conn_upstream_failed(s, c, why);
	up_close(s, u);
	if (c != NULL && c->up == NULL)
		conn_upstream_gone(s, c);
}

/* up_established: the connection is ready for its first request. */
static void up_established(struct shard *s, struct upconn *u)
{
	u->state = UP_ACTIVE;
	u->requests = 1;
	up_update_recv(s, u);
	up_send_more(s, u);
	up_update_timer(s, u);
}

static void up_tls_input(struct shard *s, struct upconn *u);

/* up_tls_start begins the TLS handshake on a connected socket; the connect
 * timer keeps running until it completes. */
static void up_tls_start(struct shard *s, struct upconn *u)
{
	u->tls_started = true; /* the session was made in up_connect */
	up_update_recv(s, u);
	up_tls_input(s, u);
}

void up_on_connect(struct shard *s, struct upconn *u, const struct ring_cqe *cqe)
{
	if (u->state == UP_CLOSING) {
		up_op_done(s, u);
		return;
	}
	u->ops--;
	if (cqe->res < 0) {
		rlb_log(LOG_DEBUG, "connect to backend uid %u: %s", u->backend_uid,
		        strerror(-cqe->res));
		fail_active(s, u, UPF_CONNECT);
		return;
	}
	if (u->is_tls) {
		up_tls_start(s, u);
		return;
	}
	up_established(s, u);
}

/* up_input_eof: the backend closed (or its TLS session ended) while
 * serving `c`. */
static void up_input_eof(struct shard *s, struct upconn *u, struct conn *c)
{
	bool stale = u->requests > 1 && !u->got_bytes;

	if (!stale && c->resp_phase != RESP_DONE &&
	    !(c->resp_phase == RESP_BODY && c->resp_body == H1_BODY_CLOSE))
		up_report(s, u, c->pool, false); /* closed mid-exchange */
	conn_upstream_eof(s, c, stale);
	up_close(s, u);
	if (c->up == NULL)
		conn_upstream_gone(s, c);
}

/* up_tls_read decrypts what arrived: into c->rin while serving a request,
 * else (handshake, idle) into a scratch queue that must stay empty. Keeps
 * any session the backend issued for the next connection. */
static enum tls_result up_tls_read(struct shard *s, struct upconn *u)
{
	const uint64_t max = s->cfg->buffers.conn_bytes_max;
	struct conn *c = u->client;
	enum tls_result r;
	void *sess;

	u->tls_stalled = false;
	if (u->state == UP_ACTIVE && c != NULL) {
		uint64_t before = c->rin.bytes;

		r = tls_read(&u->tls, &c->rin, &s->tls_pool, max);
		u->got_bytes |= c->rin.bytes > before;
		u->tls_stalled = (r == TLS_OK && c->rin.bytes >= max) || r == TLS_NOBUF;
	} else {
		struct bufq scratch;

		bufq_init(&scratch);
		r = tls_read(&u->tls, &scratch, &s->tls_pool, u->state == UP_IDLE ? 1 : 0);
		if (scratch.bytes > 0)
			r = TLS_FAILED; /* an idle backend talking out of turn */
		bufq_clear(&scratch, &s->tls_pool.pool);
	}
	sess = tls_take_session(&u->tls);
	if (sess != NULL) {
		tls_session_free(s->up_sessions[u->backend_uid]);
		s->up_sessions[u->backend_uid] = sess;
		s->up_session_ver[u->backend_uid] = u->snap_version;
	}
	up_send_out(s, u); /* handshake flights, alerts */
	return r;
}

static void up_tls_input(struct shard *s, struct upconn *u)
{
	enum tls_result r = up_tls_read(s, u);
	struct conn *c = u->client;

	switch (u->state) {
	case UP_CONNECTING:
		if (r == TLS_OK && u->tls.established) {
			up_established(s, u);
		} else if (r == TLS_FAILED || r == TLS_CLOSED) {
			s->stats.tls_failures++;
			rlb_log(LOG_WARN, "TLS to backend uid %u failed: %s", u->backend_uid,
			        tls_verify_error(&u->tls));
			fail_active(s, u, UPF_CONNECT);
		}
		return;
	case UP_IDLE:
		if (r == TLS_FAILED || r == TLS_CLOSED)
			up_close(s, u);
		else
			up_update_recv(s, u);
		return;
	case UP_ACTIVE:
		if (c == NULL)
			return;
		if (r == TLS_FAILED || r == TLS_CLOSED) {
			up_input_eof(s, u, c);
			return;
		}
		up_update_timer(s, u);
		conn_step(s, c);
		if (u->state == UP_ACTIVE || u->state == UP_IDLE)
			up_update_recv(s, u);
		return;
	default:
		return;
	}
}

void up_run_pumps(struct shard *s)
{
	uint32_t n = s->num_up_pump;

	/* Only the entries present now: a pump may schedule its connection
	 * again, which waits for the next turn. */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = (uint32_t)(s->up_pump[i] & 0xffffffffu);
		struct upconn *u = &s->ups[slot];

		if (u->gen != (uint32_t)(s->up_pump[i] >> 32) || !u->pump_pending)
			continue;
		u->pump_pending = false;
		if (u->state == UP_ACTIVE)
			up_tls_input(s, u);
		if (u->state == UP_ACTIVE)
			up_send_more(s, u); /* request bytes that waited for buffers */
	}
	memmove(s->up_pump, s->up_pump + n, (s->num_up_pump - n) * sizeof(*s->up_pump));
	s->num_up_pump -= n;
}

void up_on_recv(struct shard *s, struct upconn *u, const struct ring_cqe *cqe)
{
	bool more = ring_cqe_more(cqe);
	bool eof = false, stray = false;
	struct conn *c = u->client;

	if (ring_cqe_has_buffer(cqe)) {
		ring_note_buffer(&s->ring, RING_GROUP_UPSTREAM);
		if (cqe->res > 0 && u->tls.ssl != NULL && u->state != UP_CLOSING) {
			bufq_push(&u->tls.in, upool(s), ring_cqe_bid(cqe), (uint32_t)cqe->res);
		} else if (cqe->res > 0 && u->state == UP_ACTIVE && c != NULL) {
			bufq_push(&c->rin, upool(s), ring_cqe_bid(cqe), (uint32_t)cqe->res);
			u->got_bytes = true;
		} else {
			upool(s)->recycle(upool(s), ring_cqe_bid(cqe));
			stray = cqe->res > 0;
		}
	}
	if (!more)
		u->recv_on = u->recv_stop = false;
	if (cqe->res == -ENOBUFS) {
		if (!u->starved) {
			u->starved = true;
			u->starved_next = s->up_starved;
			s->up_starved = u;
		}
	} else if (cqe->res == 0 || (cqe->res < 0 && cqe->res != -ECANCELED)) {
		eof = true;
	}
	if (!more) {
		up_op_done(s, u);
		if (u->state == UP_FREE)
			return;
	}
	if (u->state == UP_CLOSING)
		return;
	if (u->tls.ssl != NULL) {
		/* TLS: the records decide; EOF counts once they are read. */
		u->tls.eof |= eof;
		up_tls_input(s, u);
		return;
	}
	if (u->state == UP_IDLE) {
		/* A pooled connection that the backend closed (or that talks out
		 * of turn) leaves the pool now, not when a request picks it. */
		if (eof || stray)
			up_close(s, u);
		else
			up_update_recv(s, u);
		return;
	}
	if (c == NULL)
		return;
	if (eof) {
		up_input_eof(s, u, c);
		return;
	}
	up_update_timer(s, u);
	conn_step(s, c);
	if (u->state == UP_ACTIVE || u->state == UP_IDLE)
		up_update_recv(s, u);
}

void up_on_send(struct shard *s, struct upconn *u, const struct ring_cqe *cqe)
{
	struct conn *c = u->client;
	uint64_t n;

	RLB_ASSERT(u->send_on);
	u->send_on = false;
	if (u->state == UP_CLOSING) {
		up_op_done(s, u);
		return;
	}
	u->ops--;
	if (cqe->res <= 0) {
		fail_active(s, u,
		            u->state == UP_CONNECTING          ? UPF_CONNECT
		            : u->requests > 1 && !u->got_bytes ? UPF_STALE
		                                               : UPF_IO);
		return;
	}
	RLB_ASSERT((uint64_t)cqe->res <= u->send_inflight);
	n = (uint64_t)cqe->res;
	if (u->is_tls) {
		bufq_consume(&u->tls.out, &s->tls_pool.pool, n);
		if (u->state == UP_CONNECTING) {
			up_send_out(s, u); /* the rest of a handshake flight */
			return;
		}
		if (u->tls.out.bytes > 0)
			up_send_out(s, u);
	} else {
		RLB_ASSERT(c != NULL);
		up_account(s, c, n);
	}
	if (c == NULL)
		return;
	up_update_timer(s, u);
	conn_step(s, c);
}

void up_on_cancel(struct shard *s, struct upconn *u)
{
	up_op_done(s, u);
}

void up_on_timer(struct shard *s, struct upconn *u)
{
	switch (u->state) {
	case UP_CONNECTING:
		rlb_log(LOG_WARN, "connect to backend uid %u timed out", u->backend_uid);
		s->stats.timeouts++;
		fail_active(s, u, UPF_CONNECT_TIMEOUT);
		return;
	case UP_ACTIVE:
		s->stats.timeouts++;
		fail_active(s, u, UPF_TIMEOUT);
		return;
	case UP_IDLE:
		up_close(s, u);
		return;
	default:
		return;
	}
}

void up_close_idle(struct shard *s)
{
	for (uint32_t i = 0; i < s->cfg->limits.upstream_conns_max; i++)
		if (s->ups[i].state == UP_IDLE)
			up_close(s, &s->ups[i]);
}
