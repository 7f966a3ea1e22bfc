/* core/compress.h — on-the-fly response compression: which coding to use
 * (Accept-Encoding negotiation), which responses to compress (Content-Type),
 * and streaming encoders for gzip, Brotli and zstd with bounded memory.
 *
 * Why here: the proxy compresses a response as it streams through, so the
 * encoders must accept input in any split and write into whatever output
 * space the send path has (down to one byte), and a shard must be able to
 * say beforehand how much memory its encoders can take at most.
 *
 * Memory. Each shard owns one `struct zpool`; nothing is shared between
 * threads. A pool keeps at most max_streams encoder contexts alive (in use
 * plus idle). Contexts are created lazily, the first time a coding is needed
 * and no idle context of that coding is left, and are reused after
 * zstream_put (zlib deflateReset, ZSTD_CCtx_reset); when the pool is full of
 * idle contexts of other codings, one of those is freed to make room. So a
 * shard's encoders never hold more than max_streams x the figure below for
 * the busiest coding. Per stream, peak heap measured with counting
 * allocators on long (2-8 MiB) HTML streams fed in 16 KiB and 2 MiB
 * slices (zlib 1.2.13, Brotli 1.0.9, zstd 1.5.4; the worst is given):
 *   gzip: deflateInit2(level, windowBits 15+16 (gzip wrapper), memLevel 8):
 *         262 KiB at every level (window 64 KiB, prev 64 KiB, hash heads
 *         64 KiB, pending 64 KiB), allocated once, then reused.
 *   br:   quality br_level, BROTLI_PARAM_LGWIN 18 (256 KiB window),
 *         BROTLI_PARAM_MODE TEXT, size hint left unknown (Brotli then takes
 *         its first input as the hint, so at most 256 KiB is given per
 *         call, which keeps quality 4 off its 4 MiB hasher): quality 0:
 *         0.7 MiB, 1: 1.7, 2-3: 2.1, 4 (default): 2.9, 5: 3.4, 6: 4.4,
 *         7: 10.5, 8: 18.5, 9: 37, 10: 12.3, 11: 21.3 MiB. Brotli 1.0.9 has
 *         no encoder reset, so the BrotliEncoderState is created when a
 *         stream starts and destroyed when it is put back (an idle br
 *         context is only the small `struct zstream`): a few allocations
 *         per compressed response, accepted for Brotli only.
 *   zstd: ZSTD_c_compressionLevel zstd_level, ZSTD_c_windowLog capped at
 *         ZPOOL_ZSTD_WLOG (19: 512 KiB), checksum off; allocated whole on
 *         first use (ZSTD_estimateCStreamSize_usingCCtxParams and
 *         ZSTD_sizeof_CCtx agree), then reused: level 1: 1.3 MiB, 2: 1.5,
 *         3 (default): 2.0, 4: 3.2, 5-6: 4.2, 7-8: 7.2, 9: 13, 14: 49,
 *         19: 82 MiB (the hash and chain tables grow with the level).
 * So the defaults (64 streams, br 4, zstd 3) bound a shard at about 190 MiB
 * if every stream is Brotli, 130 MiB if zstd, 17 MiB if gzip: size
 * max_streams (and levels) from these figures.
 * When every context is busy zstream_get returns NULL and the response goes
 * out uncompressed.
 *
 * Thread: shard-local (one pool per shard; a stream stays on its shard).
 */
#ifndef RLB_COMPRESS_H
#define RLB_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZPOOL_ZSTD_WLOG 19 /* zstd windowLog cap: 512 KiB window */
#define ZPOOL_BR_LGWIN  18 /* Brotli lgwin: 256 KiB window */

enum zenc { ZENC_IDENTITY = 0, ZENC_GZIP, ZENC_BR, ZENC_ZSTD, ZENC_COUNT };

/* zenc_names holds the Content-Encoding token of each coding. */
extern const char *const zenc_names[ZENC_COUNT];

/* zenc_parse maps a token ("gzip", "x-gzip", "br", "zstd", "identity";
 * case-insensitive) to its coding; -1 if unknown. */
int zenc_parse(const char *s, size_t len);

/* zenc_negotiate picks the coding for a response from the request's
 * Accept-Encoding field value (RFC 9110 12.5.3): among `prefs` (the
 * server's order, e.g. {BR, ZSTD, GZIP}) the acceptable one with the
 * highest q, ties broken by `prefs` order. q=0 excludes; "*" covers codings
 * not listed; "x-gzip" is gzip; a coding listed twice keeps its lowest q;
 * a malformed member counts as q=0. No field (ae NULL) or an empty value
 * gives IDENTITY. Identity is always the fallback, even when refused
 * ("identity;q=0", "*;q=0"): ringlb never answers 406. */
enum zenc zenc_negotiate(const char *ae, size_t len, const uint8_t *prefs, size_t nprefs);

/* ztype_match says whether the Content-Type value `ct` (parameters after
 * ';' and surrounding whitespace ignored, case-insensitive) matches one of
 * `types`, each "type/subtype"; a subtype "*" matches the whole type, and a
 * type "*" with subtype "*" matches anything. */
bool ztype_match(const char *ct, size_t len, const char *const *types, size_t ntypes);

/* ztype_precompressed says whether `ct` names a media type that is already
 * compressed (images but SVG, ICO and BMP; audio; video; archives; PDF;
 * WOFF; octet-stream), which is never compressed whatever the config says. */
bool ztype_precompressed(const char *ct, size_t len);

struct zconf {
	int gzip_level;       /* 1..9, default 6 */
	int br_level;         /* 0..11 (quality), default 4 */
	int zstd_level;       /* 1..19, default 3 */
	uint32_t max_streams; /* contexts alive at once per pool (shard), default 64 */
};

struct zstream; /* one encoder; opaque */

struct zpool {
	struct zconf conf;                /* levels clamped to their ranges */
	struct zstream *idle[ZENC_COUNT]; /* idle contexts per coding, LIFO */
	uint32_t nidle[ZENC_COUNT];
	uint32_t alive;  /* contexts allocated: in use + idle, <= max_streams */
	uint32_t in_use; /* handed out now */
	uint32_t peak;   /* most handed out at once */
};

/* zconf_default fills `c` with the defaults (6, 4, 3, 64). */
void zconf_default(struct zconf *c);

/* zpool_init prepares a pool with the levels of `c` (NULL: defaults)
 * clamped to their ranges; it allocates nothing. max_streams 0 disables. */
void zpool_init(struct zpool *p, const struct zconf *c);

/* zpool_destroy frees every context; none may be in use. */
void zpool_destroy(struct zpool *p);

/* zstream_get returns an encoder for coding e (not IDENTITY) ready to start
 * a new stream, or NULL when max_streams are in use or allocation failed
 * (the caller then sends the response uncompressed). */
struct zstream *zstream_get(struct zpool *p, enum zenc e);

/* zstream_put gives an encoder back, finished or abandoned mid-stream. */
void zstream_put(struct zpool *p, struct zstream *z);

/* zstream_enc says which coding an encoder writes. */
enum zenc zstream_enc(const struct zstream *z);

enum zs_result { ZS_OK = 0, ZS_END, ZS_ERROR };

/* zstream_run consumes up to in_len bytes of `in` (*in_used says how many)
 * and writes up to out_cap bytes to `out` (*out_len says how many).
 * finish=false: ZS_OK; call again with more input, or with more space if
 * out filled. finish=true (all input given; pass any unconsumed rest
 * again): ZS_OK while output remains, then ZS_END once the last byte (gzip
 * trailer, Brotli last block, zstd frame end) is written. Once finish was
 * given, later calls finish too. ZS_ERROR on an internal error, or on input
 * after the end. Works with out_cap 1 and any split of the input. */
enum zs_result zstream_run(struct zstream *z, const void *in, size_t in_len, size_t *in_used,
                           void *out, size_t out_cap, size_t *out_len, bool finish);

/* zstream_flush makes the encoder emit all it has buffered (Z_SYNC_FLUSH,
 * BROTLI_OPERATION_FLUSH, ZSTD_e_flush) so a slow response is not held back:
 * the output so far then decodes to all input so far. ZS_OK; call again
 * while *out_len == out_cap (an unfinished flush is also completed by the
 * next zstream_run). A no-op once finishing. ZS_ERROR on an internal error. */
enum zs_result zstream_flush(struct zstream *z, void *out, size_t out_cap, size_t *out_len);

/* zpool_in_use / zpool_peak: encoders handed out now / at most so far. */
uint32_t zpool_in_use(const struct zpool *p);
uint32_t zpool_peak(const struct zpool *p);

#endif
