/* core/buf.h — buffer bookkeeping for one shard.
 *
 * Received bytes live in the shard's provided buffers (the io_uring buffer
 * ring, see ring.h). A `struct bufpool` describes that memory: `count`
 * buffers of `buf_size` bytes, plus per-buffer metadata. A buffer the kernel
 * filled belongs to exactly one `struct bufq` (a connection's unconsumed
 * input) until every byte in it has been consumed; then it goes back to the
 * pool through `recycle`, which hands it back to the kernel.
 *
 * Nothing here copies on the common path: bytes are sent straight from the
 * buffer they arrived in. Two rules keep a slow or byte-at-a-time peer from
 * pinning the whole ring: a small arrival is copied into the free tail of the
 * previous buffer and its own buffer recycled at once, and a head that spans
 * buffers is made contiguous in the first one (bufq_linearize).
 *
 * `struct hpool` is a LIFO pool of fixed-size buffers for the heads ringlb
 * writes (the request head it sends upstream, the response head it sends to
 * the client). LIFO keeps the set of touched pages as small as the peak
 * number of heads in flight.
 *
 * Thread: shard-local.
 */
#ifndef RLB_BUF_H
#define RLB_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define BUF_NONE 0xffffu

struct bufpool;
typedef void (*bufpool_recycle_fn)(struct bufpool *p, uint16_t bid);

struct bufpool {
	char *base; /* count * buf_size bytes */
	uint32_t buf_size;
	uint32_t count;  /* <= 32768, so a buffer id fits 15 bits */
	uint32_t *start; /* per buffer: first unconsumed byte */
	uint32_t *end;   /* per buffer: one past the last byte */
	uint16_t *next;  /* per buffer: next buffer in its bufq */
	uint32_t held;   /* buffers currently held by bufqs */
	bufpool_recycle_fn recycle;
	void *ctx; /* the owner of the pool (the ring) */
};

/* A queue of received bytes: a chain of buffers, oldest first. All-zero
 * except head/tail = BUF_NONE is empty; use bufq_init. */
struct bufq {
	uint16_t head, tail;
	uint16_t nbufs;
	uint64_t bytes; /* unconsumed bytes in the queue */
};

/* bufpool_init sets up metadata for `count` buffers of `buf_size` bytes at
 * `base` (owned by the caller). Returns 1, or 0 if allocation failed. */
int bufpool_init(struct bufpool *p, char *base, uint32_t count, uint32_t buf_size,
                 bufpool_recycle_fn recycle, void *ctx);

/* bufpool_cleanup frees the metadata; safe on a zeroed pool. */
void bufpool_cleanup(struct bufpool *p);

/* bufpool_data returns the start of buffer `bid`'s memory. */
static inline char *bufpool_data(const struct bufpool *p, uint16_t bid)
{
	return p->base + (size_t)bid * p->buf_size;
}

/* bufq_init makes `q` empty. */
void bufq_init(struct bufq *q);

/* bufq_push appends `len` bytes the kernel wrote at the start of buffer
 * `bid`. When they fit in the free tail of the last buffer they are copied
 * there and `bid` is recycled at once. Takes ownership of `bid`. */
void bufq_push(struct bufq *q, struct bufpool *p, uint16_t bid, uint32_t len);

/* bufq_front returns the first contiguous run of unconsumed bytes and sets
 * *out_len; NULL when empty. */
char *bufq_front(const struct bufq *q, const struct bufpool *p, size_t *out_len);

/* bufq_linearize moves bytes so the first buffer holds as many of the
 * queue's bytes as fit, contiguously from its start; recycles buffers it
 * empties. Call only while no send references the queue. Returns the
 * contiguous length now at the front. */
size_t bufq_linearize(struct bufq *q, struct bufpool *p);

/* bufq_consume drops the first `n` bytes (n <= bytes) and recycles every
 * buffer left empty. */
void bufq_consume(struct bufq *q, struct bufpool *p, uint64_t n);

/* bufq_iov fills at most `max_iov` iovecs with the first `max_bytes`
 * unconsumed bytes starting `skip` bytes into the queue. Returns the number
 * of iovecs filled; *out_bytes gets the bytes they cover. */
int bufq_iov(const struct bufq *q, const struct bufpool *p, uint64_t skip, uint64_t max_bytes,
             struct iovec *iov, int max_iov, uint64_t *out_bytes);

/* bufq_clear recycles every buffer in `q` and leaves it empty. */
void bufq_clear(struct bufq *q, struct bufpool *p);

/* bufq_run walks the queue from byte `skip`: it returns a pointer to the
 * contiguous run that holds that byte and sets *out_len to the run's length
 * from there, or returns NULL when `skip` >= bytes. */
char *bufq_run(const struct bufq *q, const struct bufpool *p, uint64_t skip, size_t *out_len);

/* bufq_cut removes `len` bytes at queue offset `skip`, where both lie in one
 * run returned by bufq_run (used to strip chunk framing in place). */
void bufq_cut(struct bufq *q, struct bufpool *p, uint64_t skip, size_t len);

/* bufq_space returns the writable space after the last buffer's bytes and
 * sets *out_len (0 and NULL when the queue is empty or its last buffer is
 * full). Bytes written there join the queue with bufq_commit. */
char *bufq_space(const struct bufq *q, const struct bufpool *p, size_t *out_len);

/* bufq_commit adds `n` bytes written into the space bufq_space returned. */
void bufq_commit(struct bufq *q, struct bufpool *p, size_t n);

/* A pool of buffers that user space fills rather than the kernel: TLS
 * plaintext decrypted from a connection and ciphertext waiting to be sent.
 * Its memory is mapped lazily; `freed` is set whenever a buffer comes back,
 * so the shard can wake connections that waited for one. */
struct mempool {
	struct bufpool pool;
	uint16_t *free; /* stack of free buffer ids, lowest on top */
	uint32_t nfree;
	bool freed;
};

/* mempool_init maps `count` (< 65535) buffers of `size` bytes. Returns 1,
 * or 0 on failure. */
int mempool_init(struct mempool *m, uint32_t count, uint32_t size);

/* mempool_cleanup unmaps the pool; safe on a zeroed pool. */
void mempool_cleanup(struct mempool *m);

/* mempool_get takes a buffer; returns its id, or BUF_NONE when none is free.
 * Hand it to a queue with bufq_push, or back with pool.recycle. */
uint16_t mempool_get(struct mempool *m);

/* Head buffers. */
struct hpool {
	char *base;
	uint32_t size; /* bytes per head buffer */
	uint32_t count;
	uint32_t *free; /* stack of free indexes */
	uint32_t nfree;
};

/* hpool_init maps `count` buffers of `size` bytes (reserved lazily by the
 * kernel). Returns 1, or 0 on failure. */
int hpool_init(struct hpool *h, uint32_t count, uint32_t size);

/* hpool_cleanup unmaps the pool; safe on a zeroed pool. */
void hpool_cleanup(struct hpool *h);

/* hpool_get takes a buffer; returns its index, or -1 when none is free. */
int32_t hpool_get(struct hpool *h);

/* hpool_put returns buffer `idx`. */
void hpool_put(struct hpool *h, uint32_t idx);

/* hpool_data returns buffer `idx`'s memory. */
static inline char *hpool_data(const struct hpool *h, uint32_t idx)
{
	return h->base + (size_t)idx * h->size;
}

#endif
