"""SIGHUP reload: a new snapshot is published through RCU while traffic
flows, and a file that does not load is refused with the running
configuration kept.

Method: start with one pool on backend b1, keep a client connection open,
rewrite the file to point the pool at b2 and send SIGHUP; new requests must
reach b2 (even on the kept-alive client connection, since routing reads the
current snapshot per request), and none may fail. Then write a broken file,
SIGHUP again: ringlb logs the refusal and still serves b2.
"""

import os
import re
import signal
import time

from lib import timeout, to_yaml


def backend_of(resp):
    m = re.match(rb"backend (\S+) ", resp.body)
    return m.group(1).decode() if m else None


def wait_for(t, pred, what, secs=5.0):
    deadline = time.monotonic() + t.slow(secs)
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    t.fail("timed out waiting for " + what)


@timeout(60)
def test_sighup_reload_switches_backends(t):
    b1, b2 = t.backend("b1"), t.backend("b2")
    cfg = t.config([b1])
    proxy = t.ringlb(cfg)
    c = t.connect(proxy.port)
    t.eq(backend_of(c.request("GET", "/")), "b1", "backend before the reload")

    cfg["pools"][0]["backends"] = [{"address": b2.address}]
    with open(proxy.config_path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for(t, lambda: "configuration reloaded" in proxy.proc.stderr_text(), "the reload")
    for i in range(10):
        resp = c.request("GET", "/")
        t.eq(resp.status, 200, "status after the reload (request %d)" % i)
        t.eq(backend_of(resp), "b2", "backend after the reload (request %d)" % i)

    with open(proxy.config_path, "w") as f:
        f.write("pools:\n  - name: app\n    backends: [not-an-address]\n")
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for(t, lambda: "reload refused" in proxy.proc.stderr_text(), "the refusal")
    t.check(os.path.basename(proxy.config_path) in proxy.proc.stderr_text(),
            "the refusal names the file")
    resp = c.request("GET", "/")
    t.eq(resp.status, 200, "status after a refused reload")
    t.eq(backend_of(resp), "b2", "backend after a refused reload")
