/* core/buf.c — provided-buffer queues and head buffers (see buf.h). */
#include "core/buf.h"

#include "core/common.h"

#include <string.h>
#include <sys/mman.h>

int bufpool_init(struct bufpool *p, char *base, uint32_t count, uint32_t buf_size,
                 bufpool_recycle_fn recycle, void *ctx)
{
	RLB_ASSERT(count > 0);
	RLB_ASSERT(count < BUF_NONE);
	memset(p, 0, sizeof(*p));
	p->base = base;
	p->count = count;
	p->buf_size = buf_size;
	p->recycle = recycle;
	p->ctx = ctx;
	p->start = calloc(count, sizeof(*p->start)); /* boot-time */
	p->end = calloc(count, sizeof(*p->end));     /* boot-time */
	p->next = calloc(count, sizeof(*p->next));   /* boot-time */
	if (p->start == NULL || p->end == NULL || p->next == NULL) {
		bufpool_cleanup(p);
		return 0;
	}
	return 1;
}

void bufpool_cleanup(struct bufpool *p)
{
	free(p->start);
	p->start = NULL;
	free(p->end);
	p->end = NULL;
	free(p->next);
	p->next = NULL;
}

void bufq_init(struct bufq *q)
{
	q->head = BUF_NONE;
	q->tail = BUF_NONE;
	q->nbufs = 0;
	q->bytes = 0;
}

static void release(struct bufpool *p, uint16_t bid)
{
	RLB_ASSERT(p->held > 0);
	p->held--;
	p->recycle(p, bid);
}

void bufq_push(struct bufq *q, struct bufpool *p, uint16_t bid, uint32_t len)
{
	RLB_ASSERT(bid < p->count);
	RLB_ASSERT(len <= p->buf_size);
	p->held++;
	if (q->tail != BUF_NONE && p->buf_size - p->end[q->tail] >= len) {
		/* A small arrival joins the previous buffer: the copy is short
		 * and its own buffer goes straight back to the kernel. */
		memcpy(bufpool_data(p, q->tail) + p->end[q->tail], bufpool_data(p, bid), len);
		p->end[q->tail] += len;
		q->bytes += len;
		release(p, bid);
		return;
	}
	p->start[bid] = 0;
	p->end[bid] = len;
	p->next[bid] = BUF_NONE;
	if (q->tail == BUF_NONE)
		q->head = bid;
	else
		p->next[q->tail] = bid;
	q->tail = bid;
	q->nbufs++;
	q->bytes += len;
}

char *bufq_front(const struct bufq *q, const struct bufpool *p, size_t *out_len)
{
	if (q->head == BUF_NONE) {
		*out_len = 0;
		return NULL;
	}
	*out_len = p->end[q->head] - p->start[q->head];
	return bufpool_data(p, q->head) + p->start[q->head];
}

/* pop_head unlinks and recycles the (empty) first buffer. */
static void pop_head(struct bufq *q, struct bufpool *p)
{
	uint16_t bid = q->head;

	RLB_ASSERT(bid != BUF_NONE);
	q->head = p->next[bid];
	if (q->head == BUF_NONE)
		q->tail = BUF_NONE;
	q->nbufs--;
	release(p, bid);
}

size_t bufq_linearize(struct bufq *q, struct bufpool *p)
{
	uint16_t h = q->head;
	char *dst;

	if (h == BUF_NONE)
		return 0;
	dst = bufpool_data(p, h);
	if (p->start[h] > 0) {
		memmove(dst, dst + p->start[h], p->end[h] - p->start[h]);
		p->end[h] -= p->start[h];
		p->start[h] = 0;
	}
	while (p->next[h] != BUF_NONE && p->end[h] < p->buf_size) {
		uint16_t n = p->next[h];
		uint32_t avail = p->end[n] - p->start[n];
		uint32_t room = p->buf_size - p->end[h];
		uint32_t take = avail < room ? avail : room;

		memcpy(dst + p->end[h], bufpool_data(p, n) + p->start[n], take);
		p->end[h] += take;
		p->start[n] += take;
		if (p->start[n] == p->end[n]) {
			p->next[h] = p->next[n];
			if (q->tail == n)
				q->tail = h;
			q->nbufs--;
			release(p, n);
		}
	}
	return p->end[h];
}

void bufq_consume(struct bufq *q, struct bufpool *p, uint64_t n)
{
	RLB_ASSERT(n <= q->bytes);
	q->bytes -= n;
	while (n > 0) {
		uint16_t h = q->head;
		uint32_t avail = p->end[h] - p->start[h];

		if (n < avail) {
			p->start[h] += (uint32_t)n;
			return;
		}
		n -= avail;
		pop_head(q, p);
	}
	/* An emptied front buffer is recycled at once rather than kept for
	 * appends: a recycled buffer serves any connection. */
	if (q->head != BUF_NONE && p->start[q->head] == p->end[q->head])
		pop_head(q, p);
}

int bufq_iov(const struct bufq *q, const struct bufpool *p, uint64_t skip, uint64_t max_bytes,
             struct iovec *iov, int max_iov, uint64_t *out_bytes)
{
	int n = 0;
	uint64_t total = 0;

	for (uint16_t b = q->head; b != BUF_NONE && n < max_iov && total < max_bytes;
	     b = p->next[b]) {
		uint64_t avail = p->end[b] - p->start[b];
		uint64_t off = p->start[b];

		if (skip >= avail) {
			skip -= avail;
			continue;
		}
		off += skip;
		avail -= skip;
		skip = 0;
		if (avail > max_bytes - total)
			avail = max_bytes - total;
		if (avail == 0)
			continue;
		iov[n].iov_base = bufpool_data(p, b) + off;
		iov[n].iov_len = avail;
		n++;
		total += avail;
	}
	*out_bytes = total;
	return n;
}

void bufq_clear(struct bufq *q, struct bufpool *p)
{
	while (q->head != BUF_NONE)
		pop_head(q, p);
	q->bytes = 0;
}

char *bufq_run(const struct bufq *q, const struct bufpool *p, uint64_t skip, size_t *out_len)
{
	for (uint16_t b = q->head; b != BUF_NONE; b = p->next[b]) {
		uint64_t avail = p->end[b] - p->start[b];

		if (skip < avail) {
			*out_len = avail - skip;
			return bufpool_data(p, b) + p->start[b] + skip;
		}
		skip -= avail;
	}
	*out_len = 0;
	return NULL;
}

void bufq_cut(struct bufq *q, struct bufpool *p, uint64_t skip, size_t len)
{
	for (uint16_t b = q->head; b != BUF_NONE; b = p->next[b]) {
		uint64_t avail = p->end[b] - p->start[b];
		char *base;

		if (skip >= avail) {
			skip -= avail;
			continue;
		}
		RLB_ASSERT(skip + len <= avail);
		base = bufpool_data(p, b) + p->start[b];
		memmove(base + skip, base + skip + len, avail - skip - len);
		p->end[b] -= (uint32_t)len;
		q->bytes -= len;
		return;
	}
	RLB_ASSERT(len == 0);
}

char *bufq_space(const struct bufq *q, const struct bufpool *p, size_t *out_len)
{
	if (q->tail == BUF_NONE || p->end[q->tail] == p->buf_size) {
		*out_len = 0;
		return NULL;
	}
	*out_len = p->buf_size - p->end[q->tail];
	return bufpool_data(p, q->tail) + p->end[q->tail];
}

void bufq_commit(struct bufq *q, struct bufpool *p, size_t n)
{
	RLB_ASSERT(q->tail != BUF_NONE);
	RLB_ASSERT(n <= p->buf_size - p->end[q->tail]);
	p->end[q->tail] += (uint32_t)n;
	q->bytes += n;
}

static void mempool_recycle(struct bufpool *p, uint16_t bid)
{
	struct mempool *m = p->ctx;

	RLB_ASSERT(m->nfree < p->count);
	m->free[m->nfree++] = bid;
	m->freed = true;
}

int mempool_init(struct mempool *m, uint32_t count, uint32_t size)
{
	void *base;

	memset(m, 0, sizeof(*m));
	RLB_ASSERT(count > 0 && count < BUF_NONE);
	base = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
	            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return 0;
	m->free = calloc(count, sizeof(*m->free)); /* boot-time */
	if (m->free == NULL || !bufpool_init(&m->pool, base, count, size, mempool_recycle, m)) {
		munmap(base, (size_t)count * size);
		free(m->free);
		m->free = NULL;
		return 0;
	}
	for (uint32_t i = 0; i < count; i++)
		m->free[i] = (uint16_t)(count - 1 - i);
	m->nfree = count;
	return 1;
}

void mempool_cleanup(struct mempool *m)
{
	if (m->pool.base != NULL)
		munmap(m->pool.base, (size_t)m->pool.count * m->pool.buf_size);
	bufpool_cleanup(&m->pool);
	m->pool.base = NULL;
	free(m->free);
	m->free = NULL;
	m->nfree = 0;
}

uint16_t mempool_get(struct mempool *m)
{
	if (m->nfree == 0)
		return BUF_NONE;
	return m->free[--m->nfree];
}

int hpool_init(struct hpool *h, uint32_t count, uint32_t size)
{
	void *m;

	memset(h, 0, sizeof(*h));
	m = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return 0;
	h->base = m;
	h->size = size;
	h->count = count;
	h->free = calloc(count, sizeof(*h->free)); /* boot-time */
	if (h->free == NULL) {
		hpool_cleanup(h);
		return 0;
	}
	/* Lowest index on top, so the first heads reuse the same pages. */
	for (uint32_t i = 0; i < count; i++)
		h->free[i] = count - 1 - i;
	h->nfree = count;
	return 1;
}

void hpool_cleanup(struct hpool *h)
{
	if (h->base != NULL)
		munmap(h->base, (size_t)h->count * h->size);
	h->base = NULL;
	free(h->free);
	h->free = NULL;
	h->nfree = 0;
}

int32_t hpool_get(struct hpool *h)
{
	if (h->nfree == 0)
		return -1;
	return (int32_t)h->free[--h->nfree];
}

void hpool_put(struct hpool *h, uint32_t idx)
{
	RLB_ASSERT(idx < h->count);
	RLB_ASSERT(h->nfree < h->count);
	h->free[h->nfree++] = idx;
}
