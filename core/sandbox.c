/* core/sandbox.c — the privilege drop and the seccomp allow-list (see
 * sandbox.h).
 *
 * Start-up only, on the main thread; nothing here runs on the request path.
 * glibc's set*id calls change every thread of the process (it signals each
 * one), but the drop happens before the shard, admin and health threads
 * exist anyway, so they never run as root at all.
 */
#include "core/sandbox.h"

#include "core/common.h"
#include "core/log.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#define LOOKUP_BUF_MAX (1u << 20) /* getpwnam_r's buffer never needs more */
#define CAP_MAX        64         /* capability numbers fit in two 32-bit words */

/* ---- resolving security.user and security.group ---- */

__attribute__((format(printf, 5, 6))) static int
fail(const struct config *cfg, const char *key, char *err, size_t err_len, const char *fmt, ...)
{
	char msg[CONFIG_ERR_MAX];
	char where[16] = "";
	uint32_t line = config_key_line(cfg, "security", key);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(where, sizeof(where), ":%u", line);
	snprintf(err, err_len, "%s%s: security.%s: %s", cfg->source, where, key, msg);
	return 0;
}

/* parse_id reads a numeric uid or gid; (id_t)-1 means "unchanged" to the
 * set*id calls and is refused. */
static bool parse_id(const char *s, id_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v >= (id_t)-1)
		return false;
	*out = (id_t)v;
	return true;
}

/* find_user looks a user up by name or uid. Returns 1 with *uid and, when
 * the user database knows it, *gid (*has_gid says so); 0 when there is no
 * such user; -errno when the lookup itself failed. A uid the database does
 * not know is still a uid: it is found, without a primary group. */
static int find_user(const char *name, uid_t *uid, gid_t *gid, bool *has_gid)
{
	struct passwd pw, *res = NULL;
	bool numeric = parse_id(name, uid);
	size_t cap = 4096;
	int rc;

	*has_gid = false;
	for (;;) {
		char *buf = malloc(cap);

		if (buf == NULL)
			return -ENOMEM;
		rc = numeric ? getpwuid_r(*uid, &pw, buf, cap, &res)
		             : getpwnam_r(name, &pw, buf, cap, &res);
		if (rc == 0 && res != NULL) {
			*uid = pw.pw_uid;
			*gid = pw.pw_gid;
			*has_gid = true;
		}
		free(buf);
		if (rc != ERANGE || cap >= LOOKUP_BUF_MAX)
			break;
		cap *= 2;
	}
	/* Not found is 0 with no result; some NSS modules say ENOENT or ESRCH. */
	if (rc != 0 && rc != ENOENT && rc != ESRCH)
		return -rc;
	return res != NULL || numeric;
}

/* find_group is find_user for groups: 1, 0 or -errno. */
static int find_group(const char *name, gid_t *gid)
{
	struct group gr, *res = NULL;
	bool numeric = parse_id(name, gid);
	size_t cap = 4096;
	int rc;

	if (numeric)
		return 1;
	for (;;) {
		char *buf = malloc(cap);

		if (buf == NULL)
			return -ENOMEM;
		rc = getgrnam_r(name, &gr, buf, cap, &res);
		if (rc == 0 && res != NULL)
			*gid = gr.gr_gid;
		free(buf);
		if (rc != ERANGE || cap >= LOOKUP_BUF_MAX)
			break;
		cap *= 2;
	}
	if (rc != 0 && rc != ENOENT && rc != ESRCH)
		return -rc;
	return res != NULL;
}

/* resolve_group fills out->gid from security.group, or from the user's
 * primary group. */
static int resolve_group(const struct config *cfg, gid_t primary, bool has_primary,
                         struct sandbox_ids *out, char *err, size_t err_len)
{
	const char *group = cfg->security.group;
	int r;

	if (group[0] == '\0') {
		if (!has_primary)
			return fail(
			        cfg, "group", err, err_len,
			        "required: uid %u has no user entry to take a primary group from",
			        (unsigned)out->uid);
		out->gid = primary;
		return 1;
	}
	r = find_group(group, &out->gid);
	if (r < 0)
		return fail(cfg, "group", err, err_len, "cannot look up group \"%s\": %s", group,
		            strerror(-r));
	if (r == 0)
		return fail(cfg, "group", err, err_len, "no such group \"%s\"", group);
	return 1;
}

int sandbox_resolve(const struct config *cfg, struct sandbox_ids *out, char *err, size_t err_len)
{
	const struct config_security *sec = &cfg->security;
	gid_t primary = 0;
	bool has_primary;
	int r;

	memset(out, 0, sizeof(*out));
	if (sec->user[0] == '\0') {
		if (sec->group[0] != '\0')
			return fail(cfg, "group", err, err_len,
			            "needs security.user: the group alone is never changed");
		return 1;
	}
	out->configured = true;
	r = find_user(sec->user, &out->uid, &primary, &has_primary);
	if (r < 0)
		return fail(cfg, "user", err, err_len, "cannot look up user \"%s\": %s", sec->user,
		            strerror(-r));
	if (r == 0)
		return fail(cfg, "user", err, err_len, "no such user \"%s\"", sec->user);
	if (!resolve_group(cfg, primary, has_primary, out, err, err_len))
		return 0;
	if (geteuid() == 0) {
		/* user: root (uid 0) says "stay root" on purpose: no switch and
		 * no warning. */
		out->change = out->uid != 0;
		return 1;
	}
	/* Without root only the current ids are possible; the primary group
	 * is only insisted on when it was written down. */
	if (out->uid != getuid() || out->uid != geteuid())
		return fail(cfg, "user", err, err_len, "ringlb must start as root to switch user");
	if (sec->group[0] != '\0' && (out->gid != getgid() || out->gid != getegid()))
		return fail(cfg, "group", err, err_len,
		            "ringlb must start as root to switch group");
	return 1;
}

/* ---- dropping privileges ---- */

/* drop_bounding_set empties the capability bounding set while ringlb still
 * has CAP_SETPCAP. With no_new_privs and no exec it guards nothing today;
 * it is one more wall should either ever change. Best effort: a container
 * may deny it, and the checks that matter (effective, permitted) follow. */
static void drop_bounding_set(void)
{
	for (int c = 0; c < CAP_MAX; c++) {
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0)
			break; /* past the last capability this kernel knows */
		(void)prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
	}
}

static int switch_ids(const struct sandbox_ids *ids, char *err, size_t err_len)
{
	const char *step = NULL;

	drop_bounding_set();
	/* Groups first: once the uid is no longer 0, they cannot change. */
	if (setgroups(1, &ids->gid) != 0)
		step = "setgroups";
	else if (setresgid(ids->gid, ids->gid, ids->gid) != 0)
		step = "setresgid";
	else if (setresuid(ids->uid, ids->uid, ids->uid) != 0)
		step = "setresuid";
	if (step == NULL)
		return 1;
	snprintf(err, err_len, "cannot drop privileges to uid %u gid %u: %s: %s",
	         (unsigned)ids->uid, (unsigned)ids->gid, step, strerror(errno));
	return 0;
}

/* clear_caps empties the effective, permitted, inheritable and ambient
 * sets: a non-root process may still hold capabilities (file capabilities
 * such as cap_net_bind_service, or a supervisor's ambient set), and none
 * is needed once the listeners are bound. A uid change from root clears
 * them already; doing it again costs nothing. */
static int clear_caps(char *err, size_t err_len)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capset, &hdr, data) != 0) {
		snprintf(err, err_len, "cannot give up capabilities: capset: %s", strerror(errno));
		return 0;
	}
	return 1;
}

/* check_no_caps reads the effective and permitted sets back from the
 * kernel (what /proc/self/status shows as CapEff and CapPrm; the ambient
 * set is always within the permitted one). */
static int check_no_caps(char *err, size_t err_len)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) != 0) {
		snprintf(err, err_len, "cannot read capabilities back: capget: %s",
		         strerror(errno));
		return 0;
	}
	if ((data[0].effective | data[1].effective | data[0].permitted | data[1].permitted) != 0) {
		snprintf(err, err_len,
		         "capabilities remain after the drop (effective %08x%08x, permitted "
		         "%08x%08x): refusing to run",
		         data[1].effective, data[0].effective, data[1].permitted,
		         data[0].permitted);
		return 0;
	}
	return 1;
}

/* check_ids checks every uid and gid, and the group list, then that root
 * cannot be taken back: the saved set-user-ID is what would allow it. */
static int check_ids(const struct sandbox_ids *ids, char *err, size_t err_len)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg, groups[2];
	int n = getgroups(2, groups);

	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != ids->uid ||
	    eu != ids->uid || su != ids->uid || rg != ids->gid || eg != ids->gid ||
	    sg != ids->gid || n != 1 || groups[0] != ids->gid) {
		snprintf(err, err_len, "ids after the drop are not uid %u gid %u: refusing to run",
		         (unsigned)ids->uid, (unsigned)ids->gid);
		return 0;
	}
	if (setuid(0) == 0 || setgid(0) == 0) {
		snprintf(err, err_len, "root could be taken back after the drop: refusing to run");
		return 0;
	}
	return 1;
}

int sandbox_drop(const struct sandbox_ids *ids, char *err, size_t err_len)
{
	if (ids->change && !switch_ids(ids, err, err_len))
		return 0;
	if (geteuid() != 0 && !clear_caps(err, err_len))
		return 0;
	/* No exec is ever made; no_new_privs makes sure nothing could regain
	 * privileges through one (set-user-ID files, file capabilities). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, err_len, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
		return 0;
	}
	if (ids->change && !check_ids(ids, err, err_len))
		return 0;
	if (geteuid() != 0 && !check_no_caps(err, err_len))
		return 0;
	/* The kernel made the process non-dumpable when its ids changed, and
	 * it stays so: its memory holds TLS private keys read as root, which
	 * a dumpable process would let any other process of the same user
	 * read (ptrace, /proc/PID/mem) and a core dump would write to disk. */
	if (ids->change)
		rlb_log(LOG_INFO, "running as uid %u gid %u", (unsigned)ids->uid,
		        (unsigned)ids->gid);
	else if (!ids->configured && geteuid() == 0)
		rlb_log(LOG_WARN, "running as root: set security.user to drop privileges once "
		                  "the listeners are bound");
	return 1;
}

/* ---- seccomp ---- */

/* What the threads call once start-up is over, and nothing else: the set
 * the whole integration suite makes with seccomp forced on (docs/reference.md,
 * security), on Debian 12's glibc. Names, not numbers, so that the list
 * reads the same on every architecture; a name this one lacks is skipped. */
static const char *const allowed[] = {
        /* shards: the ring does their I/O; conn_open still reads the peer's
         * address and sets socket options; closing is close(2) */
        "io_uring_enter",
        "io_uring_register",
        "getpeername",
        "setsockopt",
        "getsockopt",
        "close",
        /* memory: malloc (brk, and mprotect to grow a thread's arena;
         * realloc of a block above the mmap threshold is mremap, as when
         * the admin API grows a large pool), thread stacks freed at exit */
        "brk",
        "mmap",
        "munmap",
        "madvise",
        "mprotect",
        "mremap",
        /* threads and waiting: liburcu, the control loop, usleep */
        "futex",
        "clock_nanosleep",
        "rt_sigtimedwait",
        "rt_sigprocmask",
        "exit",
        "exit_group",
        /* glibc's start of a thread (the health checker and admin threads
         * may still be starting when the filter comes) */
        "rseq",
        "set_robust_list",
        /* time: the vDSO answers these without a system call, unless the
         * host's clock source does not support it */
        "clock_gettime",
        "gettimeofday",
        "time",
        /* reloads (configuration, certificates, keys, list files), logs:
         * each log line's strftime checks /etc/localtime (newfstatat) and
         * reads it again when it changed (openat, read, lseek, close) */
        "openat",
        "read",
        "newfstatat",
        "lseek",
        "write",
        "getpid",
        /* the admin API and the health checker */
        "socket",
        "connect",
        "poll",
        "accept4",
        "recvfrom",
        "sendto",
        "shutdown",
        /* TLS, request ids */
        "getrandom",
};

int sandbox_seccomp(char *err, size_t err_len)
{
	scmp_filter_ctx ctx;
	int rc;

	/* liburcu starts its call_rcu thread on the first call_rcu (the
	 * cache's first eviction): start it now, while making a thread is
	 * still allowed, and wait with rcu_barrier until it runs its
	 * callbacks, so that it is past glibc's thread start-up (rseq,
	 * set_robust_list) when the filter comes. */
	(void)get_default_call_rcu_data();
	rcu_barrier();
	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL) {
		snprintf(err, err_len, "seccomp: cannot make a filter");
		return 0;
	}
	/* TSYNC: every thread gets the filter at once, or none does. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; rc == 0 && i < RLB_ARRAY_LEN(allowed); i++) {
		int nr = seccomp_syscall_resolve_name(allowed[i]);

		if (nr != __NR_SCMP_ERROR)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	}
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0) {
		snprintf(err, err_len, "seccomp: cannot install the filter: %s", strerror(-rc));
		return 0;
	}
	rlb_log(LOG_INFO, "seccomp: %zu system calls allowed, any other kills the process",
	        RLB_ARRAY_LEN(allowed));
	return 1;
}

/* ---- the self-test build ---- */

#ifdef RLB_SECCOMP_SELFTEST
int sandbox_selftest_signal(void)
{
	return SIGUSR2;
}

/* personality(0xffffffff) only reads the execution domain: harmless when
 * allowed, and nothing in ringlb calls it. */
void sandbox_selftest_violate(void)
{
	rlb_log(LOG_WARN, "seccomp self-test: calling personality(2), which is not allowed");
	(void)syscall(SYS_personality, 0xffffffffUL);
	rlb_log(LOG_WARN, "seccomp self-test: personality(2) returned: no filter stopped it");
}
#else
int sandbox_selftest_signal(void)
{
	return 0;
}

void sandbox_selftest_violate(void)
{
}
#endif
