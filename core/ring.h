/* core/ring.h — the shard's I/O layer: one io_uring, its provided-buffer
 * ring, and the operations the proxy needs.
 *
 * Every io_uring call in ringlb lives in ring.c; the proxy logic prepares
 * operations through these functions and sees completions as plain
 * `struct ring_cqe` records. An epoll backend could replace this module
 * without touching the proxy.
 *
 * Submission is batched: prepared operations are submitted by the single
 * ring_wait call of each loop turn (or earlier, only when the SQ is full).
 * Completions are copied out in a batch and the CQ is advanced once.
 *
 * user_data layout (64 bits): bits 0-7 the operation, bits 8-31 the slot
 * index, bits 32-63 the slot's generation. A completion whose generation no
 * longer matches its slot belongs to a previous user of the slot and is
 * dropped by the caller.
 *
 * Thread: a ring belongs to one shard thread (SINGLE_ISSUER).
 */
#ifndef RLB_RING_H
#define RLB_RING_H

#include "core/buf.h"

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#define RING_SLOT_BITS 24
#define RING_SLOT_MAX  ((1u << RING_SLOT_BITS) - 1)
/* Two buffer groups: client input and upstream input are kept apart so
 * that a flood of uploads can never take the buffers that responses need
 * (and the other way round). */
#define RING_GROUP_CLIENT   0
#define RING_GROUP_UPSTREAM 1
#define RING_GROUPS         2

static inline uint64_t ring_ud(uint8_t op, uint32_t slot, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint64_t)(slot & RING_SLOT_MAX) << 8 | op;
}
static inline uint8_t ring_ud_op(uint64_t ud)
{
	return (uint8_t)(ud & 0xff);
}
static inline uint32_t ring_ud_slot(uint64_t ud)
{
	return (uint32_t)(ud >> 8) & RING_SLOT_MAX;
}
static inline uint32_t ring_ud_gen(uint64_t ud)
{
	return (uint32_t)(ud >> 32);
}

/* A completion as the proxy sees it. */
struct ring_cqe {
	uint64_t ud;
	int32_t res;
	uint32_t flags; /* IORING_CQE_F_* */
};

static inline bool ring_cqe_more(const struct ring_cqe *c)
{
	return (c->flags & IORING_CQE_F_MORE) != 0;
}
static inline bool ring_cqe_has_buffer(const struct ring_cqe *c)
{
	return (c->flags & IORING_CQE_F_BUFFER) != 0;
}
static inline uint16_t ring_cqe_bid(const struct ring_cqe *c)
{
	return (uint16_t)(c->flags >> IORING_CQE_BUFFER_SHIFT);
}

/* One provided-buffer group. */
struct ring_group {
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	char *bufs; /* buffer memory: count * size */
	size_t bufs_bytes;
	struct bufpool pool;
	uint32_t mask;
	uint32_t added; /* recycled since the last advance */
	uint32_t avail; /* buffers the kernel can fill right now */
	struct ring *ring;
	uint16_t bgid;
};

struct ring {
	struct io_uring uring;
	struct ring_group groups[RING_GROUPS];
	bool defer_taskrun; /* the ring runs with DEFER_TASKRUN */
	uint64_t sq_full;   /* times the SQ filled before the turn ended */
};

/* ring_probe checks that io_uring can be used at all in this process and,
 * if not, writes the cause and the fix into err. Returns 1 or 0. Call it at
 * start-up, before any thread is created. */
int ring_probe(char *err, size_t err_len);

/* ring_init creates the ring (SINGLE_ISSUER|DEFER_TASKRUN, falling back
 * when the kernel refuses them), registers the ring fd and, for each of the
 * RING_GROUPS groups, a ring of `nbufs` provided buffers of `buf_size` bytes. Must run on the
 * thread that will use the ring. Returns 1, or 0 with a message. */
int ring_init(struct ring *r, uint32_t entries, uint32_t nbufs, uint32_t buf_size, char *err,
              size_t err_len);

/* ring_cleanup tears the ring down; safe on a zeroed ring. */
void ring_cleanup(struct ring *r);

/* The operations. Each takes the user_data the completion will carry. */
void ring_accept_multishot(struct ring *r, int fd, uint64_t ud);
/* ring_recv_multishot receives into buffers of `group` until cancelled. */
void ring_recv_multishot(struct ring *r, int fd, uint16_t group, uint64_t ud);
void ring_sendmsg(struct ring *r, int fd, const struct msghdr *msg, uint64_t ud);
void ring_connect(struct ring *r, int fd, const struct sockaddr *sa, socklen_t len, uint64_t ud);
/* ring_cancel_fd cancels every operation on `fd`; its own completion carries `ud`. */
void ring_cancel_fd(struct ring *r, int fd, uint64_t ud);
/* ring_cancel cancels the operation whose user_data is `target`. */
void ring_cancel(struct ring *r, uint64_t target, uint64_t ud);

/* ring_wait submits everything prepared and waits for at least one
 * completion or `timeout_ms`. Returns 0 or -errno (-ETIME and -EINTR are
 * normal). */
int ring_wait(struct ring *r, uint32_t timeout_ms);

/* ring_msg posts a completion with user_data `ud` to the ring whose file
 * descriptor is `target_fd` (IORING_OP_MSG_RING): a doorbell. Nothing
 * completes on `r` unless the message fails. */
void ring_msg(struct ring *r, int target_fd, uint64_t ud);

/* ring_fd is the ring's file descriptor, for other rings' ring_msg. */
int ring_fd(const struct ring *r);

/* ring_reap copies up to `max` ready completions into `out` and marks them
 * seen with one CQ advance. Returns how many. */
uint32_t ring_reap(struct ring *r, struct ring_cqe *out, uint32_t max);

/* ring_pool returns the buffer bookkeeping of `group`. */
static inline struct bufpool *ring_pool(struct ring *r, uint16_t group)
{
	return &r->groups[group].pool;
}

/* ring_note_buffer records that a completion consumed a buffer of `group`. */
static inline void ring_note_buffer(struct ring *r, uint16_t group)
{
	r->groups[group].avail--;
}

/* ring_flush_buffers publishes recycled buffers to the kernel (once per
 * loop turn). */
void ring_flush_buffers(struct ring *r);

#endif
