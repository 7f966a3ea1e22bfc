/* tests/unit/core/sandbox_test.c — unit tests for core/sandbox.c.
 *
 * Goal: security.user and security.group resolve to the ids the user
 * database gives (names and numbers, the primary group by default) and
 * every wrong value gets its one "FILE:LINE: security.KEY: why" line; the
 * drop leaves no way back to root and no capability; the seccomp filter
 * kills the whole process on a call it does not list, and lets the listed
 * ones through.
 *
 * Method: the module is #included so its statics are reachable. The drop
 * and the filter are irreversible, so each runs in a forked child that
 * reports through its exit status (or the signal that killed it). The drop
 * needs root and the user "nobody": without them those tests skip.
 */
#include "core/sandbox.c"

#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define DOC_HEAD                                                                                   \
	"listeners:\n"                                                                             \
	"  - address: 127.0.0.1:8080\n"                                                            \
	"pools:\n"                                                                                 \
	"  - name: app\n"                                                                          \
	"    backends: [127.0.0.1:9001]\n"                                                         \
	"security:\n"

/* resolve loads DOC_HEAD + `section` and resolves it; returns what
 * sandbox_resolve returned, its message in err. */
static int resolve(const char *section, struct sandbox_ids *ids, char *err)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char doc[1024];
	int ok;

	assert_non_null(cfg);
	snprintf(doc, sizeof(doc), "%s%s", DOC_HEAD, section);
	err[0] = '\0';
	if (!config_load_string(cfg, "ringlb.yaml", doc, strlen(doc), err, CONFIG_ERR_MAX))
		fail_msg("config: %s", err);
	ok = sandbox_resolve(cfg, ids, err, CONFIG_ERR_MAX);
	config_free(cfg);
	free(cfg);
	return ok;
}

static void test_parse_id(void **state)
{
	id_t id;

	(void)state;
	assert_true(parse_id("0", &id));
	assert_int_equal(id, 0);
	assert_true(parse_id("65534", &id));
	assert_int_equal(id, 65534);
	assert_false(parse_id("4294967295", &id)); /* (id_t)-1: "unchanged" */
	assert_false(parse_id("99999999999", &id));
	assert_false(parse_id("12ab", &id));
	assert_false(parse_id("nobody", &id));
	assert_false(parse_id("-1", &id));
}

static void test_resolve_names_and_numbers(void **state)
{
	struct passwd *pw = getpwuid(geteuid());
	struct sandbox_ids ids;
	char err[CONFIG_ERR_MAX], section[256];

	(void)state;
	assert_non_null(pw);
	/* Nothing set: nothing to do. */
	assert_int_equal(resolve("  seccomp: true\n", &ids, err), 1);
	assert_false(ids.configured);
	assert_false(ids.change);
	/* The current user, by name and by number: always allowed. */
	snprintf(section, sizeof(section), "  user: %s\n", pw->pw_name);
	assert_int_equal(resolve(section, &ids, err), 1);
	assert_true(ids.configured);
	assert_int_equal(ids.uid, pw->pw_uid);
	assert_int_equal(ids.gid, pw->pw_gid);
	assert_false(ids.change); /* root naming root, or a user naming itself */
	snprintf(section, sizeof(section), "  user: %u\n  group: %u\n", (unsigned)pw->pw_uid,
	         (unsigned)pw->pw_gid);
	assert_int_equal(resolve(section, &ids, err), 1);
	assert_int_equal(ids.uid, pw->pw_uid);
	assert_int_equal(ids.gid, pw->pw_gid);
}

static void test_resolve_errors(void **state)
{
	struct sandbox_ids ids;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(resolve("  user: ringlb-no-such-user\n", &ids, err), 0);
	assert_string_equal(err,
	                    "ringlb.yaml:7: security.user: no such user \"ringlb-no-such-user\"");
	assert_int_equal(resolve("  user: root\n  group: ringlb-no-such-group\n", &ids, err), 0);
	assert_string_equal(
	        err, "ringlb.yaml:8: security.group: no such group \"ringlb-no-such-group\"");
	assert_int_equal(resolve("  group: root\n", &ids, err), 0);
	assert_string_equal(err, "ringlb.yaml:7: security.group: needs security.user: the group "
	                         "alone is never changed");
	/* A uid no one has is still a uid, but has no primary group. */
	assert_int_equal(resolve("  user: 3999999999\n", &ids, err), 0);
	assert_string_equal(err, "ringlb.yaml:6: security.group: required: uid 3999999999 has no "
	                         "user entry to take a primary group from");
	if (geteuid() != 0) {
		assert_int_equal(resolve("  user: root\n", &ids, err), 0);
		assert_string_equal(err, "ringlb.yaml:7: security.user: ringlb must start as root "
		                         "to switch user");
	} else {
		assert_int_equal(resolve("  user: 3999999999\n  group: 3999999999\n", &ids, err),
		                 1);
		assert_true(ids.change);
	}
}

/* child_status runs fn in a forked child and returns its wait status. */
static int child_status(int (*fn)(void))
{
	pid_t pid = fork();
	int st = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit none = {0, 0};

		setrlimit(RLIMIT_CORE, &none); /* a SIGSYS death dumps no core */
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static int drop_to_nobody(void)
{
	struct passwd *pw = getpwnam("nobody");
	struct sandbox_ids ids = {.configured = true, .change = true};
	char err[CONFIG_ERR_MAX];
	uid_t r, e, s;

	ids.uid = pw->pw_uid;
	ids.gid = pw->pw_gid;
	if (!sandbox_drop(&ids, err, sizeof(err))) {
		fprintf(stderr, "sandbox_drop: %s\n", err);
		return 1;
	}
	if (getresuid(&r, &e, &s) != 0 || r != pw->pw_uid || e != r || s != r)
		return 2;
	if (setuid(0) == 0 || seteuid(0) == 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return 3;
	return check_no_caps(err, sizeof(err)) ? 0 : 4;
}

static void test_drop(void **state)
{
	int st;

	(void)state;
	if (geteuid() != 0 || getpwnam("nobody") == NULL)
		skip();
	st = child_status(drop_to_nobody);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static int confine_then_allowed(void)
{
	char err[CONFIG_ERR_MAX];

	if (!sandbox_seccomp(err, sizeof(err))) {
		fprintf(stderr, "sandbox_seccomp: %s\n", err);
		return 1;
	}
	return getpid() > 0 && write(STDERR_FILENO, "", 0) == 0 ? 0 : 2;
}

static int confine_then_forbidden(void)
{
	char err[CONFIG_ERR_MAX];

	if (!sandbox_seccomp(err, sizeof(err)))
		return 1;
	(void)syscall(SYS_personality, 0xffffffffUL);
	return 0; /* not reached when the filter works */
}

static void test_seccomp(void **state)
{
	int st;

	(void)state;
#if defined(__SANITIZE_ADDRESS__)
	skip(); /* ASan's own system calls are not on the list */
#endif
	st = child_status(confine_then_allowed);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	st = child_status(confine_then_forbidden);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_id),
	        cmocka_unit_test(test_resolve_names_and_numbers),
	        cmocka_unit_test(test_resolve_errors),
	        cmocka_unit_test(test_drop),
	        cmocka_unit_test(test_seccomp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
