/* core/protect.h — abuse control on the request path: connection limits
 * (all shards, per client address), allow/deny lists, the PROXY protocol,
 * the client address behind trusted proxies, request filters, rate limits
 * and the counters and anomaly detection that report on them.
 *
 * The shared tables (core/ratelimit.c) are made once by protect_boot on the
 * control thread before the shards start; shards use them lock-free. The
 * per-route settings (allow lists, filters, rate limits) live in the
 * snapshot, so a reload changes them without a restart.
 *
 * Thread: protect_conn_* and protect_request run on the shard that owns the
 * connection; protect_stats_json on the admin thread; protect_tick on the
 * control thread (both under the control-plane lock).
 */
#ifndef RLB_PROTECT_H
#define RLB_PROTECT_H

#include "core/buf.h"
#include "core/config.h"
#include "core/h1.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct shard;
struct conn;
struct snapshot;
struct snap_route;

/* Counters per route and shard; index 0 is "no route matched". */
struct route_stats {
	uint64_t requests, errors; /* errors: 5xx answers, ringlb's own included */
	uint64_t rate_limited, delayed, denied, filtered;
};

/* protect_boot makes the shared tables: the rate limit table and the
 * per-address connection counts. Returns 1, or 0 with a message. */
int protect_boot(const struct config *cfg, char *err, size_t err_len);
void protect_shutdown(void);

/* protect_set_shards lets the admin and control threads read the shards'
 * counters. */
void protect_set_shards(struct shard *shards, uint32_t n);

/* protect_conn_open sets a new connection's client address from its socket
 * and, unless its listener expects a PROXY header first, admits it: allow
 * and deny lists, limits.conns_total and limits.conns_per_ip. Returns 1, or
 * 0 when the connection is refused (counted; the caller closes it). */
int protect_conn_open(struct shard *s, struct conn *c, const struct sockaddr *sa);

/* protect_proxy_header reads a PROXY header from the connection's first
 * bytes and then admits the connection as protect_conn_open does. Returns
 * 1 when the connection may go on (c->pp_wait is false once the header was
 * read), 0 when it was refused or the header was bad (the caller aborts). */
int protect_proxy_header(struct shard *s, struct conn *c, struct bufq *q, struct bufpool *pool);

/* protect_conn_close releases what the connection counted. */
void protect_conn_close(struct shard *s, struct conn *c);

enum protect_verdict {
	PROTECT_PASS = 0,
	PROTECT_REFUSE, /* answer *status (403, 414, 429, 503); c->block_reason says why */
	PROTECT_HOLD,   /* rate limited in delay mode: the request waits (c->rl_hold) */
};

/* protect_request applies a routed request's protections: the client
 * address (X-Forwarded-For from a trusted proxy), the route's allow and
 * deny lists, its filters, and its rate limit. */
enum protect_verdict protect_request(struct shard *s, struct conn *c, const struct h1_msg *m,
                                     const struct snapshot *snap, const struct snap_route *r,
                                     int *status);

/* protect_note_status counts a finished request's answer for its route. */
void protect_note_status(struct shard *s, const struct conn *c);

/* protect_body_start starts timing a request body. */
void protect_body_start(struct shard *s, struct conn *c);

/* protect_body_rate is called with the body bytes of each receive; returns
 * false when the request body is slower than limits.body_min_rate. */
bool protect_body_rate(struct shard *s, struct conn *c, uint64_t bytes);

/* protect_body_progress notes progress on the client socket during a body
 * and arms the body timer: the next of client_body after the last progress
 * and the end of the rate window. */
void protect_body_progress(struct shard *s, struct conn *c);

/* protect_body_timer handles the body timer: false when the request has
 * timed out or is too slow (the caller answers 408), else it re-arms. */
bool protect_body_timer(struct shard *s, struct conn *c);

/* protect_tick runs anomaly detection (control thread, every 100 ms). */
void protect_tick(const struct config *cfg, uint64_t now_ms);

/* protect_stats_json writes the counters as JSON (GET /api/protection).
 * Returns its length. */
size_t protect_stats_json(const struct config *cfg, char *buf, size_t cap);

#endif
