/* tls/server.c — TLS listener contexts: certificates, SNI, ALPN, session
 * tickets, OCSP, client verification, reload (see tls.h). */
#include "tls/internal.h"
#include "tls/tls.h"

#include "core/common.h"

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/pool.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#define NAMES_MAX      64 /* DNS names taken from one certificate */
#define CHAIN_MAX      8  /* certificates in one chain */
#define OCSP_BYTES_MAX (64 * 1024)
#define TICKET_KEYS    3 /* keys a server decrypts with; the first encrypts */
#define RECORD_MAX     16384

static int g_ctx_index = -1; /* SSL_CTX ex_data: its struct certset */

/* ---- certificates ---- */

struct cert_entry {
	char names[NAMES_MAX][256]; /* lower-case; "*.example.com" for wildcards */
	uint32_t num_names;
	CRYPTO_BUFFER *chain[CHAIN_MAX];
	size_t chain_len;
	EVP_PKEY *key;
	bool ecdsa;
	uint8_t *ocsp;
	size_t ocsp_len;
};

/* What one SSL_CTX serves; freed with the SSL_CTX (ex_data free callback),
 * so a connection that started on it can still select from it. */
struct certset {
	struct cert_entry *entries;
	size_t num;
};

struct ticket_key {
	uint8_t name[16];
	uint8_t hmac[32];
	uint8_t aes[32];
};

struct ticket_keys {
	struct ticket_key k[TICKET_KEYS];
	uint32_t num;
};

static void certset_free(struct certset *cs)
{
	if (cs == NULL)
		return;
	for (size_t i = 0; i < cs->num; i++) {
		struct cert_entry *e = &cs->entries[i];
		for (size_t j = 0; j < e->chain_len; j++)
			CRYPTO_BUFFER_free(e->chain[j]);
		EVP_PKEY_free(e->key);
		free(e->ocsp);
	}
	free(cs->entries);
	free(cs);
}

static void ctx_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int index, long argl,
                        void *argp)
{
	(void)parent, (void)ad, (void)index, (void)argl, (void)argp;
	certset_free(ptr);
}

/* errf writes "SOURCE:LINE: KEY: " then the message; returns 0. */
static int errf(char *err, size_t err_len, const char *src, uint32_t line, const char *key,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int errf(char *err, size_t err_len, const char *src, uint32_t line, const char *key,
                const char *fmt, ...)
{
	va_list ap;
	int n;

	if (line > 0)
		n = snprintf(err, err_len, "%s:%u: %s: ", src, line, key);
	else
		n = snprintf(err, err_len, "%s: %s: ", src, key);
	if (n < 0 || (size_t)n >= err_len)
		return 0;
	va_start(ap, fmt);
	vsnprintf(err + n, err_len - (size_t)n, fmt, ap);
	va_end(ap);
	return 0;
}

/* ssl_reason returns BoringSSL's last error as text and clears the queue. */
static const char *ssl_reason(char *buf, size_t len)
{
	uint32_t e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

int tls_check_private_file(const char *path, char *err, size_t err_len)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return 0;
	}
	if (st.st_mode & S_IROTH) {
		snprintf(err, err_len,
		         "%s: private key is readable by other users (mode %04o); "
		         "run chmod o-rwx on it (600 or 640)",
		         path, (unsigned)(st.st_mode & 07777));
		return 0;
	}
	return 1;
}

/* read_file reads a whole (small) file. Returns a malloc'ed buffer or NULL
 * with errno set; *out_len gets its length. */
static uint8_t *read_file(const char *path, size_t max, size_t *out_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf;
	size_t len = 0;

	if (fd < 0)
		return NULL;
	buf = malloc(max + 1); /* boot-time */
	if (buf == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, max + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			free(buf);
			close(fd);
			errno = EFBIG;
			return NULL;
		}
	}
	close(fd);
	*out_len = len;
	return buf;
}

static void lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static void add_name(struct cert_entry *e, const unsigned char *p, size_t len)
{
	if (e->num_names == NAMES_MAX || len == 0 || len > 255)
		return;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x21 || p[i] > 0x7e)
			return;
	memcpy(e->names[e->num_names], p, len);
	e->names[e->num_names][len] = '\0';
	lower(e->names[e->num_names]);
	e->num_names++;
}

/* cert_names takes the DNS subjectAltNames, else the subject CN. */
static void cert_names(struct cert_entry *e, X509 *x)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	if (sans != NULL) {
		for (size_t i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
			if (g->type == GEN_DNS)
				add_name(e, ASN1_STRING_get0_data(g->d.dNSName),
				         (size_t)ASN1_STRING_length(g->d.dNSName));
		}
		GENERAL_NAMES_free(sans);
	}
	if (e->num_names == 0) {
		X509_NAME *subj = X509_get_subject_name(x);
		int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
		if (i >= 0) {
			ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
			add_name(e, ASN1_STRING_get0_data(cn), (size_t)ASN1_STRING_length(cn));
		}
	}
}

/* load_chain reads every certificate of a PEM file into e->chain (DER),
 * the leaf first, and takes names from the leaf. Returns the leaf (to be
 * freed by the caller) or NULL with a message. */
static X509 *load_chain(struct cert_entry *e, const char *path, char *msg, size_t msg_len)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *leaf = NULL, *x;

	if (b == NULL) {
		snprintf(msg, msg_len, "%s: %s", path, strerror(errno));
		ERR_clear_error();
		return NULL;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		uint8_t *der = NULL;
		int len = i2d_X509(x, &der);
		if (len <= 0 || e->chain_len == CHAIN_MAX) {
			snprintf(msg, msg_len, "%s: %s", path,
			         len <= 0 ? "cannot encode a certificate"
			                  : "chain too long (max 8)");
			OPENSSL_free(der);
			X509_free(x);
			X509_free(leaf);
			BIO_free(b);
			return NULL;
		}
		e->chain[e->chain_len++] = CRYPTO_BUFFER_new(der, (size_t)len, NULL);
		OPENSSL_free(der);
		if (leaf == NULL)
			leaf = x;
		else
			X509_free(x);
	}
	ERR_clear_error(); /* the end of the file reads as an error */
	BIO_free(b);
	if (leaf == NULL) {
		snprintf(msg, msg_len, "%s: no PEM certificate in the file", path);
		return NULL;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0)
		fprintf(stderr, "ringlb: warning: %s: certificate has expired\n", path);
	cert_names(e, leaf);
	return leaf;
}

/* load_entry loads one configured certificate, its key and OCSP staple. */
static int load_entry(struct cert_entry *e, const struct config_cert *c, char *msg, size_t msg_len)
{
	X509 *leaf;
	BIO *b;
	char r[160];

	if (!tls_check_private_file(c->key, msg, msg_len))
		return 0;
	leaf = load_chain(e, c->cert, msg, msg_len);
	if (leaf == NULL)
		return 0;
	b = BIO_new_file(c->key, "r");
	if (b == NULL) {
		snprintf(msg, msg_len, "%s: %s", c->key, strerror(errno));
		X509_free(leaf);
		return 0;
	}
	e->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (e->key == NULL) {
		snprintf(msg, msg_len, "%s: not a PEM private key (%s)", c->key,
		         ssl_reason(r, sizeof(r)));
		X509_free(leaf);
		return 0;
	}
	if (!X509_check_private_key(leaf, e->key)) {
		snprintf(msg, msg_len, "%s: private key does not match certificate %s", c->key,
		         c->cert);
		ERR_clear_error();
		X509_free(leaf);
		return 0;
	}
	X509_free(leaf);
	if (EVP_PKEY_id(e->key) != EVP_PKEY_EC && EVP_PKEY_id(e->key) != EVP_PKEY_RSA) {
		snprintf(msg, msg_len, "%s: only ECDSA and RSA keys are supported", c->key);
		return 0;
	}
	e->ecdsa = EVP_PKEY_id(e->key) == EVP_PKEY_EC;
	if (c->ocsp[0] != '\0') {
		e->ocsp = read_file(c->ocsp, OCSP_BYTES_MAX, &e->ocsp_len);
		if (e->ocsp == NULL) {
			snprintf(msg, msg_len, "%s: %s", c->ocsp, strerror(errno));
			return 0;
		}
		if (e->ocsp_len == 0) {
			snprintf(msg, msg_len, "%s: empty OCSP response", c->ocsp);
			return 0;
		}
	}
	return 1;
}

/* ---- choosing a certificate for a ClientHello ---- */

/* name_score: 2 for an exact match, 1 for a wildcard "*.suffix" matching
 * exactly one more label, else 0. */
static int name_score(const struct cert_entry *e, const char *host, size_t host_len)
{
	int best = 0;

	for (uint32_t i = 0; i < e->num_names && best < 2; i++) {
		const char *n = e->names[i];
		size_t nl = strlen(n);
		if (nl == host_len && memcmp(n, host, nl) == 0)
			best = 2;
		else if (nl > 2 && n[0] == '*' && n[1] == '.' && host_len > nl - 1) {
			const char *dot = memchr(host, '.', host_len);
			if (dot != NULL && (size_t)(host + host_len - dot) == nl - 1 &&
			    memcmp(dot, n + 1, nl - 1) == 0 && dot > host)
				best = 1;
		}
	}
	return best;
}

/* hello_sni copies the server_name from a ClientHello, lower-cased.
 * Returns its length, 0 if none. */
static size_t hello_sni(const SSL_CLIENT_HELLO *ch, char *out, size_t cap)
{
	const uint8_t *data;
	size_t len;
	CBS ext, list, name;
	uint8_t type;

	if (!SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_server_name, &data, &len))
		return 0;
	CBS_init(&ext, data, len);
	if (!CBS_get_u16_length_prefixed(&ext, &list))
		return 0;
	while (CBS_len(&list) > 0) {
		if (!CBS_get_u8(&list, &type) || !CBS_get_u16_length_prefixed(&list, &name))
			return 0;
		if (type != TLSEXT_NAMETYPE_host_name || CBS_len(&name) == 0 ||
		    CBS_len(&name) >= cap)
			continue;
		memcpy(out, CBS_data(&name), CBS_len(&name));
		out[CBS_len(&name)] = '\0';
		lower(out);
		return CBS_len(&name);
	}
	return 0;
}

/* hello_ecdsa tells whether the client can take an ECDSA certificate: it
 * offers an ECDSA signature algorithm, and either TLS 1.3 or an ECDHE-ECDSA
 * cipher suite for TLS 1.2. */
static bool hello_ecdsa(const SSL_CLIENT_HELLO *ch)
{
	const uint8_t *data;
	size_t len;
	bool sig = false, tls13 = false, suite = false;

	if (SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_signature_algorithms, &data,
	                                         &len)) {
		for (size_t i = 2; i + 1 < len; i += 2)
			sig |= data[i + 1] == 0x03 && data[i] >= 0x04 && data[i] <= 0x06;
	}
	if (SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_supported_versions, &data, &len)) {
		for (size_t i = 1; i + 1 < len; i += 2)
			tls13 |= data[i] == 0x03 && data[i + 1] == 0x04;
	}
	for (size_t i = 0; i + 1 < ch->cipher_suites_len; i += 2) {
		uint16_t cs = (uint16_t)(ch->cipher_suites[i] << 8 | ch->cipher_suites[i + 1]);
		suite |= cs == 0xc02b || cs == 0xc02c || cs == 0xcca9 || cs == 0xc009 ||
		         cs == 0xc00a;
	}
	return sig && (tls13 || suite);
}

/* pick_entry: the best name match, then the key type the client prefers;
 * with no match, the default certificate's names decide. */
static const struct cert_entry *pick_entry(const struct certset *cs, const char *host,
                                           size_t host_len, bool ecdsa)
{
	const struct cert_entry *best = NULL;
	int best_score = 0;

	for (size_t i = 0; i < cs->num; i++) {
		const struct cert_entry *e = &cs->entries[i];
		int sc = host_len > 0 ? name_score(e, host, host_len) * 2 : 0;
		if (sc > 0 && e->ecdsa == ecdsa)
			sc++;
		if (sc > best_score) {
			best = e;
			best_score = sc;
		}
	}
	if (best != NULL)
		return best;
	best = &cs->entries[0];
	if (best->ecdsa != ecdsa && best->num_names > 0) {
		/* the default's sibling of the other key type, if there is one */
		for (size_t i = 1; i < cs->num; i++)
			if (cs->entries[i].ecdsa == ecdsa &&
			    name_score(&cs->entries[i], best->names[0], strlen(best->names[0])) ==
			            2)
				return &cs->entries[i];
	}
	return best;
}

static enum ssl_select_cert_result_t select_cert(const SSL_CLIENT_HELLO *ch)
{
	SSL *ssl = ch->ssl;
	const struct certset *cs = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), g_ctx_index);
	char host[256];
	size_t host_len = hello_sni(ch, host, sizeof(host));
	const struct cert_entry *e = pick_entry(cs, host, host_len, hello_ecdsa(ch));

	if (!SSL_set_chain_and_key(ssl, e->chain, e->chain_len, e->key, NULL))
		return ssl_select_cert_error;
	if (e->ocsp != NULL && !SSL_set_ocsp_response(ssl, e->ocsp, e->ocsp_len))
		return ssl_select_cert_error;
	return ssl_select_cert_success;
}

/* alpn_find looks for protocol `proto` in a client's ALPN list. */
static const uint8_t *alpn_find(const uint8_t *in, unsigned in_len, const char *proto)
{
	size_t pl = strlen(proto);

	for (unsigned i = 0; i < in_len;) {
		uint8_t l = in[i];
		if (i + 1 + l > in_len)
			break;
		if (l == pl && memcmp(in + i + 1, proto, pl) == 0)
			return in + i + 1;
		i += 1u + l;
	}
	return NULL;
}

static int select_alpn(SSL *ssl, const uint8_t **out, uint8_t *out_len, const uint8_t *in,
                       unsigned in_len, void *arg)
{
	const uint8_t *p = arg != NULL ? alpn_find(in, in_len, "h2") : NULL;

	(void)ssl;
	if (p != NULL) {
		*out = p;
		*out_len = 2;
		return SSL_TLSEXT_ERR_OK;
	}
	p = alpn_find(in, in_len, "http/1.1");
	if (p != NULL) {
		*out = p;
		*out_len = 8;
		return SSL_TLSEXT_ERR_OK;
	}
	/* No protocol we speak: carry on without ALPN (RFC 7301 allows it;
	 * the client then sends HTTP/1.1 or gives up). */
	return SSL_TLSEXT_ERR_NOACK;
}

/* ---- session tickets ---- */

static struct tls_server *ctx_server(SSL *ssl)
{
	return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

static int ticket_cb(SSL *ssl, uint8_t *name, uint8_t *iv, EVP_CIPHER_CTX *cctx, HMAC_CTX *hctx,
                     int enc)
{
	struct tls_server *srv = ctx_server(ssl);
	const struct ticket_keys *keys = rcu_dereference(srv->keys);
	const struct ticket_key *k = NULL;
	uint32_t i = 0;

	if (keys == NULL || keys->num == 0)
		return enc ? -1 : 0;
	if (enc) {
		k = &keys->k[0];
		memcpy(name, k->name, sizeof(k->name));
		RAND_bytes(iv, 16);
		if (!EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) ||
		    !HMAC_Init_ex(hctx, k->hmac, sizeof(k->hmac), EVP_sha256(), NULL))
			return -1;
		return 1;
	}
	for (i = 0; i < keys->num && k == NULL; i++)
		if (memcmp(name, keys->k[i].name, sizeof(keys->k[i].name)) == 0)
			k = &keys->k[i];
	if (k == NULL)
		return 0; /* unknown (expired) key: a full handshake */
	if (!HMAC_Init_ex(hctx, k->hmac, sizeof(k->hmac), EVP_sha256(), NULL) ||
	    !EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv))
		return -1;
	return i > 1 ? 2 : 1; /* decrypted with an old key: issue a fresh ticket */
}

/* load_ticket_keys reads 80-byte keys (name 16, HMAC 32, AES 32), one to
 * three of them; the first encrypts. */
static struct ticket_keys *load_ticket_keys(const char *path, char *msg, size_t msg_len)
{
	struct ticket_keys *keys;
	uint8_t *buf;
	size_t len = 0;

	if (!tls_check_private_file(path, msg, msg_len))
		return NULL;
	buf = read_file(path, 80 * TICKET_KEYS, &len);
	if (buf == NULL) {
		snprintf(msg, msg_len, "%s: %s", path,
		         errno == EFBIG ? "more than 3 keys (240 bytes)" : strerror(errno));
		return NULL;
	}
	if (len == 0 || len % 80 != 0) {
		snprintf(msg, msg_len, "%s: expected 80 bytes per key (1 to 3 keys), got %zu bytes",
		         path, len);
		free(buf);
		return NULL;
	}
	keys = rlb_xcalloc(1, sizeof(*keys));
	keys->num = (uint32_t)(len / 80);
	for (uint32_t i = 0; i < keys->num; i++) {
		memcpy(keys->k[i].name, buf + 80 * i, 16);
		memcpy(keys->k[i].hmac, buf + 80 * i + 16, 32);
		memcpy(keys->k[i].aes, buf + 80 * i + 48, 32);
	}
	OPENSSL_cleanse(buf, len);
	free(buf);
	return keys;
}

/* new_keys: a fresh random key first, then the newest older ones. */
static struct ticket_keys *new_keys(const struct ticket_keys *old)
{
	struct ticket_keys *k = rlb_xcalloc(1, sizeof(*k));

	RAND_bytes((uint8_t *)&k->k[0], sizeof(k->k[0]));
	k->num = 1;
	/* Keep one previous key: tickets live at most two rotation periods. */
	if (old != NULL && old->num > 0)
		k->k[k->num++] = old->k[0];
	return k;
}

static void keys_free(struct ticket_keys *k)
{
	if (k != NULL)
		OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

/* ---- contexts ---- */

/* build_ctx makes an SSL_CTX for `t`; NULL with a message. */
static SSL_CTX *build_ctx(struct tls_server *srv, const struct config_tls *t, const char *src,
                          size_t index, char *err, size_t err_len)
{
	struct certset *cs = rlb_xcalloc(1, sizeof(*cs));
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	char key[96], msg[2048], r[160];

	cs->entries = rlb_xcalloc(t->num_certs, sizeof(*cs->entries));
	if (ctx == NULL || !SSL_CTX_set_ex_data(ctx, g_ctx_index, cs)) {
		certset_free(cs);
		SSL_CTX_free(ctx);
		errf(err, err_len, src, t->_line, "tls", "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < t->num_certs; i++) {
		cs->num++;
		if (!load_entry(&cs->entries[i], &t->certs[i], msg, sizeof(msg))) {
			snprintf(key, sizeof(key), "listeners[%zu].tls.certificates[%zu]", index,
			         i);
			errf(err, err_len, src, t->certs[i]._line, key, "%s", msg);
			goto fail;
		}
	}
	snprintf(key, sizeof(key), "listeners[%zu].tls", index);
	SSL_CTX_set_app_data(ctx, srv);
	if (!SSL_CTX_set_min_proto_version(ctx, (uint16_t)t->min_version) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		errf(err, err_len, src, t->_line, key, "cannot set the protocol versions");
		goto fail;
	}
	if (!SSL_CTX_set_strict_cipher_list(ctx, t->ciphers)) {
		errf(err, err_len, src, t->_line, key, "ciphers: \"%s\": %s", t->ciphers,
		     ssl_reason(r, sizeof(r)));
		goto fail;
	}
	if (!SSL_CTX_set1_curves_list(ctx, t->groups)) {
		errf(err, err_len, src, t->_line, key, "groups: \"%s\": %s", t->groups,
		     ssl_reason(r, sizeof(r)));
		goto fail;
	}
	if (t->client_ca[0] != '\0') {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->client_ca);
		if (names == NULL || !SSL_CTX_load_verify_locations(ctx, t->client_ca, NULL)) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			errf(err, err_len, src, t->_line, key, "client_ca: %s: no usable CA (%s)",
			     t->client_ca, ssl_reason(r, sizeof(r)));
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx,
		                   SSL_VERIFY_PEER | (t->verify_client == CONFIG_VERIFY_REQUIRED
		                                              ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
		                                              : 0),
		                   NULL);
	}
	SSL_CTX_set_select_certificate_cb(ctx, select_cert);
	/* h2 first when the listener speaks it (a non-NULL arg says so) */
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, t->_h2 ? (void *)ctx : NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Resumption is by tickets only: a session cache would be per
	 * context and miss whenever a client lands on another shard's view. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_id_context(ctx, (const uint8_t *)"ringlb", 6);
	if (t->session_tickets) {
		SSL_CTX_set_tlsext_ticket_key_cb(ctx, ticket_cb);
		SSL_CTX_set_timeout(ctx, (uint32_t)(t->ticket_rotate_ms / 1000));
		SSL_CTX_set_session_psk_dhe_timeout(ctx, (uint32_t)(t->ticket_rotate_ms / 1000));
	} else {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	return ctx;
fail:
	SSL_CTX_free(ctx); /* frees cs through ex_data */
	return NULL;
}

static void describe(struct tls_server *srv, const struct config_tls *t, SSL_CTX *ctx)
{
	const struct certset *cs = SSL_CTX_get_ex_data(ctx, g_ctx_index);
	size_t n = 0;

	srv->summary[0] = '\0';
	for (size_t i = 0; i < cs->num && n < sizeof(srv->summary); i++) {
		int w = snprintf(srv->summary + n, sizeof(srv->summary) - n, "%s%s (%s)",
		                 i > 0 ? ", " : "",
		                 cs->entries[i].num_names > 0 ? cs->entries[i].names[0] : "?",
		                 cs->entries[i].ecdsa ? "ECDSA" : "RSA");
		if (w < 0)
			break;
		n += (size_t)w;
	}
	(void)t;
}

int tls_init(char *err, size_t err_len)
{
	if (g_ctx_index >= 0)
		return 1;
	g_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_ex_free);
	if (g_ctx_index < 0 || tls_bio_method() == NULL) {
		snprintf(err, err_len, "TLS: out of memory at start-up");
		return 0;
	}
	return 1;
}

struct tls_server *tls_server_new(const struct config_tls *t, const char *cfg_source, size_t index,
                                  char *err, size_t err_len)
{
	struct tls_server *srv = rlb_xcalloc(1, sizeof(*srv));
	char key[96], msg[2048];

	if (!tls_init(err, err_len)) {
		free(srv);
		return NULL;
	}
	srv->ctx = build_ctx(srv, t, cfg_source, index, err, err_len);
	if (srv->ctx == NULL) {
		free(srv);
		return NULL;
	}
	srv->rotate_ms = t->ticket_rotate_ms;
	srv->rotated_ms = rlb_now_ms();
	if (t->session_tickets && t->ticket_key_file[0] != '\0') {
		srv->keys = load_ticket_keys(t->ticket_key_file, msg, sizeof(msg));
		if (srv->keys == NULL) {
			snprintf(key, sizeof(key), "listeners[%zu].tls.ticket_key_file", index);
			errf(err, err_len, cfg_source, t->_line, key, "%s", msg);
			SSL_CTX_free(srv->ctx);
			free(srv);
			return NULL;
		}
	} else if (t->session_tickets) {
		srv->own_keys = true;
		srv->keys = new_keys(NULL);
	}
	describe(srv, t, srv->ctx);
	return srv;
}

void tls_server_adopt(struct tls_server *srv, struct tls_server *fresh)
{
	struct ticket_keys *old_keys = NULL;
	SSL_CTX *old;

	/* The ticket callback finds its keys through the context's server. */
	SSL_CTX_set_app_data(fresh->ctx, srv);
	memcpy(srv->summary, fresh->summary, sizeof(srv->summary));
	old = rcu_xchg_pointer(&srv->ctx, fresh->ctx);
	fresh->ctx = NULL;
	if (!fresh->own_keys || !srv->own_keys) {
		/* a key file now or before: take the fresh keys (or none) */
		old_keys = rcu_xchg_pointer(&srv->keys, fresh->keys);
		fresh->keys = NULL;
		srv->own_keys = fresh->own_keys;
		srv->rotated_ms = fresh->rotated_ms;
	}
	/* own keys before and after: keep them, so tickets stay valid */
	srv->rotate_ms = fresh->rotate_ms;
	synchronize_rcu();
	SSL_CTX_free(old); /* connections still on it hold their own reference */
	keys_free(old_keys);
	tls_server_free(fresh);
}

void tls_server_tick(struct tls_server *srv, uint64_t now_ms)
{
	struct ticket_keys *old;

	if (!srv->own_keys || now_ms - srv->rotated_ms < srv->rotate_ms)
		return;
	old = rcu_xchg_pointer(&srv->keys, new_keys(srv->keys));
	srv->rotated_ms = now_ms;
	synchronize_rcu();
	keys_free(old);
}

void tls_server_free(struct tls_server *srv)
{
	if (srv == NULL)
		return;
	SSL_CTX_free(srv->ctx);
	keys_free(srv->keys);
	free(srv);
}

void tls_server_describe(const struct tls_server *srv, char *out, size_t out_len)
{
	snprintf(out, out_len, "%s", srv->summary);
}
