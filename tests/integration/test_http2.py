"""HTTP/2 to clients (TLS listeners, ALPN h2): curl and h2load for the
protocol, a raw frame client (h2raw.py) for the abuse a front end must
survive: rapid reset (CVE-2023-44487), CONTINUATION floods, SETTINGS and
PING floods, too many streams, oversized header blocks.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time

import h2raw
from certs import Pki, tls_config
from h2raw import H2, frame, request_headers
from lib import timeout, to_yaml


def h2_proxy(t, backends, h2cfg=None, workers=1, timeouts=None, **listener):
    pki = Pki(t)
    cfg = t.config(backends, workers=workers)
    if timeouts:
        cfg["timeouts"].update(timeouts)
    cfg["listeners"][0]["tls"] = tls_config([pki.issue("a", ["a.test"])])
    cfg["listeners"][0].update(listener)
    if h2cfg:
        cfg["http2"] = h2cfg
    return pki, cfg, t.ringlb(cfg)


def curl2(t, pki, port, path, *extra):
    return t.curl("--http2", "--cacert", pki.ca_cert, "--resolve", "a.test:%d:127.0.0.1" % port,
                  "https://a.test:%d%s" % (port, path), *extra)


@timeout(90)
def test_h2_requests_bodies_and_errors(t):
    b = t.backend()
    pki, cfg, proxy = h2_proxy(t, [b])
    port = proxy.port
    # several requests multiplexed on one connection
    cp = curl2(t, pki, port, "/size/100", "-o", "/dev/null", "-o", "/dev/null", "-o",
               "/dev/null", "-w", "%{http_code} %{http_version} %{num_connects}\\n",
               "https://a.test:%d/chunked/50000" % port, "https://a.test:%d/size/3000000" % port)
    lines = cp.stdout.decode().split()
    t.eq(lines[0::3], ["200"] * 3, "statuses (%s)" % cp.stderr)
    t.eq(lines[1::3], ["2"] * 3, "HTTP/2 negotiated")
    t.eq(sum(int(x) for x in lines[2::3]), 1, "one connection for three requests")
    # the backend sees an HTTP/1.1 request with https
    cp = curl2(t, pki, port, "/echo")
    doc = json.loads(cp.stdout)
    headers = dict((k.lower(), v) for k, v in doc["headers"])
    t.eq((doc["version"], headers.get("host"), headers.get("x-forwarded-proto")),
         ("HTTP/1.1", "a.test:%d" % port, "https"), "the forwarded request")
    # bodies: with a length, and streamed without one (re-framed as chunked)
    payload = os.urandom(3 * 1024 * 1024 + 11)
    with open(os.path.join(t.tmpdir, "up.bin"), "wb") as f:
        f.write(payload)
    want = hashlib.sha256(payload).hexdigest()
    doc = json.loads(curl2(t, pki, port, "/upload", "-T", "up.bin").stdout)
    t.eq((doc["sha256"], doc["chunked"]), (want, False), "upload with content-length")
    cp = subprocess.run("cat up.bin | curl -sS --http2 --cacert %s --resolve a.test:%d:127.0.0.1 "
                        "-T - https://a.test:%d/upload" % (pki.ca_cert, port, port), shell=True,
                        capture_output=True, cwd=t.tmpdir, timeout=t.slow(30))
    doc = json.loads(cp.stdout)
    t.eq((doc["sha256"], doc["chunked"]), (want, True), "streamed upload without a length")
    # HEAD, 204, 304 and an error page of ringlb's
    cp = curl2(t, pki, port, "/size/1234", "-I")
    t.check(b"HTTP/2 200" in cp.stdout and b"content-length: 1234" in cp.stdout,
            "HEAD: %r" % cp.stdout)
    for status in (204, 304, 404, 503):
        cp = curl2(t, pki, port, "/status/%d" % status, "-o", "/dev/null", "-w",
                   "%{http_code}")
        t.eq(cp.stdout, str(status).encode(), "status %d relayed" % status)
    b.kill()
    cp = curl2(t, pki, port, "/", "-w", "\\n%{http_code}")
    t.check(cp.stdout.endswith(b"502") and b"502 Bad Gateway" in cp.stdout,
            "ringlb's own 502 page over HTTP/2: %r" % cp.stdout)


@timeout(60)
def test_h2_alpn_choice(t):
    b = t.backend()
    pki, cfg, proxy = h2_proxy(t, [b])
    cp = curl2(t, pki, proxy.port, "/", "--http1.1", "-o", "/dev/null", "-w", "%{http_version}")
    t.eq(cp.stdout, b"1.1", "a client asking for http/1.1 gets it")
    pki2, cfg2, p2 = h2_proxy(t, [b], http2=False)
    cp = curl2(t, pki2, p2.port, "/", "-o", "/dev/null", "-w", "%{http_version}")
    t.eq(cp.stdout, b"1.1", "http2: false keeps the listener on HTTP/1.1")


@timeout(90)
def test_h2load_many_streams(t):
    if shutil.which("h2load") is None:
        t.skip("h2load not installed (nghttp2-client)")
    b1, b2 = t.backend(), t.backend()
    pki, cfg, proxy = h2_proxy(t, [b1, b2], workers=2)
    cp = subprocess.run(["h2load", "-n", "3000", "-c", "6", "-m", "32",
                         "https://127.0.0.1:%d/size/700" % proxy.port],
                        capture_output=True, timeout=t.slow(60))
    out = cp.stdout.decode()
    t.check(re.search(r"requests: 3000 total, 3000 started, 3000 done, 3000 succeeded", out),
            "every stream succeeded: " + out[-600:])
    t.check("status codes: 3000 2xx" in out, "all 2xx: " + out[-600:])
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    t.note("h2load 3000 requests, 6 connections x 32 streams: %s req/s (python backends)" %
           (m.group(3) if m else "?"))


@timeout(60)
def test_h2_rapid_reset_is_cut_off(t):
    b = t.backend()
    pki, cfg, proxy = h2_proxy(t, [b], h2cfg={"max_resets": 20, "reset_rate": 1})
    c = H2(proxy.port)
    t.on_cleanup(c.close)
    sent = 0
    for i in range(500):
        sid = 1 + 2 * i
        if not c.try_send(frame(h2raw.HEADERS, h2raw.END_STREAM | h2raw.END_HEADERS, sid,
                                request_headers("/sleep/200")) +
                          frame(h2raw.RST_STREAM, 0, sid, (h2raw.CANCEL).to_bytes(4, "big"))):
            break
        sent += 1
    code = c.goaway_code()
    t.eq(code, h2raw.ENHANCE_YOUR_CALM, "GOAWAY code after a reset flood (%d pairs sent)" % sent)
    t.check(c.closed_within(t.slow(5)), "the connection is closed")
    time.sleep(0.5)
    reached = b.stats()["requests"]
    t.note("rapid reset: %d HEADERS+RST pairs sent, %d requests reached the backend" %
           (sent, reached))
    t.check(reached <= 40, "at most about max_resets requests reach the backend: %d" % reached)
    # others are still served
    cp = curl2(t, pki, proxy.port, "/size/10", "-o", "/dev/null", "-w", "%{http_code}")
    t.eq(cp.stdout, b"200", "a well-behaved client after the flood")


@timeout(60)
def test_h2_continuation_flood_is_cut_off(t):
    b = t.backend()
    pki, cfg, proxy = h2_proxy(t, [b])
    c = H2(proxy.port)
    t.on_cleanup(c.close)
    c.send(frame(h2raw.HEADERS, 0, 1, request_headers("/")))  # no END_HEADERS
    piece = h2raw.hpack([("x-filler", "y" * 40)])
    sent = 0
    for _ in range(10000):
        if not c.try_send(frame(h2raw.CONTINUATION, 0, 1, piece)):
            break
        sent += 1
    t.check(c.closed_within(t.slow(5)), "the connection is closed after %d CONTINUATION "
            "frames" % sent)
    t.eq(b.stats()["requests"], 0, "nothing reached the backend")
    t.check("CONTINUATION" in proxy.proc.stderr_text() or sent < 10000,
            "the flood is logged or cut off early")
    cp = curl2(t, pki, proxy.port, "/size/10", "-o", "/dev/null", "-w", "%{http_code}")
    t.eq(cp.stdout, b"200", "a well-behaved client after the flood")


@timeout(60)
def test_h2_settings_and_ping_floods_are_cut_off(t):
    b = t.backend()
    pki, cfg, proxy = h2_proxy(t, [b], h2cfg={"max_control": 100, "control_rate": 10})
    for name, f in (("SETTINGS", frame(h2raw.SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00\x64")),
                    ("PING", frame(h2raw.PING, 0, 0, b"12345678"))):
        c = H2(proxy.port)
        t.on_cleanup(c.close)
        sent = 0
        for _ in range(5000):
            if not c.try_send(f):
                break
            sent += 1
        code = c.goaway_code()
        t.eq(code, h2raw.ENHANCE_YOUR_CALM, "GOAWAY after a %s flood (%d sent)" % (name, sent))
        t.check(c.closed_within(t.slow(5)), "closed after the %s flood" % name)
    cp = curl2(t, pki, proxy.port, "/size/10", "-o", "/dev/null", "-w", "%{http_code}")
    t.eq(cp.stdout, b"200", "a well-behaved client after the floods")


@timeout(60)
def test_h2_stream_limit_and_header_limit(t):
    b = t.backend()
    pki, cfg, proxy = h2_proxy(t, [b], h2cfg={"max_concurrent_streams": 4})
    c = H2(proxy.port)
    t.on_cleanup(c.close)
    f, seen = c.frames_until(lambda f: f[0] == h2raw.SETTINGS and not f[1] & h2raw.ACK)
    t.check(f is not None and b"\x00\x03\x00\x00\x00\x04" in f[3],
            "SETTINGS advertise 4 concurrent streams")
    # six requests at once against a limit of four: nghttp2 treats it as a
    # connection error (GOAWAY PROTOCOL_ERROR naming stream 7 as the last
    # one processed); no more than four requests reach the backend
    for i in range(6):
        c.send(frame(h2raw.HEADERS, h2raw.END_STREAM | h2raw.END_HEADERS, 1 + 2 * i,
                     request_headers("/sleep/300")))
    f, _ = c.frames_until(lambda f: f[0] == h2raw.GOAWAY)
    t.check(f is not None, "GOAWAY when the stream limit is exceeded")
    t.eq((int.from_bytes(f[3][:4], "big"), int.from_bytes(f[3][4:8], "big")),
         (7, h2raw.PROTOCOL_ERROR), "GOAWAY last stream and code")
    t.check(c.closed_within(t.slow(5)), "the connection is closed")
    time.sleep(0.5)
    t.check(b.stats()["requests"] <= 4, "at most four requests reached the backend")
    before = b.stats()["requests"]
    # a header block over limits.header_bytes_max: 431, the connection lives
    c2 = H2(proxy.port)
    t.on_cleanup(c2.close)
    big = [("x-big-%d" % i, "v" * 1000) for i in range(20)]
    block = request_headers("/", extra=big)
    first, rest = block[:8000], block[8000:]
    c2.send(frame(h2raw.HEADERS, h2raw.END_STREAM, 1, first) +
            frame(h2raw.CONTINUATION, h2raw.END_HEADERS, 1, rest))
    f, _ = c2.frames_until(lambda f: f[0] in (h2raw.HEADERS, h2raw.RST_STREAM, h2raw.GOAWAY))
    t.check(f is not None and f[0] == h2raw.HEADERS, "an answer to the oversized block: %r" %
            (f,))
    # HPACK: 431 is not in the static table, so the status is a literal
    t.check(b"431" in f[3], "status 431: %r" % f[3][:40])
    c2.send(frame(h2raw.HEADERS, h2raw.END_STREAM | h2raw.END_HEADERS, 3,
                  request_headers("/size/5")))
    f, _ = c2.frames_until(lambda f: f[0] == h2raw.DATA and f[2] == 3)
    t.check(f is not None, "the connection still serves after the 431")
    t.eq(b.stats()["requests"], before + 1, "only the good request reached the backend")


@timeout(60)
def test_h2_client_reset_mid_response_frees_everything(t):
    b = t.backend()
    pki, cfg, proxy = h2_proxy(t, [b])
    c = H2(proxy.port)
    t.on_cleanup(c.close)
    # a large connection window, so resetting streams cannot starve others
    c.send(frame(h2raw.WINDOW_UPDATE, 0, 0, (1 << 30).to_bytes(4, "big")))
    for i in range(20):
        sid = 1 + 2 * i
        c.send(frame(h2raw.HEADERS, h2raw.END_STREAM | h2raw.END_HEADERS, sid,
                     request_headers("/size/5000000")))
    f, _ = c.frames_until(lambda f: f[0] == h2raw.DATA)
    t.check(f is not None, "data flows")
    for i in range(20):
        c.send(frame(h2raw.RST_STREAM, 0, 1 + 2 * i, (h2raw.CANCEL).to_bytes(4, "big")))
    c.send(frame(h2raw.HEADERS, h2raw.END_STREAM | h2raw.END_HEADERS, 41,
                 request_headers("/size/7")))
    body = c.read_body(41, t.slow(10))
    t.check(body is not None, "the connection stays open")
    t.eq(len(body), 7, "a new stream after the resets is served")
    c.close()
    t.stop_proxy(proxy)
    t.check("drain timeout" not in proxy.proc.stderr_text(), "no stream or connection leaked")


@timeout(60)
def test_h2_slow_header_block_and_idle_connection_time_out(t):
    b = t.backend()
    pki, cfg, proxy = h2_proxy(t, [b], timeouts={"client_header": "500ms", "keepalive": "1s"})
    c = H2(proxy.port)
    t.on_cleanup(c.close)
    # settle the SETTINGS exchange first: any frame but CONTINUATION after
    # an open header block is a protocol error
    c.frames_until(lambda f: f[0] == h2raw.SETTINGS and not f[1] & h2raw.ACK)
    c.frames_until(lambda f: f[0] == h2raw.SETTINGS and f[1] & h2raw.ACK)
    c.send(frame(h2raw.HEADERS, 0, 1, request_headers("/")))  # no END_HEADERS, then silence
    start = time.monotonic()
    f, _ = c.frames_until(lambda f: f[0] in (h2raw.RST_STREAM, h2raw.GOAWAY), timeout=t.slow(5))
    t.check(f is not None, "the unfinished header block is cut off")
    cut = time.monotonic() - start
    t.check(c.closed_within(t.slow(5)), "the idle connection is closed")
    t.note("unfinished HEADERS: %s after %.2fs, connection closed after %.2fs" %
           ("RST_STREAM" if f[0] == h2raw.RST_STREAM else "GOAWAY", cut,
            time.monotonic() - start))
    t.eq(b.stats()["requests"], 0, "nothing reached the backend")


def _settings_done(c):
    c.frames_until(lambda f: f[0] == h2raw.SETTINGS and not f[1] & h2raw.ACK)


@timeout(60)
def test_h2_control_budget_refills_between_other_frames(t):
    b = t.backend()
    pki, cfg, proxy = h2_proxy(t, [b], h2cfg={"max_control": 5, "control_rate": 50})
    c = H2(proxy.port)
    t.on_cleanup(c.close)
    _settings_done(c)
    wu = frame(h2raw.WINDOW_UPDATE, 0, 0, (1).to_bytes(4, "big"))
    # a PING every 50 ms (2.5 tokens earned per PING spent), each preceded
    # by other frames: the time between must still count
    for i in range(30):
        c.send(wu)
        time.sleep(0.05)
        c.send(wu + frame(h2raw.PING, 0, 0, b"%08d" % i))
    f, _ = c.frames_until(lambda f: f[0] == h2raw.PING and f[3] == b"%08d" % 29 or
                          f[0] == h2raw.GOAWAY)
    t.check(f is not None and f[0] == h2raw.PING, "30 paced PINGs are answered, no GOAWAY")


@timeout(60)
def test_h2_refused_bodies_give_the_connection_window_back(t):
    b = t.backend()
    pki, cfg, proxy = h2_proxy(t, [b])
    cfg["limits"] = {"body_bytes_max": "1KiB"}
    with open(proxy.config_path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    t.stop_proxy(proxy)
    proxy = t.ringlb(cfg, name="small-bodies")
    c = H2(proxy.port)
    t.on_cleanup(c.close)
    _settings_done(c)
    chunk = b"z" * 16384
    # four refused 64 KiB bodies: 256 KiB, the whole connection window
    for i in range(4):
        sid = 1 + 2 * i
        c.send(frame(h2raw.HEADERS, h2raw.END_HEADERS, sid,
                     request_headers("/upload", method="POST",
                                     extra=[("content-length", "65536")])))
        for j in range(4):
            c.send(frame(h2raw.DATA, h2raw.END_STREAM if j == 3 else 0, sid, chunk))
    statuses = 0
    f, seen = c.frames_until(lambda f: f[0] == h2raw.HEADERS and f[2] == 7)
    t.check(f is not None, "the four requests are answered")
    # a small upload that fits the limit must still get its window
    c.send(frame(h2raw.HEADERS, h2raw.END_HEADERS, 9,
                 request_headers("/upload", method="POST", extra=[("content-length", "500")])))
    c.send(frame(h2raw.DATA, h2raw.END_STREAM, 9, b"y" * 500))
    body = c.read_body(9, t.slow(10))
    t.check(body is not None, "the connection stays open")
    t.eq(json.loads(body)["bytes"], 500, "the later upload arrived whole")
    del statuses


@timeout(60)
def test_h2_truncated_response_is_reset_and_undeliverable_pages_freed(t):
    b = t.backend()
    pki, cfg, proxy = h2_proxy(t, [b])
    c = H2(proxy.port)
    t.on_cleanup(c.close)
    _settings_done(c)
    c.send(frame(h2raw.WINDOW_UPDATE, 0, 0, (1 << 30).to_bytes(4, "big")))
    c.send(frame(h2raw.HEADERS, h2raw.END_STREAM | h2raw.END_HEADERS, 1,
                 request_headers("/crash-after-head")))
    f, _ = c.frames_until(lambda f: f[2] == 1 and (f[0] == h2raw.RST_STREAM or
                                                   (f[0] == h2raw.DATA and f[1] & 1)))
    t.check(f is not None and f[0] == h2raw.RST_STREAM,
            "a response the backend cut is reset, not ended cleanly: %r" % (f and f[:3],))
    # a client whose stream window is 0 gets ringlb's 502 page HEADERS but
    # never its body; when it resets the stream the slot must be freed
    b.kill()
    c2 = H2(proxy.port)
    t.on_cleanup(c2.close)
    c2.send(frame(h2raw.SETTINGS, 0, 0, b"\x00\x04\x00\x00\x00\x00"))  # window 0
    _settings_done(c2)
    for i in range(5):
        sid = 1 + 2 * i
        c2.send(frame(h2raw.HEADERS, h2raw.END_STREAM | h2raw.END_HEADERS, sid,
                      request_headers("/")))
        f, _ = c2.frames_until(lambda f: f[0] == h2raw.HEADERS and f[2] == sid)
        t.check(f is not None, "HEADERS of the 502 page for stream %d" % sid)
        c2.send(frame(h2raw.RST_STREAM, 0, sid, (h2raw.CANCEL).to_bytes(4, "big")))
    c.close()
    c2.close()
    t.stop_proxy(proxy)
    t.check("drain timeout" not in proxy.proc.stderr_text(), "no stream slot leaked")
