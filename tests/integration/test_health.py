"""Active health checks (pools[].health_check): a dead, a hung and a failing
backend are marked down within interval × fall + timeout and skipped by the
balancer, a restarted one comes back up within interval × rise, fail open when
every backend is down, `expect` and `type: tcp`, the check request itself, and
the config errors of `-t`.

Method: ringlb logs each transition on stderr ("backend ADDR (pool app) is
down: REASON" / "... is up"); the tests poll that file and time the lines.
Who served a request is read from the backends' Server field
(test-backend/NAME). Short settings (interval 200ms, timeout 150ms, rise 2,
fall 2) keep every test to a few seconds.
"""

import re
import signal
import socket
import sys
import threading
import time

from lib import (HERE, BackendProc, Conn, Proc, TestFailure, _read_line_with_timeout,
                 backend_mod, served_by, timeout)

FAST = {"interval": "200ms", "timeout": "150ms", "rise": 2, "fall": 2}
# interval × fall + timeout = 0.55 s and interval × rise + timeout = 0.55 s;
# the rest of the 2 s is slack for scheduling and the first check's phase.
DETECT_LIMIT = 2.0

ERROR_LINE = re.compile(r"^(?P<file>[^\n:]+):(?P<line>\d+): (?P<key>[^\s:]+): (?P<what>.+)$")


# -- helpers ------------------------------------------------------------------



def health_config(t, backends, check=None, algorithm="round_robin", retries=1, **overrides):
    """t.config(...) with workers 2 and the pool's health_check (FAST plus
    `check`; check=False: no health_check section at all)."""
    overrides.setdefault("workers", 2)
    cfg = t.config(backends, **overrides)
    pool = cfg["pools"][0]
    pool["algorithm"] = algorithm
    pool["retries"] = retries
    if check is not False:
        hc = dict(FAST)
        hc.update(check or {})
        pool["health_check"] = hc
    return cfg


def down_needle(address, pool="app"):
    return "backend %s (pool %s) is down" % (address, pool)


def up_needle(address, pool="app"):
    return "backend %s (pool %s) is up" % (address, pool)


def wait_log(t, proxy, needle, limit, start_at=0):
    """Polls the proxy's stderr until a line containing `needle` appears at or
    after character offset `start_at`. Returns (monotonic time it was seen,
    offset just past that line, the line), or None after `limit` seconds.
    Fails at once if the proxy exits."""
    deadline = time.monotonic() + limit
    for _ in range(int(limit / 0.02) + 2):
        text = proxy.proc.stderr_text()
        i = text.find(needle, start_at)
        if i >= 0:
            seen = time.monotonic()
            begin = text.rfind("\n", 0, i) + 1
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            return seen, end, text[begin:end]
        if proxy.proc.poll() is not None:
            t.fail("%s exited (status %s) while waiting for %r"
                   % (proxy.proc.name, proxy.proc.returncode, needle))
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)
    return None


def expect_log(t, proxy, needle, limit, since, what, start_at=0):
    """wait_log that must succeed; returns (delay since `since`, end offset, line)."""
    got = wait_log(t, proxy, needle, t.slow(limit + 1), start_at)
    if got is None:
        t.fail("no %r on ringlb's stderr within %.1fs (%s)" % (needle, t.slow(limit + 1), what))
    seen, end, line = got
    delay = seen - since
    t.log("%s: %.3fs: %s" % (what, delay, line))
    t.check(delay < t.slow(limit), "%s took %.2fs (limit %.1fs): %s" % (what, delay, limit, line))
    return delay, end, line


def check_down_line(t, line):
    """A down line carries a reason: "... is down: REASON"."""
    t.check(re.search(r"is down: \S", line), "down line without ': reason': %r" % line)


def backend_on_port(t, name, port, tries=5):
    """A backend.py process bound to a chosen port (BackendProc cannot choose
    one), registered with `t` so the teardown kills it. backend.py sets
    SO_REUSEADDR; a failed bind (e.g. a lingering socket) is retried briefly."""
    argv = [sys.executable, "%s/backend.py" % HERE, "--name", name, "--port", str(port)]
    last = None
    for attempt in range(tries):
        b = BackendProc.__new__(BackendProc)  # same object, made without its __init__
        b.name = name
        b.proc = Proc("backend-%s-%d" % (name, attempt), argv, t.tmpdir, stdout_pipe=True)
        t.backends.append(b)
        line = _read_line_with_timeout(b.proc.popen.stdout, 10)
        m = re.match(r"READY (\d+)", line or "")
        if m:
            t.eq(int(m.group(1)), port, "port of the restarted backend")
            b.port = port
            b.address = "127.0.0.1:%d" % port
            return b
        b.proc.stop(signal.SIGKILL, 5)
        last = b.proc.stderr_tail()
        time.sleep(0.2)
    t.fail("could not start a backend on port %d:\n%s" % (port, last))


class CheckedBackend(backend_mod.Backend):
    """An in-process backend.py server: `check_path` answers `check_status`
    (a failing health check) while every other request is served as usual.
    Records the heads of the check requests and counts the other requests."""

    def __init__(self, t, name, check_path="/healthz", check_status=503):
        super().__init__(name)
        self.address = "127.0.0.1:%d" % self.port
        self.check_path = check_path
        self.check_status = check_status
        self.checks = []  # (monotonic time, method, target, version, headers)
        self.served = 0
        t.on_cleanup(self.shut)
        self.start()

    def handle(self, sock, reader, req):
        if req.path == self.check_path:
            with self.lock:
                self.checks.append((time.monotonic(), req.method, req.target, req.version,
                                    list(req.headers)))
            self.send_response(sock, req, self.check_status, b"check\n", False, "text/plain")
            return False
        with self.lock:
            self.served += 1
        return super().handle(sock, reader, req)

    def shut(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.close()


def get(t, port, target="/", timeout=5.0):
    """One GET on a fresh connection; returns (status, served_by, seconds)."""
    start = time.monotonic()
    c = Conn(port, t.slow(timeout))
    try:
        resp = c.request("GET", target)
    finally:
        c.close()
    return resp.status, served_by(resp), time.monotonic() - start


class Load:
    """Sequential GETs on a thread, a new client connection every `per_conn`
    requests, for `duration` seconds (at most `max_requests`). Each result is
    (sent, done, status, backend, error). `between(elapsed)` runs between two
    requests, when none is in flight."""

    def __init__(self, port, duration, per_conn=5, max_requests=100000, between=None):
        self.port = port
        self.duration = duration
        self.per_conn = per_conn
        self.max_requests = max_requests
        self.between = between
        self.results = []
        self.crash = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def join(self, limit):
        self.thread.join(limit)
        if self.thread.is_alive():
            raise TestFailure("the load thread did not finish within %.0fs" % limit)
        if self.crash:
            raise TestFailure("the load thread failed: %s" % self.crash)

    def _run(self):
        conn = None
        start = time.monotonic()
        try:
            for n in range(self.max_requests):
                elapsed = time.monotonic() - start
                if elapsed >= self.duration:
                    break
                if self.between:
                    self.between(elapsed)
                if conn is not None and n % self.per_conn == 0:
                    conn.close()
                    conn = None
                sent = time.monotonic()
                try:
                    if conn is None:
                        conn = Conn(self.port, 5)
                    resp = conn.request("GET", "/load/%d" % n)
                    self.results.append((sent, time.monotonic(), resp.status,
                                         served_by(resp), None))
                    if "close" in resp.tokens("connection"):
                        conn.close()
                        conn = None
                except (OSError, TestFailure) as e:
                    self.results.append((sent, time.monotonic(), None, None, repr(e)))
                    if conn is not None:
                        conn.close()
                    conn = None
        except BaseException as e:  # noqa: B902 - reported by join()
            self.crash = repr(e)
        finally:
            if conn is not None:
                conn.close()


# -- tests --------------------------------------------------------------------


@timeout(40)
def test_health_killed_backend_under_load(t):
    # The kill happens between two requests of the (sequential) client, so no
    # request is in flight on b2 when it dies: such a request could fairly get
    # a 502 (only failed connects and reused connections that fail before any
    # response byte are retried). Every other request must succeed: before b2
    # is marked down, its connects are refused and retried on another backend.
    b1, b2, b3 = t.backend("b1"), t.backend("b2"), t.backend("b3")
    proxy = t.ringlb(health_config(t, [b1, b2, b3], retries=2))
    killed = {}

    def between(elapsed):
        if not killed and elapsed >= 1.0:
            killed["at"] = time.monotonic()
            b2.kill()
            killed["done"] = time.monotonic()

    load = Load(proxy.port, 4.0, per_conn=5, between=between).start()
    for _ in range(300):  # up to 3 s for the kill
        if "done" in killed or not load.thread.is_alive():
            break
        time.sleep(0.01)
    t.check("done" in killed, "the load thread never killed b2 (%d requests, crash %s)"
            % (len(load.results), load.crash))
    delay, _, line = expect_log(t, proxy, down_needle(b2.address), DETECT_LIMIT,
                                killed["at"], "b2 killed -> down")
    check_down_line(t, line)
    down_at = killed["at"] + delay
    load.join(t.slow(15))

    res = load.results
    failed = [r for r in res if r[2] != 200]
    t.note("killed backend marked down %.0f ms after SIGKILL (interval 200ms, fall 2, "
           "timeout 150ms); %d requests, %d failed" % (delay * 1000, len(res), len(failed)))
    t.check(not failed, "%d of %d requests failed around the kill, first: %r"
            % (len(failed), len(res), failed[:3]))
    before = [r[3] for r in res if r[1] < killed["at"]]
    t.check("b2" in before, "b2 served none of the %d requests before the kill (test broken?)"
            % len(before))
    after_kill = [r[3] for r in res if r[0] > killed["done"]]
    t.check("b2" not in after_kill, "a request sent after the kill was served by b2")
    after_down = [r[3] for r in res if r[0] > down_at]
    t.check(len(after_down) >= 10, "only %d requests after the down line" % len(after_down))
    t.check("b2" not in after_down, "b2 served a request after it was marked down")
    t.eq(set(after_down), {"b1", "b3"}, "backends serving after b2 was marked down")
    unknown = [r for r in res if r[3] not in ("b1", "b2", "b3")]
    t.check(not unknown, "responses with no test-backend Server field: %r" % unknown[:3])


@timeout(40)
def test_health_restarted_backend_comes_back_up(t):
    b1, b2, b3 = t.backend("b1"), t.backend("b2"), t.backend("b3")
    proxy = t.ringlb(health_config(t, [b1, b2, b3]))
    seen = {get(t, proxy.port)[1] for _ in range(9)}
    t.eq(seen, {"b1", "b2", "b3"}, "backends serving at the start")
    t.check(wait_log(t, proxy, "is down", 0.6) is None,
            "a backend was marked down while all were healthy")

    killed_at = time.monotonic()
    b2.kill()
    delay, down_end, line = expect_log(t, proxy, down_needle(b2.address), DETECT_LIMIT,
                                       killed_at, "b2 killed -> down")
    check_down_line(t, line)

    again = backend_on_port(t, "b2again", b2.port)
    started_at = time.monotonic()
    up_delay, _, _ = expect_log(t, proxy, up_needle(b2.address), DETECT_LIMIT, started_at,
                                "b2 restarted -> up", start_at=down_end)
    t.note("down %.0f ms after the kill, up %.0f ms after the restart (interval 200ms, "
           "rise 2, fall 2)" % (delay * 1000, up_delay * 1000))
    served = []
    for _ in range(12):
        status, who, _ = get(t, proxy.port)
        t.eq(status, 200, "status after the restart")
        served.append(who)
    t.check("b2again" in served, "the restarted backend served none of 12 requests: %r"
            % served)
    t.check("b2" not in served, "the dead b2 served a request: %r" % served)


@timeout(40)
def test_health_hung_backend_marked_down(t):
    # SIGSTOP: the kernel still completes connects to b2 (its listen backlog),
    # but nothing answers, so its checks time out. Once it is marked down no
    # request may go to it: one that did would wait for upstream_response (1s).
    b1, b2, b3 = t.backend("b1"), t.backend("b2"), t.backend("b3")
    proxy = t.ringlb(health_config(t, [b1, b2, b3], retries=2,
                                   timeouts={"upstream_response": "1s"}))
    seen = {get(t, proxy.port)[1] for _ in range(9)}
    t.eq(seen, {"b1", "b2", "b3"}, "backends serving at the start")

    t.on_cleanup(lambda: b2.proc.send_signal(signal.SIGCONT))  # before the teardown kills it
    stopped_at = time.monotonic()
    b2.proc.send_signal(signal.SIGSTOP)
    delay, down_end, line = expect_log(t, proxy, down_needle(b2.address), DETECT_LIMIT,
                                       stopped_at, "b2 stopped -> down")
    check_down_line(t, line)
    t.note("hung backend marked down %.0f ms after SIGSTOP (interval 200ms, fall 2, "
           "timeout 150ms)" % (delay * 1000))

    results = [get(t, proxy.port) for _ in range(12)]
    t.log("after the down line: %r" % results)
    t.eq([r[0] for r in results], [200] * 12, "statuses after b2 was marked down")
    t.check(all(r[1] in ("b1", "b3") for r in results),
            "served by %r after b2 was marked down" % [r[1] for r in results])
    slow = [r for r in results if r[2] >= t.slow(0.9)]
    t.check(not slow, "requests waited on the hung backend after it was marked down: %r" % slow)
    text = proxy.proc.stderr_text()
    for b in (b1, b3):
        t.check(down_needle(b.address) not in text,
                "%s marked down while b2 hung (checks not in parallel?)" % b.name)

    # Resumed, it answers its checks again and comes back.
    resumed_at = time.monotonic()
    b2.proc.send_signal(signal.SIGCONT)
    expect_log(t, proxy, up_needle(b2.address), DETECT_LIMIT, resumed_at,
               "b2 resumed -> up", start_at=down_end)


def test_health_all_down_fails_open(t):
    b1, b2 = t.backend("b1"), t.backend("b2")
    proxy = t.ringlb(health_config(t, [b1, b2], {"path": "/status/503"}))
    started = time.monotonic()
    for b in (b1, b2):
        _, _, line = expect_log(t, proxy, down_needle(b.address), DETECT_LIMIT, started,
                                "%s answers 503 -> down" % b.name)
        check_down_line(t, line)
    served = []
    for i in range(6):
        status, who, _ = get(t, proxy.port, "/open/%d" % i)
        t.eq(status, 200, "status with every backend down (fail open)")
        served.append(who)
    t.check(set(served) <= {"b1", "b2"}, "served by %r" % served)


def test_health_expect_statuses(t):
    # Every backend answers 204 on the check path; each ringlb has its own
    # backend, so the backend's request count shows that its checks ran.
    ba, bb, bc = t.backend("ba"), t.backend("bb"), t.backend("bc")
    strict = t.ringlb(health_config(t, [ba], {"path": "/status/204", "expect": "200"}),
                      name="ringlb-200")
    ranged = t.ringlb(health_config(t, [bb], {"path": "/status/204", "expect": "200-299"}),
                      name="ringlb-2xx")
    listed = t.ringlb(health_config(t, [bc], {"path": "/status/204", "expect": "200,204"}),
                      name="ringlb-list")
    started = time.monotonic()
    _, _, line = expect_log(t, strict, down_needle(ba.address), DETECT_LIMIT, started,
                            "204 with expect 200 -> down")
    check_down_line(t, line)
    left = started + t.slow(1.0) - time.monotonic()
    if left > 0:
        time.sleep(left)
    for proxy, b, what in ((ranged, bb, "200-299"), (listed, bc, "200,204")):
        t.check("is down" not in proxy.proc.stderr_text(),
                "a 204 check with expect %s marked the backend down:\n%s"
                % (what, proxy.proc.stderr_tail(5)))
        n = b.stats()["requests"]
        t.check(n >= 3, "only %d checks reached %s in 1s (interval 200ms)" % (n, b.name))
    for proxy, who in ((ranged, "bb"), (listed, "bc")):
        status, served, _ = get(t, proxy.port)
        t.eq((status, served), (200, who), "a request through a healthy pool")


def test_health_tcp_check(t):
    b1, b2 = t.backend("b1"), t.backend("b2")
    proxy = t.ringlb(health_config(t, [b1, b2], {"type": "tcp"}))
    time.sleep(0.5)
    killed_at = time.monotonic()
    b2.kill()
    delay, _, line = expect_log(t, proxy, down_needle(b2.address), DETECT_LIMIT, killed_at,
                                "tcp: b2 killed -> down")
    check_down_line(t, line)
    time.sleep(0.5)
    t.check(down_needle(b1.address) not in proxy.proc.stderr_text(),
            "tcp: the live b1 was marked down:\n%s" % proxy.proc.stderr_tail(5))
    st = b1.stats()
    t.log("b1 stats after tcp checks: %r" % st)
    t.check(st["accepted"] >= 4, "tcp checks made only %d connections to b1 in 1.3s"
            % (st["accepted"] - 1))
    t.eq(st["requests"], 0, "requests sent to b1 by tcp checks (connect only)")
    for _ in range(4):
        status, who, _ = get(t, proxy.port)
        t.eq((status, who), (200, "b1"), "request with b2 down")


def test_health_every_algorithm_skips_down_backend(t):
    # The sick backends fail their check (503 on /healthz) but would serve any
    # other request, and retries is 0: a request that reaches them after they
    # are marked down is the balancer's doing, not a masked failure.
    good = t.backend("good")
    sick = [CheckedBackend(t, "sick1"), CheckedBackend(t, "sick2")]
    algos = ["round_robin", "weighted_round_robin", "least_conn", "weighted_least_conn",
             "random_two", "least_time", "ip_hash", "hash"]
    proxies = {}
    for alg in algos:
        cfg = health_config(t, [good] + [s.address for s in sick], {"path": "/healthz"},
                            algorithm=alg, retries=0)
        if alg == "hash":
            cfg["pools"][0]["hash_key"] = "header:X-User"
        proxies[alg] = t.ringlb(cfg, name="ringlb-" + alg)
    started = time.monotonic()
    for alg, proxy in proxies.items():
        for s in sick:
            expect_log(t, proxy, down_needle(s.address), DETECT_LIMIT, started,
                       "%s: %s -> down" % (alg, s.name))
    before = [s.served for s in sick]
    for alg, proxy in proxies.items():
        t.check(down_needle(good.address) not in proxy.proc.stderr_text(),
                "%s: the good backend was marked down" % alg)
        for i in range(10):
            c = Conn(proxy.port, t.slow(5))
            try:
                resp = c.request("GET", "/r%d" % i, headers=[("X-User", "user%d" % i)])
            finally:
                c.close()
            t.eq((resp.status, served_by(resp)), (200, "good"),
                 "%s: request %d with both sick backends down" % (alg, i))
    t.eq([s.served for s in sick], before, "requests that reached the sick backends")


def test_health_check_request_and_no_checks_without_section(t):
    checked = CheckedBackend(t, "checked", check_path="/healthz", check_status=200)
    unchecked = CheckedBackend(t, "unchecked", check_path="/", check_status=200)
    p1 = t.ringlb(health_config(t, [checked.address], {"path": "/healthz?probe=1"}),
                  name="ringlb-checked")
    p2 = t.ringlb(health_config(t, [unchecked.address], check=False), name="ringlb-unchecked")
    start = time.monotonic()
    time.sleep(1.2)
    end = time.monotonic()
    with checked.lock:
        checks = [c for c in checked.checks if start <= c[0] < end]
        allchecks = list(checked.checks)
    t.log("%d checks in 1.2s" % len(checks))
    # 200ms between two checks: about 6 in 1.2 s (allow for either reading
    # of "between": start to start, or end to start).
    t.check(3 <= len(checks) <= 9, "%d checks in 1.2s with interval 200ms" % len(checks))
    for when, method, target, version, headers in allchecks:
        t.eq((method, target, version), ("GET", "/healthz?probe=1", "HTTP/1.1"),
             "check request line")
        fields = {k.lower(): v for k, v in headers}
        t.eq(len(fields), len(headers), "repeated fields in the check %r" % headers)
        t.eq(fields, {"host": checked.address, "user-agent": "ringlb-health",
                      "connection": "close"}, "check request fields")
    t.eq(unchecked.checks, [], "connections to a backend of a pool without health_check")
    t.eq(unchecked.accepted, 0, "connections to a backend of a pool without health_check")
    t.check("is down" not in p1.proc.stderr_text() + p2.proc.stderr_text(),
            "a healthy backend was marked down")


# -- config errors --------------------------------------------------------------

HC_BASE = """\
workers: 1
listeners:
  - address: 127.0.0.1:18080
pools:
  - name: app
    backends:
      - 127.0.0.1:19001
      - 127.0.0.1:19002
    health_check:
%s
"""


def hc_file(settings):
    return HC_BASE % "\n".join("      " + s for s in settings)


def test_health_config_errors(t):
    good = [
        ["type: http", "path: /healthz", "expect: 200-399", "interval: 2s", "timeout: 1s",
         "rise: 2", "fall: 3"],
        ["type: tcp", "interval: 200ms", "timeout: 150ms"],
        ['expect: "200,204"', "interval: 500ms", "timeout: 499ms", "rise: 1", "fall: 1"],
        ["expect: 200"],
    ]
    for i, settings in enumerate(good):
        name = "good%d.yaml" % i
        t.write_file(name, hc_file(settings))
        cp = t.run_ringlb(["-t", "-c", name])
        t.eq(cp.returncode, 0, "exit status of -t with health_check %r (stderr %r)"
             % (settings, cp.stderr))

    bad = [
        (["interval: 1s", "timeout: 1s"], "pools[0].health_check.timeout"),
        (["interval: 1s", "timeout: 2s"], "pools[0].health_check.timeout"),
        (["type: udp"], "pools[0].health_check.type"),
        (["rise: 0"], "pools[0].health_check.rise"),
    ]
    for i, (settings, key) in enumerate(bad):
        name = "bad%d.yaml" % i
        t.write_file(name, hc_file(settings))
        cp = t.run_ringlb(["-t", "-c", name])
        t.eq(cp.returncode, 1, "exit status of -t with health_check %r (stderr %r)"
             % (settings, cp.stderr))
        lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
        t.eq(len(lines), 1, "stderr lines for %r: %r" % (settings, lines))
        m = ERROR_LINE.match(lines[0])
        t.check(m, "error line not of the form FILE:LINE: KEY: what: %r" % lines[0])
        t.eq(m.group("file"), name, "file in %r" % lines[0])
        t.eq(m.group("key"), key, "key in the error for %r" % settings)


# -- method, host and per-backend checks -------------------------------------------


def test_health_method_host_and_backend_override(t):
    # The pool checks with HEAD and a Host of its choosing; one backend has its
    # own health_check (GET on /own), which replaces the pool's for it alone.
    pooled = CheckedBackend(t, "pooled", check_path="/healthz", check_status=200)
    own = CheckedBackend(t, "own", check_path="/own", check_status=200)
    cfg = health_config(t, [pooled.address, own.address],
                        {"path": "/healthz", "method": "HEAD", "host": "health.example"})
    cfg["pools"][0]["backends"][1]["health_check"] = {
        "path": "/own", "interval": "200ms", "timeout": "150ms"}
    proxy = t.ringlb(cfg)
    time.sleep(1.0)
    with pooled.lock, own.lock:
        pooled_checks, own_checks = list(pooled.checks), list(own.checks)
    t.check(len(pooled_checks) >= 2 and len(own_checks) >= 2,
            "checks: %d pooled, %d own" % (len(pooled_checks), len(own_checks)))
    for _, method, target, _, headers in pooled_checks:
        fields = {k.lower(): v for k, v in headers}
        t.eq((method, target, fields.get("host")), ("HEAD", "/healthz", "health.example"),
             "the pool's check")
    for _, method, target, _, headers in own_checks:
        fields = {k.lower(): v for k, v in headers}
        t.eq((method, target, fields.get("host")), ("GET", "/own", own.address),
             "the backend's own check")
    t.check("is down" not in proxy.proc.stderr_text(), "a healthy backend was marked down")


def test_health_kill_under_wrk(t):
    # The issue's own scenario: a bounded wrk load (3 s, 8 connections)
    # through ringlb while one of three backends is killed; wrk must report
    # neither socket errors nor non-2xx answers.
    import shutil
    import subprocess

    wrk = shutil.which("wrk")
    if not wrk:
        t.skip("wrk not installed")
    backends = [t.backend("b%d" % i) for i in range(1, 4)]
    proxy = t.ringlb(health_config(t, backends, retries=2))
    killer = threading.Timer(1.0, backends[1].kill)
    killer.start()
    try:
        p = subprocess.run([wrk, "-t", "1", "-c", "8", "-d", "3s", "--timeout", "5s",
                            "http://127.0.0.1:%d/" % proxy.port],
                           capture_output=True, text=True, timeout=t.slow(20))
    finally:
        killer.join(5)
    out = p.stdout
    t.log(out)
    t.eq(p.returncode, 0, "wrk exit status")
    t.check("Socket errors" not in out, "wrk saw socket errors:\n%s" % out)
    t.check("Non-2xx" not in out, "wrk saw non-2xx answers:\n%s" % out)
    m = re.search(r"(\d+) requests in", out)
    t.check(m is not None and int(m.group(1)) > 1000, "too few requests:\n%s" % out)
    t.note("wrk: %s requests through the kill of one of three backends, none failed"
           % (m.group(1) if m else "?"))
    t.check(down_needle(backends[1].address) in proxy.proc.stderr_text(), "b2 never marked down")
