/* core/compressing.c — compression on the response path (compressing.h). */
#include "core/compressing.h"

#include "core/caching.h"
#include "core/compress.h"
#include "core/log.h"
#include "core/proxy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ZX_TYPES_MAX 64
#define ZX_OUT       16384 /* compressed bytes per step (one chunk) */
#define ZX_FRAME     16    /* room for "%x\r\n" before a chunk and "\r\n" after */

static bool enabled;
static uint8_t prefs[ZENC_COUNT];
static size_t nprefs;
static char types_buf[2 * CONFIG_PATH_MAX];
static const char *types[ZX_TYPES_MAX];
static size_t ntypes;
static uint64_t min_size;
static struct zconf zconf;

/* The weak ETag written into a rewritten head lives until the head is
 * written (the same call); one per shard thread. */
static __thread char weak_etag[256];

void compressing_boot(const struct config *cfg)
{
	const struct config_compression *z = &cfg->compression;

	enabled = z->enabled;
	nprefs = ntypes = 0;
	for (const char *e = z->encodings; *e != '\0' && nprefs < ZENC_COUNT;) {
		size_t len = strcspn(e, ",");
		int k = zenc_parse(e, len);

		if (k > 0)
			prefs[nprefs++] = (uint8_t)k;
		e += len + (e[len] == ',');
	}
	snprintf(types_buf, sizeof(types_buf), "%s", z->types);
	for (char *save = NULL, *t = strtok_r(types_buf, ",", &save);
	     t != NULL && ntypes < ZX_TYPES_MAX; t = strtok_r(NULL, ",", &save))
		types[ntypes++] = t;
	min_size = z->min_size;
	zconf_default(&zconf);
	zconf.gzip_level = (int)z->gzip_level;
	zconf.br_level = (int)z->brotli_level;
	zconf.zstd_level = (int)z->zstd_level;
	zconf.max_streams = z->max_streams;
}

void zx_shard_init(struct shard *s)
{
	zpool_init(&s->zpool, &zconf);
}

void zx_shard_free(struct shard *s)
{
	zpool_destroy(&s->zpool);
}

static const struct h1_header *find(const struct h1_msg *m, const char *name)
{
	for (size_t i = 0; i < m->num_headers; i++)
		if (h1_str_ieq(m->headers[i].name, name))
			return &m->headers[i];
	return NULL;
}

void zx_request(struct shard *s, struct conn *c, const struct h1_msg *m)
{
	const struct h1_header *ae;

	(void)s;
	c->zwant = ZENC_IDENTITY;
	if (!enabled || h1_str_ieq(m->method, "HEAD"))
		return;
	ae = find(m, "Accept-Encoding");
	if (ae != NULL)
		c->zwant = (uint8_t)zenc_negotiate(ae->value.ptr, ae->value.len, prefs, nprefs);
}

/* has_token says whether a list field of `m` holds `tok`. */
static bool has_token(const struct h1_msg *m, const char *name, const char *tok)
{
	size_t tl = strlen(tok);

	for (size_t i = 0; i < m->num_headers; i++) {
		const struct h1_str v = m->headers[i].value;

		if (!h1_str_ieq(m->headers[i].name, name))
			continue;
		for (size_t p = 0; p + tl <= v.len; p++)
			if (strncasecmp(v.ptr + p, tok, tl) == 0 &&
			    (p == 0 || v.ptr[p - 1] == ',' || v.ptr[p - 1] == ' ') &&
			    (p + tl == v.len || v.ptr[p + tl] == ',' || v.ptr[p + tl] == ' ' ||
			     v.ptr[p + tl] == '='))
				return true;
	}
	return false;
}

bool zx_eligible(struct shard *s, const struct conn *c, const struct h1_msg *m)
{
	const struct h1_header *ct = find(m, "Content-Type"), *ce = find(m, "Content-Encoding");

	(void)s;
	if (!enabled || c->head_req)
		return false;
	if (m->status != 200 && m->status != 201 && m->status != 203 && m->status != 404 &&
	    m->status != 410)
		return false;
	if (m->body == H1_BODY_LENGTH ? m->content_length < min_size || m->content_length == 0
	                              : m->body != H1_BODY_CHUNKED)
		return false; /* too small, empty, or close-delimited */
	if (ce != NULL && !h1_str_ieq(ce->value, "identity"))
		return false; /* already encoded */
	if (find(m, "Content-Range") != NULL || has_token(m, "Cache-Control", "no-transform"))
		return false; /* RFC 9110 §14.4, RFC 9111 §5.2.2.6 */
	if (ct == NULL || ztype_precompressed(ct->value.ptr, ct->value.len))
		return false;
	return ztype_match(ct->value.ptr, ct->value.len, types, ntypes);
}

/* rewrite_head drops the fields compression invalidates and adds those it
 * needs: Content-Encoding, Vary: Accept-Encoding, the ETag made weak (the
 * representation is no longer byte-identical: RFC 9110 §8.8.1). */
static void rewrite_head(struct conn *c, struct h1_msg *m)
{
	struct h1_str etag = {NULL, 0};
	size_t n = 0;

	for (size_t i = 0; i < m->num_headers; i++) {
		const struct h1_header *h = &m->headers[i];

		if (h1_str_ieq(h->name, "ETag")) {
			etag = h->value;
			continue;
		}
		if (h1_str_ieq(h->name, "Content-Length") || h1_str_ieq(h->name, "Accept-Ranges") ||
		    h1_str_ieq(h->name, "Content-Encoding"))
			continue;
		m->headers[n++] = *h;
	}
	m->num_headers = n;
	/* zx_response checked there is room for the three added fields */
	if (m->num_headers < m->headers_cap)
		m->headers[m->num_headers++] =
		        (struct h1_header){{"Content-Encoding", 16},
		                           {zenc_names[c->zwant], strlen(zenc_names[c->zwant])}};
	if (!has_token(m, "Vary", "accept-encoding") && !has_token(m, "Vary", "*") &&
	    m->num_headers < m->headers_cap)
		m->headers[m->num_headers++] =
		        (struct h1_header){{"Vary", 4}, {"Accept-Encoding", 15}};
	if (etag.len > 0 && m->num_headers < m->headers_cap) {
		int k = etag.len >= 2 && etag.ptr[0] == 'W' && etag.ptr[1] == '/'
		                ? snprintf(weak_etag, sizeof(weak_etag), "%.*s", (int)etag.len,
		                           etag.ptr)
		                : snprintf(weak_etag, sizeof(weak_etag), "W/%.*s", (int)etag.len,
		                           etag.ptr);

		if (k > 0 && (size_t)k < sizeof(weak_etag))
			m->headers[m->num_headers++] =
			        (struct h1_header){{"ETag", 4}, {weak_etag, (size_t)k}};
	}
	m->body = H1_BODY_CHUNKED;
	m->content_length = 0;
}

void zx_restamp(struct h1_msg *m, uint8_t enc)
{
	bool vary = has_token(m, "Vary", "accept-encoding") || has_token(m, "Vary", "*");
	bool ce = false;

	for (size_t i = 0; i < m->num_headers; i++) {
		struct h1_header *h = &m->headers[i];

		if (h1_str_ieq(h->name, "Content-Encoding")) {
			h->value = (struct h1_str){zenc_names[enc], strlen(zenc_names[enc])};
			ce = true;
		} else if (h1_str_ieq(h->name, "ETag") &&
		           !(h->value.len >= 2 && h->value.ptr[0] == 'W' &&
		             h->value.ptr[1] == '/')) {
			int k = snprintf(weak_etag, sizeof(weak_etag), "W/%.*s", (int)h->value.len,
			                 h->value.ptr);

			if (k > 0 && (size_t)k < sizeof(weak_etag))
				h->value = (struct h1_str){weak_etag, (size_t)k};
		}
	}
	if (!ce && m->num_headers < m->headers_cap)
		m->headers[m->num_headers++] = (struct h1_header){
		        {"Content-Encoding", 16}, {zenc_names[enc], strlen(zenc_names[enc])}};
	if (!vary && m->num_headers < m->headers_cap)
		m->headers[m->num_headers++] =
		        (struct h1_header){{"Vary", 4}, {"Accept-Encoding", 15}};
}

void zx_response(struct shard *s, struct conn *c, struct h1_msg *m)
{
	struct zstream *z;

	if (c->zwant == ZENC_IDENTITY || !zx_eligible(s, c, m))
		return;
	if (m->num_headers + 3 > m->headers_cap)
		return; /* no room for the fields compression adds: sent plain */
	z = zstream_get(&s->zpool, (enum zenc)c->zwant);
	if (z == NULL)
		return; /* every encoder of this shard is busy: send it as it is */
	c->zs = z;
	c->zon = true;
	c->zraw = 0;
	c->zfinish = c->zended = false;
	c->zchunk = !c->http10 && !c->h2_stream;
	rewrite_head(c, m);
}

/* zq_append queues `len` compressed bytes at `p` (with ZX_FRAME bytes of
 * room before and after it for the chunk framing). The caller checked that
 * two free TLS buffers exist, enough for one step. */
static void zq_append(struct shard *s, struct conn *c, char *p, size_t len)
{
	struct mempool *mp = &s->tls_pool;
	size_t done = 0;

	if (c->zchunk) {
		char pre[ZX_FRAME];
		int k = snprintf(pre, sizeof(pre), "%zx\r\n", len);

		p -= k;
		memcpy(p, pre, (size_t)k);
		memcpy(p + k + len, "\r\n", 2);
		len += (size_t)k + 2;
	}
	while (done < len) {
		size_t space;
		char *at = bufq_space(&c->zq, &mp->pool, &space);

		if (at == NULL) {
			uint16_t bid = mempool_get(mp);

			RLB_ASSERT(bid != BUF_NONE);
			at = bufpool_data(&mp->pool, bid);
			space = mp->pool.buf_size < len - done ? mp->pool.buf_size : len - done;
			memcpy(at, p + done, space);
			bufq_push(&c->zq, &mp->pool, bid, (uint32_t)space);
		} else {
			if (space > len - done)
				space = len - done;
			memcpy(at, p + done, space);
			bufq_commit(&c->zq, &mp->pool, space);
		}
		done += space;
	}
	c->resp_fwd += len;
}

bool zx_step(struct shard *s, struct conn *c)
{
	const uint64_t max = s->cfg->buffers.conn_bytes_max;
	static __thread char out[ZX_FRAME + ZX_OUT + ZX_FRAME];

	while (c->zon && !c->zended && c->zq.bytes < max) {
		size_t len = 0, used = 0, olen = 0;
		const char *p = NULL;
		enum zs_result r;

		if (c->zraw == 0 && !c->zfinish)
			break;
		if (s->tls_pool.nfree < (ZX_OUT + 2 * ZX_FRAME) / s->tls_pool.pool.buf_size + 2) {
			conn_tls_starve(s, c); /* resumed when TLS buffers come back */
			break;
		}
		if (c->zraw > 0) {
			p = bufq_front(&c->rin, conn_rinpool(s, c), &len);
			if (len > c->zraw)
				len = (size_t)c->zraw;
		}
		r = zstream_run(c->zs, p, len, &used, out + ZX_FRAME, ZX_OUT, &olen,
		                c->zfinish && len == c->zraw);
		if (r == ZS_ERROR) {
			rlb_log(LOG_WARN, "compression failed: the response is cut");
			caching_drop_store(s, c); /* never store a cut body */
			c->resp_aborted = c->close_after = true;
			c->zended = true;
			break;
		}
		if (used > 0) {
			bufq_consume(&c->rin, conn_rinpool(s, c), used);
			c->zraw -= used;
		}
		if (olen > 0) {
			caching_tee_mem(s, c, out + ZX_FRAME, olen);
			zq_append(s, c, out + ZX_FRAME, olen);
		}
		if (r == ZS_END) {
			c->zended = true;
			if (c->zchunk) {
				memcpy(out, "0\r\n\r\n", 5);
				c->zchunk = false; /* the terminator goes out as it is */
				zq_append(s, c, out, 5);
			}
			zstream_put(&s->zpool, c->zs);
			c->zs = NULL;
			break;
		}
		if (used == 0 && olen == 0)
			break;
	}
	return c->zon && c->zended;
}

void zx_end(struct shard *s, struct conn *c)
{
	if (c->zs != NULL)
		zstream_put(&s->zpool, c->zs);
	c->zs = NULL;
	bufq_clear(&c->zq, &s->tls_pool.pool);
	c->zon = c->zfinish = c->zended = c->zchunk = false;
	c->zraw = 0;
}
