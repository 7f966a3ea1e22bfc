/* tls/link.c — one connection's TLS session over its queues (see tls.h).
 *
 * BoringSSL reads and writes through a BIO whose methods move bytes
 * between the SSL and the link's queues: reading copies ciphertext out of
 * the ring's buffers (then recycles them), writing appends to `out` in
 * buffers of the shard's mempool. Neither blocks: with nothing to read the
 * BIO asks to be retried, and with no buffer free it accepts what fits. */
#include "tls/internal.h"
#include "tls/tls.h"

#include "core/common.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <limits.h>
#include <string.h>
#include <urcu-qsbr.h>

static BIO_METHOD *g_method;

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static int bio_read(BIO *b, char *out, int len)
{
	struct tls_link *l = BIO_get_data(b);
	size_t done = 0;

	BIO_clear_retry_flags(b);
	if (l->in.bytes == 0) {
		if (l->eof)
			return 0;
		BIO_set_retry_read(b);
		return -1;
	}
	while (done < (size_t)len && l->in.bytes > 0) {
		size_t run;
		char *p = bufq_front(&l->in, l->in_pool, &run);
		size_t take = run < (size_t)len - done ? run : (size_t)len - done;

		if (p == NULL || run == 0)
			break;
		memcpy(out + done, p, take);
		bufq_consume(&l->in, l->in_pool, take);
		done += take;
	}
	return (int)done;
}

static int bio_write(BIO *b, const char *data, int len)
{
	struct tls_link *l = BIO_get_data(b);
	struct bufpool *p = &l->out_pool->pool;
	size_t done = 0;

	BIO_clear_retry_flags(b);
	while (done < (size_t)len) {
		size_t space, take;
		char *at = bufq_space(&l->out, p, &space);

		if (at != NULL) {
			take = space < (size_t)len - done ? space : (size_t)len - done;
			memcpy(at, data + done, take);
			bufq_commit(&l->out, p, take);
		} else {
			uint16_t bid = mempool_get(l->out_pool);

			if (bid == BUF_NONE)
				break;
			take = p->buf_size < (size_t)len - done ? p->buf_size : (size_t)len - done;
			memcpy(bufpool_data(p, bid), data + done, take);
			bufq_push(&l->out, p, bid, (uint32_t)take);
		}
		done += take;
	}
	if (done == 0) {
		l->want_buffers = true;
		BIO_set_retry_write(b);
		return -1;
	}
	return (int)done;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b, (void)num, (void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

BIO_METHOD *tls_bio_method(void)
{
	BIO_METHOD *m;

	if (g_method != NULL)
		return g_method;
	m = BIO_meth_new(0, "ringlb-queue");
	if (m == NULL || !BIO_meth_set_create(m, bio_create) || !BIO_meth_set_read(m, bio_read) ||
	    !BIO_meth_set_write(m, bio_write) || !BIO_meth_set_ctrl(m, bio_ctrl)) {
		BIO_meth_free(m);
		return NULL;
	}
	g_method = m;
	return m;
}

void tls_link_init(struct tls_link *l)
{
	memset(l, 0, sizeof(*l));
	bufq_init(&l->in);
	bufq_init(&l->out);
}

int tls_accept(struct tls_link *l, struct tls_server *srv, struct bufpool *in_pool,
               struct mempool *out_pool)
{
	SSL *ssl = SSL_new(rcu_dereference(srv->ctx));
	BIO *b;

	if (ssl == NULL)
		return 0;
	b = BIO_new(g_method);
	if (b == NULL) {
		SSL_free(ssl);
		return 0;
	}
	tls_link_init(l);
	BIO_set_data(b, l);
	SSL_set_bio(ssl, b, b); /* one reference serves both directions */
	SSL_set_accept_state(ssl);
	l->ssl = ssl;
	l->in_pool = in_pool;
	l->out_pool = out_pool;
	return 1;
}

/* failed maps an SSL error to a result; the error queue is left empty. */
static enum tls_result failed(struct tls_link *l, int r)
{
	int e = SSL_get_error(l->ssl, r);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		return TLS_OK;
	case SSL_ERROR_WANT_WRITE:
		return TLS_NOBUF;
	case SSL_ERROR_ZERO_RETURN:
		l->closed = true;
		return TLS_CLOSED;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		l->closed = true;
		if (l->eof)
			return TLS_CLOSED; /* EOF without close_notify: input ends */
		l->failed = true;
		return TLS_FAILED;
	default:
		ERR_clear_error();
		l->closed = l->failed = true;
		return TLS_FAILED;
	}
}

enum tls_result tls_read(struct tls_link *l, struct bufq *plain, struct mempool *pool, uint64_t max)
{
	SSL *ssl = l->ssl;

	if (l->closed)
		return TLS_CLOSED;
	l->want_buffers = false;
	if (!l->established) {
		int r = SSL_do_handshake(ssl);

		if (r != 1)
			return failed(l, r);
		l->established = true;
	}
	while (plain->bytes < max) {
		size_t space, cap;
		uint16_t bid = BUF_NONE;
		char *p = bufq_space(plain, &pool->pool, &space);
		int n;

		if (p == NULL) {
			bid = mempool_get(pool);
			if (bid == BUF_NONE) {
				l->want_buffers = true;
				return TLS_NOBUF;
			}
			p = bufpool_data(&pool->pool, bid);
			space = pool->pool.buf_size;
		}
		cap = space < max - plain->bytes ? space : (size_t)(max - plain->bytes);
		n = SSL_read(ssl, p, cap > INT_MAX ? INT_MAX : (int)cap);
		if (n <= 0) {
			if (bid != BUF_NONE)
				pool->pool.recycle(&pool->pool, bid);
			return failed(l, n);
		}
		if (bid != BUF_NONE)
			bufq_push(plain, &pool->pool, bid, (uint32_t)n);
		else
			bufq_commit(plain, &pool->pool, (size_t)n);
	}
	return TLS_OK;
}

enum tls_result tls_write(struct tls_link *l, const void *p, size_t len, size_t *written)
{
	int n;

	*written = 0;
	if (l->failed)
		return TLS_FAILED;
	if (len == 0)
		return TLS_OK; /* SSL_write(0) reads as an error */
	l->want_buffers = false;
	n = SSL_write(l->ssl, p, len > INT_MAX ? INT_MAX : (int)len);
	if (n > 0) {
		*written = (size_t)n;
		return TLS_OK;
	}
	return failed(l, n);
}

void tls_close_notify(struct tls_link *l)
{
	if (l->ssl == NULL || l->notified || !l->established || l->failed)
		return;
	l->notified = true;
	if (SSL_shutdown(l->ssl) < 0) {
		/* no buffer for the alert: let a later call write it */
		if (SSL_get_error(l->ssl, -1) == SSL_ERROR_WANT_WRITE)
			l->notified = false;
		ERR_clear_error();
	}
}

void tls_free(struct tls_link *l)
{
	if (l->ssl != NULL)
		SSL_free(l->ssl);
	l->ssl = NULL;
	if (l->session != NULL)
		SSL_SESSION_free(l->session);
	l->session = NULL;
	if (l->in_pool != NULL)
		bufq_clear(&l->in, l->in_pool);
	if (l->out_pool != NULL)
		bufq_clear(&l->out, &l->out_pool->pool);
	l->eof = l->established = l->closed = l->failed = l->notified = false;
	l->want_buffers = false;
}

bool tls_alpn_h2(const struct tls_link *l)
{
	const uint8_t *p;
	unsigned len = 0;

	if (l->ssl == NULL)
		return false;
	SSL_get0_alpn_selected(l->ssl, &p, &len);
	return len == 2 && memcmp(p, "h2", 2) == 0;
}

const char *tls_version_name(const struct tls_link *l)
{
	if (l->ssl == NULL || !l->established)
		return "-";
	return SSL_get_version(l->ssl);
}
