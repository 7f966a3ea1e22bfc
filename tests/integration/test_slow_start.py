"""Slow start: a backend that comes back takes a growing share of the
traffic over `slow_start`, not all of its share at once.

Method: two backends, round robin, health checks every 100 ms and
slow_start 3s. b2 is killed, marked down, then restarted on the same port;
right after its "is up" line its share of 200 requests is well below half,
and once the ramp is over it is back to about half.
"""

import time

from lib import served_by, timeout, wait_stderr
from test_health import backend_on_port




def share(t, port, name, n):
    c = t.connect(port)
    hits = 0
    for _ in range(n):
        resp = c.request("GET", "/")
        t.eq(resp.status, 200, "status")
        hits += served_by(resp) == name
    return hits / float(n)


@timeout(60)
def test_slow_start_ramps_a_recovered_backend(t):
    b1, b2 = t.backend("b1"), t.backend("b2")
    port2 = b2.port
    cfg = t.config([b1, b2])
    pool = cfg["pools"][0]
    pool["slow_start"] = "3s"
    pool["health_check"] = {"interval": "100ms", "timeout": "80ms", "rise": 1, "fall": 1}
    proxy = t.ringlb(cfg)
    t.check(0.35 < share(t, proxy.port, "b2", 100) < 0.65, "b2's share before its failure")
    b2.kill()
    wait_stderr(t, proxy, "backend 127.0.0.1:%d (pool app) is down" % port2, 3)
    backend_on_port(t, "b2", port2)
    wait_stderr(t, proxy, "backend 127.0.0.1:%d (pool app) is up" % port2, 3)
    early = share(t, proxy.port, "b2", 200)
    time.sleep(t.slow(3.2))
    late = share(t, proxy.port, "b2", 200)
    t.note("b2's share: %.2f just after it came back, %.2f after the ramp" % (early, late))
    t.check(early < 0.3, "b2's share right after it came back: %.2f" % early)
    t.check(late > 0.35, "b2's share after the ramp: %.2f" % late)
