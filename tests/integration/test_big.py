"""1 GiB bodies through ringlb (64 MiB with --sanitized), both directions,
checked byte for byte, while ringlb's resident memory is sampled.

The config has 2 workers with 256 provided buffers of 16 KiB each (4 MiB per
shard) and at most 256 KiB unsent per connection direction, so ringlb's RSS
must stay far below the size of the body: the bound is 64 MiB. Each transfer
starts with a one-second stall on the receiving side, so ringlb has to stop
reading (backpressure) instead of buffering.
"""

import time

from lib import MiB, PatternChecker, RssSampler, backend_mod, pattern_sha256, timeout

RSS_BOUND = 64 * MiB


def big_proxy(t):
    b1 = t.backend()
    cfg = t.config([b1], workers=2,
                   buffers={"count": 256, "size": "16KiB", "conn_bytes_max": "256KiB"},
                   timeouts={"client_body": "60s", "upstream_response": "60s"})
    return t.ringlb(cfg), b1


def report(t, rss, n, secs):
    max_mib = rss.max_kib / 1024.0
    t.note("%d MiB in %.1fs (%.0f MiB/s); ringlb max VmRSS %.1f MiB (bound %d MiB, %d samples)"
           % (n // MiB, secs, n / MiB / secs, max_mib, RSS_BOUND // MiB, rss.samples))
    t.check(rss.samples > 0, "no RSS samples")
    if t.sanitized:
        t.note("RSS bound not checked for a sanitized build")
        return
    t.check(rss.max_kib * 1024 < RSS_BOUND, "ringlb max VmRSS %.1f MiB exceeds %d MiB"
            % (max_mib, RSS_BOUND // MiB))


@timeout(180)
def test_big_download_content_length(t):
    n = t.big()
    proxy, _ = big_proxy(t)
    expected = pattern_sha256(n)
    c = t.connect(proxy.port, timeout=30)
    check = PatternChecker()
    with RssSampler(proxy.pid) as rss:
        start = time.monotonic()
        c.send_request("GET", "/size/%d" % n)
        time.sleep(1.0)  # a slow reader first: ringlb must pause the backend
        resp = c.read_response(sink=check)
        secs = time.monotonic() - start
    t.eq(resp.status, 200, "status")
    t.eq(check.offset, n, "bytes received")
    t.eq(check.bad_at, None, "offset of the first corrupt byte")
    t.eq(check.sha.hexdigest(), expected, "sha256 of the body")
    report(t, rss, n, secs)


@timeout(180)
def test_big_download_chunked(t):
    n = t.big() // 4
    proxy, _ = big_proxy(t)
    c = t.connect(proxy.port, timeout=30)
    check = PatternChecker()
    with RssSampler(proxy.pid) as rss:
        start = time.monotonic()
        c.send_request("GET", "/chunked/%d" % n)
        time.sleep(1.0)
        resp = c.read_response(sink=check)
        secs = time.monotonic() - start
    t.eq(resp.status, 200, "status")
    t.eq(check.offset, n, "bytes received")
    t.eq(check.bad_at, None, "offset of the first corrupt byte")
    report(t, rss, n, secs)


@timeout(180)
def test_big_upload_content_length(t):
    n = t.big()
    proxy, _ = big_proxy(t)
    expected = pattern_sha256(n)
    c = t.connect(proxy.port, timeout=30)
    with RssSampler(proxy.pid) as rss:
        start = time.monotonic()
        # The backend waits a second before reading: ringlb must pause the client.
        c.send(b"POST /upload?delay=1000 HTTP/1.1\r\nHost: example.test\r\n"
               b"Content-Length: %d\r\n\r\n" % n)
        for piece in backend_mod.pattern_chunks(n):
            c.sock.sendall(piece)
        resp = c.read_response()
        secs = time.monotonic() - start
    t.eq(resp.status, 200, "status")
    doc = resp.json()
    t.eq(doc["bytes"], n, "bytes at the backend")
    t.eq(doc["sha256"], expected, "sha256 at the backend")
    report(t, rss, n, secs)


@timeout(180)
def test_big_upload_chunked(t):
    n = t.big() // 4
    proxy, _ = big_proxy(t)
    expected = pattern_sha256(n)
    c = t.connect(proxy.port, timeout=30)
    with RssSampler(proxy.pid) as rss:
        start = time.monotonic()
        c.send(b"POST /upload?delay=1000 HTTP/1.1\r\nHost: example.test\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
        for piece in backend_mod.pattern_chunks(n):
            c.sock.sendall(b"%x\r\n" % len(piece))
            c.sock.sendall(piece)
            c.sock.sendall(b"\r\n")
        c.sock.sendall(b"0\r\n\r\n")
        resp = c.read_response()
        secs = time.monotonic() - start
    t.eq(resp.status, 200, "status")
    doc = resp.json()
    t.eq(doc["bytes"], n, "bytes at the backend")
    t.eq(doc["sha256"], expected, "sha256 at the backend")
    t.check(doc["chunked"], "the backend did not receive a chunked body")
    report(t, rss, n, secs)
