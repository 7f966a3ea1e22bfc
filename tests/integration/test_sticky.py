"""Sticky sessions by cookie: ringlb names the backend in a cookie (an
opaque id, not its address), keeps a client that sends it on that backend
across connections and shards, and moves it — with a new cookie — only when
that backend is down.

Method: three backends, round robin, health checks every 100 ms; clients
are plain connections that echo the cookie back by hand.
"""

import re
import time

from lib import served_by, timeout



def set_cookie(resp):
    for v in resp.get_all("set-cookie"):
        m = re.match(r"SRV=([0-9a-f]{16}); Path=/; HttpOnly$", v)
        if m:
            return m.group(1)
    return None


@timeout(60)
def test_sticky_cookie_keeps_and_moves_a_client(t):
    backends = [t.backend("b%d" % i) for i in range(1, 4)]
    cfg = t.config(backends, workers=2)
    pool = cfg["pools"][0]
    pool["sticky_cookie"] = "SRV"
    pool["health_check"] = {"interval": "100ms", "timeout": "80ms", "rise": 1, "fall": 1}
    proxy = t.ringlb(cfg)

    c = t.connect(proxy.port)
    first = c.request("GET", "/")
    cookie = set_cookie(first)
    t.check(cookie is not None, "no SRV cookie set: %r" % first.get_all("set-cookie"))
    home = served_by(first)
    for b in backends:
        t.check(str(b.port) not in cookie, "the cookie reveals a backend port")
    for i in range(12):
        c = t.connect(proxy.port)  # new connections: both shards
        resp = c.request("GET", "/", headers=[("Cookie", "a=1; SRV=%s; z=2" % cookie)])
        t.eq(resp.status, 200, "status %d" % i)
        t.eq(served_by(resp), home, "backend of sticky request %d" % i)
        t.eq(set_cookie(resp), None, "cookie set again on a sticky request")
        c.close()
    # Without the cookie the rotation goes on as usual.
    seen = set()
    for _ in range(6):
        c = t.connect(proxy.port)
        seen.add(served_by(c.request("GET", "/")))
        c.close()
    t.check(len(seen) >= 2, "requests without the cookie all went to %r" % seen)
    # A bogus cookie is ignored.
    c = t.connect(proxy.port)
    resp = c.request("GET", "/", headers=[("Cookie", "SRV=zzzz")])
    t.eq(resp.status, 200, "status with a bogus cookie")
    t.check(set_cookie(resp) is not None, "no new cookie after a bogus one")

    next(b for b in backends if b.name == home).kill()
    deadline = time.monotonic() + t.slow(3)
    while "is down" not in proxy.proc.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    c = t.connect(proxy.port)
    resp = c.request("GET", "/", headers=[("Cookie", "SRV=%s" % cookie)])
    t.eq(resp.status, 200, "status once the sticky backend is down")
    t.check(served_by(resp) != home, "still sent to the dead %s" % home)
    moved = set_cookie(resp)
    t.check(moved is not None and moved != cookie, "no new cookie after the move")
