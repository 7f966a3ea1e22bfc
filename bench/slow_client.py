#!/usr/bin/env python3
"""bench/slow_client.py — the legitimate client of bench/slow.sh.

While slowhttptest holds a thousand slow connections open against a proxy,
this client makes ordinary requests at a steady pace, each on a new
connection (so it also needs the proxy to keep accepting), and reports how
many were served and how long they took.

    python3 bench/slow_client.py PORT SECONDS [INTERVAL_MS]

Prints one line of JSON: requests, served (a complete 200 response within
the 5 s allowance), served_pct, p50_ms, p99_ms, max_ms.
"""

import json
import socket
import sys
import time


def one(port):
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return False, (time.monotonic() - t0) * 1000
    ms = (time.monotonic() - t0) * 1000
    return data.startswith(b"HTTP/1.1 200") and ms < 5000, ms


def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    interval = (float(sys.argv[3]) if len(sys.argv) > 3 else 50.0) / 1000
    end = time.monotonic() + seconds
    lat, served, total = [], 0, 0
    nxt = time.monotonic()
    while time.monotonic() < end:
        ok, ms = one(port)
        total += 1
        served += ok
        lat.append(ms if ok else 5000.0)  # a failure counts as the worst latency
        nxt += interval
        pause = nxt - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(len(lat) * p))], 1) if lat else None

    print(json.dumps({"requests": total, "served": served,
                      "served_pct": round(100.0 * served / total, 2) if total else 0,
                      "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                      "max_ms": round(lat[-1], 1) if lat else None}))


if __name__ == "__main__":
    main()
