/* tests/unit/tls/server_test.c — unit tests for tls/server.c.
 *
 * Goal: a listener's TLS context serves what its configuration says. SNI
 * names match exactly or as a one-label wildcard and nothing else; an exact
 * name beats a wildcard, the client's key type decides among equal
 * matches, and without SNI (or without a match) the first certificate, or
 * its sibling of the client's key type, is served. The ClientHello readers
 * find the server name and whether the client takes ECDSA. Secret files
 * others may read are refused; ticket key files hold one to three 80-byte
 * keys, the first used first. tls_server_new loads a real key and
 * certificate (chain, SAN or CN names, OCSP file, client CAs) and names
 * the file at fault in every refusal; ticket keys rotate on schedule and
 * survive tls_server_adopt while they are the server's own.
 *
 * Method: the module is #included so its statics are reachable. Choice
 * tests run on hand-built `struct certset` arrays (names and key type, no
 * keys). Load tests make ECDSA P-256 keys and self-signed certificates with
 * BoringSSL at run time and write them, with the other files the tests
 * need, into a mkdtemp directory the group removes at the end. Everything
 * is freed, so the SANITIZE=1 build's LeakSanitizer checks every error
 * path.
 */
#include "tls/server.c"

#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/nid.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char g_dir[64]; /* the group's mkdtemp directory */

/* ---- files and certificates ---- */

/* tpath returns g_dir/name in buf (CONFIG_PATH_MAX bytes). */
static char *tpath(char *buf, const char *name)
{
	snprintf(buf, CONFIG_PATH_MAX, "%s/%s", g_dir, name);
	return buf;
}

/* write_file writes `len` bytes into g_dir/name with `mode` (umask aside). */
static void write_file(const char *name, const void *data, size_t len, mode_t mode)
{
	char path[CONFIG_PATH_MAX];
	int fd;

	unlink(tpath(path, name)); /* a previous mode may forbid writing */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static EVP_PKEY *gen_ecdsa(void)
{
	EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
	EVP_PKEY *k = EVP_PKEY_new();

	assert_non_null(ec);
	assert_non_null(k);
	assert_int_equal(EC_KEY_generate_key(ec), 1);
	assert_int_equal(EVP_PKEY_assign_EC_KEY(k, ec), 1);
	return k;
}

/* gen_rsa makes a small (fast) RSA key: the tests only need its type. */
static EVP_PKEY *gen_rsa(void)
{
	RSA *rsa = RSA_new();
	BIGNUM *e = BN_new();
	EVP_PKEY *k = EVP_PKEY_new();

	assert_non_null(rsa);
	assert_non_null(e);
	assert_non_null(k);
	assert_int_equal(BN_set_word(e, RSA_F4), 1);
	assert_int_equal(RSA_generate_key_ex(rsa, 1024, e, NULL), 1);
	BN_free(e);
	assert_int_equal(EVP_PKEY_assign_RSA(k, rsa), 1);
	return k;
}

/* make_cert makes a certificate for `key`, subject CN `cn`, with the DNS
 * subjectAltNames of the NULL-terminated `sans` (none if NULL), signed by
 * `signer` (self-signed if NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *const *sans, EVP_PKEY *signer)
{
	X509 *x = X509_new();
	X509_NAME *name;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const uint8_t *)cn,
	                                            -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (sans != NULL) {
		GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
		assert_non_null(gens);
		for (size_t i = 0; sans[i] != NULL; i++) {
			GENERAL_NAME *g = GENERAL_NAME_new();
			ASN1_IA5STRING *s = ASN1_IA5STRING_new();
			assert_non_null(g);
			assert_non_null(s);
			assert_int_equal(ASN1_STRING_set(s, sans[i], (int)strlen(sans[i])), 1);
			GENERAL_NAME_set0_value(g, GEN_DNS, s);
			assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
		}
		assert_int_equal(
		        X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
		GENERAL_NAMES_free(gens);
	}
	assert_true(X509_sign(x, signer != NULL ? signer : key, EVP_sha256()) > 0);
	return x;
}

/* write_certs writes `n` certificates as one PEM file g_dir/name. */
static void write_certs(const char *name, X509 *const *xs, size_t n)
{
	char path[CONFIG_PATH_MAX];
	BIO *b = BIO_new_file(tpath(path, name), "w");

	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(PEM_write_bio_X509(b, xs[i]), 1);
	BIO_free(b);
}

/* write_key writes `key` as PEM into g_dir/name with `mode`. */
static void write_key(const char *name, EVP_PKEY *key, mode_t mode)
{
	char path[CONFIG_PATH_MAX];
	BIO *b;

	unlink(tpath(path, name));
	b = BIO_new_file(path, "w");
	assert_non_null(b);
	assert_int_equal(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
	BIO_free(b);
	assert_int_equal(chmod(path, mode), 0);
}

/* make_pair writes a key (mode 0600) and its self-signed certificate with
 * the given names as NAME.key and NAME.crt. */
static void make_pair(const char *name, bool ecdsa, const char *cn, const char *const *sans)
{
	EVP_PKEY *k = ecdsa ? gen_ecdsa() : gen_rsa();
	X509 *x = make_cert(k, cn, sans, NULL);
	char file[64];

	snprintf(file, sizeof(file), "%s.crt", name);
	write_certs(file, &x, 1);
	snprintf(file, sizeof(file), "%s.key", name);
	write_key(file, k, 0600);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* tls_cfg fills `t` with the defaults and the certificates `certs` (each
 * NAME stands for NAME.crt and NAME.key in g_dir). */
static void tls_cfg(struct config_tls *t, struct config_cert *certs, const char *const *names,
                    size_t n)
{
	config_tls_defaults(t);
	memset(certs, 0, n * sizeof(*certs));
	for (size_t i = 0; i < n; i++) {
		snprintf(certs[i].cert, CONFIG_PATH_MAX, "%s/%s.crt", g_dir, names[i]);
		snprintf(certs[i].key, CONFIG_PATH_MAX, "%s/%s.key", g_dir, names[i]);
	}
	t->certs = certs;
	t->num_certs = n;
}

static const struct certset *server_certs(const struct tls_server *srv)
{
	return SSL_CTX_get_ex_data(srv->ctx, g_ctx_index);
}

/* expect_refused runs tls_server_new on `t`, which must fail with a message
 * holding each of the NULL-terminated `parts`. */
static void expect_refused(const struct config_tls *t, const char *const *parts)
{
	char err[4096] = "";
	struct tls_server *srv = tls_server_new(t, "test.yaml", 0, err, sizeof(err));

	assert_null(srv);
	for (size_t i = 0; parts[i] != NULL; i++)
		if (strstr(err, parts[i]) == NULL)
			fail_msg("\"%s\" not in \"%s\"", parts[i], err);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/ringlb-tls-server-XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return -1;
	make_pair("ecdsa", true, "ecdsa.test",
	          (const char *[]){"ecdsa.test", "*.ecdsa.test", NULL});
	return 0;
}

static int group_teardown(void **state)
{
	DIR *d = opendir(g_dir);
	struct dirent *de;
	char path[CONFIG_PATH_MAX];

	(void)state;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			unlink(tpath(path, de->d_name));
	closedir(d);
	return rmdir(g_dir);
}

/* ---- name_score ---- */

/* entry_set gives entry e the key type and the NULL-terminated names. */
static void entry_set(struct cert_entry *e, bool ecdsa, const char *const *names)
{
	e->ecdsa = ecdsa;
	e->num_names = 0;
	for (size_t i = 0; names[i] != NULL; i++)
		snprintf(e->names[e->num_names++], sizeof(e->names[0]), "%s", names[i]);
}

static int score(const struct cert_entry *e, const char *host)
{
	return name_score(e, host, strlen(host));
}

static void test_name_score(void **state)
{
	struct cert_entry *e = calloc(1, sizeof(*e));

	(void)state;
	assert_non_null(e);
	entry_set(e, true, (const char *[]){"exact.test", NULL});
	assert_int_equal(score(e, "exact.test"), 2);
	assert_int_equal(score(e, "exact.tes"), 0);
	assert_int_equal(score(e, "exact.test."), 0);
	assert_int_equal(score(e, "x.exact.test"), 0);
	assert_int_equal(score(e, ""), 0);

	entry_set(e, true, (const char *[]){"*.wild.test", NULL});
	assert_int_equal(score(e, "x.wild.test"), 1);
	assert_int_equal(score(e, "long-label.wild.test"), 1);
	assert_int_equal(score(e, "wild.test"), 0);     /* the wildcard needs a label */
	assert_int_equal(score(e, ".wild.test"), 0);    /* an empty label is none */
	assert_int_equal(score(e, "a.b.wild.test"), 0); /* exactly one label */
	assert_int_equal(score(e, "xwild.test"), 0);
	assert_int_equal(score(e, "x.wild.tesx"), 0);
	assert_int_equal(score(e, "x.other.test"), 0);
	assert_int_equal(score(e, "*.wild.test"), 2); /* the name itself, as written */

	/* Several names: the best one counts. */
	entry_set(e, false, (const char *[]){"*.multi.test", "a.multi.test", "other.test", NULL});
	assert_int_equal(score(e, "a.multi.test"), 2);
	assert_int_equal(score(e, "b.multi.test"), 1);
	assert_int_equal(score(e, "other.test"), 2);
	assert_int_equal(score(e, "multi.test"), 0);

	/* Degenerate wildcards match only themselves. */
	entry_set(e, true, (const char *[]){"*.", "*", NULL});
	assert_int_equal(score(e, "a."), 0);
	assert_int_equal(score(e, "a"), 0);
	assert_int_equal(score(e, "*"), 2);

	e->num_names = 0;
	assert_int_equal(score(e, "anything.test"), 0);
	free(e);
}

/* ---- pick_entry ---- */

static struct certset *set_new(size_t n)
{
	struct certset *cs = calloc(1, sizeof(*cs));

	assert_non_null(cs);
	cs->entries = calloc(n, sizeof(*cs->entries));
	assert_non_null(cs->entries);
	cs->num = n;
	return cs;
}

/* pick returns the index pick_entry chooses for `host` ("" = no SNI). */
static size_t pick(const struct certset *cs, const char *host, bool ecdsa)
{
	const struct cert_entry *e = pick_entry(cs, host, strlen(host), ecdsa);

	assert_true(e >= cs->entries && e < cs->entries + cs->num);
	return (size_t)(e - cs->entries);
}

static void test_pick_exact_beats_wildcard(void **state)
{
	struct certset *cs = set_new(4);

	(void)state;
	entry_set(&cs->entries[0], true, (const char *[]){"default.test", NULL});
	entry_set(&cs->entries[1], true, (const char *[]){"*.wild.test", NULL});
	entry_set(&cs->entries[2], false, (const char *[]){"x.wild.test", NULL});
	entry_set(&cs->entries[3], false, (const char *[]){"*.wild.test", NULL});
	/* An exact name wins even with the key type the client likes less. */
	assert_int_equal(pick(cs, "x.wild.test", true), 2);
	assert_int_equal(pick(cs, "x.wild.test", false), 2);
	/* Among the wildcards the key type decides. */
	assert_int_equal(pick(cs, "y.wild.test", true), 1);
	assert_int_equal(pick(cs, "y.wild.test", false), 3);
	assert_int_equal(pick(cs, "default.test", false), 0);
	certset_free(cs);
}

static void test_pick_key_type(void **state)
{
	struct certset *cs = set_new(3);

	(void)state;
	entry_set(&cs->entries[0], false, (const char *[]){"a.test", NULL});
	entry_set(&cs->entries[1], true, (const char *[]){"b.test", "a.test", NULL});
	entry_set(&cs->entries[2], true, (const char *[]){"a.test", NULL});
	assert_int_equal(pick(cs, "a.test", false), 0);
	assert_int_equal(pick(cs, "a.test", true), 1); /* the first of equals */
	/* Only one type on offer: it is served, whatever the client likes. */
	assert_int_equal(pick(cs, "b.test", false), 1);
	assert_int_equal(pick(cs, "b.test", true), 1);

	/* The other order. */
	entry_set(&cs->entries[0], true, (const char *[]){"a.test", NULL});
	entry_set(&cs->entries[1], false, (const char *[]){"a.test", NULL});
	entry_set(&cs->entries[2], false, (const char *[]){"a.test", NULL});
	assert_int_equal(pick(cs, "a.test", true), 0);
	assert_int_equal(pick(cs, "a.test", false), 1);
	certset_free(cs);
}

static void test_pick_default_and_sibling(void **state)
{
	struct certset *cs = set_new(4);

	(void)state;
	entry_set(&cs->entries[0], false, (const char *[]){"d.test", NULL});
	entry_set(&cs->entries[1], true, (const char *[]){"other.test", NULL});
	entry_set(&cs->entries[2], true, (const char *[]){"x.test", "d.test", NULL});
	entry_set(&cs->entries[3], false, (const char *[]){"*.wild.test", NULL});
	/* No SNI, and an unknown name: the default, or its ECDSA sibling (an
	 * entry that also names d.test), never an unrelated ECDSA entry. */
	assert_int_equal(pick(cs, "", false), 0);
	assert_int_equal(pick(cs, "", true), 2);
	assert_int_equal(pick(cs, "unknown.test", false), 0);
	assert_int_equal(pick(cs, "unknown.test", true), 2);
	assert_int_equal(pick(cs, "wild.test", true), 2);
	/* SNI that matches still wins. */
	assert_int_equal(pick(cs, "other.test", false), 1);
	assert_int_equal(pick(cs, "a.wild.test", true), 3);

	/* No sibling of the client's type: the default. */
	entry_set(&cs->entries[2], true, (const char *[]){"x.test", NULL});
	assert_int_equal(pick(cs, "", true), 0);
	assert_int_equal(pick(cs, "unknown.test", true), 0);

	/* A wildcard default: its sibling carries the same wildcard. */
	entry_set(&cs->entries[0], true, (const char *[]){"*.d.test", NULL});
	entry_set(&cs->entries[1], false, (const char *[]){"*.d.test", NULL});
	assert_int_equal(pick(cs, "", true), 0);
	assert_int_equal(pick(cs, "", false), 1);
	assert_int_equal(pick(cs, "d.test", false), 1);

	/* A default without names has no sibling. */
	cs->entries[0].num_names = 0;
	assert_int_equal(pick(cs, "", false), 0);

	/* One certificate serves everyone. */
	cs->num = 1;
	assert_int_equal(pick(cs, "", false), 0);
	assert_int_equal(pick(cs, "nothing.test", true), 0);
	cs->num = 4;
	certset_free(cs);
}

/* ---- ClientHello readers ---- */

/* hello builds a ClientHello view over `ext` (extensions, each type, length,
 * body) and `suites`. */
static SSL_CLIENT_HELLO hello(const uint8_t *ext, size_t ext_len, const uint8_t *suites,
                              size_t suites_len)
{
	SSL_CLIENT_HELLO ch;

	memset(&ch, 0, sizeof(ch));
	ch.extensions = ext;
	ch.extensions_len = ext_len;
	ch.cipher_suites = suites;
	ch.cipher_suites_len = suites_len;
	return ch;
}

static void test_hello_sni(void **state)
{
	/* server_name: list length 15, host_name (0) of 12 bytes. */
	static const uint8_t sni[] = {0x00, 0x00, 0x00, 0x11, 0x00, 0x0f, 0x00,
	                              0x00, 0x0c, 'W',  'w',  'w',  '.',  'T',
	                              'e',  's',  't',  '.',  'c',  'o',  'm'};
	/* Another type first (skipped), then an empty host name, then "a.b". */
	static const uint8_t two[] = {0x00, 0x00, 0x00, 0x10, 0x00, 0x0e, 0x07, 0x00, 0x02, 'x',
	                              'y',  0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 'a',  '.',  'b'};
	static const uint8_t truncated[] = {0x00, 0x00, 0x00, 0x06, 0x00,
	                                    0x04, 0x00, 0x00, 0x09, 'a'};
	static const uint8_t other[] = {0x00, 0x10, 0x00, 0x00};
	char host[256];
	SSL_CLIENT_HELLO ch;

	(void)state;
	ch = hello(sni, sizeof(sni), NULL, 0);
	assert_int_equal(hello_sni(&ch, host, sizeof(host)), 12);
	assert_string_equal(host, "www.test.com");
	assert_int_equal(hello_sni(&ch, host, 12), 0); /* does not fit: none */
	ch = hello(two, sizeof(two), NULL, 0);
	assert_int_equal(hello_sni(&ch, host, sizeof(host)), 3);
	assert_string_equal(host, "a.b");
	ch = hello(truncated, sizeof(truncated), NULL, 0);
	assert_int_equal(hello_sni(&ch, host, sizeof(host)), 0);
	ch = hello(other, sizeof(other), NULL, 0);
	assert_int_equal(hello_sni(&ch, host, sizeof(host)), 0);
	ch = hello(NULL, 0, NULL, 0);
	assert_int_equal(hello_sni(&ch, host, sizeof(host)), 0);
}

static void test_hello_ecdsa(void **state)
{
	/* signature_algorithms: rsa_pss_rsae_sha256, ecdsa_secp256r1_sha256. */
	static const uint8_t sig_ecdsa[] = {0x00, 0x0d, 0x00, 0x06, 0x00,
	                                    0x04, 0x08, 0x04, 0x04, 0x03};
	static const uint8_t sig_rsa[] = {0x00, 0x0d, 0x00, 0x06, 0x00,
	                                  0x04, 0x08, 0x04, 0x04, 0x01};
	/* signature_algorithms with ECDSA, then supported_versions 1.3, 1.2. */
	static const uint8_t sig_v13[] = {0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x05, 0x03, 0x00,
	                                  0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03};
	/* ECDSA signatures, supported_versions 1.2 only. */
	static const uint8_t sig_v12[] = {0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03,
	                                  0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x03};
	static const uint8_t rsa_suites[] = {0xc0, 0x2f, 0xc0, 0x30, 0x00, 0x9c};
	static const uint8_t ecdsa_suites[] = {0xc0, 0x2f, 0xcc, 0xa9};
	SSL_CLIENT_HELLO ch;

	(void)state;
	/* TLS 1.2: an ECDHE-ECDSA suite and an ECDSA signature are both needed. */
	ch = hello(sig_ecdsa, sizeof(sig_ecdsa), ecdsa_suites, sizeof(ecdsa_suites));
	assert_true(hello_ecdsa(&ch));
	ch = hello(sig_ecdsa, sizeof(sig_ecdsa), rsa_suites, sizeof(rsa_suites));
	assert_false(hello_ecdsa(&ch));
	ch = hello(sig_rsa, sizeof(sig_rsa), ecdsa_suites, sizeof(ecdsa_suites));
	assert_false(hello_ecdsa(&ch));
	ch = hello(NULL, 0, ecdsa_suites, sizeof(ecdsa_suites));
	assert_false(hello_ecdsa(&ch));
	/* TLS 1.3 offered: the suites do not matter. */
	ch = hello(sig_v13, sizeof(sig_v13), rsa_suites, sizeof(rsa_suites));
	assert_true(hello_ecdsa(&ch));
	ch = hello(sig_v12, sizeof(sig_v12), rsa_suites, sizeof(rsa_suites));
	assert_false(hello_ecdsa(&ch));
	ch = hello(sig_v12, sizeof(sig_v12), ecdsa_suites, sizeof(ecdsa_suites));
	assert_true(hello_ecdsa(&ch));
}

static void test_select_alpn(void **state)
{
	static const uint8_t both[] = "\x02h2\x08http/1.1";
	static const uint8_t h2[] = "\x02h2";
	static const uint8_t bad[] = "\x02h2\x09http/1.1";
	const uint8_t *out = NULL;
	uint8_t out_len = 0;

	(void)state;
	assert_int_equal(select_alpn(NULL, &out, &out_len, both, sizeof(both) - 1, NULL),
	                 SSL_TLSEXT_ERR_OK);
	assert_int_equal(out_len, 8);
	assert_memory_equal(out, "http/1.1", 8);
	assert_ptr_equal(out, both + 4); /* points into the client's list */
	assert_int_equal(select_alpn(NULL, &out, &out_len, h2, sizeof(h2) - 1, NULL),
	                 SSL_TLSEXT_ERR_NOACK);
	assert_int_equal(select_alpn(NULL, &out, &out_len, bad, sizeof(bad) - 1, NULL),
	                 SSL_TLSEXT_ERR_NOACK);
	assert_int_equal(select_alpn(NULL, &out, &out_len, both, 0, NULL), SSL_TLSEXT_ERR_NOACK);

	/* a listener with http2 (a non-NULL argument) prefers h2 wherever the
	 * client lists it, and still serves http/1.1-only clients */
	static const uint8_t h1_first[] = "\x08http/1.1\x02h2";
	static const uint8_t h1_only[] = "\x08http/1.1";
	int on = 1;

	assert_int_equal(select_alpn(NULL, &out, &out_len, both, sizeof(both) - 1, &on),
	                 SSL_TLSEXT_ERR_OK);
	assert_int_equal(out_len, 2);
	assert_memory_equal(out, "h2", 2);
	assert_int_equal(select_alpn(NULL, &out, &out_len, h1_first, sizeof(h1_first) - 1, &on),
	                 SSL_TLSEXT_ERR_OK);
	assert_memory_equal(out, "h2", 2);
	assert_int_equal(select_alpn(NULL, &out, &out_len, h2, sizeof(h2) - 1, &on),
	                 SSL_TLSEXT_ERR_OK);
	assert_int_equal(select_alpn(NULL, &out, &out_len, h1_only, sizeof(h1_only) - 1, &on),
	                 SSL_TLSEXT_ERR_OK);
	assert_int_equal(out_len, 8);
	assert_memory_equal(out, "http/1.1", 8);
}

/* ---- secret files ---- */

static void test_check_private_file(void **state)
{
	static const struct {
		mode_t mode;
		int ok;
	} cases[] = {{0600, 1}, {0640, 1}, {0400, 1}, {0660, 1}, {0644, 0}, {0604, 0}, {0666, 0}};
	char path[CONFIG_PATH_MAX], err[1024], want[64];

	(void)state;
	for (size_t i = 0; i < RLB_ARRAY_LEN(cases); i++) {
		write_file("secret", "x", 1, cases[i].mode);
		err[0] = '\0';
		assert_int_equal(tls_check_private_file(tpath(path, "secret"), err, sizeof(err)),
		                 cases[i].ok);
		if (cases[i].ok) {
			assert_string_equal(err, "");
			continue;
		}
		assert_non_null(strstr(err, path));
		assert_non_null(strstr(err, "readable by other users"));
		snprintf(want, sizeof(want), "(mode %04o)", (unsigned)cases[i].mode);
		assert_non_null(strstr(err, want));
	}
	unlink(path);
	assert_int_equal(tls_check_private_file(path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
}

/* ticket_file writes `len` bytes 0, 1, 2, ... as g_dir/tickets. */
static char *ticket_file(char *path, size_t len, mode_t mode)
{
	uint8_t buf[400];

	assert_true(len <= sizeof(buf));
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	write_file("tickets", buf, len, mode);
	return tpath(path, "tickets");
}

static void test_ticket_keys_sizes(void **state)
{
	char path[CONFIG_PATH_MAX], msg[1024];

	(void)state;
	for (uint32_t n = 1; n <= 3; n++) {
		struct ticket_keys *k =
		        load_ticket_keys(ticket_file(path, 80 * n, 0600), msg, sizeof(msg));
		assert_non_null(k);
		assert_int_equal(k->num, n);
		for (uint32_t i = 0; i < n; i++) {
			/* name, HMAC secret and AES key, in file order */
			for (uint32_t j = 0; j < 16; j++)
				assert_int_equal(k->k[i].name[j], (uint8_t)((80 * i + j) * 7 + 1));
			for (uint32_t j = 0; j < 32; j++) {
				assert_int_equal(k->k[i].hmac[j],
				                 (uint8_t)((80 * i + 16 + j) * 7 + 1));
				assert_int_equal(k->k[i].aes[j],
				                 (uint8_t)((80 * i + 48 + j) * 7 + 1));
			}
		}
		keys_free(k);
	}
}

static void test_ticket_keys_refused(void **state)
{
	static const size_t bad[] = {0, 1, 79, 81, 159, 239};
	char path[CONFIG_PATH_MAX], msg[1024], want[1024];

	(void)state;
	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++) {
		msg[0] = '\0';
		assert_null(load_ticket_keys(ticket_file(path, bad[i], 0600), msg, sizeof(msg)));
		snprintf(want, sizeof(want),
		         "%s: expected 80 bytes per key (1 to 3 keys), got %zu bytes", path,
		         bad[i]);
		assert_string_equal(msg, want);
	}
	assert_null(load_ticket_keys(ticket_file(path, 241, 0600), msg, sizeof(msg)));
	snprintf(want, sizeof(want), "%s: more than 3 keys (240 bytes)", path);
	assert_string_equal(msg, want);
	assert_null(load_ticket_keys(ticket_file(path, 320, 0600), msg, sizeof(msg)));
	assert_string_equal(msg, want);
	/* A key file is a secret: others may not read it. */
	assert_null(load_ticket_keys(ticket_file(path, 80, 0644), msg, sizeof(msg)));
	assert_non_null(strstr(msg, path));
	assert_non_null(strstr(msg, "readable by other users"));
	unlink(path);
	assert_null(load_ticket_keys(path, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "No such file"));
}

/* ---- tls_server_new ---- */

static void test_server_loads_ecdsa(void **state)
{
	struct config_tls t;
	struct config_cert c;
	char err[1024] = "", desc[512];
	struct tls_server *srv;
	const struct certset *cs;

	(void)state;
	tls_cfg(&t, &c, (const char *[]){"ecdsa"}, 1);
	srv = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	if (srv == NULL)
		fail_msg("tls_server_new: %s", err);
	tls_server_describe(srv, desc, sizeof(desc));
	assert_string_equal(desc, "ecdsa.test (ECDSA)");
	cs = server_certs(srv);
	assert_int_equal(cs->num, 1);
	assert_true(cs->entries[0].ecdsa);
	assert_non_null(cs->entries[0].key);
	assert_int_equal(cs->entries[0].chain_len, 1);
	assert_int_equal(cs->entries[0].num_names, 2);
	assert_string_equal(cs->entries[0].names[0], "ecdsa.test");
	assert_string_equal(cs->entries[0].names[1], "*.ecdsa.test");
	assert_null(cs->entries[0].ocsp);
	/* Own ticket keys, no client certificates, server preference. */
	assert_true(srv->own_keys);
	assert_non_null(srv->keys);
	assert_int_equal(srv->keys->num, 1);
	assert_int_equal(srv->rotate_ms, 3600 * 1000);
	assert_int_equal(SSL_CTX_get_verify_mode(srv->ctx), SSL_VERIFY_NONE);
	assert_true(SSL_CTX_get_options(srv->ctx) & SSL_OP_CIPHER_SERVER_PREFERENCE);
	assert_false(SSL_CTX_get_options(srv->ctx) & SSL_OP_NO_TICKET);
	assert_int_equal(SSL_CTX_get_min_proto_version(srv->ctx), TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_get_max_proto_version(srv->ctx), TLS1_3_VERSION);
	assert_ptr_equal(SSL_CTX_get_app_data(srv->ctx), srv);
	tls_server_free(srv);
	tls_server_free(NULL);
}

/* Names come from the subject CN without SANs; a chain file's extra
 * certificates join the chain without adding names; several certificates
 * are all described; tickets can be off and TLS 1.2 refused. */
static void test_server_names_chain_options(void **state)
{
	EVP_PKEY *ca = gen_ecdsa(), *leaf = gen_rsa();
	X509 *xs[2];
	struct config_tls t;
	struct config_cert c[2];
	char err[1024] = "", desc[512];
	struct tls_server *srv;
	const struct certset *cs;
	volatile size_t cut = 8; /* not a constant: no truncation warning */

	(void)state;
	xs[0] = make_cert(leaf, "CN-Only.Test", NULL, ca);
	xs[1] = make_cert(ca, "Test CA", (const char *[]){"ca.test", NULL}, NULL);
	write_certs("chain.crt", xs, 2);
	write_key("chain.key", leaf, 0640);
	tls_cfg(&t, c, (const char *[]){"chain", "ecdsa"}, 2);
	t.session_tickets = false;
	t.min_version = 0x0304;
	srv = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	if (srv == NULL)
		fail_msg("tls_server_new: %s", err);
	cs = server_certs(srv);
	assert_int_equal(cs->num, 2);
	assert_false(cs->entries[0].ecdsa);
	assert_int_equal(cs->entries[0].chain_len, 2);
	assert_int_equal(cs->entries[0].num_names, 1);
	assert_string_equal(cs->entries[0].names[0], "cn-only.test"); /* lower-cased */
	assert_true(cs->entries[1].ecdsa);
	tls_server_describe(srv, desc, sizeof(desc));
	assert_string_equal(desc, "cn-only.test (RSA), ecdsa.test (ECDSA)");
	tls_server_describe(srv, desc, cut); /* cut, still terminated */
	assert_string_equal(desc, "cn-only");
	assert_null(srv->keys);
	assert_false(srv->own_keys);
	assert_true(SSL_CTX_get_options(srv->ctx) & SSL_OP_NO_TICKET);
	assert_int_equal(SSL_CTX_get_min_proto_version(srv->ctx), TLS1_3_VERSION);
	tls_server_free(srv);
	X509_free(xs[0]);
	X509_free(xs[1]);
	EVP_PKEY_free(ca);
	EVP_PKEY_free(leaf);
}

static void test_server_refusals(void **state)
{
	EVP_PKEY *other = gen_ecdsa(), *open_key = gen_ecdsa();
	struct config_tls t;
	struct config_cert c;
	char crt[CONFIG_PATH_MAX];

	(void)state;
	write_key("other.key", other, 0600);
	EVP_PKEY_free(other);
	tpath(crt, "ecdsa.crt");
	/* A key that does not belong to the certificate. */
	tls_cfg(&t, &c, (const char *[]){"ecdsa"}, 1);
	tpath(c.key, "other.key");
	expect_refused(&t, (const char *[]){"test.yaml: listeners[0].tls.certificates[0]: ", c.key,
	                                    "private key does not match certificate", crt, NULL});
	/* Missing files. */
	tpath(c.key, "missing.key");
	expect_refused(&t, (const char *[]){c.key, "No such file", NULL});
	tpath(c.key, "ecdsa.key");
	tpath(c.cert, "missing.crt");
	expect_refused(&t, (const char *[]){c.cert, "No such file", NULL});
	/* A private key others may read. */
	write_key("open.key", open_key, 0644);
	EVP_PKEY_free(open_key);
	tls_cfg(&t, &c, (const char *[]){"ecdsa"}, 1);
	tpath(c.key, "open.key");
	expect_refused(&t, (const char *[]){c.key, "readable by other users", NULL});
	/* Files that hold something else. */
	write_file("junk", "not PEM at all\n", 15, 0600);
	tls_cfg(&t, &c, (const char *[]){"ecdsa"}, 1);
	tpath(c.cert, "junk");
	expect_refused(&t, (const char *[]){c.cert, "no PEM certificate in the file", NULL});
	tls_cfg(&t, &c, (const char *[]){"ecdsa"}, 1);
	tpath(c.key, "junk");
	expect_refused(&t, (const char *[]){c.key, "not a PEM private key", NULL});
}

/* The message names the source line of the certificate (or of the tls
 * section), the listener and the entry; an entry after a good one fails
 * without leaking the good one. */
static void test_server_refusal_places(void **state)
{
	struct config_tls t;
	struct config_cert c[2];
	char err[2048], want[2048];

	(void)state;
	tls_cfg(&t, c, (const char *[]){"ecdsa", "ecdsa"}, 2);
	tpath(c[1].cert, "missing.crt");
	t._line = 7;
	c[0]._line = 9;
	c[1]._line = 11;
	assert_null(tls_server_new(&t, "ringlb.yaml", 3, err, sizeof(err)));
	snprintf(want, sizeof(want),
	         "ringlb.yaml:11: listeners[3].tls.certificates[1]: %s: No such file or directory",
	         c[1].cert);
	assert_string_equal(err, want);

	tls_cfg(&t, c, (const char *[]){"ecdsa"}, 1);
	t._line = 7;
	snprintf(t.ciphers, sizeof(t.ciphers), "NO-SUCH-CIPHER");
	assert_null(tls_server_new(&t, "ringlb.yaml", 1, err, sizeof(err)));
	assert_non_null(
	        strstr(err, "ringlb.yaml:7: listeners[1].tls: ciphers: \"NO-SUCH-CIPHER\": "));
	tls_cfg(&t, c, (const char *[]){"ecdsa"}, 1);
	snprintf(t.groups, sizeof(t.groups), "P-999");
	assert_null(tls_server_new(&t, "ringlb.yaml", 0, err, sizeof(err)));
	assert_non_null(strstr(err, "ringlb.yaml: listeners[0].tls: groups: \"P-999\": "));
	/* A message longer than the buffer is cut, not overrun. */
	tls_cfg(&t, c, (const char *[]){"ecdsa"}, 1);
	tpath(c[0].cert, "missing.crt");
	assert_null(tls_server_new(&t, "ringlb.yaml", 0, err, 20));
	assert_int_equal(strlen(err), 19);
}

static void test_server_ocsp(void **state)
{
	static const uint8_t resp[100] = {0x30, 0x03};
	struct config_tls t;
	struct config_cert c;
	char err[1024] = "";
	struct tls_server *srv;

	(void)state;
	write_file("ocsp.der", resp, sizeof(resp), 0644);
	write_file("empty.der", "", 0, 0644);
	tls_cfg(&t, &c, (const char *[]){"ecdsa"}, 1);
	tpath(c.ocsp, "ocsp.der");
	srv = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	if (srv == NULL)
		fail_msg("tls_server_new: %s", err);
	assert_int_equal(server_certs(srv)->entries[0].ocsp_len, sizeof(resp));
	assert_memory_equal(server_certs(srv)->entries[0].ocsp, resp, sizeof(resp));
	tls_server_free(srv);
	tpath(c.ocsp, "empty.der");
	expect_refused(&t, (const char *[]){c.ocsp, "empty OCSP response", NULL});
	tpath(c.ocsp, "missing.der");
	expect_refused(&t, (const char *[]){c.ocsp, "No such file", NULL});
}

static void test_server_client_ca(void **state)
{
	struct config_tls t;
	struct config_cert c;
	char err[1024] = "";
	struct tls_server *srv;

	(void)state;
	tls_cfg(&t, &c, (const char *[]){"ecdsa"}, 1);
	tpath(t.client_ca, "ecdsa.crt");
	srv = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	if (srv == NULL)
		fail_msg("tls_server_new: %s", err);
	assert_int_equal(SSL_CTX_get_verify_mode(srv->ctx),
	                 SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	tls_server_free(srv);
	t.verify_client = CONFIG_VERIFY_OPTIONAL;
	srv = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	assert_non_null(srv);
	assert_int_equal(SSL_CTX_get_verify_mode(srv->ctx), SSL_VERIFY_PEER);
	tls_server_free(srv);
	write_file("junk", "not PEM at all\n", 15, 0600);
	tpath(t.client_ca, "junk");
	expect_refused(&t, (const char *[]){"listeners[0].tls: client_ca: ", t.client_ca,
	                                    "no usable CA", NULL});
}

static void test_server_ticket_key_file(void **state)
{
	struct config_tls t;
	struct config_cert c;
	char err[1024] = "", path[CONFIG_PATH_MAX], want[2048];
	struct tls_server *srv;
	struct ticket_keys *before;

	(void)state;
	tls_cfg(&t, &c, (const char *[]){"ecdsa"}, 1);
	snprintf(t.ticket_key_file, sizeof(t.ticket_key_file), "%s", ticket_file(path, 160, 0600));
	srv = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	if (srv == NULL)
		fail_msg("tls_server_new: %s", err);
	assert_false(srv->own_keys);
	assert_int_equal(srv->keys->num, 2);
	assert_int_equal(srv->keys->k[0].name[0], 1);
	/* A key file is never rotated here. */
	before = srv->keys;
	tls_server_tick(srv, srv->rotated_ms + 10 * t.ticket_rotate_ms);
	assert_ptr_equal(srv->keys, before);
	tls_server_free(srv);

	ticket_file(path, 100, 0600);
	t._line = 4;
	assert_null(tls_server_new(&t, "test.yaml", 2, err, sizeof(err)));
	snprintf(want, sizeof(want),
	         "test.yaml:4: listeners[2].tls.ticket_key_file: %s: expected 80 bytes per key "
	         "(1 to 3 keys), got 100 bytes",
	         path);
	assert_string_equal(err, want);
	ticket_file(path, 80, 0604);
	expect_refused(&t, (const char *[]){"listeners[0].tls.ticket_key_file: ", path,
	                                    "readable by other users", NULL});
	/* With tickets off the file is not even read. */
	t.session_tickets = false;
	srv = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	assert_non_null(srv);
	assert_null(srv->keys);
	tls_server_free(srv);
}

static void test_server_tick_rotates(void **state)
{
	struct config_tls t;
	struct config_cert c;
	char err[1024] = "";
	struct tls_server *srv;
	struct ticket_key first, second;
	uint64_t t0;

	(void)state;
	tls_cfg(&t, &c, (const char *[]){"ecdsa"}, 1);
	t.ticket_rotate_ms = 60 * 1000;
	srv = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	assert_non_null(srv);
	t0 = srv->rotated_ms;
	first = srv->keys->k[0];
	tls_server_tick(srv, t0 + 59999); /* not yet */
	assert_int_equal(srv->keys->num, 1);
	assert_memory_equal(&srv->keys->k[0], &first, sizeof(first));
	tls_server_tick(srv, t0 + 60000);
	assert_int_equal(srv->rotated_ms, t0 + 60000);
	assert_int_equal(srv->keys->num, 2);
	assert_memory_equal(&srv->keys->k[1], &first, sizeof(first));
	assert_memory_not_equal(&srv->keys->k[0], &first, sizeof(first));
	second = srv->keys->k[0];
	tls_server_tick(srv, t0 + 100000); /* 40 s after the last rotation */
	assert_memory_equal(&srv->keys->k[0], &second, sizeof(second));
	tls_server_tick(srv, t0 + 120000);
	/* Only one previous key is kept. */
	assert_int_equal(srv->keys->num, 2);
	assert_memory_equal(&srv->keys->k[1], &second, sizeof(second));
	assert_memory_not_equal(&srv->keys->k[0], &first, sizeof(first));
	tls_server_free(srv);
}

static void test_server_adopt(void **state)
{
	struct config_tls t;
	struct config_cert c[2];
	char err[1024] = "", desc[512], path[CONFIG_PATH_MAX];
	struct tls_server *srv, *fresh;
	struct ticket_keys *own;

	(void)state;
	make_pair("second", true, "second.test", (const char *[]){"second.test", NULL});
	tls_cfg(&t, c, (const char *[]){"ecdsa"}, 1);
	srv = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	assert_non_null(srv);
	own = srv->keys;
	/* New certificates, own keys before and after: the keys stay. */
	tls_cfg(&t, c, (const char *[]){"second", "ecdsa"}, 2);
	t.ticket_rotate_ms = 120 * 1000;
	fresh = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	assert_non_null(fresh);
	tls_server_adopt(srv, fresh);
	tls_server_describe(srv, desc, sizeof(desc));
	assert_string_equal(desc, "second.test (ECDSA), ecdsa.test (ECDSA)");
	assert_int_equal(server_certs(srv)->num, 2);
	assert_ptr_equal(SSL_CTX_get_app_data(srv->ctx), srv);
	assert_ptr_equal(srv->keys, own);
	assert_true(srv->own_keys);
	assert_int_equal(srv->rotate_ms, 120 * 1000);
	/* A key file now: its keys replace the own ones, which stop rotating. */
	tls_cfg(&t, c, (const char *[]){"ecdsa"}, 1);
	snprintf(t.ticket_key_file, sizeof(t.ticket_key_file), "%s", ticket_file(path, 80, 0600));
	fresh = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	assert_non_null(fresh);
	tls_server_adopt(srv, fresh);
	assert_false(srv->own_keys);
	assert_int_equal(srv->keys->num, 1);
	assert_int_equal(srv->keys->k[0].name[0], 1);
	/* And back to own keys. */
	tls_cfg(&t, c, (const char *[]){"ecdsa"}, 1);
	fresh = tls_server_new(&t, "test.yaml", 0, err, sizeof(err));
	assert_non_null(fresh);
	tls_server_adopt(srv, fresh);
	assert_true(srv->own_keys);
	assert_int_equal(srv->keys->num, 1);
	tls_server_describe(srv, desc, sizeof(desc));
	assert_string_equal(desc, "ecdsa.test (ECDSA)");
	tls_server_free(srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_name_score),
	        cmocka_unit_test(test_pick_exact_beats_wildcard),
	        cmocka_unit_test(test_pick_key_type),
	        cmocka_unit_test(test_pick_default_and_sibling),
	        cmocka_unit_test(test_hello_sni),
	        cmocka_unit_test(test_hello_ecdsa),
	        cmocka_unit_test(test_select_alpn),
	        cmocka_unit_test(test_check_private_file),
	        cmocka_unit_test(test_ticket_keys_sizes),
	        cmocka_unit_test(test_ticket_keys_refused),
	        cmocka_unit_test(test_server_loads_ecdsa),
	        cmocka_unit_test(test_server_names_chain_options),
	        cmocka_unit_test(test_server_refusals),
	        cmocka_unit_test(test_server_refusal_places),
	        cmocka_unit_test(test_server_ocsp),
	        cmocka_unit_test(test_server_client_ca),
	        cmocka_unit_test(test_server_ticket_key_file),
	        cmocka_unit_test(test_server_tick_rotates),
	        cmocka_unit_test(test_server_adopt),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
