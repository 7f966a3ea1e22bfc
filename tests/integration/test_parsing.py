"""Strict request parsing and limits: every malformed or ambiguous request is
refused with the right status and a closed connection, and never reaches a
backend."""

import select
import socket
import time

from lib import TestFailure

H = b"Host: example.test\r\n"

# name: (raw request, whether the backend may see the head)
REFUSED_400 = {
    "content_length_and_transfer_encoding": (
        b"POST /upload HTTP/1.1\r\n" + H +
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", False),
    "duplicate_content_length_differing": (
        b"POST /upload HTTP/1.1\r\n" + H +
        b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", False),
    "duplicate_content_length_same": (
        b"POST /upload HTTP/1.1\r\n" + H +
        b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", False),
    "content_length_not_a_number": (
        b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n", False),
    "content_length_negative": (
        b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", False),
    "content_length_plus_sign": (
        b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", False),
    "content_length_hex": (
        b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello", False),
    "transfer_encoding_gzip": (
        b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", False),
    "transfer_encoding_chunked_not_last": (
        b"POST /upload HTTP/1.1\r\n" + H +
        b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", False),
    "transfer_encoding_identity": (
        b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n", False),
    "obs_fold": (
        b"GET / HTTP/1.1\r\n" + H + b"X-Folded: a\r\n b\r\n\r\n", False),
    "bare_cr_in_value": (
        b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\rb\r\n\r\n", False),
    "bare_lf_line_end": (
        b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\nX-Bar: b\r\n\r\n", False),
    "space_before_colon": (
        b"GET / HTTP/1.1\r\n" + H + b"X-Foo : a\r\n\r\n", False),
    "bad_token_in_field_name": (
        b"GET / HTTP/1.1\r\n" + H + b"X(Foo): a\r\n\r\n", False),
    "bad_token_in_method": (
        b"G(T / HTTP/1.1\r\n" + H + b"\r\n", False),
    "nul_in_value": (
        b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\x00b\r\n\r\n", False),
    "bad_chunk_size": (
        b"POST /upload HTTP/1.1\r\n" + H +
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", True),
    "chunk_size_overflow": (
        b"POST /upload HTTP/1.1\r\n" + H +
        b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", True),
}


def expect_refusal(t, proxy, raw, status, within=None):
    """Sends `raw`, expects `status` and then a closed connection. Returns the
    seconds until the response."""
    c = t.connect(proxy.port, timeout=t.slow(10))
    start = time.monotonic()
    try:
        c.send(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass  # ringlb may refuse before reading everything we send
    try:
        resp = c.read_response()
    except socket.timeout:
        t.fail("no response within %.0fs" % c.timeout)
    except (TestFailure, ConnectionError) as e:
        t.fail("connection closed without a %d response (%s)" % (status, e))
    took = time.monotonic() - start
    t.eq(resp.status, status, "status")
    t.check("html" in (resp.get("content-type") or "").lower(), "error page not HTML: %r"
            % resp.headers)
    t.check(c.closed_within(t.slow(2)), "connection left open after a %d" % status)
    if within is not None:
        t.check(took <= t.slow(within), "%d after %.2fs" % (status, took))
    return took


def make_400_test(name, raw, head_may_pass):
    def test(t):
        b1 = t.backend()
        proxy = t.ringlb(t.config([b1]))
        expect_refusal(t, proxy, raw, 400, within=2)
        if not head_may_pass:
            t.eq(b1.stats()["requests"], 0, "requests that reached the backend")
        t.eq(t.connect(proxy.port).request("GET", "/").status, 200, "a good request afterwards")
    test.__name__ = "test_400_" + name
    test.__qualname__ = test.__name__
    return test


for _name, (_raw, _may_pass) in REFUSED_400.items():
    globals()["test_400_" + _name] = make_400_test(_name, _raw, _may_pass)


def small_limits(t, **limits):
    b1 = t.backend()
    return t.ringlb(t.config([b1], limits=limits)), b1


def test_414_request_line_too_long(t):
    proxy, b1 = small_limits(t, request_line_bytes_max="1KiB")
    ok = t.connect(proxy.port).request("GET", "/" + "a" * 900)
    t.eq(ok.status, 200, "request line under the limit")
    expect_refusal(t, proxy, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414, 2)


def test_431_head_too_large(t):
    proxy, b1 = small_limits(t, header_bytes_max="4KiB", request_line_bytes_max="2KiB")
    fields = [("X-F%d" % i, "v" * 200) for i in range(10)]  # ~2.1 KiB
    resp = t.connect(proxy.port).request("GET", "/", headers=fields)
    t.eq(resp.status, 200, "head under the limit")
    big = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 500) for i in range(12))  # ~6 KiB
    expect_refusal(t, proxy, b"GET / HTTP/1.1\r\n" + H + big + b"\r\n", 431, 2)
    t.eq(b1.stats()["requests"], 1, "requests that reached the backend")


def test_431_too_many_fields(t):
    proxy, b1 = small_limits(t, headers_max=20)
    fields = [("X-F%d" % i, "v") for i in range(10)]
    t.eq(t.connect(proxy.port).request("GET", "/", headers=fields).status, 200, "10 fields")
    many = b"".join(b"X-F%d: v\r\n" % i for i in range(40))
    expect_refusal(t, proxy, b"GET / HTTP/1.1\r\n" + H + many + b"\r\n", 431, 2)


def test_413_content_length_over_limit(t):
    proxy, b1 = small_limits(t, body_bytes_max="1KiB")
    ok = t.connect(proxy.port).request("POST", "/upload", body=b"x" * 1000)
    t.eq(ok.status, 200, "body under the limit")
    # Only the head is sent: the 413 must come at once, without the body.
    took = expect_refusal(t, proxy, b"POST /upload HTTP/1.1\r\n" + H +
                          b"Content-Length: 100000\r\n\r\n", 413, 2)
    t.log("413 after %.3fs" % took)
    t.eq(b1.stats()["requests"], 1, "requests that reached the backend")


def test_413_chunked_over_limit(t):
    proxy, b1 = small_limits(t, body_bytes_max="1KiB")
    body = b"".join(b"400\r\n" + b"y" * 1024 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
    expect_refusal(t, proxy, b"POST /upload HTTP/1.1\r\n" + H +
                   b"Transfer-Encoding: chunked\r\n\r\n" + body, 413, 3)


def test_408_client_header_timeout(t):
    b1 = t.backend()
    proxy = t.ringlb(t.config([b1], timeouts={"client_header": "1s"}))
    took = expect_refusal(t, proxy, b"GET / HTTP/1.1\r\nHost: exa", 408)
    t.log("408 after %.2fs" % took)
    t.check(0.8 <= took <= t.slow(2.2), "408 after %.2fs (client_header: 1s)" % took)
    t.eq(b1.stats()["requests"], 0, "requests that reached the backend")


def test_408_slow_trickle(t):
    """A head trickled a byte at a time is still cut at client_header."""
    b1 = t.backend()
    proxy = t.ringlb(t.config([b1], timeouts={"client_header": "1s"}))
    c = t.connect(proxy.port, timeout=t.slow(5))
    start = time.monotonic()
    head = b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Slow: " + b"z" * 100
    try:
        for i in range(len(head)):
            if time.monotonic() - start > t.slow(3):
                break
            if select.select([c.sock], [], [], 0)[0]:
                break  # the answer is in: stop sending (a send now could draw an RST)
            c.send(head[i:i + 1])
            time.sleep(0.05)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        resp = c.read_response()
    except (TestFailure, ConnectionError, socket.timeout) as e:
        t.fail("no 408 for a trickled head: %s" % e)
    took = time.monotonic() - start
    t.eq(resp.status, 408, "status")
    t.check(took <= t.slow(2.5), "408 after %.2fs (client_header: 1s)" % took)
