/* core/compress.c — Accept-Encoding negotiation, Content-Type eligibility
 * and the per-shard pool of streaming encoders (gzip, Brotli, zstd).
 *
 * Negotiation reads the field value once, left to right, keeping one q
 * (in thousandths, -1 when not listed) per coding and one for "*"; then the
 * server's preference list is walked and the first coding with the highest
 * q above zero wins. Nothing in the value can make it fail: a member it
 * cannot read counts as q=0.
 *
 * Encoders. Every coding is driven through one step function per library
 * with three operations (process, flush, finish) over a `struct zio` that
 * tracks how much input was used and output written. zstream_run and
 * zstream_flush add the state that makes the three libraries behave alike
 * under any split of input and output: an unfinished flush is completed
 * before more input goes in (Brotli refuses input mid-flush), and once
 * finishing has begun every call finishes (zlib and Brotli require it).
 *
 * The pool keeps idle contexts per coding on LIFO lists. A context is reset
 * when it is handed out, so an encoder abandoned mid-stream is safe to put
 * back. Brotli 1.0.9 cannot reset an encoder: its state is created at
 * zstream_get and destroyed at zstream_put (see compress.h for the cost).
 */
#define ZLIB_CONST
#include "core/compress.h"

#include "core/common.h"

#include <brotli/encode.h>
#include <limits.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

const char *const zenc_names[ZENC_COUNT] = {"identity", "gzip", "br", "zstd"};

struct zstream {
	struct zstream *next; /* idle list link */
	enum zenc enc;
	bool flushing;  /* a zstream_flush has output left to give */
	bool finishing; /* finish was given */
	bool done;      /* the stream's last byte was written */
	union {
		z_stream gz; /* must not move after deflateInit2: zstreams are heap-allocated */
		BrotliEncoderState *br;
		ZSTD_CCtx *zs;
	} u;
};

/* ---- tokens and negotiation ------------------------------------------ */

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* icase_eq compares n bytes of a and b, ignoring ASCII case. */
static bool icase_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

/* ieq says whether s[0..len) equals the string `lit`, ignoring case. */
static bool ieq(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && icase_eq(s, lit, len);
}

static bool ows(char c)
{
	return c == ' ' || c == '\t';
}

int zenc_parse(const char *s, size_t len)
{
	if (s == NULL)
		return -1;
	if (ieq(s, len, "x-gzip"))
		return ZENC_GZIP;
	for (int e = 0; e < ZENC_COUNT; e++)
		if (ieq(s, len, zenc_names[e]))
			return e;
	return -1;
}

/* parse_q reads a qvalue (RFC 9110 12.4.2: "0" ["." 0*3DIGIT] or "1" ["."
 * 0*3"0"]) into thousandths; -1 if malformed. */
static int parse_q(const char *s, size_t len)
{
	int q, scale = 100;

	if (len == 0 || (s[0] != '0' && s[0] != '1'))
		return -1;
	q = (s[0] - '0') * 1000;
	if (len == 1)
		return q;
	if (s[1] != '.' || len > 5)
		return -1;
	for (size_t i = 2; i < len; i++, scale /= 10) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		q += (s[i] - '0') * scale;
	}
	return q <= 1000 ? q : -1;
}

/* A cursor over the field value. */
struct cur {
	const char *s;
	size_t i, n;
};

static void skip_ows(struct cur *c)
{
	while (c->i < c->n && ows(c->s[c->i]))
		c->i++;
}

/* take_word advances over characters up to a delimiter (',' ';' '=' or
 * whitespace) or over a quoted string, and returns its length (0 for an
 * unterminated quoted string, which runs to the end). */
static size_t take_word(struct cur *c)
{
	size_t start = c->i;

	if (c->i < c->n && c->s[c->i] == '"') {
		for (c->i++; c->i < c->n && c->s[c->i] != '"'; c->i++)
			if (c->s[c->i] == '\\' && c->i + 1 < c->n)
				c->i++;
		if (c->i >= c->n)
			return 0; /* unterminated: nothing valid was read */
		c->i++;
		return c->i - start;
	}
	while (c->i < c->n && !ows(c->s[c->i]) && c->s[c->i] != ',' && c->s[c->i] != ';' &&
	       c->s[c->i] != '=')
		c->i++;
	return c->i - start;
}

/* skip_member moves the cursor past the next ',' outside quoted strings. */
static void skip_member(struct cur *c)
{
	while (c->i < c->n && c->s[c->i] != ',') {
		if (c->s[c->i] == '"')
			(void)take_word(c);
		else
			c->i++;
	}
}

/* member_q reads a member's parameters (the cursor is after its coding)
 * up to the next ',' and returns its q in thousandths: 1000 when absent,
 * 0 when malformed. */
static int member_q(struct cur *c)
{
	int q = 1000;

	for (;;) {
		const char *name;
		size_t nlen;

		skip_ows(c);
		if (c->i >= c->n || c->s[c->i] == ',')
			return q;
		if (c->s[c->i] != ';')
			break;
		c->i++;
		skip_ows(c);
		name = c->s + c->i;
		nlen = take_word(c);
		skip_ows(c);
		if (c->i >= c->n || c->s[c->i] != '=')
			break;
		c->i++;
		skip_ows(c);
		if (ieq(name, nlen, "q")) {
			const char *v = c->s + c->i;

			q = parse_q(v, take_word(c));
			if (q < 0)
				break;
		} else if (take_word(c) == 0) {
			break;
		}
	}
	skip_member(c);
	return 0;
}

/* note keeps the lowest q seen for one slot (-1: not listed yet). */
static void note(int *slot, int q)
{
	if (*slot < 0 || q < *slot)
		*slot = q;
}

enum zenc zenc_negotiate(const char *ae, size_t len, const uint8_t *prefs, size_t nprefs)
{
	int q[ZENC_COUNT] = {-1, -1, -1, -1}, star = -1, best_q = 0;
	enum zenc best = ZENC_IDENTITY;
	struct cur c = {ae, 0, ae != NULL ? len : 0};

	while (c.i < c.n) {
		const char *tok;
		size_t tlen;
		int e, mq;

		skip_ows(&c);
		tok = c.s + c.i;
		tlen = c.i < c.n && c.s[c.i] == '"' ? 0 : take_word(&c);
		mq = tlen > 0 ? member_q(&c) : 0;
		if (tlen == 0)
			skip_member(&c);
		if (c.i < c.n)
			c.i++; /* the ',' */
		e = zenc_parse(tok, tlen);
		if (e >= 0)
			note(&q[e], mq);
		else if (tlen == 1 && tok[0] == '*')
			note(&star, mq);
	}
	for (size_t k = 0; k < nprefs && prefs != NULL; k++) {
		int e = prefs[k], v;

		if (e <= ZENC_IDENTITY || e >= ZENC_COUNT)
			continue;
		v = q[e] >= 0 ? q[e] : star;
		if (v > best_q) {
			best_q = v;
			best = (enum zenc)e;
		}
	}
	return best;
}

/* ---- media types ----------------------------------------------------- */

/* media_type trims `ct` to its "type/subtype" (no parameters, no
 * surrounding whitespace) and returns its length; *slash is the offset of
 * the '/', or the length when there is none. */
static size_t media_type(const char **ct, size_t len, size_t *slash)
{
	const char *s = *ct;
	size_t n = 0;

	while (len > 0 && ows(*s)) {
		s++;
		len--;
	}
	while (n < len && s[n] != ';')
		n++;
	while (n > 0 && ows(s[n - 1]))
		n--;
	*slash = n;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '/') {
			*slash = i;
			break;
		}
	}
	*ct = s;
	return n;
}

/* type_is says whether the media type mt[0..n) ('/' at `slash`) matches
 * the pattern "type/subtype", "type/" + "*" or "*" + "/" + "*". */
static bool type_is(const char *mt, size_t n, size_t slash, const char *pat)
{
	size_t plen = strlen(pat);

	if (strcmp(pat, "*/*") == 0)
		return slash < n;
	if (plen >= 2 && pat[plen - 2] == '/' && pat[plen - 1] == '*')
		return slash < n && slash + 1 == plen - 1 && icase_eq(mt, pat, plen - 1);
	return ieq(mt, n, pat);
}

bool ztype_match(const char *ct, size_t len, const char *const *types, size_t ntypes)
{
	size_t slash, n;

	if (ct == NULL || types == NULL)
		return false;
	n = media_type(&ct, len, &slash);
	if (n == 0)
		return false;
	for (size_t i = 0; i < ntypes; i++)
		if (types[i] != NULL && type_is(ct, n, slash, types[i]))
			return true;
	return false;
}

/* Media types whose bodies are already compressed. */
static const char *const precompressed[] = {
        "video/*",
        "audio/*",
        "application/zip",
        "application/gzip",
        "application/x-gzip",
        "application/zstd",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-7z-compressed",
        "application/x-rar-compressed",
        "application/pdf",
        "application/octet-stream",
        "font/woff",
        "font/woff2",
};

/* Images that are not compressed: vector text and raw bitmaps. */
static const char *const image_plain[] = {
        "image/svg+xml",
        "image/x-icon",
        "image/vnd.microsoft.icon",
        "image/bmp",
};

static const char *const image_any[] = {"image/*"};

bool ztype_precompressed(const char *ct, size_t len)
{
	if (ztype_match(ct, len, image_any, 1))
		return !ztype_match(ct, len, image_plain, RLB_ARRAY_LEN(image_plain));
	return ztype_match(ct, len, precompressed, RLB_ARRAY_LEN(precompressed));
}

/* ---- encoders -------------------------------------------------------- */

/* The most input one Brotli call is given (see br_step). */
#define ZPOOL_BR_SLICE ((size_t)256 * 1024)

/* Input for calls that have none: never a null pointer plus an offset. */
static const uint8_t no_input[1];

enum zop { ZOP_PROCESS, ZOP_FLUSH, ZOP_FINISH };

/* One call's buffers and progress. */
struct zio {
	const uint8_t *in;
	size_t in_len, in_used;
	uint8_t *out;
	size_t out_cap, out_len;
};

/* Each step runs its library once with operation `op` and returns -1 on
 * error, 1 when a flush or finish is complete, else 0. */
static int gz_step(struct zstream *z, struct zio *io, enum zop op)
{
	static const int mode[] = {Z_NO_FLUSH, Z_SYNC_FLUSH, Z_FINISH};
	z_stream *s = &z->u.gz;
	size_t in_left = io->in_len - io->in_used, out_left = io->out_cap - io->out_len;
	uInt ain = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
	uInt aout = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
	int r, flush = mode[op];

	/* Finishing on a clamped slice would end the stream early. */
	if (ain < in_left && op == ZOP_FINISH)
		flush = Z_NO_FLUSH;
	s->next_in = io->in + io->in_used;
	s->avail_in = ain;
	s->next_out = io->out + io->out_len;
	s->avail_out = aout;
	r = deflate(s, flush);
	io->in_used += ain - s->avail_in;
	io->out_len += aout - s->avail_out;
	if (r == Z_STREAM_END)
		return flush == Z_FINISH;
	if (r != Z_OK && r != Z_BUF_ERROR)
		return -1;
	/* A sync flush is complete when it left output space unused. */
	return op == ZOP_FLUSH && s->avail_out != 0;
}

static int br_step(struct zstream *z, struct zio *io, enum zop op)
{
	static const BrotliEncoderOperation mode[] = {
	        BROTLI_OPERATION_PROCESS, BROTLI_OPERATION_FLUSH, BROTLI_OPERATION_FINISH};
	size_t in_left = io->in_len - io->in_used, aout = io->out_cap - io->out_len;
	size_t slice = in_left > ZPOOL_BR_SLICE ? ZPOOL_BR_SLICE : in_left, ain = slice;
	const uint8_t *next_in = io->in + io->in_used;
	uint8_t *next_out = io->out + io->out_len;
	BrotliEncoderOperation bop = mode[op];

	/* Brotli takes the first input it sees as the size hint, and at quality
	 * 4 a hint of 1 MiB or more picks a 4 MiB hash table: give it one slice
	 * at a time, and finish only with the last one. */
	if (slice < in_left && op == ZOP_FINISH)
		bop = BROTLI_OPERATION_PROCESS;
	if (!BrotliEncoderCompressStream(z->u.br, bop, &ain, &next_in, &aout, &next_out, NULL))
		return -1;
	io->in_used += slice - ain;
	io->out_len = io->out_cap - aout;
	if (op == ZOP_FINISH)
		return bop == mode[op] && BrotliEncoderIsFinished(z->u.br);
	return op == ZOP_FLUSH && !BrotliEncoderHasMoreOutput(z->u.br);
}

static int zs_step(struct zstream *z, struct zio *io, enum zop op)
{
	static const ZSTD_EndDirective mode[] = {ZSTD_e_continue, ZSTD_e_flush, ZSTD_e_end};
	ZSTD_inBuffer in = {io->in, io->in_len, io->in_used};
	ZSTD_outBuffer out = {io->out, io->out_cap, io->out_len};
	size_t r = ZSTD_compressStream2(z->u.zs, &out, &in, mode[op]);

	if (ZSTD_isError(r))
		return -1;
	io->in_used = in.pos;
	io->out_len = out.pos;
	return op != ZOP_PROCESS && r == 0;
}

static int step(struct zstream *z, struct zio *io, enum zop op)
{
	switch (z->enc) {
	case ZENC_GZIP:
		return gz_step(z, io, op);
	case ZENC_BR:
		return br_step(z, io, op);
	case ZENC_ZSTD:
		return zs_step(z, io, op);
	default:
		return -1;
	}
}

/* finish_flush completes a pending zstream_flush into io's output (no
 * input): 1 when none is pending any more, 0 when out is full, -1 error. */
static int finish_flush(struct zstream *z, struct zio *io)
{
	struct zio flush = {no_input, 0, 0, io->out, io->out_cap, io->out_len};
	int r;

	if (!z->flushing)
		return 1;
	r = step(z, &flush, ZOP_FLUSH);
	io->out_len = flush.out_len;
	if (r > 0)
		z->flushing = false;
	return r;
}

enum zs_result zstream_run(struct zstream *z, const void *in, size_t in_len, size_t *in_used,
                           void *out, size_t out_cap, size_t *out_len, bool finish)
{
	struct zio io = {no_input, 0, 0, out, out != NULL ? out_cap : 0, 0};
	enum zop op;
	int r;

	if (in != NULL && in_len > 0) {
		io.in = in;
		io.in_len = in_len;
	}
	*in_used = 0;
	*out_len = 0;
	if (z->done)
		return io.in_len == 0 ? ZS_END : ZS_ERROR;
	r = finish_flush(z, &io);
	*out_len = io.out_len;
	if (r < 0)
		return ZS_ERROR;
	if (r == 0 || io.out_len == io.out_cap)
		return ZS_OK; /* out is full: no step can make progress */
	z->finishing |= finish;
	op = z->finishing ? ZOP_FINISH : ZOP_PROCESS;
	r = step(z, &io, op);
	*in_used = io.in_used;
	*out_len = io.out_len;
	if (r < 0)
		return ZS_ERROR;
	if (op == ZOP_FINISH && r > 0) {
		z->done = true;
		return ZS_END;
	}
	return ZS_OK;
}

enum zs_result zstream_flush(struct zstream *z, void *out, size_t out_cap, size_t *out_len)
{
	struct zio io = {no_input, 0, 0, out, out != NULL ? out_cap : 0, 0};
	int r;

	*out_len = 0;
	if (z->done || z->finishing || io.out_cap == 0)
		return ZS_OK;
	z->flushing = true;
	r = finish_flush(z, &io);
	*out_len = io.out_len;
	return r < 0 ? ZS_ERROR : ZS_OK;
}

enum zenc zstream_enc(const struct zstream *z)
{
	return z->enc;
}

/* ---- the pool -------------------------------------------------------- */

static int clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void zconf_default(struct zconf *c)
{
	c->gzip_level = 6;
	c->br_level = 4;
	c->zstd_level = 3;
	c->max_streams = 64;
}

void zpool_init(struct zpool *p, const struct zconf *c)
{
	memset(p, 0, sizeof(*p));
	if (c != NULL)
		p->conf = *c;
	else
		zconf_default(&p->conf);
	p->conf.gzip_level = clamp(p->conf.gzip_level, 1, 9);
	p->conf.br_level = clamp(p->conf.br_level, BROTLI_MIN_QUALITY, BROTLI_MAX_QUALITY);
	p->conf.zstd_level = clamp(p->conf.zstd_level, 1, 19);
}

/* zs_new creates a context for coding e with the pool's settings (a Brotli
 * context's state is created later, by zs_start). */
static struct zstream *zs_new(const struct zpool *p, enum zenc e)
{
	struct zstream *z = calloc(1, sizeof(*z));
	bool ok = true;

	if (z == NULL)
		return NULL;
	z->enc = e;
	if (e == ZENC_GZIP) {
		ok = deflateInit2(&z->u.gz, p->conf.gzip_level, Z_DEFLATED, 15 + 16, 8,
		                  Z_DEFAULT_STRATEGY) == Z_OK;
	} else if (e == ZENC_ZSTD) {
		z->u.zs = ZSTD_createCCtx();
		ok = z->u.zs != NULL &&
		     !ZSTD_isError(ZSTD_CCtx_setParameter(z->u.zs, ZSTD_c_compressionLevel,
		                                          p->conf.zstd_level)) &&
		     !ZSTD_isError(ZSTD_CCtx_setParameter(z->u.zs, ZSTD_c_checksumFlag, 0)) &&
		     /* Every level's own window (size unknown) is 2^19 or more. */
		     !ZSTD_isError(
		             ZSTD_CCtx_setParameter(z->u.zs, ZSTD_c_windowLog, ZPOOL_ZSTD_WLOG));
		if (!ok)
			ZSTD_freeCCtx(z->u.zs);
	}
	if (!ok) {
		free(z);
		return NULL;
	}
	return z;
}

static void zs_free(struct zstream *z)
{
	if (z->enc == ZENC_GZIP)
		deflateEnd(&z->u.gz);
	else if (z->enc == ZENC_BR && z->u.br != NULL)
		BrotliEncoderDestroyInstance(z->u.br);
	else if (z->enc == ZENC_ZSTD)
		ZSTD_freeCCtx(z->u.zs);
	free(z);
}

/* zs_start readies a context for a new stream; false if that failed. */
static bool zs_start(const struct zpool *p, struct zstream *z)
{
	BrotliEncoderState *b;

	z->flushing = z->finishing = z->done = false;
	if (z->enc == ZENC_GZIP)
		return deflateReset(&z->u.gz) == Z_OK;
	if (z->enc == ZENC_ZSTD)
		return !ZSTD_isError(ZSTD_CCtx_reset(z->u.zs, ZSTD_reset_session_only));
	b = BrotliEncoderCreateInstance(NULL, NULL, NULL);
	if (b == NULL)
		return false;
	z->u.br = b;
	return BrotliEncoderSetParameter(b, BROTLI_PARAM_QUALITY, (uint32_t)p->conf.br_level) &&
	       BrotliEncoderSetParameter(b, BROTLI_PARAM_LGWIN, ZPOOL_BR_LGWIN) &&
	       BrotliEncoderSetParameter(b, BROTLI_PARAM_MODE, BROTLI_MODE_TEXT);
}

/* evict frees one idle context (the pool is full and has none of the
 * coding wanted), taking from the coding with the most idle ones. */
static void evict(struct zpool *p)
{
	int e = ZENC_GZIP;
	struct zstream *z;

	for (int k = ZENC_GZIP; k < ZENC_COUNT; k++)
		if (p->nidle[k] > p->nidle[e])
			e = k;
	z = p->idle[e];
	RLB_ASSERT(z != NULL);
	p->idle[e] = z->next;
	p->nidle[e]--;
	p->alive--;
	zs_free(z);
}

struct zstream *zstream_get(struct zpool *p, enum zenc e)
{
	struct zstream *z;

	if (e <= ZENC_IDENTITY || e >= ZENC_COUNT || p->in_use >= p->conf.max_streams)
		return NULL;
	z = p->idle[e];
	if (z != NULL) {
		p->idle[e] = z->next;
		p->nidle[e]--;
	} else {
		if (p->alive >= p->conf.max_streams)
			evict(p);
		z = zs_new(p, e);
		if (z == NULL)
			return NULL;
		p->alive++;
	}
	z->next = NULL;
	if (!zs_start(p, z)) {
		zs_free(z);
		p->alive--;
		return NULL;
	}
	if (++p->in_use > p->peak)
		p->peak = p->in_use;
	return z;
}

void zstream_put(struct zpool *p, struct zstream *z)
{
	if (z == NULL)
		return;
	RLB_ASSERT(p->in_use > 0);
	RLB_ASSERT(z->enc > ZENC_IDENTITY && z->enc < ZENC_COUNT);
	if (z->enc == ZENC_BR && z->u.br != NULL) {
		BrotliEncoderDestroyInstance(z->u.br);
		z->u.br = NULL;
	}
	z->next = p->idle[z->enc];
	p->idle[z->enc] = z;
	p->nidle[z->enc]++;
	p->in_use--;
}

void zpool_destroy(struct zpool *p)
{
	RLB_ASSERT(p->in_use == 0);
	for (int e = 0; e < ZENC_COUNT; e++) {
		while (p->idle[e] != NULL) {
			struct zstream *z = p->idle[e];

			p->idle[e] = z->next;
			zs_free(z);
		}
		p->nidle[e] = 0;
	}
	p->alive = 0;
}

uint32_t zpool_in_use(const struct zpool *p)
{
	return p->in_use;
}

uint32_t zpool_peak(const struct zpool *p)
{
	return p->peak;
}
