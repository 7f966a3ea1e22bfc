"""Proxying: forwarding, balancing, keep-alive, framing, header rewriting,
routes, access log, load."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import time

from lib import PatternChecker, backend_mod, pattern_sha256, timeout


def start(t, nbackends=1, **cfg_overrides):
    backends = t.backends_n(nbackends)
    proxy = t.ringlb(t.config(backends, **cfg_overrides))
    return proxy, backends


def backend_of(resp):
    """The backend name in a "/" response body: "backend NAME METHOD TARGET"."""
    m = re.match(rb"backend (\S+) ", resp.body)
    return m.group(1).decode() if m else None


def has_via(resp):
    return any("ringlb" in v for v in resp.get_all("via"))


def test_basic_get_curl(t):
    proxy, (b1,) = start(t)
    cp = t.curl("-i", "http://127.0.0.1:%d/hello?x=1" % proxy.port)
    t.eq(cp.returncode, 0, "curl exit status")
    head, _, body = cp.stdout.partition(b"\r\n\r\n")
    t.check(head.startswith(b"HTTP/1.1 200"), "status line: %r" % head[:40])
    t.eq(body, b"backend b1 GET /hello?x=1\n", "body")
    t.check(re.search(rb"(?im)^via:.*ringlb", head), "no Via with ringlb in %r" % head)


def test_round_robin_three_backends(t):
    proxy, backends = start(t, 3)
    # One client connection: one shard, so the rotation is exact.
    c = t.connect(proxy.port)
    seen = [backend_of(c.request("GET", "/")) for _ in range(9)]
    t.check(None not in seen, "unexpected bodies: %r" % seen)
    for i in range(0, 9, 3):
        t.eq(sorted(seen[i:i + 3]), ["b1", "b2", "b3"], "backends in requests %d-%d" % (i, i + 2))
    # Fresh client connections are spread too.
    fresh = [backend_of(t.connect(proxy.port).request("GET", "/")) for _ in range(9)]
    t.eq(sorted(fresh), sorted(["b1", "b2", "b3"] * 3), "backends over 9 connections")


def test_round_robin_weights(t):
    backends = t.backends_n(2)
    cfg = t.config([])
    cfg["pools"][0]["backends"] = [{"address": backends[0].address, "weight": 3},
                                   {"address": backends[1].address, "weight": 1}]
    proxy = t.ringlb(cfg)
    c = t.connect(proxy.port)
    seen = [backend_of(c.request("GET", "/")) for _ in range(40)]
    t.eq((seen.count("b1"), seen.count("b2")), (30, 10), "requests per backend (weights 3:1)")


def test_upstream_keepalive_reuse(t):
    proxy, (b1,) = start(t, workers=2)
    for i in range(30):  # a new client connection each time
        t.eq(t.connect(proxy.port).request("GET", "/n%d" % i).status, 200, "status")
    c = t.connect(proxy.port)
    for i in range(30):  # and many on one client connection
        t.eq(c.request("GET", "/m%d" % i).status, 200, "status")
    st = b1.stats()
    t.log("backend stats after 60 requests: %r" % st)
    t.eq(st["requests"], 60, "requests seen by the backend")
    t.check(st["connections"] <= 4, "upstream connections not reused: %d connections for 60 "
            "sequential requests (2 workers)" % st["connections"])


def test_client_keepalive(t):
    proxy, _ = start(t)
    c = t.connect(proxy.port)
    for i in range(6):
        resp = c.request("GET", "/k%d" % i)
        t.eq(resp.status, 200, "status of request %d" % i)
        t.eq(resp.body, b"backend b1 GET /k%d\n" % i, "body")
        t.check("close" not in resp.tokens("connection"), "proxy asked to close: %r" % resp)
    resp = c.request("POST", "/echo", body=b"abc")
    t.eq(resp.json()["bytes"], 3, "POST body on the same connection")
    t.check(not c.closed_within(0.3), "connection closed while idle")


def test_pipelining_in_order(t):
    proxy, _ = start(t)
    c = t.connect(proxy.port)
    c.send(b"GET /sleep/300 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
           b"GET /size/10 HTTP/1.1\r\nHost: x\r\n\r\n")
    r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
    t.eq(r1.body, b"slept 300\n", "first response")
    t.eq(r2.json()["bytes"], 5, "second response")
    t.eq(r2.json()["sha256"], hashlib.sha256(b"hello").hexdigest(), "second response body hash")
    t.eq(r3.body, backend_mod.PATTERN_BLOCK[:10], "third response")
    t.eq(c.request("GET", "/after").status, 200, "a request after the pipeline")


def test_chunked_upload_curl(t):
    proxy, _ = start(t)
    data = os.urandom(300 * 1024 + 7)
    path = t.write_file("upload.bin", "")
    with open(path, "wb") as f:
        f.write(data)
    cp = t.curl("-H", "Transfer-Encoding: chunked", "-H", "Expect:", "--data-binary", "@" + path,
                "http://127.0.0.1:%d/upload" % proxy.port)
    t.eq(cp.returncode, 0, "curl exit status (%s)" % cp.stderr.decode(errors="replace"))
    doc = json.loads(cp.stdout)
    t.eq(doc["bytes"], len(data), "bytes received by the backend")
    t.eq(doc["sha256"], hashlib.sha256(data).hexdigest(), "sha256 at the backend")
    t.check(doc["chunked"], "the backend did not receive a chunked body")


def test_chunked_upload_raw(t):
    proxy, _ = start(t)
    pieces = [b"a" * 1, b"b" * 4096, b"c" * 70000, b"d" * 13]
    body = b""
    for i, p in enumerate(pieces):
        ext = b";name=value" if i == 1 else b""
        body += b"%x%s\r\n%s\r\n" % (len(p), ext, p)
    body += b"0\r\nX-Trailer: yes\r\n\r\n"
    c = t.connect(proxy.port)
    c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    # Sent in awkward slices so chunk framing straddles reads.
    for i in range(0, len(body), 997):
        c.send(body[i:i + 997])
    resp = c.read_response()
    t.eq(resp.status, 200, "status")
    doc = resp.json()
    data = b"".join(pieces)
    t.eq(doc["bytes"], len(data), "bytes at the backend")
    t.eq(doc["sha256"], hashlib.sha256(data).hexdigest(), "sha256 at the backend")
    hdrs = {k.lower(): v for k, v in doc["headers"]}
    t.eq(hdrs.get("transfer-encoding"), "chunked", "Transfer-Encoding at the backend")
    t.check("content-length" not in hdrs, "Content-Length added to a chunked body")
    t.eq(c.request("GET", "/").status, 200, "the connection is usable afterwards")


def test_chunked_download(t):
    proxy, _ = start(t)
    n = 1000003
    cp = t.curl("http://127.0.0.1:%d/chunked/%d" % (proxy.port, n))
    t.eq(cp.returncode, 0, "curl exit status")
    t.eq(len(cp.stdout), n, "bytes from curl")
    t.eq(hashlib.sha256(cp.stdout).hexdigest(), pattern_sha256(n), "sha256 of curl's body")
    c = t.connect(proxy.port)
    check = PatternChecker()
    c.send_request("GET", "/chunked/%d" % n)
    resp = c.read_response(sink=check)
    t.eq(resp.status, 200, "status")
    t.check(resp.chunked, "a chunked backend response is not chunked for a 1.1 client")
    t.eq(check.offset, n, "bytes received")
    t.eq(check.bad_at, None, "first corrupt byte")
    t.eq(c.request("GET", "/").status, 200, "the connection is usable afterwards")


def test_close_delimited_response(t):
    proxy, _ = start(t)
    c = t.connect(proxy.port)
    check = PatternChecker()
    c.send_request("GET", "/close/200000")
    resp = c.read_response(sink=check)
    t.eq(resp.status, 200, "status")
    t.eq(check.offset, 200000, "bytes received")
    t.eq(check.bad_at, None, "first corrupt byte")
    t.check(c.closed_within(t.slow(3)), "client connection not closed after a close-delimited "
                                         "response")


def test_http10_without_keepalive(t):
    proxy, _ = start(t)
    c = t.connect(proxy.port)
    c.send(b"GET /size/1000 HTTP/1.0\r\nHost: x\r\n\r\n")
    resp = c.read_response()
    t.eq(resp.version, "HTTP/1.0", "response version for an HTTP/1.0 client")
    t.eq(resp.status, 200, "status")
    t.eq(resp.body, backend_mod.PATTERN_BLOCK[:1000], "body")
    t.check(c.closed_within(t.slow(3)), "connection of an HTTP/1.0 client not closed")


def test_http10_keepalive(t):
    proxy, _ = start(t)
    c = t.connect(proxy.port)
    for i in range(3):
        c.send(b"GET /size/100 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        resp = c.read_response()
        t.eq(resp.status, 200, "status of request %d" % i)
        t.eq(resp.version, "HTTP/1.0", "response version for an HTTP/1.0 client")
        t.eq(resp.get("content-length"), "100", "Content-Length")
        t.check("keep-alive" in resp.tokens("connection"),
                "response to a 1.0 keep-alive request lacks Connection: keep-alive: %r" % resp)
        t.eq(resp.body, backend_mod.PATTERN_BLOCK[:100], "body")


def test_http10_dechunked(t):
    proxy, _ = start(t)
    c = t.connect(proxy.port)
    check = PatternChecker()
    c.send(b"GET /chunked/100000 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    resp = c.read_response(sink=check)
    t.eq(resp.version, "HTTP/1.0", "response version for an HTTP/1.0 client")
    t.check(not resp.get_all("transfer-encoding"), "Transfer-Encoding sent to an HTTP/1.0 "
                                                   "client: %r" % resp.headers)
    t.eq(check.offset, 100000, "bytes received")
    t.eq(check.bad_at, None, "first corrupt byte")
    if resp.get("content-length") is None:
        t.check(c.closed_within(t.slow(3)), "close-delimited body but the connection stays open")


def test_head_204_304_have_no_body(t):
    proxy, _ = start(t)
    c = t.connect(proxy.port)
    resp = c.request("HEAD", "/size/5000")
    t.eq(resp.status, 200, "HEAD status")
    t.eq(resp.get("content-length"), "5000", "HEAD Content-Length")
    resp = c.request("HEAD", "/chunked/5000")
    t.eq(resp.status, 200, "HEAD status (chunked resource)")
    resp = c.request("GET", "/status/204")
    t.eq(resp.status, 204, "204 status")
    resp = c.request("GET", "/status/304", headers=[("If-None-Match", '"v1"')])
    t.eq(resp.status, 304, "304 status")
    # Any stray body bytes would break the framing of this next response.
    resp = c.request("GET", "/size/7")
    t.eq((resp.status, resp.body), (200, backend_mod.PATTERN_BLOCK[:7]), "request after them")
    t.check(not c.closed_within(0.3), "connection closed")


def test_expect_100_continue_curl(t):
    proxy, _ = start(t)
    data = os.urandom(2 * 1024 * 1024)
    path = t.write_file("body.bin", "")
    with open(path, "wb") as f:
        f.write(data)
    start_time = time.monotonic()
    # With a long expect100 timeout, a 100 that never arrives costs 10 s.
    cp = t.curl("-v", "--expect100-timeout", "10", "-H", "Expect: 100-continue",
                "--data-binary", "@" + path, "http://127.0.0.1:%d/100" % proxy.port)
    took = time.monotonic() - start_time
    t.eq(cp.returncode, 0, "curl exit status")
    t.check(re.search(rb"< HTTP/1.1 100", cp.stderr), "curl saw no 100 Continue:\n%s"
            % cp.stderr.decode(errors="replace")[-2000:])
    doc = json.loads(cp.stdout)
    t.eq(doc["bytes"], len(data), "bytes at the backend")
    t.eq(doc["sha256"], hashlib.sha256(data).hexdigest(), "sha256 at the backend")
    t.check(took < t.slow(5), "took %.1fs: the 100 Continue was late" % took)


def test_expect_100_continue_raw(t):
    proxy, _ = start(t)
    c = t.connect(proxy.port)
    body = os.urandom(1000)
    c.send(b"POST /100 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
           b"Expect: 100-continue\r\n\r\n")
    c.sock.settimeout(t.slow(3))
    interim = c.read_interim()  # before any body byte was sent
    t.eq(interim.status, 100, "interim status")
    c.sock.settimeout(t.slow(10))
    c.send(body)
    resp = c.read_response()
    t.eq(resp.status, 200, "final status")
    doc = resp.json()
    t.eq(doc["bytes"], 1000, "bytes at the backend")
    hdrs = {k.lower(): v for k, v in doc["headers"]}
    t.eq(hdrs.get("expect", "").lower(), "100-continue", "Expect forwarded to the backend")


def test_1xx_relayed(t):
    proxy, _ = start(t)
    c = t.connect(proxy.port)
    resp = c.request("GET", "/103")
    t.eq(resp.status, 200, "final status")
    t.eq([r.status for r in resp.interim], [103], "interim responses")
    t.eq(resp.body, b"after early hints\n", "body")


def test_request_hop_by_hop_and_forwarded_fields(t):
    proxy, _ = start(t)
    c = t.connect(proxy.port)
    resp = c.request("GET", "/echo", host=None, headers=[
        ("Host", "app.example.test"),
        ("Connection", "keep-alive, X-Hop"),
        ("X-Hop", "secret"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "X-Whatever"),
        ("Proxy-Connection", "keep-alive"),
        ("Upgrade", "foo/1"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-End", "kept"),
    ])
    t.eq(resp.status, 200, "status")
    doc = resp.json()
    hdrs = {}
    for k, v in doc["headers"]:
        hdrs.setdefault(k.lower(), []).append(v)
    for gone in ("x-hop", "keep-alive", "te", "trailer", "proxy-connection", "upgrade",
                 "transfer-encoding"):
        t.check(gone not in hdrs, "%s forwarded to the backend: %r" % (gone, doc["headers"]))
    for v in hdrs.get("connection", []):
        t.check("x-hop" not in v.lower(), "client Connection tokens forwarded: %r" % v)
    t.eq(hdrs.get("host"), ["app.example.test"], "Host")
    t.eq(hdrs.get("x-end"), ["kept"], "end-to-end field")
    xff = ", ".join(hdrs.get("x-forwarded-for", []))
    t.check(re.fullmatch(r"203\.0\.113\.7,\s*127\.0\.0\.1", xff), "X-Forwarded-For: %r" % xff)
    t.eq(hdrs.get("x-forwarded-proto"), ["http"], "X-Forwarded-Proto")
    t.check(any("ringlb" in v for v in hdrs.get("via", [])), "Via: %r" % hdrs.get("via"))
    t.eq(doc["method"], "GET", "method")
    t.eq(doc["version"], "HTTP/1.1", "upstream version")


def test_forwarded_fields_without_client_values(t):
    proxy, _ = start(t)
    doc = t.connect(proxy.port).request("GET", "/echo").json()
    hdrs = {k.lower(): v for k, v in doc["headers"]}
    t.eq(hdrs.get("x-forwarded-for"), "127.0.0.1", "X-Forwarded-For")
    t.eq(hdrs.get("x-forwarded-proto"), "http", "X-Forwarded-Proto")


def test_response_hop_by_hop_removed(t):
    proxy, _ = start(t)
    c = t.connect(proxy.port)
    resp = c.request("GET", "/hop")
    t.eq(resp.status, 200, "status")
    names = {k.lower() for k, _ in resp.headers}
    for gone in ("x-hop-resp", "keep-alive", "proxy-connection"):
        t.check(gone not in names, "%s relayed to the client: %r" % (gone, resp.headers))
    for v in resp.get_all("connection"):
        t.check("x-hop-resp" not in v.lower(), "backend Connection tokens relayed: %r" % v)
    t.eq(resp.get("x-end-to-end"), "kept", "end-to-end field")
    t.check(has_via(resp), "no Via with ringlb: %r" % resp.headers)
    t.eq(c.request("GET", "/").status, 200, "next request on the connection")


def test_routes_host_and_path(t):
    web, api, static = t.backend("web"), t.backend("api"), t.backend("static")
    cfg = t.config([web])
    cfg["pools"][0]["name"] = "web"
    cfg["pools"].append({"name": "api", "backends": [{"address": api.address}]})
    cfg["pools"].append({"name": "static", "backends": [{"address": static.address}]})
    cfg["routes"] = [
        {"host": "*.example.com", "path": "/api/", "pool": "api"},
        {"host": "static.test", "pool": "static"},
        {"path": "/files/", "pool": "static"},
    ]
    proxy = t.ringlb(cfg)
    c = t.connect(proxy.port)
    cases = [
        ("x.example.com", "/api/users", "api"),
        ("x.example.com", "/apix", "web"),
        ("x.example.com", "/", "web"),
        ("static.test", "/api/users", "static"),
        ("static.test", "/", "static"),
        ("other.test", "/api/users", "web"),
        ("other.test", "/files/a.txt", "static"),
        ("x.example.com", "/files/a.txt", "static"),
    ]
    for host, path, want in cases:
        resp = c.request("GET", path, host=host)
        t.eq(backend_of(resp), want, "pool for Host %s, path %s (response %d %r)"
             % (host, path, resp.status, resp.body[:200]))


def test_access_log(t):
    backends = t.backends_n(1)
    log_path = os.path.join(t.tmpdir, "access.log")
    proxy = t.ringlb(t.config(backends, access_log={"path": log_path}))
    c = t.connect(proxy.port)
    c.request("GET", "/first?q=1")
    c.request("POST", "/upload", body=b"12345")
    c.request("GET", "/status/404")
    want = ['"GET /first?q=1 HTTP/1.1" 200', '"POST /upload HTTP/1.1" 200',
            '"GET /status/404 HTTP/1.1" 404']

    def lines():
        try:
            with open(log_path) as f:
                return f.read().splitlines()
        except OSError:
            return []

    deadline = time.monotonic() + t.slow(3)
    while len(lines()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    if len(lines()) < 3:  # maybe buffered until exit
        c.close()
        t.stop_proxy(proxy)
    got = lines()
    t.eq(len(got), 3, "access log lines (%r)" % got)
    for line, w in zip(got, want):
        t.check(line.startswith("127.0.0.1 "), "line does not start with the client IP: %r" % line)
        t.check(w in line, "%r not in access log line %r" % (w, line))


@timeout(60)
def test_wrk_short_run(t):
    wrk = shutil.which("wrk")
    if not wrk:
        t.skip("wrk not installed")
    proxy, backends = start(t, 2, workers=2)
    url = "http://127.0.0.1:%d/" % proxy.port
    cp = subprocess.run([wrk, "-t", "2", "-c", "16", "-d", "2s", "--timeout", "5s", url],
                        capture_output=True, timeout=30)
    out = cp.stdout.decode(errors="replace")
    t.log(out)
    t.eq(cp.returncode, 0, "wrk exit status")
    m = re.search(r"(\d+) requests in", out)
    t.check(m and int(m.group(1)) > 100, "too few requests completed")
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    t.note("wrk: %s requests in 2s (%s req/s)" % (m.group(1), rps.group(1) if rps else "?"))
    t.check("Non-2xx" not in out, "non-2xx responses under load")
    t.check("Socket errors" not in out, "socket errors under load")
    t.log("backend stats: %r" % [b.stats() for b in backends])
