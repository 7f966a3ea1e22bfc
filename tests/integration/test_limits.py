"""Limits under pressure: the buffer groups running dry, the connection slab
full, and the fallback ring without DEFER_TASKRUN.

Method: shrink each limit in the config far below what the test demands and
check the documented behaviour — reads wait for buffers and every transfer
still completes intact; a full slab refuses new connections cleanly while the
admitted ones are served; the plain ring serves the same traffic.
"""

import socket
import threading
import time

from lib import PatternChecker, free_port, pattern_sha256, timeout


@timeout(120)
def test_buffer_starvation_concurrent_downloads(t):
    # 16 buffers per group, 24 clients each pulling 2 MiB at once: the
    # upstream group runs dry (ENOBUFS) again and again; starved receives
    # must resume as buffers come back and every body must arrive intact.
    b = t.backend()
    cfg = t.config([b], buffers={"count": 16, "size": "16KiB", "conn_bytes_max": "32KiB"})
    proxy = t.ringlb(cfg)
    n, size = 24, 2 << 20
    want = pattern_sha256(size)
    errors = []

    def fetch(i):
        try:
            c = t.connect(proxy.port, timeout=60)
            check = PatternChecker()
            c.send_request("GET", "/size/%d" % size)
            resp = c.read_response(sink=check)
            if resp.status != 200 or check.sha.hexdigest() != want:
                errors.append("client %d: status %d, %d bytes" % (i, resp.status, check.offset))
            c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("client %d: %r" % (i, e))

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(90)
    t.eq(errors, [], "failed downloads")


@timeout(60)
def test_conns_max_pauses_accepting(t):
    # limits.conns_max 4 with one worker: four idle clients fill the slab and
    # ringlb stops accepting. A fifth client waits in the listen backlog, is
    # not answered while the slab is full, and is served once a slot frees.
    b = t.backend()
    cfg = t.config([b], limits={"conns_max": 4}, timeouts={"client_header": "30s"},
                   log_level="debug")
    proxy = t.ringlb(cfg)
    held = [t.connect(proxy.port) for _ in range(4)]
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    extra.sendall(b"GET /waiting HTTP/1.1\r\nHost: x\r\n\r\n")
    extra.settimeout(1.0)
    try:
        got = extra.recv(100)
        t.fail("answered while the slab was full: %r" % got)
    except socket.timeout:
        pass
    for c in held[1:]:
        t.eq(c.request("GET", "/").status, 200, "status on an admitted connection")
    held[0].close()  # frees a slot: the waiting client is accepted now
    extra.settimeout(t.slow(5))
    data = b""
    while b"\r\n\r\n" not in data:
        piece = extra.recv(4096)
        if not piece:
            break
        data += piece
    t.check(data.startswith(b"HTTP/1.1 200"), "waiting client answered %r" % data[:60])
    extra.close()


@timeout(90)
def test_plain_ring_fallback(t):
    # RINGLB_RING_PLAIN=1 makes ringlb skip SINGLE_ISSUER|DEFER_TASKRUN, as a
    # kernel that refuses them would. The same traffic must pass.
    b1, b2 = t.backend(), t.backend()
    cfg = t.config([b1, b2], workers=2)
    proxy = t.ringlb(cfg, env={"RINGLB_RING_PLAIN": "1"})
    c = t.connect(proxy.port)
    for i in range(20):
        t.eq(c.request("GET", "/").status, 200, "status of request %d" % i)
    size = 8 << 20
    check = PatternChecker()
    c.send_request("GET", "/size/%d" % size)
    resp = c.read_response(sink=check)
    t.eq(resp.status, 200, "status of the 8 MiB download")
    t.eq(check.sha.hexdigest(), pattern_sha256(size), "sha256 of the 8 MiB download")
    body = b"y" * (3 << 20)
    resp = c.request("POST", "/upload", body=body)
    t.eq(resp.status, 200, "status of the 3 MiB upload")


@timeout(60)
def test_io_uring_refused_names_cause_and_fix(t):
    # A seccomp filter refuses io_uring_setup with EPERM, as container
    # runtimes' default profiles do: ringlb must exit at start-up (status 3)
    # naming the cause and the fix, not hang or crash.
    import os
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        t.skip("no C compiler to build the seccomp launcher")
    here = os.path.dirname(os.path.abspath(__file__))
    launcher = os.path.join(t.tmpdir, "no_io_uring")
    subprocess.run([cc, "-o", launcher, os.path.join(here, "no_io_uring.c")], check=True)
    p = subprocess.run([launcher, t.binary(), "--listen", "127.0.0.1:%d" % free_port(),
                        "--backend", "127.0.0.1:9"],
                       capture_output=True, timeout=t.slow(10), text=True)
    if p.returncode == 77:
        t.skip("seccomp filters are not available here")
    t.eq(p.returncode, 3, "exit status when io_uring is refused")
    t.check("seccomp" in p.stderr and "io_uring_setup" in p.stderr,
            "message names the cause and the fix: %r" % p.stderr)


@timeout(30)
def test_requests_per_conn(t):
    """limits.requests_per_conn 3: the third response on a connection says
    Connection: close and the connection then ends cleanly (no reset); a
    new connection is served again."""
    b = t.backend()
    proxy = t.ringlb(t.config([b], limits={"requests_per_conn": 3}))
    c = t.connect(proxy.port)
    for i in (1, 2, 3):
        resp = c.request("GET", "/size/10")
        t.eq(resp.status, 200, "request %d status" % i)
        want = ["close"] if i == 3 else []
        t.eq(resp.tokens("Connection"), want, "Connection field of response %d" % i)
    t.check(c.closed_within(t.slow(3)), "the connection closes after the third response")
    t.check(c.eof, "closed with a FIN (clean), not a reset")
    c2 = t.connect(proxy.port)
    t.eq(c2.request("GET", "/size/10").status, 200, "a new connection is served")
