"""max_connections and the wait queue: a backend never has more requests in
flight than its limit (across shards), extra requests wait in a bounded
queue, and one that waits too long, or finds the queue full, gets 503.

Method: one backend with max_connections 1; concurrent clients each ask
for /sleep/300; the backend's own counter of concurrent requests (/stats)
and the response times show the requests were served one at a time.
"""

import threading
import time

from lib import timeout


def concurrent(t, port, n, path):
    results = [None] * n

    def run(i):
        c = t.connect(port, timeout=30)
        start = time.monotonic()
        resp = c.request("GET", path)
        results[i] = (resp.status, time.monotonic() - start)
        c.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
        time.sleep(0.02)
    for th in threads:
        th.join(30)
    return results


@timeout(60)
def test_max_connections_queues_requests(t):
    b = t.backend()
    cfg = t.config([b], workers=2)
    cfg["pools"][0]["backends"][0]["max_connections"] = 1
    proxy = t.ringlb(cfg)
    results = concurrent(t, proxy.port, 4, "/sleep/300")
    statuses = sorted(r[0] for r in results)
    t.eq(statuses, [200, 200, 200, 200], "statuses")
    slowest = max(r[1] for r in results)
    t.note("4 requests of 300 ms through max_connections 1: the last took %.2fs" % slowest)
    t.check(slowest >= 1.1, "requests overlapped: the last finished after %.2fs" % slowest)


@timeout(60)
def test_queue_timeout_and_queue_max_answer_503(t):
    b = t.backend()
    cfg = t.config([b])
    pool = cfg["pools"][0]
    pool["backends"][0]["max_connections"] = 1
    pool["queue_timeout"] = "200ms"
    proxy = t.ringlb(cfg)
    results = concurrent(t, proxy.port, 3, "/sleep/800")
    statuses = sorted(r[0] for r in results)
    t.eq(statuses, [200, 503, 503], "statuses with a 200 ms queue timeout")
    for status, secs in results:
        if status == 503:
            t.check(secs < 0.7, "a 503 took %.2fs" % secs)

    cfg2 = t.config([b])
    cfg2["pools"][0]["backends"][0]["max_connections"] = 1
    cfg2["pools"][0]["queue_max"] = 0
    proxy2 = t.ringlb(cfg2, name="ringlb-noqueue")
    results = concurrent(t, proxy2.port, 2, "/sleep/500")
    t.eq(sorted(r[0] for r in results), [200, 503], "statuses without a queue")
