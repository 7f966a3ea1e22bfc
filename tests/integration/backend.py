#!/usr/bin/env python3
"""A small HTTP/1.1 origin server for ringlb's integration tests.

Raw sockets, one thread per connection, exact control over every byte it
sends. Run it as a process:

    python3 backend.py [--name NAME] [--port PORT] [--idle-close MS]
                       [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]

With --tls-cert it speaks HTTPS (Python's ssl module); with --tls-client-ca
it also demands a client certificate signed by that CA.

It binds 127.0.0.1 (port 0 = ephemeral), prints "READY <port>" on stdout and
serves until killed. It can also be used in-process via `Backend(...)`.

Behaviour by path (the query string is ignored for dispatch):

  /                     200, text "backend NAME METHOD TARGET"
  /echo, /upload        200, JSON with the request line, headers, trailers and
                        the body's byte count, sha256 and crc32
  /upload?delay=MS      waits MS milliseconds before it reads the body
  /100                  like /upload, but answers "Expect: 100-continue" with
                        an interim "100 Continue" before reading the body
  /size/N               N bytes of the test pattern, Content-Length
  /chunked/N            N bytes of the test pattern, chunked, with a trailer
                        X-Body-Crc32
  /close/N              N bytes, neither Content-Length nor chunked: the end
                        of the body is the connection close
  /sleep/MS             sleeps MS milliseconds, then 200
  /status/N             status N (no body for 1xx, 204 and 304)
  /103                  an interim "103 Early Hints", then 200
  /hop                  200 with hop-by-hop response fields that a proxy must
                        remove (Connection, the field it names, Keep-Alive,
                        Proxy-Connection)
  /crash-after-head     head with Content-Length 1000000, 1000 bytes, then RST
  /crash-before-head    closes the connection without a response
  /bad-response         a response that is not HTTP
  /cache/ANY?...         a cacheable resource shaped by the query (values
                        %-decoded): cc=Cache-Control, expires=SECONDS (from
                        now), lm=SECONDS (Last-Modified that long ago),
                        etag=TAG (quoted; If-None-Match matching it gets 304,
                        as does If-Modified-Since >= lm), vary=FIELDS,
                        cookie=1 (Set-Cookie), size=N (pattern bytes, else a
                        text body naming the counter), chunked=1,
                        type=MEDIA, status=N, delay=MS (before the head),
                        enc=gzip (a pre-compressed body),
                        echo=FIELD (the request's FIELD value in X-Echo),
                        hdr=NAME:VALUE|NAME:VALUE (extra response fields);
                        every request to the target is counted
  /count?t=TARGET       JSON {"n": requests seen for that target (path and
                        query of a /cache request), "last": its request
                        fields}
  /stats                JSON {accepted, connections, requests, active}; the
                        /stats requests themselves are not counted, and
                        "connections" counts only connections that served at
                        least one other request

The test pattern: byte i of every generated body is PATTERN_BLOCK[i % P], so a
receiver can check any byte range without storing the body.
"""

import argparse
import email.utils
import gzip
import hashlib
import json
import random
import socket
import struct
import threading
import time
import urllib.parse
import zlib

PATTERN_PERIOD = 65521  # prime, so no buffer size lines up with it by accident
PATTERN_BLOCK = random.Random(20240607).randbytes(PATTERN_PERIOD)
# 16 periods (~1 MiB): sending this buffer repeatedly keeps the pattern aligned.
PATTERN_SEND = PATTERN_BLOCK * 16

HEAD_MAX = 256 * 1024
RECV_SIZE = 1 << 20


def pattern_chunks(n):
    """Yields memoryviews that together are the first n bytes of the pattern."""
    view = memoryview(PATTERN_SEND)
    while n > 0:
        k = min(n, len(view))
        yield view[:k]
        n -= k


class ClientGone(Exception):
    pass


class Reader:
    """Buffered reads from a socket: request heads, then body bytes."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.scratch = bytearray(RECV_SIZE)

    def _recv_more(self):
        n = self.sock.recv_into(self.scratch)
        if n == 0:
            raise ClientGone()
        self.buf += memoryview(self.scratch)[:n]

    def read_head(self):
        """Returns the head (bytes, without the blank line), or None on a
        clean EOF between requests."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[: end + 4]
                return head
            if len(self.buf) > HEAD_MAX:
                raise ValueError("request head too large")
            try:
                self._recv_more()
            except ClientGone:
                if self.buf:
                    raise
                return None

    def read_line(self):
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                return line
            if len(self.buf) > HEAD_MAX:
                raise ValueError("line too long")
            self._recv_more()

    def read_some(self, limit):
        """Returns up to `limit` (> 0) body bytes as a memoryview that is only
        valid until the next call."""
        if self.buf:
            k = min(limit, len(self.buf))
            piece = bytes(self.buf[:k])
            del self.buf[:k]
            return memoryview(piece)
        n = self.sock.recv_into(self.scratch, min(limit, RECV_SIZE))
        if n == 0:
            raise ClientGone()
        return memoryview(self.scratch)[:n]

    def read_exact(self, n):
        parts = []
        while n > 0:
            piece = self.read_some(n)
            parts.append(bytes(piece))
            n -= len(piece)
        return b"".join(parts)


class Request:
    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value), as received
        self.path = target.split("?", 1)[0]
        self.trailers = []

    def get(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def get_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def tokens(self, name):
        out = []
        for v in self.get_all(name):
            out += [t.strip().lower() for t in v.split(",") if t.strip()]
        return out

    def is_chunked(self):
        te = self.tokens("transfer-encoding")
        return bool(te) and te[-1] == "chunked"

    def keep_alive(self):
        conn = self.tokens("connection")
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


def parse_head(head):
    lines = head.split(b"\r\n")
    parts = lines[0].decode("latin-1").split(" ")
    if len(parts) != 3:
        raise ValueError("bad request line %r" % lines[0])
    headers = []
    for line in lines[1:]:
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ValueError("bad header line %r" % line)
        headers.append((name, value.strip(" \t")))
    return Request(parts[0], parts[1], parts[2], headers)


class BodyStats:
    def __init__(self):
        self.bytes = 0
        self.sha = hashlib.sha256()
        self.crc = 0

    def update(self, piece):
        self.bytes += len(piece)
        self.sha.update(piece)
        self.crc = zlib.crc32(piece, self.crc)

    def as_dict(self):
        return {
            "bytes": self.bytes,
            "sha256": self.sha.hexdigest(),
            "crc32": self.crc,
        }


def read_body(reader, req, sink):
    """Reads the request body (Content-Length or chunked) into sink(piece)."""
    if req.is_chunked():
        while True:
            line = reader.read_line()
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                break
            while size > 0:
                piece = reader.read_some(size)
                sink(piece)
                size -= len(piece)
            if reader.read_line() != b"":
                raise ValueError("missing CRLF after chunk")
        while True:  # trailer section
            line = reader.read_line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            req.trailers.append((name, value.strip()))
        return
    cl = req.get("content-length")
    if cl is None:
        return
    n = int(cl)
    while n > 0:
        piece = reader.read_some(n)
        sink(piece)
        n -= len(piece)


class Backend:
    def __init__(self, name="backend", port=0, idle_close_ms=None, tls=None):
        self.name = name
        self.tls = tls  # an ssl.SSLContext, or None
        self.idle_close = idle_close_ms / 1000.0 if idle_close_ms else None
        self.lock = threading.Lock()
        self.accepted = 0
        self.connections = 0
        self.requests = 0
        self.active = 0
        self.counts = {}  # /cache targets -> requests seen
        self.last_headers = {}
        self.born = int(time.time())
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]

    def start(self):
        t = threading.Thread(target=self.serve_forever, daemon=True)
        t.start()
        return self

    def serve_forever(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.active += 1
            threading.Thread(target=self.serve_conn, args=(sock,), daemon=True).start()

    def close(self):
        self.listener.close()

    # -- one connection --------------------------------------------------

    def serve_conn(self, sock):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                sock.settimeout(10)
                sock = self.tls.wrap_socket(sock, server_side=True)
            except (OSError, ValueError):
                sock.close()
                with self.lock:
                    self.active -= 1
                return
        reader = Reader(sock)
        counted = False
        try:
            while True:
                sock.settimeout(self.idle_close if self.idle_close else 300)
                try:
                    head = reader.read_head()
                except socket.timeout:
                    return  # idle keep-alive connection: close it
                if head is None:
                    return
                sock.settimeout(300)
                req = parse_head(head)
                if req.path != "/stats":
                    with self.lock:
                        self.requests += 1
                        if not counted:
                            self.connections += 1
                            counted = True
                if not self.handle(sock, reader, req):
                    return
        except (ClientGone, OSError, ValueError):  # OSError: resets, timeouts, TLS errors
            return
        finally:
            with self.lock:
                self.active -= 1
            try:
                sock.close()
            except OSError:
                pass

    def handle(self, sock, reader, req):
        """Serves one request; returns whether the connection stays open."""
        path = req.path
        keep = req.keep_alive()

        if path == "/crash-before-head":
            return False
        if path == "/100" and "100-continue" in req.tokens("expect"):
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

        query = dict(kv.partition("=")[::2] for kv in req.target.partition("?")[2].split("&") if kv)
        if "delay" in query:  # hold the body unread for a while (backpressure tests)
            time.sleep(int(query["delay"]) / 1000.0)
        body = BodyStats()
        read_body(reader, req, body.update)

        def reply(status, payload=b"", ctype="text/plain", extra=()):
            self.send_response(sock, req, status, payload, keep, ctype, extra)
            return keep

        if path in ("/echo", "/upload", "/100"):
            doc = {
                "backend": self.name,
                "method": req.method,
                "target": req.target,
                "version": req.version,
                "headers": req.headers,
                "trailers": req.trailers,
                "chunked": req.is_chunked(),
            }
            if hasattr(sock, "version"):  # TLS: what the client negotiated
                peer = sock.getpeercert() or {}
                cn = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
                doc["tls"] = {"version": sock.version(), "sni": getattr(sock, "sni_name", None),
                              "resumed": sock.session_reused,
                              "client_cn": cn[0] if cn else None}
            doc.update(body.as_dict())
            return reply(200, json.dumps(doc).encode(), "application/json")
        if path.startswith("/cache/"):
            return self.cacheable(sock, req, query, keep)
        if path == "/count":
            t = urllib.parse.unquote(query.get("t", ""))
            with self.lock:
                doc = {"n": self.counts.get(t, 0), "last": self.last_headers.get(t, {})}
            return reply(200, json.dumps(doc).encode(), "application/json")
        if path == "/stats":
            with self.lock:
                doc = {
                    "accepted": self.accepted,
                    "connections": self.connections,
                    "requests": self.requests,
                    "active": self.active,
                }
            return reply(200, json.dumps(doc).encode(), "application/json")
        if path.startswith("/size/"):
            n = int(path[6:])
            head = self.status_line(200) + "Content-Type: application/octet-stream\r\n"
            head += "Content-Length: %d\r\n" % n
            head += self.conn_field(req, keep) + "\r\n"
            sock.sendall(head.encode())
            if req.method != "HEAD":
                for piece in pattern_chunks(n):
                    sock.sendall(piece)
            return keep
        if path.startswith("/chunked/"):
            n = int(path[9:])
            head = self.status_line(200) + "Content-Type: application/octet-stream\r\n"
            head += "Transfer-Encoding: chunked\r\nTrailer: X-Body-Crc32\r\n"
            head += self.conn_field(req, keep) + "\r\n"
            sock.sendall(head.encode())
            if req.method == "HEAD":
                return keep
            crc = 0
            step = 40000  # an odd chunk size: chunk borders never match buffers
            for piece in pattern_chunks(n):
                for off in range(0, len(piece), step):
                    part = piece[off : off + step]
                    crc = zlib.crc32(part, crc)
                    sock.sendall(b"%x\r\n" % len(part) + bytes(part) + b"\r\n")
            sock.sendall(b"0\r\nX-Body-Crc32: %d\r\n\r\n" % crc)
            return keep
        if path.startswith("/close/"):
            n = int(path[7:])
            head = self.status_line(200) + "Content-Type: application/octet-stream\r\n\r\n"
            sock.sendall(head.encode())
            if req.method != "HEAD":
                for piece in pattern_chunks(n):
                    sock.sendall(piece)
            sock.shutdown(socket.SHUT_WR)
            return False
        if path.startswith("/sleep/"):
            ms = int(path[7:])
            time.sleep(ms / 1000.0)
            return reply(200, b"slept %d\n" % ms)
        if path.startswith("/status/"):
            code = int(path[8:])
            if code == 304:
                return reply(304, extra=[("ETag", '"v1"')])
            return reply(code, b"status %d\n" % code)
        if path == "/103":
            sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            return reply(200, b"after early hints\n")
        if path == "/hop":
            extra = [
                ("Connection", "X-Hop-Resp"),
                ("X-Hop-Resp", "secret"),
                ("Keep-Alive", "timeout=5"),
                ("Proxy-Connection", "keep-alive"),
                ("X-End-To-End", "kept"),
            ]
            self.send_response(sock, req, 200, b"hop\n", keep, "text/plain", extra, conn=False)
            return keep
        if path == "/crash-after-head":
            sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + bytes(PATTERN_BLOCK[:1000])
            )
            time.sleep(0.05)
            # SO_LINGER with a zero timeout: close() sends RST.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if path == "/bad-response":
            sock.sendall(b"this is not HTTP at all\r\n\r\n")
            return False
        text = "backend %s %s %s\n" % (self.name, req.method, req.target)
        return reply(200, text.encode())

    def cacheable(self, sock, req, query, keep):
        """/cache/...: a response shaped by the query (see the module doc)."""
        q = {k: urllib.parse.unquote(v) for k, v in query.items()}
        with self.lock:
            n = self.counts.get(req.target, 0) + 1
            self.counts[req.target] = n
            self.last_headers[req.target] = {k.lower(): v for k, v in req.headers}
        now = int(time.time())
        extra = [("Date", email.utils.formatdate(now, usegmt=True))]
        if "cc" in q:
            extra.append(("Cache-Control", q["cc"]))
        if "expires" in q:
            extra.append(("Expires", email.utils.formatdate(now + int(q["expires"]), usegmt=True)))
        lm = None
        if "lm" in q:
            lm = self.born - int(q["lm"])
            extra.append(("Last-Modified", email.utils.formatdate(lm, usegmt=True)))
        etag = '"%s"' % q["etag"] if "etag" in q else None
        if etag:
            extra.append(("ETag", etag))
        if "vary" in q:
            extra.append(("Vary", q["vary"]))
        if q.get("cookie") == "1":
            extra.append(("Set-Cookie", "session=%d; Path=/" % n))
        if "echo" in q:
            extra.append(("X-Echo", req.get(q["echo"]) or "-"))
        for item in q.get("hdr", "").split("|") if q.get("hdr") else ():
            k, _, v = item.partition(":")
            extra.append((k.strip(), v.strip()))
        extra.append(("X-Count", str(n)))
        inm = req.get("if-none-match")
        ims = req.get("if-modified-since")
        fresh = False
        if etag and inm is not None:
            # weak comparison (RFC 9110 §13.1.2): W/ is ignored on both sides
            tags = [t.strip() for t in inm.split(",")]
            fresh = etag in [t[2:] if t.startswith("W/") else t for t in tags] or \
                inm.strip() == "*"
        elif lm is not None and ims is not None:
            t = email.utils.parsedate_to_datetime(ims).timestamp()
            fresh = t >= lm
        if fresh:
            self.send_response(sock, req, 304, b"", keep, "", extra)
            return keep
        status = int(q.get("status", "200"))
        if "size" in q and int(q["size"]) > len(PATTERN_SEND) and "enc" not in q:
            return self.stream_pattern(sock, req, keep, status, int(q["size"]),
                                       q.get("type", "text/plain"), extra, q.get("chunked") == "1")
        if "size" in q:
            payload = bytes(PATTERN_SEND[: int(q["size"])])
        else:
            payload = ("count %d of %s\n" % (n, req.target)).encode()
        if q.get("enc") == "gzip":
            payload = gzip.compress(payload)
            extra.append(("Content-Encoding", "gzip"))
        ctype = q.get("type", "text/plain")
        if q.get("chunked") == "1":
            head = self.status_line(status) + "Content-Type: %s\r\n" % ctype
            head += "".join("%s: %s\r\n" % kv for kv in extra)
            head += "Transfer-Encoding: chunked\r\n" + self.conn_field(req, keep) + "\r\n"
            data = head.encode("latin-1")
            if req.method != "HEAD":
                for off in range(0, len(payload), 7000):
                    part = payload[off : off + 7000]
                    data += b"%x\r\n" % len(part) + part + b"\r\n"
                data += b"0\r\n\r\n"
            sock.sendall(data)
            return keep
        self.send_response(sock, req, status, payload, keep, ctype, extra)
        return keep

    def stream_pattern(self, sock, req, keep, status, n, ctype, extra, chunked):
        """A big /cache/ body: the test pattern streamed, not built in memory."""
        head = self.status_line(status) + "Content-Type: %s\r\n" % ctype
        head += "".join("%s: %s\r\n" % kv for kv in extra)
        head += "Transfer-Encoding: chunked\r\n" if chunked else "Content-Length: %d\r\n" % n
        sock.sendall((head + self.conn_field(req, keep) + "\r\n").encode("latin-1"))
        if req.method == "HEAD":
            return keep
        for piece in pattern_chunks(n):
            if chunked:
                sock.sendall(b"%x\r\n" % len(piece))
            sock.sendall(piece)
            if chunked:
                sock.sendall(b"\r\n")
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        return keep

    @staticmethod
    def status_line(code):
        reasons = {100: "Continue", 200: "OK", 204: "No Content", 304: "Not Modified",
                   404: "Not Found", 500: "Internal Server Error"}
        return "HTTP/1.1 %d %s\r\n" % (code, reasons.get(code, "Status"))

    @staticmethod
    def conn_field(req, keep):
        if not keep:
            return "Connection: close\r\n"
        if req.version == "HTTP/1.0":
            return "Connection: keep-alive\r\n"
        return ""

    def send_response(self, sock, req, code, payload, keep, ctype, extra=(), conn=True):
        head = self.status_line(code)
        head += "Server: test-backend/%s\r\n" % self.name
        for k, v in extra:
            head += "%s: %s\r\n" % (k, v)
        bodyless = code < 200 or code in (204, 304)
        if not bodyless:
            head += "Content-Type: %s\r\nContent-Length: %d\r\n" % (ctype, len(payload))
        if conn:
            head += self.conn_field(req, keep)
        head += "\r\n"
        data = head.encode("latin-1")
        if not bodyless and req.method != "HEAD":
            data += payload
        sock.sendall(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="backend")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--idle-close", type=int, metavar="MS",
                    help="close keep-alive connections idle for MS milliseconds")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate chain")
    ap.add_argument("--tls-key", help="... and this key")
    ap.add_argument("--tls-client-ca", help="require client certificates from this CA")
    args = ap.parse_args()
    tls = None
    if args.tls_cert:
        import ssl
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            tls.load_verify_locations(args.tls_client_ca)
            tls.verify_mode = ssl.CERT_REQUIRED

        def note_sni(sslsock, name, ctx):
            sslsock.sni_name = name
        tls.sni_callback = note_sni
    server = Backend(args.name, args.port, args.idle_close, tls)
    print("READY %d" % server.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
