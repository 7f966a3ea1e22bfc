"""The HTTP cache on routes (RFC 9111 shared-cache rules).

Goal: a cacheable response is fetched once and then served from memory,
byte-exact, with the right X-Cache label and Age; every storability rule
holds; variants and key_headers keep entries apart; stale entries are
revalidated with the stored validators, or served stale within
stale-while-revalidate and stale-if-error windows; concurrent misses for one
key cause one backend request, on any shard; purges, max_object and the
memory budget do what the admin API and the config say.

Method: ringlb with 2 workers (client connections spread over both shards)
in front of the test backend's /cache/... resources, whose query shapes the
response (Cache-Control, validators, Vary, Set-Cookie, size, chunked, delay)
and which counts the requests that reach it per exact target
(/count?t=TARGET, asked directly, not through ringlb). Every request goes on
a fresh client connection unless a test checks keep-alive or framing, so
consecutive requests usually land on different shards. Staleness comes from
max-age of 1 or 2 seconds and a sleep just past it (freshness is counted in
whole seconds); a backend is killed for the connection-refused errors of
stale-if-error, and a small stand-in origin bound to the killed backend's
port answers 500s or a changed 200. Concurrency uses threads released
together by a barrier, each on its own connection, with bounded waits.
Counters come from GET /api/cache. One test repeats hits over TLS with
HTTP/1.1 and HTTP/2 (curl).
"""

import hashlib
import json
import socket
import threading
import time
import urllib.parse

from lib import Conn, PatternChecker, backend_mod, free_port, pattern_sha256, request, wait_port

CC60 = "max-age=60"


# -- helpers ------------------------------------------------------------------


def target(name, **q):
    """A /cache/NAME target with the query values %-encoded, in the order given."""
    parts = ["%s=%s" % (k, urllib.parse.quote(str(v), safe="")) for k, v in q.items()]
    return "/cache/%s%s" % (name, "?" + "&".join(parts) if parts else "")


def start(t, routes=None, cache="on", admin=False, workers=2):
    """One backend, ringlb with `workers` shards and the given routes (default:
    every path cached with `cache`). Returns (proxy, backend, admin port)."""
    b = t.backend()
    cfg = t.config([b], workers=workers)
    cfg["routes"] = routes or [{"path": "/", "pool": "app", "cache": cache}]
    admin_port = None
    if admin:
        admin_port = free_port()
        cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
    proxy = t.ringlb(cfg)
    if admin:
        wait_port(admin_port, t.slow(5))
    return proxy, b, admin_port


def get(t, proxy, tgt, headers=(), method="GET"):
    """One request on a fresh client connection."""
    return request(proxy.port, method, tgt, headers, timeout=t.slow(10))


def count(b, tgt):
    """(requests that reached the backend for `tgt`, the last one's fields)."""
    resp = request(b.port, "GET", "/count?t=" + urllib.parse.quote(tgt, safe=""), timeout=5)
    doc = json.loads(resp.body)
    return doc["n"], doc["last"]


def label(resp, name="X-Cache"):
    return resp.get(name)


def expect(t, resp, status, xcache, what):
    """Checks status and X-Cache of one response."""
    t.check((resp.status, label(resp)) == (status, xcache),
            "%s: expected %d with X-Cache %s, got %d with X-Cache %r (%r)"
            % (what, status, xcache, resp.status, label(resp), resp))


def expect_count(t, b, tgt, n, what):
    got = count(b, tgt)[0]
    t.check(got == n, "%s: expected %d backend request(s) for %s, got %d" % (what, n, tgt, got))


def api(t, port, method, path, body=None, raw=None):
    """An admin API call; returns (status, parsed JSON or None)."""
    c = Conn(port, t.slow(5))
    try:
        payload = raw if raw is not None else (json.dumps(body).encode()
                                               if body is not None else None)
        resp = c.request(method, path, headers=[("Content-Type", "application/json")],
                         body=payload)
    finally:
        c.close()
    try:
        doc = json.loads(resp.body) if resp.body else None
    except ValueError:
        doc = None
    return resp.status, doc


def zone_stats(t, admin, path="/"):
    status, doc = api(t, admin, "GET", "/api/cache")
    t.check(status == 200, "GET /api/cache: expected 200, got %d" % status)
    zones = [z for z in doc["zones"] if z["path"] == path]
    t.check(len(zones) == 1, "GET /api/cache: expected one zone for path %r, got %r"
            % (path, doc))
    return zones[0]


def stored(t, proxy, b, tgt, headers=(), first=None):
    """Two requests for `tgt`: True if the second was served from the cache
    (HIT, backend count 1), False if both reached the backend (MISS, MISS,
    count 2); anything else fails. `first`: headers for the first request."""
    r1 = get(t, proxy, tgt, first if first is not None else headers)
    t.check(label(r1) == "MISS", "%s: first request: expected X-Cache MISS, got %r (%r)"
            % (tgt, label(r1), r1))
    r2 = get(t, proxy, tgt, headers)
    n = count(b, tgt)[0]
    if label(r2) == "HIT" and n == 1:
        t.check(r2.status == r1.status and r2.body == r1.body,
                "%s: the hit differs from the miss: %d %r vs %d %r"
                % (tgt, r2.status, r2.body[:80], r1.status, r1.body[:80]))
        return True
    t.check(label(r2) == "MISS" and n == 2,
            "%s: second request: expected HIT with 1 backend request or MISS with 2, "
            "got %r with %d" % (tgt, label(r2), n))
    return False


def concurrent(t, n, fn):
    """Runs fn(i) on n threads released together; returns (results in order,
    seconds from the release to the last result). Exceptions count as
    results."""
    results = [None] * n
    barrier = threading.Barrier(n + 1)

    def run(i):
        try:
            barrier.wait(t.slow(10))
            results[i] = fn(i)
        except Exception as e:  # noqa: B902 - reported by the caller
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
    barrier.wait(t.slow(10))
    t0 = time.monotonic()
    for th in threads:
        th.join(t.slow(15))
    t.check(not any(th.is_alive() for th in threads), "some of %d request threads did not "
            "finish within %.0fs" % (n, t.slow(15)))
    return results, time.monotonic() - t0


# -- tests ----------------------------------------------------------------------


def test_cache_miss_then_hit_and_head(t):
    """A storable GET is a MISS, then a HIT with Age and the same body, with
    one backend request; a HEAD after it is a HIT with the GET's
    Content-Length and no body (the connection stays in step)."""
    proxy, b, _ = start(t)
    tgt = target("a", cc=CC60)
    r1 = get(t, proxy, tgt)
    expect(t, r1, 200, "MISS", "first GET")
    t.check(r1.body.startswith(b"count 1 of "), "first body: expected 'count 1 of ...', got %r"
            % r1.body)
    r2 = get(t, proxy, tgt)
    expect(t, r2, 200, "HIT", "second GET")
    t.check(r2.body == r1.body, "hit body: expected %r, got %r" % (r1.body, r2.body))
    age = r2.get("age")
    t.check(age is not None and age.isdigit() and int(age) <= 2,
            "hit Age: expected a small integer, got %r" % age)
    t.check(r2.get("content-length") == str(len(r1.body)),
            "hit Content-Length: expected %d, got %r" % (len(r1.body), r2.get("content-length")))
    expect_count(t, b, tgt, 1, "after a miss and a hit")

    c = t.connect(proxy.port)
    h = c.request("HEAD", tgt)
    expect(t, h, 200, "HIT", "HEAD after GET")
    t.check(h.get("content-length") == str(len(r1.body)),
            "HEAD Content-Length: expected %d, got %r" % (len(r1.body), h.get("content-length")))
    t.check(h.body == b"", "HEAD body: expected none, got %r" % h.body)
    r3 = c.request("GET", tgt)  # a stray body after the HEAD would show up here
    expect(t, r3, 200, "HIT", "GET after HEAD on the same connection")
    t.check(r3.body == r1.body, "GET after HEAD: expected %r, got %r" % (r1.body, r3.body))
    expect_count(t, b, tgt, 1, "after HEAD and GET hits")

    # A HEAD miss is forwarded and not stored.
    ht = target("head-miss", cc=CC60)
    h = c.request("HEAD", ht)
    expect(t, h, 200, "MISS", "HEAD miss")
    g = c.request("GET", ht)
    expect(t, g, 200, "MISS", "GET after a HEAD miss (nothing stored by the HEAD)")
    expect_count(t, b, ht, 2, "HEAD miss then GET")


def test_cache_storability_rules(t):
    """Each RFC 9111 storability rule: no-store, private, no freshness,
    Set-Cookie (stored only with store_set_cookie), Authorization (stored only
    with public, s-maxage or must-revalidate), request no-store, Vary: *,
    206 not stored; a 404 with max-age is stored; Last-Modified alone is
    stored only with heuristic: on."""
    routes = [
        {"path": "/cache/sc/", "pool": "app", "cache": {"store_set_cookie": True}},
        {"path": "/cache/heur/", "pool": "app", "cache": {"heuristic": True}},
        {"path": "/", "pool": "app", "cache": "on"},
    ]
    proxy, b, _ = start(t, routes=routes)
    auth = [("Authorization", "Basic dXNlcjpwYXNz")]
    cases = [
        # (what, target, request fields, stored?)
        ("max-age (control)", target("ok", cc=CC60), (), True),
        ("response no-store", target("ns", cc="no-store, max-age=60"), (), False),
        ("private", target("priv", cc="private, max-age=60"), (), False),
        ("no freshness information", target("nofresh"), (), False),
        ("Set-Cookie by default", target("cookie", cc=CC60, cookie=1), (), False),
        ("Set-Cookie with store_set_cookie", target("sc/cookie", cc=CC60, cookie=1), (), True),
        ("Authorization, max-age only", target("auth", cc=CC60), auth, False),
        ("Authorization, public", target("auth-pub", cc="public, max-age=60"), auth, True),
        ("Authorization, s-maxage", target("auth-smax", cc="s-maxage=60"), auth, True),
        ("Authorization, must-revalidate", target("auth-mr", cc="must-revalidate, max-age=60"),
         auth, True),
        ("Vary: *", target("vstar", cc=CC60, vary="*"), (), False),
        ("206 with max-age", target("partial", cc=CC60, status=206), (), False),
        ("404 with max-age", target("missing", cc=CC60, status=404), (), True),
        ("Last-Modified only, heuristic off", target("lm", lm=36000), (), False),
        ("Last-Modified only, heuristic on", target("heur/lm", lm=36000), (), True),
        ("Expires only", target("exp", expires=60), (), True),
    ]
    wrong = []
    for what, tgt, headers, want in cases:
        got = stored(t, proxy, b, tgt, headers)
        if got != want:
            wrong.append("%s: expected %s, got %s" % (what, "stored" if want else "not stored",
                                                      "stored" if got else "not stored"))
    # Request no-store: that response is not stored (the next request misses).
    tgt = target("req-ns", cc=CC60)
    got = stored(t, proxy, b, tgt, (), first=[("Cache-Control", "no-store")])
    if got:
        wrong.append("request Cache-Control: no-store: expected not stored, got stored")
    r = get(t, proxy, target("missing", cc=CC60, status=404))
    t.check(r.status == 404 and r.body.startswith(b"count 1 "),
            "stored 404: expected the first 404 again, got %d %r" % (r.status, r.body))
    r = get(t, proxy, target("sc/cookie", cc=CC60, cookie=1))
    t.check(r.get("set-cookie") == "session=1; Path=/",
            "stored Set-Cookie: expected the stored 'session=1; Path=/', got %r"
            % r.get("set-cookie"))
    t.check(not wrong, "storability rules broken:\n  " + "\n  ".join(wrong))


def test_cache_request_directives_do_not_poison_the_key(t):
    """A request that alone makes its response unstorable (its own
    Cache-Control: no-store, or Authorization with a response that is not
    public) says nothing about the resource: the next ordinary request for
    the same key is stored, and the one after it is a HIT."""
    proxy, b, _ = start(t)
    problems = []
    for i, (what, first) in enumerate((
            ("request no-store", [("Cache-Control", "no-store")]),
            ("request Authorization", [("Authorization", "Basic dXNlcjpwYXNz")]))):
        tgt = target("poison%d" % i, cc=CC60)
        r1 = get(t, proxy, tgt, first)
        expect(t, r1, 200, "MISS", what + ", first request")
        r2 = get(t, proxy, tgt)
        expect(t, r2, 200, "MISS", what + ", then an ordinary request")
        r3 = get(t, proxy, tgt)
        n = count(b, tgt)[0]
        if (label(r3), n) != ("HIT", 2):
            problems.append("%s, then two ordinary requests: expected the second to be a HIT "
                            "with 2 backend requests, got X-Cache %r with %d"
                            % (what, label(r3), n))
    t.check(not problems, "\n  ".join(problems))


def test_cache_vary_keeps_variants(t):
    """Vary: X-Lang: each X-Lang value is its own variant, fetched once and
    then a HIT for requests with that value; the variants coexist."""
    proxy, b, _ = start(t)
    tgt = target("v", cc=CC60, vary="X-Lang", echo="X-Lang")
    for i, lang in enumerate(("en", "fr")):
        r = get(t, proxy, tgt, [("X-Lang", lang)])
        expect(t, r, 200, "MISS", "first request with X-Lang %s" % lang)
        t.check(r.get("x-echo") == lang, "X-Echo: expected %r, got %r" % (lang, r.get("x-echo")))
        expect_count(t, b, tgt, i + 1, "after the first %s request" % lang)
    for _ in range(2):
        for lang in ("en", "fr"):
            r = get(t, proxy, tgt, [("X-Lang", lang)])
            expect(t, r, 200, "HIT", "later request with X-Lang %s" % lang)
            t.check(r.get("x-echo") == lang,
                    "variant for X-Lang %s: expected X-Echo %r, got %r"
                    % (lang, lang, r.get("x-echo")))
    expect_count(t, b, tgt, 2, "two variants, each fetched once")


def test_cache_key_headers(t):
    """key_headers: [X-Tenant]: each tenant (and no tenant) is its own entry."""
    routes = [{"path": "/", "pool": "app", "cache": {"key_headers": ["X-Tenant"]}}]
    proxy, b, _ = start(t, routes=routes)
    tgt = target("k", cc=CC60, echo="X-Tenant")
    tenants = [[("X-Tenant", "a")], [("X-Tenant", "b")], []]
    for i, h in enumerate(tenants):
        r = get(t, proxy, tgt, h)
        expect(t, r, 200, "MISS", "first request for tenant %r" % (h,))
        expect_count(t, b, tgt, i + 1, "after the first request for tenant %r" % (h,))
    for h in tenants:
        r = get(t, proxy, tgt, h)
        expect(t, r, 200, "HIT", "second request for tenant %r" % (h,))
        want = h[0][1] if h else "-"
        t.check(r.get("x-echo") == want, "entry for tenant %r: expected X-Echo %r, got %r"
                % (h, want, r.get("x-echo")))
    expect_count(t, b, tgt, 3, "three tenants")


def test_cache_revalidation_etag_and_last_modified(t):
    """A stale entry with an ETag is revalidated with If-None-Match, one with
    only Last-Modified with If-Modified-Since; the backend's 304 refreshes it
    (REVALIDATED, the stored body, backend count 2) and the next request is a
    HIT."""
    proxy, b, _ = start(t)
    et = target("e", cc="max-age=2", etag="v1")
    lm = target("l", cc="max-age=2", lm=3600)
    first = {}
    for tgt in (et, lm):
        r = get(t, proxy, tgt)
        expect(t, r, 200, "MISS", "first request for %s" % tgt)
        first[tgt] = r
    time.sleep(2.1)  # max-age=2: stale now
    r = get(t, proxy, et)
    expect(t, r, 200, "REVALIDATED", "stale ETag entry")
    t.check(r.body == first[et].body, "revalidated body: expected the stored %r, got %r"
            % (first[et].body, r.body))
    n, last = count(b, et)
    t.check(n == 2, "ETag revalidation: expected 2 backend requests, got %d" % n)
    t.check(last.get("if-none-match") == '"v1"',
            "revalidation request: expected If-None-Match \"v1\", got fields %r" % last)
    r = get(t, proxy, lm)
    expect(t, r, 200, "REVALIDATED", "stale Last-Modified entry")
    t.check(r.body == first[lm].body, "revalidated body: expected the stored %r, got %r"
            % (first[lm].body, r.body))
    n, last = count(b, lm)
    t.check(n == 2, "Last-Modified revalidation: expected 2 backend requests, got %d" % n)
    want = first[lm].get("last-modified")
    t.check(last.get("if-modified-since") == want,
            "revalidation request: expected If-Modified-Since %r, got fields %r" % (want, last))
    t.check("if-none-match" not in last, "If-None-Match sent without an ETag: %r" % last)
    for tgt in (et, lm):
        r = get(t, proxy, tgt)
        expect(t, r, 200, "HIT", "request after the revalidation of %s" % tgt)
        t.check(r.body == first[tgt].body, "body after revalidation: expected %r, got %r"
                % (first[tgt].body, r.body))
        expect_count(t, b, tgt, 2, "after the hit that followed the revalidation")


def test_cache_client_conditionals_on_hit(t):
    """A client's If-None-Match matching the stored ETag gets 304 from the
    cache (X-Cache HIT, no body, the ETag kept); a non-matching one gets the
    200. If-Modified-Since at or after the stored Last-Modified gets 304,
    before it 200. None of these reach the backend."""
    proxy, b, _ = start(t)
    et = target("ce", cc=CC60, etag="v1")
    lm = target("cl", cc=CC60, lm=3600)
    body = get(t, proxy, et).body
    lm_resp = get(t, proxy, lm)
    last_mod = lm_resp.get("last-modified")
    t.check(last_mod is not None, "no Last-Modified from the backend: %r" % lm_resp)
    c = t.connect(proxy.port)
    r = c.request("GET", et, [("If-None-Match", '"v1"')])
    expect(t, r, 304, "HIT", "If-None-Match matching the stored ETag")
    t.check(r.body == b"", "304 body: expected none, got %r" % r.body)
    t.check(r.get("etag") == '"v1"', "304 ETag: expected '\"v1\"', got %r" % r.get("etag"))
    r = c.request("GET", et, [("If-None-Match", '"other", W/"v1"')])
    expect(t, r, 304, "HIT", "If-None-Match listing a weak form of the stored ETag")
    r = c.request("GET", et, [("If-None-Match", '"other"')])
    expect(t, r, 200, "HIT", "If-None-Match not matching")
    t.check(r.body == body, "200 body: expected %r, got %r" % (body, r.body))
    r = c.request("GET", lm, [("If-Modified-Since", last_mod)])
    expect(t, r, 304, "HIT", "If-Modified-Since equal to Last-Modified")
    earlier = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 86400 * 3))
    r = c.request("GET", lm, [("If-Modified-Since", earlier)])
    expect(t, r, 200, "HIT", "If-Modified-Since before Last-Modified")
    t.check(r.body == lm_resp.body, "200 body: expected %r, got %r" % (lm_resp.body, r.body))
    expect_count(t, b, et, 1, "conditionals on a hit")
    expect_count(t, b, lm, 1, "conditionals on a hit")
    # On a miss the client's conditional goes to the backend; its 304 is
    # passed on and not stored.
    mt = target("cm", cc=CC60, etag="v1")
    r = get(t, proxy, mt, [("If-None-Match", '"v1"')])
    expect(t, r, 304, "MISS", "If-None-Match on a miss")
    r = get(t, proxy, mt)
    expect(t, r, 200, "MISS", "plain GET after a passed-on 304")
    r = get(t, proxy, mt)
    expect(t, r, 200, "HIT", "third GET")
    expect_count(t, b, mt, 2, "conditional miss, miss, hit")


def test_cache_request_no_cache_max_age_only_if_cached(t):
    """Request Cache-Control: no-cache, Pragma: no-cache and max-age=0 (on an
    entry at least 1 s old) force a revalidation (REVALIDATED, backend count
    +1, If-None-Match sent); no-cache on an entry without validators fetches
    it anew; only-if-cached answers 504 on a miss and serves a hit."""
    proxy, b, _ = start(t)
    tgt = target("nc", cc=CC60, etag="v1")
    expect(t, get(t, proxy, tgt), 200, "MISS", "first request")
    n = 1
    for what, h in (("Cache-Control: no-cache", [("Cache-Control", "no-cache")]),
                    ("Pragma: no-cache", [("Pragma", "no-cache")])):
        r = get(t, proxy, tgt, h)
        n += 1
        expect(t, r, 200, "REVALIDATED", what)
        got, last = count(b, tgt)
        t.check(got == n, "%s: expected %d backend requests, got %d" % (what, n, got))
        t.check(last.get("if-none-match") == '"v1"',
                "%s: expected If-None-Match \"v1\" at the backend, got %r" % (what, last))
    expect(t, get(t, proxy, tgt), 200, "HIT", "plain request after revalidations")
    time.sleep(1.1)  # Age >= 1, so max-age=0 rules the entry out
    r = get(t, proxy, tgt, [("Cache-Control", "max-age=0")])
    expect(t, r, 200, "REVALIDATED", "Cache-Control: max-age=0 on an entry 1 s old")
    expect_count(t, b, tgt, n + 1, "after max-age=0")

    nv = target("nv", cc=CC60)
    expect(t, get(t, proxy, nv), 200, "MISS", "first request without validators")
    r = get(t, proxy, nv, [("Cache-Control", "no-cache")])
    expect(t, r, 200, "MISS", "no-cache on an entry without validators")
    t.check(r.body.startswith(b"count 2 "), "no-cache: expected a fresh body 'count 2 ...', "
            "got %r" % r.body)
    r = get(t, proxy, nv)
    expect(t, r, 200, "HIT", "after the refetch")
    t.check(r.body.startswith(b"count 2 "), "expected the refetched body, got %r" % r.body)
    expect_count(t, b, nv, 2, "no-cache without validators")

    oc = target("oc", cc=CC60)
    r = get(t, proxy, oc, [("Cache-Control", "only-if-cached")])
    t.check(r.status == 504, "only-if-cached on a miss: expected 504, got %d %r"
            % (r.status, r))
    expect_count(t, b, oc, 0, "only-if-cached miss")
    expect(t, get(t, proxy, oc), 200, "MISS", "plain request")
    r = get(t, proxy, oc, [("Cache-Control", "only-if-cached")])
    expect(t, r, 200, "HIT", "only-if-cached on a hit")


def test_cache_stale_while_revalidate(t):
    """stale-while-revalidate=2 on max-age=1: a stale entry inside the window
    is served at once as STALE and revalidated in the background (the
    backend sees one conditional request; the next request is a HIT); once
    the window has passed, the entry is revalidated before it is served
    (REVALIDATED, If-None-Match at the backend)."""
    proxy, b, _ = start(t)
    tgt = target("swr", cc="max-age=1, stale-while-revalidate=2", etag="s1")
    r1 = get(t, proxy, tgt)
    expect(t, r1, 200, "MISS", "first request")
    time.sleep(1.1)  # age 1..3: stale by 0..2 s, inside the window
    r = get(t, proxy, tgt)
    expect(t, r, 200, "STALE", "stale entry inside stale-while-revalidate")
    t.check(r.body == r1.body, "stale body: expected %r, got %r" % (r1.body, r.body))
    deadline = time.monotonic() + t.slow(3)
    while count(b, tgt)[0] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    n, last = count(b, tgt)
    t.check(n == 2, "background refresh: expected 2 backend requests, got %d" % n)
    t.check(last.get("if-none-match") == '"s1"',
            "background refresh: expected If-None-Match \"s1\", got %r" % last)
    refreshed = time.monotonic()
    r = get(t, proxy, tgt)
    expect(t, r, 200, "HIT", "after the background refresh")
    time.sleep(max(0.0, 4.2 - (time.monotonic() - refreshed)))  # stale by > 2 s again
    r = get(t, proxy, tgt)
    expect(t, r, 200, "REVALIDATED", "stale entry past stale-while-revalidate")
    n, last = count(b, tgt)
    t.check(n == 3, "past the window: expected 3 backend requests, got %d" % n)
    t.check(last.get("if-none-match") == '"s1"', "expected If-None-Match \"s1\", got %r" % last)


class StandIn:
    """A stand-in origin on a given port (the killed backend's): every
    request gets `response` (bytes, ending in Connection: close) and the
    connection closes. Counts the requests it answered."""

    def __init__(self, t, port, response):
        self.n = 0
        self.response = response
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        t.on_cleanup(self.close)

    def run(self):
        deadline = time.monotonic() + 60
        while not self.stop and time.monotonic() < deadline:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            try:
                c.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    piece = c.recv(65536)
                    if not piece:
                        break
                    data += piece
                if data:
                    self.n += 1
                    c.sendall(self.response)
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


ANSWER_500 = (b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n"
              b"Connection: close\r\n\r\nboom\n")


def stale_if_error_setup(t, names):
    """ringlb with a route /cache/route/ (stale_if_error: 60s) and the rest
    cached with defaults; fetches each of `names` (name -> target) once and
    waits until they are stale (max-age=1). Returns (proxy, backend, bodies)."""
    routes = [
        {"path": "/cache/route/", "pool": "app", "cache": {"stale_if_error": "60s"}},
        {"path": "/", "pool": "app", "cache": "on"},
    ]
    proxy, b, _ = start(t, routes=routes)
    bodies = {}
    for tgt in names.values():
        r = get(t, proxy, tgt)
        expect(t, r, 200, "MISS", "first request for %s" % tgt)
        bodies[tgt] = r.body
    time.sleep(1.1)  # max-age=1: stale now
    return proxy, b, bodies


def check_stale_served(t, proxy, names, bodies, cases, why):
    problems = []
    for what in cases:
        tgt = names[what]
        r = get(t, proxy, tgt)
        if (r.status, label(r), r.body) != (200, "STALE", bodies[tgt]):
            problems.append("%s, %s: expected 200 STALE with the stale body %r, got %d with "
                            "X-Cache %r and %r" % (what, why, bodies[tgt], r.status, label(r),
                                                   r.body[:60]))
    return problems


def test_cache_stale_if_error(t):
    """Entries with a validator (ETag): with the backend dead (connection
    refused), and then with a backend that answers 500 to the revalidation,
    a stale entry is served with X-Cache STALE and its old body when the
    response said stale-if-error=60, or the route has stale_if_error: 60s; an
    entry with neither gets the error."""
    names = {
        "stale-if-error=60 in the response":
            target("sie", cc="max-age=1, stale-if-error=60", etag="a"),
        "the route's stale_if_error: 60s": target("route/x", cc="max-age=1", etag="b"),
        "no stale-if-error": target("plain", cc="max-age=1", etag="c"),
    }
    proxy, b, bodies = stale_if_error_setup(t, names)
    b.kill()
    sie_cases = list(names)[:2]
    problems = check_stale_served(t, proxy, names, bodies, sie_cases, "backend refusing")
    r = get(t, proxy, names["no stale-if-error"])
    if r.status != 502:
        problems.append("no stale-if-error, backend refusing: expected 502, got %d %r"
                        % (r.status, r))
    down = StandIn(t, b.port, ANSWER_500)
    problems += check_stale_served(t, proxy, names, bodies, sie_cases, "backend answering 500")
    r = get(t, proxy, names["no stale-if-error"])
    if (r.status, r.body) != (500, b"boom\n"):
        problems.append("no stale-if-error, backend answering 500: expected its 500, got %d %r"
                        % (r.status, r.body[:60]))
    t.check(down.n >= 3, "the 500 stand-in answered %d requests, expected >= 3" % down.n)
    t.check(not problems, "\n  ".join(problems))


def test_cache_stale_if_error_without_validators(t):
    """stale-if-error does not depend on validators: a stale entry with
    neither ETag nor Last-Modified (it is refetched, not revalidated) is
    served STALE when the backend is down, for stale-if-error=60 in the
    response and for the route's stale_if_error: 60s."""
    names = {
        "stale-if-error=60 in the response, no validator":
            target("sie", cc="max-age=1, stale-if-error=60"),
        "the route's stale_if_error: 60s, no validator": target("route/x", cc="max-age=1"),
    }
    proxy, b, bodies = stale_if_error_setup(t, names)
    b.kill()
    problems = check_stale_served(t, proxy, names, bodies, list(names), "backend refusing")
    t.check(not problems, "\n  ".join(problems))


def test_cache_coalesces_concurrent_misses(t):
    """200 concurrent requests (each on its own connection, over both
    shards) for one uncached slow object cause exactly one backend request;
    all 200 get the same 200 body, one MISS and the rest HIT, and
    /api/cache counts coalesced waiters."""
    proxy, b, admin = start(t, admin=True)
    tgt = target("slow", cc=CC60, delay=500)
    n = 200

    def one(i):
        c = Conn(proxy.port, t.slow(10))
        try:
            return c.request("GET", tgt)
        finally:
            c.close()

    results, secs = concurrent(t, n, one)
    errors = [r for r in results if isinstance(r, Exception)]
    t.check(not errors, "%d of %d requests failed, e.g. %r" % (len(errors), n, errors[:3]))
    statuses = sorted({r.status for r in results})
    t.check(statuses == [200], "statuses: expected only 200, got %r" % statuses)
    bodies = {r.body for r in results}
    t.check(len(bodies) == 1, "expected one body for all %d, got %d: %r"
            % (n, len(bodies), sorted(bodies)[:3]))
    labels = [label(r) for r in results]
    t.check(labels.count("MISS") == 1 and labels.count("HIT") == n - 1,
            "labels: expected 1 MISS and %d HIT, got %r"
            % (n - 1, {x: labels.count(x) for x in set(labels)}))
    expect_count(t, b, tgt, 1, "%d concurrent requests" % n)
    st = zone_stats(t, admin)
    t.check(st["coalesced"] > 0, "expected coalesced > 0 in /api/cache, got %r" % st)
    t.check(secs < t.slow(3), "expected all %d within 3 s, took %.1fs" % (n, secs))
    t.log("%d concurrent requests in %.2fs; zone %r" % (n, secs, st))


def test_cache_unstorable_under_concurrency(t):
    """20 concurrent requests for a slow no-store object all succeed without
    waiting out lock_timeout (5 s): the waiters go to the backend as soon as
    the response turns out unstorable."""
    proxy, b, _ = start(t)
    tgt = target("nostore", cc="no-store", delay=300)
    n = 20

    def one(i):
        c = Conn(proxy.port, t.slow(10))
        try:
            return c.request("GET", tgt)
        finally:
            c.close()

    results, secs = concurrent(t, n, one)
    errors = [r for r in results if isinstance(r, Exception)]
    t.check(not errors, "%d of %d requests failed, e.g. %r" % (len(errors), n, errors[:3]))
    bad = [(r.status, label(r)) for r in results if (r.status, label(r)) != (200, "MISS")]
    t.check(not bad, "expected 200 MISS for all, got %r" % bad)
    expect_count(t, b, tgt, n, "%d concurrent no-store requests" % n)
    t.check(secs < t.slow(3), "expected all %d within 3 s, took %.1fs" % (n, secs))
    t.log("%d no-store requests in %.2fs" % (n, secs))


def test_cache_lock_timeout_bounds_the_wait(t):
    """With lock_timeout: 300ms, requests waiting for a slow fill (1.5 s)
    give up waiting after 0.3 s and fetch on their own: all succeed, the
    backend sees more than one request, and none takes much over the fill."""
    routes = [{"path": "/", "pool": "app", "cache": {"lock_timeout": "300ms"}}]
    proxy, b, _ = start(t, routes=routes)
    tgt = target("lt", cc=CC60, delay=1500)
    n = 5

    def one(i):
        c = Conn(proxy.port, t.slow(10))
        try:
            t0 = time.monotonic()
            resp = c.request("GET", tgt)
            return resp, time.monotonic() - t0
        finally:
            c.close()

    results, secs = concurrent(t, n, one)
    errors = [r for r in results if isinstance(r, Exception)]
    t.check(not errors, "%d of %d requests failed, e.g. %r" % (len(errors), n, errors[:3]))
    bad = [r.status for r, _ in results if r.status != 200]
    t.check(not bad, "expected 200 for all, got %r" % bad)
    got = count(b, tgt)[0]
    t.check(got >= 2, "expected waiters to fetch on their own after lock_timeout (>= 2 backend "
            "requests), got %d" % got)
    t.check(secs < t.slow(3), "expected all within 3 s (1.5 s fill + 0.3 s wait + 1.5 s "
            "fetch at most), took %.1fs" % secs)


def test_cache_purge(t):
    """POST /api/cache/purge: an exact path removes that entry (purged 1, the
    next request a MISS), a prefix removes all under it, a host filter
    matches only the exact Host (port included); other entries stay HITs;
    a bad body gets 400 and GET gets 405."""
    proxy, b, admin = start(t, admin=True)
    host = [("Host", "127.0.0.1:%d" % proxy.port)]
    a = target("static/a", cc=CC60)
    s2 = target("static/b", cc=CC60)
    other = target("other", cc=CC60)
    for tgt in (a, s2, other):
        expect(t, get(t, proxy, tgt, host), 200, "MISS", "first request for %s" % tgt)
        expect(t, get(t, proxy, tgt, host), 200, "HIT", "second request for %s" % tgt)

    status, doc = api(t, admin, "POST", "/api/cache/purge", {"path": a})
    t.check((status, doc) == (200, {"purged": 1}),
            "purge by path: expected 200 {'purged': 1}, got %d %r" % (status, doc))
    expect(t, get(t, proxy, a, host), 200, "MISS", "purged entry")
    expect(t, get(t, proxy, s2, host), 200, "HIT", "entry next to the purged one")
    expect(t, get(t, proxy, a, host), 200, "HIT", "purged entry, stored again")

    status, doc = api(t, admin, "POST", "/api/cache/purge", {"prefix": "/cache/static/"})
    t.check((status, doc) == (200, {"purged": 2}),
            "purge by prefix: expected 200 {'purged': 2}, got %d %r" % (status, doc))
    for tgt in (a, s2):
        expect(t, get(t, proxy, tgt, host), 200, "MISS", "%s after the prefix purge" % tgt)
    expect(t, get(t, proxy, other, host), 200, "HIT", "entry outside the purged prefix")

    status, doc = api(t, admin, "POST", "/api/cache/purge", {"host": "127.0.0.1", "path": other})
    t.check((status, doc) == (200, {"purged": 0}),
            "purge with a host lacking the port: expected 200 {'purged': 0}, got %d %r"
            % (status, doc))
    expect(t, get(t, proxy, other, host), 200, "HIT", "entry after a non-matching host purge")
    status, doc = api(t, admin, "POST", "/api/cache/purge",
                      {"host": "127.0.0.1:%d" % proxy.port, "path": other})
    t.check((status, doc) == (200, {"purged": 1}),
            "purge with the exact host:port: expected 200 {'purged': 1}, got %d %r"
            % (status, doc))
    expect(t, get(t, proxy, other, host), 200, "MISS", "entry after the host purge")
    st = zone_stats(t, admin)
    t.check(st["purged"] == 4, "purged counter: expected 4, got %r" % st)

    for what, raw in (("empty object", b"{}"), ("not JSON", b"purge everything"),
                      ("relative path", b'{"path": "cache/other"}'),
                      ("empty prefix", b'{"prefix": ""}')):
        status, doc = api(t, admin, "POST", "/api/cache/purge", raw=raw)
        t.check(status == 400, "purge with %s: expected 400, got %d %r" % (what, status, doc))
    status, _ = api(t, admin, "GET", "/api/cache/purge")
    t.check(status == 405, "GET /api/cache/purge: expected 405, got %d" % status)
    expect(t, get(t, proxy, other, host), 200, "HIT", "entry after the refused purges")


def test_cache_max_object(t):
    """An object larger than max_object (64 KiB) is served whole but not
    stored (the next request is a MISS again), with Content-Length and when
    the backend sends it chunked (abandoned mid-way); a small one is stored."""
    routes = [{"path": "/", "pool": "app", "cache": {"max_object": "64KiB"}}]
    proxy, b, admin = start(t, routes=routes, admin=True)
    size = 100000
    for what, tgt in (("Content-Length", target("big", cc=CC60, size=size)),
                      ("chunked", target("bigc", cc=CC60, size=size, chunked=1))):
        for i in range(2):
            c = t.connect(proxy.port)
            check = PatternChecker()
            c.send_request("GET", tgt)
            r = c.read_response(sink=check)
            expect(t, r, 200, "MISS", "%s object over max_object, request %d" % (what, i + 1))
            t.check((check.offset, check.bad_at) == (size, None),
                    "%s body: expected %d pattern bytes, got %d (first bad byte at %r)"
                    % (what, size, check.offset, check.bad_at))
            t.check(r.chunked == (what == "chunked"),
                    "%s object: expected chunked=%s to the client, got %s"
                    % (what, what == "chunked", r.chunked))
        expect_count(t, b, tgt, 2, "%s object over max_object" % what)
    small = target("small", cc=CC60, size=60000)
    t.check(stored(t, proxy, b, small), "a 60000-byte object under max_object was not stored")
    st = zone_stats(t, admin)
    t.check(st["objects"] == 1, "objects: expected only the small one, got %r" % st)


def test_cache_eviction_within_budget(t):
    """memory: 256KiB over 2 shards, 40 objects of 16 KiB: the stored bytes
    stay within the budget, objects are evicted, and every response (first
    fetches, hits and refetches of evicted ones) has the right body."""
    routes = [{"path": "/", "pool": "app",
               "cache": {"memory": "256KiB", "max_object": "64KiB"}}]
    proxy, b, admin = start(t, routes=routes, admin=True)
    size = 16384
    want = backend_mod.PATTERN_BLOCK[:size]
    tgts = [target("ev%d" % i, cc=CC60, size=size) for i in range(40)]
    c = t.connect(proxy.port)
    c2 = t.connect(proxy.port)
    for rnd in range(2):
        for i, tgt in enumerate(tgts):
            r = (c if i % 2 else c2).request("GET", tgt)
            t.check(r.status == 200 and r.body == want,
                    "round %d, %s: expected 200 with %d pattern bytes, got %d with %d bytes "
                    "(X-Cache %r)" % (rnd, tgt, size, r.status, len(r.body), label(r)))
            if rnd == 0:
                t.check(label(r) == "MISS", "first fetch of %s: expected MISS, got %r"
                        % (tgt, label(r)))
        st = zone_stats(t, admin)
        t.check(st["bytes"] <= 256 * 1024, "round %d: expected bytes <= 262144, got %r"
                % (rnd, st))
        t.log("round %d: %r" % (rnd, st))
    t.check(st["evictions"] > 0, "expected evictions > 0, got %r" % st)
    t.check(0 < st["objects"] < 40, "expected some but not all 40 objects kept, got %r" % st)
    t.check(st["stores"] >= 40, "expected >= 40 stores, got %r" % st)


def test_cache_header_off_and_custom_name(t):
    """header: off: no X-Cache field on misses or hits (the hit still has
    Age); header: X-My-Cache: the label goes in that field, not X-Cache."""
    routes = [
        {"path": "/cache/quiet/", "pool": "app", "cache": {"header": "off"}},
        {"path": "/", "pool": "app", "cache": {"header": "X-My-Cache"}},
    ]
    proxy, b, _ = start(t, routes=routes)
    q = target("quiet/x", cc=CC60)
    for i in range(2):
        r = get(t, proxy, q)
        t.check(r.status == 200 and r.get("x-cache") is None,
                "header: off, request %d: expected 200 without X-Cache, got %d with %r"
                % (i + 1, r.status, r.get("x-cache")))
    t.check(r.get("age") is not None, "header: off: expected Age on the hit, got %r" % r)
    expect_count(t, b, q, 1, "header: off")
    tgt = target("named", cc=CC60)
    for want in ("MISS", "HIT"):
        r = get(t, proxy, tgt)
        t.check((r.status, label(r, "X-My-Cache"), r.get("x-cache")) == (200, want, None),
                "header: X-My-Cache: expected 200 with X-My-Cache %s and no X-Cache, got %d "
                "with %r and %r" % (want, r.status, label(r, "X-My-Cache"), r.get("x-cache")))


def test_cache_quick_mode(t):
    """Quick mode --cache 64MiB caches everything: MISS, then HIT."""
    b = t.backend()
    port = free_port()
    proxy = t.ringlb(args=["--listen", "127.0.0.1:%d" % port, "--backend", b.address,
                           "--cache", "64MiB", "--workers", "2"], port=port)
    tgt = target("q", cc=CC60)
    expect(t, get(t, proxy, tgt), 200, "MISS", "quick mode, first request")
    expect(t, get(t, proxy, tgt), 200, "HIT", "quick mode, second request")
    expect_count(t, b, tgt, 1, "quick mode")


def test_cache_bodies_byte_exact(t):
    """A 300 KiB object served from the cache over HTTP/1.1 has the right
    sha256 and Content-Length, whether the backend sent it with
    Content-Length or chunked."""
    proxy, b, _ = start(t)
    size = 307200
    want = pattern_sha256(size)
    for what, tgt in (("Content-Length", target("body", cc=CC60, size=size)),
                      ("chunked", target("bodyc", cc=CC60, size=size, chunked=1))):
        for xc in ("MISS", "HIT", "HIT"):
            c = t.connect(proxy.port)
            check = PatternChecker()
            c.send_request("GET", tgt)
            r = c.read_response(sink=check)
            expect(t, r, 200, xc, "%s object" % what)
            t.check((check.offset, check.sha.hexdigest()) == (size, want),
                    "%s object (%s): expected %d bytes with sha256 %s, got %d bytes with %s "
                    "(first bad byte at %r)" % (what, xc, size, want, check.offset,
                                                check.sha.hexdigest(), check.bad_at))
            if xc == "HIT":
                t.check(r.get("content-length") == str(size),
                        "%s object from the cache: expected Content-Length %d, got %r"
                        % (what, size, r.get("content-length")))
            t.check(c.request("GET", "/cache/ping").status == 200,
                    "the connection is usable after the %s object" % what)
        expect_count(t, b, tgt, 1, "%s object" % what)


def test_cache_http10_client(t):
    """An HTTP/1.0 client gets a cached object as HTTP/1.0 with
    Content-Length; the connection closes without keep-alive and stays open
    with it. A chunked object first fetched by an HTTP/1.0 client (de-chunked
    on the way) is stored byte-exact."""
    proxy, b, _ = start(t)
    size = 1000
    tgt = target("old", cc=CC60, size=size)
    expect(t, get(t, proxy, tgt), 200, "MISS", "HTTP/1.1 fetch")
    want = backend_mod.PATTERN_BLOCK[:size]
    c = t.connect(proxy.port)
    c.send(("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % tgt).encode())
    r = c.read_response()
    expect(t, r, 200, "HIT", "HTTP/1.0 request")
    t.check((r.version, r.get("content-length"), r.body) == ("HTTP/1.0", str(size), want),
            "HTTP/1.0 hit: expected HTTP/1.0, Content-Length %d and the pattern, got %s, %r "
            "and %d bytes" % (size, r.version, r.get("content-length"), len(r.body)))
    t.check(c.closed_within(t.slow(3)), "HTTP/1.0 connection without keep-alive not closed")
    c = t.connect(proxy.port)
    for i in range(2):
        c.send(("GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"
                % tgt).encode())
        r = c.read_response()
        expect(t, r, 200, "HIT", "HTTP/1.0 keep-alive request %d" % (i + 1))
        t.check(r.body == want and "keep-alive" in r.tokens("connection"),
                "HTTP/1.0 keep-alive hit: expected the body and Connection: keep-alive, got "
                "%d bytes and %r" % (len(r.body), r.get_all("connection")))
    t.check(not c.closed_within(0.3), "HTTP/1.0 keep-alive connection closed")
    expect_count(t, b, tgt, 1, "HTTP/1.0 hits")

    n = 50000
    ct = target("old-chunked", cc=CC60, size=n, chunked=1)
    c = t.connect(proxy.port)
    c.send(("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % ct).encode())
    r = c.read_response()
    expect(t, r, 200, "MISS", "HTTP/1.0 fetch of a chunked object")
    t.check(hashlib.sha256(r.body).hexdigest() == pattern_sha256(n),
            "HTTP/1.0 miss: expected %d pattern bytes, got %d bytes" % (n, len(r.body)))
    c = t.connect(proxy.port)
    check = PatternChecker()
    c.send_request("GET", ct)
    r = c.read_response(sink=check)
    expect(t, r, 200, "HIT", "HTTP/1.1 request for the object an HTTP/1.0 client fetched")
    t.check((check.offset, check.bad_at) == (n, None),
            "stored de-chunked body: expected %d pattern bytes, got %d (first bad at %r)"
            % (n, check.offset, check.bad_at))


def test_cache_freshness_precedence_and_response_no_cache(t):
    """Freshness comes from s-maxage, else max-age, else Expires - Date:
    "max-age=0, s-maxage=60" is a HIT, "s-maxage=0, max-age=60" is not,
    max-age=60 beats an Expires in the past. A response with no-cache is
    stored but revalidated before every use (REVALIDATED each time, backend
    count +1 each)."""
    proxy, b, _ = start(t)
    wrong = []
    for what, tgt, want in (
            ("max-age=0, s-maxage=60", target("p1", cc="max-age=0, s-maxage=60"), True),
            ("s-maxage=0, max-age=60", target("p2", cc="s-maxage=0, max-age=60"), False),
            ("max-age=60, Expires 10 s ago", target("p3", cc=CC60, expires=-10), True),
            ("Expires 10 s ago only", target("p4", expires=-10), False)):
        got = stored(t, proxy, b, tgt)
        if got != want:
            wrong.append("%s: expected %s, got %s" % (what, "HIT" if want else "no hit",
                                                      "HIT" if got else "no hit"))
    t.check(not wrong, "freshness precedence:\n  " + "\n  ".join(wrong))
    nc = target("rnc", cc="no-cache, max-age=60", etag="n1")
    r1 = get(t, proxy, nc)
    expect(t, r1, 200, "MISS", "response no-cache, first request")
    for i in range(2):
        r = get(t, proxy, nc)
        expect(t, r, 200, "REVALIDATED", "response no-cache, request %d" % (i + 2))
        t.check(r.body == r1.body, "revalidated body: expected %r, got %r" % (r1.body, r.body))
        expect_count(t, b, nc, i + 2, "response no-cache, request %d" % (i + 2))


def test_cache_pipelined_hits_and_misses(t):
    """Pipelined requests on one connection mixing hits, a miss and a HEAD
    hit are answered in order, each with its own body."""
    proxy, b, _ = start(t)
    h1, h2 = target("pa", cc=CC60, size=5000), target("pb", cc=CC60)
    miss = target("pm", cc=CC60, delay=100)
    for tgt in (h1, h2):
        expect(t, get(t, proxy, tgt), 200, "MISS", "warm-up of %s" % tgt)
    c = t.connect(proxy.port)
    order = [("GET", h1), ("GET", miss), ("HEAD", h2), ("GET", h2), ("GET", h1)]
    c.send(b"".join(("%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % (m, tg)).encode()
                    for m, tg in order))
    want_labels = ["HIT", "MISS", "HIT", "HIT", "HIT"]
    for (m, tg), want in zip(order, want_labels):
        r = c.read_response(m)
        expect(t, r, 200, want, "pipelined %s %s" % (m, tg))
        if tg == h1:
            t.check(r.body == backend_mod.PATTERN_BLOCK[:5000],
                    "pipelined %s: expected 5000 pattern bytes, got %d bytes" % (tg, len(r.body)))
        elif m == "GET":
            t.check(r.body.startswith(b"count 1 of " + tg.encode()),
                    "pipelined %s: expected its own body, got %r" % (tg, r.body))
    r = c.request("GET", h2)
    expect(t, r, 200, "HIT", "request after the pipeline")


def test_cache_serving_survives_purge_and_client_loss(t):
    """A 1,000,000-byte object (more than conn_bytes_max) being served from
    the cache to a slow reader stays intact when the entry is purged
    meanwhile (the reader holds it); a client that leaves in the middle of a
    hit does not disturb later hits."""
    routes = [{"path": "/", "pool": "app", "cache": {"max_object": "2MiB"}}]
    proxy, b, admin = start(t, routes=routes, admin=True)
    size = 1000000  # the backend's /cache bodies stop at 16 pattern periods
    tgt = target("huge", cc=CC60, size=size)
    want = pattern_sha256(size)

    def fetch(what, xcache):
        c = t.connect(proxy.port)
        check = PatternChecker()
        c.send_request("GET", tgt)
        r = c.read_response(sink=check)
        expect(t, r, 200, xcache, what)
        t.check((check.offset, check.sha.hexdigest()) == (size, want),
                "%s: expected %d pattern bytes, got %d (first bad at %r)"
                % (what, size, check.offset, check.bad_at))

    fetch("first fetch", "MISS")
    # A client that leaves after the head and a little of the body.
    gone = t.connect(proxy.port)
    gone.send_request("GET", tgt)
    head = gone.read_head()
    t.check(label(head) == "HIT", "leaving client: expected HIT, got %r" % head)
    gone.close()
    fetch("hit after a client left mid-body", "HIT")
    # A slow reader (small receive buffer, set before connecting); the entry
    # is purged while it reads.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.on_cleanup(s.close)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(t.slow(10))
    s.connect(("127.0.0.1", proxy.port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % tgt).encode())
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        piece = s.recv(4096)
        t.check(piece, "slow reader: connection closed before the head")
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    t.check(b"\r\nX-Cache: HIT\r\n" in head, "slow reader: expected a HIT, got %r" % head)
    status, doc = api(t, admin, "POST", "/api/cache/purge", {"path": tgt})
    t.check((status, doc) == (200, {"purged": 1}), "purge during the serve: expected 200 "
            "{'purged': 1}, got %d %r" % (status, doc))
    got = hashlib.sha256(body)
    n = len(body)
    while n < size:
        piece = s.recv(min(65536, size - n))
        if not piece:
            break
        got.update(piece)
        n += len(piece)
    t.check((n, got.hexdigest()) == (size, want), "body served across the purge: expected %d "
            "bytes with sha256 %s, got %d with %s" % (size, want, n, got.hexdigest()))
    fetch("after the purge", "MISS")


def test_cache_fill_failure_releases_waiters(t):
    """When the backend dies while a fill is in flight (waiters queued behind
    it on both shards), or waiting clients go away, nobody waits out
    lock_timeout (5 s): every remaining request is answered within 3 s, with
    a 502."""
    proxy, b, _ = start(t)
    tgt = target("dies", cc=CC60, delay=800)
    n = 12

    def one(i):
        c = Conn(proxy.port, t.slow(10))
        try:
            c.send_request("GET", tgt)
            if i % 4 == 3:  # some waiters leave
                time.sleep(0.2)
                return "left"
            return c.read_response()
        finally:
            c.close()

    killer = threading.Timer(0.4, b.kill)
    killer.start()
    t.on_cleanup(killer.cancel)
    results, secs = concurrent(t, n, one)
    errors = [r for r in results if isinstance(r, Exception)]
    t.check(not errors, "%d of %d requests failed, e.g. %r" % (len(errors), n, errors[:3]))
    statuses = [r.status for r in results if r != "left"]
    t.check(set(statuses) == {502}, "expected 502 for all, got %r" % statuses)
    t.check(secs < t.slow(3), "expected all answered within 3 s, took %.1fs" % secs)


def test_cache_unsafe_method_invalidates(t):
    """RFC 9111 section 4.4: a non-error response to an unsafe request (POST,
    PUT, DELETE) invalidates the stored response for its target URI: the next
    GET is a MISS."""
    proxy, b, _ = start(t)
    problems = []
    for method in ("POST", "PUT", "DELETE"):
        tgt = target("inv-" + method.lower(), cc=CC60)
        expect(t, get(t, proxy, tgt), 200, "MISS", "first GET")
        expect(t, get(t, proxy, tgt), 200, "HIT", "second GET")
        r = request(proxy.port, method, tgt, body=b"x", timeout=t.slow(10))
        t.check(r.status == 200, "%s: expected 200, got %d" % (method, r.status))
        r = get(t, proxy, tgt)
        if label(r) != "MISS":
            problems.append("GET after a 200 to %s: expected MISS, got %r" % (method, label(r)))
    t.check(not problems, "\n  ".join(problems))


def test_cache_concurrent_revalidation_is_coalesced(t):
    """50 concurrent requests (no conditional fields) for one stale entry
    with an ETag cause one conditional request to the backend; every client
    gets the full 200 with the stored body (one REVALIDATED, the rest HIT),
    none a 304 it did not ask for."""
    proxy, b, _ = start(t)
    # max-age=2: the refreshed entry stays fresh even if the 300 ms
    # conditional request straddles a second boundary (Age 1).
    tgt = target("rv", cc="max-age=2", etag="r1", delay=300)
    r1 = get(t, proxy, tgt)
    expect(t, r1, 200, "MISS", "first request")
    time.sleep(2.1)  # max-age=2: stale now
    n = 50

    def one(i):
        c = Conn(proxy.port, t.slow(10))
        try:
            return c.request("GET", tgt)
        finally:
            c.close()

    results, secs = concurrent(t, n, one)
    errors = [r for r in results if isinstance(r, Exception)]
    t.check(not errors, "%d of %d requests failed, e.g. %r" % (len(errors), n, errors[:3]))
    got = {}
    for r in results:
        key = (r.status, label(r), r.body == r1.body)
        got[key] = got.get(key, 0) + 1
    want = {(200, "REVALIDATED", True): 1, (200, "HIT", True): n - 1}
    t.check(got == want, "expected {(status, X-Cache, stored body?): count} = %r, got %r"
            % (want, got))
    expect_count(t, b, tgt, 2, "%d concurrent requests for a stale entry" % n)


def test_cache_revalidation_200_replaces(t):
    """A stale entry whose revalidation gets a 200 (the resource changed)
    is replaced: the client gets the new body as a MISS, and the next
    request is a HIT with the new body. (The backend is replaced by a
    stand-in on its port that ignores conditionals.)"""
    proxy, b, _ = start(t)
    tgt = target("chg", cc="max-age=1", etag="old")
    r1 = get(t, proxy, tgt)
    expect(t, r1, 200, "MISS", "first request")
    time.sleep(1.1)  # max-age=1: stale now
    b.kill()
    new = StandIn(t, b.port, b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nETag: \"new\"\r\n"
                             b"Content-Length: 9\r\nConnection: close\r\n\r\nnew body\n")
    r = get(t, proxy, tgt)
    t.check((r.status, r.body, r.get("etag")) == (200, b"new body\n", '"new"'),
            "revalidation answered 200: expected the new body and ETag, got %d %r %r"
            % (r.status, r.body, r.get("etag")))
    t.check(label(r) in ("MISS", "REVALIDATED"), "expected X-Cache MISS (or REVALIDATED), got "
            "%r" % label(r))
    r = get(t, proxy, tgt)
    expect(t, r, 200, "HIT", "request after the replacement")
    t.check(r.body == b"new body\n", "expected the new body, got %r" % r.body)
    t.check(new.n == 1, "stand-in: expected 1 request, got %d" % new.n)


def test_cache_over_tls_http1_and_http2(t):
    """On a TLS listener, a 300 KiB object is served from the cache
    byte-exact over HTTP/1.1 and over HTTP/2 (curl), with X-Cache HIT, after
    one backend request."""
    from certs import Pki, tls_config
    pki = Pki(t)
    b = t.backend()
    cfg = t.config([b], workers=2)
    cfg["listeners"][0]["tls"] = tls_config([pki.issue("a", ["a.test"])])
    cfg["routes"] = [{"path": "/", "pool": "app", "cache": "on"}]
    proxy = t.ringlb(cfg)
    size = 307200
    want = pattern_sha256(size)
    tgt = target("tls", cc=CC60, size=size)
    url = "https://a.test:%d%s" % (proxy.port, tgt)
    seen = []
    for proto in ("--http1.1", "--http1.1", "--http2", "--http2"):
        cp = t.curl(proto, "--cacert", pki.ca_cert, "--resolve",
                    "a.test:%d:127.0.0.1" % proxy.port, "-D", "-", "-o", "body.bin", url)
        t.check(cp.returncode == 0, "curl %s: exit %d: %s" % (proto, cp.returncode,
                                                              cp.stderr.decode(errors="replace")))
        head = cp.stdout.decode("latin-1").lower()
        xc = [ln.split(":", 1)[1].strip() for ln in head.splitlines()
              if ln.startswith("x-cache:")]
        with open(t.tmpdir + "/body.bin", "rb") as f:
            body = f.read()
        seen.append((proto, xc, len(body), hashlib.sha256(body).hexdigest() == want))
    want_seen = [("--http1.1", ["miss"], size, True), ("--http1.1", ["hit"], size, True),
                 ("--http2", ["hit"], size, True), ("--http2", ["hit"], size, True)]
    t.check(seen == want_seen, "expected (protocol, X-Cache, bytes, sha256 ok) %r, got %r"
            % (want_seen, seen))
    expect_count(t, b, tgt, 1, "TLS fetches")


def test_cache_range_and_preconditions_never_block_the_key(t):
    """A Range request that misses goes to the backend alone, is not stored,
    and does not stop the next plain request from storing; a hit answers a
    Range request in full (RFC 9110 §14.2); If-Match requests are left to
    the backend."""
    proxy, b, _ = start(t)
    tgt = target("rng", cc="max-age=60")
    r = get(t, proxy, tgt, headers=[("Range", "bytes=0-3")])
    expect(t, r, 200, "MISS", "Range request on a miss")
    r = get(t, proxy, tgt)
    expect(t, r, 200, "MISS", "plain request after the Range miss")
    r = get(t, proxy, tgt)
    expect(t, r, 200, "HIT", "stored by the plain request")
    r = get(t, proxy, tgt, headers=[("Range", "bytes=0-3")])
    expect(t, r, 200, "HIT", "Range request on a hit: the full body")
    t.check(len(r.body) > 4, "full body for a Range hit: got %d bytes" % len(r.body))
    n0 = count(b, tgt)[0]
    r = get(t, proxy, tgt, headers=[("If-Match", '"x"')])
    expect(t, r, 200, "MISS", "If-Match goes to the backend")
    expect_count(t, b, tgt, n0 + 1, "If-Match request")
    r = get(t, proxy, tgt)
    expect(t, r, 200, "HIT", "the entry survives an If-Match request")


def test_cache_compressed_entry_refreshed_by_304(t):
    """A compressed (br) entry revalidated by a 304 keeps what compression
    promised: Content-Encoding br, a weak ETag and Vary: Accept-Encoding,
    and the same decodable body."""
    b = t.backend()
    cfg = t.config([b], workers=2, compression={"enabled": True},
                   routes=[{"path": "/", "pool": "app", "cache": "on"}])
    proxy = t.ringlb(cfg)
    tgt = target("zr", type="text/html", size=20000, cc="max-age=1", etag="z1")
    ae = [("Accept-Encoding", "br")]
    first = get(t, proxy, tgt, headers=ae)
    expect(t, first, 200, "MISS", "first br request")
    time.sleep(2.1)
    r = get(t, proxy, tgt, headers=ae)
    expect(t, r, 200, "REVALIDATED", "stale br entry revalidated")
    for resp, what in ((r, "revalidated"), (get(t, proxy, tgt, headers=ae), "next hit")):
        t.check(resp.get("Content-Encoding") == "br", "%s: Content-Encoding %r"
                % (what, resp.get("Content-Encoding")))
        t.check(resp.get("ETag") == 'W/"z1"', "%s: ETag %r" % (what, resp.get("ETag")))
        t.check("accept-encoding" in resp.tokens("Vary"), "%s: Vary %r"
                % (what, resp.get_all("Vary")))
        t.check(resp.body == first.body, "%s: body differs from the first br body" % what)


def test_cache_authorization_requests_need_permission(t):
    """A stored response answers a request that carries Authorization only
    when it said public, s-maxage or must-revalidate (RFC 9111 §3.5);
    otherwise that request goes to the backend and the entry stays."""
    proxy, b, _ = start(t)
    auth = [("Authorization", "Bearer abc")]
    plain = target("au", cc="max-age=60")
    expect(t, get(t, proxy, plain), 200, "MISS", "plain entry stored")
    expect(t, get(t, proxy, plain, headers=auth), 200, "MISS", "credentials: not from cache")
    expect_count(t, b, plain, 2, "the request with credentials reached the backend")
    expect(t, get(t, proxy, plain), 200, "HIT", "the plain entry is still there")
    for name, cc in (("au-pub", "public, max-age=60"), ("au-s", "s-maxage=60"),
                     ("au-mr", "max-age=60, must-revalidate")):
        tgt = target(name, cc=cc)
        expect(t, get(t, proxy, tgt), 200, "MISS", "%s stored" % cc)
        expect(t, get(t, proxy, tgt, headers=auth), 200, "HIT",
               "credentials served from an entry with %s" % cc)


def test_cache_purge_during_a_fill(t):
    """A purge that runs while a response is still being stored (its client
    reads slowly, so the fill is in progress) keeps that response out: the
    next request is a MISS that fetches again, and its client still gets
    every byte."""
    n = 32 * 1024 * 1024
    proxy, b, admin = start(t, admin=True, cache={"memory": "128MiB", "max_object": "48MiB"})
    tgt = target("slowfill", cc=CC60, size=n)
    c = Conn(proxy.port, t.slow(30))
    c.send_request("GET", tgt)
    head = c.read_head()
    t.check(head.status == 200 and head.get("X-Cache") == "MISS",
            "filling request: expected 200 MISS, got %d %r" % (head.status, head.get("X-Cache")))
    time.sleep(0.3)  # the client has not read: ringlb holds the fill back
    status, doc = api(t, admin, "POST", "/api/cache/purge", {"path": tgt})
    t.check(status == 200, "purge during the fill: status %d %r" % (status, doc))
    check = PatternChecker()
    c._read_exact(n, check)  # the rest of the body (part may be buffered already)
    t.check(check.offset == n and check.bad_at is None,
            "filling client's body: %d of %d bytes, first bad byte at %r"
            % (check.offset, n, check.bad_at))
    time.sleep(0.2)
    r = get(t, proxy, tgt)
    expect(t, r, 200, "MISS", "after a purge during the fill")
    expect_count(t, b, tgt, 2, "the purged fill was fetched again")
