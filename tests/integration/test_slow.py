"""Slow clients: slowloris and slow POST while a legitimate client is served.

Goal: hundreds of connections that send their request head or body as
slowly as they dare do not stop ringlb from serving an ordinary client
(at least 99% of its requests, p99 under 200 ms), and ringlb's deadlines
(`timeouts.client_header`, `limits.body_min_rate`) cut the slow connections
instead of letting them pile up.

Method: slowhttptest (bounded: 300 connections at 100/s, a follow-up every
2 s, 12 s) against ringlb with 2 shards, `client_header: 4s` and
`body_min_rate: 1KiB` over 2 s windows, while this test makes one request
every 40 ms on a new connection; the admin API counts the slow bodies cut.
The full 1,000-connection, 60-second comparison with nginx and HAProxy is
`bench/slow.sh` (figures in bench/RESULTS.md).
"""

import json
import shutil
import socket
import subprocess
import time

from lib import free_port, request, timeout, wait_port


def legit_client(t, port, seconds, interval=0.04):
    """(requests, served, p99 ms) of one request per interval, each on a new
    connection; a failure counts as 5 s."""
    lat, served, total = [], 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        ok = False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.settimeout(5)
                s.sendall(b"GET /size/100 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                ok = data.startswith(b"HTTP/1.1 200")
        except OSError:
            pass
        ms = (time.monotonic() - t0) * 1000
        total += 1
        served += ok
        lat.append(ms if ok else 5000.0)
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))
    lat.sort()
    return total, served, lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def attack(t, mode):
    tool = shutil.which("slowhttptest")
    if not tool:
        t.skip("slowhttptest not installed (sh scripts/deps.sh)")
    if t.sanitized:
        t.skip("latency bounds are not meaningful under ASan")
    b = t.backend()
    admin = free_port()
    cfg = t.config([b], workers=2, admin={"address": "127.0.0.1:%d" % admin},
                   limits={"body_min_rate": "1KiB", "body_rate_window": "2s"})
    cfg["timeouts"]["client_header"] = "4s"
    proxy = t.ringlb(cfg)
    wait_port(admin, t.slow(5))
    args = [tool, "-c", "300", "-r", "100", "-i", "2", "-x", "24", "-p", "3", "-l", "12",
            "-u", "http://127.0.0.1:%d/" % proxy.port]
    args += ["-H", "-t", "GET"] if mode == "slowloris" else ["-B", "-t", "POST", "-s", "65536"]
    slow = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    t.on_cleanup(lambda: (slow.poll() is None and slow.kill(), slow.wait()))
    time.sleep(3)  # the attack reaches its connection count
    total, served, p99 = legit_client(t, proxy.port, 8)
    slow.wait(timeout=30)
    conns = json.loads(request(admin, "GET", "/api/protection").body)["connections"]
    t.note("%s, 300 connections: %d/%d served, p99 %.1f ms, body_too_slow %d"
           % (mode, served, total, p99, conns["body_too_slow"]))
    t.check(total >= 100, "the client ran (%d requests)" % total)
    t.check(served >= 0.99 * total, "served %d of %d" % (served, total))
    t.check(p99 < 200, "p99 %.1f ms" % p99)
    return conns


@timeout(60)
def test_slowloris(t):
    """Slow heads: the legitimate client is served."""
    attack(t, "slowloris")


@timeout(60)
def test_slow_post(t):
    """Slow bodies: the legitimate client is served and body_min_rate cuts
    the attackers."""
    conns = attack(t, "slowbody")
    t.check(conns["body_too_slow"] >= 100, "slow bodies cut: %d" % conns["body_too_slow"])
