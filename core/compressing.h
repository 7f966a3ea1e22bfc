/* core/compressing.h — on-the-fly compression on the response path (the
 * encoders themselves are core/compress.c).
 *
 * The request's Accept-Encoding is negotiated when the request is routed
 * (conn.zwant). When the response head arrives, an eligible response
 * (configured media type, not already encoded, not no-transform, not a
 * range, big enough, an encoder free in the shard's pool) gets its head
 * rewritten (Content-Encoding, Vary: Accept-Encoding, a weak ETag, no
 * Content-Length) and its body streamed through the encoder: raw bytes
 * classified in c->rin are compressed into c->zq, which the send paths
 * read instead of c->rin (conn_bodyq). Memory stays bounded: the encoder
 * stops taking input while c->zq holds conn_bytes_max, so c->rin fills
 * and the backend is read no faster than the client takes the result.
 *
 * Thread: shard threads; compressing_boot in main before the shards.
 */
#ifndef RLB_COMPRESSING_H
#define RLB_COMPRESSING_H

#include "core/conn.h"

/* compressing_boot reads the compression section (fixed until restart). */
void compressing_boot(const struct config *cfg);

/* zx_shard_init / zx_shard_free set up and free a shard's encoder pool. */
void zx_shard_init(struct shard *s);
void zx_shard_free(struct shard *s);

/* zx_request notes the coding the request accepts best (c->zwant). */
void zx_request(struct shard *s, struct conn *c, const struct h1_msg *m);

/* zx_eligible says whether response `m` to `c` may be compressed at all
 * (ignoring what the client accepts). */
bool zx_eligible(struct shard *s, const struct conn *c, const struct h1_msg *m);

/* zx_response decides for response head `m`; when it compresses, it takes
 * an encoder, sets c->zon and rewrites m's fields and framing (the caller
 * restores m->body for classifying the backend's body). */
void zx_response(struct shard *s, struct conn *c, struct h1_msg *m);

/* zx_restamp makes a stored head of a body compressed with `enc` say so
 * again after a 304 merged the plain representation's fields into it:
 * weak ETag, Content-Encoding, Vary listing Accept-Encoding. */
void zx_restamp(struct h1_msg *m, uint8_t enc);

/* zx_step compresses what was classified; returns true once the encoder
 * ended the stream (after c->zfinish) and its output is queued. */
bool zx_step(struct shard *s, struct conn *c);

/* zx_end gives the encoder back and clears c->zq (end of a transaction,
 * or the response was replaced). */
void zx_end(struct shard *s, struct conn *c);

#endif
