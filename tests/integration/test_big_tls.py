"""Large bodies through TLS and HTTP/2 (256 MiB; 16 MiB with --sanitized):
both directions, checked by sha256, while ringlb's resident memory is
sampled. As in test_big.py, buffers are small (256 x 16 KiB per group, 256
TLS buffers, 256 KiB per connection direction) so RSS must stay far below
the body size: it may grow by at most 32 MiB over what ringlb used before the
transfer (BoringSSL's and nghttp2's own pages included). curl is the client,
in its own process.
"""

import hashlib
import json
import subprocess
import time

from certs import Pki, tls_config
from lib import MiB, RssSampler, pattern_sha256, read_rss_kib, timeout

GROWTH_BOUND = 32 * MiB


def big_tls_proxy(t):
    pki = Pki(t)
    b = t.backend()
    cfg = t.config([b], workers=2,
                   buffers={"count": 256, "size": "16KiB", "conn_bytes_max": "256KiB",
                            "tls_count": 256},
                   timeouts={"client_body": "60s", "upstream_response": "60s"})
    cfg["listeners"][0]["tls"] = tls_config([pki.issue("a", ["a.test"])])
    return pki, t.ringlb(cfg)


def check_rss(t, rss, base_kib, what, n, secs):
    grew = (rss.max_kib - base_kib) * 1024
    t.note("%s: %d MiB in %.1fs; ringlb VmRSS %.1f MiB before, %.1f MiB at most "
           "(growth bound %d MiB)" % (what, n // MiB, secs, base_kib / 1024.0,
                                       rss.max_kib / 1024.0, GROWTH_BOUND // MiB))
    t.check(rss.samples > 0, "no RSS samples")
    if not t.sanitized:
        t.check(grew < GROWTH_BOUND, "%s: VmRSS grew by %.1f MiB" % (what, grew / MiB))


def curl_sha(t, pki, port, args, stdin=None):
    argv = ["curl", "-sS", "--max-time", str(int(t.slow(120))), "--cacert", pki.ca_cert,
            "--resolve", "a.test:%d:127.0.0.1" % port] + args
    p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=t.tmpdir)
    h = hashlib.sha256()
    total = 0
    while True:
        piece = p.stdout.read(1 << 20)
        if not piece:
            break
        h.update(piece)
        total += len(piece)
    err = p.stderr.read()
    t.eq(p.wait(t.slow(120)), 0, "curl exit status (%r)" % err[-300:])
    return h.hexdigest(), total


@timeout(240)
def test_big_https_and_h2_downloads(t):
    n = (16 if t.sanitized else 256) * MiB
    pki, proxy = big_tls_proxy(t)
    want = pattern_sha256(n)
    curl_sha(t, pki, proxy.port, ["https://a.test:%d/size/10" % proxy.port])  # warm up
    for what, flag in (("HTTPS download", "--http1.1"), ("HTTP/2 download", "--http2")):
        base = read_rss_kib(proxy.pid)
        with RssSampler(proxy.pid) as rss:
            start = time.monotonic()
            got, total = curl_sha(t, pki, proxy.port,
                                  [flag, "https://a.test:%d/size/%d" % (proxy.port, n)])
            secs = time.monotonic() - start
        t.eq((total, got), (n, want), "%s: size and sha256" % what)
        check_rss(t, rss, base, what, n, secs)


@timeout(240)
def test_big_https_and_h2_uploads(t):
    n = (16 if t.sanitized else 256) * MiB
    pki, proxy = big_tls_proxy(t)
    want = hashlib.sha256(b"\0" * n).hexdigest()
    curl_sha(t, pki, proxy.port, ["https://a.test:%d/size/10" % proxy.port])  # warm up
    for what, flag in (("HTTPS upload", "--http1.1"), ("HTTP/2 upload", "--http2")):
        zeros = subprocess.Popen(["head", "-c", str(n), "/dev/zero"], stdout=subprocess.PIPE)
        base = read_rss_kib(proxy.pid)
        with RssSampler(proxy.pid) as rss:
            start = time.monotonic()
            p = subprocess.run(["curl", "-sS", "--max-time", str(int(t.slow(120))), flag,
                                "--cacert", pki.ca_cert, "--resolve",
                                "a.test:%d:127.0.0.1" % proxy.port, "-T", "-",
                                "https://a.test:%d/upload" % proxy.port],
                               stdin=zeros.stdout, capture_output=True, cwd=t.tmpdir,
                               timeout=t.slow(150))
            secs = time.monotonic() - start
        zeros.stdout.close()
        zeros.wait(10)
        t.eq(p.returncode, 0, "%s: curl (%r)" % (what, p.stderr[-300:]))
        doc = json.loads(p.stdout)
        t.eq((doc["bytes"], doc["sha256"]), (n, want), "%s: size and sha256" % what)
        check_rss(t, rss, base, what, n, secs)
