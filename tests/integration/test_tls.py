"""TLS termination: BoringSSL in ringlb, real clients (curl, openssl
s_client, Python's ssl module) in their own processes or threads, and
certificates each test makes with its own test CA (certs.py).

Covered: HTTPS keep-alive and bodies both ways, X-Forwarded-Proto, SNI with
exact, wildcard and default certificates, ECDSA and RSA side by side, ALPN,
session resumption (TLS 1.2 and 1.3, across shards, across a reload, across
two nodes sharing a ticket key file), refusal of TLS 1.1 and of weak
ciphers, private key permissions, configuration errors, quick mode, client
certificates (required and optional), OCSP stapling, HSTS, the https
redirect, garbage on a TLS port, and certificate reload (SIGHUP and admin
API) under load without a failed request.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import threading
import time

from certs import Pki, s_client, tls_config
from lib import free_port, timeout, to_yaml


def tls_proxy(t, backends, certs, workers=1, listener_extra=None, **tls_kw):
    cfg = t.config(backends, workers=workers)
    cfg["listeners"][0]["tls"] = tls_config(certs, **tls_kw)
    if listener_extra:
        cfg["listeners"][0].update(listener_extra)
    return cfg, t.ringlb(cfg)


def curl_https(t, pki, port, path="/", host="a.test", *extra):
    return t.curl("--cacert", pki.ca_cert, "--resolve", "%s:%d:127.0.0.1" % (host, port),
                  "https://%s:%d%s" % (host, port, path), *extra)


def session(t, port, *args):
    """A request through s_client that waits for the response (and so for
    the TLS 1.3 session tickets that come after the handshake)."""
    return s_client(t, port, "-servername", "a.test", "-ign_eof", *args,
                    stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")


def subject_cn(text):
    m = re.search(r"subject=.*?CN ?= ?([^\s,/]+)", text)
    return m.group(1) if m else None


def ssl_ctx(pki, alpn=None):
    ctx = ssl.create_default_context(cafile=pki.ca_cert)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def https_get(ctx, port, path="/", host="a.test", session=None, timeout=10.0):
    """One request on a fresh TLS connection; returns (status, body, sslsock info)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s = ctx.wrap_socket(raw, server_hostname=host, session=session)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" %
                   (path, host)).encode())
        data = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, body, {"reused": s.session_reused, "session": s.session,
                              "version": s.version(), "cert": s.getpeercert()}
    finally:
        s.close()


@timeout(60)
def test_https_requests_bodies_and_forwarded_proto(t):
    pki = Pki(t)
    b = t.backend()
    cfg, proxy = tls_proxy(t, [b], [pki.issue("a", ["a.test"])])
    # three requests, one connection
    cp = curl_https(t, pki, proxy.port, "/", "a.test", "--http1.1", "-o", "/dev/null",
                    "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} %{num_connects} %{http_version}\\n",
                    "https://a.test:%d/size/10" % proxy.port,
                    "https://a.test:%d/size/20" % proxy.port)
    t.eq(cp.returncode, 0, "curl exit status (%s)" % cp.stderr)
    lines = cp.stdout.decode().split()
    t.eq(lines[0::3], ["200", "200", "200"], "statuses")
    t.eq(sum(int(x) for x in lines[1::3]), 1, "connections opened for three requests")
    # the backend is told the client spoke https
    cp = curl_https(t, pki, proxy.port, "/echo")
    t.eq(cp.returncode, 0, "curl /echo")
    headers = dict((k.lower(), v) for k, v in json.loads(cp.stdout)["headers"])
    t.eq(headers.get("x-forwarded-proto"), "https", "X-Forwarded-Proto")
    # a download and an upload large enough for many records and buffers
    n = 8 * 1024 * 1024 + 123
    cp = curl_https(t, pki, proxy.port, "/size/%d" % n, "a.test", "-o", "big.bin")
    t.eq(cp.returncode, 0, "download")
    t.eq(os.path.getsize(os.path.join(t.tmpdir, "big.bin")), n, "downloaded size")
    payload = os.urandom(3 * 1024 * 1024 + 7)
    with open(os.path.join(t.tmpdir, "up.bin"), "wb") as f:
        f.write(payload)
    cp = curl_https(t, pki, proxy.port, "/upload", "a.test", "-T", "up.bin")
    t.eq(cp.returncode, 0, "upload")
    import hashlib
    t.eq(json.loads(cp.stdout)["sha256"], hashlib.sha256(payload).hexdigest(), "upload sha256")
    # chunked response to an HTTP/1.0 client over TLS
    cp = curl_https(t, pki, proxy.port, "/chunked/100000", "a.test", "--http1.0")
    t.eq((cp.returncode, len(cp.stdout)), (0, 100000), "HTTP/1.0 de-chunked body")


@timeout(60)
def test_sni_wildcard_default_and_key_types(t):
    pki = Pki(t)
    ec_a = pki.issue("a-ec", ["a.test", "www.a.test"], "ec")
    rsa_a = pki.issue("a-rsa", ["a.test", "www.a.test"], "rsa")
    b_cert = pki.issue("b", ["b.test"], "ec")
    wild = pki.issue("wild", ["*.wild.test"], "ec")
    cfg, proxy = tls_proxy(t, [t.backend()], [ec_a, rsa_a, b_cert, wild])
    port = proxy.port

    def served(name, *extra):
        rc, out = s_client(t, port, "-servername", name, "-CAfile", pki.ca_cert, *extra)
        t.check("Verify return code: 0" in out, "%s: certificate verifies (%s)" % (name, out[-300:]))
        key = "ECDSA" if re.search(r"Peer signature type: ECDSA|Server public key is 256 bit",
                                   out) else "RSA"
        return subject_cn(out), key

    t.eq(served("a.test"), ("a.test", "ECDSA"), "a.test, modern client")
    t.eq(served("www.a.test"), ("a.test", "ECDSA"), "second SAN of a.test")
    t.eq(served("b.test"), ("b.test", "ECDSA"), "b.test")
    t.eq(served("x.wild.test")[0], "*.wild.test", "wildcard match")
    # a wildcard covers one label only: falls back to the default
    t.eq(served("y.x.wild.test", "-verify_hostname", "a.test")[0], "a.test",
         "two labels under the wildcard get the default")
    t.eq(served("unknown.test", "-verify_hostname", "a.test")[0], "a.test", "default certificate")
    # a TLS 1.2 client offering only RSA suites gets the RSA certificate
    t.eq(served("a.test", "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"),
         ("a.test", "RSA"), "RSA-only TLS 1.2 client")
    # TLS 1.3 client that signs only with RSA-PSS
    t.eq(served("a.test", "-sigalgs", "rsa_pss_rsae_sha256"), ("a.test", "RSA"),
         "RSA-only signature algorithms")


@timeout(60)
def test_alpn_and_protocol_floor(t):
    pki = Pki(t)
    cfg, proxy = tls_proxy(t, [t.backend()], [pki.issue("a", ["a.test"])])
    rc, out = s_client(t, proxy.port, "-servername", "a.test", "-alpn", "h2,http/1.1")
    t.check("ALPN protocol: h2" in out, "ALPN prefers h2: " + out[-400:])
    rc, out = s_client(t, proxy.port, "-servername", "a.test", "-alpn", "http/1.1")
    t.check("ALPN protocol: http/1.1" in out, "ALPN picks http/1.1: " + out[-400:])
    rc, out = s_client(t, proxy.port, "-servername", "a.test", "-alpn", "spdy/1")
    t.check("No ALPN negotiated" in out, "no common protocol: no ALPN")
    # TLS 1.1 and 1.0 are refused
    for flag in ("-tls1_1", "-tls1"):
        rc, out = s_client(t, proxy.port, "-servername", "a.test", flag, "-cipher",
                           "DEFAULT:@SECLEVEL=0")
        t.check(rc != 0 and "Cipher is (NONE)" in out or "alert protocol version" in out,
                "%s refused: %s" % (flag, out[-400:]))
    # a TLS 1.2 client with only CBC/RSA key exchange suites finds nothing
    rc, out = s_client(t, proxy.port, "-servername", "a.test", "-tls1_2", "-cipher",
                       "AES128-SHA:DES-CBC3-SHA:@SECLEVEL=0")
    t.check(rc != 0, "static-RSA and CBC suites refused: " + out[-300:])
    # TLS 1.3 only listener refuses TLS 1.2
    cfg2, p2 = tls_proxy(t, [t.backend()], [pki.issue("a2", ["a.test"])], min_version="1.3")
    rc, out = s_client(t, p2.port, "-servername", "a.test", "-tls1_2")
    t.check(rc != 0, "min_version 1.3 refuses TLS 1.2")
    rc, out = s_client(t, p2.port, "-servername", "a.test", "-tls1_3")
    t.check("TLSv1.3" in out and rc == 0, "min_version 1.3 serves TLS 1.3")


@timeout(90)
def test_session_resumption_across_shards_and_reload(t):
    pki = Pki(t)
    cert = pki.issue("a", ["a.test"])
    cfg, proxy = tls_proxy(t, [t.backend()], [cert], workers=2)
    sess = os.path.join(t.tmpdir, "s.pem")
    for version in ("-tls1_3", "-tls1_2"):
        rc, out = session(t, proxy.port, "-sess_out", sess, version)
        t.check("New," in out and "200 OK" in out, "first handshake is full (%s)" % version)
        # several connections: SO_REUSEPORT spreads them over both shards,
        # and every one must resume (the ticket keys are shared)
        for i in range(6):
            rc, out = session(t, proxy.port, "-sess_in", sess, version)
            t.check("Reused," in out and "200 OK" in out,
                    "%s resumption %d: %s" % (version, i, out[-300:]))
    # resumption survives a reload (same keys, new context)
    rc, out = session(t, proxy.port, "-sess_out", sess)
    proxy.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + t.slow(5)
    while "configuration reloaded" not in proxy.proc.stderr_text():
        t.check(time.monotonic() < deadline, "reload logged")
        time.sleep(0.05)
    rc, out = session(t, proxy.port, "-sess_in", sess)
    t.check("Reused," in out, "resumed after a reload")
    # with tickets off nothing resumes
    cfg2, p2 = tls_proxy(t, [t.backend()], [cert], session_tickets=False)
    rc, out = session(t, p2.port, "-sess_out", sess, "-tls1_2")
    rc, out = session(t, p2.port, "-sess_in", sess, "-tls1_2")
    t.check("New," in out and "200 OK" in out, "no resumption with session_tickets: false")


@timeout(60)
def test_ticket_key_file_shared_by_two_nodes(t):
    pki = Pki(t)
    cert = pki.issue("a", ["a.test"])
    keyfile = os.path.join(t.tmpdir, "tickets.key")
    with open(keyfile, "wb") as f:
        f.write(os.urandom(80))
    os.chmod(keyfile, 0o600)
    cfg1, p1 = tls_proxy(t, [t.backend()], [cert], ticket_key_file=keyfile)
    cfg2 = t.config([t.backend()])
    cfg2["listeners"][0]["tls"] = tls_config([cert], ticket_key_file=keyfile)
    p2 = t.ringlb(cfg2, name="node2")
    sess = os.path.join(t.tmpdir, "s.pem")
    rc, out = session(t, p1.port, "-sess_out", sess)
    rc, out = session(t, p2.port, "-sess_in", sess)
    t.check("Reused," in out, "a session from node 1 resumes on node 2")
    # a key file others can read is refused
    os.chmod(keyfile, 0o644)
    cp = t.run_ringlb(["-t", "-c", p2.config_path])
    t.check(cp.returncode != 0 and "readable by other users" in cp.stderr,
            "world-readable ticket key file refused: " + cp.stderr)
    os.chmod(keyfile, 0o600)
    with open(keyfile, "wb") as f:
        f.write(b"short")
    cp = t.run_ringlb(["-t", "-c", p2.config_path])
    t.check(cp.returncode != 0 and "80 bytes per key" in cp.stderr,
            "malformed key file refused: " + cp.stderr)


@timeout(60)
def test_key_permissions_and_config_errors(t):
    pki = Pki(t)
    crt, key = pki.issue("a", ["a.test"])
    other_crt, other_key = pki.issue("b", ["b.test"])
    cfg = t.config([t.backend()])

    def check(certs, want, **kw):
        cfg["listeners"][0]["tls"] = tls_config(certs, **kw)
        path = t.write_config(cfg, "bad.yaml")
        cp = t.run_ringlb(["-t", "-c", path])
        t.check(cp.returncode == 1 and re.search(want, cp.stderr),
                "want /%s/, got rc %d: %s" % (want, cp.returncode, cp.stderr))

    os.chmod(key, 0o644)
    check([(crt, key)], r"bad\.yaml:\d+: listeners\[0\]\.tls\.certificates\[0\]: .*a\.key: "
          r"private key is readable by other users \(mode 0644\)")
    os.chmod(key, 0o640)  # group-readable is fine (e.g. group ssl-cert)
    check([(crt, os.path.join(t.tmpdir, "missing.key"))], r"missing\.key: No such file")
    check([(crt, other_key)], r"private key does not match certificate")
    check([(key, key)], r"no PEM certificate")
    check([(crt, key)], r"ciphers: \"NOPE\"", ciphers="NOPE")
    check([(crt, key)], r"groups: \"P-999\"", groups="P-999")
    check([(crt, key)], r"min_version: expected \"1.2\" or \"1.3\"", min_version="1.1")
    check([(crt, key)], r"client_ca: .*nothing.pem", client_ca=os.path.join(t.tmpdir,
                                                                               "nothing.pem"))
    cfg["listeners"][0]["redirect_https"] = 443
    check([(crt, key)], r"redirect_https: only for a listener without tls")
    del cfg["listeners"][0]["redirect_https"]
    cfg["listeners"][0]["tls"] = tls_config([(crt, key)])
    cp = t.run_ringlb(["-t", "-c", t.write_config(cfg, "good.yaml")])
    t.eq(cp.returncode, 0, "a valid TLS configuration passes -t (%s)" % cp.stderr)


@timeout(60)
def test_quick_mode_tls(t):
    pki = Pki(t)
    crt, key = pki.issue("a", ["a.test"])
    b = t.backend()
    port = free_port()
    proxy = t.ringlb(args=["--listen", "127.0.0.1:%d" % port, "--cert", crt, "--key", key,
                           "--backend", b.address, "--workers", "1"], port=port)
    cp = curl_https(t, pki, port, "/size/5")
    t.eq(cp.returncode, 0, "quick-mode HTTPS request (%s)" % cp.stderr)
    t.check("TLS: a.test (ECDSA)" in proxy.proc.stderr_text(), "start-up line names the cert")
    cp = t.run_ringlb(["--listen", "127.0.0.1:1", "--cert", crt, "--backend", b.address])
    t.check(cp.returncode == 2 and "--cert and --key go together" in cp.stderr,
            "--cert without --key: " + cp.stderr)


@timeout(60)
def test_client_certificates(t):
    pki = Pki(t)
    server = pki.issue("a", ["a.test"])
    client = pki.issue("client", [], client=True, cn="alice")
    rogue_ca = Pki(t, "rogue")
    rogue = rogue_ca.issue("mallory", [], client=True, cn="mallory")
    cfg, proxy = tls_proxy(t, [t.backend()], [server], client_ca=pki.ca_cert)
    cp = curl_https(t, pki, proxy.port, "/", "a.test", "--cert", client[0], "--key", client[1])
    t.eq(cp.returncode, 0, "client with a certificate from client_ca (%s)" % cp.stderr)
    cp = curl_https(t, pki, proxy.port, "/")
    t.check(cp.returncode != 0, "client without a certificate refused")
    cp = curl_https(t, pki, proxy.port, "/", "a.test", "--cert", rogue[0], "--key", rogue[1])
    t.check(cp.returncode != 0, "certificate from an unknown CA refused")
    cfg2, p2 = tls_proxy(t, [t.backend()], [server], client_ca=pki.ca_cert,
                         verify_client="optional")
    cp = curl_https(t, pki, p2.port, "/")
    t.eq(cp.returncode, 0, "optional: a client without a certificate is served")
    cp = curl_https(t, pki, p2.port, "/", "a.test", "--cert", rogue[0], "--key", rogue[1])
    t.check(cp.returncode != 0, "optional: a bad certificate is still refused")


@timeout(60)
def test_ocsp_staple(t):
    pki = Pki(t)
    crt, key = pki.issue("a", ["a.test"])
    resp = pki.ocsp_response(crt, os.path.join(t.tmpdir, "a.ocsp"))
    cfg = t.config([t.backend()])
    cfg["listeners"][0]["tls"] = {"certificates": [{"cert": crt, "key": key, "ocsp": resp}]}
    proxy = t.ringlb(cfg)
    rc, out = s_client(t, proxy.port, "-servername", "a.test", "-status")
    t.check("OCSP Response Status: successful" in out and "Cert Status: good" in out,
            "stapled OCSP response: " + out[:800])


@timeout(60)
def test_hsts_and_https_redirect(t):
    pki = Pki(t)
    b = t.backend()
    cfg = t.config([b])
    tls_port = free_port()
    cfg["listeners"] = [
        {"address": "127.0.0.1:%d" % free_port(), "redirect_https": tls_port},
        {"address": "127.0.0.1:%d" % tls_port,
         "tls": tls_config([pki.issue("a", ["a.test"])], hsts="8760h",
                           hsts_subdomains=True)},
    ]
    proxy = t.ringlb(cfg)
    plain = proxy.port
    c = t.connect(plain)
    r = c.request("GET", "/some/path?q=1", headers=[("Host", "a.test:%d" % plain)])
    t.eq(r.status, 301, "GET redirect status")
    t.eq(r.get("location"), "https://a.test:%d/some/path?q=1" % tls_port, "Location")
    r = c.request("POST", "/form", headers=[("Host", "a.test")], body=b"x=1")
    t.eq(r.status, 308, "POST redirect keeps the method")
    t.eq(r.get("location"), "https://a.test:%d/form" % tls_port, "Location without a port")
    t.eq(b.stats()["requests"], 0, "nothing reached the backend")
    cp = curl_https(t, pki, tls_port, "/", "a.test", "-D", "-", "-o", "/dev/null")
    t.check(b"strict-transport-security: max-age=31536000; includesubdomains" in
            cp.stdout.lower(), "HSTS on TLS responses: %r" % cp.stdout)
    cp = curl_https(t, pki, tls_port, "/", "a.test", "--http1.1", "-D", "-", "-o", "/dev/null")
    t.check(b"Strict-Transport-Security: max-age=31536000; includeSubDomains" in cp.stdout,
            "HSTS on HTTP/1.1 TLS responses: %r" % cp.stdout)


@timeout(60)
def test_garbage_and_half_handshakes_do_not_hurt(t):
    pki = Pki(t)
    cfg, proxy = tls_proxy(t, [t.backend()], [pki.issue("a", ["a.test"])])
    # plain HTTP on the TLS port: an alert or a close, never a hang
    c = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    c.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
    data = c.recv(100)
    t.check(len(data) < 100, "plain HTTP on a TLS port is refused")
    c.close()
    # a ClientHello cut in the middle, left open; random bytes
    half = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    half.sendall(bytes.fromhex("160301020001"))
    junk = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    junk.sendall(os.urandom(3000))
    t.on_cleanup(half.close)
    t.on_cleanup(junk.close)
    ctx = ssl_ctx(pki)
    for i in range(5):
        status, body, info = https_get(ctx, proxy.port, "/size/100")
        t.eq((status, len(body)), (200, 100), "request %d while junk connections are open" % i)
    # a client that sends its request, close_notify and FIN at once: the
    # response is still written after the peer's close_notify, and the
    # connection is closed (a leak here would hold the drain below)
    for i in range(3):
        s_client(t, proxy.port, "-servername", "a.test",
                 stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    half.close()
    junk.close()
    t.stop_proxy(proxy)
    t.check("drain timeout" not in proxy.proc.stderr_text(),
            "every connection closed before the drain deadline")


@timeout(120)
def test_certificate_reload_under_load_loses_nothing(t):
    pki = Pki(t)
    crt, key = pki.issue("old", ["a.test"])
    live_crt = os.path.join(t.tmpdir, "live.crt")
    live_key = os.path.join(t.tmpdir, "live.key")
    shutil.copy(crt, live_crt)
    shutil.copy(key, live_key)
    os.chmod(live_key, 0o600)
    admin_port = free_port()
    cfg, proxy = tls_proxy(t, [t.backend(), t.backend()], [(live_crt, live_key)], workers=2)
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
    with open(proxy.config_path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    t.stop_proxy(proxy)
    proxy = t.ringlb(cfg, name="reloading")
    ctx = ssl_ctx(pki)
    stop = threading.Event()
    results = {"ok": 0, "bad": []}
    lock = threading.Lock()

    def load():
        deadline = time.monotonic() + t.slow(60)
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                status, body, info = https_get(ctx, proxy.port, "/size/2000")
                good = status == 200 and len(body) == 2000
            except (OSError, ssl.SSLError) as e:
                good, status = False, repr(e)
            with lock:
                if good:
                    results["ok"] += 1
                else:
                    results["bad"].append(status)

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for th in threads:
        th.start()
    time.sleep(0.5)
    # 1: new certificate through SIGHUP
    new_crt, new_key = pki.issue("new", ["a.test", "new.a.test"])
    shutil.copy(new_crt, live_crt)
    shutil.copy(new_key, live_key)
    proxy.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + t.slow(5)
    while "configuration reloaded" not in proxy.proc.stderr_text():
        t.check(time.monotonic() < deadline, "reload logged")
        time.sleep(0.05)
    time.sleep(0.5)
    status, body, info = https_get(ctx, proxy.port)
    sans = [v for k, v in info["cert"].get("subjectAltName", ())]
    t.check("new.a.test" in sans, "new connections get the new certificate: %r" % sans)
    # 2: a broken certificate is refused; the running one stays
    with open(live_crt, "w") as f:
        f.write("not a certificate\n")
    proxy.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + t.slow(5)
    while "reload refused" not in proxy.proc.stderr_text():
        t.check(time.monotonic() < deadline, "refusal logged")
        time.sleep(0.05)
    # 3: the admin API re-reads the files
    third_crt, third_key = pki.issue("third", ["a.test", "third.a.test"])
    shutil.copy(third_crt, live_crt)
    shutil.copy(third_key, live_key)
    a = t.connect(admin_port)
    r = a.request("POST", "/api/tls/reload", headers=[("Host", "admin")])
    t.eq(r.status, 200, "admin TLS reload")
    time.sleep(0.5)
    stop.set()
    for th in threads:
        th.join(t.slow(15))
    status, body, info = https_get(ctx, proxy.port)
    sans = [v for k, v in info["cert"].get("subjectAltName", ())]
    t.check("third.a.test" in sans, "admin reload took effect: %r" % sans)
    t.note("requests during three reloads: %d ok, %d failed" %
           (results["ok"], len(results["bad"])))
    t.check(results["ok"] > 50, "the load ran (%d requests)" % results["ok"])
    t.eq(results["bad"][:5], [], "failed requests")
    # a bad file through the admin API: 422, nothing changes
    with open(live_key, "w") as f:
        f.write("junk")
    r = t.connect(admin_port).request("POST", "/api/tls/reload", headers=[("Host", "admin")])
    t.eq(r.status, 422, "admin reload of a bad key")
    status, body, info = https_get(ctx, proxy.port, "/size/10")
    t.eq(status, 200, "still serving after a refused admin reload")


@timeout(60)
def test_wrk_over_https(t):
    if shutil.which("wrk") is None:
        t.skip("wrk not installed")
    pki = Pki(t)
    cfg, proxy = tls_proxy(t, [t.backend()], [pki.issue("a", ["a.test"])], workers=2)
    import subprocess
    cp = subprocess.run(["wrk", "-t2", "-c16", "-d2s", "https://127.0.0.1:%d/size/512" %
                         proxy.port], capture_output=True, timeout=t.slow(30))
    out = cp.stdout.decode()
    m = re.search(r"(\d+) requests in", out)
    t.check(m and int(m.group(1)) > 100, "wrk ran: " + out)
    t.check("Socket errors" not in out and "Non-2xx" not in out, "no errors: " + out)
    t.note("wrk over https (2 s, 16 connections, python backend): %s requests" % m.group(1))


# -- TLS to backends ------------------------------------------------------------


def tls_pool_proxy(t, backends, cfg_kw=None, **pool_kw):
    cfg = t.config(backends, **(cfg_kw or {}))
    cfg["pools"][0]["tls"] = True
    cfg["pools"][0].update(pool_kw)
    return cfg, t.ringlb(cfg)


@timeout(90)
def test_backend_tls_verified_reused_and_resumed(t):
    pki = Pki(t)
    origin_cert = pki.issue("origin", ["origin.test"], "ec")
    b = t.backend("tls-origin", tls=origin_cert)
    cfg, proxy = tls_pool_proxy(t, [b], tls_ca=pki.ca_cert, tls_name="origin.test")
    c = t.connect(proxy.port)
    for i in range(5):
        r = c.request("GET", "/echo")
        t.eq(r.status, 200, "request %d over TLS to the backend" % i)
    info = r.json()["tls"]
    t.eq(info["sni"], "origin.test", "SNI sent to the backend")
    t.check(info["version"] in ("TLSv1.3", "TLSv1.2"), "negotiated %r" % info["version"])
    t.eq(b.stats()["connections"], 1, "five requests reused one pooled TLS connection")
    # bodies both ways through the re-encrypted connection
    r = c.request("GET", "/size/3000000")
    t.eq((r.status, len(r.body)), (200, 3000000), "large download from a TLS backend")
    payload = os.urandom(2 * 1024 * 1024 + 3)
    r = c.request("POST", "/upload", body=payload)
    import hashlib
    t.eq(r.json()["sha256"], hashlib.sha256(payload).hexdigest(), "upload to a TLS backend")
    r = c.request("GET", "/chunked/200000")
    t.eq((r.status, len(r.body)), (200, 200000), "chunked response from a TLS backend")
    # a new upstream connection resumes the session the backend issued
    cfg["pools"][0]["keepalive"] = 0
    with open(proxy.config_path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    proxy.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + t.slow(5)
    while "configuration reloaded" not in proxy.proc.stderr_text():
        t.check(time.monotonic() < deadline, "reload logged")
        time.sleep(0.05)
    resumed = []
    for i in range(4):
        r = c.request("GET", "/echo")
        t.eq(r.status, 200, "request %d without keep-alive upstream" % i)
        resumed.append(r.json()["tls"]["resumed"])
    t.check(any(resumed[1:]), "later upstream connections resume: %r" % resumed)


@timeout(60)
def test_backend_tls_verification_failures(t):
    pki = Pki(t)
    other = Pki(t, "other")
    good = pki.issue("origin", ["origin.test"])
    b = t.backend("tls-origin", tls=good)
    # wrong name
    cfg, proxy = tls_pool_proxy(t, [b], tls_ca=pki.ca_cert, tls_name="wrong.test")
    r = t.connect(proxy.port).request("GET", "/")
    t.eq(r.status, 502, "a backend certificate for another name is refused")
    t.check("TLS to backend" in proxy.proc.stderr_text(), "the failure is logged")
    # unknown CA
    cfg2, p2 = tls_pool_proxy(t, [b], tls_ca=other.ca_cert, tls_name="origin.test")
    r = t.connect(p2.port).request("GET", "/")
    t.eq(r.status, 502, "a backend certificate from an unknown CA is refused")
    # verification off: served
    cfg3, p3 = tls_pool_proxy(t, [b], tls_verify=False)
    r = t.connect(p3.port).request("GET", "/")
    t.eq(r.status, 200, "tls_verify: false accepts any certificate")
    # no name: the certificate must carry the backend's IP address
    b_name = t.backend("tls-name-only", tls=pki.issue("n", ["unused.test"]))
    cfg4, p4 = tls_pool_proxy(t, [b_name], tls_ca=pki.ca_cert)
    r = t.connect(p4.port).request("GET", "/")
    t.eq(r.status, 502, "without tls_name a certificate lacking the IP is refused")
    b_ip = t.backend("tls-ip", tls=pki.issue("ip", ["IP:127.0.0.1"]))
    cfg4b, p4b = tls_pool_proxy(t, [b_ip], tls_ca=pki.ca_cert)
    r = t.connect(p4b.port).request("GET", "/")
    t.eq(r.status, 200, "without tls_name a certificate for the backend's IP is accepted")
    # a plain HTTP backend behind tls: on waits for a ServerHello that
    # never comes; the handshake counts against upstream_connect: 504
    plain = t.backend("plain")
    cfg5, p5 = tls_pool_proxy(t, [plain], {"timeouts": {"upstream_connect": "500ms"}},
                              tls_verify=False, retries=0)
    r = t.connect(p5.port).request("GET", "/")
    t.eq(r.status, 504, "TLS to a plain backend times out in the handshake")
    # a failed verification is a failed connect: retried on the next backend
    bad = t.backend("tls-other-ca", tls=other.issue("x", ["origin.test"]))
    cfg6, p6 = tls_pool_proxy(t, [bad, b], tls_ca=pki.ca_cert, tls_name="origin.test",
                              retries=1, algorithm="round_robin")
    c = t.connect(p6.port)
    for i in range(4):
        r = c.request("GET", "/")
        t.eq(r.status, 200, "request %d retried on the TLS backend" % i)


@timeout(60)
def test_backend_client_certificate(t):
    pki = Pki(t)
    origin = pki.issue("origin", ["origin.test"])
    client = pki.issue("ringlb-client", [], client=True, cn="ringlb")
    b = t.backend("mtls-origin", tls=(origin[0], origin[1], pki.ca_cert, client))
    cfg, proxy = tls_pool_proxy(t, [b], tls_ca=pki.ca_cert, tls_name="origin.test",
                                tls_cert=client[0], tls_key=client[1])
    r = t.connect(proxy.port).request("GET", "/echo")
    t.eq(r.status, 200, "mTLS to the backend")
    t.eq(r.json()["tls"]["client_cn"], "ringlb", "the backend saw ringlb's certificate")
    cfg2, p2 = tls_pool_proxy(t, [b], tls_ca=pki.ca_cert, tls_name="origin.test")
    r = t.connect(p2.port).request("GET", "/")
    t.eq(r.status, 502, "without a client certificate the backend refuses")
    cfg["pools"][0]["tls_key"] = os.path.join(t.tmpdir, "nope.key")
    cp = t.run_ringlb(["-t", "-c", t.write_config(cfg, "bad.yaml")])
    t.check(cp.returncode != 0 and "nope.key" in cp.stderr, "missing tls_key: " + cp.stderr)


@timeout(60)
def test_backend_tls_health_checks(t):
    pki = Pki(t)
    cert = pki.issue("origin", ["origin.test"])
    b1 = t.backend("tls-1", tls=cert)
    b2 = t.backend("tls-2", tls=cert)
    cfg, proxy = tls_pool_proxy(t, [b1, b2], tls_ca=pki.ca_cert, tls_name="origin.test",
                                health_check={"path": "/status/200", "interval": "200ms",
                                              "timeout": "150ms", "fall": 2, "rise": 1})
    time.sleep(t.slow(1.0))
    t.check("is down" not in proxy.proc.stderr_text(),
            "HTTPS health checks keep healthy TLS backends up: " + proxy.proc.stderr_text())
    t.check(b1.stats()["requests"] >= 3, "the checks reached the backend over TLS")
    b1.kill()
    deadline = time.monotonic() + t.slow(5)
    while "is down" not in proxy.proc.stderr_text():
        t.check(time.monotonic() < deadline, "the dead backend is marked down")
        time.sleep(0.05)
    c = t.connect(proxy.port)
    for i in range(6):
        r = c.request("GET", "/")
        t.eq((r.status, r.body.split()[1]), (200, b"tls-2"), "request %d avoids the dead one" % i)
