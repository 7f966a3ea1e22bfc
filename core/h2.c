/* core/h2.c — HTTP/2 for clients with libnghttp2 (see h2.h).
 *
 * The session's callbacks run inside nghttp2_session_mem_recv and
 * nghttp2_session_mem_send, so they never step a stream themselves: they
 * fill the stream's queue and put it on the parent's to-run list, which
 * h2_input walks once nghttp2 has returned.
 */
#include "core/h2.h"

#include "core/log.h"
#include "core/proxy.h"

#include <nghttp2/nghttp2.h>
#include <string.h>
#include <sys/socket.h>

#define H2_NVA_MAX (CONN_HEADERS_MAX + 8)

/* The shard whose callbacks are running (nghttp2's user data is the parent
 * connection, which does not know its shard). */
static __thread struct shard *cur;

static nghttp2_session *ses(const struct conn *c)
{
	return c->h2;
}

/* ---- streams ---- */

static struct bufpool *mpool(struct shard *s)
{
	return &s->tls_pool.pool;
}

static void mark_dirty(struct conn *p, struct conn *st)
{
	if (st->h2_in_dirty)
		return;
	st->h2_in_dirty = true;
	st->h2_dirty_next = p->h2_dirty;
	p->h2_dirty = st;
}

/* stream_open takes a free connection slot for stream `id` of parent `p`. */
static struct conn *stream_open(struct shard *s, struct conn *p, int32_t id)
{
	struct conn *c;

	if (s->conn_nfree == 0 || p->state != CONN_H2)
		return NULL;
	c = &s->conns[s->conn_free[--s->conn_nfree]];
	RLB_ASSERT(c->state == CONN_FREE);
	s->conns_active++;
	conn_init_stream(s, c, p);
	c->h2_id = id;
	c->h2_next = p->h2_streams;
	p->h2_streams = c;
	p->h2_nstreams++;
	c->h2_scratch = hpool_get(&s->heads);
	if (c->h2_scratch < 0)
		c->h2_bad = true;
	/* the whole head must arrive within client_header, as over HTTP/1.1 */
	conn_arm(s, c, s->cfg->timeouts.client_header_ms);
	conn_update_timer_h2(s, p); /* busy: no idle timeout (a send keeps its own) */
	return c;
}

/* append copies bytes to the end of the stream's request queue. Returns 0
 * when the TLS buffers ran out. */
static int append(struct shard *s, struct conn *c, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		size_t space, take;
		char *at = bufq_space(&c->in, mpool(s), &space);

		if (at == NULL) {
			uint16_t bid = mempool_get(&s->tls_pool);

			if (bid == BUF_NONE)
				return 0;
			take = len < mpool(s)->buf_size ? len : mpool(s)->buf_size;
			memcpy(bufpool_data(mpool(s), bid), p, take);
			bufq_push(&c->in, mpool(s), bid, (uint32_t)take);
		} else {
			take = len < space ? len : space;
			memcpy(at, p, take);
			bufq_commit(&c->in, mpool(s), take);
		}
		p += take;
		len -= take;
	}
	return 1;
}

static int append_str(struct shard *s, struct conn *c, const char *str)
{
	return append(s, c, str, strlen(str));
}

/* request_line writes "METHOD PATH HTTP/1.1\r\nHost: AUTHORITY\r\n" from
 * the pseudo-headers kept in the scratch buffer. */
static int request_line(struct shard *s, struct conn *c)
{
	const char *sc = hpool_data(&s->heads, (uint32_t)c->h2_scratch);

	c->h2_line_done = true;
	if (c->h2_method_len == 0 || c->h2_path_len == 0)
		return 0; /* nghttp2 checks this; be safe */
	return append(s, c, sc, c->h2_method_len) && append_str(s, c, " ") &&
	       append(s, c, sc + c->h2_method_len, c->h2_path_len) &&
	       append_str(s, c, " HTTP/1.1\r\n") &&
	       (c->h2_auth_len == 0 ||
	        (append_str(s, c, "Host: ") &&
	         append(s, c, sc + c->h2_method_len + c->h2_path_len, c->h2_auth_len) &&
	         append_str(s, c, "\r\n")));
}

/* keep_pseudo stores a pseudo-header value in the scratch buffer, in the
 * order method, path, authority (moving what follows when needed). */
static int keep_pseudo(struct shard *s, struct conn *c, const uint8_t *name, size_t nl,
                       const uint8_t *value, size_t vl)
{
	char *sc = hpool_data(&s->heads, (uint32_t)c->h2_scratch);
	uint32_t used = c->h2_method_len + c->h2_path_len + c->h2_auth_len, at;
	uint32_t *len;

	if (nl == 7 && memcmp(name, ":method", 7) == 0) {
		at = 0;
		len = &c->h2_method_len;
	} else if (nl == 5 && memcmp(name, ":path", 5) == 0) {
		at = c->h2_method_len;
		len = &c->h2_path_len;
	} else if (nl == 10 && memcmp(name, ":authority", 10) == 0) {
		at = c->h2_method_len + c->h2_path_len;
		len = &c->h2_auth_len;
	} else {
		return 1; /* :scheme: the listener says https */
	}
	if (*len != 0 || used + vl > s->heads.size)
		return 0;
	memmove(sc + at + vl, sc + at, used - at);
	memcpy(sc + at, value, vl);
	*len = (uint32_t)vl;
	return 1;
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
	struct conn *p = user;
	struct conn *c;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	c = stream_open(cur, p, frame->hd.stream_id);
	if (c == NULL)
		return nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
		                                 NGHTTP2_REFUSED_STREAM) == 0
		               ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE
		               : NGHTTP2_ERR_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, c);
	return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *user)
{
	struct conn *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	struct shard *s = cur;
	int ok = 1;

	(void)flags, (void)user;
	/* trailers (a second HEADERS) are not forwarded: the HTTP/1.1 body
	 * ends with the re-framed last chunk */
	if (c == NULL || c->h2_bad || frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	c->h2_head_bytes += (uint32_t)(nl + vl + 4);
	if (c->h2_head_bytes > s->cfg->limits.header_bytes_max) {
		c->h2_bad = true; /* refused with 431 once the block ends */
		return 0;
	}
	if (nl > 0 && name[0] == ':')
		return keep_pseudo(s, c, name, nl, value, vl)
		               ? 0
		               : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (!c->h2_line_done)
		ok = request_line(s, c);
	if (nl == 14 && memcmp(name, "content-length", 14) == 0)
		c->h2_has_length = true;
	/* RFC 9113 §8.2.3: cookie crumbs may come apart; HTTP/1.1 takes them as
	 * separate fields, which backends accept. */
	ok = ok && append(s, c, name, nl) && append_str(s, c, ": ") && append(s, c, value, vl) &&
	     append_str(s, c, "\r\n");
	if (!ok)
		c->h2_bad = true;
	return 0;
}

/* head_done ends the HTTP/1.1 head once the header block is complete. */
static void head_done(struct shard *s, struct conn *p, struct conn *c, bool end_stream)
{
	bool ok = true;

	if (!c->h2_bad && !c->h2_line_done)
		ok = request_line(s, c);
	if (ok && !c->h2_bad && !end_stream && !c->h2_has_length) {
		/* a body of unknown length: re-framed as chunked for HTTP/1.1 */
		c->h2_chunked = true;
		ok = append_str(s, c, "Transfer-Encoding: chunked\r\n");
	}
	ok = ok && append_str(s, c, "\r\n");
	if (c->h2_scratch >= 0) {
		hpool_put(&s->heads, (uint32_t)c->h2_scratch);
		c->h2_scratch = -1;
	}
	if (!ok || c->h2_bad) {
		/* too large for the head limits, or out of buffers: run_dirty
		 * answers 431 */
		bufq_clear(&c->in, mpool(s));
		c->h2_chunked = false;
		c->h2_bad = true;
	}
	mark_dirty(p, c);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
	struct conn *p = user;
	struct conn *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	if (c == NULL)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
		c->h2_cont = 0;
		head_done(cur, p, c, end);
	} else if (end && (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)) {
		/* the end of the body (a HEADERS here carries trailers, which are
		 * not forwarded) */
		if (c->h2_chunked && !c->h2_bad && !append_str(cur, c, "0\r\n\r\n"))
			c->h2_bad = true;
		mark_dirty(p, c);
	}
	return 0;
}

static int on_data(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                   size_t len, void *user)
{
	struct conn *c = nghttp2_session_get_stream_user_data(session, id);
	char size[24];
	bool ok;

	(void)flags;
	if (c == NULL || c->h2_bad || c->h2_done || c->state == CONN_CLOSING || c->local != NULL ||
	    c->resp_phase == RESP_DONE) {
		/* nobody will forward it: give the window back at once */
		nghttp2_session_consume(session, id, len);
		return 0;
	}
	c->h2_owed += len;
	if (c->h2_chunked) {
		snprintf(size, sizeof(size), "%zx\r\n", len);
		ok = append_str(cur, c, size) && append(cur, c, data, len) &&
		     append_str(cur, c, "\r\n");
	} else {
		ok = append(cur, c, data, len);
	}
	if (!ok) {
		c->h2_bad = true; /* a hole in the body: the stream must not go on */
		return nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id,
		                                 NGHTTP2_INTERNAL_ERROR) == 0
		               ? 0
		               : NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	mark_dirty(user, c);
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error, void *user)
{
	struct conn *c = nghttp2_session_get_stream_user_data(session, id);

	(void)error, (void)user;
	if (c == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(session, id, NULL);
	c->h2_closed = true;
	mark_dirty(user, c); /* freed, or aborted if the client reset it early */
	return 0;
}

/* refill credits a bucket (tokens x1000) with `rate` per second over
 * `elapsed_ms`, up to `burst`; take consumes one token if there is one. */
static void refill(uint64_t *tokens, uint64_t elapsed_ms, uint32_t rate, uint32_t burst)
{
	uint64_t t = *tokens + elapsed_ms * rate;

	*tokens = t > (uint64_t)burst * 1000 ? (uint64_t)burst * 1000 : t;
}

static bool take(uint64_t *tokens)
{
	if (*tokens < 1000)
		return false;
	*tokens -= 1000;
	return true;
}

/* on_begin_frame counts what floods are made of: control frames, resets,
 * and CONTINUATION frames of one header block. */
static int on_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd, void *user)
{
	struct conn *p = user;
	const struct config_http2 *h = &cur->cfg->http2;
	uint64_t now = cur->now_ms, elapsed = now - p->h2_bucket_ms;
	bool ok = true;

	p->h2_bucket_ms = now;
	refill(&p->h2_ctrl_tokens, elapsed, h->control_rate, h->max_control);
	refill(&p->h2_reset_tokens, elapsed, h->reset_rate, h->max_resets);
	switch (hd->type) {
	case NGHTTP2_SETTINGS:
	case NGHTTP2_PING:
	case NGHTTP2_PRIORITY:
		ok = take(&p->h2_ctrl_tokens);
		break;
	case NGHTTP2_RST_STREAM:
		ok = take(&p->h2_reset_tokens);
		break;
	case NGHTTP2_CONTINUATION: {
		struct conn *c = nghttp2_session_get_stream_user_data(session, hd->stream_id);
		if (c != NULL && ++c->h2_cont > h->max_continuations)
			ok = false;
		break;
	}
	default:
		break;
	}
	if (!ok) {
		cur->stats.h2_floods++;
		rlb_log(LOG_WARN, "client %s: HTTP/2 %s flood: GOAWAY", p->peer,
		        hd->type == NGHTTP2_RST_STREAM     ? "reset"
		        : hd->type == NGHTTP2_CONTINUATION ? "CONTINUATION"
		                                           : "control frame");
		nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

/* ---- the response ---- */

/* body_run returns the next body bytes of stream `c` to give nghttp2. */
static const char *body_run(struct shard *s, struct conn *c, size_t *len)
{
	if (c->local != NULL) {
		*len = c->local_len - c->local_sent;
		return c->local + c->local_sent;
	}
	if (c->resp_fwd > 0 && c->resp_phase >= RESP_BODY)
		return conn_body_front(s, c, len);
	*len = 0;
	return NULL;
}

static ssize_t read_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t cap,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct conn *c = src->ptr;
	struct shard *s = cur;
	size_t n = 0;

	(void)session, (void)id;
	while (n < cap) {
		size_t len;
		const char *p = body_run(s, c, &len);

		if (p == NULL || len == 0)
			break;
		len = len < cap - n ? len : cap - n;
		memcpy(buf + n, p, len);
		conn_account_sent(s, c, len);
		n += len;
	}
	if (n > 0)
		mark_dirty(user, c); /* its queue drained: the stream moves on */
	if (c->local == NULL && c->resp_fwd == 0 && c->resp_phase == RESP_DONE && c->resp_aborted &&
	    n == 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* cut: reset, never a clean end */
	if (c->local == NULL && c->resp_fwd == 0 && c->resp_phase == RESP_DONE) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	}
	if (n == 0) {
		c->h2_deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

/* add_nv appends a lower-cased name and a value to the shard's list. */
static bool add_nv(struct shard *s, size_t *n, size_t *used, const char *name, size_t nl,
                   const char *value, size_t vl)
{
	nghttp2_nv *nva = s->h2_nva;
	char *lc = s->h2_names + *used;

	if (*n == H2_NVA_MAX || *used + nl > s->h2_names_cap)
		return false;
	for (size_t i = 0; i < nl; i++)
		lc[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
	*used += nl;
	nva[*n] = (nghttp2_nv){(uint8_t *)lc, (uint8_t *)(uintptr_t)value, nl, vl,
	                       NGHTTP2_NV_FLAG_NONE};
	(*n)++;
	return true;
}

/* add_lines adds "Name: value\r\n" lines (ringlb's extra fields). */
static bool add_lines(struct shard *s, size_t *n, size_t *used, struct h1_str lines)
{
	const char *p = lines.ptr, *end = lines.ptr + lines.len;

	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		const char *colon = memchr(p, ':', (size_t)(end - p));
		const char *v;

		if (eol == NULL || colon == NULL || colon > eol)
			return false;
		for (v = colon + 1; v < eol && *v == ' '; v++)
			;
		if (!add_nv(s, n, used, p, (size_t)(colon - p), v, (size_t)(eol - v)))
			return false;
		p = eol + 2;
	}
	return true;
}

static int submit(struct shard *s, struct conn *c, size_t n, bool body)
{
	nghttp2_data_provider prd = {.source.ptr = c, .read_callback = read_body};
	int r;

	cur = s;
	r = nghttp2_submit_response(ses(c->h2_parent), c->h2_id, s->h2_nva, n, body ? &prd : NULL);
	if (r != 0)
		return 502;
	c->h2_submitted = true;
	conn_send_more(s, c->h2_parent);
	return 0;
}

int h2_submit_response(struct shard *s, struct conn *c, const struct h1_msg *m, struct h1_str extra)
{
	char status[4];
	size_t n = 0, used = 0;
	bool body;

	if (c->h2_parent == NULL)
		return 502; /* the connection is gone */
	snprintf(status, sizeof(status), "%03d", m->status);
	add_nv(s, &n, &used, ":status", 7, status, 3);
	for (size_t i = 0; i < m->num_headers; i++) {
		const struct h1_header *h = &m->headers[i];

		if (h1_hop_by_hop(m, h->name))
			continue;
		if (!add_nv(s, &n, &used, h->name.ptr, h->name.len, h->value.ptr, h->value.len))
			return 502;
	}
	if (!add_lines(s, &n, &used, extra) || !add_nv(s, &n, &used, "via", 3, "2 ringlb", 8))
		return 502;
	body = !c->head_req && m->body != H1_BODY_NONE &&
	       !(m->body == H1_BODY_LENGTH && m->content_length == 0);
	return submit(s, c, n, body);
}

/* submit_local sends ringlb's own error page (c->local, an HTTP/1.1
 * response) as HEADERS and DATA. */
static void submit_local(struct shard *s, struct conn *c)
{
	const char *body = strstr(c->local, "\r\n\r\n");
	/* nghttp2 reads the values when the response is submitted: they live
	 * in this frame until then */
	char status[4], len[24], ra[16];
	size_t n = 0, used = 0, blen;

	snprintf(status, sizeof(status), "%03d", c->status);
	body = body != NULL ? body + 4 : c->local + c->local_len;
	blen = (size_t)(c->local + c->local_len - body);
	snprintf(len, sizeof(len), "%zu", blen);
	add_nv(s, &n, &used, ":status", 7, status, 3);
	add_nv(s, &n, &used, "content-type", 12, "text/html", 9);
	add_nv(s, &n, &used, "content-length", 14, len, strlen(len));
	if (c->retry_after > 0) {
		snprintf(ra, sizeof(ra), "%u", c->retry_after);
		add_nv(s, &n, &used, "retry-after", 11, ra, strlen(ra));
	}
	c->local_sent = (uint32_t)(body - c->local); /* the body is what remains */
	if (blen == 0 || c->head_req)
		c->local = NULL;
	if (submit(s, c, n, c->local != NULL) != 0)
		conn_abort(s, c);
}

void h2_stream_send(struct shard *s, struct conn *c)
{
	struct conn *p = c->h2_parent;

	if (p == NULL || c->h2_closed)
		return;
	if (!c->h2_submitted) {
		if (c->local != NULL)
			submit_local(s, c);
		return;
	}
	if (c->h2_deferred) {
		size_t len;

		if (body_run(s, c, &len) == NULL && c->resp_phase != RESP_DONE)
			return;
		c->h2_deferred = false;
		nghttp2_session_resume_data(ses(p), c->h2_id);
		conn_send_more(s, p);
	}
}

/* ---- the parent ---- */

int h2_shard_init(struct shard *s)
{
	s->h2_names_cap = s->cfg->limits.response_header_bytes_max + 256;
	s->h2_nva = calloc(H2_NVA_MAX, sizeof(nghttp2_nv)); /* boot-time */
	s->h2_names = malloc(s->h2_names_cap);              /* boot-time */
	return s->h2_nva != NULL && s->h2_names != NULL;
}

void h2_shard_free(struct shard *s)
{
	free(s->h2_nva);
	s->h2_nva = NULL;
	free(s->h2_names);
	s->h2_names = NULL;
}

int h2_start(struct shard *s, struct conn *c)
{
	const struct config_http2 *h = &s->cfg->http2;
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	nghttp2_session *session = NULL;
	nghttp2_settings_entry iv[] = {
	        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h->max_concurrent_streams},
	        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)h->stream_window},
	        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, h->header_table_size},
	        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)s->cfg->limits.header_bytes_max},
	        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	};
	int r;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		return 0;
	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cb);
		return 0;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
	nghttp2_option_set_max_settings(opt, 32);
	nghttp2_option_set_max_outbound_ack(opt, 100);
	nghttp2_option_set_stream_reset_rate_limit(opt, h->max_resets, h->reset_rate);
	nghttp2_option_set_max_continuations(opt, h->max_continuations);
	r = nghttp2_session_server_new2(&session, cb, c, opt);
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	if (r != 0)
		return 0;
	if (nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, iv, RLB_ARRAY_LEN(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0,
	                                          (int32_t)(4 * h->stream_window)) != 0) {
		nghttp2_session_del(session);
		return 0;
	}
	c->h2 = session;
	c->state = CONN_H2;
	c->h2_reset_tokens = (uint64_t)h->max_resets * 1000;
	c->h2_ctrl_tokens = (uint64_t)h->max_control * 1000;
	c->h2_bucket_ms = s->now_ms;
	s->stats.h2_connections++;
	conn_arm(s, c, s->cfg->timeouts.keepalive_ms);
	conn_send_more(s, c);
	return 1;
}

/* ack gives a stream's DATA window back once its queue has drained below
 * one window: the client may never have more than about two windows of a
 * stream buffered here. */
void h2_ack(struct shard *s, struct conn *c)
{
	struct conn *p = c->h2_parent;

	if (p != NULL && c->h2_owed > 0 && c->in.bytes < s->cfg->http2.stream_window &&
	    !c->h2_closed) {
		nghttp2_session_consume(ses(p), c->h2_id, c->h2_owed);
		c->h2_owed = 0;
		conn_send_more(s, p);
	}
}

/* run_dirty steps the streams that callbacks touched. */
static void run_dirty(struct shard *s, struct conn *p)
{
	while (p->h2_dirty != NULL) {
		struct conn *c = p->h2_dirty;

		p->h2_dirty = c->h2_dirty_next;
		c->h2_dirty_next = NULL;
		c->h2_in_dirty = false;
		if (c->state == CONN_FREE || c->state == CONN_CLOSING)
			continue;
		if (c->h2_closed && (c->h2_done || c->state != CONN_PROXY ||
		                     c->resp_phase != RESP_DONE || c->up != NULL)) {
			/* over, or reset by the client before it was */
			conn_abort(s, c);
			continue;
		}
		if (c->h2_bad && c->state == CONN_IDLE)
			conn_refuse(s, c, 431);
		conn_step(s, c); /* which acknowledges its DATA (h2_ack) */
		/* closed by the client and still not over (an answer that cannot
		 * be delivered any more): nothing will move it again */
		if (c->h2_closed && c->state != CONN_FREE && c->state != CONN_CLOSING)
			conn_abort(s, c);
	}
}

void h2_input(struct shard *s, struct conn *c)
{
	size_t len;
	const char *p;

	cur = s;
	while (!c->h2_bad && (p = bufq_front(&c->in, conn_inpool(s, c), &len)) != NULL && len > 0) {
		ssize_t r = nghttp2_session_mem_recv(ses(c), (const uint8_t *)p, len);

		if (r < 0) {
			bool flood = r == NGHTTP2_ERR_FLOODED ||
			             r == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ||
			             r == NGHTTP2_ERR_TOO_MANY_SETTINGS;

			if (flood)
				s->stats.h2_floods++;
			rlb_log(flood ? LOG_WARN : LOG_DEBUG, "client %s: HTTP/2: %s: GOAWAY",
			        c->peer, nghttp2_strerror((int)r));
			/* a no-op when a callback already chose the code */
			nghttp2_session_terminate_session(ses(c), flood ? NGHTTP2_ENHANCE_YOUR_CALM
			                                                : NGHTTP2_PROTOCOL_ERROR);
			/* Read no more frames: GOAWAY goes out, then the connection
			 * closes (lingering, so the client can read the GOAWAY). */
			c->h2_bad = true;
			break;
		}
		bufq_consume(&c->in, conn_inpool(s, c), (uint64_t)r);
	}
	if (c->h2_bad)
		bufq_clear(&c->in, conn_inpool(s, c));
	run_dirty(s, c);
	if (c->state == CONN_H2)
		conn_send_more(s, c);
}

void h2_produce(struct shard *s, struct conn *c, uint64_t out_max)
{
	cur = s;
	while (c->tls.out.bytes < out_max && s->tls_pool.nfree >= 2 && !c->tls.failed) {
		size_t took = 0;
		enum tls_result r;

		if (c->h2_out_len == 0) {
			ssize_t n = nghttp2_session_mem_send(ses(c), &c->h2_out);

			if (n <= 0)
				break;
			c->h2_out_len = (size_t)n;
		}
		r = tls_write(&c->tls, c->h2_out, c->h2_out_len < 16384 ? c->h2_out_len : 16384,
		              &took);
		c->h2_out += took;
		c->h2_out_len -= took;
		if (r == TLS_FAILED) {
			shutdown(c->fd, SHUT_RDWR); /* the receive ends, and the connection */
			break;
		}
		if (r != TLS_OK && took == 0)
			break;
	}
	/* out of TLS buffers with output pending: wait for some to come back */
	if ((s->tls_pool.nfree < 2 || c->tls.want_buffers) && !c->tls.failed &&
	    (c->h2_out_len > 0 || nghttp2_session_want_write(ses(c))))
		conn_tls_starve(s, c);
	run_dirty(s, c); /* streams whose bodies the data provider drained */
}

void h2_after_send(struct shard *s, struct conn *c)
{
	if (c->state != CONN_H2)
		return;
	if (!nghttp2_session_want_read(ses(c)) && !nghttp2_session_want_write(ses(c)) &&
	    c->h2_out_len == 0 && c->tls.out.bytes == 0) {
		conn_close_h2(s, c);
		return;
	}
	conn_update_timer_h2(s, c);
}

void h2_stream_finish(struct shard *s, struct conn *c)
{
	c->h2_done = true;
	/* a client that never ends its side of the stream is cut after
	 * client_body (conn_on_timer) */
	if (!c->h2_closed)
		conn_arm(s, c, s->cfg->timeouts.client_body_ms);
	if (c->h2_deferred && !c->h2_closed && c->h2_parent != NULL) {
		c->h2_deferred = false;
		nghttp2_session_resume_data(ses(c->h2_parent), c->h2_id);
		conn_send_more(s, c->h2_parent);
	}
	if (c->h2_closed)
		conn_abort(s, c); /* frees it: nothing is in flight */
}

void h2_stream_freed(struct shard *s, struct conn *c)
{
	struct conn *p = c->h2_parent;

	if (c->h2_scratch >= 0)
		hpool_put(&s->heads, (uint32_t)c->h2_scratch);
	c->h2_scratch = -1;
	if (p == NULL)
		return;
	for (struct conn **pp = &p->h2_streams; *pp != NULL; pp = &(*pp)->h2_next) {
		if (*pp == c) {
			*pp = c->h2_next;
			break;
		}
	}
	for (struct conn **pp = &p->h2_dirty; *pp != NULL; pp = &(*pp)->h2_dirty_next) {
		if (*pp == c) {
			*pp = c->h2_dirty_next;
			break;
		}
	}
	if (c->h2_owed > 0 && p->h2 != NULL) {
		/* DATA that will never be forwarded still counts against the
		 * connection's window: give it back */
		nghttp2_session_consume(ses(p), c->h2_id, c->h2_owed);
		c->h2_owed = 0;
		conn_send_more(s, p);
	}
	if (!c->h2_closed && p->h2 != NULL) {
		nghttp2_session_set_stream_user_data(ses(p), c->h2_id, NULL);
		if (p->state == CONN_H2) {
			/* the stream ended on our side before the client's: reset it */
			nghttp2_submit_rst_stream(ses(p), NGHTTP2_FLAG_NONE, c->h2_id,
			                          NGHTTP2_INTERNAL_ERROR);
			conn_send_more(s, p);
		}
	}
	RLB_ASSERT(p->h2_nstreams > 0);
	p->h2_nstreams--;
	if (p->state == CONN_H2)
		conn_update_timer_h2(s, p);
	c->h2_parent = NULL;
	c->h2_next = c->h2_dirty_next = NULL;
	c->h2_in_dirty = false;
}

void h2_parent_closing(struct shard *s, struct conn *c)
{
	while (c->h2_streams != NULL) {
		struct conn *st = c->h2_streams;

		c->h2_streams = st->h2_next;
		st->h2_closed = true; /* no session to tell any more */
		st->h2_parent = NULL;
		RLB_ASSERT(c->h2_nstreams > 0);
		c->h2_nstreams--;
		conn_abort(s, st);
	}
	c->h2_dirty = NULL;
}

void h2_parent_freed(struct shard *s, struct conn *c)
{
	(void)s;
	h2_parent_closing(s, c);
	if (c->h2 != NULL)
		nghttp2_session_del(c->h2);
	c->h2 = NULL;
	c->h2_out = NULL;
	c->h2_out_len = 0;
}

void h2_drain(struct shard *s, struct conn *c)
{
	cur = s;
	if (c->h2 == NULL || c->state != CONN_H2)
		return;
	nghttp2_submit_goaway(ses(c), NGHTTP2_FLAG_NONE,
	                      nghttp2_session_get_last_proc_stream_id(ses(c)), NGHTTP2_NO_ERROR,
	                      NULL, 0);
	conn_send_more(s, c);
}
