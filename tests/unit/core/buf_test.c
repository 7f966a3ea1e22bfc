/* tests/unit/core/buf_test.c — unit tests for core/buf.c.
 *
 * Goal: a `struct bufq` hands out exactly the bytes pushed into it, in
 * order, through every accessor (front, iov, run, linearize), drops exactly
 * the bytes consumed or cut, and gives every buffer back to the pool exactly
 * once, as soon as it is empty — so `held` returns to 0 and no buffer is
 * recycled twice or leaked. `struct hpool` is LIFO and refuses when empty.
 *
 * Method: the module is #included so its statics are reachable. A fake
 * "kernel" owns a calloc'ed region of small buffers: it hands out free
 * buffer ids, writes the arriving bytes at the start of the buffer (as a
 * multishot recv does) and the pool's recycle callback gives them back,
 * failing the test on a double recycle. Directed tests check each rule; a
 * randomized model test (fixed seed, bounded ops) compares the queue byte
 * for byte with a plain reference array after every operation.
 */
#include "core/buf.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define NBUFS 16
#define BSIZE 64

/* The fake kernel: which buffers it owns, and the recycle log. */
struct fake {
	char *region;
	struct bufpool pool;
	bool owned[NBUFS * 8]; /* by the kernel (free for a recv) */
	uint16_t log[4096];    /* recycled ids, in order */
	uint32_t num_log;
	uint32_t count;
};

static void on_recycle(struct bufpool *p, uint16_t bid)
{
	struct fake *f = p->ctx;

	assert_true(bid < f->count);
	assert_false(f->owned[bid]); /* a double recycle */
	f->owned[bid] = true;
	if (f->num_log < RLB_ARRAY_LEN(f->log))
		f->log[f->num_log++] = bid;
}

static struct fake *fake_new(uint32_t count, uint32_t size)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_true(count <= RLB_ARRAY_LEN(f->owned));
	f->count = count;
	f->region = calloc(count, size);
	assert_non_null(f->region);
	assert_int_equal(bufpool_init(&f->pool, f->region, count, size, on_recycle, f), 1);
	for (uint32_t i = 0; i < count; i++)
		f->owned[i] = true;
	return f;
}

static void fake_free(struct fake *f)
{
	/* Every buffer is back with the kernel. */
	assert_int_equal(f->pool.held, 0);
	for (uint32_t i = 0; i < f->count; i++)
		assert_true(f->owned[i]);
	bufpool_cleanup(&f->pool);
	bufpool_cleanup(&f->pool); /* safe twice */
	free(f->region);
	free(f);
}

/* fake_recv takes buffer `bid` from the kernel and writes `len` bytes of
 * `data` at its start; returns bid for bufq_push. */
static uint16_t fake_recv_bid(struct fake *f, uint16_t bid, const void *data, uint32_t len)
{
	assert_true(f->owned[bid]);
	assert_true(len <= f->pool.buf_size);
	f->owned[bid] = false;
	memcpy(bufpool_data(&f->pool, bid), data, len);
	return bid;
}

/* fake_recv picks the lowest free buffer. */
static uint16_t fake_recv(struct fake *f, const void *data, uint32_t len)
{
	for (uint16_t b = 0; b < f->count; b++)
		if (f->owned[b])
			return fake_recv_bid(f, b, data, len);
	fail_msg("fake kernel: out of buffers");
	return BUF_NONE;
}

static void push(struct fake *f, struct bufq *q, const void *data, uint32_t len)
{
	bufq_push(q, &f->pool, fake_recv(f, data, len), len);
}

/* fill writes a recognisable pattern: byte i of the stream is (seed + i). */
static void pattern(char *out, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (char)(seed + i);
}

/* queue_bytes copies the whole queue (via bufq_iov) into out. */
static size_t queue_bytes(const struct bufq *q, const struct bufpool *p, char *out, size_t cap)
{
	struct iovec iov[NBUFS * 8];
	uint64_t got = 0;
	int n = bufq_iov(q, p, 0, UINT64_MAX, iov, (int)RLB_ARRAY_LEN(iov), &got);
	size_t off = 0;

	for (int i = 0; i < n; i++) {
		assert_true(off + iov[i].iov_len <= cap);
		memcpy(out + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	assert_int_equal(off, got);
	return off;
}

/* check_chain verifies the queue's links against its counters. */
static void check_chain(const struct bufq *q, const struct bufpool *p)
{
	uint64_t bytes = 0;
	uint16_t n = 0, last = BUF_NONE;

	for (uint16_t b = q->head; b != BUF_NONE; b = p->next[b]) {
		assert_true(b < p->count);
		assert_true(p->start[b] <= p->end[b]);
		assert_true(p->end[b] <= p->buf_size);
		bytes += p->end[b] - p->start[b];
		last = b;
		n++;
		assert_true(n <= p->count);
	}
	assert_int_equal(last, q->tail);
	assert_int_equal(n, q->nbufs);
	assert_int_equal(bytes, q->bytes);
}

static void test_init_empty(void **state)
{
	(void)state;
	struct fake *f = fake_new(NBUFS, BSIZE);
	struct bufq q;
	size_t len = 99;
	struct iovec iov[2];
	uint64_t got = 99;

	bufq_init(&q);
	assert_int_equal(q.head, BUF_NONE);
	assert_int_equal(q.tail, BUF_NONE);
	assert_null(bufq_front(&q, &f->pool, &len));
	assert_int_equal(len, 0);
	assert_int_equal(bufq_iov(&q, &f->pool, 0, 100, iov, 2, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(bufq_linearize(&q, &f->pool), 0);
	assert_null(bufq_run(&q, &f->pool, 0, &len));
	assert_int_equal(len, 0);
	bufq_consume(&q, &f->pool, 0);
	bufq_clear(&q, &f->pool);
	check_chain(&q, &f->pool);
	assert_int_equal(f->num_log, 0);
	fake_free(f);
}

/* A zeroed pool is safe to clean up. */
static void test_pool_cleanup_zeroed(void **state)
{
	(void)state;
	struct bufpool p;
	struct hpool h;

	memset(&p, 0, sizeof(p));
	bufpool_cleanup(&p);
	memset(&h, 0, sizeof(h));
	hpool_cleanup(&h);
}

/* A push appends; a push that fits in the tail's free space is copied
 * there and its own buffer recycled at once; one that does not fit is
 * linked as a new buffer. */
static void test_push_append_and_copy(void **state)
{
	(void)state;
	struct fake *f = fake_new(NBUFS, BSIZE);
	struct bufq q;
	char data[BSIZE];
	char out[4 * BSIZE];
	size_t len;
	char *front;

	bufq_init(&q);
	pattern(data, sizeof(data), 0);
	/* First push: 10 bytes in buffer 0, linked. */
	push(f, &q, data, 10);
	assert_int_equal(q.head, 0);
	assert_int_equal(q.tail, 0);
	assert_int_equal(q.nbufs, 1);
	assert_int_equal(q.bytes, 10);
	assert_int_equal(f->pool.held, 1);
	assert_int_equal(f->num_log, 0);
	/* Second push, 20 bytes: fits in the 54 free bytes, so buffer 1 is
	 * copied into buffer 0 and recycled at once. */
	push(f, &q, data + 10, 20);
	assert_int_equal(q.nbufs, 1);
	assert_int_equal(q.bytes, 30);
	assert_int_equal(f->num_log, 1);
	assert_int_equal(f->log[0], 1);
	assert_int_equal(f->pool.held, 1);
	front = bufq_front(&q, &f->pool, &len);
	assert_ptr_equal(front, bufpool_data(&f->pool, 0));
	assert_int_equal(len, 30);
	assert_memory_equal(front, data, 30);
	/* Third push, exactly the 34 free bytes: still fits. */
	push(f, &q, data + 30, 34);
	assert_int_equal(q.nbufs, 1);
	assert_int_equal(q.bytes, 64);
	assert_int_equal(f->num_log, 2);
	assert_int_equal(f->log[1], 1);
	/* Fourth push: no room, linked as buffer 1. */
	pattern(data, sizeof(data), 64);
	push(f, &q, data, 5);
	assert_int_equal(q.nbufs, 2);
	assert_int_equal(q.tail, 1);
	assert_int_equal(q.bytes, 69);
	assert_int_equal(f->pool.held, 2);
	/* Fifth push fills buffer 1's 59 free bytes exactly; the sixth finds
	 * no room and is linked. */
	push(f, &q, data + 5, 59);
	assert_int_equal(q.nbufs, 2);
	push(f, &q, data + 5, 1);
	assert_int_equal(q.nbufs, 3);
	check_chain(&q, &f->pool);
	/* The front run is only the first buffer. */
	front = bufq_front(&q, &f->pool, &len);
	assert_int_equal(len, 64);
	{
		char want[4 * BSIZE];

		pattern(want, 128, 0);
		want[128] = (char)(64 + 5);
		assert_int_equal(queue_bytes(&q, &f->pool, out, sizeof(out)), 129);
		assert_memory_equal(out, want, 129);
	}
	bufq_clear(&q, &f->pool);
	assert_int_equal(q.bytes, 0);
	assert_int_equal(q.nbufs, 0);
	assert_int_equal(q.head, BUF_NONE);
	assert_int_equal(q.tail, BUF_NONE);
	fake_free(f);
}

/* Two queues share one pool; each push goes to its own queue's tail. */
static void test_two_queues(void **state)
{
	(void)state;
	struct fake *f = fake_new(NBUFS, BSIZE);
	struct bufq a, b;
	size_t len;
	char *p;

	bufq_init(&a);
	bufq_init(&b);
	push(f, &a, "aaaa", 4);
	push(f, &b, "bb", 2);
	push(f, &a, "AA", 2);
	push(f, &b, "BBB", 3);
	p = bufq_front(&a, &f->pool, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(p, "aaaaAA", 6);
	p = bufq_front(&b, &f->pool, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(p, "bbBBB", 5);
	assert_int_equal(f->pool.held, 2);
	bufq_clear(&a, &f->pool);
	bufq_clear(&b, &f->pool);
	fake_free(f);
}

/* build_chain pushes arrivals of the given lengths, each larger than the
 * previous buffer's free space so that all are linked; `all` receives the
 * stream's bytes. */
static void build_chain(struct fake *f, struct bufq *q, const uint32_t *lens, int num, char *all)
{
	size_t off = 0;

	bufq_init(q);
	for (int i = 0; i < num; i++) {
		pattern(all + off, lens[i], (unsigned)off);
		push(f, q, all + off, lens[i]);
		off += lens[i];
	}
	assert_int_equal(q->nbufs, num);
	assert_int_equal(q->bytes, off);
}

/* Consuming across buffer boundaries recycles each buffer the moment it is
 * empty and leaves partial buffers in place. */
static void test_consume_across_buffers(void **state)
{
	(void)state;
	struct fake *f = fake_new(NBUFS, BSIZE);
	struct bufq q;
	const uint32_t lens[4] = {40, 50, 60, 64};
	char all[4 * BSIZE], out[4 * BSIZE];
	size_t len;
	char *p;

	build_chain(f, &q, lens, 4, all); /* buffers 0,1,2,3 */
	assert_int_equal(f->pool.held, 4);
	/* Partial: 10 bytes of buffer 0. */
	bufq_consume(&q, &f->pool, 10);
	assert_int_equal(q.bytes, 204);
	assert_int_equal(f->num_log, 0);
	p = bufq_front(&q, &f->pool, &len);
	assert_int_equal(len, 30);
	assert_memory_equal(p, all + 10, 30);
	/* Exactly the rest of buffer 0: it is recycled. */
	bufq_consume(&q, &f->pool, 30);
	assert_int_equal(f->num_log, 1);
	assert_int_equal(f->log[0], 0);
	assert_int_equal(q.head, 1);
	assert_int_equal(q.nbufs, 3);
	/* Across two boundaries, ending inside buffer 3. */
	bufq_consume(&q, &f->pool, 50 + 60 + 1);
	assert_int_equal(f->num_log, 3);
	assert_int_equal(f->log[1], 1);
	assert_int_equal(f->log[2], 2);
	assert_int_equal(q.head, 3);
	assert_int_equal(q.nbufs, 1);
	assert_int_equal(f->pool.held, 1);
	p = bufq_front(&q, &f->pool, &len);
	assert_int_equal(len, 63);
	assert_memory_equal(p, all + 151, 63);
	assert_int_equal(queue_bytes(&q, &f->pool, out, sizeof(out)), 63);
	/* Everything: the queue is empty and the last buffer recycled. */
	bufq_consume(&q, &f->pool, 63);
	assert_int_equal(q.bytes, 0);
	assert_int_equal(q.head, BUF_NONE);
	assert_int_equal(q.tail, BUF_NONE);
	assert_int_equal(q.nbufs, 0);
	assert_int_equal(f->num_log, 4);
	assert_int_equal(f->log[3], 3);
	check_chain(&q, &f->pool);
	/* A push after the queue emptied starts a new chain. */
	push(f, &q, "x", 1);
	assert_int_equal(q.nbufs, 1);
	bufq_consume(&q, &f->pool, 1);
	fake_free(f);
}

/* bufq_iov: skip and max_bytes cut iovecs mid-buffer; max_iov limits the
 * count; the bytes are the queue's, in order. */
static void test_iov(void **state)
{
	(void)state;
	struct fake *f = fake_new(NBUFS, BSIZE);
	struct bufq q;
	const uint32_t lens[4] = {40, 50, 60, 64};
	char all[4 * BSIZE];
	struct iovec iov[8];
	uint64_t got;
	int n;

	build_chain(f, &q, lens, 4, all);
	bufq_consume(&q, &f->pool, 5); /* buffer 0 starts at 5: 35 bytes left */
	memmove(all, all + 5, 209);
	/* Whole queue. */
	n = bufq_iov(&q, &f->pool, 0, UINT64_MAX, iov, 8, &got);
	assert_int_equal(n, 4);
	assert_int_equal(got, 209);
	assert_int_equal(iov[0].iov_len, 35);
	assert_ptr_equal(iov[0].iov_base, bufpool_data(&f->pool, 0) + 5);
	assert_int_equal(iov[1].iov_len, 50);
	assert_int_equal(iov[2].iov_len, 60);
	assert_int_equal(iov[3].iov_len, 64);
	/* max_iov = 2. */
	n = bufq_iov(&q, &f->pool, 0, UINT64_MAX, iov, 2, &got);
	assert_int_equal(n, 2);
	assert_int_equal(got, 85);
	/* skip inside buffer 1, max_bytes ending inside buffer 2. */
	n = bufq_iov(&q, &f->pool, 35 + 20, 30 + 7, iov, 8, &got);
	assert_int_equal(n, 2);
	assert_int_equal(got, 37);
	assert_int_equal(iov[0].iov_len, 30);
	assert_memory_equal(iov[0].iov_base, all + 55, 30);
	assert_int_equal(iov[1].iov_len, 7);
	assert_ptr_equal(iov[1].iov_base, bufpool_data(&f->pool, 2));
	assert_memory_equal(iov[1].iov_base, all + 85, 7);
	/* skip exactly to a boundary. */
	n = bufq_iov(&q, &f->pool, 35, 1, iov, 8, &got);
	assert_int_equal(n, 1);
	assert_int_equal(got, 1);
	assert_ptr_equal(iov[0].iov_base, bufpool_data(&f->pool, 1));
	/* skip at or past the end, max_bytes 0, max_iov 0: nothing. */
	assert_int_equal(bufq_iov(&q, &f->pool, 209, 100, iov, 8, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(bufq_iov(&q, &f->pool, 500, 100, iov, 8, &got), 0);
	assert_int_equal(bufq_iov(&q, &f->pool, 0, 0, iov, 8, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(bufq_iov(&q, &f->pool, 0, 100, iov, 0, &got), 0);
	assert_int_equal(got, 0);
	/* Every (skip, max_bytes) pair gives the right bytes. */
	for (uint64_t skip = 0; skip <= 209; skip += 7) {
		for (uint64_t max = 0; max <= 220; max += 11) {
			char out[4 * BSIZE];
			uint64_t want = skip + max <= 209 ? max : 209 - skip;
			size_t off = 0;

			n = bufq_iov(&q, &f->pool, skip, max, iov, 8, &got);
			assert_int_equal(got, want);
			for (int i = 0; i < n; i++) {
				assert_true(iov[i].iov_len > 0);
				memcpy(out + off, iov[i].iov_base, iov[i].iov_len);
				off += iov[i].iov_len;
			}
			assert_int_equal(off, want);
			assert_memory_equal(out, all + skip, want);
		}
	}
	bufq_clear(&q, &f->pool);
	fake_free(f);
}

/* bufq_linearize: a head spanning 3 buffers becomes contiguous in the first
 * one, from its start; buffers it empties are recycled, a partly drained
 * one stays; the byte order is kept. */
static void test_linearize(void **state)
{
	(void)state;
	struct fake *f = fake_new(NBUFS, BSIZE);
	struct bufq q;
	char all[4 * BSIZE], out[4 * BSIZE];
	size_t len;
	char *p;

	/* Build 4 linked buffers holding 20, 15, 12 and 60 bytes: push
	 * 60-byte arrivals (each too big for the previous tail, so linked),
	 * then consume and cut to shorten the first three. */
	bufq_init(&q);
	pattern(all, sizeof(all), 0);
	push(f, &q, all, 60);       /* buf 0: bytes 0..59 */
	push(f, &q, all + 60, 60);  /* buf 1: 60..119 */
	push(f, &q, all + 120, 60); /* buf 2: 120..179 */
	push(f, &q, all + 180, 60); /* buf 3: 180..239 */
	assert_int_equal(q.nbufs, 4);
	bufq_consume(&q, &f->pool, 40); /* buf 0 holds 40..59 at start 40 */
	/* Make buffers 1 and 2 shorter (front-trimmed) by cutting bytes. */
	bufq_cut(&q, &f->pool, 20, 45); /* buf 1 keeps 105..119 (15 bytes) */
	bufq_cut(&q, &f->pool, 35, 48); /* buf 2 keeps 168..179 (12 bytes) */
	check_chain(&q, &f->pool);
	assert_int_equal(q.bytes, 20 + 15 + 12 + 60);
	{
		char want[4 * BSIZE];
		size_t k = 0;

		memcpy(want + k, all + 40, 20);
		k += 20;
		memcpy(want + k, all + 105, 15);
		k += 15;
		memcpy(want + k, all + 168, 12);
		k += 12;
		memcpy(want + k, all + 180, 60);
		k += 60;
		assert_int_equal(f->num_log, 0);
		/* 20 + 15 + 12 = 47, plus 17 of buffer 3 = 64 = BSIZE. */
		assert_int_equal(bufq_linearize(&q, &f->pool), 64);
		assert_int_equal(f->pool.start[0], 0);
		assert_int_equal(f->pool.end[0], 64);
		p = bufq_front(&q, &f->pool, &len);
		assert_ptr_equal(p, bufpool_data(&f->pool, 0));
		assert_int_equal(len, 64);
		assert_memory_equal(p, want, 64);
		/* Buffers 1 and 2 were emptied and recycled; 3 keeps 43 bytes. */
		assert_int_equal(f->num_log, 2);
		assert_int_equal(f->log[0], 1);
		assert_int_equal(f->log[1], 2);
		assert_int_equal(q.nbufs, 2);
		assert_int_equal(q.head, 0);
		assert_int_equal(q.tail, 3);
		assert_int_equal(f->pool.next[0], 3);
		assert_int_equal(f->pool.start[3], 17);
		assert_int_equal(q.bytes, k);
		check_chain(&q, &f->pool);
		assert_int_equal(queue_bytes(&q, &f->pool, out, sizeof(out)), k);
		assert_memory_equal(out, want, k);
		/* Linearizing a full head does nothing. */
		assert_int_equal(bufq_linearize(&q, &f->pool), 64);
		assert_int_equal(f->num_log, 2);
	}
	bufq_clear(&q, &f->pool);
	fake_free(f);
}

/* Linearizing a head that fits entirely leaves one buffer, the tail moves
 * to the head, and a later small push is appended in place. */
static void test_linearize_all_fits(void **state)
{
	(void)state;
	struct fake *f = fake_new(NBUFS, BSIZE);
	struct bufq q;
	char all[4 * BSIZE];
	size_t len;
	char *p;

	bufq_init(&q);
	pattern(all, sizeof(all), 3);
	push(f, &q, all, 60);
	push(f, &q, all + 60, 30); /* linked: only 4 bytes free in buf 0 */
	bufq_consume(&q, &f->pool, 50);
	assert_int_equal(bufq_linearize(&q, &f->pool), 40);
	assert_int_equal(q.nbufs, 1);
	assert_int_equal(q.head, 0);
	assert_int_equal(q.tail, 0);
	assert_int_equal(f->pool.held, 1);
	assert_int_equal(f->num_log, 1);
	assert_int_equal(f->log[0], 1);
	push(f, &q, all + 90, 5); /* copied after the 40 bytes */
	p = bufq_front(&q, &f->pool, &len);
	assert_int_equal(len, 45);
	assert_memory_equal(p, all + 50, 45);
	bufq_clear(&q, &f->pool);
	fake_free(f);
}

/* bufq_run finds the run holding byte `skip`; bufq_cut removes a range in a
 * run, shifting the rest of that buffer's bytes down and nothing else. */
static void test_run_and_cut(void **state)
{
	(void)state;
	struct fake *f = fake_new(NBUFS, BSIZE);
	struct bufq q;
	char all[4 * BSIZE], out[4 * BSIZE];
	size_t len;
	char *p, *b1;

	bufq_init(&q);
	pattern(all, sizeof(all), 0);
	push(f, &q, all, 60);       /* buf 0 */
	push(f, &q, all + 60, 60);  /* buf 1 */
	push(f, &q, all + 120, 30); /* buf 2 */
	bufq_consume(&q, &f->pool, 10);
	/* Runs. */
	p = bufq_run(&q, &f->pool, 0, &len);
	assert_ptr_equal(p, bufpool_data(&f->pool, 0) + 10);
	assert_int_equal(len, 50);
	p = bufq_run(&q, &f->pool, 49, &len);
	assert_int_equal(len, 1);
	assert_int_equal(*p, all[59]);
	p = bufq_run(&q, &f->pool, 50, &len);
	assert_ptr_equal(p, bufpool_data(&f->pool, 1));
	assert_int_equal(len, 60);
	p = bufq_run(&q, &f->pool, 139, &len);
	assert_int_equal(len, 1);
	assert_int_equal(*p, all[149]);
	assert_null(bufq_run(&q, &f->pool, 140, &len));
	assert_int_equal(len, 0);
	/* Cut 5 bytes at queue offset 60 (buffer 1, offset 10). */
	b1 = bufpool_data(&f->pool, 1);
	bufq_cut(&q, &f->pool, 60, 5);
	assert_int_equal(q.bytes, 135);
	assert_int_equal(f->pool.end[1], 55);
	assert_memory_equal(b1, all + 60, 10);
	assert_memory_equal(b1 + 10, all + 75, 45);
	p = bufq_run(&q, &f->pool, 50, &len);
	assert_int_equal(len, 55);
	/* Cut inside a consumed-into head buffer: start is respected. */
	bufq_cut(&q, &f->pool, 2, 3);
	assert_int_equal(q.bytes, 132);
	{
		char want[4 * BSIZE];
		size_t k = 0;

		memcpy(want + k, all + 10, 2);
		k += 2;
		memcpy(want + k, all + 15, 45);
		k += 45;
		memcpy(want + k, all + 60, 10);
		k += 10;
		memcpy(want + k, all + 75, 45);
		k += 45;
		memcpy(want + k, all + 120, 30);
		k += 30;
		assert_int_equal(queue_bytes(&q, &f->pool, out, sizeof(out)), k);
		assert_memory_equal(out, want, k);
	}
	/* Cut at the very end of the last run, and a zero-length cut. */
	bufq_cut(&q, &f->pool, 131, 1);
	bufq_cut(&q, &f->pool, 40, 0);
	assert_int_equal(q.bytes, 131);
	check_chain(&q, &f->pool);
	/* A later push lands after the shortened tail. */
	push(f, &q, "Z", 1);
	assert_int_equal(q.nbufs, 3);
	p = bufq_run(&q, &f->pool, 130, &len);
	assert_int_equal(len, 2);
	assert_int_equal(p[1], 'Z');
	assert_int_equal(f->pool.held, 3);
	bufq_clear(&q, &f->pool);
	assert_int_equal(f->pool.held, 0);
	fake_free(f);
}

/* bufq_cut of a whole buffer's bytes leaves an empty buffer in the chain;
 * the accessors skip it and consume still recycles it. (Chunk framing can
 * fill a whole recv.) */
static void test_cut_whole_buffer(void **state)
{
	(void)state;
	struct fake *f = fake_new(NBUFS, BSIZE);
	struct bufq q;
	char all[4 * BSIZE];
	struct iovec iov[4];
	uint64_t got;
	size_t len;
	char *p;

	bufq_init(&q);
	pattern(all, sizeof(all), 0);
	push(f, &q, all, 60);           /* buf 0 */
	push(f, &q, all + 60, 60);      /* buf 1 */
	push(f, &q, all + 120, 60);     /* buf 2 */
	bufq_cut(&q, &f->pool, 60, 60); /* empties buffer 1 */
	assert_int_equal(q.bytes, 120);
	check_chain(&q, &f->pool);
	assert_int_equal(bufq_iov(&q, &f->pool, 0, UINT64_MAX, iov, 4, &got), 2);
	assert_int_equal(got, 120);
	p = bufq_run(&q, &f->pool, 60, &len);
	assert_ptr_equal(p, bufpool_data(&f->pool, 2));
	assert_int_equal(len, 60);
	bufq_consume(&q, &f->pool, 60); /* buf 0, then the empty buf 1 */
	assert_int_equal(f->num_log, 2);
	p = bufq_front(&q, &f->pool, &len);
	assert_ptr_equal(p, bufpool_data(&f->pool, 2));
	assert_int_equal(len, 60);
	bufq_consume(&q, &f->pool, 60);
	assert_int_equal(q.nbufs, 0);
	fake_free(f);
}

static void test_clear_and_held(void **state)
{
	(void)state;
	struct fake *f = fake_new(NBUFS, BSIZE);
	struct bufq q;
	char all[4 * BSIZE];

	bufq_init(&q);
	pattern(all, sizeof(all), 0);
	for (int i = 0; i < 5; i++)
		push(f, &q, all, 60);
	assert_int_equal(f->pool.held, 5);
	bufq_consume(&q, &f->pool, 70);
	assert_int_equal(f->pool.held, 4);
	bufq_clear(&q, &f->pool);
	assert_int_equal(q.bytes, 0);
	assert_int_equal(q.nbufs, 0);
	assert_int_equal(q.head, BUF_NONE);
	assert_int_equal(q.tail, BUF_NONE);
	assert_int_equal(f->pool.held, 0);
	assert_int_equal(f->num_log, 5);
	bufq_clear(&q, &f->pool); /* twice is fine */
	assert_int_equal(f->num_log, 5);
	fake_free(f);
}

static void test_hpool(void **state)
{
	(void)state;
	struct hpool h;
	int32_t a, b, c;

	assert_int_equal(hpool_init(&h, 3, 4096), 1);
	assert_int_equal(h.nfree, 3);
	/* Lowest index first. */
	a = hpool_get(&h);
	b = hpool_get(&h);
	c = hpool_get(&h);
	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	assert_int_equal(c, 2);
	assert_int_equal(hpool_get(&h), -1);
	assert_int_equal(hpool_get(&h), -1);
	/* Buffers are distinct, writable, and size bytes apart. */
	memset(hpool_data(&h, 0), 'a', 4096);
	memset(hpool_data(&h, 2), 'c', 4096);
	assert_ptr_equal(hpool_data(&h, 1), hpool_data(&h, 0) + 4096);
	assert_int_equal(hpool_data(&h, 0)[4095], 'a');
	/* LIFO: the last put comes back first. */
	hpool_put(&h, 1);
	hpool_put(&h, 0);
	assert_int_equal(hpool_get(&h), 0);
	hpool_put(&h, 2);
	assert_int_equal(hpool_get(&h), 2);
	assert_int_equal(hpool_get(&h), 1);
	assert_int_equal(hpool_get(&h), -1);
	hpool_put(&h, 0);
	hpool_put(&h, 1);
	hpool_put(&h, 2);
	assert_int_equal(h.nfree, 3);
	hpool_cleanup(&h);
	assert_null(h.base);
	hpool_cleanup(&h); /* twice is fine */
}

enum { M_COUNT = 64, M_SIZE = 32, M_OPS = 20000, M_CAP = M_COUNT * M_SIZE };

/* One queue's reference: the bytes it must hold, in order. */
struct model {
	char *bytes;
	size_t len;
};

/* The model run's shared state: the fake kernel, the seed, counters. */
struct mrun {
	struct fake *f;
	unsigned int seed;
	unsigned char next_byte;
	uint32_t pushes, copies, linearizes;
};

static void model_check(const struct bufq *q, const struct bufpool *p, const struct model *m,
                        char *scratch, size_t cap)
{
	check_chain(q, p);
	assert_int_equal(q->bytes, m->len);
	assert_int_equal(queue_bytes(q, p, scratch, cap), m->len);
	assert_memory_equal(scratch, m->bytes, m->len);
}

/* model_push receives 1..M_SIZE fresh bytes into a random free buffer, if
 * the kernel has one. */
static void model_push(struct mrun *r, struct bufq *q, struct model *m)
{
	uint32_t len = 1 + (uint32_t)rand_r(&r->seed) % M_SIZE;
	uint16_t free_ids[M_COUNT];
	uint32_t nfree = 0;
	char data[M_SIZE];
	uint16_t nbufs_before = q->nbufs, bid;

	for (uint16_t b = 0; b < M_COUNT; b++)
		if (r->f->owned[b])
			free_ids[nfree++] = b;
	if (nfree == 0 || m->len + len > M_CAP)
		return;
	for (uint32_t i = 0; i < len; i++)
		data[i] = (char)r->next_byte++;
	bid = fake_recv_bid(r->f, free_ids[(uint32_t)rand_r(&r->seed) % nfree], data, len);
	bufq_push(q, &r->f->pool, bid, len);
	memcpy(m->bytes + m->len, data, len);
	m->len += len;
	r->pushes++;
	r->copies += q->nbufs == nbufs_before;
}

/* model_consume drops some bytes, sometimes all. */
static void model_consume(struct mrun *r, struct bufq *q, struct model *m)
{
	size_t n = m->len == 0 ? 0 : (size_t)rand_r(&r->seed) % (m->len + 1);
	const struct bufpool *p = &r->f->pool;

	if (rand_r(&r->seed) % 8 == 0)
		n = m->len;
	bufq_consume(q, &r->f->pool, n);
	memmove(m->bytes, m->bytes + n, m->len - n);
	m->len -= n;
	/* consume never leaves an empty front buffer */
	if (q->head != BUF_NONE)
		assert_true(p->start[q->head] < p->end[q->head]);
}

/* model_linearize checks that the front buffer then holds the first
 * min(len, buf_size) bytes, from its start. */
static void model_linearize(struct mrun *r, struct bufq *q, const struct model *m)
{
	size_t front_len, got = bufq_linearize(q, &r->f->pool);
	size_t want = m->len < M_SIZE ? m->len : M_SIZE;
	char *front = bufq_front(q, &r->f->pool, &front_len);

	assert_int_equal(got, want);
	assert_int_equal(front_len, want);
	if (want > 0) {
		assert_ptr_equal(front, bufpool_data(&r->f->pool, q->head));
		assert_memory_equal(front, m->bytes, want);
	}
	r->linearizes++;
}

/* model_cut cuts a range inside the run holding a random byte (never the
 * whole run, so no buffer is left empty). */
static void model_cut(struct mrun *r, struct bufq *q, struct model *m)
{
	size_t run_len, cut;
	uint64_t skip;

	if (m->len == 0)
		return;
	skip = (uint64_t)rand_r(&r->seed) % m->len;
	assert_non_null(bufq_run(q, &r->f->pool, skip, &run_len));
	assert_true(run_len >= 1);
	cut = (size_t)rand_r(&r->seed) % run_len;
	bufq_cut(q, &r->f->pool, skip, cut);
	memmove(m->bytes + skip, m->bytes + skip + cut, m->len - skip - cut);
	m->len -= cut;
}

/* The model test: random pushes (1..buf_size bytes, into random free
 * buffers), consumes, linearizes, cuts and clears on two queues sharing a
 * pool, compared byte for byte with reference arrays after each op. */
static void test_model_random(void **state)
{
	(void)state;
	struct mrun r = {.f = fake_new(M_COUNT, M_SIZE), .seed = 0xC0FFEE};
	struct bufq q[2];
	struct model m[2];
	char *scratch = malloc(M_CAP);

	assert_non_null(scratch);
	for (int k = 0; k < 2; k++) {
		bufq_init(&q[k]);
		m[k].bytes = malloc(M_CAP);
		assert_non_null(m[k].bytes);
		m[k].len = 0;
	}
	for (int op = 0; op < M_OPS; op++) {
		int k = rand_r(&r.seed) % 2;
		int what = rand_r(&r.seed) % 100;

		if (what < 50)
			model_push(&r, &q[k], &m[k]);
		else if (what < 80)
			model_consume(&r, &q[k], &m[k]);
		else if (what < 92)
			model_linearize(&r, &q[k], &m[k]);
		else if (what < 98)
			model_cut(&r, &q[k], &m[k]);
		else {
			bufq_clear(&q[k], &r.f->pool);
			m[k].len = 0;
		}
		model_check(&q[k], &r.f->pool, &m[k], scratch, M_CAP);
		assert_int_equal(r.f->pool.held, (uint32_t)q[0].nbufs + q[1].nbufs);
	}
	/* Both paths of bufq_push were taken many times. */
	assert_true(r.copies > 100);
	assert_true(r.pushes - r.copies > 100);
	assert_true(r.linearizes > 100);
	for (int k = 0; k < 2; k++) {
		bufq_consume(&q[k], &r.f->pool, q[k].bytes);
		assert_int_equal(q[k].nbufs, 0);
		free(m[k].bytes);
	}
	free(scratch);
	fake_free(r.f);
}

/* ---- mempool: buffers user space fills (TLS) ---- */

/* A mempool hands out its lowest free buffer first, LIFO, and BUF_NONE
 * when empty; a recycled buffer is the next one out and sets `freed`. */
static void test_mempool_lifo(void **state)
{
	struct mempool m;

	(void)state;
	assert_int_equal(mempool_init(&m, 4, 64), 1);
	assert_int_equal(m.nfree, 4);
	assert_false(m.freed);
	assert_non_null(m.pool.base);
	assert_int_equal(m.pool.count, 4);
	assert_int_equal(m.pool.buf_size, 64);
	assert_ptr_equal(m.pool.ctx, &m);
	assert_int_equal(m.pool.held, 0);
	for (uint16_t i = 0; i < 4; i++) {
		assert_int_equal(mempool_get(&m), i);
		assert_int_equal(m.nfree, 3u - i);
	}
	assert_int_equal(mempool_get(&m), BUF_NONE);
	assert_int_equal(mempool_get(&m), BUF_NONE);
	assert_int_equal(m.nfree, 0);
	assert_false(m.freed); /* taking never sets it */
	/* The memory: writable, buf_size apart, lazily mapped but usable. */
	for (uint16_t i = 0; i < 4; i++)
		memset(bufpool_data(&m.pool, i), 'a' + i, 64);
	assert_ptr_equal(bufpool_data(&m.pool, 3), m.pool.base + 3 * 64);
	assert_int_equal(bufpool_data(&m.pool, 2)[63], 'c');
	/* LIFO: the last recycled comes back first. */
	m.pool.recycle(&m.pool, 2);
	assert_true(m.freed);
	assert_int_equal(m.nfree, 1);
	m.freed = false;
	m.pool.recycle(&m.pool, 0);
	m.pool.recycle(&m.pool, 3);
	assert_true(m.freed);
	assert_int_equal(m.nfree, 3);
	assert_int_equal(mempool_get(&m), 3);
	assert_int_equal(mempool_get(&m), 0);
	assert_int_equal(mempool_get(&m), 2);
	assert_int_equal(mempool_get(&m), BUF_NONE);
	for (uint16_t i = 0; i < 4; i++)
		m.pool.recycle(&m.pool, i);
	assert_int_equal(m.nfree, 4);
	mempool_cleanup(&m);
	assert_null(m.pool.base);
	assert_null(m.free);
	assert_int_equal(m.nfree, 0);
	mempool_cleanup(&m); /* twice is fine */
}

static void test_mempool_cleanup_zeroed(void **state)
{
	struct mempool m;

	(void)state;
	memset(&m, 0, sizeof(m));
	mempool_cleanup(&m);
	assert_null(m.pool.base);
	/* The largest pool init allows. */
	assert_int_equal(mempool_init(&m, BUF_NONE - 1, 16), 1);
	assert_int_equal(m.nfree, BUF_NONE - 1);
	assert_int_equal(mempool_get(&m), 0);
	m.pool.recycle(&m.pool, 0);
	mempool_cleanup(&m);
}

/* Buffers of a mempool go through a bufq like the ring's: a consumed or
 * cleared queue gives them back (held and nfree agree), setting `freed`. */
static void test_mempool_with_bufq(void **state)
{
	struct mempool m;
	struct bufq q;
	uint16_t a, b;
	char out[128];

	(void)state;
	assert_int_equal(mempool_init(&m, 3, 32), 1);
	bufq_init(&q);
	a = mempool_get(&m);
	pattern(bufpool_data(&m.pool, a), 32, 0);
	bufq_push(&q, &m.pool, a, 32);
	b = mempool_get(&m);
	pattern(bufpool_data(&m.pool, b), 10, 32);
	bufq_push(&q, &m.pool, b, 10);
	assert_int_equal(m.pool.held, 2);
	assert_int_equal(m.nfree, 1);
	/* A small push into the free tail of the last buffer: copied, and its
	 * own buffer goes straight back. */
	a = mempool_get(&m);
	pattern(bufpool_data(&m.pool, a), 5, 42);
	m.freed = false;
	bufq_push(&q, &m.pool, a, 5);
	assert_true(m.freed);
	assert_int_equal(m.nfree, 1);
	assert_int_equal(q.nbufs, 2);
	assert_int_equal(queue_bytes(&q, &m.pool, out, sizeof(out)), 47);
	for (int i = 0; i < 47; i++)
		assert_int_equal(out[i], (char)i);
	m.freed = false;
	bufq_consume(&q, &m.pool, 31);
	assert_false(m.freed); /* the first buffer still holds a byte */
	bufq_consume(&q, &m.pool, 1);
	assert_true(m.freed);
	assert_int_equal(m.nfree, 2);
	assert_int_equal(m.pool.held, 1);
	m.freed = false;
	bufq_clear(&q, &m.pool);
	assert_true(m.freed);
	assert_int_equal(m.nfree, 3);
	assert_int_equal(m.pool.held, 0);
	mempool_cleanup(&m);
}

/* ---- bufq_space and bufq_commit: writing into the last buffer ---- */

static void test_space_and_commit(void **state)
{
	struct fake *f = fake_new(NBUFS, BSIZE);
	struct bufq q;
	char data[BSIZE * 2], out[BSIZE * 4];
	size_t len = 99;
	char *at;

	(void)state;
	pattern(data, sizeof(data), 7);
	bufq_init(&q);
	/* Empty: no space. */
	assert_null(bufq_space(&q, &f->pool, &len));
	assert_int_equal(len, 0);
	/* The space is the free tail of the last buffer. */
	push(f, &q, data, 10);
	at = bufq_space(&q, &f->pool, &len);
	assert_ptr_equal(at, bufpool_data(&f->pool, q.tail) + 10);
	assert_int_equal(len, BSIZE - 10);
	memcpy(at, data + 10, 20);
	bufq_commit(&q, &f->pool, 20);
	assert_int_equal(q.bytes, 30);
	assert_int_equal(q.nbufs, 1);
	assert_int_equal(queue_bytes(&q, &f->pool, out, sizeof(out)), 30);
	assert_memory_equal(out, data, 30);
	/* A commit of nothing changes nothing. */
	bufq_commit(&q, &f->pool, 0);
	assert_int_equal(q.bytes, 30);
	/* Fill it exactly: then there is no space. */
	at = bufq_space(&q, &f->pool, &len);
	assert_int_equal(len, BSIZE - 30);
	memcpy(at, data + 30, len);
	bufq_commit(&q, &f->pool, len);
	assert_null(bufq_space(&q, &f->pool, &len));
	assert_int_equal(len, 0);
	assert_int_equal(q.bytes, BSIZE);
	/* Only the last buffer counts, and consumed bytes at the front do not
	 * make room at the back. */
	push(f, &q, data + BSIZE, 40);
	assert_int_equal(q.nbufs, 2);
	bufq_consume(&q, &f->pool, 20);
	at = bufq_space(&q, &f->pool, &len);
	assert_ptr_equal(at, bufpool_data(&f->pool, q.tail) + 40);
	assert_int_equal(len, BSIZE - 40);
	memcpy(at, data + BSIZE + 40, 5);
	bufq_commit(&q, &f->pool, 5);
	assert_int_equal(q.bytes, BSIZE + 45 - 20);
	/* Committed bytes read back through front, iov and run. */
	{
		size_t run;
		char *front = bufq_front(&q, &f->pool, &run);
		assert_int_equal(run, BSIZE - 20);
		assert_memory_equal(front, data + 20, run);
		assert_int_equal(queue_bytes(&q, &f->pool, out, sizeof(out)), BSIZE + 25);
		assert_memory_equal(out, data + 20, BSIZE + 25);
		assert_non_null(bufq_run(&q, &f->pool, BSIZE - 20 + 44, &run));
		assert_int_equal(run, 1);
	}
	/* A head at the front of the same buffer: space still follows the end. */
	bufq_consume(&q, &f->pool, BSIZE - 20 + 30);
	assert_int_equal(q.nbufs, 1);
	at = bufq_space(&q, &f->pool, &len);
	assert_int_equal(len, BSIZE - 45);
	bufq_clear(&q, &f->pool);
	assert_null(bufq_space(&q, &f->pool, &len));
	check_chain(&q, &f->pool);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_init_empty),
	        cmocka_unit_test(test_pool_cleanup_zeroed),
	        cmocka_unit_test(test_push_append_and_copy),
	        cmocka_unit_test(test_two_queues),
	        cmocka_unit_test(test_consume_across_buffers),
	        cmocka_unit_test(test_iov),
	        cmocka_unit_test(test_linearize),
	        cmocka_unit_test(test_linearize_all_fits),
	        cmocka_unit_test(test_run_and_cut),
	        cmocka_unit_test(test_cut_whole_buffer),
	        cmocka_unit_test(test_clear_and_held),
	        cmocka_unit_test(test_hpool),
	        cmocka_unit_test(test_model_random),
	        cmocka_unit_test(test_mempool_lifo),
	        cmocka_unit_test(test_mempool_cleanup_zeroed),
	        cmocka_unit_test(test_mempool_with_bufq),
	        cmocka_unit_test(test_space_and_commit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
