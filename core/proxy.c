/* core/proxy.c — client connections and the HTTP/1.1 transaction.
 *
 * A client connection is a state machine (enum conn_state) driven by one
 * function, conn_step, which runs until the connection must wait for I/O.
 * While a request is proxied (CONN_PROXY) two streams move at once:
 *
 *   request:  client --recv--> c->in  --classify--> req_fwd --send--> backend
 *   response: backend --recv--> c->rin --classify--> resp_fwd --send--> client
 *
 * "Classify" runs the body framing (Content-Length countdown or the chunked
 * decoder) over newly arrived bytes, so the proxy always knows where a
 * message ends and never forwards a byte of the next pipelined request or
 * of a backend's garbage. Bytes are sent straight from the receive buffers
 * and released when the send that carried them completes.
 *
 * Backpressure: a side stops receiving while its queue holds
 * buffers.conn_bytes_max bytes, and resumes as the other side drains it.
 *
 * The transaction ends when the response has been sent, the request has
 * been received, and the upstream connection has been handed back (to its
 * idle pool, or closed). Then the connection waits for the next request —
 * possibly already in c->in (pipelining) — or closes.
 */
#include "core/proxy.h"

#include "core/caching.h"
#include "core/compressing.h"
#include "core/h2.h"

#include "core/log.h"
#include "core/snapshot.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* Pre-built error pages: [status index][keep-alive][http10]. */
static const int error_statuses[] = {400, 403, 404, 408, 413, 414, 417,
                                     429, 431, 501, 502, 503, 504, 505};
#define NUM_ERRORS (sizeof(error_statuses) / sizeof(error_statuses[0]))
static char error_pages[NUM_ERRORS][2][2][512];
static uint32_t error_lens[NUM_ERRORS][2][2];

static void error_pages_init(void)
{
	static bool done;

	if (done)
		return;
	for (size_t i = 0; i < NUM_ERRORS; i++)
		for (int ka = 0; ka < 2; ka++)
			for (int v = 0; v < 2; v++)
				error_lens[i][ka][v] = (uint32_t)h1_write_error(
				        error_pages[i][ka][v], sizeof(error_pages[i][ka][v]),
				        error_statuses[i], ka, v);
	done = true;
}

static struct bufpool *cpool(struct shard *s)
{
	return ring_pool(&s->ring, RING_GROUP_CLIENT);
}

static uint32_t conn_slot(const struct shard *s, const struct conn *c)
{
	return (uint32_t)(c - s->conns);
}

static void put_head(struct shard *s, int32_t *idx)
{
	if (*idx >= 0)
		hpool_put(&s->heads, (uint32_t)*idx);
	*idx = -1;
}

/* ---- timers ---- */

void conn_arm(struct shard *s, struct conn *c, uint64_t ms)
{
	timer_arm(&s->wheel, &c->timer, s->now_ms + ms);
}

/* conn_update_timer re-arms the deadline that applies in the proxy state:
 * a client send that makes no progress (send), or a request body that
 * stops arriving (client_body). Waiting for the backend is timed on the
 * upstream connection. Called after progress on the client socket. */
static void conn_update_timer(struct shard *s, struct conn *c)
{
	const struct config_timeouts *t = &s->cfg->timeouts;

	if (c->state == CONN_H2) {
		/* a client that stops reading is cut after `send`; an idle one
		 * after `keepalive`; streams time themselves */
		if (c->send_on)
			conn_arm(s, c, t->send_ms);
		else if (c->h2_nstreams == 0)
			conn_arm(s, c, t->keepalive_ms);
		else
			timer_disarm(&s->wheel, &c->timer);
		return;
	}
	if (c->state != CONN_PROXY || c->queued || c->cache_waiting)
		return;
	/* An HTTP/2 stream whose response (or error page) waits for the
	 * client's flow-control window is a send that makes no progress. */
	if (c->send_on ||
	    (c->h2_stream && (c->resp_fwd > 0 || c->local != NULL || c->h2_submitted)))
		conn_arm(s, c, t->send_ms);
	else if (c->req_phase == REQ_BODY)
		protect_body_progress(s, c);
	else
		timer_disarm(&s->wheel, &c->timer);
}

/* ---- receiving ---- */

static void conn_update_recv(struct shard *s, struct conn *c)
{
	/* A request held by its rate limit reads nothing more meanwhile: the
	 * client that is over its rate must not pin receive buffers. */
	bool want = c->fd >= 0 && !c->recv_eof && !c->starved && !c->rl_hold &&
	            c->state != CONN_CLOSING && c->state != CONN_FREE &&
	            c->in.bytes < s->cfg->buffers.conn_bytes_max &&
	            c->tls.in.bytes < s->cfg->buffers.conn_bytes_max;

	if (!want && c->state == CONN_PROXY && c->req_phase == REQ_BODY)
		c->body_paused = true; /* this body rate window does not count */
	if (want && !c->recv_on) {
		ring_recv_multishot(&s->ring, c->fd, RING_GROUP_CLIENT,
		                    ring_ud(OP_CRECV, conn_slot(s, c), c->gen));
		c->ops++;
		c->recv_on = true;
		c->recv_stop = false;
	} else if (!want && c->recv_on && !c->recv_stop && c->state != CONN_CLOSING) {
		ring_cancel(&s->ring, ring_ud(OP_CRECV, conn_slot(s, c), c->gen),
		            ring_ud(OP_CCANCEL, conn_slot(s, c), c->gen));
		c->ops++;
		c->recv_stop = true;
	}
}

void conn_restart_recv(struct shard *s, struct conn *c)
{
	c->starved = false;
	conn_update_recv(s, c);
}

/* ---- closing ---- */

static void dequeue(struct shard *s, struct conn *c);

/* unstarve takes `c` off the shard's starved list, so a freed slot can
 * never sit in it (and be linked twice once reused). Rare: a linear walk. */
static void unstarve(struct shard *s, struct conn *c)
{
	for (struct conn **pp = &s->starved; *pp != NULL; pp = &(*pp)->starved_next) {
		if (*pp == c) {
			*pp = c->starved_next;
			break;
		}
	}
	c->starved = false;
	c->starved_next = NULL;
}

static void tls_unstarve(struct shard *s, struct conn *c)
{
	for (struct conn **pp = &s->tls_starved; *pp != NULL; pp = &(*pp)->tls_starved_next) {
		if (*pp == c) {
			*pp = c->tls_starved_next;
			break;
		}
	}
	c->tls_starved = false;
	c->tls_starved_next = NULL;
}

/* tls_starve parks `c` until TLS buffers come back (shard.c wakes it). */
static void tls_starve(struct shard *s, struct conn *c)
{
	if (c->tls_starved)
		return;
	c->tls_starved = true;
	c->tls_starved_next = s->tls_starved;
	s->tls_starved = c;
}

static void conn_free(struct shard *s, struct conn *c)
{
	RLB_ASSERT(c->ops == 0);
	RLB_ASSERT(c->up == NULL);
	if (c->starved)
		unstarve(s, c);
	if (c->tls_starved)
		tls_unstarve(s, c);
	if (c->queued)
		dequeue(s, c);
	c->flush_pending = false;
	timer_disarm(&s->wheel, &c->timer);
	if (c->h2 != NULL)
		h2_parent_freed(s, c);
	bufq_clear(&c->in, conn_inpool(s, c));
	if (c->h2_stream)
		h2_stream_freed(s, c); /* after c->in: its pool depends on h2_parent */
	tls_free(&c->tls);             /* ... and on tls.ssl */
	bufq_clear(&c->rin, conn_rinpool(s, c));
	put_head(s, &c->req_head);
	put_head(s, &c->resp_head);
	put_head(s, &c->local_buf);
	caching_end(s, c);
	zx_end(s, c);
	protect_conn_close(s, c);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CONN_FREE;
	c->gen++;
	s->conn_free[s->conn_nfree++] = conn_slot(s, c);
	RLB_ASSERT(s->conns_active > 0);
	s->conns_active--;
}

/* conn_abort may run several times for one connection (a timer, then the
 * completions that the shutdown provokes): it is idempotent. Operations in
 * flight end with errors once the socket is shut down; the slot is freed
 * when the last one has completed. A linked upstream connection is closed
 * too: it may still be sending bytes from c->in. */
void conn_abort(struct shard *s, struct conn *c)
{
	if (c->state == CONN_FREE)
		return;
	if (c->state != CONN_CLOSING) {
		c->state = CONN_CLOSING;
		if (c->queued)
			dequeue(s, c);
		caching_unwait(s, c);
		timer_disarm(&s->wheel, &c->timer);
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
		if (c->h2 != NULL)
			h2_parent_closing(s, c);
		if (c->ops > 0) {
			ring_cancel_fd(&s->ring, c->fd,
			               ring_ud(OP_CCANCEL, conn_slot(s, c), c->gen));
			c->ops++;
		}
		if (c->up != NULL)
			up_close(s, c->up);
	}
	if (c->ops == 0 && c->up == NULL)
		conn_free(s, c);
}

/* conn_linger closes after a final response: shutting down only the write
 * side and reading until the client closes (or a short deadline) keeps the
 * kernel from answering unread request bytes with a reset, which could
 * destroy the response before the client reads it. */
static void conn_send_now(struct shard *s, struct conn *c);

static void conn_linger(struct shard *s, struct conn *c)
{
	c->state = CONN_LINGER;
	bufq_clear(&c->in, conn_inpool(s, c));
	bufq_clear(&c->rin, conn_rinpool(s, c));
	if (c->recv_eof || s->cfg->timeouts.linger_ms == 0) {
		conn_abort(s, c);
		return;
	}
	if (c->tls.ssl != NULL) {
		/* close_notify (or the alert a failed handshake left) goes out
		 * first; the write side shuts once it is sent. */
		bufq_clear(&c->tls.in, cpool(s));
		tls_close_notify(&c->tls);
		if (c->tls.out.bytes > 0 || c->send_on) {
			c->shut_pending = true;
			conn_send_now(s, c);
			conn_arm(s, c, s->cfg->timeouts.linger_ms);
			return;
		}
	}
	shutdown(c->fd, SHUT_WR);
	conn_arm(s, c, s->cfg->timeouts.linger_ms);
}

/* ---- sending to the client ---- */

/* pending_plain returns the next run of response bytes waiting to go to the
 * client, in the order conn_send_now sends them; NULL when none. */
static const char *pending_plain(struct shard *s, struct conn *c, size_t *out_len)
{
	if (c->local != NULL) {
		*out_len = c->local_len - c->local_sent;
		return c->local + c->local_sent;
	}
	if (c->resp_head >= 0) {
		*out_len = c->resp_head_len - c->resp_head_sent;
		return hpool_data(&s->heads, (uint32_t)c->resp_head) + c->resp_head_sent;
	}
	if (c->resp_fwd > 0 && c->resp_phase >= RESP_BODY)
		return conn_body_front(s, c, out_len);
	*out_len = 0;
	return NULL;
}

/* tls_encrypt turns pending response bytes into records in c->tls.out,
 * releasing them as plaintext is taken (BoringSSL copies it), until the
 * ciphertext queue holds a few records' worth. */
static void tls_encrypt(struct shard *s, struct conn *c)
{
	const uint64_t out_max = 4 * (uint64_t)s->cfg->buffers.size;

	if (!c->tls.established || c->tls.failed || c->resp_aborted)
		return;
	if (c->h2 != NULL) {
		h2_produce(s, c, out_max);
		return;
	}
	while (c->tls.out.bytes < out_max) {
		size_t len, took = 0;
		const char *p = pending_plain(s, c, &len);
		enum tls_result r;

		if (p == NULL || len == 0)
			return;
		/* Two free buffers hold any record: never stop half-way. */
		if (s->tls_pool.nfree < 2) {
			tls_starve(s, c);
			return;
		}
		r = tls_write(&c->tls, p, len < 16384 ? len : 16384, &took);
		if (took > 0)
			conn_account_sent(s, c, took);
		if (r == TLS_NOBUF) {
			tls_starve(s, c);
			return;
		}
		if (r != TLS_OK) {
			/* The session is broken: shutting the socket ends the
			 * receive with an error, and the connection with it. */
			c->resp_aborted = true;
			shutdown(c->fd, SHUT_RDWR);
			return;
		}
	}
}

/* tls_send_now encrypts what is pending and sends c->tls.out. */
static void tls_send_now(struct shard *s, struct conn *c)
{
	uint64_t bytes = 0;
	int n;

	if (c->state != CONN_LINGER)
		tls_encrypt(s, c);
	/* encrypting may have run HTTP/2 streams, which may have sent already */
	if (c->tls.out.bytes == 0 || c->send_on || c->state == CONN_CLOSING ||
	    c->state == CONN_FREE)
		return;
	n = bufq_iov(&c->tls.out, &s->tls_pool.pool, 0, UINT64_MAX, c->iov, CONN_IOV_MAX, &bytes);
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = (size_t)n;
	ring_sendmsg(&s->ring, c->fd, &c->msg, ring_ud(OP_CSEND, conn_slot(s, c), c->gen));
	c->ops++;
	c->send_on = true;
	c->send_inflight = bytes;
	conn_update_timer(s, c);
}

/* bg_discard drops what a background fetch would send: nobody reads it.
 * proxy_step calls it where it would send, so the transaction moves on. */
static void bg_discard(struct shard *s, struct conn *c)
{
	for (int turns = 0; turns < 1024; turns++) {
		size_t len;

		if (pending_plain(s, c, &len) == NULL || len == 0)
			break;
		conn_account_sent(s, c, len);
	}
}

static void conn_send_now(struct shard *s, struct conn *c)
{
	int n = 0;
	uint64_t bytes = 0;

	if (c->send_on || c->state == CONN_CLOSING || c->state == CONN_FREE)
		return;
	if (c->h2_stream) {
		h2_stream_send(s, c);
		return;
	}
	if (c->bg) {
		bg_discard(s, c);
		return;
	}
	if (c->tls.ssl != NULL) {
		tls_send_now(s, c);
		return;
	}
	if (c->local != NULL) {
		c->iov[n].iov_base = (char *)c->local + c->local_sent;
		c->iov[n].iov_len = c->local_len - c->local_sent;
		bytes += c->iov[n++].iov_len;
	} else {
		if (c->resp_head >= 0) {
			c->iov[n].iov_base =
			        hpool_data(&s->heads, (uint32_t)c->resp_head) + c->resp_head_sent;
			c->iov[n].iov_len = c->resp_head_len - c->resp_head_sent;
			bytes += c->iov[n++].iov_len;
		}
		if (c->resp_fwd > 0 && c->resp_phase >= RESP_BODY && c->cobj_direct) {
			/* a cached object: sent from its own memory, no copy */
			c->iov[n].iov_base = (char *)c->cbody + (c->cbody_len - c->resp_fwd);
			c->iov[n].iov_len = (size_t)c->resp_fwd;
			bytes += c->iov[n++].iov_len;
		} else if (c->resp_fwd > 0 && c->resp_phase >= RESP_BODY) {
			uint64_t more = 0;

			n += bufq_iov(conn_bodyq(c), conn_bodypool(s, c), 0, c->resp_fwd,
			              c->iov + n, CONN_IOV_MAX - n, &more);
			bytes += more;
		}
	}
	if (bytes == 0)
		return;
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = (size_t)n;
	ring_sendmsg(&s->ring, c->fd, &c->msg, ring_ud(OP_CSEND, conn_slot(s, c), c->gen));
	c->ops++;
	c->send_on = true;
	c->send_inflight = bytes;
	conn_update_timer(s, c);
}

/* conn_send_more queues the connection to be sent to at the end of the
 * loop turn: a response that arrives in several receive completions of one
 * turn (a head and body in two buffers, a body in many) then leaves in one
 * sendmsg instead of one per completion. */
void conn_send_more(struct shard *s, struct conn *c)
{
	if (c->send_on || c->flush_pending)
		return;
	if (s->num_flush == s->flush_cap) {
		conn_send_now(s, c); /* the list is full: no batching this time */
		return;
	}
	c->flush_pending = true;
	s->flush[s->num_flush++] = (uint64_t)c->gen << 32 | conn_slot(s, c);
}

void conn_flush_all(struct shard *s)
{
	/* Sending queues nothing new, but stays correct if it did: the walk
	 * is by index up to the current length. */
	for (uint32_t i = 0; i < s->num_flush; i++) {
		uint32_t slot = (uint32_t)(s->flush[i] & 0xffffffffu);
		struct conn *c = &s->conns[slot];

		if (c->gen != (uint32_t)(s->flush[i] >> 32) || !c->flush_pending)
			continue;
		c->flush_pending = false;
		conn_send_now(s, c);
	}
	s->num_flush = 0;
}

/* conn_local answers the current request with an error page of our own.
 * The connection stays open only when the request was read completely and
 * the client wants it. */
/* out_busy says some of what conn_local would replace is being sent: a
 * constant response or a head partly sent, a send in flight, or TLS output
 * waiting for buffers. */
static bool out_busy(const struct conn *c)
{
	return c->send_on || c->tls_starved || (c->local != NULL && c->local_sent > 0) ||
	       (c->resp_head >= 0 && c->resp_head_sent > 0);
}

/* retry_page replaces a pre-built page by one that carries Retry-After,
 * written into a head buffer the transaction holds until it ends. */
static void retry_page(struct shard *s, struct conn *c, int status, bool ka)
{
	char extra[48];
	size_t n;

	if (c->local_buf < 0)
		c->local_buf = hpool_get(&s->heads);
	if (c->local_buf < 0)
		return; /* no buffer: the page goes without the field */
	snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", c->retry_after);
	n = h1_write_error_extra(hpool_data(&s->heads, (uint32_t)c->local_buf), s->heads.size,
	                         status, ka, c->http10, extra);
	if (n == 0)
		return;
	c->local = hpool_data(&s->heads, (uint32_t)c->local_buf);
	c->local_len = (uint32_t)n;
}

static void conn_local(struct shard *s, struct conn *c, int status)
{
	size_t i;
	bool ka;

	/* A backend failure with a stale entry at hand: the cache answers. */
	if (status >= 500 && c->cstale != NULL && caching_stale_on_error(s, c, status))
		return;
	error_pages_init();
	for (i = 0; i < NUM_ERRORS && error_statuses[i] != status; i++)
		;
	RLB_ASSERT(i < NUM_ERRORS);
	/* A refusal by a protection rule (a rate limit, a filter) keeps a
	 * complete request's connection: closing it would make a TLS client
	 * that is over its rate pay, and make us pay, a handshake per retry. */
	if (c->req_phase != REQ_DONE || c->req_fwd > 0 ||
	    (status < 500 && c->block_reason[0] == '\0'))
		c->close_after = true;
	ka = c->keep_alive && !c->close_after && !s->draining;
	if (!ka)
		c->close_after = true;
	c->state = CONN_PROXY;
	c->status = status;
	c->resp_phase = RESP_DONE;
	c->resp_fwd = 0;
	if (!c->h2_stream && out_busy(c)) {
		/* A 100 Continue or an interim head is on its way out: the page
		 * follows it (conn_step), or the client would get both garbled. */
		c->pending_status = (uint16_t)status;
		return;
	}
	c->pending_status = 0;
	c->local = error_pages[i][ka][c->http10];
	c->local_len = error_lens[i][ka][c->http10];
	c->local_sent = 0;
	if (c->retry_after > 0)
		retry_page(s, c, status, ka);
	c->resp_phase = RESP_DONE;
	put_head(s, &c->resp_head);
	c->resp_fwd = 0;
	s->stats.responses[status / 100]++;
}

void conn_refuse_cached(struct shard *s, struct conn *c, int status)
{
	conn_local(s, c, status);
}

void conn_refuse(struct shard *s, struct conn *c, int status)
{
	c->state = CONN_PROXY;
	c->req_phase = REQ_DONE;
	c->keep_alive = false;
	conn_local(s, c, status);
}

void conn_close_h2(struct shard *s, struct conn *c)
{
	conn_linger(s, c);
}

void conn_update_timer_h2(struct shard *s, struct conn *c)
{
	conn_update_timer(s, c);
}

void conn_tls_starve(struct shard *s, struct conn *c)
{
	tls_starve(s, c);
}

/* ---- the request head ---- */

static bool method_idempotent(struct h1_str m)
{
	static const char *const idem[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};

	for (size_t i = 0; i < RLB_ARRAY_LEN(idem); i++)
		if (m.len == strlen(idem[i]) && memcmp(m.ptr, idem[i], m.len) == 0)
			return true;
	return false;
}

/* host_for_route strips the port from a Host value ("a.b:8080" -> "a.b",
 * "[::1]:80" -> "[::1]"). */
static struct h1_str host_for_route(struct h1_str h)
{
	if (h.len > 0 && h.ptr[0] == '[') {
		const char *e = memchr(h.ptr, ']', h.len);

		if (e != NULL)
			h.len = (size_t)(e - h.ptr) + 1;
		return h;
	}
	for (size_t i = 0; i < h.len; i++) {
		if (h.ptr[i] == ':') {
			h.len = i;
			break;
		}
	}
	return h;
}

/* split_target turns an absolute-form target (RFC 9112 §3.2.2) into the
 * authority, which replaces Host, and the origin-form path. Returns 0 for a
 * target ringlb cannot forward. */
static int split_target(const struct h1_msg *m, struct h1_str *out_target, struct h1_str *out_host)
{
	struct h1_str t = m->target;
	size_t skip = 0;

	out_host->ptr = NULL;
	out_host->len = 0;
	*out_target = t;
	if (t.ptr[0] == '/')
		return 1;
	if (t.len == 1 && t.ptr[0] == '*')
		return h1_str_ieq(m->method, "OPTIONS");
	if (t.len > 7 && strncasecmp(t.ptr, "http://", 7) == 0)
		skip = 7;
	else if (t.len > 8 && strncasecmp(t.ptr, "https://", 8) == 0)
		skip = 8;
	else
		return 0;
	out_host->ptr = t.ptr + skip;
	out_host->len = t.len - skip;
	for (size_t i = skip; i < t.len; i++) {
		if (t.ptr[i] == '/' || t.ptr[i] == '?') {
			out_host->len = i - skip;
			out_target->ptr = t.ptr + i;
			out_target->len = t.len - i;
			break;
		}
	}
	if (out_host->len == 0)
		return 0;
	if (out_target->ptr == t.ptr) {
		out_target->ptr = "/";
		out_target->len = 1;
	}
	return 1;
}

static void copy_str(char *dst, size_t cap, struct h1_str s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;

	memcpy(dst, s.ptr, n);
	dst[n] = '\0';
}

/* txn_reset prepares the connection for a new request. */
static void txn_reset(struct shard *s, struct conn *c)
{
	caching_end(s, c);
	zx_end(s, c);
	put_head(s, &c->req_head);
	put_head(s, &c->resp_head);
	put_head(s, &c->local_buf);
	c->retry_after = 0;
	c->block_reason[0] = '\0';
	c->route = 0;
	c->client[0] = '\0';
	memset(&c->scan, 0, sizeof(c->scan));
	memset(&c->rscan, 0, sizeof(c->rscan));
	memset(&c->req_chunk, 0, sizeof(c->req_chunk));
	memset(&c->resp_chunk, 0, sizeof(c->resp_chunk));
	c->req_phase = REQ_DONE;
	c->resp_phase = RESP_CONNECT;
	c->req_body = H1_BODY_NONE;
	c->resp_body = H1_BODY_NONE;
	c->req_left = c->req_fwd = c->req_total = 0;
	c->resp_left = c->resp_fwd = 0;
	c->req_head_len = c->req_head_sent = 0;
	c->resp_head_len = c->resp_head_sent = 0;
	c->local = NULL;
	c->pending_status = 0;
	c->tries = 0;
	c->tried = 0;
	c->status = 0;
	c->bytes_out = 0;
	c->resp_started = c->up_reusable = c->resp_dechunk = false;
	c->retried_reuse = c->retry_pending = c->retry_fresh = c->resp_aborted = false;
	c->head_req = c->http10 = c->idempotent = false;
	c->keep_alive = true;
	c->backend_uid = UINT32_MAX;
	c->sticky_idx = -1;
	c->sticky_sent = 0;
	c->method[0] = c->target[0] = '\0';
	c->request_id[0] = '\0';
	c->zwant = 0;
}

/* note_request records what the transaction needs from the parsed head,
 * before the head's bytes are released. */
static void note_request(struct shard *s, struct conn *c, const struct h1_msg *m)
{
	const uint32_t limit = s->cfg->limits.requests_per_conn;

	/* The last request a connection may carry is answered with
	 * "Connection: close", then the connection closes cleanly. */
	if (!c->h2_stream && limit > 0 && ++c->nreq >= limit) {
		c->close_after = true;
		s->stats.conn_request_limit++;
	}
	c->state = CONN_PROXY;
	c->http10 = m->version_minor == 0;
	c->keep_alive = m->keep_alive;
	c->head_req = h1_str_ieq(m->method, "HEAD");
	c->idempotent = method_idempotent(m->method);
	c->req_body = (uint8_t)m->body;
	c->req_left = m->body == H1_BODY_LENGTH ? m->content_length : 0;
	c->req_phase = (m->body == H1_BODY_NONE || (m->body == H1_BODY_LENGTH && c->req_left == 0))
	                       ? REQ_DONE
	                       : REQ_BODY;
	if (c->req_phase == REQ_BODY)
		protect_body_start(s, c);
	if (s->cfg->access_log.enabled) {
		copy_str(c->method, sizeof(c->method), m->method);
		copy_str(c->target, sizeof(c->target), m->target);
	}
	s->stats.requests++;
}

/* refuse_request answers a request that must not be forwarded. */
static void refuse_request(struct shard *s, struct conn *c, const struct h1_msg *m, int status)
{
	note_request(s, c, m);
	bufq_consume(&c->in, conn_inpool(s, c), m->head_len);
	conn_local(s, c, status);
}

/* set_request_id gives the request its X-Request-ID: the client's own when
 * headers.request_id_trusted (a proxy in front made it) and it is a sane
 * token, else a new one: 32 hex digits, the shard's random salt (drawn at
 * start-up) and a hash of its request counter, so ids differ across
 * shards and restarts. Requests refused before routing have none. */
static void set_request_id(struct shard *s, struct conn *c, const struct h1_msg *m)
{
	const struct config_headers *hc = &s->cfg->headers;

	c->request_id[0] = '\0';
	if (!hc->request_id)
		return;
	for (size_t i = 0; hc->request_id_trusted && i < m->num_headers; i++) {
		struct h1_str v = m->headers[i].value;
		bool ok = h1_str_ieq(m->headers[i].name, "X-Request-ID") && v.len > 0 &&
		          v.len < sizeof(c->request_id);

		for (size_t k = 0; ok && k < v.len; k++)
			ok = v.ptr[k] > 0x20 && v.ptr[k] < 0x7f && v.ptr[k] != '"';
		if (ok) {
			memcpy(c->request_id, v.ptr, v.len);
			c->request_id[v.len] = '\0';
			return;
		}
	}
	s->request_seq++;
	snprintf(c->request_id, sizeof(c->request_id), "%016llx%016llx",
	         (unsigned long long)s->request_salt,
	         (unsigned long long)XXH3_64bits_withSeed(&s->request_seq, sizeof(s->request_seq),
	                                                  s->request_salt ^ s->id));
}

/* write_request writes the head sent upstream into a head buffer. Returns 0
 * or the status to answer instead. */
static int write_request(struct shard *s, struct conn *c, const struct h1_msg *m,
                         struct h1_str target, struct h1_str host)
{
	struct h1_fwd_request fwd;
	int32_t h = hpool_get(&s->heads);
	size_t n;

	if (h < 0)
		return 503;
	memset(&fwd, 0, sizeof(fwd));
	fwd.client_addr.ptr = c->peer;
	fwd.client_addr.len = strlen(c->peer);
	fwd.proto.ptr = c->tls.ssl != NULL || c->h2_stream ? "https" : "http";
	fwd.proto.len = strlen(fwd.proto.ptr);
	fwd.target = target;
	fwd.host = host;
	fwd.request_id.ptr = c->request_id;
	fwd.request_id.len = strlen(c->request_id);
	n = h1_write_request(hpool_data(&s->heads, (uint32_t)h), s->heads.size, m, &fwd);
	if (n == 0) {
		hpool_put(&s->heads, (uint32_t)h);
		return 431;
	}
	c->req_head = h;
	c->req_head_len = (uint32_t)n;
	c->req_head_sent = 0;
	return 0;
}

/* redirect_https answers a request on a redirecting plain listener with
 * 301 (GET, HEAD) or 308 (other methods keep theirs) to the same host and
 * target over https. A request without a host cannot be redirected: 400. */
static void redirect_https(struct shard *s, struct conn *c, const struct h1_msg *m,
                           struct h1_str target, struct h1_str host)
{
	uint32_t port = s->listeners[c->listener].redirect_port;
	bool get = h1_str_ieq(m->method, "GET") || h1_str_ieq(m->method, "HEAD");
	size_t hl = host.len;
	char portbuf[16] = "";
	int32_t h;
	int n;

	/* the host without its port; an IPv6 literal keeps its brackets */
	if (hl > 0 && host.ptr[0] == '[') {
		const char *rb = memchr(host.ptr, ']', hl);
		hl = rb != NULL ? (size_t)(rb - host.ptr) + 1 : 0;
	} else if (hl > 0) {
		const char *colon = memchr(host.ptr, ':', hl);
		if (colon != NULL)
			hl = (size_t)(colon - host.ptr);
	}
	h = hl > 0 ? hpool_get(&s->heads) : -1;
	if (h < 0) {
		refuse_request(s, c, m, hl > 0 ? 503 : 400);
		return;
	}
	if (port != 443)
		snprintf(portbuf, sizeof(portbuf), ":%u", port);
	note_request(s, c, m);
	if (c->req_phase != REQ_DONE || s->draining || !c->keep_alive)
		c->close_after = true; /* the body is not read */
	n = snprintf(hpool_data(&s->heads, (uint32_t)h), s->heads.size,
	             "HTTP/1.%d %s\r\nLocation: https://%.*s%s%.*s\r\nContent-Length: 0\r\n"
	             "Connection: %s\r\n\r\n",
	             c->http10 ? 0 : 1, get ? "301 Moved Permanently" : "308 Permanent Redirect",
	             (int)hl, host.ptr, portbuf, (int)target.len, target.ptr,
	             c->close_after ? "close" : "keep-alive");
	bufq_consume(&c->in, conn_inpool(s, c), m->head_len); /* m is invalid from here */
	if (n <= 0 || (uint32_t)n >= s->heads.size) {
		hpool_put(&s->heads, (uint32_t)h);
		c->req_phase = REQ_DONE;
		conn_local(s, c, 414);
		return;
	}
	c->status = get ? 301 : 308;
	c->resp_head = h;
	c->resp_head_len = (uint32_t)n;
	c->resp_head_sent = 0;
	c->resp_phase = RESP_DONE;
	c->resp_started = true;
	s->stats.responses[3]++;
}

/* ---- waiting for a backend slot ---- */

static void dequeue(struct shard *s, struct conn *c)
{
	uint32_t p = c->pool;
	struct conn *prev = NULL;

	for (struct conn *q = s->queue_head[p]; q != NULL; prev = q, q = q->q_next) {
		if (q != c)
			continue;
		if (prev != NULL)
			prev->q_next = c->q_next;
		else
			s->queue_head[p] = c->q_next;
		if (s->queue_tail[p] == c)
			s->queue_tail[p] = prev;
		s->queue_len[p]--;
		s->queued_total--;
		break;
	}
	c->q_next = NULL;
	c->queued = false;
}

/* enqueue makes a request wait for a slot when every backend it may use is
 * at its max_connections: at most queue_max per pool and shard, for at most
 * queue_timeout; beyond either, 503 (as HAProxy's queue does). */
static void enqueue(struct shard *s, struct conn *c)
{
	const struct snapshot *snap = snapshot_current();
	const struct snap_pool *sp = c->pool < snap->num_pools ? &snap->pools[c->pool] : NULL;

	if (sp == NULL || s->queue_len[c->pool] >= sp->queue_max) {
		conn_local(s, c, 503);
		return;
	}
	c->queued = true;
	c->q_next = NULL;
	if (s->queue_tail[c->pool] != NULL)
		s->queue_tail[c->pool]->q_next = c;
	else
		s->queue_head[c->pool] = c;
	s->queue_tail[c->pool] = c;
	s->queue_len[c->pool]++;
	s->queued_total++;
	conn_arm(s, c, sp->queue_timeout_ms);
}

/* acquire asks for an upstream connection and handles the answer: go on,
 * wait in the queue, or answer `status`. */
static void acquire(struct shard *s, struct conn *c, bool fresh, int status)
{
	int r = up_acquire(s, c, fresh);

	if (r < 0)
		enqueue(s, c);
	else if (r == 0)
		conn_local(s, c, status);
}

void conn_run_queues(struct shard *s)
{
	for (uint32_t p = 0; s->queued_total > 0 && p < CONFIG_POOLS_MAX; p++) {
		while (s->queue_head[p] != NULL) {
			struct conn *c = s->queue_head[p];
			int r = up_acquire(s, c, c->retry_fresh);

			if (r < 0)
				break; /* still full: the rest of this queue waits too */
			dequeue(s, c);
			conn_update_timer(s, c);
			if (r == 0)
				conn_local(s, c, 503);
			conn_step(s, c);
		}
	}
}

/* pool_budget returns this shard's retry budget for pool `pool`, starting
 * all budgets afresh when a reload renumbered the pools. */
static struct retry_budget *pool_budget(struct shard *s, const struct snapshot *snap, uint32_t pool)
{
	if (s->budget_version != snap->version) {
		for (size_t i = 0; i < RLB_ARRAY_LEN(s->budgets); i++)
			budget_init(&s->budgets[i], 10000, s->now_ms);
		s->budget_version = snap->version;
	}
	return &s->budgets[pool];
}

/* cookie_value finds cookie `name` in the Cookie fields of `m` (RFC 6265
 * §4.2.1: "name=value" pairs separated by "; "). */
static int cookie_value(const struct h1_msg *m, const char *name, size_t name_len,
                        struct h1_str *out)
{
	for (size_t i = 0; i < m->num_headers; i++) {
		const char *p, *end;

		if (!h1_str_ieq(m->headers[i].name, "Cookie"))
			continue;
		p = m->headers[i].value.ptr;
		end = p + m->headers[i].value.len;
		while (p < end) {
			const char *semi = memchr(p, ';', (size_t)(end - p));
			const char *pair_end = semi != NULL ? semi : end;

			while (p < pair_end && (*p == ' ' || *p == '\t'))
				p++;
			if ((size_t)(pair_end - p) > name_len && memcmp(p, name, name_len) == 0 &&
			    p[name_len] == '=') {
				out->ptr = p + name_len + 1;
				out->len = (size_t)(pair_end - out->ptr);
				return 1;
			}
			p = pair_end + 1;
		}
	}
	return 0;
}

/* sticky_index finds the backend a sticky cookie names (16 hex digits of
 * its sticky id); -1 when the pool is not sticky or the cookie is absent,
 * malformed or names no backend of the pool (say, one removed since). */
static int32_t sticky_index(const struct snap_pool *sp, const struct h1_msg *m)
{
	struct h1_str v;
	uint64_t id = 0;

	if (sp->sticky_cookie_len == 0 ||
	    !cookie_value(m, sp->sticky_cookie, sp->sticky_cookie_len, &v) || v.len != 16)
		return -1;
	for (size_t i = 0; i < 16; i++) {
		char ch = v.ptr[i];
		int d = ch >= '0' && ch <= '9'   ? ch - '0'
		        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
		                                 : -1;

		if (d < 0)
			return -1;
		id = id << 4 | (uint64_t)d;
	}
	for (uint32_t i = 0; i < sp->lb.num_backends; i++)
		if (sp->lb.backends[i].sticky_id == id)
			return (int32_t)i;
	return -1;
}

/* request_hash hashes what the pool's hash key names (XXH3). A header or
 * cookie the request lacks falls back to the client address, so such
 * requests still spread over the pool instead of landing on one backend. */
static uint64_t request_hash(const struct snap_pool *sp, const struct conn *c,
                             const struct h1_msg *m)
{
	struct h1_str key = {.ptr = c->peer, .len = strlen(c->peer)};

	switch (sp->hash_key) {
	case CONFIG_HASH_URI:
		key = m->target;
		break;
	case CONFIG_HASH_HEADER:
		for (size_t i = 0; i < m->num_headers; i++) {
			if (m->headers[i].name.len == sp->hash_key_len &&
			    strncasecmp(m->headers[i].name.ptr, sp->hash_key_name,
			                sp->hash_key_len) == 0) {
				key = m->headers[i].value;
				break;
			}
		}
		break;
	case CONFIG_HASH_COOKIE:
		cookie_value(m, sp->hash_key_name, sp->hash_key_len, &key);
		break;
	default:
		break;
	}
	return XXH3_64bits(key.ptr, key.len);
}

/* start_request checks what the framing rules alone cannot decide, routes,
 * writes the upstream head while the parsed head is still in its buffer,
 * then releases the head's bytes and asks for an upstream connection. */
static void start_request(struct shard *s, struct conn *c, const struct h1_msg *m)
{
	const struct snapshot *snap = snapshot_current();
	const struct snap_route *route;
	struct h1_str target, host;
	int32_t pool, zone;
	int err;

	if (m->expect_other) {
		refuse_request(s, c, m, 417); /* RFC 9110 §10.1.1 */
		return;
	}
	if (h1_str_ieq(m->method, "CONNECT")) {
		refuse_request(s, c, m, 501);
		return;
	}
	if (!split_target(m, &target, &host)) {
		refuse_request(s, c, m, 400);
		return;
	}
	if (s->listeners[c->listener].redirect_port != 0) {
		redirect_https(s, c, m, target, host.len > 0 ? host : m->host);
		return;
	}
	if (m->body == H1_BODY_LENGTH && s->cfg->limits.body_bytes_max > 0 &&
	    m->content_length > s->cfg->limits.body_bytes_max) {
		refuse_request(s, c, m, 413);
		return;
	}
	route = snapshot_find_route(snap, host_for_route(host.len > 0 ? host : m->host), target);
	pool = route != NULL ? (int32_t)route->pool : (snap->num_pools > 0 ? 0 : -1);
	zone = route != NULL ? route->cache_zone : -1;
	if (pool < 0) {
		refuse_request(s, c, m, 404);
		return;
	}
	switch (protect_request(s, c, m, snap, route, &err)) {
	case PROTECT_REFUSE:
		refuse_request(s, c, m, err);
		return;
	case PROTECT_HOLD:
		/* The head waits in c->in; the timer parses it again from the
		 * start (conn_on_timer). */
		memset(&c->scan, 0, sizeof(c->scan));
		return;
	default:
		break;
	}
	set_request_id(s, c, m);
	err = write_request(s, c, m, target, host);
	if (err != 0) {
		refuse_request(s, c, m, err);
		return;
	}
	zx_request(s, c, m);
	c->lb_hash = snap->pools[pool].hash_key != CONFIG_HASH_NONE
	                     ? request_hash(&snap->pools[pool], c, m)
	                     : 0;
	c->sticky_idx = sticky_index(&snap->pools[pool], m);
	note_request(s, c, m);
	bufq_consume(&c->in, conn_inpool(s, c), m->head_len); /* m's slices are invalid from here */
	budget_note_request(pool_budget(s, snap, (uint32_t)pool), s->now_ms);
	c->pool = (uint32_t)pool;
	c->snap_version = snap->version;
	c->resp_phase = RESP_CONNECT;
	c->cache_zone = zone >= 0 ? (uint16_t)(zone + 1) : 0;
	c->cache_enc = c->zwant;
	if (c->cache_zone != 0 && caching_begin(s, c))
		return; /* served from the cache, or waiting for another fetch */
	conn_update_timer(s, c);
	acquire(s, c, false, 503);
}

static void conn_init(struct shard *s, struct conn *c, int fd, uint32_t listener);

struct conn *conn_spawn_bg(struct shard *s, const struct conn *from)
{
	struct conn *c;
	int32_t h;

	if (s->conn_nfree == 0 || s->draining || from->req_head < 0)
		return NULL;
	h = hpool_get(&s->heads);
	if (h < 0)
		return NULL;
	c = &s->conns[s->conn_free[--s->conn_nfree]];
	RLB_ASSERT(c->state == CONN_FREE && c->ops == 0);
	s->conns_active++;
	conn_init(s, c, -1, from->listener);
	c->bg = true;
	memcpy(hpool_data(&s->heads, (uint32_t)h), hpool_data(&s->heads, (uint32_t)from->req_head),
	       from->req_head_len);
	c->req_head = h;
	c->req_head_len = from->req_head_len;
	c->state = CONN_PROXY;
	c->req_phase = REQ_DONE;
	c->resp_phase = RESP_CONNECT;
	c->idempotent = true;
	c->pool = from->pool;
	c->snap_version = from->snap_version;
	c->lb_hash = from->lb_hash;
	c->zwant = 0; /* a refresh stores what the backend sends; nobody reads it */
	c->t_start_ms = s->now_ms;
	memcpy(c->peer, from->peer, sizeof(c->peer));
	return c;
}

void conn_cache_go(struct shard *s, struct conn *c)
{
	conn_update_timer(s, c); /* the wait's timer no longer applies */
	if (c->cache_mode != CM_SERVE && c->cache_mode != CM_WAIT && c->local == NULL &&
	    c->pending_status == 0 && c->resp_phase == RESP_CONNECT && c->up == NULL)
		acquire(s, c, false, 503);
	conn_step(s, c);
	if (c->state != CONN_FREE && c->state != CONN_CLOSING)
		conn_send_more(s, c);
}

/* parse_head parses the request head at the front of c->in. Returns
 * H1_PARTIAL while more bytes are needed; otherwise the connection has moved
 * to CONN_PROXY (forwarding, or answering an error). */
static enum h1_result parse_head(struct shard *s, struct conn *c)
{
	struct h1_msg m;
	enum h1_result r;
	size_t len;
	char *p = bufq_front(&c->in, conn_inpool(s, c), &len);

	/* A head that straddles buffers is made contiguous; header_bytes_max
	 * <= buffers.size guarantees a complete head fits in one buffer. */
	if (len < c->in.bytes && len < conn_inpool(s, c)->buf_size) {
		bufq_linearize(&c->in, conn_inpool(s, c));
		p = bufq_front(&c->in, conn_inpool(s, c), &len);
	}
	memset(&m, 0, sizeof(m));
	m.headers = s->headers;
	m.headers_cap = s->cfg->limits.headers_max;
	r = h1_parse_request(&c->scan, p, len, &s->req_limits, &m);
	if (r == H1_PARTIAL)
		return r;
	if (r != H1_OK) {
		s->stats.parse_errors++;
		rlb_log(LOG_DEBUG, "client %s: request refused: %s", c->peer, h1_result_name(r));
		c->state = CONN_PROXY;
		c->keep_alive = false;
		c->req_phase = REQ_DONE;
		c->close_after = true;
		conn_local(s, c, h1_result_status(r));
		return r;
	}
	start_request(s, c, &m);
	return r;
}

/* ---- body classification ---- */

/* classify_request marks newly received body bytes as ready to forward. A
 * framing error in a chunked body after forwarding began cannot be
 * answered: the connection is aborted. Returns 0 when it was. */
static int classify_request(struct shard *s, struct conn *c)
{
	uint64_t fresh = c->in.bytes - c->req_fwd;

	if (c->req_phase != REQ_BODY || fresh == 0)
		return 1;
	if (c->req_body == H1_BODY_LENGTH) {
		uint64_t take = fresh < c->req_left ? fresh : c->req_left;

		c->req_fwd += take;
		c->req_left -= take;
		c->req_total += take;
		if (c->req_left == 0)
			c->req_phase = REQ_DONE;
		return 1;
	}
	for (;;) {
		size_t len, used = 0;
		char *p = bufq_run(&c->in, conn_inpool(s, c), c->req_fwd, &len);
		enum h1_result r;

		if (p == NULL)
			return 1;
		r = h1_chunked_feed(&c->req_chunk, &s->chunk_limits, p, len, &used);
		c->req_fwd += used;
		c->req_total += used;
		if (s->cfg->limits.body_bytes_max > 0 &&
		    c->req_total > s->cfg->limits.body_bytes_max)
			r = H1_RESULT_COUNT; /* over the limit: 413 below */
		if (r == H1_OK) {
			c->req_phase = REQ_DONE;
			return 1;
		}
		if (r != H1_PARTIAL) {
			s->stats.parse_errors++;
			if (c->resp_started || c->req_head_sent > 0) {
				conn_abort(s, c);
				return 0;
			}
			c->req_phase = REQ_DONE;
			c->req_fwd = 0;
			if (c->up != NULL)
				up_close(s, c->up);
			conn_local(s, c, r == H1_RESULT_COUNT ? 413 : 400);
			return 1;
		}
	}
}

/* classify_response marks newly received response body bytes as ready to
 * send; for an HTTP/1.0 client a chunked body is de-chunked in place. */
static bool classify_response(struct shard *s, struct conn *c, bool *out_bad)
{
	/* Compressing, the classified raw bytes wait in rin for the encoder
	 * (zraw); otherwise they are the ones to send (resp_fwd). */
	uint64_t *fwd = c->zon ? &c->zraw : &c->resp_fwd;
	uint64_t fresh = c->rin.bytes - *fwd;
	bool tee = c->cache_store && !c->zon;

	*out_bad = false;
	if (c->resp_phase != RESP_BODY || fresh == 0)
		return c->resp_phase == RESP_DONE;
	if (c->resp_body == H1_BODY_CLOSE) {
		*fwd += fresh;
		return false;
	}
	if (c->resp_body == H1_BODY_LENGTH) {
		uint64_t take = fresh < c->resp_left ? fresh : c->resp_left;

		if (tee)
			caching_tee(s, c, *fwd, take, false);
		*fwd += take;
		c->resp_left -= take;
		return c->resp_left == 0;
	}
	for (;;) {
		size_t len, used = 0, data = 0;
		char *p = bufq_run(&c->rin, conn_rinpool(s, c), *fwd, &len);
		enum h1_result r;

		if (p == NULL)
			return false;
		if (c->resp_dechunk) {
			r = h1_chunked_decode(&c->resp_chunk, &s->chunk_limits, p, len, &used,
			                      &data);
			bufq_cut(&c->rin, conn_rinpool(s, c), *fwd + data, used - data);
			if (tee)
				caching_tee(s, c, *fwd, data, false);
			*fwd += data;
		} else {
			r = h1_chunked_feed(&c->resp_chunk, &s->chunk_limits, p, len, &used);
			if (tee)
				caching_tee(s, c, *fwd, used, true);
			*fwd += used;
		}
		if (r == H1_OK)
			return true;
		if (r != H1_PARTIAL) {
			*out_bad = true;
			return false;
		}
	}
}

/* ---- the response head ---- */

static void resp_done(struct shard *s, struct conn *c);

/* forward_interim passes a 1xx response on (RFC 9110 §15.2): never to an
 * HTTP/1.0 client, and never 101, since ringlb does not switch protocols. */
static int forward_interim(struct shard *s, struct conn *c, const struct h1_msg *m)
{
	struct h1_fwd_response fwd = {.client_http10 = false, .keep_alive = true};
	int32_t h;
	size_t n;

	if (m->status == 101)
		return 0;
	if (c->http10 || c->h2_stream)
		return 1; /* not for HTTP/1.0; dropped for HTTP/2 (advisory) */
	if (m->status == 100 && m->num_headers == 0) {
		c->local = continue_100;
		c->local_len = sizeof(continue_100) - 1;
		c->local_sent = 0;
		return 1;
	}
	h = hpool_get(&s->heads);
	if (h < 0)
		return 1; /* interim responses are advisory: drop it */
	n = h1_write_response(hpool_data(&s->heads, (uint32_t)h), s->heads.size, m, &fwd);
	if (n == 0) {
		hpool_put(&s->heads, (uint32_t)h);
		return 1;
	}
	c->resp_head = h;
	c->resp_head_len = (uint32_t)n;
	c->resp_head_sent = 0;
	return 1;
}

/* te_is_plain_chunked says the response's Transfer-Encoding is exactly one
 * "chunked" coding (a framed-chunked response may list others first). */
static bool te_is_plain_chunked(const struct h1_msg *m)
{
	int seen = 0;

	for (size_t i = 0; i < m->num_headers; i++) {
		if (!h1_str_ieq(m->headers[i].name, "Transfer-Encoding"))
			continue;
		if (++seen > 1 || !h1_str_ieq(m->headers[i].value, "chunked"))
			return false;
	}
	return true;
}

/* sticky_field writes the Set-Cookie field that pins the client to the
 * backend it was sent to. Returns its length, 0 if the pool changed. */
static int sticky_field(struct shard *s, struct conn *c, char *out, size_t cap)
{
	const struct snapshot *snap = snapshot_current();
	const struct snap_pool *sp;
	int n;

	(void)s;
	if (c->pool >= snap->num_pools || snap->pools[c->pool].sticky_cookie_len == 0)
		return 0;
	sp = &snap->pools[c->pool];
	n = snprintf(out, cap, "Set-Cookie: %s=%016llx; Path=/; HttpOnly\r\n", sp->sticky_cookie,
	             (unsigned long long)c->sticky_sent);
	return n > 0 && (size_t)n < cap ? n : 0;
}

static int write_final_head(struct shard *s, struct conn *c, const struct h1_msg *m)
{
	const struct shard_listener *sl = &s->listeners[c->listener];
	char extra[CONFIG_NAME_MAX + 64 + 160 +
	           sizeof(sl->hsts)]; /* cookie, X-Cache, X-Request-ID */
	struct h1_fwd_response fwd;
	bool ka;
	int32_t h;
	size_t n;

	c->resp_dechunk = m->body == H1_BODY_CHUNKED && (c->http10 || c->h2_stream);
	ka = c->keep_alive && !c->close_after && !s->draining && m->body != H1_BODY_CLOSE &&
	     !c->resp_dechunk;
	if (!ka)
		c->close_after = true;
	memset(&fwd, 0, sizeof(fwd));
	fwd.client_http10 = c->http10;
	fwd.keep_alive = ka;
	fwd.chunked = m->body == H1_BODY_CHUNKED && !c->http10;
	fwd.extra.ptr = extra;
	if (c->sticky_sent != 0)
		fwd.extra.len = (size_t)sticky_field(s, c, extra, sizeof(extra) - sizeof(sl->hsts));
	if (c->cache_mode != CM_NONE)
		fwd.extra.len += caching_extra(c, extra + fwd.extra.len,
		                               sizeof(extra) - sizeof(sl->hsts) - fwd.extra.len);
	if (c->request_id[0] != '\0') {
		int k = snprintf(extra + fwd.extra.len,
		                 sizeof(extra) - sizeof(sl->hsts) - fwd.extra.len,
		                 "X-Request-ID: %s\r\n", c->request_id);

		if (k > 0 && (size_t)k < sizeof(extra) - sizeof(sl->hsts) - fwd.extra.len)
			fwd.extra.len += (size_t)k;
	}
	if (sl->hsts_len > 0 && (c->tls.ssl != NULL || c->h2_stream)) {
		memcpy(extra + fwd.extra.len, sl->hsts, sl->hsts_len);
		fwd.extra.len += sl->hsts_len;
	}
	if (c->h2_stream) {
		int err = h2_submit_response(s, c, m, fwd.extra);

		c->resp_started = err == 0;
		return err;
	}
	h = hpool_get(&s->heads);
	if (h < 0)
		return 503;
	n = h1_write_response(hpool_data(&s->heads, (uint32_t)h), s->heads.size, m, &fwd);
	if (n == 0) {
		hpool_put(&s->heads, (uint32_t)h);
		return 502;
	}
	c->resp_head = h;
	c->resp_head_len = (uint32_t)n;
	c->resp_head_sent = 0;
	c->resp_started = true; /* a final response is committed: no 502 after this */
	return 0;
}

/* hide_fields removes the response fields that would name the backend's
 * software (headers.hide) and replaces or removes Server (headers.server),
 * before the head is stored, compressed or sent. */
static void hide_fields(struct shard *s, struct h1_msg *m)
{
	const struct config_headers *hc = &s->cfg->headers;
	bool server_off = strcmp(hc->server, "off") == 0;
	size_t n = 0;

	for (size_t i = 0; i < m->num_headers; i++) {
		struct h1_header *h = &m->headers[i];
		bool drop = false;

		for (const char *p = hc->hide; *p != '\0' && !drop;) {
			size_t len = strcspn(p, ",");

			drop = h->name.len == len && strncasecmp(h->name.ptr, p, len) == 0;
			p += len + (p[len] == ',');
		}
		if (h1_str_ieq(h->name, "Server") && hc->server[0] != '\0') {
			drop = server_off;
			h->value = (struct h1_str){hc->server, strlen(hc->server)};
		}
		if (!drop)
			m->headers[n++] = *h;
	}
	m->num_headers = n;
}

/* cache_takes_over lets compression rewrite a final head (for a compressed
 * body) and the cache see it; true when the cache answers instead. */
static bool cache_takes_over(struct shard *s, struct conn *c, struct h1_msg *m)
{
	if (c->zwant != 0)
		zx_response(s, c, m);
	if (c->cache_mode != CM_NONE && c->cache_mode != CM_SERVE &&
	    caching_response_head(s, c, m)) {
		zx_end(s, c);
		return true;
	}
	return false;
}

/* parse_response parses heads at the front of c->rin until the final one.
 * Returns 1 when progress was made, 0 when it must wait. */
static int parse_response(struct shard *s, struct conn *c)
{
	struct h1_msg m;
	enum h1_body orig_body;
	uint64_t orig_length;
	enum h1_result r;
	size_t len;
	char *p;
	int err;

	if (c->resp_phase != RESP_HEAD || c->local != NULL || c->resp_head >= 0 ||
	    c->rin.bytes == 0)
		return 0;
	p = bufq_front(&c->rin, conn_rinpool(s, c), &len);
	if (len < c->rin.bytes && len < conn_rinpool(s, c)->buf_size) {
		len = bufq_linearize(&c->rin, conn_rinpool(s, c));
		p = bufq_front(&c->rin, conn_rinpool(s, c), &len);
	}
	memset(&m, 0, sizeof(m));
	m.headers = s->headers;
	m.headers_cap = s->cfg->limits.headers_max;
	r = h1_parse_response(&c->rscan, p, len, &s->resp_limits, c->head_req, &m);
	if (r == H1_PARTIAL)
		return 0;
	if (r != H1_OK) {
		rlb_log(LOG_WARN, "backend %s sent an invalid response head: %s",
		        c->up != NULL ? "connection" : "-", h1_result_name(r));
		s->stats.upstream_errors++;
		if (c->up != NULL)
			up_close(s, c->up);
		conn_local(s, c, 502);
		return 1;
	}
	memset(&c->rscan, 0, sizeof(c->rscan));
	if (m.status < 200) {
		if (!forward_interim(s, c, &m)) {
			if (c->up != NULL)
				up_close(s, c->up);
			conn_local(s, c, 502);
			return 1;
		}
		bufq_consume(&c->rin, conn_rinpool(s, c), m.head_len);
		return 1;
	}
	if (m.body == H1_BODY_CHUNKED && !te_is_plain_chunked(&m)) {
		/* "gzip, chunked": ringlb forwards the framing as chunked and
		 * cannot announce the inner coding; refuse rather than pass
		 * content the client cannot decode. */
		if (c->up != NULL)
			up_close(s, c->up);
		conn_local(s, c, 502);
		return 1;
	}
	hide_fields(s, &m);
	orig_body = m.body;
	orig_length = m.content_length;
	if (c->up != NULL) {
		/* even when the cache answers instead: a 5xx that stale-if-error
		 * hides still counts against the backend */
		up_note_response_time(s, c->up, c->t_pick_us);
		up_report(s, c->up, c->pool, m.status < 500);
	}
	if (cache_takes_over(s, c, &m))
		return 1; /* the cache answers instead (refreshed or stale entry) */
	c->status = m.status;
	c->up_reusable = m.keep_alive;
	err = write_final_head(s, c, &m);
	if (c->zon) {
		/* the backend's framing, for classifying its raw body */
		m.body = orig_body;
		m.content_length = orig_length;
		c->resp_dechunk = orig_body == H1_BODY_CHUNKED;
	}
	if (err != 0) {
		if (c->up != NULL)
			up_close(s, c->up);
		conn_local(s, c, err);
		return 1;
	}
	s->stats.responses[m.status / 100 < 6 ? m.status / 100 : 0]++;
	bufq_consume(&c->rin, conn_rinpool(s, c), m.head_len);
	if (c->req_head_sent == c->req_head_len)
		put_head(s, &c->req_head); /* no retry once a response has begun */
	c->resp_body = (uint8_t)m.body;
	c->resp_left = m.content_length;
	c->resp_phase = RESP_BODY;
	if (m.body == H1_BODY_NONE || (m.body == H1_BODY_LENGTH && m.content_length == 0))
		resp_done(s, c);
	return 1;
}

/* resp_done runs once, when the response's last byte was received. */
static void resp_done(struct shard *s, struct conn *c)
{
	if (c->cache_store)
		caching_response_done(s, c);
	c->resp_phase = RESP_DONE;
	if (c->req_phase != REQ_DONE)
		c->close_after = true; /* the rest of the request will not be read */
}

/* release_upstream hands the upstream connection back once the response is
 * complete and no send to it is in flight (the completion of the request's
 * last send often arrives after the response). It goes back to its idle
 * pool only if the exchange left it clean: request fully sent, response
 * framed and persistent, and not one byte after it. */
static void release_upstream(struct shard *s, struct conn *c)
{
	struct upconn *u = c->up;
	bool req_sent, clean;

	if (u == NULL || c->resp_phase != RESP_DONE || u->send_on || u->tls.out.bytes > 0 ||
	    u->state != UP_ACTIVE)
		return;
	req_sent =
	        c->req_phase == REQ_DONE && c->req_fwd == 0 && c->req_head_sent == c->req_head_len;
	clean = c->rin.bytes == (c->zon ? c->zraw : c->resp_fwd);
	up_finish(s, u, c->up_reusable && req_sent && clean && !c->resp_aborted && !s->draining);
}

/* ---- the transaction ---- */

static void txn_log(struct shard *s, struct conn *c)
{
	char line[ALOG_LINE_MAX];
	time_t now;
	int n;

	if (!s->cfg->access_log.enabled)
		return;
	/* The date changes once a second: format it then, not per request. */
	now = time(NULL);
	if (now != s->log_when) {
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(s->log_date, sizeof(s->log_date), "%d/%b/%Y:%H:%M:%S +0000", &tm);
		s->log_when = now;
	}
	n = snprintf(line, sizeof(line), "%s - - [%s] \"%s %s HTTP/%s\" %d %llu %llums %s %s\n",
	             c->client[0] != '\0' ? c->client : c->peer, s->log_date,
	             c->method[0] ? c->method : "-", c->target[0] ? c->target : "-",
	             c->h2_stream ? "2.0"
	             : c->http10  ? "1.0"
	                          : "1.1",
	             c->status, (unsigned long long)c->bytes_out,
	             (unsigned long long)(s->now_ms - c->t_start_ms),
	             c->request_id[0] != '\0' ? c->request_id : "-",
	             c->block_reason[0] != '\0' ? c->block_reason : "-");
	if (n > 0)
		shard_alog_push(s, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static bool txn_complete(const struct conn *c)
{
	return c->resp_phase == RESP_DONE && !c->send_on && c->local == NULL && c->resp_head < 0 &&
	       c->resp_fwd == 0 && c->up == NULL && (c->req_phase == REQ_DONE || c->close_after) &&
	       c->tls.out.bytes == 0;
}

static void txn_finish(struct shard *s, struct conn *c)
{
	if (c->bg) {
		conn_abort(s, c); /* a background fetch ends with its transaction */
		return;
	}
	protect_note_status(s, c);
	txn_log(s, c);
	if (c->h2_stream) {
		h2_stream_finish(s, c);
		return;
	}
	if (c->resp_aborted) {
		conn_abort(s, c);
		return;
	}
	if (c->close_after || s->draining) {
		conn_linger(s, c);
		return;
	}
	/* Bytes after the response (a misbehaving backend) are dropped. */
	bufq_clear(&c->rin, conn_rinpool(s, c));
	txn_reset(s, c);
	c->state = CONN_IDLE;
	c->t_start_ms = s->now_ms;
	conn_arm(s, c, s->cfg->timeouts.keepalive_ms);
}

/* cache_body moves a cached object's body toward the client once its head
 * was parsed: straight from the object's memory when nothing transforms
 * it, else copied into rin as a backend's body would arrive. */
static void cache_body(struct shard *s, struct conn *c)
{
	if (c->resp_phase != RESP_BODY || c->cobj_direct)
		return;
	if (!c->zon && c->resp_body == H1_BODY_LENGTH && c->rin.bytes == 0 && c->cobj_fed == 0 &&
	    c->resp_left == c->cbody_len) {
		c->cobj_direct = true;
		c->resp_fwd = c->resp_left;
		c->resp_left = 0;
		caching_fed_all(c);
		resp_done(s, c);
		return;
	}
	caching_feed(s, c);
}

/* proxy_step moves both streams of the transaction as far as they go. */
static void proxy_step(struct shard *s, struct conn *c)
{
	bool bad;

	if (c->retry_pending && c->up == NULL) {
		c->retry_pending = false;
		acquire(s, c, c->retry_fresh, 502);
	}
	if (!classify_request(s, c))
		return;
	if (c->up != NULL)
		up_send_more(s, c->up);
	if (c->cache_mode == CM_SERVE)
		cache_body(s, c);
	while (parse_response(s, c))
		;
	if (c->state != CONN_PROXY)
		return;
	if (c->cache_mode == CM_SERVE)
		cache_body(s, c);
	if (c->resp_phase == RESP_BODY && classify_response(s, c, &bad)) {
		if (c->zon)
			c->zfinish = true; /* done once the encoder has ended */
		else
			resp_done(s, c);
	} else if (c->resp_phase == RESP_BODY && bad) {
		s->stats.upstream_errors++;
		c->close_after = true;
		if (c->up != NULL)
			up_close(s, c->up);
		c->resp_phase = RESP_DONE; /* send what is valid, then close */
	}
	if (c->zon && c->resp_phase == RESP_BODY && zx_step(s, c))
		resp_done(s, c);
	if (c->bg)
		bg_discard(s, c);
	release_upstream(s, c);
	conn_send_more(s, c);
	if (c->up != NULL) {
		up_update_recv(s, c->up);
		up_update_timer(s, c->up);
	}
	if (txn_complete(c))
		txn_finish(s, c);
}

static void conn_on_eof(struct shard *s, struct conn *c);

/* tls_pull decrypts received ciphertext into c->in (up to conn_bytes_max)
 * and queues what the handshake wrote for sending. Returns 0 when the
 * connection was closed. */
static int tls_pull(struct shard *s, struct conn *c)
{
	enum tls_result r;

	if (c->state == CONN_LINGER || c->tls.closed)
		return 1;
	r = tls_read(&c->tls, &c->in, &s->tls_pool, s->cfg->buffers.conn_bytes_max);
	if (c->tls.out.bytes > 0)
		conn_send_more(s, c);
	switch (r) {
	case TLS_OK:
		return 1;
	case TLS_NOBUF:
		tls_starve(s, c);
		return 1;
	case TLS_CLOSED:
		c->recv_eof = true; /* tls.closed: reported once */
		c->eof_pending = true;
		return 1;
	case TLS_FAILED:
	default:
		s->stats.tls_failures++;
		if (!c->tls.established && c->state == CONN_IDLE) {
			/* the alert BoringSSL wrote goes out before the close */
			rlb_log(LOG_DEBUG, "client %s: TLS handshake failed", c->peer);
			conn_linger(s, c);
		} else {
			conn_abort(s, c);
		}
		return 0;
	}
}

void conn_tls_resume(struct shard *s, struct conn *c)
{
	conn_step(s, c);
	if (c->state != CONN_FREE && c->state != CONN_CLOSING)
		conn_send_more(s, c);
}

/* proxy_header reads the PROXY header a listener expects before anything
 * else (before TLS). Returns 0 when the connection is done with (refused,
 * or waiting for more of the header). */
static int proxy_header(struct shard *s, struct conn *c)
{
	if (!protect_proxy_header(s, c, c->tls.ssl != NULL ? &c->tls.in : &c->in, cpool(s))) {
		conn_abort(s, c);
		return 0;
	}
	if (!c->pp_wait)
		return 1;
	if (c->eof_pending || c->recv_eof)
		conn_abort(s, c);
	else
		conn_update_recv(s, c);
	return 0;
}

void conn_step(struct shard *s, struct conn *c)
{
	bool was_established = c->tls.established;

	if (c->h2_done)
		return; /* a finished stream waits for nghttp2 to close it */
	if (c->pp_wait && !proxy_header(s, c))
		return;
	if (c->tls.ssl != NULL && !tls_pull(s, c))
		return;
	if (!was_established && c->tls.established && tls_alpn_h2(&c->tls) &&
	    c->state == CONN_IDLE && !h2_start(s, c)) {
		conn_abort(s, c);
		return;
	}
	for (int turns = 0; turns < 64; turns++) {
		switch (c->state) {
		case CONN_H2:
			h2_input(s, c);
			goto out;
		case CONN_IDLE:
			if (c->in.bytes == 0)
				goto out;
			c->state = CONN_HEAD;
			c->t_start_ms = s->now_ms;
			conn_arm(s, c, s->cfg->timeouts.client_header_ms);
			continue;
		case CONN_HEAD:
			if (c->rl_hold || c->in.bytes == 0 || parse_head(s, c) == H1_PARTIAL)
				goto out;
			continue;
		case CONN_PROXY:
			if (c->pending_status != 0 && !out_busy(c))
				conn_local(s, c, c->pending_status);
			proxy_step(s, c);
			if (c->state == CONN_IDLE)
				continue;
			goto out;
		case CONN_LINGER:
			bufq_clear(&c->in, conn_inpool(s, c));
			if (c->tls.ssl != NULL)
				bufq_clear(&c->tls.in, cpool(s));
			goto out;
		default:
			goto out;
		}
	}
out:
	if (c->eof_pending && c->state != CONN_FREE && c->state != CONN_CLOSING) {
		c->eof_pending = false;
		conn_on_eof(s, c);
	}
	if (c->h2_owed > 0 && c->state != CONN_FREE && c->state != CONN_CLOSING)
		h2_ack(s, c);
	if (c->h2_stream && c->state == CONN_PROXY)
		conn_update_timer(s, c);
	if (c->state != CONN_FREE)
		conn_update_recv(s, c);
}

/* ---- completions ---- */

/* conn_init resets every per-connection field of a slot being taken. */
static void conn_init(struct shard *s, struct conn *c, int fd, uint32_t listener)
{
	c->fd = fd;
	c->listener = (uint8_t)listener;
	c->recv_on = c->recv_stop = c->recv_eof = c->send_on = c->starved = false;
	c->eof_pending = c->tls_starved = c->shut_pending = c->rin_tls = false;
	tls_link_init(&c->tls);
	c->close_after = false;
	c->nreq = 0;
	c->up = NULL;
	c->req_head = c->resp_head = c->local_buf = -1;
	c->cfam = c->rfam = 0;
	c->pp_wait = c->counted_total = c->counted_ip = c->rl_hold = c->rl_granted = false;
	bufq_init(&c->in);
	bufq_init(&c->rin);
	bufq_init(&c->zq);
	c->zs = NULL;
	c->zon = false;
	txn_reset(s, c);
	c->h2 = NULL;
	c->h2_parent = c->h2_next = c->h2_streams = c->h2_dirty_next = c->h2_dirty = NULL;
	c->h2_id = 0;
	c->h2_nstreams = 0;
	c->h2_scratch = -1;
	c->h2_method_len = c->h2_path_len = c->h2_auth_len = 0;
	c->h2_head_bytes = c->h2_cont = 0;
	c->h2_owed = 0;
	c->h2_out = NULL;
	c->h2_out_len = 0;
	c->h2_line_done = c->h2_chunked = c->h2_has_length = c->h2_submitted = false;
	c->h2_deferred = c->h2_closed = c->h2_done = c->h2_in_dirty = c->h2_bad = false;
	c->h2_stream = false;
	c->bg = false;
}

void conn_init_stream(struct shard *s, struct conn *c, struct conn *parent)
{
	conn_init(s, c, -1, parent->listener);
	c->h2_parent = parent;
	c->h2_stream = true;
	memcpy(c->peer, parent->peer, sizeof(c->peer));
	memcpy(c->caddr, parent->caddr, sizeof(c->caddr));
	c->cfam = parent->cfam;
	c->state = CONN_IDLE;
	c->t_start_ms = s->now_ms;
}

int conn_open(struct shard *s, int fd, uint32_t listener)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct conn *c;
	int one = 1;

	if (s->conn_nfree == 0)
		return 0;
	c = &s->conns[s->conn_free[--s->conn_nfree]];
	RLB_ASSERT(c->state == CONN_FREE);
	RLB_ASSERT(c->ops == 0);
	s->conns_active++;
	conn_init(s, c, fd, listener);
	if (s->listeners[listener].tls != NULL &&
	    !tls_accept(&c->tls, s->listeners[listener].tls, cpool(s), &s->tls_pool)) {
		rlb_log(LOG_WARN, "shard %u: out of memory for a TLS session", s->id);
		c->fd = -1;
		c->state = CONN_FREE;
		s->conn_free[s->conn_nfree++] = conn_slot(s, c);
		s->conns_active--;
		return 0;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		ss.ss_family = AF_UNSPEC;
	c->state = CONN_IDLE;
	if (!protect_conn_open(s, c, (const struct sockaddr *)&ss)) {
		/* refused by an allow list or a connection limit: closed before
		 * anything was read (nothing is in flight yet) */
		conn_free(s, c);
		return 1;
	}
	c->t_start_ms = s->now_ms;
	conn_arm(s, c, s->cfg->timeouts.client_header_ms);
	conn_update_recv(s, c);
	return 1;
}

static void conn_op_done(struct shard *s, struct conn *c)
{
	RLB_ASSERT(c->ops > 0);
	c->ops--;
	if (c->state == CONN_CLOSING)
		conn_abort(s, c);
}

/* conn_on_eof handles the client closing its side. Between requests that
 * ends the connection; in the middle of a request body it aborts the
 * request; once the request is complete the response is still delivered
 * (the client may have only half-closed) and the connection closed after. */
static void conn_on_eof(struct shard *s, struct conn *c)
{
	switch (c->state) {
	case CONN_HEAD:
		if (c->rl_hold) {
			/* a complete request waits for its turn: answer it, then close */
			c->close_after = true;
			return;
		}
		conn_abort(s, c);
		return;
	case CONN_IDLE:
	case CONN_LINGER:
	case CONN_H2:
		conn_abort(s, c);
		return;
	case CONN_PROXY:
		if (c->req_phase == REQ_BODY) {
			conn_abort(s, c);
			return;
		}
		c->close_after = true;
		return;
	default:
		return;
	}
}

static void body_timeout(struct shard *s, struct conn *c);

void conn_on_recv(struct shard *s, struct conn *c, const struct ring_cqe *cqe)
{
	bool more = ring_cqe_more(cqe);
	bool eof = false;

	if (ring_cqe_has_buffer(cqe)) {
		ring_note_buffer(&s->ring, RING_GROUP_CLIENT);
		if (cqe->res > 0 && (c->state == CONN_IDLE || c->state == CONN_HEAD ||
		                     c->state == CONN_PROXY || c->state == CONN_H2))
			bufq_push(c->tls.ssl != NULL ? &c->tls.in : &c->in, cpool(s),
			          ring_cqe_bid(cqe), (uint32_t)cqe->res);
		else
			cpool(s)->recycle(cpool(s), ring_cqe_bid(cqe));
	}
	if (!more) {
		c->recv_on = false;
		c->recv_stop = false;
	}
	if (cqe->res == -ENOBUFS) {
		/* The client buffer group ran dry; this connection resumes when
		 * buffers come back (shard.c walks the starved list). */
		if (!c->starved) {
			c->starved = true;
			c->starved_next = s->starved;
			s->starved = c;
		}
	} else if (cqe->res == 0 || (cqe->res < 0 && cqe->res != -ECANCELED)) {
		c->recv_eof = true;
		/* With TLS the end comes when the records before it are read
		 * (tls_pull reports it); lingering needs no more than EOF. */
		if (c->tls.ssl != NULL && c->state != CONN_LINGER)
			c->tls.eof = true;
		else
			eof = true;
	}
	if (!more)
		conn_op_done(s, c);
	if (c->state == CONN_FREE || c->state == CONN_CLOSING)
		return;
	if (cqe->res > 0 && c->state == CONN_PROXY && c->req_phase == REQ_BODY) {
		if (!protect_body_rate(s, c, (uint64_t)cqe->res)) {
			body_timeout(s, c);
			return;
		}
		protect_body_progress(s, c);
	}
	if (eof)
		c->eof_pending = true;
	conn_step(s, c);
}

/* account_sent releases what a completed send carried: the constant
 * response first, then the response head, then body bytes from c->rin. */
void conn_account_sent(struct shard *s, struct conn *c, uint64_t n)
{
	c->bytes_out += n; /* with TLS: plaintext, counted as it is encrypted */
	if (c->local != NULL) {
		uint64_t take = c->local_len - c->local_sent;

		take = n < take ? n : take;
		c->local_sent += (uint32_t)take;
		if (c->local_sent == c->local_len)
			c->local = NULL;
		return;
	}
	if (c->resp_head >= 0) {
		uint64_t take = c->resp_head_len - c->resp_head_sent;

		take = n < take ? n : take;
		c->resp_head_sent += (uint32_t)take;
		n -= take;
		if (c->resp_head_sent == c->resp_head_len)
			put_head(s, &c->resp_head);
	}
	if (n > 0) {
		RLB_ASSERT(n <= c->resp_fwd);
		if (!c->cobj_direct)
			bufq_consume(conn_bodyq(c), conn_bodypool(s, c), n);
		c->resp_fwd -= n;
	}
}

void conn_on_send(struct shard *s, struct conn *c, const struct ring_cqe *cqe)
{
	RLB_ASSERT(c->send_on);
	c->send_on = false;
	if (c->state == CONN_CLOSING) {
		conn_op_done(s, c);
		return;
	}
	c->ops--;
	if (cqe->res <= 0) {
		/* The client went away (EPIPE, ECONNRESET): nothing to answer. */
		conn_abort(s, c);
		return;
	}
	RLB_ASSERT((uint64_t)cqe->res <= c->send_inflight);
	if (c->tls.ssl != NULL) {
		bufq_consume(&c->tls.out, &s->tls_pool.pool, (uint64_t)cqe->res);
		if (c->shut_pending) {
			if (c->tls.out.bytes > 0) {
				conn_send_now(s, c);
				return;
			}
			c->shut_pending = false;
			shutdown(c->fd, SHUT_WR);
		}
		if (c->h2 != NULL) {
			conn_update_timer(s, c);
			h2_after_send(s, c);
			if (c->state == CONN_H2)
				conn_step(s, c);
			return;
		}
	} else {
		conn_account_sent(s, c, (uint64_t)cqe->res);
	}
	conn_update_timer(s, c);
	conn_step(s, c);
}

void conn_on_cancel(struct shard *s, struct conn *c)
{
	conn_op_done(s, c);
}

/* body_timeout ends a request whose body stopped or crawls: 408 while no
 * response has started, else the connection is cut. */
static void body_timeout(struct shard *s, struct conn *c)
{
	if (!c->send_on && c->req_phase == REQ_BODY && !c->resp_started) {
		if (c->up != NULL)
			up_close(s, c->up);
		c->req_phase = REQ_DONE;
		c->req_fwd = 0;
		conn_local(s, c, 408);
		conn_step(s, c);
		return;
	}
	conn_abort(s, c);
}

void conn_on_timer(struct shard *s, struct conn *c)
{
	if (c->h2_stream && (c->h2_submitted || c->h2_done)) {
		/* the answer is committed (or over and the client never ended its
		 * side): no error page can follow, the stream is reset */
		s->stats.timeouts++;
		conn_abort(s, c);
		return;
	}
	switch (c->state) {
	case CONN_HEAD:
		if (c->rl_hold) {
			/* a request held by its rate limit: its turn has come */
			c->rl_hold = false;
			c->rl_granted = true;
			conn_step(s, c);
			return;
		}
		/* client_header expired with a partial head: 408 (RFC 9110 §15.5.9) */
		s->stats.timeouts++;
		c->state = CONN_PROXY;
		c->req_phase = REQ_DONE;
		c->keep_alive = false;
		conn_local(s, c, 408);
		conn_step(s, c);
		return;
	case CONN_PROXY:
		if (caching_on_timer(s, c))
			return; /* waited for another fetch long enough: fetch alone */
		if (!c->h2_stream && !c->send_on && !c->queued && !c->cache_waiting &&
		    c->req_phase != REQ_BODY) {
			/* a body deadline armed before the body was complete: the
			 * request now waits for its backend, which has timers of its own */
			conn_update_timer(s, c);
			return;
		}
		s->stats.timeouts++;
		if (c->queued) {
			/* queue_timeout: no backend slot freed up in time. */
			dequeue(s, c);
			conn_local(s, c, 503);
			conn_step(s, c);
			return;
		}
		if (c->req_phase == REQ_BODY && !c->send_on && protect_body_timer(s, c)) {
			s->stats.timeouts--; /* not a timeout: a rate window ended */
			return;
		}
		body_timeout(s, c);
		return;
	default:
		/* idle keep-alive expiry, linger deadline */
		conn_abort(s, c);
		return;
	}
}

void conn_drain_idle(struct shard *s, struct conn *c)
{
	if (c->h2_stream)
		return; /* its connection's GOAWAY lets it finish */
	if (c->state == CONN_H2) {
		h2_drain(s, c);
		return;
	}
	if (c->state == CONN_IDLE && c->in.bytes == 0) {
		conn_abort(s, c);
		return;
	}
	c->close_after = true;
}

/* ---- upstream outcomes ---- */

static bool may_retry(struct shard *s, struct conn *c, enum up_fail why)
{
	const struct snapshot *snap = snapshot_current();
	uint32_t retries = 0;

	if (c->req_head < 0 || c->resp_started || c->resp_phase > RESP_HEAD)
		return false;
	/* Pool indexes survive admin changes (which add no pool); a reload
	 * that renumbers pools only costs a request the pool's settings. */
	if (c->pool >= snap->num_pools)
		return false;
	retries = snap->pools[c->pool].retries;
	switch (why) {
	case UPF_CONNECT:
	case UPF_CONNECT_TIMEOUT:
		/* Nothing reached the backend: safe for any method, within the
		 * pool's retry budget (a failing fleet is not hammered). */
		if (c->tries > retries)
			return false;
		return budget_try_retry(pool_budget(s, snap, c->pool), s->now_ms,
		                        snap->pools[c->pool].retry_budget,
		                        snap->pools[c->pool].retry_budget_min);
	case UPF_STALE:
		/* The backend closed a pooled connection as we reused it. Only a
		 * request that can be replayed whole is retried, once, on a new
		 * connection (RFC 9110 §9.2.2). */
		if (c->retried_reuse || !c->idempotent || c->req_total > 0 ||
		    c->req_phase != REQ_DONE)
			return false;
		c->retried_reuse = true;
		c->retry_fresh = true;
		return true;
	case UPF_IO:
	case UPF_TIMEOUT:
		/* The backend failed after the request reached it (reset, closed,
		 * or silent past upstream_response) and the client has seen no
		 * byte of a response: an idempotent request that can be replayed
		 * whole (no body: body bytes are released once sent) goes to
		 * another backend, within retries and the budget (RFC 9110
		 * §9.2.2; nginx's proxy_next_upstream error timeout). */
		if (!c->idempotent || c->req_total > 0 || c->req_phase != REQ_DONE ||
		    c->tries > retries)
			return false;
		return budget_try_retry(pool_budget(s, snap, c->pool), s->now_ms,
		                        snap->pools[c->pool].retry_budget,
		                        snap->pools[c->pool].retry_budget_min);
	default:
		return false;
	}
}

void conn_upstream_failed(struct shard *s, struct conn *c, enum up_fail why)
{
	s->stats.upstream_errors++;
	if (c->state != CONN_PROXY || c->resp_phase == RESP_DONE)
		return;
	if (may_retry(s, c, why)) {
		s->stats.retries++;
		c->retry_pending = true;
		c->req_head_sent = 0;
		memset(&c->rscan, 0, sizeof(c->rscan));
		bufq_clear(&c->rin, conn_rinpool(s, c));
		c->resp_phase = RESP_CONNECT;
		return;
	}
	if (!c->resp_started && c->resp_phase <= RESP_HEAD) {
		conn_local(s, c, why == UPF_TIMEOUT || why == UPF_CONNECT_TIMEOUT ? 504 : 502);
		return;
	}
	/* Part of the response is out: deliver what is valid, then cut the
	 * connection so the client sees the truncation. */
	c->close_after = true;
	c->resp_aborted = true;
	c->resp_phase = RESP_DONE;
}

void conn_upstream_eof(struct shard *s, struct conn *c, bool stale)
{
	bool bad;

	if (c->state != CONN_PROXY)
		return;
	if (c->resp_phase == RESP_BODY && c->resp_body == H1_BODY_CLOSE) {
		classify_response(s, c, &bad);
		c->up_reusable = false;
		resp_done(s, c);
		return;
	}
	if (c->resp_phase != RESP_DONE)
		conn_upstream_failed(s, c, stale ? UPF_STALE : UPF_IO);
}

void conn_upstream_gone(struct shard *s, struct conn *c)
{
	RLB_ASSERT(c->up == NULL);
	if (c->state == CONN_CLOSING) {
		conn_abort(s, c);
		return;
	}
	conn_step(s, c);
}
