/* core/demo.c — the small origin servers behind `ringlb demo`.
 *
 * They exist so a new user can `curl localhost:8080` right after `make run`
 * and watch requests spread over three backends. Each origin is a plain
 * blocking server with a thread per connection: simple, and far from the
 * request path that matters. They speak HTTP/1.1 with keep-alive and
 * answer every request with a short text naming the origin.
 */
#include "core/demo.h"

#include "core/common.h"
#include "core/h1.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEMO_BUF 16384

struct origin_conn {
	int fd;
	int index;
};

struct origin {
	int fd;
	int index;
};

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			return 0;
		}
		p += w;
		n -= (size_t)w;
	}
	return 1;
}

/* answer writes the response to one parsed request. Returns 0 to close. */
static int answer(int fd, int index, const struct h1_msg *m)
{
	char body[512], head[256];
	int bn, hn;

	bn = snprintf(body, sizeof(body),
	              "Hello from ringlb demo origin %d\n"
	              "You asked for %.*s %.*s\n",
	              index, (int)m->method.len, m->method.ptr, (int)m->target.len, m->target.ptr);
	hn = snprintf(head, sizeof(head),
	              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
	              "X-Demo-Origin: %d\r\n%s\r\n",
	              bn, index, m->keep_alive ? "" : "Connection: close\r\n");
	if (!send_all(fd, head, (size_t)hn))
		return 0;
	if (!h1_str_ieq(m->method, "HEAD") && !send_all(fd, body, (size_t)bn))
		return 0;
	return m->keep_alive;
}

static void *serve_conn(void *arg)
{
	struct origin_conn oc = *(struct origin_conn *)arg;
	struct h1_header headers[64];
	struct h1_limits lim = {
	        .line_bytes_max = 8192, .head_bytes_max = DEMO_BUF, .headers_max = 64};
	char *buf = malloc(DEMO_BUF);
	size_t len = 0;
	uint64_t skip = 0; /* body bytes of the last request still to discard */

	free(arg);
	while (buf != NULL) {
		struct h1_scan scan = {0};
		struct h1_msg m = {.headers = headers, .headers_cap = 64};
		enum h1_result r = H1_PARTIAL;
		ssize_t got;

		if (len > 0)
			r = h1_parse_request(&scan, buf, len, &lim, &m);
		if (r == H1_OK && m.body != H1_BODY_CHUNKED) {
			skip = m.body == H1_BODY_LENGTH ? m.content_length : 0;
			if (!answer(oc.fd, oc.index, &m))
				break;
			memmove(buf, buf + m.head_len, len - m.head_len);
			len -= m.head_len;
			while (skip > 0 && len > 0) {
				size_t k = skip < len ? (size_t)skip : len;

				memmove(buf, buf + k, len - k);
				len -= k;
				skip -= k;
			}
			if (len > 0 && skip == 0)
				continue;
		} else if (r != H1_PARTIAL && r != H1_OK) {
			break;
		} else if (r == H1_OK) {
			break; /* chunked uploads are beyond a demo origin */
		}
		got = recv(oc.fd, buf + len, DEMO_BUF - len, 0);
		if (got <= 0)
			break;
		if (skip > 0) {
			size_t k = skip < (uint64_t)got ? (size_t)skip : (size_t)got;

			memmove(buf + len, buf + len + k, (size_t)got - k);
			got -= (ssize_t)k;
			skip -= k;
		}
		len += (size_t)got;
	}
	free(buf);
	close(oc.fd);
	return NULL;
}

static void *serve_origin(void *arg)
{
	struct origin *o = arg;

	for (;;) {
		int fd = accept4(o->fd, NULL, NULL, SOCK_CLOEXEC);
		struct origin_conn *oc;
		pthread_t t;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			usleep(10000);
			continue;
		}
		oc = malloc(sizeof(*oc));
		if (oc == NULL) {
			close(fd);
			continue;
		}
		oc->fd = fd;
		oc->index = o->index;
		if (pthread_create(&t, NULL, serve_conn, oc) != 0) {
			free(oc);
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

int demo_start_origins(int n, struct config_addr *out, char *err, size_t err_len)
{
	for (int i = 0; i < n; i++) {
		struct sockaddr_in sin = {.sin_family = AF_INET};
		socklen_t sl = sizeof(sin);
		struct origin *o = rlb_xcalloc(1, sizeof(*o));
		pthread_t t;

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		o->index = i + 1;
		o->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (o->fd < 0 || bind(o->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    listen(o->fd, 128) < 0 ||
		    getsockname(o->fd, (struct sockaddr *)&sin, &sl) < 0) {
			snprintf(err, err_len, "demo origin %d: %s", i + 1, strerror(errno));
			return 0;
		}
		snprintf(out[i].text, sizeof(out[i].text), "127.0.0.1:%u", ntohs(sin.sin_port));
		if (pthread_create(&t, NULL, serve_origin, o) != 0) {
			snprintf(err, err_len, "demo origin %d: cannot start its thread", i + 1);
			return 0;
		}
		pthread_detach(t);
	}
	return 1;
}
