/* tls/internal.h — what the tls/ sources share and nothing else sees. */
#ifndef RLB_TLS_INTERNAL_H
#define RLB_TLS_INTERNAL_H

#include <openssl/ssl.h>

#include <stdbool.h>
#include <stdint.h>

struct ticket_keys;

struct tls_server {
	SSL_CTX *ctx;             /* RCU: the context new connections get */
	struct ticket_keys *keys; /* RCU: session ticket keys, the first encrypts */
	bool own_keys;            /* generated and rotated here (no key file) */
	uint64_t rotate_ms, rotated_ms;
	char summary[256];
};

/* tls_bio_method returns the BIO method that connects an SSL to a
 * tls_link's queues (created on first use; NULL if out of memory). */
BIO_METHOD *tls_bio_method(void);

#endif
