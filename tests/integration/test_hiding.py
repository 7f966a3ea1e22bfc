"""Hiding the backends: response fields that name their software, the
Server field, and X-Request-ID.

Goal: X-Powered-By and the other fields in headers.hide never reach a
client (nor the cache); Server is replaced or removed when configured;
every proxied request carries an X-Request-ID that the backend, the client
and the access log all see, unique across requests and shards; a client's
own X-Request-ID is replaced unless headers.request_id_trusted says the
hop in front is trusted.

Method: the test backend's /cache/... resource adds response fields from
its `hdr` query value and records the request fields it received
(/count); ringlb runs with 2 workers so requests spread over shards.
"""

import json
import os
import re
import time
import urllib.parse

from lib import request, timeout

LEAKY = "X-Powered-By:PHP/8.2|X-AspNet-Version:4.0|X-Backend-Host:db-7"


def target(name):
    return "/cache/%s?hdr=%s" % (name, urllib.parse.quote(LEAKY, safe=""))


def last_fields(b, tgt):
    resp = request(b.port, "GET", "/count?t=" + urllib.parse.quote(tgt, safe=""))
    return json.loads(resp.body)["last"]


@timeout(30)
def test_default_hides_software_fields(t):
    """By default X-Powered-By and the ASP.NET fields go, Server stays, and
    other fields pass."""
    b = t.backend()
    proxy = t.ringlb(t.config([b], workers=2))
    resp = request(proxy.port, "GET", target("d"))
    t.eq(resp.status, 200, "status")
    t.eq(resp.get("X-Powered-By"), None, "X-Powered-By hidden")
    t.eq(resp.get("X-AspNet-Version"), None, "X-AspNet-Version hidden")
    t.eq(resp.get("X-Backend-Host"), "db-7", "a field not in the list passes")
    t.eq(resp.get("Server"), "test-backend/b1", "Server kept by default")


@timeout(30)
def test_configured_hide_and_server(t):
    """headers.hide replaces the list; headers.server replaces Server, or
    removes it with "off"; a cached response is stored without them."""
    b = t.backend()
    cfg = t.config([b], workers=2, headers={"hide": ["X-Backend-Host", "X-Powered-By"],
                                            "server": "ringlb"},
                   routes=[{"pool": "app", "cache": "on"}])
    proxy = t.ringlb(cfg)
    tgt = target("c") + "&cc=max-age%3D60"
    for label in ("MISS", "HIT"):
        resp = request(proxy.port, "GET", tgt)
        t.eq(resp.get("X-Cache"), label, "X-Cache")
        t.eq(resp.get("X-Backend-Host"), None, "configured field hidden (%s)" % label)
        t.eq(resp.get("X-Powered-By"), None, "X-Powered-By hidden (%s)" % label)
        t.eq(resp.get("X-AspNet-Version"), "4.0", "a field no longer listed passes")
        t.eq(resp.get_all("Server"), ["ringlb"], "Server replaced (%s)" % label)
    b2 = t.backend()
    proxy2 = t.ringlb(t.config([b2], headers={"server": "off"}))
    resp = request(proxy2.port, "GET", target("off"))
    t.eq(resp.get("Server"), None, "Server removed with off")


@timeout(30)
def test_request_id_everywhere_and_unique(t):
    """Each request gets a fresh 32-hex-digit X-Request-ID, the same at the
    backend, in the response and in the access log; 40 requests over 2
    shards give 40 different ids; a client's own id is replaced."""
    b = t.backend()
    log_path = os.path.join(t.tmpdir, "access.log")
    proxy = t.ringlb(t.config([b], workers=2, access_log={"path": log_path}))
    ids = set()
    for i in range(40):
        tgt = target("id%d" % i)
        resp = request(proxy.port, "GET", tgt, headers=[("X-Request-ID", "client-made")])
        rid = resp.get("X-Request-ID")
        t.check(rid is not None and re.fullmatch(r"[0-9a-f]{32}", rid),
                "X-Request-ID in the response: %r" % rid)
        t.eq(last_fields(b, tgt).get("x-request-id"), rid, "the id the backend saw")
        ids.add(rid)
    t.eq(len(ids), 40, "distinct ids for 40 requests")
    deadline = time.monotonic() + t.slow(3)
    text = ""
    while time.monotonic() < deadline:
        with open(log_path) as f:
            text = f.read()
        if text.count("\n") >= 40:
            break
        time.sleep(0.05)
    t.check(rid in text, "the last id %s is in the access log" % rid)
    mode = os.stat(log_path).st_mode & 0o777
    t.check(mode & 0o007 == 0, "access log readable by others: mode %o" % mode)
    t.check("client-made" not in text, "the client's own id was replaced")


@timeout(30)
def test_request_id_trusted_and_off(t):
    """With request_id_trusted a sane client id is passed through (a bad one
    is replaced); with request_id: false no id is added anywhere."""
    b = t.backend()
    proxy = t.ringlb(t.config([b], headers={"request_id_trusted": True}))
    tgt = target("tr")
    resp = request(proxy.port, "GET", tgt, headers=[("X-Request-ID", "edge-42")])
    t.eq(resp.get("X-Request-ID"), "edge-42", "trusted id in the response")
    t.eq(last_fields(b, tgt).get("x-request-id"), "edge-42", "trusted id at the backend")
    resp = request(proxy.port, "GET", tgt, headers=[("X-Request-ID", 'bad"id')])
    t.check(re.fullmatch(r"[0-9a-f]{32}", resp.get("X-Request-ID") or ""),
            "an unusable id is replaced: %r" % resp.get("X-Request-ID"))
    b2 = t.backend()
    proxy2 = t.ringlb(t.config([b2], headers={"request_id": False}))
    tgt2 = target("none")
    resp = request(proxy2.port, "GET", tgt2)
    t.eq(resp.get("X-Request-ID"), None, "no id in the response")
    t.eq(last_fields(b2, tgt2).get("x-request-id"), None, "no id at the backend")
