"""The admin API: live changes through new snapshots, under load, losing no
request; and the bearer token.

Method: a load thread sends sequential GETs (a new connection every few
requests) while the test adds a backend, drains one (a slow request on it
must still complete), changes a weight and removes the drained backend
through the JSON API; every response must be 200, and after the removal the
removed backend serves nothing.
"""

import json
import threading
import time

from lib import Conn, free_port, served_by, timeout, wait_port


def api(t, port, method, path, body=None, token=None):
    c = Conn(port, t.slow(5))
    headers = [("Content-Type", "application/json")]
    if token:
        headers.append(("Authorization", "Bearer " + token))
    payload = json.dumps(body).encode() if body is not None else None
    resp = c.request(method, path, headers=headers, body=payload)
    c.close()
    return resp.status, (json.loads(resp.body) if resp.body else None)



class Load:
    def __init__(self, t, port):
        self.t, self.port = t, port
        self.results = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        deadline = time.monotonic() + 20
        while not self.stop and time.monotonic() < deadline:
            c = Conn(self.port, 10)
            for _ in range(5):
                resp = c.request("GET", "/")
                self.results.append((time.monotonic(), resp.status, served_by(resp)))
            c.close()

    def finish(self):
        self.stop = True
        self.thread.join(15)


@timeout(90)
def test_admin_changes_under_load_lose_nothing(t):
    b1, b2 = t.backend("b1"), t.backend("b2")
    admin = free_port()
    cfg = t.config([b1], workers=2)
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin}
    proxy = t.ringlb(cfg)
    wait_port(admin, t.slow(5))
    status, listing = api(t, admin, "GET", "/api/pools")
    t.eq(status, 200, "GET /api/pools")
    t.eq([b["address"] for b in listing["pools"][0]["backends"]], [b1.address], "backends")

    load = Load(t, proxy.port)
    time.sleep(0.5)
    status, _ = api(t, admin, "POST", "/api/pools/app/backends", {"address": b2.address})
    t.eq(status, 201, "add b2")
    time.sleep(0.5)
    # A slow request is in flight across the drain and the weight change
    # (on whichever backend serves it): it must finish normally.
    slow = []
    th = threading.Thread(target=lambda: slow.append(
        Conn(proxy.port, 10).request("GET", "/sleep/1500")))
    th.start()
    time.sleep(0.3)
    status, _ = api(t, admin, "POST", "/api/pools/app/backends/%s/drain" % b1.address)
    t.eq(status, 200, "drain b1")
    drained_at = time.monotonic()
    status, _ = api(t, admin, "PUT", "/api/pools/app/backends/%s/weight" % b2.address,
                    {"weight": 3})
    t.eq(status, 200, "weight of b2")
    time.sleep(0.8)
    th.join(10)
    t.eq(len(slow), 1, "the slow request finished")
    t.eq(slow[0].status, 200, "status of the slow request across the drain")
    status, _ = api(t, admin, "DELETE", "/api/pools/app/backends/%s" % b1.address)
    t.eq(status, 200, "remove b1")
    removed_at = time.monotonic()
    time.sleep(0.5)
    load.finish()

    t.check(len(load.results) > 100, "only %d requests in the load" % len(load.results))
    bad = [r for r in load.results if r[1] != 200]
    t.eq(bad, [], "failed requests during the changes")
    t.check(any(r[2] == "b2" for r in load.results), "the added backend never served")
    late = [r for r in load.results if r[0] > drained_at + 0.2 and r[2] == "b1"]
    t.eq(late, [], "requests served by b1 after it was drained")
    t.note("%d requests through add, drain, weight and remove: none failed"
           % len(load.results))
    status, listing = api(t, admin, "GET", "/api/pools")
    backends = listing["pools"][0]["backends"]
    t.eq([(b["address"], b["weight"]) for b in backends], [(b2.address, 3)], "final backends")
    t.check(removed_at > 0, "removed")


@timeout(60)
def test_admin_token_and_errors(t):
    b1 = t.backend()
    admin = free_port()
    cfg = t.config([b1])
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin, "token": "s3cret-token"}
    t.ringlb(cfg)
    wait_port(admin, t.slow(5))
    t.eq(api(t, admin, "GET", "/api/pools")[0], 401, "no token")
    t.eq(api(t, admin, "GET", "/api/pools", token="wrong")[0], 401, "wrong token")
    t.eq(api(t, admin, "GET", "/api/pools", token="s3cret-token")[0], 200, "right token")
    tok = "s3cret-token"
    t.eq(api(t, admin, "GET", "/api/nothing", token=tok)[0], 404, "unknown path")
    t.eq(api(t, admin, "POST", "/api/pools/nope/backends", {"address": "127.0.0.1:1"},
             token=tok)[0], 404, "unknown pool")
    t.eq(api(t, admin, "POST", "/api/pools/app/backends", {"address": "localhost:80"},
             token=tok)[0], 400, "hostname refused")
    t.eq(api(t, admin, "POST", "/api/pools/app/backends", {"address": b1.address},
             token=tok)[0], 409, "duplicate backend")
    t.eq(api(t, admin, "DELETE", "/api/pools/app/backends/%s" % b1.address,
             token=tok)[0], 409, "removing the last backend")
    t.eq(api(t, admin, "PUT", "/api/pools/app/backends/%s/weight" % b1.address,
             {"weight": 0}, token=tok)[0], 400, "weight 0")


@timeout(30)
def test_admin_beyond_loopback_needs_a_token(t):
    path = t.write_file("open.yaml", "listeners: [127.0.0.1:1]\npools:\n  - name: a\n"
                        "    backends: [127.0.0.1:2]\nadmin:\n  address: 0.0.0.0:9\n")
    p = t.run_ringlb(["-t", "-c", path])
    t.eq(p.returncode, 1, "exit status")
    t.check("admin.token: required when admin.address is not a loopback address" in p.stderr,
            "message: %r" % p.stderr)


@timeout(30)
def test_admin_lists_check_results(t):
    b1 = t.backend("b1")
    dead = "127.0.0.1:%d" % free_port()
    admin = free_port()
    cfg = t.config([b1, dead])
    cfg["pools"][0]["health_check"] = {"interval": "100ms", "timeout": "80ms", "rise": 1,
                                       "fall": 1}
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin}
    t.ringlb(cfg)
    wait_port(admin, t.slow(5))
    time.sleep(t.slow(0.6))
    status, listing = api(t, admin, "GET", "/api/pools")
    t.eq(status, 200, "GET /api/pools")
    by_addr = {b["address"]: b for b in listing["pools"][0]["backends"]}
    t.eq((by_addr[b1.address]["state"], by_addr[b1.address]["last_check"]), ("up", 200),
         "the live backend")
    t.eq(by_addr[dead]["state"], "down", "the dead backend's state")
    t.eq(by_addr[dead]["last_check"], "Connection refused", "the dead backend's last check")
