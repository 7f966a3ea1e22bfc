/* tls/tls.h — TLS for client connections, on BoringSSL, through memory.
 *
 * The ring receives and sends ciphertext; BoringSSL never touches a socket.
 * Each TLS connection has a `struct tls_link`: ciphertext received from the
 * ring waits in `in` (the ring's provided buffers, zero-copy), BoringSSL
 * reads it through a custom BIO, and what BoringSSL writes (handshake
 * messages, records, alerts) lands in `out`, buffers of the shard's
 * `mempool`, which the shard sends with one sendmsg. Plaintext is decrypted
 * straight into the connection's request queue (tls_read) and encrypted
 * straight from the response bytes (tls_write). Nothing blocks: a handshake,
 * a read or a write that needs more bytes returns and is retried when the
 * ring brings them.
 *
 * A `struct tls_server` holds one listener's TLS settings: certificates
 * (ECDSA and RSA side by side, chosen per client; SNI with exact and
 * wildcard names; the first certificate is the default), ALPN, session
 * ticket keys, optional OCSP staples and client-certificate verification.
 * The control thread builds it, reloads it (tls_server_adopt swaps the
 * BoringSSL context through RCU: connections keep the one they started
 * with) and rotates its ticket keys (tls_server_tick). Shards only call
 * tls_accept, which reads the current context inside their RCU read side.
 *
 * This header names no BoringSSL type, so core/ compiles without BoringSSL
 * on its include path; only the sources in tls/ include it.
 */
#ifndef RLB_TLS_H
#define RLB_TLS_H

#include "core/buf.h"
#include "core/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tls_server;
struct tls_client;
struct sockaddr;

/* One connection's TLS state. All-zero is "no TLS"; tls_link_init. */
struct tls_link {
	void *ssl;                /* SSL *, NULL when the connection is plain */
	struct bufq in;           /* ciphertext received, not yet read by BoringSSL */
	struct bufq out;          /* ciphertext BoringSSL wrote, not yet sent */
	struct bufpool *in_pool;  /* the ring's buffers `in` holds */
	struct mempool *out_pool; /* the shard's buffers `out` holds */
	bool eof;                 /* the peer closed TCP: no more ciphertext */
	bool established;         /* the handshake completed */
	bool closed;              /* no more input: close_notify or EOF received, or failed */
	bool failed;              /* a fatal error: nothing more can be written either */
	bool notified;            /* our close_notify is written */
	bool want_buffers;        /* stopped because out_pool was empty */
	void *session;            /* client side: a session the server issued, not yet taken */
};

enum tls_result {
	TLS_OK = 0, /* progress, or waiting for more ciphertext */
	TLS_CLOSED, /* the peer closed the TLS session (close_notify or EOF) */
	TLS_FAILED, /* fatal: handshake or record error; an alert may be in `out` */
	TLS_NOBUF,  /* the shard's TLS buffers ran out; retry when some come back */
};

/* tls_init prepares process-wide state (the BIO method). Call once before
 * anything else. Returns 1, or 0 with a message. */
int tls_init(char *err, size_t err_len);

/* tls_server_new loads listener `index`'s TLS settings `t` (certificates,
 * keys, OCSP responses, client CAs, ticket key file) from `cfg_source`'s
 * configuration. A private key or ticket key file that others may read is
 * refused. Returns NULL with "SOURCE:LINE: KEY: FILE: reason" in err. */
struct tls_server *tls_server_new(const struct config_tls *t, const char *cfg_source, size_t index,
                                  char *err, size_t err_len);

/* tls_server_adopt makes `fresh` (a tls_server_new of the new settings)
 * what `srv` gives new connections, and frees `fresh`. Connections that
 * started on the old context keep it until they close; the server's own
 * ticket keys survive, so sessions resume across a reload. Control thread;
 * it waits for an RCU grace period. */
void tls_server_adopt(struct tls_server *srv, struct tls_server *fresh);

/* tls_server_tick rotates the server's own ticket keys when ticket_rotate
 * has passed since the last rotation (a no-op with a ticket key file).
 * Control thread. */
void tls_server_tick(struct tls_server *srv, uint64_t now_ms);

/* tls_server_free releases the server; no shard may use it any more. */
void tls_server_free(struct tls_server *srv);

/* tls_server_describe writes a one-line summary (certificate names, key
 * types) for the start-up log. */
void tls_server_describe(const struct tls_server *srv, char *out, size_t out_len);

/* tls_link_init makes `l` plain (no TLS) with its queues empty. */
void tls_link_init(struct tls_link *l);

/* tls_accept starts a server-side session on `l` with srv's current
 * context. Shard thread, RCU read side. Returns 1, or 0 when out of memory. */
int tls_accept(struct tls_link *l, struct tls_server *srv, struct bufpool *in_pool,
               struct mempool *out_pool);

/* tls_read runs the handshake as far as the received ciphertext allows,
 * then decrypts into `plain` (buffers of `pool`) until it holds `max`
 * bytes or the ciphertext runs out. */
enum tls_result tls_read(struct tls_link *l, struct bufq *plain, struct mempool *pool,
                         uint64_t max);

/* tls_write encrypts up to `len` bytes at `p` into l->out and sets
 * *written to the bytes taken (possibly fewer: out of buffers). Call only
 * once established. */
enum tls_result tls_write(struct tls_link *l, const void *p, size_t len, size_t *written);

/* tls_close_notify writes a close_notify alert into l->out (once). */
void tls_close_notify(struct tls_link *l);

/* tls_free ends the session and releases both queues' buffers. */
void tls_free(struct tls_link *l);

/* tls_alpn_h2 says whether the client and ringlb agreed on h2 (ALPN). */
bool tls_alpn_h2(const struct tls_link *l);

/* tls_version_name returns "TLSv1.3"/"TLSv1.2" for an established link,
 * or "-". */
const char *tls_version_name(const struct tls_link *l);

/* --- toward backends (tls/client.c) --- */

/* tls_client_new builds pool `pool`'s TLS client settings: the CAs that
 * verify its backends (the system bundle by default), the name to verify
 * and send as SNI, an optional client certificate. Returns NULL with a
 * message naming the pool and the file. */
struct tls_client *tls_client_new(const struct config_pool_tls *t, const char *pool, char *err,
                                  size_t err_len);

/* tls_client_free drops the settings (connections keep what they use). */
void tls_client_free(struct tls_client *cli);

/* tls_connect starts a client session on `l` to the backend at `addr`
 * (whose IP is verified when the pool names no host), offering `session`
 * (from tls_take_session) for resumption. Returns 1, or 0 when out of
 * memory. */
int tls_connect(struct tls_link *l, struct tls_client *cli, const struct sockaddr *addr,
                void *session, struct bufpool *in_pool, struct mempool *out_pool);

/* tls_take_session returns the newest session the backend issued on `l`
 * since the last call (the caller owns it), or NULL. */
void *tls_take_session(struct tls_link *l);

/* tls_session_free releases a session; NULL is fine. */
void tls_session_free(void *session);

/* tls_verify_error describes why a client handshake failed. */
const char *tls_verify_error(const struct tls_link *l);

/* --- TLS over a non-blocking socket (the health checker's) --- */

enum tls_sock_op { TLS_SOCK_HANDSHAKE, TLS_SOCK_WRITE, TLS_SOCK_READ };
#define TLS_SOCK_ERROR      (-1)
#define TLS_SOCK_WANT_READ  (-2)
#define TLS_SOCK_WANT_WRITE (-3)

/* tls_sock_new starts a client session with `cli`'s settings on connected
 * socket `fd` (the backend at `addr`); NULL when out of memory. */
void *tls_sock_new(struct tls_client *cli, int fd, const struct sockaddr *addr);

/* tls_sock_io runs one step: the handshake (0 when done), a write or a
 * read (bytes, 0 at the end of the stream); or TLS_SOCK_WANT_READ/WRITE
 * (poll for that, then call again) or TLS_SOCK_ERROR. */
int tls_sock_io(void *ssl, enum tls_sock_op op, void *buf, size_t len);

/* tls_sock_error says why a handshake failed (verification, or "TLS
 * handshake failed"). */
const char *tls_sock_error(void *ssl);

/* tls_sock_free ends the session (the socket stays open). */
void tls_sock_free(void *ssl);

/* tls_check_private_file refuses a secret file that users other than the
 * owner and group may read: returns 1, or 0 with "FILE: ..." in err. */
int tls_check_private_file(const char *path, char *err, size_t err_len);

#endif
