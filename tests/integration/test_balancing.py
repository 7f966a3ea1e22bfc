"""Balancing algorithms through a running ringlb: least_conn steers around a
busy backend, hash and ip_hash keep a key on one backend across connections
and shards, and the live in-flight count is shared by every shard.

Method: real backends report who served a request (their Server field);
slow requests (/sleep/MS) hold a backend busy while other requests are sent.
"""

import threading
import time

from lib import served_by, timeout



def slow_request(t, port, ms, out):
    def run():
        c = t.connect(port, timeout=30)
        resp = c.request("GET", "/sleep/%d" % ms)
        out.append(served_by(resp))
    th = threading.Thread(target=run)
    th.start()
    return th


@timeout(60)
def test_least_conn_avoids_busy_backend(t):
    # Two shards, two backends. A slow request keeps one backend busy; every
    # request sent meanwhile — on new connections, so on either shard — must
    # go to the other one, because the in-flight count is shared by shards.
    b1, b2 = t.backend("b1"), t.backend("b2")
    cfg = t.config([b1, b2], workers=2)
    cfg["pools"][0]["algorithm"] = "least_conn"
    proxy = t.ringlb(cfg)
    slow = []
    th = slow_request(t, proxy.port, 2000, slow)
    time.sleep(0.5)
    fast = []
    for _ in range(12):
        c = t.connect(proxy.port)
        resp = c.request("GET", "/")
        t.eq(resp.status, 200, "status")
        fast.append(served_by(resp))
        c.close()
    th.join(10)
    t.eq(len(slow), 1, "slow request answered")
    t.check(slow[0] in ("b1", "b2"), "slow request served by %r" % slow)
    other = "b2" if slow[0] == "b1" else "b1"
    t.eq(fast, [other] * 12, "backends of the requests sent while %s was busy" % slow[0])


@timeout(60)
def test_hash_on_header_is_sticky_across_shards(t):
    backends = [t.backend("b%d" % i) for i in range(1, 5)]
    cfg = t.config(backends, workers=2)
    cfg["pools"][0]["algorithm"] = "hash"
    cfg["pools"][0]["hash_key"] = "header:X-User"
    proxy = t.ringlb(cfg)
    seen = {}
    for user in ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]:
        for _ in range(5):
            c = t.connect(proxy.port)  # new connections: both shards see the key
            resp = c.request("GET", "/", headers=[("X-User", user)])
            t.eq(resp.status, 200, "status")
            seen.setdefault(user, set()).add(served_by(resp))
            c.close()
    for user, where in seen.items():
        t.eq(len(where), 1, "backends that served %s" % user)
    spread = {next(iter(w)) for w in seen.values()}
    t.check(len(spread) >= 2, "8 users all hashed to one backend: %r" % seen)


@timeout(60)
def test_ip_hash_keeps_a_client_on_one_backend(t):
    backends = [t.backend("b%d" % i) for i in range(1, 4)]
    cfg = t.config(backends, workers=2)
    cfg["pools"][0]["algorithm"] = "ip_hash"
    proxy = t.ringlb(cfg)
    where = set()
    for _ in range(10):
        c = t.connect(proxy.port)
        where.add(served_by(c.request("GET", "/")))
        c.close()
    t.eq(len(where), 1, "backends that served one client address")


@timeout(60)
def test_random_two_and_least_time_serve(t):
    for alg in ("random_two", "least_time", "weighted_least_conn"):
        b1, b2 = t.backend(), t.backend()
        cfg = t.config([b1, b2])
        cfg["pools"][0]["algorithm"] = alg
        proxy = t.ringlb(cfg, name="ringlb-" + alg)
        c = t.connect(proxy.port)
        seen = set()
        for _ in range(30):
            resp = c.request("GET", "/")
            t.eq(resp.status, 200, "%s status" % alg)
            seen.add(served_by(resp))
        t.eq(seen, {b1.name, b2.name}, "%s used both idle backends" % alg)


@timeout(60)
def test_backup_serves_only_when_primaries_are_down(t):
    # b1 primary, b2 backup, health checks every 200 ms: while b1 is up, b2
    # gets nothing; once b1 dies and is marked down, b2 takes the traffic,
    # and no request fails on the way (the connect to the dead b1 is retried
    # on the backup).
    b1, b2 = t.backend("b1"), t.backend("b2")
    cfg = t.config([b1, b2], workers=2)
    pool = cfg["pools"][0]
    pool["backends"][1]["backup"] = True
    pool["retries"] = 1
    pool["health_check"] = {"interval": "200ms", "timeout": "150ms", "rise": 2, "fall": 2}
    proxy = t.ringlb(cfg)
    for _ in range(10):
        c = t.connect(proxy.port)
        resp = c.request("GET", "/")
        t.eq(resp.status, 200, "status with the primary up")
        t.eq(served_by(resp), "b1", "backend with the primary up")
        c.close()
    b1.kill()
    deadline = time.monotonic() + t.slow(5)
    while "is down" not in proxy.proc.stderr_text() and time.monotonic() < deadline:
        c = t.connect(proxy.port)
        t.eq(c.request("GET", "/").status, 200, "status while the primary dies")
        c.close()
        time.sleep(0.05)
    t.check("is down" in proxy.proc.stderr_text(), "primary never marked down")
    for _ in range(10):
        c = t.connect(proxy.port)
        resp = c.request("GET", "/")
        t.eq(resp.status, 200, "status with the primary down")
        t.eq(served_by(resp), "b2", "backend with the primary down")
        c.close()
