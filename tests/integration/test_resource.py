"""The `resource` algorithm: backends report their own load through an
agent endpoint that ringlb polls, and the spare capacity they report scales
their weight in a weighted least-connections pick.

Method: two in-process backends answer GET /load with a body the test sets
("cpu=0.90 mem=0.20" means 10% spare capacity; "weight=100%" full). Slow
requests keep several in flight at once, so least-connections must weigh
them: the backend reporting more capacity must take the larger share, and
the shares must swap when the reports swap.
"""

import threading
import time

from lib import backend_mod, served_by, timeout


class AgentBackend(backend_mod.Backend):
    def __init__(self, t, name, report):
        super().__init__(name)
        self.address = "127.0.0.1:%d" % self.port
        self.report = report
        self.polls = 0
        t.on_cleanup(self.close)
        self.start()

    def handle(self, sock, reader, req):
        if req.path == "/load":
            with self.lock:
                self.polls += 1
            self.send_response(sock, req, 200, self.report.encode() + b"\n", False,
                               "text/plain")
            return False
        return super().handle(sock, reader, req)



def shares(t, port, n=60, conc=6):
    counts = {}
    lock = threading.Lock()

    def run(k):
        c = t.connect(port, timeout=20)
        for _ in range(k):
            resp = c.request("GET", "/sleep/40")
            with lock:
                counts[served_by(resp)] = counts.get(served_by(resp), 0) + 1
        c.close()

    threads = [threading.Thread(target=run, args=(n // conc,)) for _ in range(conc)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    return counts


@timeout(60)
def test_resource_follows_reported_capacity(t):
    busy = AgentBackend(t, "busy", "cpu=0.90 mem=0.20")
    idle = AgentBackend(t, "idle", "weight=100%")
    cfg = t.config([busy.address, idle.address])
    pool = cfg["pools"][0]
    pool["algorithm"] = "resource"
    pool["agent"] = {"path": "/load", "interval": "100ms", "timeout": "80ms"}
    proxy = t.ringlb(cfg)
    time.sleep(t.slow(0.4))
    t.check(busy.polls > 0 and idle.polls > 0, "agents were not polled")
    first = shares(t, proxy.port)
    t.note("shares with busy at 10%% capacity: %r" % first)
    t.check(first.get("idle", 0) > 2 * first.get("busy", 0),
            "the idle backend did not take most requests: %r" % first)
    busy.report, idle.report = "weight=100%", "cpu=95% mem=10%"
    time.sleep(t.slow(0.4))
    second = shares(t, proxy.port)
    t.note("shares after the reports swapped: %r" % second)
    t.check(second.get("busy", 0) > 2 * second.get("idle", 0),
            "shares did not follow the new reports: %r" % second)


@timeout(30)
def test_resource_needs_an_agent(t):
    path = t.write_file("bad.yaml", "listeners: [127.0.0.1:1]\npools:\n  - name: a\n"
                        "    algorithm: resource\n    backends: [127.0.0.1:2]\n")
    p = t.run_ringlb(["-t", "-c", path])
    t.eq(p.returncode, 1, "exit status")
    t.check("pools[0].algorithm: resource needs an agent section" in p.stderr,
            "error message: %r" % p.stderr)


@timeout(30)
def test_unreachable_agent_does_not_mark_backends_down(t):
    # The agent path sleeps past the poll timeout: polls fail, but a load
    # agent says nothing about health, so the backends stay in service.
    b1, b2 = t.backend("b1"), t.backend("b2")
    cfg = t.config([b1, b2])
    pool = cfg["pools"][0]
    pool["algorithm"] = "resource"
    pool["agent"] = {"path": "/sleep/300", "interval": "150ms", "timeout": "50ms"}
    proxy = t.ringlb(cfg)
    time.sleep(t.slow(1.0))
    t.check("is down" not in proxy.proc.stderr_text(), "an agent timeout marked a backend down")
    seen = set()
    c = t.connect(proxy.port)
    for _ in range(20):
        resp = c.request("GET", "/")
        t.eq(resp.status, 200, "status")
        seen.add(served_by(resp))
    t.eq(seen, {"b1", "b2"}, "backends serving with silent agents")
