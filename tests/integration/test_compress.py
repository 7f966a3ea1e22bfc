"""On-the-fly compression: what is compressed, how it is negotiated, and
that every coding decodes to the backend's exact bytes.

Goal: gzip, br and zstd responses decode with curl --compressed (HTTP/1.1,
HTTP/1.0 and HTTP/2) to the body the backend sent; Accept-Encoding q-values
and the server's preference order pick the coding; responses that must not
be compressed (other media types, small, already encoded, no-transform,
HEAD) pass untouched; the head is rewritten as RFC 9110 asks (Vary,
Content-Encoding, weak ETag, no Content-Length); compressed variants are
cached and served without going back to the backend; memory stays bounded
when a big body is compressed for a slow client; an exhausted encoder pool
sends responses uncompressed rather than failing them.

Method: the test backend's /cache/... resource (backend.py) shapes the
response from the query (type, size, chunked, enc, cc, etag); the
expected body is fetched from the backend directly and compared by sha256
with what curl decoded through ringlb. Headers are checked with curl -D
and with raw connections (lib.Conn).
"""

import gzip
import hashlib
import json
import time
import urllib.parse

from certs import Pki, tls_config
from lib import MiB, RssSampler, pattern_sha256, request, timeout

HTML = "type=text/html"


def zproxy(t, b, workers=2, cache=None, **compression):
    z = {"enabled": True}
    z.update(compression)
    cfg = t.config([b], workers=workers, compression=z)
    if cache is not None:
        cfg["routes"] = [{"pool": "app", "cache": cache}]
    return cfg, t.ringlb(cfg)


def direct(t, b, target):
    """The body the backend sends for `target`, fetched without ringlb."""
    resp = request(b.port, "GET", target, timeout=t.slow(10))
    t.eq(resp.status, 200, "backend status for %s" % target)
    return resp.body


def backend_count(b, target):
    resp = request(b.port, "GET", "/count?t=" + urllib.parse.quote(target, safe=""))
    return json.loads(resp.body)["n"]


def curl_get(t, port, target, *extra):
    """curl through ringlb: (decoded body, response head text)."""
    cp = t.curl("-D", "-", "-o", "body.out", *extra, "http://127.0.0.1:%d%s" % (port, target))
    t.eq(cp.returncode, 0, "curl exit status (%s)" % cp.stderr.decode())
    with open(t.tmpdir + "/body.out", "rb") as f:
        body = f.read()
    return body, cp.stdout.decode("latin-1")


def header(head, name):
    for line in head.split("\r\n"):
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


@timeout(60)
def test_each_coding_decodes_with_curl(t):
    """gzip, br and zstd (asked for one at a time) each decode with curl
    --compressed to the backend's exact body, for a Content-Length body
    and a chunked one, and the head says so."""
    b = t.backend()
    _, proxy = zproxy(t, b)
    for chunked in ("", "&chunked=1"):
        target = "/cache/page?%s&size=300000%s" % (HTML, chunked)
        want = hashlib.sha256(direct(t, b, target)).hexdigest()
        for coding in ("gzip", "br", "zstd"):
            body, head = curl_get(t, proxy.port, target, "--compressed", "-H",
                                  "Accept-Encoding: " + coding)
            t.eq(header(head, "Content-Encoding"), coding, "Content-Encoding%s" % chunked)
            t.eq(header(head, "Vary"), "Accept-Encoding", "Vary")
            t.eq(header(head, "Content-Length"), None, "Content-Length on a compressed body")
            t.eq(header(head, "Transfer-Encoding"), "chunked", "framing to HTTP/1.1")
            t.eq(hashlib.sha256(body).hexdigest(), want, "decoded %s body%s" % (coding, chunked))


@timeout(60)
def test_negotiation_q_values_and_preference(t):
    """The client's q-values rank the codings; ties go to the configured
    order; q=0 and '*' are honoured; nothing acceptable means identity."""
    b = t.backend()
    _, proxy = zproxy(t, b, encodings=["zstd", "br", "gzip"])
    target = "/cache/neg?%s&size=5000" % HTML
    cases = [
        ("gzip, br, zstd", "zstd"),  # ties: the configured order
        ("gzip;q=1.0, br;q=0.5, zstd;q=0.2", "gzip"),
        ("br;q=0.9, zstd;q=0", "br"),
        ("*;q=0.5, zstd;q=0", "br"),  # '*' covers br first in our order
        ("identity", None),
        ("deflate, compress", None),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
    ]
    for ae, want in cases:
        resp = request(proxy.port, "GET", target, headers=[("Accept-Encoding", ae)])
        t.eq(resp.status, 200, "status for %r" % ae)
        t.eq(resp.get("Content-Encoding"), want, "coding chosen for Accept-Encoding %r" % ae)
    resp = request(proxy.port, "GET", target)
    t.eq(resp.get("Content-Encoding"), None, "no Accept-Encoding: identity")
    t.eq(resp.get("Content-Length"), "5000", "identity keeps Content-Length")


@timeout(60)
def test_what_is_not_compressed(t):
    """Other media types, bodies under min_size, bodies already encoded,
    no-transform and HEAD go out exactly as the backend sent them."""
    b = t.backend()
    _, proxy = zproxy(t, b, min_size="1KiB", types=["text/html", "text/*"])
    ae = [("Accept-Encoding", "br, gzip")]
    cases = [
        ("/cache/png?type=image/png&size=5000", "image/png"),
        ("/cache/jpeg?type=image/jpeg&size=5000", "already compressed type"),
        ("/cache/small?%s&size=500" % HTML, "under min_size"),
        ("/cache/pre?%s&size=5000&enc=gzip" % HTML, "already encoded"),
        ("/cache/nt?%s&size=5000&cc=no-transform" % HTML, "no-transform"),
        ("/cache/json?type=application/json&size=5000", "type not configured"),
    ]
    for target, why in cases:
        want = direct(t, b, target)
        resp = request(proxy.port, "GET", target, headers=ae)
        t.eq(resp.status, 200, "status (%s)" % why)
        want_ce = "gzip" if "enc=gzip" in target else None
        t.eq(resp.get("Content-Encoding"), want_ce, "Content-Encoding (%s)" % why)
        t.eq(resp.body, want, "body untouched (%s)" % why)
        t.eq(resp.get("Content-Length"), str(len(want)), "Content-Length kept (%s)" % why)
    resp = request(proxy.port, "HEAD", "/cache/head?%s&size=5000" % HTML, headers=ae)
    t.eq(resp.get("Content-Encoding"), None, "HEAD is not compressed")
    t.eq(resp.get("Content-Length"), "5000", "HEAD keeps Content-Length")
    # a text/* wildcard in types
    resp = request(proxy.port, "GET", "/cache/css?type=text/css&size=5000", headers=ae)
    t.eq(resp.get("Content-Encoding"), "br", "text/* matches text/css")


@timeout(60)
def test_head_rewrite_and_http10(t):
    """A strong ETag becomes weak, an existing Vary gains Accept-Encoding,
    and an HTTP/1.0 client gets the compressed body until the connection
    closes (no chunked framing)."""
    b = t.backend()
    _, proxy = zproxy(t, b)
    target = "/cache/etag?%s&size=20000&etag=v7&vary=X-Lang" % HTML
    resp = request(proxy.port, "GET", target, headers=[("Accept-Encoding", "gzip")])
    t.eq(resp.get("ETag"), 'W/"v7"', "ETag made weak")
    t.check("accept-encoding" in resp.tokens("Vary") and "x-lang" in resp.tokens("Vary"),
            "Vary lists X-Lang and Accept-Encoding: %r" % resp.get_all("Vary"))
    want = hashlib.sha256(direct(t, b, target)).hexdigest()
    body, head = curl_get(t, proxy.port, target, "-0", "--compressed", "-H",
                          "Accept-Encoding: br")
    t.check(head.startswith("HTTP/1.0 200"), "HTTP/1.0 status line: %r" % head[:40])
    t.eq(header(head, "Transfer-Encoding"), None, "no chunked framing for HTTP/1.0")
    t.eq(header(head, "Content-Encoding"), "br", "coding for HTTP/1.0")
    t.eq(hashlib.sha256(body).hexdigest(), want, "HTTP/1.0 decoded body")


@timeout(60)
def test_http2_compressed(t):
    """Over HTTP/2 the compressed body goes out in DATA frames and decodes."""
    b = t.backend()
    pki = Pki(t)
    cfg = t.config([b], workers=2, compression={"enabled": True})
    cfg["listeners"][0]["tls"] = tls_config([pki.issue("a", ["a.test"])])
    proxy = t.ringlb(cfg)
    for coding in ("gzip", "br", "zstd"):
        target = "/cache/h2?%s&size=400000&chunked=1" % HTML
        want = hashlib.sha256(direct(t, b, target)).hexdigest()
        cp = t.curl("--http2", "--cacert", pki.ca_cert, "--resolve",
                    "a.test:%d:127.0.0.1" % proxy.port, "--compressed", "-H",
                    "Accept-Encoding: " + coding, "-D", "-", "-o", "h2.out",
                    "https://a.test:%d%s" % (proxy.port, target))
        t.eq(cp.returncode, 0, "curl over HTTP/2 (%s)" % cp.stderr.decode())
        head = cp.stdout.decode("latin-1")
        t.check(head.startswith("HTTP/2 200"), "HTTP/2 status: %r" % head[:30])
        t.eq(header(head, "content-encoding"), coding, "HTTP/2 Content-Encoding")
        with open(t.tmpdir + "/h2.out", "rb") as f:
            t.eq(hashlib.sha256(f.read()).hexdigest(), want, "HTTP/2 decoded %s body" % coding)


@timeout(60)
def test_compressed_variants_are_cached(t):
    """With a cache on the route each coding is fetched and compressed once;
    later requests for it are hits that carry the stored compressed body; a
    plain request is its own variant; a type never compressed is one entry
    for every coding."""
    b = t.backend()
    _, proxy = zproxy(t, b, cache={"memory": "16MiB"})
    target = "/cache/var?%s&size=50000&cc=max-age%%3D60&etag=e1" % HTML
    want = hashlib.sha256(direct(t, b, target)).hexdigest()
    base = backend_count(b, target)
    for coding in ("br", "gzip", "zstd", "identity"):
        for turn, label in ((1, "MISS"), (2, "HIT"), (3, "HIT")):
            body, head = curl_get(t, proxy.port, target, "--compressed", "-H",
                                  "Accept-Encoding: " + coding)
            t.eq(header(head, "X-Cache"), label, "%s request %d" % (coding, turn))
            want_ce = None if coding == "identity" else coding
            t.eq(header(head, "Content-Encoding"), want_ce, "%s coding" % coding)
            t.eq(hashlib.sha256(body).hexdigest(), want, "%s body, request %d" % (coding, turn))
    t.eq(backend_count(b, target) - base, 4, "backend requests: one per coding")
    # a client's If-None-Match with the weak ETag of the compressed variant
    # (the Host is part of the key: the one curl sent)
    host = ("Host", "127.0.0.1:%d" % proxy.port)
    resp = request(proxy.port, "GET", target,
                   headers=[host, ("Accept-Encoding", "br"), ("If-None-Match", 'W/"e1"')])
    t.eq(resp.status, 304, "conditional request on a compressed hit")
    img = "/cache/img?type=image/png&size=3000&cc=max-age%3D60"
    labels = [request(proxy.port, "GET", img, headers=[("Accept-Encoding", c)]).get("X-Cache")
              for c in ("br", "gzip", "identity")]
    t.eq(labels, ["MISS", "HIT", "HIT"], "an image is one variant for every coding")


@timeout(120)
def test_big_body_memory_bounded(t):
    """A 128 MiB (32 MiB sanitized) chunked text body gzipped for a client
    that stalls first: ringlb's RSS stays bounded and the body decodes
    intact. The test pattern repeats every 65521 bytes, beyond gzip's 32 KiB
    window, so the output is as big as the input and backpressure is what
    keeps memory bounded."""
    n = 32 * MiB if t.sanitized else 128 * MiB
    b = t.backend()
    cfg = t.config([b], workers=2, compression={"enabled": True},
                   buffers={"count": 256, "size": "16KiB", "conn_bytes_max": "256KiB"},
                   timeouts={"upstream_response": "60s"})
    proxy = t.ringlb(cfg)
    target = "/cache/big?%s&size=%d&chunked=1" % (HTML, n)
    c = t.connect(proxy.port, timeout=60)
    with RssSampler(proxy.pid) as rss:
        c.send_request("GET", target, headers=[("Accept-Encoding", "gzip")])
        time.sleep(1.0)  # a slow reader: the encoder must stop taking input
        resp = c.read_response()
    t.eq(resp.status, 200, "status")
    t.eq(resp.get("Content-Encoding"), "gzip", "coding")
    plain = gzip.decompress(resp.body)
    t.eq(len(plain), n, "decoded size")
    t.eq(hashlib.sha256(plain).hexdigest(), pattern_sha256(n), "decoded body")
    t.note("%d MiB compressed to %.1f MiB; ringlb max VmRSS %.1f MiB"
           % (n // MiB, len(resp.body) / MiB, rss.max_kib / 1024.0))
    if not t.sanitized:
        t.check(rss.max_kib * 1024 < 96 * MiB, "RSS %.1f MiB over 96 MiB" % (rss.max_kib / 1024))


@timeout(60)
def test_encoder_pool_exhausted_sends_plain(t):
    """With max_streams 1 per shard and one worker, a second response while
    the only encoder is busy goes out uncompressed, complete and correct."""
    b = t.backend()
    _, proxy = zproxy(t, b, workers=1, max_streams=1)
    first = t.connect(proxy.port, timeout=30)
    first.send_request("GET", "/cache/hold?%s&size=%d" % (HTML, 16 * MiB),
                       headers=[("Accept-Encoding", "gzip")])
    head = first.read_head()  # the encoder is now taken; we stop reading
    t.eq(head.get("Content-Encoding"), "gzip", "first response compressed")
    target = "/cache/second?%s&size=20000" % HTML
    resp = request(proxy.port, "GET", target, headers=[("Accept-Encoding", "gzip")])
    t.eq(resp.status, 200, "second status")
    t.eq(resp.get("Content-Encoding"), None, "second response sent plain")
    t.eq(resp.body, direct(t, b, target), "second body")
    first.close()
    time.sleep(0.3)
    resp = request(proxy.port, "GET", target, headers=[("Accept-Encoding", "gzip")])
    t.eq(resp.get("Content-Encoding"), "gzip", "the encoder is free again")
