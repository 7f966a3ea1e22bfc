/* tests/unit/tls/link_test.c — unit tests for tls/link.c.
 *
 * Goal: a server-side `struct tls_link` speaks TLS through its queues
 * alone. The handshake completes over buffers pushed into `in` and taken
 * from `out`; a client's request arrives as exactly its plaintext bytes, up
 * to the `max` asked for; a 100 KiB response goes out in record-sized
 * pieces and arrives intact; running out of buffers stops a handshake, a
 * read or a write with TLS_NOBUF (nothing lost, no buffer leaked) and
 * returning buffers lets it finish; close_notify and TCP EOF end the input
 * (TLS_CLOSED) but not the output; garbage fails the session (TLS_FAILED)
 * and nothing more is written. Through the link, tls/server.c's callbacks
 * are checked too: SNI and the client's key type choose the certificate,
 * ALPN settles on http/1.1 or nothing, session tickets resume across one
 * key rotation but not two, and a reload leaves running sessions alone.
 *
 * Method: the module is #included. A tls_server is built from ECDSA and
 * RSA keys and self-signed certificates made at run time in a mkdtemp
 * directory (removed at the end). The client is a plain BoringSSL SSL on
 * two memory BIOs; the test pumps bytes between it and the link in bounded
 * loops: the client's ciphertext goes into `in` through buffers of a
 * mempool (mempool_get, memcpy, bufq_push), `out` is drained into the
 * client and consumed, which returns its buffers. Every pool is checked to
 * be whole again at the end, and everything is freed (LeakSanitizer in the
 * SANITIZE=1 build). The test thread is an RCU QSBR reader, as a shard is.
 */
#include "tls/link.c"

#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define ROUNDS_MAX 64 /* pump rounds before a test gives up */

static char g_dir[64];
static X509 *g_cert_a, *g_cert_b, *g_cert_rsa; /* what the server may present */
static struct tls_server *g_srv;

/* ---- certificates and the server ---- */

static char *tpath(char *buf, const char *name)
{
	snprintf(buf, CONFIG_PATH_MAX, "%s/%s", g_dir, name);
	return buf;
}

static EVP_PKEY *gen_key(bool ecdsa)
{
	EVP_PKEY *k = EVP_PKEY_new();

	assert_non_null(k);
	if (ecdsa) {
		EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
		assert_non_null(ec);
		assert_int_equal(EC_KEY_generate_key(ec), 1);
		assert_int_equal(EVP_PKEY_assign_EC_KEY(k, ec), 1);
	} else {
		RSA *rsa = RSA_new();
		BIGNUM *e = BN_new();
		assert_non_null(rsa);
		assert_non_null(e);
		assert_int_equal(BN_set_word(e, RSA_F4), 1);
		assert_int_equal(RSA_generate_key_ex(rsa, 1024, e, NULL), 1); /* fast */
		BN_free(e);
		assert_int_equal(EVP_PKEY_assign_RSA(k, rsa), 1);
	}
	return k;
}

/* make_cert makes a self-signed certificate for `key` naming the DNS
 * subjectAltNames in the NULL-terminated `sans`. */
static X509 *make_cert(EVP_PKEY *key, const char *const *sans)
{
	X509 *x = X509_new();
	X509_NAME *name;
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();

	assert_non_null(x);
	assert_non_null(gens);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                                            (const uint8_t *)sans[0], -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	for (size_t i = 0; sans[i] != NULL; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		assert_non_null(g);
		assert_non_null(s);
		assert_int_equal(ASN1_STRING_set(s, sans[i], (int)strlen(sans[i])), 1);
		GENERAL_NAME_set0_value(g, GEN_DNS, s);
		assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
	}
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT),
	                 1);
	GENERAL_NAMES_free(gens);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

/* make_pair writes NAME.key (mode 0600) and NAME.crt; returns the
 * certificate, for comparing with what a client is shown. */
static X509 *make_pair(const char *name, bool ecdsa, const char *const *sans)
{
	EVP_PKEY *k = gen_key(ecdsa);
	X509 *x = make_cert(k, sans);
	char file[64], path[CONFIG_PATH_MAX];
	BIO *b;

	snprintf(file, sizeof(file), "%s.crt", name);
	b = BIO_new_file(tpath(path, file), "w");
	assert_non_null(b);
	assert_int_equal(PEM_write_bio_X509(b, x), 1);
	BIO_free(b);
	snprintf(file, sizeof(file), "%s.key", name);
	b = BIO_new_file(tpath(path, file), "w");
	assert_non_null(b);
	assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	BIO_free(b);
	assert_int_equal(chmod(path, 0600), 0);
	EVP_PKEY_free(k);
	return x;
}

/* server_new builds a tls_server from NAME.crt/NAME.key pairs, default
 * settings otherwise. */
static struct tls_server *server_new(const char *const *names, size_t n)
{
	struct config_tls t;
	struct config_cert c[4];
	char err[2048] = "";
	struct tls_server *srv;

	assert_true(n <= RLB_ARRAY_LEN(c));
	config_tls_defaults(&t);
	memset(c, 0, sizeof(c));
	for (size_t i = 0; i < n; i++) {
		snprintf(c[i].cert, CONFIG_PATH_MAX, "%s/%s.crt", g_dir, names[i]);
		snprintf(c[i].key, CONFIG_PATH_MAX, "%s/%s.key", g_dir, names[i]);
	}
	t.certs = c;
	t.num_certs = n;
	srv = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	if (srv == NULL)
		fail_msg("tls_server_new: %s", err);
	return srv;
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/ringlb-tls-link-XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return -1;
	g_cert_a = make_pair("a", true, (const char *[]){"a.test", "*.a.test", NULL});
	g_cert_b = make_pair("b", true, (const char *[]){"b.test", NULL});
	g_cert_rsa = make_pair("rsa", false, (const char *[]){"a.test", NULL});
	g_srv = server_new((const char *[]){"a", "b", "rsa"}, 3);
	rcu_register_thread();
	return 0;
}

static int group_teardown(void **state)
{
	DIR *d = opendir(g_dir);
	struct dirent *de;
	char path[CONFIG_PATH_MAX];

	(void)state;
	rcu_unregister_thread();
	tls_server_free(g_srv);
	X509_free(g_cert_a);
	X509_free(g_cert_b);
	X509_free(g_cert_rsa);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			unlink(tpath(path, de->d_name));
	closedir(d);
	return rmdir(g_dir);
}

/* ---- the rig: one client SSL and one server link ---- */

struct copts {
	const char *sni;          /* server_name; NULL = none */
	uint16_t max_version;     /* 0 = TLS 1.3 */
	const char *ciphers;      /* TLS 1.2 suites; NULL = BoringSSL's */
	bool rsa_only;            /* verify RSA-PSS signatures only */
	const char *alpn;         /* wire format; NULL = "\x08http/1.1" */
	SSL_SESSION *session;     /* to resume */
	uint32_t out_count;       /* 0 = 64 buffers */
	uint32_t out_size;        /* 0 = 16 KiB */
	uint32_t plain_count;     /* 0 = 64 buffers */
	uint32_t plain_size;      /* 0 = 16 KiB */
	SSL_SESSION **new_ticket; /* the first session ticket received goes here */
};

struct rig {
	struct tls_link l;
	struct mempool in_pool;    /* stands for the ring's buffers */
	struct mempool out_pool;   /* the shard's TLS buffers: ciphertext */
	struct mempool plain_pool; /* the shard's TLS buffers: plaintext */
	struct bufq plain;
	SSL_CTX *cctx;
	SSL *c;
	BIO *c_in;  /* ciphertext for the client to read */
	BIO *c_out; /* ciphertext the client wrote */
};

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	SSL_SESSION **slot = SSL_get_app_data(ssl);

	if (slot == NULL || *slot != NULL)
		return 0; /* not kept: BoringSSL frees it */
	*slot = sess;
	return 1;
}

static void client_new(struct rig *r, const struct copts *o)
{
	static const uint16_t rsa_pss[] = {SSL_SIGN_RSA_PSS_RSAE_SHA256};
	const char *alpn = o->alpn != NULL ? o->alpn : "\x08http/1.1";

	r->cctx = SSL_CTX_new(TLS_method());
	assert_non_null(r->cctx);
	SSL_CTX_set_verify(r->cctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(r->cctx, SSL_SESS_CACHE_CLIENT);
	SSL_CTX_sess_set_new_cb(r->cctx, on_new_session);
	r->c = SSL_new(r->cctx);
	assert_non_null(r->c);
	SSL_set_app_data(r->c, o->new_ticket);
	r->c_in = BIO_new(BIO_s_mem());
	r->c_out = BIO_new(BIO_s_mem());
	assert_non_null(r->c_in);
	assert_non_null(r->c_out);
	SSL_set_bio(r->c, r->c_in, r->c_out);
	SSL_set_connect_state(r->c);
	if (o->sni != NULL)
		assert_int_equal(SSL_set_tlsext_host_name(r->c, o->sni), 1);
	if (o->max_version != 0)
		assert_int_equal(SSL_set_max_proto_version(r->c, o->max_version), 1);
	if (o->ciphers != NULL)
		assert_int_equal(SSL_set_strict_cipher_list(r->c, o->ciphers), 1);
	if (o->rsa_only)
		assert_int_equal(SSL_set_verify_algorithm_prefs(r->c, rsa_pss, 1), 1);
	if (alpn[0] != '\0')
		assert_int_equal(SSL_set_alpn_protos(r->c, (const uint8_t *)alpn, strlen(alpn)), 0);
	if (o->session != NULL)
		assert_int_equal(SSL_set_session(r->c, o->session), 1);
}

static struct rig *rig_new(struct tls_server *srv, const struct copts *o)
{
	struct rig *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	assert_int_equal(mempool_init(&r->in_pool, 64, 4096), 1);
	assert_int_equal(mempool_init(&r->out_pool, o->out_count ? o->out_count : 64,
	                              o->out_size ? o->out_size : 16384),
	                 1);
	assert_int_equal(mempool_init(&r->plain_pool, o->plain_count ? o->plain_count : 64,
	                              o->plain_size ? o->plain_size : 16384),
	                 1);
	bufq_init(&r->plain);
	client_new(r, o);
	assert_int_equal(tls_accept(&r->l, srv, &r->in_pool.pool, &r->out_pool), 1);
	assert_non_null(r->l.ssl);
	assert_false(r->l.established);
	assert_string_equal(tls_version_name(&r->l), "-");
	return r;
}

/* pools_whole: every buffer of a pool is free or in its one queue. */
static void pools_whole(const struct rig *r)
{
	assert_int_equal(r->in_pool.nfree + r->l.in.nbufs, r->in_pool.pool.count);
	assert_int_equal(r->out_pool.nfree + r->l.out.nbufs, r->out_pool.pool.count);
	assert_int_equal(r->plain_pool.nfree + r->plain.nbufs, r->plain_pool.pool.count);
}

static void rig_free(struct rig *r)
{
	pools_whole(r);
	bufq_clear(&r->plain, &r->plain_pool.pool);
	tls_free(&r->l);
	assert_null(r->l.ssl);
	assert_int_equal(r->in_pool.nfree, r->in_pool.pool.count);
	assert_int_equal(r->out_pool.nfree, r->out_pool.pool.count);
	assert_int_equal(r->plain_pool.nfree, r->plain_pool.pool.count);
	tls_free(&r->l); /* twice is harmless */
	SSL_free(r->c);
	SSL_CTX_free(r->cctx);
	mempool_cleanup(&r->in_pool);
	mempool_cleanup(&r->out_pool);
	mempool_cleanup(&r->plain_pool);
	free(r);
}

/* push_in appends `len` bytes to the link's `in`, as received ciphertext. */
static void push_in(struct rig *r, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		uint16_t bid = mempool_get(&r->in_pool);
		size_t n = len < r->in_pool.pool.buf_size ? len : r->in_pool.pool.buf_size;

		assert_int_not_equal(bid, BUF_NONE);
		memcpy(bufpool_data(&r->in_pool.pool, bid), p, n);
		bufq_push(&r->l.in, &r->in_pool.pool, bid, (uint32_t)n);
		p += n;
		len -= n;
	}
}

/* to_server moves everything the client wrote into the link's `in`. */
static size_t to_server(struct rig *r)
{
	char buf[4096];
	size_t total = 0;
	int n;

	while ((n = BIO_read(r->c_out, buf, sizeof(buf))) > 0) {
		push_in(r, buf, (size_t)n);
		total += (size_t)n;
	}
	return total;
}

/* to_client hands the link's `out` to the client and consumes it, which
 * returns its buffers to out_pool. */
static size_t to_client(struct rig *r)
{
	size_t total = 0;

	while (r->l.out.bytes > 0) {
		size_t len;
		char *p = bufq_front(&r->l.out, &r->out_pool.pool, &len);

		assert_non_null(p);
		assert_int_equal(BIO_write(r->c_in, p, (int)len), (int)len);
		bufq_consume(&r->l.out, &r->out_pool.pool, len);
		total += len;
	}
	return total;
}

/* server_read runs tls_read for up to `max` plaintext bytes. */
static enum tls_result server_read(struct rig *r, uint64_t max)
{
	enum tls_result res = tls_read(&r->l, &r->plain, &r->plain_pool, max);

	pools_whole(r);
	return res;
}

/* handshake pumps until both sides are done; returns how many times the
 * server stopped for buffers. */
static int handshake(struct rig *r)
{
	int nobufs = 0;

	for (int i = 0; i < ROUNDS_MAX; i++) {
		int cr = SSL_do_handshake(r->c);
		enum tls_result res;

		if (cr != 1)
			assert_int_equal(SSL_get_error(r->c, cr), SSL_ERROR_WANT_READ);
		to_server(r);
		res = server_read(r, UINT64_MAX);
		if (res == TLS_NOBUF) {
			assert_true(r->l.want_buffers);
			nobufs++;
		} else {
			assert_int_equal(res, TLS_OK);
			assert_false(r->l.want_buffers);
		}
		to_client(r);
		if (cr == 1 && r->l.established)
			return nobufs;
	}
	fail_msg("no handshake after %d rounds", ROUNDS_MAX);
	return -1;
}

/* client_read drains `out` into the client and reads up to `cap` bytes;
 * *last gets the SSL error that stopped it. */
static size_t client_read(struct rig *r, void *buf, size_t cap, int *last)
{
	size_t got = 0;

	to_client(r);
	*last = SSL_ERROR_NONE;
	while (got < cap) {
		int n = SSL_read(r->c, (char *)buf + got, (int)(cap - got));
		if (n <= 0) {
			*last = SSL_get_error(r->c, n);
			break;
		}
		got += (size_t)n;
	}
	return got;
}

static void client_write(struct rig *r, const void *p, size_t len)
{
	assert_int_equal(SSL_write(r->c, p, (int)len), (int)len);
	to_server(r);
}

/* take_plain copies the first `len` bytes of plain out and consumes them. */
static void take_plain(struct rig *r, void *out, size_t len)
{
	struct iovec iov[64];
	uint64_t bytes = 0;
	int n = bufq_iov(&r->plain, &r->plain_pool.pool, 0, len, iov, 64, &bytes);
	size_t at = 0;

	assert_int_equal(bytes, len);
	for (int i = 0; i < n; i++) {
		memcpy((char *)out + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	bufq_consume(&r->plain, &r->plain_pool.pool, len);
}

static void fill_pattern(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* ---- the tests ---- */

static void test_handshake_and_request(void **state)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
	struct rig *r = rig_new(g_srv, &(struct copts){0});
	const uint8_t *alpn;
	unsigned alpn_len;
	char got[sizeof(req)];
	X509 *peer;

	(void)state;
	assert_int_equal(handshake(r), 0);
	assert_true(r->l.established);
	assert_false(r->l.closed);
	assert_string_equal(tls_version_name(&r->l), "TLSv1.3");
	assert_string_equal(SSL_get_version(r->c), "TLSv1.3");
	SSL_get0_alpn_selected(r->c, &alpn, &alpn_len);
	assert_int_equal(alpn_len, 8);
	assert_memory_equal(alpn, "http/1.1", 8);
	/* No SNI, an ECDSA-capable client: the default certificate. */
	peer = SSL_get_peer_certificate(r->c);
	assert_non_null(peer);
	assert_int_equal(X509_cmp(peer, g_cert_a), 0);
	X509_free(peer);
	/* Every byte the server received was read, and its buffers returned. */
	assert_int_equal(r->l.in.bytes, 0);
	assert_int_equal(r->in_pool.nfree, r->in_pool.pool.count);
	assert_int_equal(r->plain.bytes, 0);

	client_write(r, req, sizeof(req) - 1);
	assert_true(r->l.in.bytes > sizeof(req) - 1); /* ciphertext */
	assert_int_equal(server_read(r, UINT64_MAX), TLS_OK);
	assert_int_equal(r->plain.bytes, sizeof(req) - 1);
	take_plain(r, got, sizeof(req) - 1);
	assert_memory_equal(got, req, sizeof(req) - 1);
	assert_int_equal(r->l.in.bytes, 0);
	/* Nothing more: still OK, nothing added. */
	assert_int_equal(server_read(r, UINT64_MAX), TLS_OK);
	assert_int_equal(r->plain.bytes, 0);
	rig_free(r);
}

/* tls_read stops at `max` plaintext bytes and resumes where it stopped. */
static void test_read_up_to_max(void **state)
{
	struct rig *r = rig_new(g_srv, &(struct copts){.plain_size = 1024});
	uint8_t data[3000], got[3000];

	(void)state;
	handshake(r);
	fill_pattern(data, sizeof(data), 1);
	client_write(r, data, sizeof(data));
	assert_int_equal(server_read(r, 1000), TLS_OK);
	assert_int_equal(r->plain.bytes, 1000);
	assert_int_equal(server_read(r, 1000), TLS_OK); /* full: nothing taken */
	assert_int_equal(r->plain.bytes, 1000);
	assert_int_equal(server_read(r, 2500), TLS_OK);
	assert_int_equal(r->plain.bytes, 2500);
	assert_int_equal(server_read(r, UINT64_MAX), TLS_OK);
	assert_int_equal(r->plain.bytes, 3000);
	assert_int_equal(r->plain.nbufs, 3); /* 1024-byte buffers, filled in turn */
	take_plain(r, got, sizeof(got));
	assert_memory_equal(got, data, sizeof(data));
	rig_free(r);
}

static void test_write_100k(void **state)
{
	const size_t len = 100 * 1024;
	uint8_t *data = malloc(len), *got = malloc(len);
	struct rig *r = rig_new(g_srv, &(struct copts){0});
	size_t off = 0, rcvd = 0, calls = 0, short_writes = 0;
	int last;

	(void)state;
	assert_non_null(data);
	assert_non_null(got);
	fill_pattern(data, len, 2);
	handshake(r);
	while (off < len && calls++ < 100) {
		size_t w = 0;
		assert_int_equal(tls_write(&r->l, data + off, len - off, &w), TLS_OK);
		assert_true(w > 0 && w <= 16384); /* at most a record per call */
		short_writes += w < len - off;
		off += w;
		pools_whole(r);
		rcvd += client_read(r, got + rcvd, len - rcvd, &last);
		assert_true(last == SSL_ERROR_WANT_READ || last == SSL_ERROR_NONE);
	}
	assert_int_equal(off, len);
	assert_true(short_writes >= 6);
	assert_int_equal(rcvd, len);
	assert_memory_equal(got, data, len);
	/* Odd-sized pieces too. */
	off = rcvd = 0;
	while (off < len) {
		size_t w = 0, piece = len - off < 777 ? len - off : 777;
		assert_int_equal(tls_write(&r->l, data + off, piece, &w), TLS_OK);
		assert_int_equal(w, piece);
		off += w;
	}
	rcvd = client_read(r, got, len, &last);
	assert_int_equal(rcvd, len);
	assert_memory_equal(got, data, len);
	rig_free(r);
	free(data);
	free(got);
}

/* Two 256-byte ciphertext buffers: the handshake flight does not fit, a
 * write of 8 KiB needs many rounds; two 512-byte plaintext buffers: a read
 * of 3000 bytes needs three. Each stop is TLS_NOBUF with want_buffers set,
 * and returning buffers (consuming `out` or the plaintext) lets it go on. */
static void test_out_of_buffers(void **state)
{
	struct copts o = {.out_count = 2, .out_size = 256, .plain_count = 2, .plain_size = 512};
	struct rig *r = rig_new(g_srv, &o);
	uint8_t data[8192], got[8192];
	size_t w = 0, rcvd = 0, taken = 0;
	int rounds = 0, last;
	enum tls_result res;

	(void)state;
	fill_pattern(data, sizeof(data), 3);
	assert_true(handshake(r) > 0);
	/* A write: NOBUF until the record is all out, then the whole of it. */
	r->out_pool.freed = false;
	while ((res = tls_write(&r->l, data, sizeof(data), &w)) == TLS_NOBUF) {
		assert_int_equal(w, 0);
		assert_true(r->l.want_buffers);
		assert_int_equal(r->out_pool.nfree, 0);
		pools_whole(r);
		rcvd += client_read(r, got + rcvd, sizeof(got) - rcvd, &last); /* frees `out` */
		assert_true(r->out_pool.freed);
		r->out_pool.freed = false;
		assert_true(++rounds < 100);
	}
	assert_int_equal(res, TLS_OK);
	assert_int_equal(w, sizeof(data));
	assert_false(r->l.want_buffers);
	assert_true(rounds >= 15); /* 8 KiB through 512 bytes at a time */
	rcvd += client_read(r, got + rcvd, sizeof(got) - rcvd, &last);
	assert_int_equal(rcvd, sizeof(data));
	assert_memory_equal(got, data, sizeof(data));

	/* A read: NOBUF with both plaintext buffers full, then the rest. */
	client_write(r, data, 3000);
	rounds = 0;
	while ((res = server_read(r, UINT64_MAX)) == TLS_NOBUF) {
		assert_true(r->l.want_buffers);
		assert_int_equal(r->plain.bytes, 1024);
		assert_int_equal(r->plain_pool.nfree, 0);
		take_plain(r, got + taken, 1024);
		taken += 1024;
		assert_int_equal(r->plain_pool.nfree, 2);
		assert_true(++rounds < 10);
	}
	assert_int_equal(res, TLS_OK);
	assert_false(r->l.want_buffers);
	assert_int_equal(rounds, 2);
	assert_int_equal(taken + r->plain.bytes, 3000);
	take_plain(r, got + taken, (size_t)r->plain.bytes);
	assert_memory_equal(got, data, 3000);
	rig_free(r);
}

/* A client's close_notify ends the input, after the bytes before it; the
 * server can still answer, then send its own close_notify once. */
static void test_client_close_notify(void **state)
{
	struct rig *r = rig_new(g_srv, &(struct copts){0});
	char got[64];
	size_t w = 0, out_bytes;
	int last;

	(void)state;
	handshake(r);
	assert_int_equal(SSL_write(r->c, "last", 4), 4);
	assert_true(SSL_shutdown(r->c) >= 0);
	to_server(r);
	assert_int_equal(server_read(r, UINT64_MAX), TLS_CLOSED);
	assert_true(r->l.closed);
	assert_false(r->l.failed);
	assert_int_equal(r->plain.bytes, 4);
	take_plain(r, got, 4);
	assert_memory_equal(got, "last", 4);
	assert_int_equal(server_read(r, UINT64_MAX), TLS_CLOSED); /* and stays closed */

	assert_int_equal(tls_write(&r->l, "bye", 3, &w), TLS_OK);
	assert_int_equal(w, 3);
	assert_int_equal(client_read(r, got, sizeof(got), &last), 3);
	assert_memory_equal(got, "bye", 3);
	assert_int_equal(last, SSL_ERROR_WANT_READ);
	tls_close_notify(&r->l);
	assert_true(r->l.notified);
	out_bytes = (size_t)r->l.out.bytes;
	assert_true(out_bytes > 0);
	tls_close_notify(&r->l); /* once */
	assert_int_equal(r->l.out.bytes, out_bytes);
	assert_int_equal(client_read(r, got, sizeof(got), &last), 0);
	assert_int_equal(last, SSL_ERROR_ZERO_RETURN);
	rig_free(r);
}

/* TCP EOF (l.eof) with nothing left in `in` ends the input too. */
static void test_eof(void **state)
{
	struct rig *r = rig_new(g_srv, &(struct copts){0});
	size_t w = 0;

	(void)state;
	handshake(r);
	r->l.eof = true;
	assert_int_equal(server_read(r, UINT64_MAX), TLS_CLOSED);
	assert_true(r->l.closed);
	assert_false(r->l.failed);
	assert_int_equal(tls_write(&r->l, "x", 1, &w), TLS_OK);
	assert_int_equal(w, 1);
	rig_free(r);

	/* Bytes that arrived before the EOF are still read. */
	r = rig_new(g_srv, &(struct copts){0});
	handshake(r);
	client_write(r, "tail", 4);
	r->l.eof = true;
	assert_int_equal(server_read(r, UINT64_MAX), TLS_CLOSED);
	assert_int_equal(r->plain.bytes, 4);
	rig_free(r);

	/* EOF before any ClientHello: closed, not established. */
	r = rig_new(g_srv, &(struct copts){0});
	r->l.eof = true;
	assert_int_equal(server_read(r, UINT64_MAX), TLS_CLOSED);
	assert_true(r->l.closed);
	assert_false(r->l.established);
	rig_free(r);
}

/* Bytes that are not TLS fail the session for good. */
static void test_garbage(void **state)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
	uint8_t junk[5 + 64];
	struct rig *r = rig_new(g_srv, &(struct copts){0});
	size_t w = 1;

	(void)state;
	handshake(r);
	/* An application data record whose content does not decrypt. */
	fill_pattern(junk, sizeof(junk), 4);
	memcpy(junk, "\x17\x03\x03\x00\x40", 5);
	push_in(r, junk, sizeof(junk));
	assert_int_equal(server_read(r, UINT64_MAX), TLS_FAILED);
	assert_true(r->l.failed);
	assert_true(r->l.closed);
	assert_int_equal(ERR_peek_error(), 0); /* the error queue is left empty */
	assert_int_equal(tls_write(&r->l, "x", 1, &w), TLS_FAILED);
	assert_int_equal(w, 0);
	bufq_clear(&r->l.out, &r->out_pool.pool); /* the alert, if any */
	tls_close_notify(&r->l);
	assert_false(r->l.notified);
	assert_int_equal(r->l.out.bytes, 0);
	assert_int_equal(server_read(r, UINT64_MAX), TLS_CLOSED);
	rig_free(r);

	/* Plain HTTP to a TLS listener fails the handshake. */
	r = rig_new(g_srv, &(struct copts){0});
	push_in(r, http, sizeof(http) - 1);
	assert_int_equal(server_read(r, UINT64_MAX), TLS_FAILED);
	assert_true(r->l.failed);
	assert_false(r->l.established);
	assert_string_equal(tls_version_name(&r->l), "-");
	rig_free(r);
}

/* served runs a handshake with `o` and returns the certificate shown. */
static X509 *served(const struct copts *o)
{
	struct rig *r = rig_new(g_srv, o);
	X509 *peer, *which = NULL;

	handshake(r);
	peer = SSL_get_peer_certificate(r->c);
	assert_non_null(peer);
	if (X509_cmp(peer, g_cert_a) == 0)
		which = g_cert_a;
	else if (X509_cmp(peer, g_cert_b) == 0)
		which = g_cert_b;
	else if (X509_cmp(peer, g_cert_rsa) == 0)
		which = g_cert_rsa;
	X509_free(peer);
	rig_free(r);
	return which;
}

static void test_certificate_choice(void **state)
{
	const char *rsa12 = "ECDHE-RSA-AES128-GCM-SHA256";
	const char *ecdsa12 = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";

	(void)state;
	assert_ptr_equal(served(&(struct copts){.sni = "b.test"}), g_cert_b);
	assert_ptr_equal(served(&(struct copts){.sni = "B.Test"}), g_cert_b);
	assert_ptr_equal(served(&(struct copts){.sni = "x.a.test"}), g_cert_a);
	assert_ptr_equal(served(&(struct copts){.sni = "a.test"}), g_cert_a);
	assert_ptr_equal(served(&(struct copts){.sni = "unknown.test"}), g_cert_a);
	/* A TLS 1.2 client without ECDHE-ECDSA suites gets the RSA sibling. */
	assert_ptr_equal(served(&(struct copts){.max_version = TLS1_2_VERSION, .ciphers = rsa12}),
	                 g_cert_rsa);
	assert_ptr_equal(served(&(struct copts){
	                         .sni = "a.test", .max_version = TLS1_2_VERSION, .ciphers = rsa12}),
	                 g_cert_rsa);
	assert_ptr_equal(served(&(struct copts){.max_version = TLS1_2_VERSION, .ciphers = ecdsa12}),
	                 g_cert_a);
	/* TLS 1.3 client verifying RSA signatures only. */
	assert_ptr_equal(served(&(struct copts){.rsa_only = true}), g_cert_rsa);
	assert_ptr_equal(served(&(struct copts){.sni = "a.test", .rsa_only = true}), g_cert_rsa);
}

static void test_alpn_and_tls12(void **state)
{
	struct rig *r;
	const uint8_t *alpn;
	unsigned alpn_len;

	(void)state;
	r = rig_new(g_srv, &(struct copts){.alpn = "\x02h2\x08http/1.1"});
	handshake(r);
	SSL_get0_alpn_selected(r->c, &alpn, &alpn_len);
	assert_int_equal(alpn_len, 8);
	assert_memory_equal(alpn, "http/1.1", 8);
	rig_free(r);
	/* Nothing we speak, or no ALPN at all: the handshake goes on without. */
	r = rig_new(g_srv, &(struct copts){.alpn = "\x02h2"});
	handshake(r);
	SSL_get0_alpn_selected(r->c, &alpn, &alpn_len);
	assert_int_equal(alpn_len, 0);
	rig_free(r);
	r = rig_new(g_srv, &(struct copts){.alpn = "", .max_version = TLS1_2_VERSION});
	handshake(r);
	assert_string_equal(tls_version_name(&r->l), "TLSv1.2");
	SSL_get0_alpn_selected(r->c, &alpn, &alpn_len);
	assert_int_equal(alpn_len, 0);
	rig_free(r);
}

/* connect_once runs a handshake (resuming `session` if not NULL) and a
 * response (BoringSSL sends TLS 1.3 tickets with the server's first write)
 * and returns whether the session was resumed; *ticket gets the first new
 * ticket (or NULL). */
static bool connect_once(struct tls_server *srv, uint16_t max_version, SSL_SESSION *session,
                         SSL_SESSION **ticket)
{
	struct copts o = {.max_version = max_version, .session = session, .new_ticket = ticket};
	struct rig *r;
	char buf[16];
	size_t w = 0;
	bool reused;
	int last;

	*ticket = NULL;
	r = rig_new(srv, &o);
	handshake(r);
	assert_int_equal(tls_write(&r->l, "hi", 2, &w), TLS_OK);
	assert_int_equal(client_read(r, buf, sizeof(buf), &last), 2);
	assert_int_equal(last, SSL_ERROR_WANT_READ);
	reused = SSL_session_reused(r->c);
	rig_free(r);
	return reused;
}

/* Tickets resume a session after one key rotation (the previous key still
 * decrypts) but not after two; the same for TLS 1.2 and 1.3. */
static void test_session_tickets(void **state)
{
	static const uint16_t versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};

	(void)state;
	for (size_t v = 0; v < RLB_ARRAY_LEN(versions); v++) {
		struct tls_server *srv = server_new((const char *[]){"a"}, 1);
		SSL_SESSION *first, *again;

		assert_false(connect_once(srv, versions[v], NULL, &first));
		assert_non_null(first);
		assert_true(connect_once(srv, versions[v], first, &again));
		SSL_SESSION_free(again);
		tls_server_tick(srv, srv->rotated_ms + srv->rotate_ms);
		assert_true(connect_once(srv, versions[v], first, &again));
		SSL_SESSION_free(again);
		tls_server_tick(srv, srv->rotated_ms + srv->rotate_ms);
		assert_false(connect_once(srv, versions[v], first, &again));
		SSL_SESSION_free(again);
		SSL_SESSION_free(first);
		tls_server_free(srv);
	}
}

/* A reload changes what new connections get; a session that started
 * before it carries on with its old context. */
static void test_reload_keeps_sessions(void **state)
{
	struct tls_server *srv = server_new((const char *[]){"a"}, 1);
	struct rig *old, *fresh;
	char got[16];
	size_t w = 0;
	int last;
	X509 *peer;

	(void)state;
	old = rig_new(srv, &(struct copts){0});
	handshake(old);
	tls_server_adopt(srv, server_new((const char *[]){"b"}, 1));
	fresh = rig_new(srv, &(struct copts){0});
	handshake(fresh);
	peer = SSL_get_peer_certificate(fresh->c);
	assert_int_equal(X509_cmp(peer, g_cert_b), 0);
	X509_free(peer);
	client_write(old, "ping", 4);
	assert_int_equal(server_read(old, UINT64_MAX), TLS_OK);
	assert_int_equal(old->plain.bytes, 4);
	assert_int_equal(tls_write(&old->l, "pong", 4, &w), TLS_OK);
	assert_int_equal(client_read(old, got, sizeof(got), &last), 4);
	assert_memory_equal(got, "pong", 4);
	rig_free(old);
	rig_free(fresh);
	tls_server_free(srv);
}

/* A zeroed link is plain: nothing to free, no version. */
static void test_plain_link(void **state)
{
	struct tls_link l;

	(void)state;
	memset(&l, 0xff, sizeof(l));
	tls_link_init(&l);
	assert_null(l.ssl);
	assert_int_equal(l.in.head, BUF_NONE);
	assert_int_equal(l.out.head, BUF_NONE);
	assert_false(l.established);
	assert_string_equal(tls_version_name(&l), "-");
	tls_close_notify(&l);
	assert_false(l.notified);
	tls_free(&l);
	assert_ptr_equal(tls_bio_method(), tls_bio_method());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_handshake_and_request),
	        cmocka_unit_test(test_read_up_to_max),
	        cmocka_unit_test(test_write_100k),
	        cmocka_unit_test(test_out_of_buffers),
	        cmocka_unit_test(test_client_close_notify),
	        cmocka_unit_test(test_eof),
	        cmocka_unit_test(test_garbage),
	        cmocka_unit_test(test_certificate_choice),
	        cmocka_unit_test(test_alpn_and_tls12),
	        cmocka_unit_test(test_session_tickets),
	        cmocka_unit_test(test_reload_keeps_sessions),
	        cmocka_unit_test(test_plain_link),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
