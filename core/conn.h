/* core/conn.h — client connections, upstream connections and the shard
 * that owns them.
 *
 * Ownership: a shard owns two slabs, one of `struct conn` (client side) and
 * one of `struct upconn` (backend side), sized from configuration at
 * start-up; nothing on the request path allocates. A slot is reused only
 * when no operation is in flight on it (`ops` == 0); its generation goes up
 * on every reuse and is part of each operation's user_data, so a completion
 * for an earlier user is recognised.
 *
 * Buffers: a client connection's unconsumed request bytes live in `in`; the
 * response bytes from its backend live in the client connection's `rin`
 * (not in the upstream connection), so an upstream connection can go back
 * to its pool, or die, while the client is still being sent its response.
 *
 * Thread: everything here is shard-local.
 */
#ifndef RLB_CONN_H
#define RLB_CONN_H

#include "balancer/balancer.h"
#include "core/budget.h"
#include "core/buf.h"
#include "core/common.h"
#include "core/compress.h"
#include "core/config.h"
#include "core/h1.h"
#include "core/protect.h"
#include "core/ring.h"
#include "core/timer.h"
#include "tls/tls.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define CONN_IOV_MAX       16
#define ACCEPT_WAITING_MAX 256  /* connections parked while the slab is full */
#define CONN_HEADERS_MAX   1024 /* the array size; limits.headers_max <= this */

/* Operations, the low byte of user_data. */
enum op {
	OP_ACCEPT = 1, /* slot = listener index, gen = 0 */
	OP_CRECV,
	OP_CSEND,
	OP_CCANCEL,
	OP_URECV,
	OP_USEND,
	OP_UCONNECT,
	OP_UCANCEL,
	OP_ACANCEL, /* cancellation of a listener's accept (slot = listener) */
	OP_WAKE,    /* a doorbell from another shard (MSG_RING): work in its inbox */
};

enum conn_state {
	CONN_FREE = 0, /* in the free list */
	CONN_IDLE,     /* between requests: waiting for the first byte (keepalive timer) */
	CONN_HEAD,     /* reading a request head (client_header timer) */
	CONN_PROXY,    /* a request is proxied; see req_phase and resp_phase */
	CONN_LOCAL,    /* sending a response ringlb made (an error page) */
	CONN_LINGER,   /* final response sent, write side shut: draining input until EOF */
	CONN_H2,       /* an HTTP/2 connection: its streams are connections of their own */
	CONN_CLOSING,  /* shut down; waiting for in-flight operations to end (transient) */
};

enum req_phase {
	REQ_BODY = 0, /* body bytes still to be received or classified */
	REQ_DONE,     /* the whole request has been received (maybe not yet sent) */
};

enum resp_phase {
	RESP_CONNECT = 0, /* getting an upstream connection */
	RESP_HEAD,        /* waiting for / parsing the response head */
	RESP_BODY,        /* forwarding the body */
	RESP_DONE,        /* the whole response has been received */
};

struct upconn;
struct cache_obj;
struct cache_purge_msg;

/* Why an upstream connection failed, as the client side needs to know. */
enum up_fail {
	UPF_CONNECT = 0,     /* connect refused or failed: nothing was sent */
	UPF_CONNECT_TIMEOUT, /* connect timed out: nothing was sent */
	UPF_STALE,           /* a reused connection died before any response byte */
	UPF_IO,              /* reset, or closed in the middle of the response */
	UPF_TIMEOUT,         /* no response within upstream_response / upstream_send */
};

struct conn {
	uint32_t gen;
	int fd;
	uint8_t state;      /* enum conn_state */
	uint8_t ops;        /* operations in flight on fd */
	uint8_t req_phase;  /* enum req_phase */
	uint8_t resp_phase; /* enum resp_phase */
	bool recv_on;       /* a multishot recv is armed */
	bool recv_stop;     /* its cancellation was requested */
	bool recv_eof;      /* the client closed its write side */
	bool send_on;       /* a send is in flight */
	bool starved;       /* waiting for provided buffers (ENOBUFS) */
	bool close_after;   /* close once the current response is sent */
	bool http10;
	bool keep_alive; /* the client asked to keep the connection */
	bool head_req;
	bool resp_started;  /* some of the response went to the client */
	bool up_reusable;   /* the upstream connection may go back to its pool */
	bool resp_dechunk;  /* strip chunked framing (HTTP/1.0 client) */
	bool retried_reuse; /* already retried after a stale pooled connection */
	bool idempotent;
	bool retry_pending;  /* get another upstream connection once c->up is gone */
	bool retry_fresh;    /* ... a new one, not from the idle pool */
	bool resp_aborted;   /* the response was cut: close without lingering */
	bool flush_pending;  /* queued to send at the end of the loop turn */
	bool queued;         /* waiting for a backend slot (max_connections) */
	bool eof_pending;    /* the client's end of input is to be handled (conn_step) */
	bool tls_starved;    /* waiting for TLS buffers (in s->tls_starved) */
	bool shut_pending;   /* lingering: shut the write side once `tls.out` is sent */
	bool rin_tls;        /* `rin` holds TLS buffers (decrypted from a TLS backend) */
	uint8_t listener;    /* index of the listener that accepted it */
	struct conn *q_next; /* next in its pool's wait queue */

	struct tls_link tls; /* TLS session (tls.ssl == NULL: plain) */
	struct bufq in;      /* request bytes from the client (plaintext) */
	struct bufq rin;     /* response bytes from the backend */
	struct h1_scan scan;
	struct timer timer;

	/* the current request */
	uint32_t pool;
	uint64_t snap_version;
	uint32_t tries;
	uint64_t tried;   /* lb_ctx.exclude */
	int32_t req_head; /* hpool index of the head sent upstream, or -1 */
	uint32_t req_head_len, req_head_sent;
	uint8_t req_body;   /* enum h1_body */
	uint64_t req_left;  /* Content-Length bytes not yet classified */
	uint64_t req_fwd;   /* classified body bytes at the front of `in` */
	uint64_t req_total; /* body bytes received */
	struct h1_chunked req_chunk;
	struct upconn *up;
	uint64_t lb_hash;   /* hash of the pool's hash key (hash, ip_hash) */
	int32_t sticky_idx; /* backend the sticky cookie names, or -1 */
	uint64_t
	        sticky_sent; /* sticky id of the chosen backend when a cookie must be set, else 0 */
	uint64_t t_pick_us;  /* when the backend was picked, for its response-time EWMA */

	/* the current response */
	const char *local;       /* a constant response being sent, or NULL */
	uint16_t pending_status; /* an error page waiting for an interim response to go out */
	uint32_t local_len, local_sent;
	int32_t resp_head; /* hpool index of the head sent to the client, or -1 */
	uint32_t resp_head_len, resp_head_sent;
	uint8_t resp_body; /* enum h1_body */
	uint64_t resp_left;
	uint64_t resp_fwd; /* classified body bytes at the front of `rin` */
	struct h1_scan rscan;
	struct h1_chunked resp_chunk;
	uint64_t send_inflight; /* bytes of the send in flight */

	/* for the access log */
	int status;
	uint64_t bytes_out;
	uint64_t t_start_ms;
	uint32_t backend_uid;
	char method[16];
	char target[200];
	char peer[48];
	char request_id[68]; /* X-Request-ID of the current request ("" = off) */
	uint32_t nreq;       /* requests read on this connection (limits.requests_per_conn) */

	/* Protection (core/protect.c) */
	uint8_t cfam;            /* family of caddr, 4 or 6; 0 = unknown */
	uint8_t rfam;            /* family of raddr */
	uint8_t caddr[16];       /* the connection's client: the PROXY header's, else the peer */
	uint8_t raddr[16];       /* this request's client: X-Forwarded-For behind a trusted proxy */
	bool pp_wait;            /* a PROXY header is still to come */
	bool counted_total;      /* counted in limits.conns_total */
	bool counted_ip;         /* counted in limits.conns_per_ip under ip_key */
	bool rl_hold;            /* rate limited in delay mode: the head waits in `in` */
	bool rl_granted;         /* ... and its wait is over: pass the rate limit once */
	bool body_paused;        /* reading a body paused in this rate window (back-pressure) */
	uint16_t route;          /* route index + 1 of the current request; 0 = none */
	uint64_t ip_key;         /* hash of caddr */
	uint64_t body_win_ms;    /* start of the current body rate window */
	uint64_t body_win_bytes; /* body bytes received in it */
	uint64_t body_last_ms;   /* last body bytes received */
	char block_reason[CONFIG_NAME_MAX]; /* why ringlb refused the request (access log); "" =
	                                       none. A copy: a rule's name lives in a snapshot */
	uint32_t retry_after; /* seconds, for the Retry-After of a refusal; 0 = none */
	int32_t local_buf;    /* hpool index of a page made for this request, or -1 */
	char client[48];      /* raddr as text (access log) */

	struct iovec iov[CONN_IOV_MAX];
	struct msghdr msg;
	struct conn *starved_next;
	struct conn *tls_starved_next;

	/* HTTP/2 (core/h2.c). A parent has h2 set; a stream has h2_parent. */
	void *h2;                   /* parent: its nghttp2_session */
	struct conn *h2_parent;     /* stream: the connection it arrived on */
	struct conn *h2_next;       /* stream: the parent's next stream */
	struct conn *h2_streams;    /* parent: its streams */
	struct conn *h2_dirty_next; /* stream: next in the parent's to-run list */
	struct conn *h2_dirty;      /* parent: streams to run after input */
	uint32_t h2_gen;            /* stream: the parent's gen when linked */
	int32_t h2_id;              /* stream id */
	uint32_t h2_nstreams;       /* parent: live streams */
	int32_t h2_scratch;         /* stream: hpool buffer for pseudo-headers, or -1 */
	uint32_t h2_method_len, h2_path_len, h2_auth_len; /* in h2_scratch */
	uint32_t h2_head_bytes;                           /* stream: header block bytes received */
	uint32_t h2_cont;         /* stream: CONTINUATION frames in this block */
	uint64_t h2_owed;         /* stream: DATA bytes not yet acknowledged */
	uint64_t h2_reset_tokens; /* parent: token buckets (x1000) and their time */
	uint64_t h2_ctrl_tokens;
	uint64_t h2_bucket_ms;
	const uint8_t *h2_out; /* parent: nghttp2 output not yet encrypted */
	size_t h2_out_len;
	bool h2_line_done;  /* stream: request line written to `in` */
	bool h2_chunked;    /* stream: the body is re-framed as chunked */
	bool h2_has_length; /* stream: the request carried content-length */
	bool h2_submitted;  /* stream: response HEADERS submitted */
	bool h2_deferred;   /* stream: the data provider waits for body */
	bool h2_closed;     /* stream: nghttp2 closed it */
	bool h2_done;       /* stream: the transaction is over */
	bool h2_in_dirty;   /* stream: in the parent's to-run list */
	bool h2_bad;        /* stream: refused while its head arrived; parent: failed */
	bool h2_stream;     /* an HTTP/2 stream (its parent may be gone) */
	bool bg;            /* a background fetch (cache refresh): no client, output dropped */

	/* HTTP cache (core/caching.c) */
	uint8_t cache_mode;        /* enum cache_mode */
	uint8_t cache_label;       /* enum cache_label: what X-Cache says */
	uint8_t cache_enc;         /* content coding of the variant wanted */
	bool cache_locked;         /* holds the fill lock of cache_hash */
	bool cache_waiting;        /* in s->cache_waiters */
	bool cache_store;          /* cobj is being built from the response */
	bool cache_304;            /* serving: answer 304 from cobj */
	uint16_t cache_zone;       /* zone index + 1; 0 = the route does not cache */
	uint64_t cache_hash;       /* of the primary key */
	int64_t cache_req_time;    /* seconds: when the request was sent */
	uint64_t cache_wait_until; /* ms: the end of a wait for another fetch */
	struct cache_obj *cobj;    /* served (CM_SERVE) or being built */
	struct cache_obj *cstale;  /* the stale entry a revalidation falls back on */
	uint64_t cobj_fed;         /* serving: body bytes copied into rin */
	bool cobj_direct;          /* serving: the body is sent from the object itself */
	const char *cbody;         /* serving: the object's body (held by cobj's reference) */
	uint64_t cbody_len;
	struct h1_chunked cache_chunk; /* building: decoder of a chunked body */
	struct conn *cache_wait_next;

	/* On-the-fly compression (core/compressing.c) */
	uint8_t zwant;      /* the coding the client accepts best (enum zenc); 0 = identity */
	bool zon;           /* this response is compressed: its body goes out of zq */
	bool zchunk;        /* the compressed body is framed chunked (HTTP/1.1 client) */
	bool zfinish;       /* the raw body is complete: the encoder finishes */
	bool zended;        /* the encoder wrote its last byte */
	struct zstream *zs; /* the encoder, until it ended */
	uint64_t zraw;      /* raw body bytes classified at the front of rin */
	struct bufq zq;     /* compressed bytes to send (TLS buffers) */
};

enum upconn_state {
	UP_FREE = 0,
	UP_CONNECTING, /* connect in flight (upstream_connect timer) */
	UP_ACTIVE,     /* serving a client request */
	UP_IDLE,       /* in its backend's idle pool (keepalive_timeout timer) */
	UP_CLOSING,    /* shut down; waiting for in-flight operations (transient) */
};

struct upconn {
	uint32_t gen;
	int fd;
	uint8_t state; /* enum upconn_state */
	uint8_t ops;
	bool recv_on, recv_stop, send_on, starved;
	bool got_bytes;        /* received response bytes for the current request */
	bool is_tls;           /* its pool speaks TLS to backends: `tls` is (being) set up */
	bool tls_stalled;      /* decrypting stopped with c->rin full (or no TLS buffer) */
	bool pump_pending;     /* queued in s->up_pump */
	bool tls_started;      /* TCP connected: the TLS handshake runs */
	uint64_t snap_version; /* snapshot its TLS settings came from */
	struct tls_link tls;
	uint32_t requests; /* requests sent on this connection */
	uint32_t backend_uid;
	uint32_t pool;
	uint64_t idle_timeout_ms;
	struct conn *client;  /* the client it serves (UP_ACTIVE) */
	struct lb_live *live; /* the process-wide load counters (counted while linked) */
	struct timer timer;
	struct upconn *idle_next, *idle_prev;
	uint64_t send_inflight;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	struct iovec iov[CONN_IOV_MAX];
	struct msghdr msg;
	struct upconn *starved_next;
};

/* Per backend uid: the idle connections of one shard, most recent first. */
struct idle_list {
	struct upconn *head;
	uint32_t count;
};

/* Counters one shard writes; readers sum across shards. */
struct shard_stats {
	uint64_t accepted, refused_full, requests, responses[6];
	uint64_t parse_errors, upstream_connects, upstream_reused, upstream_errors;
	uint64_t retries, timeouts, stale_cqes, log_dropped, tls_failures;
	uint64_t h2_connections, h2_floods, conn_request_limit;
	uint64_t refused_total, refused_per_ip, refused_acl, proxy_errors, ip_untracked;
	uint64_t body_too_slow;
} __attribute__((aligned(RLB_CACHELINE)));

/* What a shard needs to know about each listener on the request path,
 * fixed at start-up (the TLS server's certificates reload inside it). */
struct shard_listener {
	struct tls_server *tls; /* NULL = plain HTTP */
	uint32_t redirect_port; /* answer 301/308 to https://host:port; 0 = proxy */
	uint32_t hsts_len;
	char hsts[96]; /* "Strict-Transport-Security: ...\r\n", or "" */
};

/* Access-log queue: single producer (the shard), single consumer (the
 * control thread). */
#define ALOG_LINE_MAX 512
struct alog_queue {
	_Atomic uint32_t head; /* next to write (producer) */
	_Atomic uint32_t tail; /* next to read (consumer) */
	uint32_t mask;
	char (*lines)[ALOG_LINE_MAX];
};

struct shard {
	uint32_t id;
	int cpu; /* pinned CPU, or -1 */
	pthread_t thread;
	const struct config *cfg; /* boot configuration; immutable */
	struct ring ring;
	struct timer_wheel wheel;
	struct hpool heads;
	uint64_t now_ms;
	int listen_fds[CONFIG_LISTENERS_MAX];
	bool accept_on[CONFIG_LISTENERS_MAX]; /* a multishot accept is armed */
	uint32_t num_listeners;
	bool accept_paused;              /* the connection slab is full: not accepting */
	int waiting[ACCEPT_WAITING_MAX]; /* accepted while the slab was full (FIFO) */
	uint8_t waiting_listener[ACCEPT_WAITING_MAX];
	uint32_t waiting_head, num_waiting;

	struct conn *conns;
	uint32_t *conn_free;
	uint32_t conn_nfree;
	uint32_t conns_active;
	struct upconn *ups;
	uint32_t *up_free;
	uint32_t up_nfree;
	struct idle_list *idle;   /* [SNAPSHOT_UIDS_MAX] */
	void **up_sessions;       /* [SNAPSHOT_UIDS_MAX]: newest TLS session per backend */
	uint64_t *up_session_ver; /* [SNAPSHOT_UIDS_MAX]: the snapshot it was made under */
	uint64_t *up_pump; /* (gen << 32 | slot) of TLS upstreams to decrypt for, this turn */
	uint32_t num_up_pump, up_pump_cap;
	struct lb_local lb_local[CONFIG_POOLS_MAX];
	uint64_t lb_version;
	struct retry_budget budgets[CONFIG_POOLS_MAX]; /* per pool, this shard's requests */
	struct conn *queue_head[CONFIG_POOLS_MAX];     /* requests waiting for a slot, FIFO */
	struct conn *queue_tail[CONFIG_POOLS_MAX];
	uint32_t queue_len[CONFIG_POOLS_MAX];
	uint32_t queued_total;
	uint64_t budget_version;

	struct conn *starved; /* client connections waiting for buffers */
	struct shard_listener listeners[CONFIG_LISTENERS_MAX];
	struct mempool tls_pool;  /* TLS plaintext in and ciphertext out (if any TLS) */
	struct conn *tls_starved; /* connections waiting for tls_pool buffers */
	uint64_t *flush;          /* (gen << 32 | slot) of connections to send to this turn */
	uint32_t num_flush, flush_cap;
	uint64_t request_seq, request_salt;         /* X-Request-ID generator (random salt) */
	struct upconn *up_starved;                  /* upstream connections waiting for buffers */
	struct h1_header headers[CONN_HEADERS_MAX]; /* parse scratch */
	void *h2_nva;   /* HTTP/2 response fields being submitted (h2.c) */
	char *h2_names; /* their lower-cased names */
	size_t h2_names_cap;
	struct h1_limits req_limits, resp_limits;
	struct h1_chunked_limits chunk_limits;

	bool draining;
	uint64_t drain_deadline_ms;
	struct alog_queue alog;
	time_t log_when;   /* the second log_date was formatted for */
	char log_date[32]; /* access-log date, "27/Nov/2026:18:59:05 +0000" */
	struct shard_stats stats;
	struct route_stats *rstats; /* [CONFIG_ROUTES_MAX + 1]: index route + 1, 0 = no route */
	struct filter_scratch *filter_scratch; /* PCRE2 match data of this thread */
	uint64_t block_log_ms;                 /* rate of "request blocked" warnings */
	uint32_t block_log_count;

	struct zpool zpool; /* encoders (core/compressing.c) */

	/* HTTP cache (core/caching.c) */
	struct h1_header cache_headers[CONN_HEADERS_MAX]; /* parse scratch */
	struct conn *cache_waiters;                       /* requests waiting for a fill */
	_Atomic uint32_t cache_nwaiting;                  /* their number, read by others */
	uint64_t cache_gen_seen;                          /* fill generation last checked */
	struct cache_obj *_Atomic cache_inbox;            /* objects to insert (owner) */
	struct cache_purge_msg *_Atomic cache_purges;     /* purges to run */
	char err[256];
	int exit_status;
};

#endif
