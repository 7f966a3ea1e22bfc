"""Backend failures, timeouts, stale pooled connections, graceful shutdown, and
the error responses ringlb generates for them."""

import signal
import socket
import time

from lib import TestFailure, closed_port, timeout


def check_error_page(t, resp, status, ports, what="request"):
    """`resp` is ringlb's own error page: right status, small HTML body, and
    no backend address or port anywhere in it."""
    t.eq(resp.status, status, "status for %s (body %r)" % (what, resp.body[:200]))
    t.check(0 < len(resp.body) <= 4096, "error body of %d bytes" % len(resp.body))
    ctype = (resp.get("content-type") or "").lower()
    t.check("html" in ctype, "error Content-Type %r" % ctype)
    text = resp.body.decode("latin-1")
    head = "\n".join("%s: %s" % kv for kv in resp.headers)
    for port in ports:
        t.check(str(port) not in text, "error page reveals port %d:\n%s" % (port, text))
        t.check("127.0.0.1:%d" % port not in head, "error head reveals the backend:\n" + head)
    t.check("127.0.0.1" not in text, "error page reveals an address:\n" + text)


def timed_request(t, port, target, limit):
    c = t.connect(port, timeout=limit + 5)
    start = time.monotonic()
    resp = c.request("GET", target)
    return c, resp, time.monotonic() - start


def test_backend_crash_after_head(t):
    b1 = t.backend()
    proxy = t.ringlb(t.config([b1]))
    c = t.connect(proxy.port, timeout=10)
    c.send_request("GET", "/crash-after-head")
    start = time.monotonic()
    try:
        resp = c.read_response()
    except (TestFailure, ConnectionError) as e:  # truncated body: the expected outcome
        outcome = "closed: %s" % e
    except socket.timeout:
        t.fail("client hung: no close %.1fs after the backend died" % (time.monotonic() - start))
    else:
        # The head may not have been forwarded yet: then a 502 is right too.
        t.check(resp.status == 502, "backend died mid-body but the client got a complete "
                                    "response: %r" % resp)
        t.check(c.closed_within(t.slow(5)), "connection not closed after the 502")
        outcome = "502"
    took = time.monotonic() - start
    t.log("outcome after %.2fs: %s" % (took, outcome))
    t.check(took < t.slow(5), "took %.1fs to notice the dead backend" % took)
    t.eq(t.connect(proxy.port).request("GET", "/").status, 200, "next request")


def test_backend_crash_before_head_502(t):
    b1 = t.backend()
    proxy = t.ringlb(t.config([b1]))
    c, resp, took = timed_request(t, proxy.port, "/crash-before-head", 5)
    check_error_page(t, resp, 502, [b1.port])
    t.check(took < t.slow(3), "502 took %.1fs" % took)
    t.eq(t.connect(proxy.port).request("GET", "/").status, 200, "next request")


def test_backend_invalid_response_502(t):
    b1 = t.backend()
    proxy = t.ringlb(t.config([b1]))
    c, resp, took = timed_request(t, proxy.port, "/bad-response", 5)
    check_error_page(t, resp, 502, [b1.port])


def test_backend_refusing_502(t):
    port = closed_port()
    cfg = t.config(["127.0.0.1:%d" % port])
    proxy = t.ringlb(cfg)
    c, resp, took = timed_request(t, proxy.port, "/", 5)
    check_error_page(t, resp, 502, [port])
    t.check(took < t.slow(3), "502 took %.1fs" % took)
    # ringlb keeps running and answers the next request the same way.
    resp = t.connect(proxy.port).request("GET", "/")
    check_error_page(t, resp, 502, [port])


def test_refused_backend_is_retried_elsewhere(t):
    b1 = t.backend()
    cfg = t.config(["127.0.0.1:%d" % closed_port(), b1])
    cfg["pools"][0]["retries"] = 1
    proxy = t.ringlb(cfg)
    c = t.connect(proxy.port)
    statuses = [c.request("GET", "/r%d" % i).status for i in range(6)]
    t.eq(statuses, [200] * 6, "statuses with one of two backends refusing (retries: 1)")


def test_upstream_response_timeout_504(t):
    b1 = t.backend()
    proxy = t.ringlb(t.config([b1], timeouts={"upstream_response": "1s"}))
    c, resp, took = timed_request(t, proxy.port, "/sleep/3000", 5)
    check_error_page(t, resp, 504, [b1.port])
    t.log("504 after %.2fs" % took)
    t.check(0.8 <= took <= t.slow(2.2), "504 after %.2fs (upstream_response: 1s)" % took)
    t.eq(t.connect(proxy.port).request("GET", "/").status, 200, "next request")


def test_error_pages_reveal_no_backend(t):
    good = t.backend()
    refused = closed_port()
    cfg = t.config([good], timeouts={"upstream_response": "1s"})
    cfg["pools"].append({"name": "dead", "backends": [{"address": "127.0.0.1:%d" % refused}]})
    cfg["routes"] = [{"path": "/dead/", "pool": "dead"}]
    proxy = t.ringlb(cfg)
    for target, status in [("/dead/x", 502), ("/crash-before-head", 502),
                           ("/bad-response", 502), ("/sleep/2500", 504)]:
        resp = t.connect(proxy.port).request("GET", target)
        check_error_page(t, resp, status, [good.port, refused], "GET " + target)


@timeout(60)
def test_pooled_connection_closed_by_backend(t):
    b1 = t.backend(idle_close_ms=300)
    proxy = t.ringlb(t.config([b1]))
    statuses = []
    for i in range(10):
        if i:
            time.sleep(0.6)
        c = t.connect(proxy.port)
        statuses.append(c.request("GET", "/stale%d" % i).status)
        c.close()
    st = b1.stats()
    t.log("statuses %r, backend stats %r" % (statuses, st))
    t.eq(statuses, [200] * 10, "statuses over stale pooled connections")
    t.check(st["accepted"] >= 5, "the backend did not close idle connections (test broken?)")


def test_pooled_connection_closed_post_not_lost(t):
    """A POST on a stale pooled connection must not be silently lost: either it
    is answered by the backend or the client gets an error; never a hang."""
    b1 = t.backend(idle_close_ms=300)
    proxy = t.ringlb(t.config([b1]))
    t.eq(t.connect(proxy.port).request("GET", "/warm").status, 200, "warm-up")
    time.sleep(0.6)
    resp = t.connect(proxy.port).request("POST", "/upload", body=b"x" * 100)
    t.check(resp.status in (200, 502), "status %d" % resp.status)


@timeout(60)
def test_graceful_shutdown(t):
    b1 = t.backend()
    proxy = t.ringlb(t.config([b1], timeouts={"drain": "5s"}))
    c = t.connect(proxy.port)
    c.send_request("GET", "/sleep/1500")
    time.sleep(0.3)
    signaled = time.monotonic()
    proxy.proc.send_signal(signal.SIGTERM)
    # New connections are refused soon after the signal.
    refused = False
    while time.monotonic() - signaled < 0.8:
        try:
            s = socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5)
            s.close()
        except ConnectionRefusedError:
            refused = True
            break
        except OSError:
            pass
        time.sleep(0.02)
    t.check(refused, "new connections still accepted 0.8s after SIGTERM")
    resp = c.read_response()
    t.eq((resp.status, resp.body), (200, b"slept 1500\n"), "in-flight request")
    rc = proxy.proc.wait(t.slow(7))
    took = time.monotonic() - signaled
    t.check(rc is not None, "ringlb still running %.1fs after SIGTERM" % took)
    t.eq(rc, 0, "exit status after SIGTERM")
    t.log("exited %.2fs after SIGTERM" % took)
    t.check(took < t.slow(5), "exit took %.1fs (drain: 5s)" % took)


@timeout(60)
def test_shutdown_drain_limit(t):
    b1 = t.backend()
    proxy = t.ringlb(t.config([b1], timeouts={"drain": "1s"}))
    c = t.connect(proxy.port, timeout=10)
    c.send_request("GET", "/sleep/8000")
    time.sleep(0.3)
    signaled = time.monotonic()
    proxy.proc.send_signal(signal.SIGTERM)
    rc = proxy.proc.wait(t.slow(6))
    took = time.monotonic() - signaled
    t.check(rc is not None, "ringlb still running %.1fs after SIGTERM with drain: 1s" % took)
    t.eq(rc, 0, "exit status after the drain limit")
    t.check(took < t.slow(3), "exit took %.1fs (drain: 1s)" % took)
    try:
        resp = c.read_response()
        t.check(resp.status >= 500, "in-flight request cut by the drain got %r" % resp)
    except (TestFailure, ConnectionError):
        pass  # closed without a response: fine
    except socket.timeout:
        t.fail("client connection left open after ringlb exited")


def test_sigint_exits_zero(t):
    b1 = t.backend()
    proxy = t.ringlb(t.config([b1]))
    t.eq(t.connect(proxy.port).request("GET", "/").status, 200, "status")
    proxy.proc.send_signal(signal.SIGINT)
    rc = proxy.proc.wait(t.slow(6))
    t.eq(rc, 0, "exit status after SIGINT")
