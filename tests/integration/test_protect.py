"""Protection: rate limits, connection limits, allow and deny lists, trusted
proxies and the PROXY protocol, request filters, slow bodies, anomaly
detection.

Goal: every protection does what docs/reference.md says, counts what it
refuses in GET /api/protection, and says why in the access log; a rate
limit is one limit across shards (within 5% of the configured rate when a
client's connections land on different shards).

Method: real ringlb processes (2 shards where it matters) in front of the
test backend; raw sockets, curl (--haproxy-protocol for PROXY v1) and wrk
as clients; the admin API and the access log as witnesses.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from certs import Pki, tls_config
from lib import free_port, request, timeout, wait_port
import proxyproto


def start(t, workers=2, admin=True, **overrides):
    """One backend and ringlb with an access log and (by default) the admin
    API. Returns (proxy, backend, admin port, access log path)."""
    b = t.backend()
    log_path = os.path.join(t.tmpdir, "access.log")
    cfg = t.config([b], workers=workers, access_log={"path": log_path}, **overrides)
    admin_port = None
    if admin:
        admin_port = free_port()
        cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
    proxy = t.ringlb(cfg)
    if admin:
        wait_port(admin_port, t.slow(5))
    return proxy, b, admin_port, log_path


def stats(admin_port):
    return json.loads(request(admin_port, "GET", "/api/protection").body)


def route_stats(admin_port, i):
    return stats(admin_port)["routes"][i + 1]


def log_lines(t, path, n, deadline=5):
    """The access log's lines once it has at least n (the writer drains the
    shards' queues every 100 ms)."""
    end = time.monotonic() + t.slow(deadline)
    lines = []
    while time.monotonic() < end:
        if os.path.exists(path):
            with open(path) as f:
                lines = [l for l in f.read().splitlines() if l]
            if len(lines) >= n:
                return lines
        time.sleep(0.05)
    t.fail("access log has %d lines, want %d: %r" % (len(lines), n, lines[-5:]))


def get(port, target="/size/10", headers=(), method="GET", body=None):
    return request(port, method, target, headers, body=body, timeout=10)


def refused_at_once(t, port):
    """True when a new connection is closed by the proxy without an answer
    (after a request is sent), False when the request is answered."""
    s = socket.create_connection(("127.0.0.1", port), timeout=t.slow(3))
    try:
        s.sendall(b"GET /size/10 HTTP/1.1\r\nHost: x\r\n\r\n")
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        t.fail("neither answered nor closed")
    finally:
        s.close()


def settle(t, proxy, admin):
    """Waits until the harness's own readiness probes (connections that
    count against the limits) are closed on the proxy's side."""
    deadline = time.monotonic() + t.slow(3)
    while stats(admin)["connections"]["open_counted"] > 0:
        t.check(time.monotonic() < deadline, "probe connections still counted")
        time.sleep(0.05)


# ---- rate limits ----


@timeout(30)
def test_rate_limit_429_retry_after(t):
    """rate 1/s burst 2: a fresh client gets 3 requests at once, then 429
    with Retry-After 1; counted per route and logged as rate_limited; other
    routes are not limited."""
    routes = [{"path": "/limited/", "pool": "app", "rate_limit": {"rate": "1/s", "burst": 2}},
              {"pool": "app"}]
    proxy, _, admin, log_path = start(t, routes=routes)
    got = [get(proxy.port, "/limited/%d" % i) for i in range(6)]
    codes = [r.status for r in got]
    t.eq(codes[:3], [200, 200, 200], "1 + burst pass")
    t.eq(codes[3:], [429, 429, 429], "the rest are refused")
    t.eq(got[3].get("Retry-After"), "1", "Retry-After in whole seconds")
    c = t.connect(proxy.port)
    t.eq(c.request("GET", "/limited/again").status, 429, "still limited")
    t.eq(c.request("GET", "/size/10").status, 200, "the connection stays open after a 429")
    t.eq([get(proxy.port, "/size/10").status for _ in range(5)], [200] * 5,
         "a route without a limit")
    rs = route_stats(admin, 0)
    t.eq(rs["rate_limited"], 4, "rate_limited counter")
    t.eq(rs["requests"], 7, "requests counter")
    lines = log_lines(t, log_path, 13)
    t.eq(sum(1 for l in lines if l.endswith(" rate_limited")), 4, "log reason")
    time.sleep(1.1)
    t.eq(get(proxy.port, "/limited/x").status, 200, "a request passes again after 1 s")


@timeout(60)
def test_rate_limit_accuracy_across_shards(t):
    """200/s per client address, wrk with 16 connections over 2 shards for
    4 s: the admitted requests are within 5% of 200 x 4 + burst."""
    wrk = shutil.which("wrk")
    if not wrk:
        t.skip("wrk not installed")
    if t.sanitized:
        t.skip("timing accuracy is not meaningful under ASan")
    routes = [{"pool": "app", "rate_limit": {"rate": "200/s", "burst": 10}}]
    proxy, _, admin, _ = start(t, routes=routes)
    seconds = 4
    out = subprocess.run([wrk, "-t2", "-c16", "-d%ds" % seconds, "--latency",
                          "http://127.0.0.1:%d/size/10" % proxy.port],
                         capture_output=True, text=True, timeout=seconds + 20).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    refused = int(m.group(1)) if m else 0
    admitted = total - refused
    rs = route_stats(admin, 0)
    want = 200 * seconds + 10
    t.note("rate limit 200/s burst 10 over %d s on 2 shards: %d admitted of %d (want ~%d, "
           "%.2f%%)" % (seconds, admitted, total, want, 100.0 * admitted / want))
    t.check(refused > total / 2, "the load was well above the limit (%d of %d refused)"
            % (refused, total))
    # ringlb also counts refusals wrk had no time to read when it stopped
    t.check(refused <= rs["rate_limited"] <= refused + 16,
            "every refusal counted (%d, wrk saw %d)" % (rs["rate_limited"], refused))
    # wrk's -d is its own clock: allow for its start and stop on top of 5%.
    t.check(abs(admitted - want) <= 0.05 * want + 10,
            "admitted %d is not within 5%% of %d" % (admitted, want))


@timeout(30)
def test_rate_limit_delay_mode(t):
    """delay 2s: excess requests within the delay are held and served in
    their turn, beyond it they get 429."""
    routes = [{"pool": "app", "rate_limit": {"rate": "5/s", "delay": "1s"}}]
    proxy, _, admin, _ = start(t, routes=routes)
    results = [None] * 10

    def one(i):
        t0 = time.monotonic()
        r = get(proxy.port)
        results[i] = (r.status, time.monotonic() - t0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(t.slow(10))
    codes = sorted(r[0] for r in results)
    ok = [r for r in results if r[0] == 200]
    # 1 at once, then one per 200 ms within 1 s: about 6 served.
    t.check(5 <= len(ok) <= 7, "served %d of 10: %r" % (len(ok), results))
    t.eq(codes.count(429), 10 - len(ok), "the rest are refused")
    t.check(max(r[1] for r in ok) >= 0.7, "the last served request was held (%r)" % ok)
    t.check(route_stats(admin, 0)["delayed"] >= 4, "delayed counter")
    # a held request whose client has half-closed is still answered
    time.sleep(1.2)
    for i in range(2):
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=t.slow(5))
        s.sendall(b"GET /size/10 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        t.check(data.startswith(b"HTTP/1.1 200"), "half-closed request %d answered: %r"
                % (i, data[:60]))


@timeout(30)
def test_rate_limit_by_header(t):
    """key header:X-API-Key: each key has its own budget; status 503."""
    routes = [{"pool": "app", "rate_limit": {"rate": "1/m", "key": "header:X-API-Key",
                                             "status": 503}}]
    proxy, _, _, _ = start(t, routes=routes, admin=False)
    for key in ("alpha", "beta", "gamma"):
        h = [("X-API-Key", key)]
        t.eq(get(proxy.port, headers=h).status, 200, "first request of %s" % key)
        r = get(proxy.port, headers=h)
        t.eq(r.status, 503, "second request of %s" % key)
        t.check(int(r.get("Retry-After")) >= 59, "Retry-After of a 1/m limit")


# ---- connection limits ----


@timeout(30)
def test_conns_per_ip(t):
    """conns_per_ip 3 over 2 shards: a fourth connection from 127.0.0.1 is
    closed at once and counted; closing one lets a new one in."""
    proxy, _, admin, _ = start(t, limits={"conns_per_ip": 3, "conns_total": 1000})
    settle(t, proxy, admin)
    conns = [t.connect(proxy.port) for _ in range(3)]
    for c in conns:
        t.eq(c.request("GET", "/size/10").status, 200, "one of the first three")
    t.check(refused_at_once(t, proxy.port), "the fourth is closed")
    t.eq(stats(admin)["connections"]["refused_conns_per_ip"], 1, "counted")
    conns[0].close()
    deadline = time.monotonic() + t.slow(3)
    while True:  # the close reaches the shard asynchronously
        c = t.connect(proxy.port)
        try:
            if c.request("GET", "/size/10").status == 200:
                break
        except Exception:
            pass
        t.check(time.monotonic() < deadline, "a new connection after one closed")
        time.sleep(0.1)


@timeout(30)
def test_conns_total(t):
    """conns_total 2 (all shards): a third connection is closed at once."""
    proxy, _, admin, _ = start(t, limits={"conns_total": 2})
    settle(t, proxy, admin)
    conns = [t.connect(proxy.port) for _ in range(2)]
    for c in conns:
        t.eq(c.request("GET", "/size/10").status, 200, "within the limit")
    t.check(refused_at_once(t, proxy.port), "beyond conns_total")
    t.eq(stats(admin)["connections"]["refused_conns_total"], 1, "counted")


# ---- allow and deny lists ----


@timeout(30)
def test_listener_deny_and_reload(t):
    """A listener that denies 127.0.0.0/8 closes connections at once; a
    reload that allows 127.0.0.1/32 (longest prefix wins) lets them in."""
    b = t.backend()
    admin_port = free_port()
    cfg = t.config([b], workers=2, admin={"address": "127.0.0.1:%d" % admin_port})
    cfg["listeners"][0]["deny"] = ["127.0.0.0/8", "::1"]
    proxy = t.ringlb(cfg)
    t.check(refused_at_once(t, proxy.port), "denied at the listener")
    wait_port(admin_port, t.slow(5))
    t.check(stats(admin_port)["connections"]["refused_acl"] >= 1, "counted")
    cfg["listeners"][0]["allow"] = ["127.0.0.1"]
    t.write_config(cfg, "ringlb.yaml")
    proxy.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + t.slow(5)
    while refused_at_once(t, proxy.port):
        t.check(time.monotonic() < deadline, "the reload did not allow 127.0.0.1")
        time.sleep(0.1)
    t.eq(get(proxy.port).status, 200, "served after the reload")


@timeout(30)
def test_route_allow_deny_files(t):
    """Route lists from files: allow_file 10.0.0.0/8 only -> 403 for us; a
    route whose allow_file has 127.0.0.0/8 but deny 127.0.0.1 -> 403; a
    third route allows us."""
    allow10 = t.write_file("allow10.txt", "# office\n10.0.0.0/8\n\n2001:db8::/32  \n")
    allow127 = t.write_file("allow127.txt", "127.0.0.0/8\r\n")
    routes = [{"path": "/office/", "pool": "app", "allow_file": allow10},
              {"path": "/mixed/", "pool": "app", "allow_file": allow127, "deny": "127.0.0.1"},
              {"path": "/", "pool": "app", "allow": ["127.0.0.0/24"]}]
    proxy, _, admin, log_path = start(t, routes=routes)
    t.eq(get(proxy.port, "/office/a").status, 403, "not on the allow list")
    t.eq(get(proxy.port, "/mixed/a").status, 403, "the longer deny prefix wins")
    t.eq(get(proxy.port, "/size/10").status, 200, "allowed")
    t.eq(route_stats(admin, 0)["denied"], 1, "denied counter")
    lines = log_lines(t, log_path, 3)
    t.eq(sum(1 for l in lines if l.endswith(" denied")), 2, "log reason")


@timeout(30)
def test_admin_change_keeps_lists(t):
    """An admin API change (a weight) shares the running allow lists: a list
    file that is gone since start-up does not make it fail, and the lists
    still apply; a reload then reports the missing file and keeps running."""
    allow = t.write_file("allow.txt", "127.0.0.0/8\n")
    routes = [{"pool": "app", "allow_file": allow, "filters": {"rules": [
        {"name": "dbg", "header": "X-Debug"}]}}]
    proxy, b, admin, _ = start(t, routes=routes)
    t.eq(get(proxy.port, headers=[("X-Debug", "1")]).status, 403, "filtered")
    os.unlink(allow)
    c = t.connect(admin)
    r = c.request("PUT", "/api/pools/app/backends/%s/weight" % b.address,
                  headers=[("Content-Type", "application/json")], body=b'{"weight": 3}')
    t.eq(r.status, 200, "weight change: %r" % r.body)
    t.eq(get(proxy.port).status, 200, "still allowed")
    t.eq(route_stats(admin, 0)["rules"], {"dbg": 1}, "rule counters kept")
    proxy.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + t.slow(5)
    while "reload refused" not in proxy.proc.stderr_text():
        t.check(time.monotonic() < deadline, "the reload reports the missing file")
        time.sleep(0.05)
    t.check("allow.txt" in proxy.proc.stderr_text(), "the message names the file")
    t.eq(get(proxy.port).status, 200, "the running lists stay")


@timeout(30)
def test_bad_lists_refused(t):
    """A bad prefix inline or in a file is a configuration error naming the
    key, file and line."""
    b = t.backend()
    bad = t.write_file("bad.txt", "10.0.0.0/8\n10.0.0.300/8\n")
    for routes, want in (
            ([{"pool": "app", "deny": ["10.0.0.0/33"]}], "routes[0].deny"),
            ([{"pool": "app", "deny_file": bad}], "bad.txt:2")):
        cfg = t.config([b], routes=routes)
        r = t.run_ringlb(["-t", "-c", t.write_config(cfg, "bad.yaml")])
        t.check(r.returncode != 0, "refused")
        t.check(want in r.stderr, "message names %s: %r" % (want, r.stderr))


# ---- trusted proxies, PROXY protocol ----


@timeout(30)
def test_trusted_proxies_forwarded_for(t):
    """From a trusted proxy, the right-most untrusted X-Forwarded-For address
    is the client for route lists, rate limits and the log; from an
    untrusted peer the field is ignored."""
    routes = [{"pool": "app", "deny": ["203.0.113.0/24"]}]
    b = t.backend()
    log_path = os.path.join(t.tmpdir, "access.log")
    cfg = t.config([b], workers=1, routes=routes, access_log={"path": log_path})
    cfg["listeners"][0]["trusted_proxies"] = ["127.0.0.0/8", "10.0.0.0/8"]
    untrusted_port = free_port()
    cfg["listeners"].append({"address": "127.0.0.1:%d" % untrusted_port})
    proxy = t.ringlb(cfg)
    xff = lambda v: [("X-Forwarded-For", v)]
    t.eq(get(proxy.port, headers=xff("203.0.113.7")).status, 403, "denied client")
    t.eq(get(proxy.port, headers=xff("203.0.113.7, 10.1.2.3")).status, 403,
         "trusted hops are skipped")
    t.eq(get(proxy.port, headers=xff("203.0.113.7, 198.51.100.4")).status, 200,
         "the right-most untrusted address decides")
    t.eq(get(untrusted_port, headers=xff("203.0.113.7")).status, 200,
         "ignored from an untrusted peer")
    lines = log_lines(t, log_path, 4)
    t.check(lines[0].startswith("203.0.113.7 "), "client in the log: %r" % lines[0])
    t.check(lines[2].startswith("198.51.100.4 "), "client in the log: %r" % lines[2])
    t.check(lines[3].startswith("127.0.0.1 "), "peer in the log: %r" % lines[3])


@timeout(30)
def test_proxy_protocol(t):
    """A proxy_protocol listener takes v1 (curl --haproxy-protocol) and v2
    headers; the source address is the client for lists and the log; a
    connection without a header is closed and counted."""
    routes = [{"path": "/deny/", "pool": "app", "deny": ["192.0.2.0/24"]}, {"pool": "app"}]
    proxy, b, admin, log_path = start(t, routes=routes)
    # the same config, with the PROXY protocol on (a second ringlb)
    cfg = dict(proxy.config)
    cfg["listeners"] = [{"address": "127.0.0.1:%d" % free_port(), "proxy_protocol": True}]
    cfg["admin"] = {"address": "127.0.0.1:%d" % free_port()}
    log2 = os.path.join(t.tmpdir, "access2.log")
    cfg["access_log"] = {"path": log2}
    cfg["workers"] = 1  # one shard: the log lines keep the order of the requests
    pp = t.ringlb(cfg, name="pp")
    admin2 = int(cfg["admin"]["address"].rsplit(":", 1)[1])
    wait_port(admin2, t.slow(5))
    r = t.curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "--haproxy-protocol",
               "http://127.0.0.1:%d/size/10" % pp.port)
    t.eq(r.stdout, b"200", "curl with a v1 header")
    for hdr, want_client in ((proxyproto.v2_header("192.0.2.9", 5555, "127.0.0.1", pp.port),
                              "192.0.2.9"),
                             (proxyproto.v1_header("2001:db8::7", 5555, "::1", pp.port),
                              "2001:db8::7")):
        c = t.connect(pp.port)
        c.send(hdr)
        t.eq(c.request("GET", "/size/10").status, 200, "served after the header")
        t.eq(c.request("GET", "/deny/x").status, 403 if want_client == "192.0.2.9" else 200,
             "the header's address is the client")
    c = t.connect(pp.port)
    c.send(b"GET /size/10 HTTP/1.1\r\nHost: x\r\n\r\n")
    t.check(c.closed_within(t.slow(3)), "no header: closed")
    t.eq(stats(admin2)["connections"]["proxy_protocol_errors"], 1, "counted")
    lines = log_lines(t, log2, 5)
    t.check(lines[1].startswith("192.0.2.9 "), "v2 source in the log: %r" % lines[1])
    t.check(lines[3].startswith("2001:db8::7 "), "v1 IPv6 source in the log: %r" % lines[3])


@timeout(30)
def test_proxy_protocol_trusted_only(t):
    """With trusted_proxies, only those peers may send a PROXY header."""
    b = t.backend()
    cfg = t.config([b])
    cfg["listeners"][0]["proxy_protocol"] = True
    cfg["listeners"][0]["trusted_proxies"] = ["10.0.0.0/8"]
    proxy = t.ringlb(cfg)
    c = t.connect(proxy.port)
    c.send(proxyproto.v1_header("192.0.2.9", 5555, "127.0.0.1", proxy.port))
    t.check(c.closed_within(t.slow(3)), "an untrusted peer is closed")


@timeout(40)
def test_proxy_protocol_tls_and_h2_rate_limit(t):
    """PROXY before TLS (curl --haproxy-protocol over HTTPS, HTTP/1.1 and
    HTTP/2): the header's source is the client; an HTTP/2 client's streams
    share its address's rate budget (refused, never held)."""
    pki = Pki(t)
    b = t.backend()
    log_path = os.path.join(t.tmpdir, "access.log")
    routes = [{"pool": "app", "rate_limit": {"rate": "1/m", "burst": 2, "delay": "1s"}}]
    cfg = t.config([b], workers=2, routes=routes, access_log={"path": log_path})
    cfg["listeners"][0]["tls"] = tls_config([pki.issue("a", ["a.test"])])
    cfg["listeners"][0]["proxy_protocol"] = True
    proxy = t.ringlb(cfg)
    base = ["--cacert", pki.ca_cert, "--resolve", "a.test:%d:127.0.0.1" % proxy.port,
            "--haproxy-protocol", "-w", "%{http_code} %{http_version}\\n"]
    url = "https://a.test:%d/size/10" % proxy.port
    r = t.curl(*(base + ["--http1.1", "-o", "/dev/null", url]))
    t.eq(r.stdout.decode().split(), ["200", "1.1"], "HTTPS after a PROXY header")
    # one HTTP/2 connection, three streams: 2 left in the budget, 1 refused
    r = t.curl(*(base + ["--http2"] + ["-o", "/dev/null", url] * 3))
    t.eq(sorted(r.stdout.decode().split()), ["2", "2", "2", "200", "200", "429"],
         "HTTP/2 streams share the budget")
    r = t.curl("--cacert", pki.ca_cert, "--resolve", "a.test:%d:127.0.0.1" % proxy.port,
               "--haproxy-protocol", "--http2", "-s", "-o", "/dev/null", "-D", "-", url)
    head = r.stdout.decode().lower()
    t.check(head.startswith("http/2 429") and "retry-after: " in head,
            "an HTTP/2 429 carries Retry-After: %r" % head)
    lines = log_lines(t, log_path, 5)
    t.check(all(l.startswith("127.0.0.1 ") for l in lines),
            "curl's PROXY header names 127.0.0.1: %r" % lines)


# ---- filters ----


FILTERS = {
    "methods": ["GET", "HEAD"],
    "max_uri": 64,
    "rules": [
        {"name": "sqli", "path": "(?i)union(\\s|\\+|%20)+select"},
        {"name": "traversal", "path": "\\.\\./"},
        {"name": "scanner", "header": "User-Agent", "value": "(?i)sqlmap|nikto"},
        {"name": "debug-hdr", "header": "X-Debug"},
    ],
}


@timeout(30)
def test_filters(t):
    """Each filter gives 403 (414 for max_uri) with the rule's name in the
    access log and the error log, and counts per rule; clean requests pass."""
    routes = [{"pool": "app", "filters": FILTERS}]
    proxy, _, admin, log_path = start(t, routes=routes, workers=1)
    cases = [
        ("GET", "/size/10", [], 200, "-"),
        ("POST", "/size/10", [], 403, "method"),
        ("GET", "/size/10?q=reunions+selected", [], 200, "-"),
        ("GET", "/size/10?q=1%20UNION+%20select+x", [], 403, "sqli"),
        ("GET", "/a/../etc/passwd", [], 403, "traversal"),
        ("GET", "/size/10", [("User-Agent", "Mozilla/5.0 sqlmap/1.7")], 403, "scanner"),
        ("GET", "/size/10", [("X-Debug", "1")], 403, "debug-hdr"),
        ("GET", "/size/10?" + "a" * 80, [], 414, "max_uri"),
        ("HEAD", "/size/10", [], 200, "-"),
    ]
    for method, target, headers, want, _ in cases:
        c = t.connect(proxy.port)
        c.send(("%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (
            method, target, "".join("%s: %s\r\n" % h for h in headers))).encode())
        r = c.read_response(method)
        t.eq(r.status, want, "%s %s %r" % (method, target, headers))
    lines = log_lines(t, log_path, len(cases))
    t.eq([l.rsplit(" ", 1)[1] for l in lines], [c[4] for c in cases], "reasons in the log")
    rs = route_stats(admin, 0)
    t.eq(rs["filtered"], 6, "filtered counter")
    t.eq(rs["rules"], {"sqli": 1, "traversal": 1, "scanner": 1, "debug-hdr": 1},
         "per-rule counters")
    err = proxy.proc.stderr_text()
    t.check("refused by routes[0] sqli" in err, "the warning names the rule: %s" % err[-500:])


@timeout(30)
def test_filter_config_errors(t):
    """A bad pattern is refused with its offset; value needs header."""
    b = t.backend()
    for rule, want in (({"name": "x", "path": "(unclosed"}, "rules[0].path"),
                       ({"name": "x", "value": "a"}, "value needs header"),
                       ({"name": "x"}, "a rule needs path, method or header")):
        cfg = t.config([b], routes=[{"pool": "app", "filters": {"rules": [rule]}}])
        r = t.run_ringlb(["-t", "-c", t.write_config(cfg, "bad.yaml")])
        t.check(r.returncode != 0, "refused: %r" % rule)
        t.check(want in r.stderr, "message %r in %r" % (want, r.stderr))


# ---- slow bodies ----


@timeout(40)
def test_body_min_rate(t):
    """body_min_rate 1KiB over 1 s windows: a body trickling 10 bytes every
    200 ms gets 408 within a few seconds (counted, logged body_too_slow); a
    fast body of the same size passes."""
    proxy, _, admin, log_path = start(
        t, limits={"body_min_rate": "1KiB", "body_rate_window": "1s"}, workers=1)
    c = t.connect(proxy.port, timeout=15)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    t0 = time.monotonic()
    status = None
    try:
        for _ in range(100):
            c.send(b"x" * 10)
            time.sleep(0.2)
            c.sock.settimeout(0.01)
            try:
                if c.sock.recv(1, socket.MSG_PEEK):
                    break
            except (socket.timeout, BlockingIOError):
                pass
    except OSError:
        pass
    c.sock.settimeout(5)
    status = c.read_response("POST").status
    took = time.monotonic() - t0
    t.eq(status, 408, "a crawling body")
    t.check(took < t.slow(4), "refused after %.1f s" % took)
    t.eq(stats(admin)["connections"]["body_too_slow"], 1, "counted")
    r = get(proxy.port, "/echo", method="POST", body=b"y" * 100000)
    t.eq(r.status, 200, "a fast body passes")
    r = get(proxy.port, "/sleep/2500", method="POST", body=b"z" * 5)
    t.eq(r.status, 200, "a complete body waiting for a slow backend is no slow body")
    lines = log_lines(t, log_path, 3)
    t.check(lines[0].endswith(" body_too_slow"), "log reason: %r" % lines[0])


# ---- anomaly detection ----


@timeout(40)
def test_anomaly_spike_warns(t):
    """anomaly on, 1 s intervals: a steady 5 req/s for 5 s, then 60 req/s
    for 2 s, is a spike: a warning in the log and a counter in the API."""
    routes = [{"pool": "app"}]
    proxy, _, admin, _ = start(t, routes=routes, workers=2, anomaly={
        "enabled": True, "interval": "1s", "baseline": "30s", "factor": 300, "min_rate": 10})
    end = time.monotonic() + 5
    while time.monotonic() < end:
        get(proxy.port)
        time.sleep(0.2)
    t.eq(route_stats(admin, 0)["anomaly"]["spikes"], 0, "no spike at a steady rate")
    c = t.connect(proxy.port)
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        c.request("GET", "/size/10")
        time.sleep(1 / 60)
    time.sleep(1.2)
    a = route_stats(admin, 0)["anomaly"]
    t.check(a["spikes"] >= 1, "a spike was counted: %r" % a)
    t.check("anomaly: routes[0] request rate" in proxy.proc.stderr_text(), "warning logged")
