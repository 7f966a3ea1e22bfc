"""A minimal raw HTTP/2 client for abuse tests: it writes frames byte by
byte as a misbehaving client would (floods, resets, endless CONTINUATION),
over TLS with ALPN h2, and reads frames back. HPACK is the literal, never
indexed, non-Huffman subset, which every decoder must accept.
"""

import socket
import ssl
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = \
    0x0, 0x1, 0x2, 0x7, 0x8, 0xb


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream & 0x7fffffff) + payload


def _int(n):
    if n < 127:
        return bytes([n])
    out, n = [127], n - 127
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def hpack(headers):
    """Literal header fields without indexing (RFC 7541 §6.2.2)."""
    out = b""
    for name, value in headers:
        name, value = name.encode(), value.encode()
        out += b"\x00" + _int(len(name)) + name + _int(len(value)) + value
    return out


def request_headers(path="/", authority="a.test", method="GET", extra=()):
    return hpack([(":method", method), (":scheme", "https"), (":authority", authority),
                  (":path", path)] + list(extra))


class H2:
    def __init__(self, port, host="a.test", timeout=10.0):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        if self.sock.selected_alpn_protocol() != "h2":
            raise AssertionError("ALPN did not select h2: %r" % self.sock.selected_alpn_protocol())
        self.buf = b""
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """Sends; returns False once the server has closed on us."""
        try:
            self.sock.sendall(data)
            return True
        except (OSError, ssl.SSLError):
            return False

    def read_frame(self, timeout=5.0):
        """The next frame as (type, flags, stream, payload), or None at EOF."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame within %.1fs" % timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionError, ssl.SSLError):
                return None
            if not chunk:
                return None
            self.buf += chunk
        n = int.from_bytes(self.buf[:3], "big")
        f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7fffffff,
             self.buf[9:9 + n])
        self.buf = self.buf[9 + n:]
        return f

    def frames_until(self, pred, timeout=10.0, limit=100000):
        """Reads frames until pred(frame) or EOF; returns (matching frame or
        None, frames read)."""
        seen = []
        deadline = time.monotonic() + timeout
        while len(seen) < limit:
            f = self.read_frame(max(0.05, deadline - time.monotonic()))
            if f is None:
                return None, seen
            seen.append(f)
            if f[0] == SETTINGS and not f[1] & ACK:
                self.try_send(frame(SETTINGS, ACK, 0))
            if pred(f):
                return f, seen
        return None, seen

    def read_body(self, stream, timeout=10.0):
        """The DATA of `stream` up to END_STREAM, or None if the connection
        ended first; raises TimeoutError when it does not end in time."""
        body = b""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("stream %d did not end within %.1fs" % (stream, timeout))
            f = self.read_frame(left)
            if f is None:
                return None
            if f[0] == DATA and f[2] == stream:
                body += f[3]
                if f[1] & END_STREAM:
                    return body

    def goaway_code(self, timeout=10.0):
        """Reads until GOAWAY; returns its error code (None if the
        connection ended without one)."""
        f, _ = self.frames_until(lambda f: f[0] == GOAWAY, timeout)
        return None if f is None else int.from_bytes(f[3][4:8], "big")

    def closed_within(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.read_frame(max(0.05, deadline - time.monotonic())) is None:
                    return True
            except TimeoutError:
                return False
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
