/* tls/client.c — TLS from ringlb to a pool's backends (see tls.h).
 *
 * One SSL_CTX per pool and snapshot, holding the CAs that verify backends
 * and the optional client certificate. Each upstream connection is a
 * tls_link in connect state: the same queues and BIO as client
 * connections. Sessions the backend issues are handed to the shard
 * (tls_take_session), which offers the latest one per backend on the next
 * connect, so reconnects resume instead of paying a full handshake.
 */
#include "tls/internal.h"
#include "tls/tls.h"

#include "core/common.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

struct tls_client {
	SSL_CTX *ctx;
	bool verify;
	char name[256]; /* SNI and the verified name; "" = the backend's IP */
};

static int g_link_index = -1; /* SSL ex_data: its struct tls_link */

static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_link *l = SSL_get_ex_data(ssl, g_link_index);

	if (l == NULL)
		return 0;
	if (l->session != NULL)
		SSL_SESSION_free(l->session);
	l->session = sess;
	return 1; /* we keep the reference */
}

struct tls_client *tls_client_new(const struct config_pool_tls *t, const char *pool, char *err,
                                  size_t err_len)
{
	struct tls_client *cli;
	const char *ca = t->ca[0] != '\0' ? t->ca : CONFIG_CA_BUNDLE;
	char r[160], msg[2048];
	static const uint8_t alpn[] = "\x08http/1.1";

	if (!tls_init(err, err_len))
		return NULL;
	if (g_link_index < 0)
		g_link_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	cli = rlb_xcalloc(1, sizeof(*cli));
	cli->verify = t->verify;
	snprintf(cli->name, sizeof(cli->name), "%s", t->name);
	cli->ctx = SSL_CTX_new(TLS_method());
	if (cli->ctx == NULL || g_link_index < 0) {
		snprintf(err, err_len, "pool %s: out of memory for TLS", pool);
		goto fail;
	}
	SSL_CTX_set_min_proto_version(cli->ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(cli->ctx, TLS1_3_VERSION);
	SSL_CTX_set_strict_cipher_list(cli->ctx, CONFIG_TLS_CIPHERS);
	SSL_CTX_set_mode(cli->ctx,
	                 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_alpn_protos(cli->ctx, alpn, sizeof(alpn) - 1);
	SSL_CTX_set_session_cache_mode(cli->ctx,
	                               SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(cli->ctx, new_session);
	if (t->verify && !SSL_CTX_load_verify_locations(cli->ctx, ca, NULL)) {
		snprintf(err, err_len, "pool %s: tls_ca: %s: no usable CA certificate (%s)", pool,
		         ca, ERR_error_string(ERR_get_error(), r));
		goto fail;
	}
	if (t->cert[0] != '\0') {
		if (!tls_check_private_file(t->key, msg, sizeof(msg))) {
			snprintf(err, err_len, "pool %s: tls_key: %s", pool, msg);
			goto fail;
		}
		if (!SSL_CTX_use_certificate_chain_file(cli->ctx, t->cert) ||
		    !SSL_CTX_use_PrivateKey_file(cli->ctx, t->key, SSL_FILETYPE_PEM) ||
		    !SSL_CTX_check_private_key(cli->ctx)) {
			snprintf(err, err_len, "pool %s: tls_cert %s / tls_key %s: %s", pool,
			         t->cert, t->key, ERR_error_string(ERR_get_error(), r));
			goto fail;
		}
	}
	ERR_clear_error();
	return cli;
fail:
	ERR_clear_error();
	tls_client_free(cli);
	return NULL;
}

void tls_client_free(struct tls_client *cli)
{
	if (cli == NULL)
		return;
	SSL_CTX_free(cli->ctx); /* connections on it hold their own reference */
	free(cli);
}

/* set_peer says what the backend must prove: its name (and SNI) when the
 * pool names one, else its IP address in the certificate. */
static int set_peer(SSL *ssl, const struct tls_client *cli, const struct sockaddr *addr)
{
	if (!cli->verify)
		return 1;
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	if (cli->name[0] != '\0')
		return SSL_set1_host(ssl, cli->name);
	if (addr->sa_family == AF_INET)
		return X509_VERIFY_PARAM_set1_ip(
		        SSL_get0_param(ssl),
		        (const uint8_t *)&((const struct sockaddr_in *)(const void *)addr)
		                ->sin_addr,
		        4);
	if (addr->sa_family == AF_INET6)
		return X509_VERIFY_PARAM_set1_ip(
		        SSL_get0_param(ssl),
		        (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)addr)
		                ->sin6_addr,
		        16);
	return 0;
}

int tls_connect(struct tls_link *l, struct tls_client *cli, const struct sockaddr *addr,
                void *session, struct bufpool *in_pool, struct mempool *out_pool)
{
	SSL *ssl = SSL_new(cli->ctx);
	BIO *b;

	if (ssl == NULL)
		return 0;
	b = BIO_new(tls_bio_method());
	if (b == NULL || !SSL_set_ex_data(ssl, g_link_index, l) || !set_peer(ssl, cli, addr) ||
	    (cli->name[0] != '\0' && !SSL_set_tlsext_host_name(ssl, cli->name))) {
		BIO_free(b);
		SSL_free(ssl);
		ERR_clear_error();
		return 0;
	}
	tls_link_init(l);
	BIO_set_data(b, l);
	SSL_set_bio(ssl, b, b);
	SSL_set_connect_state(ssl);
	if (session != NULL)
		SSL_set_session(ssl, session);
	l->ssl = ssl;
	l->in_pool = in_pool;
	l->out_pool = out_pool;
	return 1;
}

void *tls_take_session(struct tls_link *l)
{
	void *s = l->session;

	l->session = NULL;
	return s;
}

void tls_session_free(void *session)
{
	if (session != NULL)
		SSL_SESSION_free(session);
}

const char *tls_verify_error(const struct tls_link *l)
{
	long v;

	if (l->ssl == NULL)
		return "no TLS";
	v = SSL_get_verify_result(l->ssl);
	return v == X509_V_OK ? "handshake failed" : X509_verify_cert_error_string(v);
}

/* ---- blocking-free TLS over a socket, for the health checker ---- */

void *tls_sock_new(struct tls_client *cli, int fd, const struct sockaddr *addr)
{
	SSL *ssl = SSL_new(cli->ctx);

	if (ssl == NULL)
		return NULL;
	if (!SSL_set_fd(ssl, fd) || !set_peer(ssl, cli, addr) ||
	    (cli->name[0] != '\0' && !SSL_set_tlsext_host_name(ssl, cli->name))) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_connect_state(ssl);
	return ssl;
}

int tls_sock_io(void *p, enum tls_sock_op op, void *buf, size_t len)
{
	SSL *ssl = p;
	int r, e;

	if (op == TLS_SOCK_HANDSHAKE)
		r = SSL_do_handshake(ssl);
	else if (op == TLS_SOCK_WRITE)
		r = SSL_write(ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	else
		r = SSL_read(ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (r > 0)
		return op == TLS_SOCK_HANDSHAKE ? 0 : r;
	e = SSL_get_error(ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		return TLS_SOCK_WANT_READ;
	if (e == SSL_ERROR_WANT_WRITE)
		return TLS_SOCK_WANT_WRITE;
	ERR_clear_error();
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && op == TLS_SOCK_READ))
		return 0; /* the end of the response */
	return TLS_SOCK_ERROR;
}

const char *tls_sock_error(void *p)
{
	long v = SSL_get_verify_result(p);

	return v == X509_V_OK ? "TLS handshake failed" : X509_verify_cert_error_string(v);
}

void tls_sock_free(void *p)
{
	SSL_free(p); /* does not close the socket */
}
