/* core/proxy.h — the request path, shared by shard.c (loop, accept,
 * dispatch), proxy.c (client connections and the HTTP transaction) and
 * upstream.c (backend connections and pools). Internal to the engine.
 *
 * Every function here runs on the shard thread that owns its arguments.
 */
#ifndef RLB_PROXY_H
#define RLB_PROXY_H

#include "core/conn.h"

/* --- proxy.c: client side --- */

/* conn_inpool is the pool whose buffers hold c->in: the ring's client
 * buffers for a plain connection, the shard's TLS buffers (decrypted
 * plaintext) for a TLS one. */
static inline struct bufpool *conn_inpool(struct shard *s, const struct conn *c)
{
	return c->tls.ssl != NULL || c->h2_stream ? &s->tls_pool.pool
	                                          : ring_pool(&s->ring, RING_GROUP_CLIENT);
}

/* conn_rinpool is the pool whose buffers hold c->rin: the ring's upstream
 * buffers, or the TLS buffers when the backend speaks TLS. */
static inline struct bufpool *conn_rinpool(struct shard *s, const struct conn *c)
{
	return c->rin_tls ? &s->tls_pool.pool : ring_pool(&s->ring, RING_GROUP_UPSTREAM);
}

/* conn_bodyq is the queue the response body is sent from: c->rin, or
 * c->zq when the body is compressed (core/compressing.c); resp_fwd counts
 * the bytes ready at its front. */
static inline struct bufq *conn_bodyq(struct conn *c)
{
	return c->zon ? &c->zq : &c->rin;
}

static inline struct bufpool *conn_bodypool(struct shard *s, const struct conn *c)
{
	return c->zon ? &s->tls_pool.pool : conn_rinpool(s, c);
}

/* conn_body_front returns the first contiguous run of the response body
 * ready to send (at most resp_fwd bytes): from the body queue, or straight
 * from a cached object's memory. */
static inline const char *conn_body_front(struct shard *s, struct conn *c, size_t *len)
{
	const char *p;

	if (c->cobj_direct) {
		*len = (size_t)c->resp_fwd;
		return c->cbody + (c->cbody_len - c->resp_fwd);
	}
	p = bufq_front(conn_bodyq(c), conn_bodypool(s, c), len);
	if (*len > c->resp_fwd)
		*len = (size_t)c->resp_fwd;
	return p;
}

/* conn_open starts serving socket `fd`, accepted on listener `listener`,
 * in a free slot. Returns 1, or 0 when the slab is full or TLS could not
 * start (the caller closes fd). */
int conn_open(struct shard *s, int fd, uint32_t listener);

/* Shared with core/h2.c. */
void conn_init_stream(struct shard *s, struct conn *c, struct conn *parent);
void conn_arm(struct shard *s, struct conn *c, uint64_t ms);
void conn_send_more(struct shard *s, struct conn *c);
void conn_account_sent(struct shard *s, struct conn *c, uint64_t n);
/* conn_refuse answers the connection's (unparsed) request with `status`. */
void conn_refuse(struct shard *s, struct conn *c, int status);
/* conn_close_h2 ends a finished HTTP/2 connection (close_notify, then close). */
void conn_close_h2(struct shard *s, struct conn *c);
/* conn_update_timer_h2 re-arms an HTTP/2 connection's timer (send, idle). */
void conn_update_timer_h2(struct shard *s, struct conn *c);
/* conn_tls_starve waits for TLS buffers to come back, then resumes `c`. */
void conn_tls_starve(struct shard *s, struct conn *c);

/* conn_refuse_cached answers the routed request with `status` (the cache
 * cannot serve it: only-if-cached miss, no head buffer). */
void conn_refuse_cached(struct shard *s, struct conn *c, int status);

/* conn_spawn_bg takes a free slot for a background fetch of the request
 * `from` is making (its upstream head copied): a cache refresh that no
 * client waits for. NULL when no slot or head buffer is free. Start it
 * with conn_cache_go once its cache fields are set. */
struct conn *conn_spawn_bg(struct shard *s, const struct conn *from);

/* conn_cache_go resumes a request the cache was holding: served from the
 * cache now, or sent to a backend. */
void conn_cache_go(struct shard *s, struct conn *c);

/* conn_tls_resume retries a TLS connection that waited for TLS buffers. */
void conn_tls_resume(struct shard *s, struct conn *c);

/* conn_on_recv, conn_on_send and conn_on_cancel handle the completions of a
 * client connection's operations. */
void conn_on_recv(struct shard *s, struct conn *c, const struct ring_cqe *cqe);
void conn_on_send(struct shard *s, struct conn *c, const struct ring_cqe *cqe);
void conn_on_cancel(struct shard *s, struct conn *c);

/* conn_on_timer handles the expiry of a client connection's timer. */
void conn_on_timer(struct shard *s, struct conn *c);

/* conn_step runs the connection's state machine until it must wait. */
void conn_step(struct shard *s, struct conn *c);

/* conn_run_queues gives waiting requests the backend slots that freed up
 * (on any shard); once per loop turn. */
void conn_run_queues(struct shard *s);

/* conn_flush_all sends, once per loop turn, what every connection queued
 * for its client during the turn's completions. */
void conn_flush_all(struct shard *s);

/* conn_restart_recv re-arms receiving after buffers came back (ENOBUFS). */
void conn_restart_recv(struct shard *s, struct conn *c);

/* conn_drain_idle closes `c` if it is between requests (graceful stop). */
void conn_drain_idle(struct shard *s, struct conn *c);

/* conn_abort closes `c` at once, whatever it is doing. */
void conn_abort(struct shard *s, struct conn *c);

/* conn_upstream_failed tells the client side that its upstream connection
 * failed (and is being closed) before the response was complete. The client
 * side retries, answers 502/504, or cuts the response. */
void conn_upstream_failed(struct shard *s, struct conn *c, enum up_fail why);

/* conn_upstream_eof tells the client side its backend closed the
 * connection; `stale` says it was a reused connection that had sent nothing
 * for this request. The caller closes the upstream connection after. */
void conn_upstream_eof(struct shard *s, struct conn *c, bool stale);

/* conn_upstream_gone is called when the upstream connection linked to `c`
 * has been released (ops drained); c->up is already NULL. */
void conn_upstream_gone(struct shard *s, struct conn *c);

/* --- upstream.c: backend side --- */

/* up_acquire gives `c` an upstream connection for its pool: an idle one from
 * the shard's pool for the picked backend (unless `fresh`), or a new
 * connect. Returns 1; 0 when no backend can be used (503); -1 when every
 * candidate is at its max_connections (the request waits in the queue). */
int up_acquire(struct shard *s, struct conn *c, bool fresh);

/* up_note_response_time feeds the time from pick to response head into the
 * backend's EWMA (least_time). */
void up_note_response_time(struct shard *s, struct upconn *u, uint64_t t_pick_us);

/* up_report feeds passive health: a failed request (`ok` false: connect
 * failure, reset, timeout, 5xx) counts toward ejecting the backend of `u`
 * for its pool `pool`; a good one resets the count. */
void up_report(struct shard *s, struct upconn *u, uint32_t pool, bool ok);

/* up_send_more sends what `c` has ready for its backend, if nothing is in
 * flight. */
void up_send_more(struct shard *s, struct upconn *u);

/* up_update_recv arms or pauses receiving to honour backpressure. */
void up_update_recv(struct shard *s, struct upconn *u);

/* up_update_timer arms the timer that applies to the connection's state. */
void up_update_timer(struct shard *s, struct upconn *u);

/* up_finish ends the upstream side of a transaction: the connection goes
 * back to its idle pool when `reusable`, otherwise it is closed. */
void up_finish(struct shard *s, struct upconn *u, bool reusable);

/* up_close shuts `u` down; it is freed (and unlinked from its client) when
 * its operations have ended. */
void up_close(struct shard *s, struct upconn *u);

void up_on_connect(struct shard *s, struct upconn *u, const struct ring_cqe *cqe);
void up_on_recv(struct shard *s, struct upconn *u, const struct ring_cqe *cqe);
void up_on_send(struct shard *s, struct upconn *u, const struct ring_cqe *cqe);
void up_on_cancel(struct shard *s, struct upconn *u);
void up_on_timer(struct shard *s, struct upconn *u);
void up_restart_recv(struct shard *s, struct upconn *u);

/* up_run_pumps decrypts, once per loop turn, for TLS upstream connections
 * whose records waited for room in their client's response queue. */
void up_run_pumps(struct shard *s);

/* up_close_idle closes every idle upstream connection (graceful stop). */
void up_close_idle(struct shard *s);

/* --- shard.c --- */

/* shard_alog_push queues one access-log line; drops it when the queue is full. */
void shard_alog_push(struct shard *s, const char *line, size_t len);

#endif
