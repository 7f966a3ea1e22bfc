"""Helpers for ringlb's integration tests: ports, processes with guaranteed
clean-up, a raw HTTP/1.1 client with timeouts, config files, an RSS sampler.

Every test gets a `T` (test context). Everything it starts (ringlb, backends,
sockets, temporary files) is registered with it and torn down by
`T.cleanup()`, which also fails the test if a ringlb process crashed or (with
--sanitized) printed a sanitizer report.
"""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import backend as backend_mod  # noqa: E402  (the test origin; shares the pattern)

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
MiB = 1 << 20
GiB = 1 << 30


def timeout(seconds):
    """Decorator: the hard time limit of a test (the default is 60 s)."""
    def mark(fn):
        fn.timeout = seconds
        return fn
    return mark


class Skip(Exception):
    pass


class TestFailure(AssertionError):
    pass


class TestTimeout(Exception):
    pass


# -- ports ------------------------------------------------------------------


def free_port():
    """An ephemeral port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A port on 127.0.0.1 where nothing listens (connect gets refused)."""
    for _ in range(20):
        port = free_port()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except ConnectionRefusedError:
            return port
        except OSError:
            pass
    raise RuntimeError("could not find a closed port")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port, timeout, proc=None):
    """Polls until 127.0.0.1:port accepts connections. Raises if `proc` exits
    first or the time runs out."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 1):
        if port_open(port):
            return
        if proc is not None and proc.poll() is not None:
            raise TestFailure("%s exited with status %s before listening on port %d"
                              % (proc.name, proc.returncode, port))
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    raise TestFailure("nothing accepts connections on port %d after %.1fs" % (port, timeout))


# -- processes --------------------------------------------------------------


class Proc:
    """A child process whose stderr (and optionally stdout) goes to files in
    the test's directory. Stopped by pid only."""

    def __init__(self, name, argv, tmpdir, stdout_pipe=False, env=None):
        self.name = name
        self.argv = argv
        self.stderr_path = os.path.join(tmpdir, "%s.stderr" % name)
        self.stdout_path = os.path.join(tmpdir, "%s.stdout" % name)
        self._err = open(self.stderr_path, "wb")
        self._out = None if stdout_pipe else open(self.stdout_path, "wb")
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._out,
            stderr=self._err,
            env=env,
            cwd=tmpdir,
        )
        self.pid = self.popen.pid
        self.expected_signal = None  # set when we kill it on purpose
        self.stopped_at = None

    @property
    def returncode(self):
        return self.popen.returncode

    def poll(self):
        return self.popen.poll()

    def send_signal(self, sig):
        if self.popen.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends `sig`, waits up to `timeout`, then SIGKILL. Returns the exit
        status and whether the process needed the SIGKILL."""
        killed = False
        if self.popen.poll() is None:
            self.stopped_at = time.monotonic()
            self.send_signal(sig)
            if self.wait(timeout) is None:
                killed = True
                self.send_signal(signal.SIGKILL)
                self.wait(10)
        self.close_files()
        return self.popen.returncode, killed

    def kill(self):
        self.expected_signal = signal.SIGKILL
        return self.stop(signal.SIGKILL, 5)

    def close_files(self):
        for f in (self._err, self._out):
            if f and not f.closed:
                f.close()
        if self.popen.stdout:
            self.popen.stdout.close()

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, lines=40):
        return "\n".join(self.stderr_text().splitlines()[-lines:])


class BackendProc:
    """A tests/integration/backend.py process."""

    def __init__(self, t, name, idle_close_ms=None, tls=None):
        argv = [sys.executable, os.path.join(HERE, "backend.py"), "--name", name]
        if idle_close_ms:
            argv += ["--idle-close", str(idle_close_ms)]
        if tls:  # (cert, key) or (cert, key, client_ca)
            argv += ["--tls-cert", tls[0], "--tls-key", tls[1]]
            if len(tls) > 2 and tls[2]:
                argv += ["--tls-client-ca", tls[2]]
        self.name = name
        self.tls = tls
        self.proc = Proc("backend-" + name, argv, t.tmpdir, stdout_pipe=True)
        line = _read_line_with_timeout(self.proc.popen.stdout, 10)
        m = re.match(r"READY (\d+)", line or "")
        if not m:
            raise TestFailure("backend %s did not start: %r\n%s"
                              % (name, line, self.proc.stderr_tail()))
        self.port = int(m.group(1))
        self.address = "127.0.0.1:%d" % self.port

    def stats(self):
        """Counters, fetched over a direct connection (not counted)."""
        if self.tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            if len(self.tls) > 3:  # (cert, key, client_ca, (client_cert, client_key))
                ctx.load_cert_chain(*self.tls[3])
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.port), 5)) as s:
                s.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    piece = s.recv(65536)
                    if not piece:
                        break
                    data += piece
            return json.loads(data.partition(b"\r\n\r\n")[2])
        resp = request(self.port, "GET", "/stats", timeout=5)
        return json.loads(resp.body)

    def kill(self):
        self.proc.kill()


def _read_line_with_timeout(pipe, timeout):
    result = []
    th = threading.Thread(target=lambda: result.append(pipe.readline().decode()), daemon=True)
    th.start()
    th.join(timeout)
    return result[0] if result else None


# -- YAML -------------------------------------------------------------------


def to_yaml(value, indent=0):
    """A small YAML emitter for dicts, lists and scalars (block style)."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append("%s%s:" % (pad, k))
                lines.append(to_yaml(v, indent + 1))
            else:
                lines.append("%s%s: %s" % (pad, k, _scalar(v)))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                sub = to_yaml(item, indent + 1).splitlines()
                lines.append("%s- %s" % (pad, sub[0].lstrip()))
                lines.extend(sub[1:])
            else:
                lines.append("%s- %s" % (pad, _scalar(item)))
    else:
        lines.append(pad + _scalar(value))
    return "\n".join(lines)


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (dict, list)):
        return "{}" if isinstance(v, dict) else "[]"
    s = str(v)
    if re.fullmatch(r"[A-Za-z0-9_./:\-]+", s) and s not in ("yes", "no", "on", "off", "null"):
        return s
    return json.dumps(s)


# -- raw HTTP client ----------------------------------------------------------


class Response:
    def __init__(self, version, status, reason, headers):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = b""
        self.trailers = []
        self.chunked = False
        self.interim = []  # 1xx responses seen before this one
        self.body_bytes = 0

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
            out += [x.strip().lower() for x in v.split(",") if x.strip()]
        return out

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %d %r, %d body bytes>" % (self.version, self.status,
                                                       self.headers, self.body_bytes)


class Conn:
    """A raw client connection with a timeout on every operation."""

    def __init__(self, port, timeout=10.0, t=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.scratch = bytearray(1 << 20)
        self.eof = False
        if t is not None:
            t.on_cleanup(self.close)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def send_request(self, method, target, headers=(), body=None, version="HTTP/1.1",
                     host="localhost"):
        head = "%s %s %s\r\n" % (method, target, version)
        names = {k.lower() for k, _ in headers}
        if host is not None and "host" not in names:
            head += "Host: %s\r\n" % host
        if body is not None and "content-length" not in names and \
                "transfer-encoding" not in names:
            head += "Content-Length: %d\r\n" % len(body)
        for k, v in headers:
            head += "%s: %s\r\n" % (k, v)
        self.send(head.encode("latin-1") + b"\r\n" + (body or b""))

    # reading

    def _fill(self):
        if self.eof:
            raise TestFailure("connection closed by peer")
        n = self.sock.recv_into(self.scratch)
        if n == 0:
            self.eof = True
            raise TestFailure("connection closed by peer")
        self.buf += memoryview(self.scratch)[:n]

    def _read_until(self, sep, limit=1 << 20):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[: i + len(sep)]
                return out
            if len(self.buf) > limit:
                raise TestFailure("no %r within %d bytes" % (sep, limit))
            self._fill()

    def _read_exact(self, n, sink):
        while n > 0:
            if not self.buf:
                self._fill()
            k = min(n, len(self.buf))
            sink(memoryview(self.buf)[:k])
            del self.buf[:k]
            n -= k

    def _read_to_eof(self, sink):
        while True:
            if self.buf:
                sink(memoryview(self.buf))
                self.buf.clear()
            if self.eof:
                return
            n = self.sock.recv_into(self.scratch)
            if n == 0:
                self.eof = True
                return
            sink(memoryview(self.scratch)[:n])

    def read_head(self):
        head = self._read_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise TestFailure("bad status line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or name != name.strip():
                raise TestFailure("bad response header line %r" % line)
            headers.append((name, value.strip(" \t")))
        return Response(m.group(1), int(m.group(2)), m.group(3) or "", headers)

    def read_response(self, method="GET", sink=None, keep_interim=True):
        """Reads one final response (collecting 1xx ones in .interim). With
        `sink`, body bytes go to sink(memoryview) instead of .body."""
        interim = []
        while True:
            resp = self.read_head()
            if resp.status >= 200 or resp.status == 101:
                break
            interim.append(resp)
        resp.interim = interim
        parts = []

        def collect(piece):
            resp.body_bytes += len(piece)
            if sink is not None:
                sink(piece)
            else:
                parts.append(bytes(piece))

        if method == "HEAD" or resp.status in (204, 304) or resp.status < 200:
            pass
        elif "chunked" in resp.tokens("transfer-encoding"):
            resp.chunked = True
            while True:
                line = self._read_until(b"\r\n", 4096)
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                self._read_exact(size, collect)
                if self._read_until(b"\r\n", 2) != b"":
                    raise TestFailure("missing CRLF after a chunk")
            while True:
                line = self._read_until(b"\r\n", 16384)
                if not line:
                    break
                name, _, value = line.decode("latin-1").partition(":")
                resp.trailers.append((name, value.strip()))
        elif resp.get("content-length") is not None:
            self._read_exact(int(resp.get("content-length")), collect)
        else:
            self._read_to_eof(collect)
        resp.body = b"".join(parts)
        return resp

    def read_interim(self):
        """Reads one response head that must be a 1xx."""
        resp = self.read_head()
        if resp.status >= 200:
            raise TestFailure("expected a 1xx response, got %d" % resp.status)
        return resp

    def request(self, method, target, headers=(), body=None, **kw):
        self.send_request(method, target, headers, body, **kw)
        return self.read_response(method)

    def closed_within(self, timeout):
        """True if the peer closes (FIN or RST) within `timeout` seconds with no
        further bytes; raises if unexpected bytes arrive."""
        if self.eof:
            return True
        if self.buf:
            raise TestFailure("unexpected bytes after the response: %r" % bytes(self.buf[:200]))
        deadline = time.monotonic() + timeout
        old = self.sock.gettimeout()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(4096)
                except socket.timeout:
                    return False
                except ConnectionResetError:
                    return True
                if not data:
                    self.eof = True
                    return True
                raise TestFailure("unexpected bytes after the response: %r" % data[:200])
        finally:
            self.sock.settimeout(old)


def request(port, method, target, headers=(), body=None, timeout=10.0, **kw):
    """One request on a fresh connection."""
    c = Conn(port, timeout)
    try:
        return c.request(method, target, headers, body, **kw)
    finally:
        c.close()


# -- the test pattern ---------------------------------------------------------


def pattern_sha256(n):
    h = hashlib.sha256()
    for piece in backend_mod.pattern_chunks(n):
        h.update(piece)
    return h.hexdigest()


class PatternChecker:
    """A body sink that checks bytes against the backend's test pattern."""

    def __init__(self):
        self.offset = 0
        self.bad_at = None
        self.sha = hashlib.sha256()
        self.ref = memoryview(backend_mod.PATTERN_BLOCK * 18)  # > 16 periods + a period

    def __call__(self, piece):
        self.sha.update(piece)
        period = backend_mod.PATTERN_PERIOD
        pos = 0
        while pos < len(piece):
            k = min(len(piece) - pos, 16 * period)
            start = (self.offset + pos) % period
            if self.bad_at is None and \
                    bytes(piece[pos:pos + k]) != bytes(self.ref[start:start + k]):
                self.bad_at = self.offset + pos
            pos += k
        self.offset += len(piece)


# -- RSS sampling -------------------------------------------------------------


def read_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples VmRSS of a pid every `interval` seconds on a thread."""

    def __init__(self, pid, interval=0.1):
        self.pid = pid
        self.interval = interval
        self.max_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            kib = read_rss_kib(self.pid)
            if kib is not None:
                self.samples += 1
                self.max_kib = max(self.max_kib, kib)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


# -- the test context -----------------------------------------------------------


class Options:
    binary = None
    sanitized = False
    verbose = False
    proxy = "ringlb"  # or "nginx": a debugging stand-in, see nginx_standin.py
    tmp_root = None  # the run's temporary directory (tests make theirs inside)


class Ringlb:
    """A running proxy (ringlb, or nginx in stand-in mode)."""

    def __init__(self, proc, port, config, config_path):
        self.proc = proc
        self.port = port
        self.config = config
        self.config_path = config_path
        self.pid = proc.pid


class T:
    """Per-test context: owns every process, socket and file a test makes."""

    def __init__(self, name, opts):
        self.name = name
        self.opts = opts
        self.sanitized = opts.sanitized
        self.tmpdir = tempfile.mkdtemp(prefix=name.rsplit(".", 1)[-1] + "-", dir=opts.tmp_root)
        self.proxies = []
        self.backends = []
        self._cleanups = []

    # time and size scaling

    def slow(self, seconds):
        """A time allowance, doubled for sanitized builds."""
        return seconds * (2.5 if self.sanitized else 1)

    def big(self):
        """The size of the "1 GiB" transfers."""
        return 64 * MiB if self.sanitized else GiB

    def log(self, msg):
        """Test output, shown with -v or when the test fails."""
        print(msg, flush=True)

    def note(self, msg):
        """A measurement worth showing even when the test passes."""
        print("NOTE: " + msg, flush=True)

    # assertions

    def fail(self, msg):
        raise TestFailure(msg)

    def check(self, cond, msg):
        if not cond:
            raise TestFailure(msg)

    def eq(self, got, want, what="value"):
        if got != want:
            raise TestFailure("%s: got %r, want %r" % (what, got, want))

    def skip(self, reason):
        raise Skip(reason)

    def on_cleanup(self, fn):
        self._cleanups.append(fn)

    # processes

    def backend(self, name=None, idle_close_ms=None, tls=None):
        name = name or "b%d" % (len(self.backends) + 1)
        b = BackendProc(self, name, idle_close_ms, tls)
        self.backends.append(b)
        return b

    def backends_n(self, n, **kw):
        return [self.backend(**kw) for _ in range(n)]

    def config(self, backends, **overrides):
        """A config dict: one listener on a free port, one pool "app" with the
        given backends (BackendProc or "host:port"), short drain, workers 1."""
        cfg = {
            "workers": 1,
            "log_level": "info",
            "listeners": [{"address": "127.0.0.1:%d" % free_port()}],
            "pools": [{
                "name": "app",
                "algorithm": "round_robin",
                "keepalive": 16,
                "keepalive_timeout": "60s",
                "retries": 1,
                "backends": [{"address": _addr(b)} for b in backends],
            }],
            "timeouts": {"drain": "5s"},
        }
        for k, v in overrides.items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k].update(v)
            else:
                cfg[k] = v
        return cfg

    def write_file(self, name, text):
        path = os.path.join(self.tmpdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def write_config(self, cfg, name="ringlb.yaml"):
        return self.write_file(name, to_yaml(cfg) + "\n")

    def ringlb(self, cfg=None, args=None, port=None, name="ringlb", env=None, binary=None):
        """Starts a proxy from a config dict (or raw args plus the port it will
        listen on) and waits until it accepts connections. `env` adds
        environment variables for the ringlb process; `binary` runs another
        build than --binary (e.g. a test build)."""
        if self.opts.proxy == "nginx":
            import nginx_standin
            return nginx_standin.start(self, cfg, name)
        self.require_io_uring()
        config_path = None
        if cfg is not None:
            config_path = self.write_config(cfg, name + ".yaml")
            args = ["-c", config_path]
            port = int(cfg["listeners"][0]["address"].rsplit(":", 1)[1])
        argv = [binary or self.binary()] + list(args)
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        proc = Proc("%s-%d" % (name, len(self.proxies) + 1), argv, self.tmpdir, env=full_env)
        r = Ringlb(proc, port, cfg, config_path)
        self.proxies.append(r)
        try:
            wait_port(port, self.slow(5), proc)
        except TestFailure:
            self._skip_if_kernel_lacks(proc)
            raise
        return r

    def binary(self):
        b = self.opts.binary
        if not b or not os.path.isfile(b):
            self.fail("ringlb binary not found: %r" % b)
        return os.path.abspath(b)

    def run_ringlb(self, args, timeout=10):
        """Runs ringlb to completion (e.g. -t, --version); returns
        CompletedProcess with text stdout/stderr. Checks sanitizer output."""
        argv = [self.binary()] + list(args)
        try:
            cp = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                timeout=self.slow(timeout), cwd=self.tmpdir)
        except subprocess.TimeoutExpired:
            self.fail("%s did not exit within %ss" % (" ".join(args), timeout))
        out = cp.stdout.decode("utf-8", "replace")
        err = cp.stderr.decode("utf-8", "replace")
        self._check_sanitizer(" ".join(args), err)
        return subprocess.CompletedProcess(argv, cp.returncode, out, err)

    def curl(self, *args, timeout=30):
        """Runs curl with the given arguments; returns CompletedProcess (bytes)."""
        argv = ["curl", "-sS", "--max-time", str(int(self.slow(timeout)))] + list(args)
        try:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=self.slow(timeout) + 5, cwd=self.tmpdir)
        except subprocess.TimeoutExpired:
            self.fail("curl did not finish: %s" % " ".join(args))

    def connect(self, port, timeout=10.0):
        return Conn(port, self.slow(timeout), t=self)

    # environment

    _io_uring_ok = None

    def require_io_uring(self):
        if T._io_uring_ok is None:
            T._io_uring_ok = io_uring_available()
        if T._io_uring_ok is not True:
            self.skip("io_uring not available: %s" % T._io_uring_ok)

    def _skip_if_kernel_lacks(self, proc):
        if proc.poll() is None:
            return
        text = proc.stderr_text()
        m = re.search(r".*(kernel (is )?too old|not supported by (this|the) kernel|"
                      r"io_uring[^\n]*(ENOSYS|EOPNOTSUPP|not supported)).*", text, re.I)
        if m:
            self.skip("kernel feature missing: %s" % m.group(0).strip())

    # teardown

    def stop_proxy(self, r, timeout=None):
        """SIGTERM, wait, SIGKILL if needed. Returns the exit status."""
        drain = 5
        if r.config:
            drain = _duration_s(r.config.get("timeouts", {}).get("drain", "30s"))
        timeout = timeout or self.slow(drain + 5)
        rc, killed = r.proc.stop(signal.SIGTERM, timeout)
        if killed:
            raise TestFailure("%s did not exit within %.0fs of SIGTERM" % (r.proc.name, timeout))
        return rc

    def _check_sanitizer(self, what, text):
        if not self.sanitized:
            return
        for marker in SANITIZER_MARKERS:
            if marker in text:
                idx = text.find(marker)
                raise TestFailure("sanitizer report from %s:\n%s"
                                  % (what, text[max(0, idx - 200): idx + 3000]))

    def cleanup(self, failed):
        """Tears everything down; returns a list of failure messages found on
        the way (crashed proxy, sanitizer reports)."""
        problems = []
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as e:  # keep going: everything must be stopped
                problems.append("cleanup: %r" % e)
        for r in self.proxies:
            p = r.proc
            try:
                already = p.poll() is not None
                if not already:
                    rc = self.stop_proxy(r)
                else:
                    p.close_files()
                    rc = p.returncode
                if p.expected_signal is None and rc is not None and rc != 0:
                    if rc < 0:
                        problems.append("%s died from signal %d" % (p.name, -rc))
                    elif self.opts.proxy == "ringlb":
                        problems.append("%s exited with status %d" % (p.name, rc))
            except Exception as e:
                problems.append(str(e))
            try:
                self._check_sanitizer(p.name, p.stderr_text())
            except TestFailure as e:
                problems.append(str(e))
        for b in self.backends:
            b.proc.stop(signal.SIGKILL, 5)
        if failed or problems:
            for r in self.proxies:
                tail = r.proc.stderr_tail(40)
                print("---- %s stderr (last 40 lines) ----\n%s\n----"
                      % (r.proc.name, tail or "(empty)"))
            for b in self.backends:
                tail = b.proc.stderr_tail(10)
                if tail:
                    print("---- backend %s stderr ----\n%s\n----" % (b.name, tail))
        _rmtree(self.tmpdir)
        return problems


def _addr(b):
    return b.address if isinstance(b, BackendProc) else b


def _duration_s(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", str(text))
    if not m:
        return 30
    n = int(m.group(1))
    return {"ms": n / 1000.0, "s": n, None: n, "m": n * 60, "h": n * 3600}[m.group(2)]


def _rmtree(path):
    for root, dirs, files in os.walk(path, topdown=False):
        for f in files:
            try:
                os.unlink(os.path.join(root, f))
            except OSError:
                pass
        for d in dirs:
            try:
                os.rmdir(os.path.join(root, d))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def io_uring_available():
    """True, or a reason string: probes io_uring_setup(2) (syscall 425 on
    every Linux architecture) through libc."""
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            if f.read().strip() == "2":
                return "kernel.io_uring_disabled = 2"
    except OSError:
        pass
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        params = ctypes.create_string_buffer(120)
        fd = libc.syscall(425, 4, params)
        if fd < 0:
            err = ctypes.get_errno()
            return "io_uring_setup failed: %s" % os.strerror(err)
        os.close(fd)
        return True
    except (ImportError, OSError, AttributeError):
        return True  # cannot probe: let ringlb's start-up tell


def served_by(resp):
    """The backend name a test backend put in its Server field
    ("test-backend/NAME"), or None."""
    server = resp.get("server") or ""
    return server.split("/", 1)[1] if "/" in server else None


def wait_stderr(t, proxy, text, secs, count=1):
    """Waits until `text` appears `count` times in the proxy's stderr; returns
    the time it did. Fails the test after `secs` (scaled for sanitizers)."""
    deadline = time.monotonic() + t.slow(secs)
    while time.monotonic() < deadline:
        if proxy.proc.stderr_text().count(text) >= count:
            return time.monotonic()
        time.sleep(0.02)
    t.fail("no %r in the log within %.1fs:\n%s" % (text, secs, proxy.proc.stderr_tail()))
