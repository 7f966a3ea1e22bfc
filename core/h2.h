/* core/h2.h — HTTP/2 for clients (libnghttp2), on TLS listeners with ALPN h2.
 *
 * A connection that negotiated h2 (the "parent") runs one nghttp2 server
 * session: decrypted bytes go into nghttp2_session_mem_recv, its output is
 * encrypted straight into the parent's TLS queue. Every stream is a client
 * connection slot of its own (fd -1, linked to its parent) whose request is
 * written into its `in` queue as an HTTP/1.1 head and body, so the stream
 * runs the same parser, routing, balancing, retries and upstream pools as
 * an HTTP/1.1 request. Its response head becomes a HEADERS frame and its
 * body is read by nghttp2's data provider straight from the response queue.
 *
 * Memory per stream is bounded by flow control: DATA is acknowledged
 * (WINDOW_UPDATE) only once the stream's queue has drained below the
 * stream window. Floods are bounded by token buckets (client resets;
 * SETTINGS, PING and PRIORITY frames), a CONTINUATION count per header
 * block, a header block size, and the concurrent stream limit; a client
 * that exceeds them gets GOAWAY (ENHANCE_YOUR_CALM) and is closed.
 *
 * Thread: shard-local, like proxy.c.
 */
#ifndef RLB_H2_H
#define RLB_H2_H

#include "core/conn.h"

/* h2_shard_init allocates the shard's scratch for response fields;
 * h2_shard_free releases it. */
int h2_shard_init(struct shard *s);
void h2_shard_free(struct shard *s);

/* h2_start turns established TLS connection `c` into an HTTP/2 parent
 * (sends the server SETTINGS). Returns 1, or 0 when out of memory. */
int h2_start(struct shard *s, struct conn *c);

/* h2_input feeds the parent's decrypted bytes to nghttp2 and runs the
 * streams that got something. May close the parent. */
void h2_input(struct shard *s, struct conn *c);

/* h2_produce encrypts what nghttp2 has to send into c->tls.out, up to
 * `out_max` bytes queued. */
void h2_produce(struct shard *s, struct conn *c, uint64_t out_max);

/* h2_after_send checks, after the parent's records went out, whether the
 * session is over (then it closes) and acknowledges stream data. */
void h2_after_send(struct shard *s, struct conn *c);

/* h2_stream_send hands what stream `c` has for its client to nghttp2: an
 * error page of ringlb's, more body, or the end of the body. */
void h2_stream_send(struct shard *s, struct conn *c);

/* h2_submit_response turns the backend's final response head `m` (plus
 * `extra` field lines "Name: value\r\n", may be empty) into the stream's
 * HEADERS. Returns 0, or the status to answer instead. */
int h2_submit_response(struct shard *s, struct conn *c, const struct h1_msg *m,
                       struct h1_str extra);

/* h2_ack acknowledges stream `c`'s DATA once its queue has drained below
 * one stream window (a WINDOW_UPDATE lets the client send more). */
void h2_ack(struct shard *s, struct conn *c);

/* h2_stream_finish ends stream `c` after its transaction: freed now or
 * when nghttp2 closes the stream. */
void h2_stream_finish(struct shard *s, struct conn *c);

/* h2_stream_freed unlinks stream `c` from its parent (conn_free). */
void h2_stream_freed(struct shard *s, struct conn *c);

/* h2_parent_closing aborts every stream of parent `c` and, once they are
 * gone, frees its session (conn_abort and conn_free of the parent). */
void h2_parent_closing(struct shard *s, struct conn *c);
void h2_parent_freed(struct shard *s, struct conn *c);

/* h2_drain sends GOAWAY so the client opens no new stream (graceful stop);
 * the parent closes when its streams are done. */
void h2_drain(struct shard *s, struct conn *c);

#endif
