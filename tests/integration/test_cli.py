"""The command line: -t config checks, --version, usage errors, quick mode and
demo mode."""

import os
import re

from lib import REPO_ROOT, free_port

GOOD_CONFIG = """\
# A complete configuration using every section.
workers: 2
log_level: info
listeners:
  - address: 127.0.0.1:18080
pools:
  - name: app
    algorithm: round_robin
    keepalive: 64
    keepalive_timeout: 60s
    retries: 1
    backends:
      - address: 127.0.0.1:19001
        weight: 2
      - 127.0.0.1:19002
  - name: api
    backends:
      - 127.0.0.1:19003
routes:
  - host: "*.example.com"
    path: /api/
    pool: api
timeouts: {client_header: 10s, client_body: 60s, keepalive: 75s, send: 60s, upstream_connect: 5s, upstream_response: 60s, upstream_send: 60s, drain: 30s}
limits: {conns_max: 10000, upstream_conns_max: 10000, request_line_bytes_max: 8KiB, header_bytes_max: 16KiB, headers_max: 100, body_bytes_max: 1GiB, response_header_bytes_max: 16KiB}
buffers: {count: 2048, size: 16KiB, conn_bytes_max: 256KiB, ring_entries: 4096}
access_log: {path: access.log}
"""

BASE = """\
workers: 1
listeners:
  - address: 127.0.0.1:18080
pools:
  - name: app
    backends:
      - 127.0.0.1:19001
"""

ERROR_LINE = re.compile(r"^(?P<file>[^\n:]+):(?P<line>\d+): (?P<key>[^\s:]+): (?P<what>.+)$")


def check_ok(t, name, text=None, path=None):
    if path is None:
        path = t.write_file(name, text)
    cp = t.run_ringlb(["-t", "-c", path])
    t.eq(cp.returncode, 0, "exit status of -t on %s (stderr: %r)" % (name, cp.stderr))


def line_of(text, marker):
    """The 1-based number of the first line of `text` containing `marker`."""
    for i, line in enumerate(text.splitlines(), 1):
        if marker in line:
            return i
    raise ValueError(marker)


def check_bad(t, name, text, want_line, key_part):
    """`ringlb -t -c NAME` must exit 1 with one line "NAME:LINE: KEY: ...";
    LINE is checked if want_line is not None."""
    t.write_file(name, text)
    cp = t.run_ringlb(["-t", "-c", name])  # relative: ringlb runs in the test's directory
    t.eq(cp.returncode, 1, "exit status of -t on a bad file (stderr: %r)" % cp.stderr)
    lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    t.eq(len(lines), 1, "number of stderr lines (%r)" % lines)
    m = ERROR_LINE.match(lines[0])
    t.check(m, "error line not of the form FILE:LINE: KEY: what: %r" % lines[0])
    t.eq(m.group("file"), name, "file in the error line")
    if want_line is not None:
        t.eq(int(m.group("line")), want_line, "line in %r" % lines[0])
    t.check(key_part in m.group("key"), "key %r does not name %r" % (m.group("key"), key_part))
    return lines[0]


def test_check_config_good_file(t):
    check_ok(t, "good.yaml", GOOD_CONFIG)
    check_ok(t, "base.yaml", BASE)


def test_check_config_example_file(t):
    path = os.path.join(REPO_ROOT, "examples", "ringlb.yaml")
    if not os.path.isfile(path):
        t.skip("examples/ringlb.yaml does not exist yet")
    check_ok(t, "examples/ringlb.yaml", path=path)


def test_check_config_unknown_key(t):
    text = BASE + "timeouts:\n  client_headr: 5s\n"
    line = check_bad(t, "unknown.yaml", text, line_of(text, "client_headr"), "client_headr")
    t.log(line)


def test_check_config_unknown_top_level_key(t):
    text = BASE + "listners:\n  - address: 127.0.0.1:1\n"
    check_bad(t, "unknown-top.yaml", text, line_of(text, "listners"), "listners")


def test_check_config_bad_duration(t):
    text = BASE + "timeouts:\n  drain: 5s\n  client_header: ten\n"
    line = check_bad(t, "bad.yaml", text, line_of(text, "client_header: ten"),
                      "timeouts.client_header")
    t.check("ten" in line, "the bad value is not quoted: %r" % line)


def test_check_config_bad_size(t):
    text = BASE + "limits:\n  header_bytes_max: lots\n"
    check_bad(t, "size.yaml", text, line_of(text, "lots"), "limits.header_bytes_max")


def test_check_config_missing_listeners(t):
    text = "workers: 1\npools:\n  - name: app\n    backends:\n      - 127.0.0.1:19001\n"
    check_bad(t, "nolisten.yaml", text, 1, "listeners")


def test_check_config_missing_file(t):
    cp = t.run_ringlb(["-t", "-c", "does-not-exist.yaml"])
    t.eq(cp.returncode, 1, "exit status for a missing file")
    t.check("does-not-exist.yaml" in cp.stderr, "error does not name the file: %r" % cp.stderr)


def test_version(t):
    cp = t.run_ringlb(["--version"])
    t.eq(cp.returncode, 0, "exit status")
    t.check(re.match(r"ringlb \S+", cp.stdout), "--version printed %r" % cp.stdout)


def test_usage_error_exit_2(t):
    cp = t.run_ringlb(["--no-such-option"])
    t.eq(cp.returncode, 2, "exit status for an unknown option")
    cp = t.run_ringlb(["--listen"])
    t.eq(cp.returncode, 2, "exit status for a missing argument")


def test_quick_mode(t):
    b1, b2 = t.backend(), t.backend()
    port = free_port()
    proxy = t.ringlb(args=["--listen", "127.0.0.1:%d" % port, "--backend", b1.address,
                           "--backend", b2.address, "--workers", "1"], port=port)
    c = t.connect(proxy.port)
    seen = set()
    for i in range(6):
        resp = c.request("GET", "/q%d" % i)
        t.eq(resp.status, 200, "status")
        seen.add(resp.body.split()[1])
    t.eq(seen, {b"b1", b"b2"}, "backends reached")


def test_demo_mode(t):
    port = free_port()
    t.ringlb(args=["demo", "--listen", "127.0.0.1:%d" % port], port=port)
    url = "http://127.0.0.1:%d/" % port
    # One curl with six URLs: one keep-alive connection, so one shard's rotation.
    cp = t.curl(*([url] * 6))
    t.eq(cp.returncode, 0, "curl exit status (%r)" % cp.stderr)
    origins = set(re.findall(rb"origin [123]", cp.stdout))
    t.eq(origins, {b"origin 1", b"origin 2", b"origin 3"}, "origins seen over 6 requests")

