/* core/admin.c — the admin listener and its JSON API (see admin.h).
 *
 * Requests are small and rare, so the server is plain blocking code: one
 * connection at a time, a receive timeout, the head parsed with the same
 * strict parser as client requests, a body of at most ADMIN_BODY_MAX
 * bytes, and every answer closes the connection.
 */
#include "core/admin.h"

#include "core/caching.h"
#include "core/h1.h"
#include "core/log.h"
#include "core/protect.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#define ADMIN_REQ_MAX  16384
#define ADMIN_BODY_MAX 4096
#define ADMIN_OUT_MAX  (1 << 20)

static pthread_t admin_thread;
static atomic_bool admin_stopping;
static bool admin_started;
static int admin_fd = -1;

struct reply {
	int status;
	char *buf; /* ADMIN_OUT_MAX bytes of JSON */
	size_t len;
};

__attribute__((format(printf, 2, 3))) static void out(struct reply *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->len >= ADMIN_OUT_MAX)
		return;
	va_start(ap, fmt);
	n = vsnprintf(r->buf + r->len, ADMIN_OUT_MAX - r->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->len +=
		        (size_t)n < ADMIN_OUT_MAX - r->len ? (size_t)n : ADMIN_OUT_MAX - r->len - 1;
}

static void fail(struct reply *r, int status, const char *msg)
{
	r->status = status;
	r->len = 0;
	out(r, "{\"error\": \"%s\"}\n", msg);
}

int control_publish(struct control_plane *cp, bool reread, char *err, size_t err_len)
{
	struct snapshot *snap, *old;

	if (!config_validate(cp->cfg, err, err_len))
		return 0;
	snap = snapshot_rebuild(cp->cfg, cp->reg, ++cp->version, reread ? NULL : snapshot_current(),
	                        err, err_len);
	if (snap == NULL)
		return 0;
	old = snapshot_publish(snap);
	synchronize_rcu(); /* every shard has passed a quiescent state */
	snapshot_free(old);
	return 1;
}

int control_reload_tls(struct control_plane *cp, const struct config *from, char *err,
                       size_t err_len)
{
	struct tls_server *fresh[CONFIG_LISTENERS_MAX] = {0};
	const struct config *cfg = cp->cfg;
	int n = 0;

	for (size_t i = 0; i < cfg->num_listeners; i++) {
		const struct config_tls *t = cfg->listeners[i].tls;
		const char *src = cfg->source;

		if (cp->tls[i] == NULL)
			continue;
		if (i < from->num_listeners && from->listeners[i].tls != NULL &&
		    from->listeners[i].addr.len == cfg->listeners[i].addr.len &&
		    memcmp(&from->listeners[i].addr.ss, &cfg->listeners[i].addr.ss,
		           cfg->listeners[i].addr.len) == 0) {
			t = from->listeners[i].tls;
			src = from->source;
		}
		fresh[i] = tls_server_new(t, src, i, err, err_len);
		if (fresh[i] == NULL) {
			for (size_t j = 0; j < i; j++)
				tls_server_free(fresh[j]);
			return -1;
		}
	}
	for (size_t i = 0; i < cfg->num_listeners; i++) {
		if (fresh[i] == NULL)
			continue;
		tls_server_adopt(cp->tls[i], fresh[i]);
		n++;
	}
	return n;
}

/* ---- the API ---- */

static const char *backend_state(const struct lb_live *live, const struct config_backend *b,
                                 uint32_t uid)
{
	uint32_t down = live != NULL ? atomic_load(&live[uid].down) : 0;

	if (b->draining)
		return "draining";
	if (down & LB_DOWN_ACTIVE)
		return "down";
	if (down & LB_DOWN_PASSIVE)
		return "ejected";
	return "up";
}

/* check_text renders the last health check: null (none yet), the HTTP
 * status, "tcp ok", or the error ("ETIMEDOUT" as its strerror text). */
static const char *check_text(const struct lb_live *l, char *buf, size_t cap)
{
	int32_t v = l != NULL ? atomic_load(&l->last_check) : 0;

	if (v == 0)
		return "null";
	if (v == 1)
		snprintf(buf, cap, "\"tcp ok\"");
	else if (v > 1)
		snprintf(buf, cap, "%d", v);
	else
		snprintf(buf, cap, "\"%s\"", strerror(-v));
	return buf;
}

static void list_pools(struct control_plane *cp, struct reply *r)
{
	const struct snapshot *snap = snapshot_current();
	char check[96];

	out(r, "{\"version\": %llu, \"pools\": [", (unsigned long long)cp->version);
	for (size_t p = 0; p < cp->cfg->num_pools && p < snap->num_pools; p++) {
		const struct config_pool *pool = &cp->cfg->pools[p];
		const struct snap_pool *sp = &snap->pools[p];

		out(r, "%s\n  {\"name\": \"%s\", \"algorithm\": \"%s\", \"backends\": [",
		    p ? "," : "", pool->name, config_algorithm_names[pool->algorithm]);
		for (size_t i = 0; i < pool->num_backends && i < sp->lb.num_backends; i++) {
			const struct config_backend *b = &pool->backends[i];
			uint32_t uid = sp->lb.backends[i].uid;
			const struct lb_live *l = sp->lb.live != NULL ? &sp->lb.live[uid] : NULL;

			out(r,
			    "%s\n    {\"address\": \"%s\", \"weight\": %u, \"backup\": %s, "
			    "\"max_connections\": %u, \"state\": \"%s\", \"active\": %u, "
			    "\"ewma_us\": %u, \"agent_permille\": %u, \"last_check\": %s}",
			    i ? "," : "", b->addr.text, b->weight, b->backup ? "true" : "false",
			    b->max_connections, backend_state(sp->lb.live, b, uid),
			    l ? atomic_load(&l->active) : 0, l ? atomic_load(&l->ewma_us) : 0,
			    l ? atomic_load(&l->agent_permille) : 0,
			    check_text(l, check, sizeof(check)));
		}
		out(r, "]}");
	}
	out(r, "\n]}\n");
}

/* json_field finds "key": in a flat JSON object and returns what follows
 * (a string's content, or a number's text) in out. */
static int json_field(const char *body, const char *key, char *outv, size_t cap)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(body, pat);
	if (p == NULL)
		return 0;
	p += strlen(pat);
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p++ != ':')
		return 0;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"' && n + 1 < cap; p++)
			outv[n++] = *p;
		if (*p != '"')
			return 0;
	} else {
		for (; (*p >= '0' && *p <= '9') && n + 1 < cap; p++)
			outv[n++] = *p;
	}
	outv[n] = '\0';
	return n > 0;
}

static int parse_weight(const char *body, uint32_t *w)
{
	char v[16];
	char *end;
	unsigned long x;

	if (!json_field(body, "weight", v, sizeof(v)))
		return 0;
	x = strtoul(v, &end, 10);
	if (*end != '\0' || x < 1 || x > 1000)
		return -1;
	*w = (uint32_t)x;
	return 1;
}

static struct config_pool *find_pool(struct control_plane *cp, const char *name, size_t len)
{
	for (size_t p = 0; p < cp->cfg->num_pools; p++)
		if (strlen(cp->cfg->pools[p].name) == len &&
		    memcmp(cp->cfg->pools[p].name, name, len) == 0)
			return &cp->cfg->pools[p];
	return NULL;
}

static ssize_t find_backend(const struct config_pool *pool, const char *addr, size_t len)
{
	for (size_t i = 0; i < pool->num_backends; i++)
		if (strlen(pool->backends[i].addr.text) == len &&
		    memcmp(pool->backends[i].addr.text, addr, len) == 0)
			return (ssize_t)i;
	return -1;
}

static void add_backend(struct control_plane *cp, struct config_pool *pool, const char *body,
                        struct reply *r)
{
	struct config_backend *grown;
	struct config_addr addr;
	char text[96], err[CONFIG_ERR_MAX];
	uint32_t weight = 1;

	if (!json_field(body, "address", text, sizeof(text)) || !config_parse_addr(text, &addr)) {
		fail(r, 400, "expected {\\\"address\\\": \\\"IP:PORT\\\"} with a numeric IP");
		return;
	}
	if (parse_weight(body, &weight) < 0) {
		fail(r, 400, "weight: expected an integer from 1 to 1000");
		return;
	}
	if (find_backend(pool, addr.text, strlen(addr.text)) >= 0) {
		fail(r, 409, "the pool already has this backend");
		return;
	}
	if (pool->num_backends == CONFIG_BACKENDS_MAX) {
		fail(r, 409, "the pool is full");
		return;
	}
	grown = realloc(pool->backends, (pool->num_backends + 1) * sizeof(*grown));
	if (grown == NULL) {
		fail(r, 500, "out of memory");
		return;
	}
	pool->backends = grown;
	memset(&grown[pool->num_backends], 0, sizeof(*grown));
	grown[pool->num_backends].addr = addr;
	grown[pool->num_backends].weight = weight;
	pool->num_backends++;
	if (!control_publish(cp, false, err, sizeof(err))) {
		pool->num_backends--;
		fail(r, 400, "refused by validation");
		return;
	}
	rlb_log(LOG_INFO, "admin: backend %s added to pool %s", addr.text, pool->name);
	r->status = 201;
	out(r, "{\"added\": \"%s\", \"pool\": \"%s\"}\n", addr.text, pool->name);
}

/* change_backend removes, drains or re-weights backend `i` of `pool`. */
static void change_backend(struct control_plane *cp, struct config_pool *pool, size_t i,
                           const char *action, const char *body, struct reply *r)
{
	struct config_backend saved = pool->backends[i];
	char err[CONFIG_ERR_MAX], addr[64];
	uint32_t weight;

	snprintf(addr, sizeof(addr), "%s", saved.addr.text);
	if (strcmp(action, "remove") == 0) {
		if (pool->num_backends == 1) {
			fail(r, 409, "a pool keeps at least one backend");
			return;
		}
		memmove(&pool->backends[i], &pool->backends[i + 1],
		        (pool->num_backends - i - 1) * sizeof(pool->backends[0]));
		pool->num_backends--;
	} else if (strcmp(action, "drain") == 0) {
		pool->backends[i].draining = true;
	} else {
		if (parse_weight(body, &weight) != 1) {
			fail(r, 400, "expected {\\\"weight\\\": N} with N from 1 to 1000");
			return;
		}
		pool->backends[i].weight = weight;
	}
	if (!control_publish(cp, false, err, sizeof(err))) {
		if (strcmp(action, "remove") == 0) {
			memmove(&pool->backends[i + 1], &pool->backends[i],
			        (pool->num_backends - i) * sizeof(pool->backends[0]));
			pool->num_backends++;
		}
		pool->backends[i] = saved;
		fail(r, 409, "refused by validation (a pool needs a backend that is not a backup)");
		return;
	}
	rlb_log(LOG_INFO, "admin: backend %s of pool %s: %s", addr, pool->name, action);
	r->status = 200;
	out(r, "{\"%s\": \"%s\", \"pool\": \"%s\"}\n",
	    strcmp(action, "remove") == 0 ? "removed" : action, addr, pool->name);
}

/* reload_tls re-reads every TLS listener's certificate, key, OCSP and CA
 * files (POST /api/tls/reload): certificates renewed on disk take effect
 * without a restart; a file that does not load changes nothing. */
static void reload_tls(struct control_plane *cp, struct h1_str method, struct reply *r)
{
	char err[CONFIG_ERR_MAX];
	int n;

	if (!h1_str_ieq(method, "POST")) {
		fail(r, 405, "use POST");
		return;
	}
	n = control_reload_tls(cp, cp->cfg, err, sizeof(err));
	if (n < 0) {
		/* JSON-safe: the message names files, which may hold quotes */
		for (char *p = err; *p != '\0'; p++)
			if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
				*p = '?';
		rlb_log(LOG_ERROR, "admin: TLS reload refused: %s", err);
		r->status = 422;
		r->len = 0;
		out(r, "{\"error\": \"%s\"}\n", err);
		return;
	}
	rlb_log(LOG_INFO, "admin: TLS certificates reloaded on %d listener(s)", n);
	r->status = 200;
	out(r, "{\"reloaded\": %d}\n", n);
}

/* cache_api answers GET /api/cache (zones and counters) and POST
 * /api/cache/purge {"host": H, "path": P} or {"host": H, "prefix": P}. */
static void cache_api(struct h1_str method, bool purge, const char *body, struct reply *r)
{
	char host[256] = "", target[1024] = "";
	bool prefix = false;
	int64_t n;

	if (!purge) {
		if (!h1_str_ieq(method, "GET")) {
			fail(r, 405, "use GET");
			return;
		}
		r->len = caching_stats_json(r->buf, ADMIN_OUT_MAX - 1);
		r->status = r->len > 0 ? 200 : 500;
		if (r->len > 0)
			r->buf[r->len++] = '\n';
		return;
	}
	if (!h1_str_ieq(method, "POST")) {
		fail(r, 405, "use POST");
		return;
	}
	json_field(body, "host", host, sizeof(host));
	if (!json_field(body, "path", target, sizeof(target)))
		prefix = json_field(body, "prefix", target, sizeof(target)) != 0;
	if (target[0] != '/') {
		fail(r, 400,
		     "expected {\\\"path\\\": \\\"/...\\\"} or {\\\"prefix\\\": \\\"/...\\\"}, "
		     "with an optional \\\"host\\\"");
		return;
	}
	for (char *p = host; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	rcu_thread_offline(); /* the shards do the work; this thread only waits */
	n = caching_purge(host, target, prefix);
	rcu_thread_online();
	if (n < 0) {
		fail(r, 503, "the shards did not answer in time");
		return;
	}
	rlb_log(LOG_INFO, "admin: cache purge of %s%s%s: %lld object(s)", host[0] ? host : "*",
	        target, prefix ? "*" : "", (long long)n);
	r->status = 200;
	out(r, "{\"purged\": %lld}\n", (long long)n);
}

/* route dispatches one API request under the control-plane lock. */
static void route(struct control_plane *cp, struct h1_str method, struct h1_str target,
                  const char *body, struct reply *r)
{
	char path[512];
	char *parts[6];
	int n = 0;
	struct config_pool *pool;
	ssize_t b;

	if (target.len >= sizeof(path)) {
		fail(r, 404, "no such resource");
		return;
	}
	memcpy(path, target.ptr, target.len);
	path[target.len] = '\0';
	for (char *save = NULL, *tok = strtok_r(path, "/", &save); tok != NULL && n < 6;
	     tok = strtok_r(NULL, "/", &save))
		parts[n++] = tok;
	if (n == 3 && strcmp(parts[0], "api") == 0 && strcmp(parts[1], "tls") == 0 &&
	    strcmp(parts[2], "reload") == 0) {
		reload_tls(cp, method, r);
		return;
	}
	if (n >= 2 && n <= 3 && strcmp(parts[0], "api") == 0 && strcmp(parts[1], "cache") == 0 &&
	    (n == 2 || strcmp(parts[2], "purge") == 0)) {
		cache_api(method, n == 3, body, r);
		return;
	}
	if (n == 2 && strcmp(parts[0], "api") == 0 && strcmp(parts[1], "protection") == 0) {
		if (!h1_str_ieq(method, "GET")) {
			fail(r, 405, "use GET");
			return;
		}
		r->len = protect_stats_json(cp->cfg, r->buf, ADMIN_OUT_MAX - 1);
		r->status = 200;
		r->buf[r->len++] = '\n';
		return;
	}
	if (n < 2 || strcmp(parts[0], "api") != 0 || strcmp(parts[1], "pools") != 0) {
		fail(r, 404, "no such resource");
		return;
	}
	if (n == 2) {
		if (!h1_str_ieq(method, "GET")) {
			fail(r, 405, "use GET");
			return;
		}
		list_pools(cp, r);
		return;
	}
	pool = find_pool(cp, parts[2], strlen(parts[2]));
	if (pool == NULL || n < 4 || strcmp(parts[3], "backends") != 0) {
		fail(r, 404, pool == NULL ? "no such pool" : "no such resource");
		return;
	}
	if (n == 4) {
		if (!h1_str_ieq(method, "POST")) {
			fail(r, 405, "use POST to add a backend");
			return;
		}
		add_backend(cp, pool, body, r);
		return;
	}
	b = find_backend(pool, parts[4], strlen(parts[4]));
	if (b < 0) {
		fail(r, 404, "no such backend in this pool");
		return;
	}
	if (n == 5 && h1_str_ieq(method, "DELETE"))
		change_backend(cp, pool, (size_t)b, "remove", body, r);
	else if (n == 6 && strcmp(parts[5], "drain") == 0 && h1_str_ieq(method, "POST"))
		change_backend(cp, pool, (size_t)b, "drain", body, r);
	else if (n == 6 && strcmp(parts[5], "weight") == 0 && h1_str_ieq(method, "PUT"))
		change_backend(cp, pool, (size_t)b, "weight", body, r);
	else
		fail(r, 405, "method not allowed here");
}

/* ---- the server ---- */

static bool authorized(const struct control_plane *cp, const struct h1_msg *m)
{
	const char *token = cp->cfg->admin.token;
	size_t tlen = strlen(token);

	if (tlen == 0)
		return true;
	for (size_t i = 0; i < m->num_headers; i++) {
		struct h1_str v = m->headers[i].value;

		if (!h1_str_ieq(m->headers[i].name, "Authorization"))
			continue;
		if (v.len == 7 + tlen && strncasecmp(v.ptr, "Bearer ", 7) == 0 &&
		    memcmp(v.ptr + 7, token, tlen) == 0)
			return true;
	}
	return false;
}

/* read_request reads one request (head and Content-Length body) into buf.
 * Returns the parsed head, or 0 when the client sent nothing usable. */
static int read_request(int fd, char *buf, struct h1_msg *m, char **out_body)
{
	static const struct h1_limits lim = {8192, ADMIN_REQ_MAX - ADMIN_BODY_MAX - 1, 64};
	struct h1_scan scan = {0};
	size_t len = 0;
	enum h1_result res = H1_PARTIAL;

	while (res == H1_PARTIAL) {
		ssize_t got = recv(fd, buf + len, ADMIN_REQ_MAX - 1 - len, 0);

		if (got <= 0)
			return 0;
		len += (size_t)got;
		res = h1_parse_request(&scan, buf, len, &lim, m);
	}
	if (res != H1_OK || m->body == H1_BODY_CHUNKED ||
	    (m->body == H1_BODY_LENGTH && m->content_length > ADMIN_BODY_MAX))
		return 0;
	while (m->body == H1_BODY_LENGTH && len < m->head_len + m->content_length) {
		ssize_t got = recv(fd, buf + len, ADMIN_REQ_MAX - 1 - len, 0);

		if (got <= 0)
			return 0;
		len += (size_t)got;
	}
	buf[m->head_len + (m->body == H1_BODY_LENGTH ? m->content_length : 0)] = '\0';
	*out_body = buf + m->head_len;
	return 1;
}

static void serve(struct control_plane *cp, int fd, char *buf, struct reply *r)
{
	struct h1_header headers[64];
	struct h1_msg m = {.headers = headers, .headers_cap = 64};
	struct timeval tv = {.tv_sec = 2};
	char head[256];
	char *body = NULL;
	int n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r->len = 0;
	r->status = 200;
	if (!read_request(fd, buf, &m, &body))
		fail(r, 400, "malformed request");
	else if (!authorized(cp, &m))
		fail(r, 401, "a valid Authorization: Bearer token is required");
	else {
		/* Offline while waiting: the lock holder may be waiting for a
		 * grace period (reload, ticket rotation), which needs us quiescent. */
		rcu_thread_offline();
		pthread_mutex_lock(&cp->lock);
		rcu_thread_online();
		route(cp, m.method, m.target, body, r);
		pthread_mutex_unlock(&cp->lock);
	}
	n = snprintf(head, sizeof(head),
	             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	             "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
	             r->status, h1_status_reason(r->status), r->len,
	             r->status == 401 ? "WWW-Authenticate: Bearer\r\n" : "");
	if (send(fd, head, (size_t)n, MSG_NOSIGNAL) == n)
		(void)!send(fd, r->buf, r->len, MSG_NOSIGNAL);
	close(fd);
}

static void *admin_main(void *arg)
{
	struct control_plane *cp = arg;
	char *buf = malloc(ADMIN_REQ_MAX);
	struct reply r = {.buf = malloc(ADMIN_OUT_MAX)};

	rcu_register_thread();
	rcu_thread_offline();
	while (buf != NULL && r.buf != NULL && !atomic_load(&admin_stopping)) {
		struct pollfd pfd = {.fd = admin_fd, .events = POLLIN};
		int fd;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		fd = accept4(admin_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		rcu_thread_online(); /* list_pools reads the snapshot */
		serve(cp, fd, buf, &r);
		rcu_thread_offline();
	}
	rcu_unregister_thread();
	free(buf);
	free(r.buf);
	return NULL;
}

int admin_bind(struct control_plane *cp, char *err, size_t err_len)
{
	const struct config_admin *a = &cp->cfg->admin;
	int one = 1;

	if (!a->enabled)
		return 1;
	admin_fd = socket(a->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (admin_fd < 0 || setsockopt(admin_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(admin_fd, (const struct sockaddr *)&a->addr.ss, a->addr.len) < 0 ||
	    listen(admin_fd, 16) < 0) {
		snprintf(err, err_len, "admin %s: %s", a->addr.text, strerror(errno));
		if (admin_fd >= 0)
			close(admin_fd);
		admin_fd = -1;
		return 0;
	}
	return 1;
}

int admin_start(struct control_plane *cp, char *err, size_t err_len)
{
	const struct config_admin *a = &cp->cfg->admin;

	if (admin_fd < 0)
		return 1; /* disabled, or admin_bind failed and said so */
	atomic_store(&admin_stopping, false);
	if (pthread_create(&admin_thread, NULL, admin_main, cp) != 0) {
		snprintf(err, err_len, "admin: cannot start its thread");
		close(admin_fd);
		admin_fd = -1;
		return 0;
	}
	admin_started = true;
	rlb_log(LOG_INFO, "admin API on %s%s", a->addr.text,
	        a->token[0] ? " (token required)" : "");
	return 1;
}

void admin_stop(void)
{
	if (admin_started) {
		atomic_store(&admin_stopping, true);
		pthread_join(admin_thread, NULL);
	}
	if (admin_fd >= 0)
		close(admin_fd);
	admin_fd = -1;
	admin_started = false;
}
