/* core/ring.c — io_uring set-up, provided buffers, and operation helpers
 * (see ring.h). The only file that calls liburing. */
#include "core/ring.h"

#include "core/common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>

static void recycle(struct bufpool *p, uint16_t bid)
{
	struct ring_group *g = p->ctx;

	io_uring_buf_ring_add(g->br, bufpool_data(p, bid), p->buf_size, bid, g->mask,
	                      (int)g->added);
	g->added++;
}

void ring_flush_buffers(struct ring *r)
{
	for (int i = 0; i < RING_GROUPS; i++) {
		struct ring_group *g = &r->groups[i];

		if (g->added == 0)
			continue;
		io_uring_buf_ring_advance(g->br, (int)g->added);
		g->avail += g->added;
		g->added = 0;
	}
}

static int read_sysctl(const char *path)
{
	FILE *f = fopen(path, "r");
	int v = -1;

	if (f == NULL)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

RLB_COLD int ring_probe(char *err, size_t err_len)
{
	struct io_uring ring;
	struct utsname u;
	int major = 0, minor = 0;
	int ret, disabled;

	if (uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
	    (major < 6 || (major == 6 && minor < 1))) {
		snprintf(err, err_len,
		         "kernel %s is too old: ringlb needs Linux 6.1 or newer "
		         "(multishot recv, provided buffer rings, DEFER_TASKRUN)",
		         u.release);
		return 0;
	}
	ret = io_uring_queue_init(8, &ring, 0);
	if (ret == 0) {
		io_uring_queue_exit(&ring);
		return 1;
	}
	disabled = read_sysctl("/proc/sys/kernel/io_uring_disabled");
	if (ret == -ENOSYS) {
		snprintf(err, err_len,
		         "io_uring is not available (ENOSYS): the kernel was built without "
		         "CONFIG_IO_URING; ringlb needs an io_uring-enabled kernel");
	} else if (ret == -EPERM && disabled > 0) {
		/* With 1, only root and the members of kernel.io_uring_group
		 * may: ringlb makes its rings after dropping root. */
		snprintf(err, err_len,
		         "io_uring is disabled by kernel.io_uring_disabled=%d; "
		         "fix: sysctl -w kernel.io_uring_disabled=0 (and set it in "
		         "/etc/sysctl.d/ to keep it)%s",
		         disabled,
		         disabled == 1 ? ", or set kernel.io_uring_group to the group ringlb "
		                         "runs as (security.group)"
		                       : "");
	} else if (ret == -EPERM) {
		snprintf(err, err_len,
		         "io_uring_setup was refused (EPERM), most likely by a seccomp "
		         "profile (Docker's default blocks io_uring); fix: run with a "
		         "profile that allows io_uring_setup, io_uring_enter and "
		         "io_uring_register (e.g. docker run --security-opt "
		         "seccomp=PROFILE)");
	} else if (ret == -ENOMEM) {
		snprintf(err, err_len,
		         "io_uring_setup failed with ENOMEM: the locked-memory limit is "
		         "too low; fix: raise RLIMIT_MEMLOCK (ulimit -l) or use a kernel >= 5.12");
	} else {
		snprintf(err, err_len, "io_uring_setup failed: %s", strerror(-ret));
	}
	return 0;
}

static int setup_ring(struct ring *r, uint32_t entries)
{
	struct io_uring_params p;
	int ret;

	/* SINGLE_ISSUER and DEFER_TASKRUN let completions run only when the
	 * shard asks for them, in its own context: no IPIs, no task-work
	 * interruptions. Kernels before 6.1 refuse them with EINVAL; the plain
	 * ring still works, a little slower. RINGLB_RING_PLAIN=1 forces the
	 * fallback so tests can cover it on any kernel. */
	if (getenv("RINGLB_RING_PLAIN") == NULL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		          IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 4;
		ret = io_uring_queue_init_params(entries, &r->uring, &p);
		if (ret == 0) {
			r->defer_taskrun = true;
			return 0;
		}
		if (ret != -EINVAL)
			return ret;
	}
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = entries * 4;
	r->defer_taskrun = false;
	return io_uring_queue_init_params(entries, &r->uring, &p);
}

static int group_init(struct ring *r, struct ring_group *g, uint16_t bgid, uint32_t nbufs,
                      uint32_t buf_size, char *err, size_t err_len)
{
	struct io_uring_buf_reg reg;
	int ret;

	g->ring = r;
	g->bgid = bgid;
	g->br_bytes = (size_t)nbufs * sizeof(struct io_uring_buf);
	g->br = mmap(NULL, g->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	g->bufs_bytes = (size_t)nbufs * buf_size;
	g->bufs = mmap(NULL, g->bufs_bytes, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (g->br == MAP_FAILED || g->bufs == MAP_FAILED) {
		g->br = g->br == MAP_FAILED ? NULL : g->br;
		g->bufs = g->bufs == MAP_FAILED ? NULL : g->bufs;
		snprintf(err, err_len, "cannot map %u buffers of %u bytes; lower buffers.count",
		         nbufs, buf_size);
		return 0;
	}
	io_uring_buf_ring_init(g->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uintptr_t)g->br;
	reg.ring_entries = nbufs;
	reg.bgid = bgid;
	ret = io_uring_register_buf_ring(&r->uring, &reg, 0);
	if (ret < 0) {
		snprintf(err, err_len,
		         "io_uring_register_buf_ring: %s (provided buffer rings need Linux 5.19+)",
		         strerror(-ret));
		return 0;
	}
	g->mask = io_uring_buf_ring_mask(nbufs);
	if (!bufpool_init(&g->pool, g->bufs, nbufs, buf_size, recycle, g)) {
		snprintf(err, err_len, "out of memory for buffer metadata");
		return 0;
	}
	for (uint32_t i = 0; i < nbufs; i++)
		recycle(&g->pool, (uint16_t)i);
	return 1;
}

RLB_COLD int ring_init(struct ring *r, uint32_t entries, uint32_t nbufs, uint32_t buf_size,
                       char *err, size_t err_len)
{
	int ret;

	memset(r, 0, sizeof(*r));
	ret = setup_ring(r, entries);
	if (ret < 0) {
		snprintf(err, err_len, "io_uring_queue_init(%u): %s; lower buffers.ring_entries",
		         entries, strerror(-ret));
		return 0;
	}
	io_uring_register_ring_fd(&r->uring); /* an optimisation: failure is fine */
	for (uint16_t i = 0; i < RING_GROUPS; i++) {
		if (!group_init(r, &r->groups[i], i, nbufs, buf_size, err, err_len)) {
			ring_cleanup(r);
			return 0;
		}
	}
	ring_flush_buffers(r);
	return 1;
}

void ring_cleanup(struct ring *r)
{
	if (r->uring.ring_fd > 0)
		io_uring_queue_exit(&r->uring);
	r->uring.ring_fd = 0;
	for (int i = 0; i < RING_GROUPS; i++) {
		struct ring_group *g = &r->groups[i];

		if (g->br != NULL)
			munmap(g->br, g->br_bytes);
		g->br = NULL;
		if (g->bufs != NULL)
			munmap(g->bufs, g->bufs_bytes);
		g->bufs = NULL;
		bufpool_cleanup(&g->pool);
	}
}

/* get_sqe never fails: when the SQ is full it submits what is there (the
 * turn's batch grows past one submit, which is counted so `ring_entries`
 * can be raised) and takes a fresh entry. */
static struct io_uring_sqe *get_sqe(struct ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);

	while (RLB_UNLIKELY(sqe == NULL)) {
		r->sq_full++;
		io_uring_submit(&r->uring);
		sqe = io_uring_get_sqe(&r->uring);
	}
	return sqe;
}

void ring_accept_multishot(struct ring *r, int fd, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(r);

	io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud);
}

void ring_recv_multishot(struct ring *r, int fd, uint16_t group, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(r);

	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = group;
	io_uring_sqe_set_data64(sqe, ud);
}

void ring_sendmsg(struct ring *r, int fd, const struct msghdr *msg, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(r);

	io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud);
}

void ring_connect(struct ring *r, int fd, const struct sockaddr *sa, socklen_t len, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(r);

	io_uring_prep_connect(sqe, fd, sa, len);
	io_uring_sqe_set_data64(sqe, ud);
}

void ring_cancel_fd(struct ring *r, int fd, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(r);

	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, ud);
}

void ring_cancel(struct ring *r, uint64_t target, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(r);

	io_uring_prep_cancel64(sqe, target, 0);
	io_uring_sqe_set_data64(sqe, ud);
}

void ring_msg(struct ring *r, int target_fd, uint64_t ud)
{
	struct io_uring_sqe *sqe = get_sqe(r);

	io_uring_prep_msg_ring(sqe, target_fd, 0, ud, 0);
	io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
	io_uring_sqe_set_data64(sqe, ud);
}

int ring_fd(const struct ring *r)
{
	return r->uring.ring_fd;
}

int ring_wait(struct ring *r, uint32_t timeout_ms)
{
	struct __kernel_timespec ts = {
	        .tv_sec = timeout_ms / 1000,
	        .tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
	};
	struct io_uring_cqe *cqe;
	int ret;

	ring_flush_buffers(r);
	if (io_uring_cq_ready(&r->uring) > 0) {
		/* Completions are waiting: submit the batch, do not sleep. */
		ret = io_uring_submit(&r->uring);
		return ret < 0 ? ret : 0;
	}
	ret = io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, &ts, NULL);
	return ret < 0 ? ret : 0;
}

uint32_t ring_reap(struct ring *r, struct ring_cqe *out, uint32_t max)
{
	struct io_uring_cqe *cqe;
	unsigned head;
	uint32_t n = 0;

	io_uring_for_each_cqe(&r->uring, head, cqe)
	{
		if (n == max)
			break;
		out[n].ud = cqe->user_data;
		out[n].res = cqe->res;
		out[n].flags = cqe->flags;
		n++;
	}
	io_uring_cq_advance(&r->uring, n);
	return n;
}
