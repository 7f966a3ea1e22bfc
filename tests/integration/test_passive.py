"""Passive health: consecutive failed requests eject a backend for a
back-off that grows, and it comes back when the back-off ends.

Method: a pool of one live backend and one address nothing listens on
(connects are refused); with retries every client request still succeeds,
while ringlb's log shows the ejection and, after the back-off, the return.
A second test ejects a live backend for its 5xx answers and checks that
requests then avoid it.
"""

import time

from lib import closed_port, served_by, timeout, wait_stderr




@timeout(60)
def test_refused_backend_is_ejected_and_returns(t):
    live = t.backend("live")
    dead = "127.0.0.1:%d" % closed_port()
    cfg = t.config([live, dead])
    cfg["pools"][0]["retries"] = 1
    cfg["pools"][0]["passive_health"] = {"failures": 2, "ejection": "1s", "ejection_max": "4s"}
    proxy = t.ringlb(cfg)
    c = t.connect(proxy.port)
    for i in range(10):
        t.eq(c.request("GET", "/").status, 200, "status of request %d" % i)
    wait_stderr(t, proxy, "backend %s (pool app) is ejected for 1000ms" % dead, 2)
    wait_stderr(t, proxy, "backend %s (pool app) is back after its ejection" % dead, 3)
    for i in range(10):
        t.eq(c.request("GET", "/").status, 200, "status after the return %d" % i)
    # Failing again right away: the second ejection lasts twice as long.
    wait_stderr(t, proxy, "backend %s (pool app) is ejected for 2000ms" % dead, 3)


@timeout(60)
def test_5xx_answers_eject_a_backend(t):
    good, bad = t.backend("good"), t.backend("bad")
    cfg = t.config([good, bad])
    cfg["pools"][0]["algorithm"] = "round_robin"
    cfg["pools"][0]["passive_health"] = {"failures": 3, "ejection": "30s"}
    proxy = t.ringlb(cfg)
    c = t.connect(proxy.port)
    # /status/503 is answered 503 by both backends, and each answer counts as
    # a failure for the backend that gave it. Round robin alternates, so 5
    # requests give one backend its 3rd failure and the other only 2.
    for _ in range(5):
        c.request("GET", "/status/503")
    wait_stderr(t, proxy, "is ejected for 30000ms", 2, count=1)
    text = proxy.proc.stderr_text()
    t.eq(text.count("is ejected"), 1, "ejections after 5 failures split 3/2")
    ejected = "good" if ("backend %s (pool app) is ejected" % good.address) in text else "bad"
    for i in range(8):
        resp = c.request("GET", "/")
        t.eq(resp.status, 200, "status %d" % i)
        t.check(served_by(resp) != ejected, "request %d served by the ejected %s" % (i, ejected))
