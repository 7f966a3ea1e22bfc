/* tests/unit/core/ring_test.c — unit tests for core/ring.c.
 *
 * Goal: every operation the proxy prepares through ring.c reaches the
 * kernel and comes back as the completion the proxy expects — multishot
 * accept and recv (with a provided buffer whose id, data and F_MORE flag
 * are right), sendmsg, connect, cancel — buffers recycle back to the
 * kernel, a recv that runs out of buffers ends with -ENOBUFS, and the
 * user_data bit layout round-trips through the kernel unchanged.
 *
 * Method: real io_uring on real loopback TCP sockets. The test is the peer:
 * it uses plain blocking sockets and syscalls for its side, and only waits
 * on the ring for completions (ring_wait in a bounded loop, at most 100
 * waits of 100 ms each, so a lost completion fails instead of hanging; no
 * assertion depends on timing). Every test runs under each ring
 * configuration: the default (SINGLE_ISSUER|DEFER_TASKRUN) and the plain
 * fallback forced by RINGLB_RING_PLAIN=1. If io_uring cannot be used here at
 * all, the binary prints ring_probe's reason and exits 77 (skip).
 */
#include "core/ring.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CONNECT, OP_CANCEL };

/* One ring configuration. */
struct conf {
	const char *name;
	bool plain; /* set RINGLB_RING_PLAIN=1 */
};

static const struct conf conf_default = {"default", false};
static const struct conf conf_plain = {"RINGLB_RING_PLAIN=1", true};

/* The test's view of one ring: the ring and completions reaped but not yet
 * claimed by an expect(). */
struct ctx {
	struct ring r;
	struct ring_cqe pending[64];
	uint32_t num_pending;
	int lfd; /* listener */
	struct sockaddr_in laddr;
};

static struct ctx *ctx_new(const struct conf *c, uint32_t nbufs)
{
	struct ctx *x = calloc(1, sizeof(*x));
	char err[256] = "";
	socklen_t alen = sizeof(x->laddr);
	int one = 1;

	assert_non_null(x);
	if (c->plain)
		assert_int_equal(setenv("RINGLB_RING_PLAIN", "1", 1), 0);
	else
		assert_int_equal(unsetenv("RINGLB_RING_PLAIN"), 0);
	if (!ring_init(&x->r, 64, nbufs, 4096, err, sizeof(err)))
		fail_msg("ring_init (%s): %s", c->name, err);
	unsetenv("RINGLB_RING_PLAIN");
	if (c->plain) {
		assert_false(x->r.defer_taskrun);
	} else {
		/* ring_probe passed, so the kernel is >= 6.1 and accepts
		 * DEFER_TASKRUN: the default must not fall back. */
		assert_true(x->r.defer_taskrun);
	}
	for (int g = 0; g < RING_GROUPS; g++) {
		assert_int_equal(x->r.groups[g].avail, nbufs);
		assert_int_equal(x->r.groups[g].added, 0);
		assert_int_equal(ring_pool(&x->r, (uint16_t)g)->count, nbufs);
		assert_int_equal(ring_pool(&x->r, (uint16_t)g)->buf_size, 4096);
	}
	/* A blocking listener on 127.0.0.1, port chosen by the kernel. */
	x->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(x->lfd >= 0);
	assert_int_equal(setsockopt(x->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	x->laddr.sin_family = AF_INET;
	x->laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	x->laddr.sin_port = 0;
	assert_int_equal(bind(x->lfd, (struct sockaddr *)&x->laddr, sizeof(x->laddr)), 0);
	assert_int_equal(listen(x->lfd, 16), 0);
	assert_int_equal(getsockname(x->lfd, (struct sockaddr *)&x->laddr, &alen), 0);
	assert_true(x->laddr.sin_port != 0);
	return x;
}

static void ctx_free(struct ctx *x)
{
	close(x->lfd);
	ring_cleanup(&x->r);
	ring_cleanup(&x->r); /* safe twice */
	free(x);
}

/* expect returns the first completion carrying `ud`, reaping (and keeping
 * the others) for at most 100 waits of 100 ms. */
static struct ring_cqe expect(struct ctx *x, uint64_t ud)
{
	for (int tries = 0; tries <= 100; tries++) {
		for (uint32_t i = 0; i < x->num_pending; i++) {
			if (x->pending[i].ud != ud)
				continue;
			struct ring_cqe c = x->pending[i];

			memmove(&x->pending[i], &x->pending[i + 1],
			        (x->num_pending - i - 1) * sizeof(x->pending[0]));
			x->num_pending--;
			return c;
		}
		if (tries == 100)
			break;
		int ret = ring_wait(&x->r, 100);

		if (ret < 0 && ret != -ETIME && ret != -EINTR)
			fail_msg("ring_wait: %s", strerror(-ret));
		x->num_pending += ring_reap(&x->r, x->pending + x->num_pending,
		                            RLB_ARRAY_LEN(x->pending) - x->num_pending);
	}
	fail_msg("no completion for user_data %#llx (op %u) after 100 waits",
	         (unsigned long long)ud, ring_ud_op(ud));
	return (struct ring_cqe){0};
}

static int client_connect(const struct ctx *x)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (const struct sockaddr *)&x->laddr, sizeof(x->laddr)), 0);
	assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
	return fd;
}

static void send_all(int fd, const char *s, size_t len)
{
	assert_int_equal(send(fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* accept_one arms a multishot accept with `ud`, connects a client, and
 * returns the accepted fd (the completion keeps F_MORE). */
static int accept_one(struct ctx *x, uint64_t ud, int *out_client)
{
	struct ring_cqe c;

	ring_accept_multishot(&x->r, x->lfd, ud);
	*out_client = client_connect(x);
	c = expect(x, ud);
	if (c.res < 0)
		fail_msg("accept: %s", strerror(-c.res));
	assert_true(ring_cqe_more(&c));
	assert_false(ring_cqe_has_buffer(&c));
	return c.res;
}

/* recv_buffer checks a buffered recv completion against `want` and returns
 * its buffer id (not yet recycled). */
static uint16_t recv_buffer(struct ctx *x, const struct ring_cqe *c, const char *want)
{
	struct bufpool *p = ring_pool(&x->r, RING_GROUP_CLIENT);
	uint16_t bid;

	if (c->res < 0)
		fail_msg("recv: %s", strerror(-c->res));
	assert_true(ring_cqe_has_buffer(c));
	bid = ring_cqe_bid(c);
	assert_true(bid < p->count);
	assert_int_equal(c->res, strlen(want));
	assert_memory_equal(bufpool_data(p, bid), want, strlen(want));
	assert_true(ring_cqe_more(c));
	ring_note_buffer(&x->r, RING_GROUP_CLIENT);
	return bid;
}

/* check_sendmsg sends "world" from `afd` in two iovecs through the ring
 * and reads it on `client`. */
static void check_sendmsg(struct ctx *x, int afd, int client, uint64_t ud_send)
{
	char out[] = "world", buf[8];
	struct iovec iov[2] = {{out, 3}, {out + 3, 2}};
	struct msghdr msg;
	struct ring_cqe c;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	ring_sendmsg(&x->r, afd, &msg, ud_send);
	c = expect(x, ud_send);
	assert_int_equal(c.res, 5);
	assert_false(ring_cqe_more(&c));
	/* The send completed, so the bytes are in the client's socket. */
	assert_int_equal(recv(client, buf, 5, MSG_WAITALL), 5);
	assert_memory_equal(buf, "world", 5);
}

/* check_accept_then_cancel_fd: the multishot accept is still armed (a
 * second client gets through), and ring_cancel_fd on the listener ends it. */
static void check_accept_then_cancel_fd(struct ctx *x, uint64_t ud_accept, uint64_t ud_cancel)
{
	int client2 = client_connect(x);
	struct ring_cqe c = expect(x, ud_accept);

	assert_true(c.res >= 0);
	assert_true(ring_cqe_more(&c));
	close(c.res);
	close(client2);
	ring_cancel_fd(&x->r, x->lfd, ud_cancel);
	c = expect(x, ud_accept);
	assert_int_equal(c.res, -ECANCELED);
	assert_false(ring_cqe_more(&c));
	c = expect(x, ud_cancel);
	assert_int_equal(c.res, 1); /* one operation cancelled */
}

/* The main flow: accept, recv into a provided buffer, recycle it, sendmsg
 * back, cancel the recv. */
static void test_accept_recv_send_cancel(void **state)
{
	const struct conf *conf = *state;
	struct ctx *x = ctx_new(conf, 16);
	const uint64_t ud_accept = ring_ud(OP_ACCEPT, RING_SLOT_MAX, UINT32_MAX);
	const uint64_t ud_recv = ring_ud(OP_RECV, 12345, 0x80000001u);
	const uint64_t ud_send = ring_ud(OP_SEND, 0, 1);
	const uint64_t ud_cancel = ring_ud(OP_CANCEL, 12345, 0x80000001u);
	struct bufpool *p = ring_pool(&x->r, RING_GROUP_CLIENT);
	struct ring_cqe c;
	int client, afd;
	uint16_t bid, bid2;

	afd = accept_one(x, ud_accept, &client);
	assert_true(afd >= 0);

	/* recv: "hello" lands in a client-group buffer. */
	ring_recv_multishot(&x->r, afd, RING_GROUP_CLIENT, ud_recv);
	send_all(client, "hello", 5);
	c = expect(x, ud_recv);
	assert_int_equal(ring_ud_op(c.ud), OP_RECV);
	assert_int_equal(ring_ud_slot(c.ud), 12345);
	assert_int_equal(ring_ud_gen(c.ud), 0x80000001u);
	bid = recv_buffer(x, &c, "hello");
	assert_int_equal(x->r.groups[RING_GROUP_CLIENT].avail, 15);
	assert_int_equal(x->r.groups[RING_GROUP_UPSTREAM].avail, 16);

	/* Recycle: the buffer goes back to the kernel on the flush. */
	p->recycle(p, bid);
	assert_int_equal(x->r.groups[RING_GROUP_CLIENT].added, 1);
	ring_flush_buffers(&x->r);
	assert_int_equal(x->r.groups[RING_GROUP_CLIENT].added, 0);
	assert_int_equal(x->r.groups[RING_GROUP_CLIENT].avail, 16);

	/* A second message on the same multishot recv. */
	send_all(client, "again!", 6);
	c = expect(x, ud_recv);
	bid2 = recv_buffer(x, &c, "again!");
	p->recycle(p, bid2);
	ring_flush_buffers(&x->r);

	check_sendmsg(x, afd, client, ud_send);

	/* cancel the recv: it ends with -ECANCELED and no F_MORE; the cancel
	 * op completes on its own user_data. */
	ring_cancel(&x->r, ud_recv, ud_cancel);
	c = expect(x, ud_recv);
	assert_int_equal(c.res, -ECANCELED);
	assert_false(ring_cqe_more(&c));
	c = expect(x, ud_cancel);
	assert_int_equal(c.res, 0);
	/* Cancelling it again finds nothing. */
	ring_cancel(&x->r, ud_recv, ud_cancel);
	c = expect(x, ud_cancel);
	assert_int_equal(c.res, -ENOENT);

	check_accept_then_cancel_fd(x, ud_accept, ud_cancel);

	assert_int_equal(x->num_pending, 0);
	close(afd);
	close(client);
	ctx_free(x);
}

/* connect: a new socket connects to the listener through the ring. */
static void test_connect(void **state)
{
	const struct conf *conf = *state;
	struct ctx *x = ctx_new(conf, 16);
	const uint64_t ud = ring_ud(OP_CONNECT, 7, 3);
	struct ring_cqe c;
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	int fd, afd;
	char b;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	ring_connect(&x->r, fd, (const struct sockaddr *)&x->laddr, sizeof(x->laddr), ud);
	c = expect(x, ud);
	assert_int_equal(c.res, 0);
	assert_int_equal(ring_ud_slot(c.ud), 7);
	assert_int_equal(ring_ud_gen(c.ud), 3);
	assert_int_equal(getpeername(fd, (struct sockaddr *)&peer, &plen), 0);
	assert_int_equal(peer.sin_port, x->laddr.sin_port);
	/* The listener really has it: accept and exchange one byte. */
	afd = accept(x->lfd, NULL, NULL);
	assert_true(afd >= 0);
	send_all(fd, "x", 1);
	assert_int_equal(recv(afd, &b, 1, MSG_WAITALL), 1);
	assert_int_equal(b, 'x');
	close(afd);
	close(fd);

	/* A refused connect completes with -ECONNREFUSED: connect to a port
	 * that nothing listens on (the listener's, after closing it). */
	{
		struct sockaddr_in dead = x->laddr;

		close(x->lfd);
		x->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* for ctx_free */
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ring_connect(&x->r, fd, (const struct sockaddr *)&dead, sizeof(dead), ud);
		c = expect(x, ud);
		assert_int_equal(c.res, -ECONNREFUSED);
		close(fd);
	}
	ctx_free(x);
}

/* ENOBUFS: with 2 buffers per group and none recycled, the third message
 * ends the multishot recv with -ENOBUFS (no F_MORE). Each message is sent
 * only after the previous one's completion, so each is its own recv. */
static void test_enobufs(void **state)
{
	const struct conf *conf = *state;
	struct ctx *x = ctx_new(conf, 2);
	const uint64_t ud_accept = ring_ud(OP_ACCEPT, 1, 1);
	const uint64_t ud_recv = ring_ud(OP_RECV, 2, 2);
	struct bufpool *p = ring_pool(&x->r, RING_GROUP_CLIENT);
	struct ring_cqe c;
	int client, afd;
	uint16_t b1, b2;

	afd = accept_one(x, ud_accept, &client);
	ring_recv_multishot(&x->r, afd, RING_GROUP_CLIENT, ud_recv);
	send_all(client, "one", 3);
	c = expect(x, ud_recv);
	b1 = recv_buffer(x, &c, "one");
	send_all(client, "two", 3);
	c = expect(x, ud_recv);
	b2 = recv_buffer(x, &c, "two");
	assert_int_not_equal(b1, b2);
	assert_int_equal(x->r.groups[RING_GROUP_CLIENT].avail, 0);
	send_all(client, "three", 5);
	c = expect(x, ud_recv);
	assert_int_equal(c.res, -ENOBUFS);
	assert_false(ring_cqe_more(&c));
	assert_false(ring_cqe_has_buffer(&c));
	/* The bytes are still in the socket: recycle and re-arm to get them. */
	p->recycle(p, b1);
	p->recycle(p, b2);
	ring_flush_buffers(&x->r);
	assert_int_equal(x->r.groups[RING_GROUP_CLIENT].avail, 2);
	ring_recv_multishot(&x->r, afd, RING_GROUP_CLIENT, ud_recv);
	c = expect(x, ud_recv);
	(void)recv_buffer(x, &c, "three");
	/* The upstream group was never touched. */
	assert_int_equal(x->r.groups[RING_GROUP_UPSTREAM].avail, 2);
	close(client);
	/* EOF ends the multishot recv with res 0 and no F_MORE. */
	c = expect(x, ud_recv);
	assert_int_equal(c.res, 0);
	assert_false(ring_cqe_more(&c));
	close(afd);
	ctx_free(x);
}

/* ring_cleanup on a zeroed ring does nothing. */
static void test_cleanup_zeroed(void **state)
{
	(void)state;
	struct ring *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	ring_cleanup(r);
	ring_cleanup(r);
	free(r);
}

/* The user_data layout: op in bits 0-7, slot in 8-31, generation in 32-63;
 * the fields never bleed into each other, and a slot wider than 24 bits is
 * masked. */
_Static_assert(8 + RING_SLOT_BITS == 32, "op + slot fill the low 32 bits");

static void test_ud_layout(void **state)
{
	(void)state;
	const uint8_t ops[] = {0, 1, 0x7f, 0xff};
	const uint32_t slots[] = {0, 1, 0x123456, RING_SLOT_MAX};
	const uint32_t gens[] = {0, 1, 0xdeadbeef, UINT32_MAX};

	assert_int_equal(RING_SLOT_MAX, 0xffffff);
	assert_true(ring_ud(0xff, RING_SLOT_MAX, UINT32_MAX) == UINT64_MAX);
	assert_true(ring_ud(0, 0, 0) == 0);
	assert_true(ring_ud(1, 0, 0) == 1);
	assert_true(ring_ud(0, 1, 0) == 0x100);
	assert_true(ring_ud(0, 0, 1) == 0x100000000ull);
	assert_true(ring_ud(0, RING_SLOT_MAX, 0) == 0xffffff00ull);
	assert_true(ring_ud(0xff, 0, 0) == 0xff);
	assert_true(ring_ud(0, 0, UINT32_MAX) == 0xffffffff00000000ull);
	for (size_t i = 0; i < RLB_ARRAY_LEN(ops); i++)
		for (size_t j = 0; j < RLB_ARRAY_LEN(slots); j++)
			for (size_t k = 0; k < RLB_ARRAY_LEN(gens); k++) {
				uint64_t ud = ring_ud(ops[i], slots[j], gens[k]);

				assert_int_equal(ring_ud_op(ud), ops[i]);
				assert_int_equal(ring_ud_slot(ud), slots[j]);
				assert_int_equal(ring_ud_gen(ud), gens[k]);
			}
	/* A slot past the maximum is masked, not carried into the gen. */
	assert_int_equal(ring_ud_slot(ring_ud(3, RING_SLOT_MAX + 1, 5)), 0);
	assert_int_equal(ring_ud_gen(ring_ud(3, RING_SLOT_MAX + 1, 5)), 5);
	assert_int_equal(ring_ud_op(ring_ud(3, RING_SLOT_MAX + 1, 5)), 3);
}

/* The cqe helpers read the flags the kernel sets. */
static void test_cqe_helpers(void **state)
{
	(void)state;
	struct ring_cqe c = {.ud = 0, .res = 0, .flags = 0};

	assert_false(ring_cqe_more(&c));
	assert_false(ring_cqe_has_buffer(&c));
	c.flags = IORING_CQE_F_MORE | IORING_CQE_F_BUFFER | (0xfffeu << IORING_CQE_BUFFER_SHIFT);
	assert_true(ring_cqe_more(&c));
	assert_true(ring_cqe_has_buffer(&c));
	assert_int_equal(ring_cqe_bid(&c), 0xfffe);
}

int main(void)
{
	char err[512] = "";
	int failed = 0;

	if (!ring_probe(err, sizeof(err))) {
		printf("SKIP ring_test: ring_probe: %s\n", err);
		return 77;
	}
	const struct CMUnitTest pure[] = {
	        cmocka_unit_test(test_ud_layout),
	        cmocka_unit_test(test_cqe_helpers),
	        cmocka_unit_test(test_cleanup_zeroed),
	};
	failed += cmocka_run_group_tests_name("ring_pure", pure, NULL, NULL);
	const struct conf *confs[] = {&conf_default, &conf_plain};
	for (size_t i = 0; i < RLB_ARRAY_LEN(confs); i++) {
		void *st = (void *)confs[i];
		const struct CMUnitTest tests[] = {
		        cmocka_unit_test_prestate(test_accept_recv_send_cancel, st),
		        cmocka_unit_test_prestate(test_connect, st),
		        cmocka_unit_test_prestate(test_enobufs, st),
		};

		printf("ring configuration: %s\n", confs[i]->name);
		fflush(stdout);
		failed += _cmocka_run_group_tests(confs[i]->name, tests, RLB_ARRAY_LEN(tests), NULL,
		                                  NULL);
	}
	return failed == 0 ? 0 : 1;
}
