"""A debugging aid, not part of the suite: `run.py --proxy nginx` starts nginx
instead of ringlb from the same config dicts, to check the harness and the
test backend against a known proxy. Many tests fail there by design (nginx
differs from ringlb's contract: 408 without a response, HTTP/1.1 status lines
to 1.0 clients, SIGTERM is not graceful, no -t/quick/demo modes, ...).
"""

import os
import shutil

import lib


def _dur(text):
    return "%dms" % int(lib._duration_s(text) * 1000)


def _pool_block(pool):
    lines = ["upstream %s {" % pool["name"]]
    for b in pool["backends"]:
        addr = b["address"] if isinstance(b, dict) else b
        weight = b.get("weight", 1) if isinstance(b, dict) else 1
        lines.append("  server %s weight=%d max_fails=0;" % (addr, weight))
    lines.append("  keepalive %d;" % pool.get("keepalive", 64))
    lines.append("  keepalive_timeout %s;" % _dur(pool.get("keepalive_timeout", "60s")))
    lines.append("}")
    return "\n".join(lines)


def _location(path, pool, tmo):
    return """
    location %s {
      proxy_pass http://%s;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto http;
      proxy_set_header Via "1.1 ringlb";
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout %s;
      proxy_connect_timeout %s;
      add_header Via "1.1 ringlb" always;
    }""" % (path, pool, _dur(tmo.get("upstream_response", "60s")),
            _dur(tmo.get("upstream_connect", "5s")))


def render(cfg, tmpdir):
    tmo = cfg.get("timeouts", {})
    lim = cfg.get("limits", {})
    listen = cfg["listeners"][0]["address"]
    default_pool = cfg["pools"][0]["name"]
    by_host = {}
    for r in cfg.get("routes", []):
        by_host.setdefault(r.get("host", ""), []).append(r)
    servers = []
    for host, routes in sorted(by_host.items(), key=lambda kv: kv[0] == ""):
        locs = "".join(_location(r.get("path", "/"), r["pool"], tmo) for r in routes)
        if not any(r.get("path", "/") == "/" for r in routes):
            locs += _location("/", default_pool, tmo)
        name = host or "_"
        servers.append("  server {\n    listen %s%s;\n    server_name %s;%s\n  }"
                       % (listen, " default_server" if not host else "", name, locs))
    if "" not in by_host:
        servers.append("  server {\n    listen %s default_server;\n    server_name _;%s\n  }"
                       % (listen, _location("/", default_pool, tmo)))
    hb = lim.get("header_bytes_max", "16KiB").replace("KiB", "k")
    body = lim.get("body_bytes_max", "1GiB").replace("KiB", "k").replace("MiB", "m") \
        .replace("GiB", "g")
    log = cfg.get("access_log", {}).get("path")
    workers = cfg.get("workers", 1)
    return """
daemon off;
master_process on;
user root;
worker_processes %s;
pid %s/nginx.pid;
error_log stderr info;
events { worker_connections 1024; }
http {
  access_log %s;
  client_body_temp_path %s/body;
  proxy_temp_path %s/proxy;
  client_header_timeout %s;
  client_body_timeout %s;
  keepalive_timeout %s;
  client_max_body_size %s;
  large_client_header_buffers 4 %s;
  %s
%s
}
""" % (1 if workers == "auto" else workers, tmpdir, (log + " combined") if log else "off",
       tmpdir, tmpdir, _dur(tmo.get("client_header", "10s")), _dur(tmo.get("client_body", "60s")),
       _dur(tmo.get("keepalive", "75s")), body, hb,
       "\n  ".join(_pool_block(p) for p in cfg["pools"]), "\n".join(servers))


def start(t, cfg, name):
    if cfg is None:
        t.skip("nginx stand-in runs config-file tests only")
    if t.opts.binary and os.path.isfile(t.opts.binary):
        # Whatever --binary names still checks the YAML (ringlb -t -c FILE).
        cp = t.run_ringlb(["-t", "-c", t.write_config(cfg, name + ".yaml")])
        if cp.returncode != 0:
            t.fail("config refused by %s -t: %s" % (t.opts.binary, cp.stderr.strip()))
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if not nginx:
        t.skip("nginx not installed")
    path = t.write_file(name + "-nginx.conf", render(cfg, t.tmpdir))
    port = int(cfg["listeners"][0]["address"].rsplit(":", 1)[1])
    proc = lib.Proc("%s-%d" % (name, len(t.proxies) + 1), [nginx, "-c", path], t.tmpdir)
    r = lib.Ringlb(proc, port, cfg, path)
    t.proxies.append(r)
    lib.wait_port(port, 5, proc)
    return r


if __name__ == "__main__":  # print a rendering of a small config
    print(render({"listeners": [{"address": "127.0.0.1:8080"}],
                  "pools": [{"name": "app", "backends": [{"address": "127.0.0.1:9001"}]}]},
                 os.getcwd()))
