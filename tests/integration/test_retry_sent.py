"""Retrying a request that reached a backend which then failed: an
idempotent request the client has seen no response byte of goes to another
backend; a non-idempotent one is answered 502, never replayed.

Method: one backend that reads each request and closes the connection
without answering (as a crashing server does), one healthy backend; round
robin alternates between them, so half the first tries hit the bad one.
"""

from lib import backend_mod, timeout


class DropBackend(backend_mod.Backend):
    """Reads a request, then closes the connection without a byte."""

    def __init__(self, t, name):
        super().__init__(name)
        self.address = "127.0.0.1:%d" % self.port
        self.dropped = 0
        t.on_cleanup(self.close)
        self.start()

    def handle(self, sock, reader, req):
        with self.lock:
            self.dropped += 1
        return False  # close without answering


@timeout(60)
def test_idempotent_retried_on_another_backend_post_not(t):
    bad = DropBackend(t, "bad")
    good = t.backend("good")
    cfg = t.config([bad.address, good])
    cfg["pools"][0]["retries"] = 1
    proxy = t.ringlb(cfg)
    c = t.connect(proxy.port)
    for i in range(10):
        resp = c.request("GET", "/")
        t.eq(resp.status, 200, "GET %d" % i)
    t.check(bad.dropped >= 4, "the bad backend saw only %d requests" % bad.dropped)
    statuses = []
    for i in range(6):
        c = t.connect(proxy.port)
        statuses.append(c.request("POST", "/upload").status)
        c.close()
    t.check(502 in statuses, "no POST reached the bad backend: %r" % statuses)
    t.check(set(statuses) <= {200, 502}, "POST statuses: %r" % statuses)
