"""Least privilege: the privilege drop (security.user, security.group) and
the seccomp allow-list (security.seccomp).

Goal: started as root with a user, ringlb runs as that user and group
(real, effective, saved and file-system ids; supplementary groups just that
group), with no capability left, no_new_privs set, every thread (io_uring
workers included) unprivileged, its rings made after the drop, and it still
proxies and reloads files the user may read. With seccomp on it serves,
reloads, checks health, answers the admin API and exits 0; a build that
makes one forbidden system call dies of SIGSYS only when the filter is on.
An unknown user or group is a configuration error before anything binds.

Method: /proc/PID/status and /proc/PID/task/*/status read from outside; the
ring descriptors from /proc/PID/fd; the order of the drop and the rings
from the log (log_level debug). The misbehaving build is
`make BUILD/ringlb-seccomp-selftest` (core/sandbox.c with
-DRLB_SECCOMP_SELFTEST), which calls personality(2) on SIGUSR2. The parts
that switch users need root and skip without it; the seccomp parts skip
under --sanitized (ASan and UBSan make system calls the list lacks).
"""

import grp
import json
import os
import pwd
import re
import resource
import signal
import subprocess
import time

from certs import Pki, tls_config
from lib import REPO_ROOT, Conn, closed_port, free_port, port_open, request, served_by, \
    timeout, to_yaml, wait_stderr

ERROR_LINE = re.compile(r"^(?P<file>[^\n:]+):(?P<line>\d+): (?P<key>[^\s:]+): (?P<what>.+)$")


# -- helpers ------------------------------------------------------------------


def require_root(t):
    if os.geteuid() != 0:
        t.skip("switching users needs root (run the suite as root)")


def require_unsanitized(t):
    if t.sanitized:
        t.skip("seccomp is not used with sanitizer builds: ASan and UBSan make system "
               "calls the allow-list does not hold")


def nobody(t):
    """(uid, primary gid) of the user nobody, or a skip."""
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        t.skip("no user named nobody here")
    return pw.pw_uid, pw.pw_gid


def status(pid, task=None):
    """/proc/PID/status (or a thread's) as {field: value}."""
    path = "/proc/%d/status" % pid if task is None else "/proc/%d/task/%s/status" % (pid, task)
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def thread_uids(t, pid):
    """{thread name: Uid line} for every thread of pid."""
    out = {}
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            st = status(pid, task)
        except OSError:
            continue  # the thread ended meanwhile
        out["%s/%s" % (st.get("Name"), task)] = st.get("Uid")
    return out


def ring_fds(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "anon_inode:[io_uring]":
                n += 1
        except OSError:
            pass
    return n


def let_others_in(t):
    """Lets other users reach the test's files (the run's directories are
    0700): ringlb re-reads its configuration as the unprivileged user."""
    for d in (os.path.dirname(t.tmpdir), t.tmpdir):
        os.chmod(d, 0o711)


def wait_exit(proc, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    return proc.poll()


def selftest_binary(t):
    """Builds the seccomp self-test build next to --binary when that lives
    in this repository (only core/sandbox.c is compiled again), else in the
    test's directory (a whole build)."""
    bindir = os.path.dirname(t.binary())
    rel = os.path.relpath(bindir, REPO_ROOT)
    build = rel if not rel.startswith("..") else os.path.join(t.tmpdir, "build")
    target = os.path.join(build, "ringlb-seccomp-selftest")
    try:
        cp = subprocess.run(["make", "-C", REPO_ROOT, "--no-print-directory", "-j2",
                             "BUILD=" + build, target], capture_output=True,
                            timeout=t.slow(240))
    except FileNotFoundError:
        t.skip("no make to build the seccomp self-test build")
    except subprocess.TimeoutExpired:
        t.fail("building %s took too long" % target)
    if cp.returncode != 0:
        t.fail("make %s failed:\n%s" % (target, cp.stderr.decode("utf-8", "replace")[-2000:]))
    return os.path.join(REPO_ROOT, target) if not os.path.isabs(target) else target


def admin_api(port, method, path, body=None):
    c = Conn(port, 5)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        resp = c.request(method, path, headers=[("Content-Type", "application/json")],
                         body=payload)
    finally:
        c.close()
    return resp.status, (json.loads(resp.body) if resp.body else None)


# -- (a) the privilege drop -----------------------------------------------------


@timeout(60)
def test_drop_to_nobody(t):
    """As root with security.user: nobody (group: its primary one), every id
    and thread is nobody's, no capability is left, no_new_privs is set, the
    rings exist and were made after the drop; it proxies, and a reload reads
    the file as nobody (refused, and still serving, once nobody may not)."""
    require_root(t)
    uid, gid = nobody(t)
    let_others_in(t)
    b = t.backend()
    cfg = t.config([b], workers=2, log_level="debug", security={"user": "nobody"})
    proxy = t.ringlb(cfg)
    # The port accepts once bound, before the drop: wait for the shards.
    wait_stderr(t, proxy, "listening on", 5)
    st = status(proxy.pid)
    ids = "\t".join([str(uid)] * 4)
    t.eq(st["Uid"].replace(" ", "\t"), ids, "Uid (real, effective, saved, fs)")
    t.eq(st["Gid"].replace(" ", "\t"), "\t".join([str(gid)] * 4), "Gid")
    t.eq(st["Groups"].split(), [str(gid)], "supplementary groups")
    for cap in ("CapEff", "CapPrm", "CapAmb", "CapInh", "CapBnd"):
        t.eq(int(st[cap], 16), 0, cap)
    t.eq(st["NoNewPrivs"], "1", "NoNewPrivs")
    t.check(ring_fds(proxy.pid) >= 2, "one io_uring ring per shard in /proc/PID/fd")
    log = proxy.proc.stderr_text()
    drop, ring = log.find("running as uid %d" % uid), log.find("shard 0: running on CPU")
    t.check(0 <= drop < ring, "the drop is logged before the first ring is made:\n" + log)
    # It proxies (curl and a raw client), then every thread, io_uring's
    # workers included, is nobody's.
    cp = t.curl("http://127.0.0.1:%d/" % proxy.port)
    t.eq(cp.returncode, 0, "curl through ringlb (%s)" % cp.stderr)
    for i in range(10):
        t.eq(request(proxy.port, "GET", "/r%d" % i).status, 200, "status")
    for name, line in thread_uids(t, proxy.pid).items():
        t.eq(line.split(), [str(uid)] * 4, "Uid of thread %s" % name)
    # A reload runs as nobody: it reads a file nobody may read...
    proxy.proc.send_signal(signal.SIGHUP)
    wait_stderr(t, proxy, "configuration reloaded", 5)
    # ...and refuses, still serving, one it may not.
    os.chmod(proxy.config_path, 0o600)
    proxy.proc.send_signal(signal.SIGHUP)
    wait_stderr(t, proxy, "reload refused", 5)
    t.check("Permission denied" in proxy.proc.stderr_text(), "the refusal says why")
    t.eq(request(proxy.port, "GET", "/after").status, 200, "still serving")
    t.eq(t.stop_proxy(proxy), 0, "exit status on SIGTERM")


@timeout(60)
def test_root_without_user_warns_once(t):
    """As root with no security.user ringlb keeps root and says so once; a
    numeric uid and an explicit group work as names do."""
    require_root(t)
    uid, gid = nobody(t)
    b = t.backend()
    proxy = t.ringlb(t.config([b]))
    t.eq(request(proxy.port, "GET", "/").status, 200, "status")
    wait_stderr(t, proxy, "listening on", 5)
    t.eq(proxy.proc.stderr_text().count("running as root"), 1, "the warning, once")
    t.eq(status(proxy.pid)["NoNewPrivs"], "1", "NoNewPrivs even as root")
    group = grp.getgrgid(gid).gr_name
    proxy2 = t.ringlb(t.config([b], security={"user": str(uid), "group": group}), name="num")
    wait_stderr(t, proxy2, "listening on", 5)
    st = status(proxy2.pid)
    t.eq(st["Uid"].split(), [str(uid)] * 4, "Uid from a numeric user")
    t.eq(st["Gid"].split(), [str(gid)] * 4, "Gid from the group's name")
    t.check("running as root" not in proxy2.proc.stderr_text(), "no warning after a drop")
    t.eq(request(proxy2.port, "GET", "/").status, 200, "status")


# -- (b) seccomp with the normal build -------------------------------------------


@timeout(90)
def test_seccomp_serves_reloads_and_stops(t):
    """Under the filter (and as nobody when root): plain and TLS requests,
    the access log, health checks (one backend down), admin API calls, a
    SIGHUP reload that switches backends and re-reads the certificate and
    key, and a clean exit 0 on SIGTERM."""
    require_unsanitized(t)
    b1, b2 = t.backend(), t.backend()
    dead = "127.0.0.1:%d" % closed_port()
    pki = Pki(t)
    cert, key = pki.issue("a", ["a.test"])
    tls_port, admin = free_port(), free_port()
    security = {"seccomp": True}
    if os.geteuid() == 0:
        uid, gid = nobody(t)
        security.update(user="nobody", group=grp.getgrgid(gid).gr_name)
        let_others_in(t)
        os.chmod(pki.dir, 0o711)
        # The documented way to share a key: root-owned, group-readable.
        os.chown(key, 0, gid)
        os.chmod(key, 0o640)
    cfg = t.config([b1, dead], workers=2, security=security,
                   admin={"address": "127.0.0.1:%d" % admin},
                   access_log={"path": os.path.join(t.tmpdir, "access.log")})
    cfg["listeners"].append({"address": "127.0.0.1:%d" % tls_port,
                             "tls": tls_config([(cert, key)])})
    cfg["pools"][0]["health_check"] = {"interval": "200ms", "timeout": "150ms", "rise": 2,
                                       "fall": 2}
    proxy = t.ringlb(cfg)
    wait_stderr(t, proxy, "seccomp: ", 5)  # applied last, once every thread runs
    t.eq(status(proxy.pid)["Seccomp"], "2", "Seccomp mode in /proc (2: filter)")
    wait_stderr(t, proxy, "backend %s (pool app) is down" % dead, 5)
    for i in range(20):
        t.eq(request(proxy.port, "GET", "/p%d" % i).status, 200, "status")
    cp = t.curl("--cacert", pki.ca_cert, "--resolve", "a.test:%d:127.0.0.1" % tls_port,
                "https://a.test:%d/" % tls_port, "-o", "/dev/null", "-w", "%{http_code}")
    t.eq((cp.returncode, cp.stdout), (0, b"200"), "HTTPS through ringlb (%s)" % cp.stderr)
    code, listing = admin_api(admin, "GET", "/api/pools")
    t.eq(code, 200, "admin GET /api/pools")
    states = {x["address"]: x["state"] for x in listing["pools"][0]["backends"]}
    t.eq(states.get(dead), "down", "the dead backend's state")
    code, _ = admin_api(admin, "PUT", "/api/pools/app/backends/%s/weight" % b1.address,
                        {"weight": 3})
    t.eq(code, 200, "admin PUT weight")
    # Reload: the pool now names b2 only; certificates and keys are read again.
    cfg["pools"][0]["backends"] = [{"address": b2.address}]
    with open(proxy.config_path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    proxy.proc.send_signal(signal.SIGHUP)
    wait_stderr(t, proxy, "configuration reloaded", 5)
    t.eq(served_by(request(proxy.port, "GET", "/after")), b2.name, "served after the reload")
    cp = t.curl("--cacert", pki.ca_cert, "--resolve", "a.test:%d:127.0.0.1" % tls_port,
                "https://a.test:%d/" % tls_port, "-o", "/dev/null", "-w", "%{http_code}")
    t.eq((cp.returncode, cp.stdout), (0, b"200"), "HTTPS after the reload (%s)" % cp.stderr)
    t.check(proxy.proc.poll() is None, "still running")
    t.eq(t.stop_proxy(proxy), 0, "exit status on SIGTERM under seccomp")
    with open(os.path.join(t.tmpdir, "access.log")) as f:
        t.check("/after" in f.read(), "the access log was written under seccomp")


# -- (c) the misbehaving build ---------------------------------------------------


@timeout(300)
def test_seccomp_kills_a_forbidden_call(t):
    """The self-test build calls personality(2) on SIGUSR2: with seccomp on
    the kernel kills it (SIGSYS, return code -31); with seccomp off the same
    build carries on and exits 0."""
    require_unsanitized(t)
    binary = selftest_binary(t)
    # A SIGSYS death may dump core: none in the test's directory, please.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    b = t.backend()
    on = t.ringlb(t.config([b], security={"seccomp": True}), binary=binary, name="on")
    wait_stderr(t, on, "seccomp: ", 5)
    t.eq(request(on.port, "GET", "/").status, 200, "status under the filter")
    on.proc.expected_signal = signal.SIGSYS
    on.proc.send_signal(signal.SIGUSR2)
    rc = wait_exit(on.proc, t.slow(5))
    t.eq(rc, -signal.SIGSYS, "return code after the forbidden call (stderr: %s)"
         % on.proc.stderr_tail())
    err = on.proc.stderr_text()
    t.check("calling personality" in err and "returned" not in err,
            "killed inside the forbidden call:\n" + err)
    off = t.ringlb(t.config([b]), binary=binary, name="off")
    wait_stderr(t, off, "listening on", 5)
    off.proc.send_signal(signal.SIGUSR2)
    wait_stderr(t, off, "personality(2) returned", 5)
    t.eq(request(off.port, "GET", "/").status, 200, "still serving without the filter")
    t.eq(t.stop_proxy(off), 0, "exit status without the filter")


# -- (d) configuration errors ----------------------------------------------------


def expect_config_error(t, text, key, what, start_too=False):
    path = t.write_file("bad.yaml", text)
    cp = t.run_ringlb(["-t", "-c", path])
    t.eq(cp.returncode, 1, "exit status of -t (stderr: %r)" % cp.stderr)
    line = cp.stderr.strip().splitlines()[-1]
    m = ERROR_LINE.match(line)
    t.check(m is not None, "a FILE:LINE: KEY: message, got %r" % line)
    t.eq((m.group("key"), m.group("what")), (key, what), "the message")
    want_line = [i for i, ln in enumerate(text.splitlines(), 1)
                 if ln.strip().startswith(key.split(".")[-1] + ":")][0]
    t.eq(int(m.group("line")), want_line, "the line in the message")
    if start_too:
        port = int(re.search(r"127\.0\.0\.1:(\d+)", text).group(1))
        cp = t.run_ringlb(["-c", path])
        t.eq(cp.returncode, 1, "exit status at start (stderr: %r)" % cp.stderr)
        t.check(line in cp.stderr, "the same message at start: %r" % cp.stderr)
        t.check(not port_open(port), "nothing was bound")


def security_doc(port, section):
    return ("workers: 1\n"
            "listeners:\n"
            "  - address: 127.0.0.1:%d\n"
            "pools:\n"
            "  - name: app\n"
            "    backends: [127.0.0.1:9]\n"
            "security:\n%s" % (port, section))


@timeout(30)
def test_security_config_errors(t):
    """An unknown user or group is named, with its line, by -t and at
    start-up, before anything binds; a group needs a user."""
    port = free_port()
    expect_config_error(t, security_doc(port, "  user: ringlb-no-such-user\n"),
                        "security.user", 'no such user "ringlb-no-such-user"', start_too=True)
    expect_config_error(t, security_doc(port, "  user: nobody\n"
                                              "  group: ringlb-no-such-group\n"),
                        "security.group", 'no such group "ringlb-no-such-group"',
                        start_too=True)
    expect_config_error(t, security_doc(port, "  group: nogroup\n"),
                        "security.group", "needs security.user: the group alone is never "
                        "changed")
    if os.geteuid() == 0:
        ok = t.write_file("ok.yaml", security_doc(port, "  user: nobody\n  seccomp: true\n"))
        cp = t.run_ringlb(["-t", "-c", ok])
        t.eq(cp.returncode, 0, "-t with user nobody (stderr: %r)" % cp.stderr)


@timeout(30)
def test_switching_user_needs_root(t):
    """Started as nobody, ringlb may name itself (nobody) but no one else."""
    require_root(t)
    uid, gid = nobody(t)
    let_others_in(t)
    port = free_port()

    def as_nobody(name, section):
        path = t.write_file(name, security_doc(port, section))
        os.chmod(path, 0o644)

        def demote():
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        return subprocess.run([t.binary(), "-t", "-c", path], capture_output=True, text=True,
                              preexec_fn=demote, cwd=t.tmpdir, timeout=t.slow(10))

    cp = as_nobody("self.yaml", "  user: nobody\n")
    if cp.returncode == 126 or "Permission denied" in cp.stderr:
        t.skip("nobody cannot run %s here" % t.binary())
    t.eq(cp.returncode, 0, "-t naming the current user (stderr: %r)" % cp.stderr)
    other = pwd.getpwuid(0).pw_name
    cp = as_nobody("other.yaml", "  user: %s\n" % other)
    t.eq(cp.returncode, 1, "exit status naming another user")
    t.check("security.user: ringlb must start as root to switch user" in cp.stderr,
            "the message: %r" % cp.stderr)
