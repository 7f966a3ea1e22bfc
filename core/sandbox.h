/* core/sandbox.h — least privilege: the user ringlb becomes once its
 * sockets are bound, and the seccomp allow-list it may confine itself to.
 *
 * Start-up only, on the main thread (the control thread to be), in order:
 *   sandbox_resolve  when the configuration has been read (also for -t),
 *                    before anything binds: looks up security.user and
 *                    security.group;
 *   sandbox_drop     once every listening socket is bound and every file
 *                    only root may open (access log, TLS keys) is open, and
 *                    before any io_uring ring exists: work a ring queues
 *                    runs with the credentials of the ring's creator, so a
 *                    ring made as root would keep root (DESIGN.md);
 *   sandbox_seccomp  once every thread runs (shards, admin, health
 *                    checker): the filter reaches all of them at once.
 * A reload later runs as the unprivileged user, under the filter.
 */
#ifndef RLB_SANDBOX_H
#define RLB_SANDBOX_H

#include "core/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Who ringlb becomes: sandbox_resolve's answer, sandbox_drop's input. */
struct sandbox_ids {
	bool configured; /* security.user is set (no "keeps root" warning) */
	bool change;     /* started as root for another user: switch ids */
	uid_t uid;
	gid_t gid;
};

/* sandbox_resolve looks up cfg->security.user (a name or a uid) and
 * security.group (a name or a gid; by default the user's primary group)
 * and checks that this process may become them: switching needs root,
 * except to the ids it already has. Returns 1, or 0 with a message such as
 * "FILE:LINE: security.user: no such user \"x\"". */
int sandbox_resolve(const struct config *cfg, struct sandbox_ids *out, char *err, size_t err_len);

/* sandbox_drop becomes ids->uid and ids->gid (real, effective, saved and
 * file-system ids; the supplementary groups become just that group) when
 * ids->change, gives up every capability unless it is still root, and sets
 * no_new_privs in any case. It then checks that root cannot be taken back
 * and that no capability is left. Call it before creating threads that
 * should not start as root. Returns 1, or 0 with a message (refuse to run).
 * Running as root with no security.user logs a warning. */
int sandbox_drop(const struct sandbox_ids *ids, char *err, size_t err_len);

/* sandbox_seccomp confines every thread of the process to the system calls
 * ringlb makes after start-up; any other kills the whole process (SIGSYS).
 * Call it from the control thread once the shards, the admin thread and
 * the health checker run. Returns 1, or 0 with a message. */
int sandbox_seccomp(char *err, size_t err_len);

/* sandbox_selftest_signal is the signal on which a build made with
 * -DRLB_SECCOMP_SELFTEST calls sandbox_selftest_violate, which makes one
 * system call the filter forbids (so the test suite can watch the filter
 * kill it). 0, and a no-op, in a normal build. */
int sandbox_selftest_signal(void);
void sandbox_selftest_violate(void);

#endif
