#!/usr/bin/env bash
# bench/slow.sh — slow-client attacks against ringlb, nginx and HAProxy.
#
# For each contender and mode, slowhttptest opens SLOW_CONNS connections at
# 200 a second and keeps them alive the slow way for SLOW_SECONDS:
#   slowloris  (-H) a request head that never ends: a new field every 10 s
#   slowbody   (-B) a POST whose 8 KiB body comes a few bytes every 10 s
# while bench/slow_client.py makes one ordinary request every 50 ms on a new
# connection and reports how many were served (200 within 5 s) and their
# latency. Each contender runs with the settings its documentation suggests
# against these attacks (ringlb: limits.body_min_rate; nginx: its default
# timeouts; HAProxy: timeout http-request), listed in the report.
#
# Environment: SLOW_CONTENDERS="ringlb nginx haproxy", SLOW_MODES="slowloris
# slowbody", SLOW_CONNS=1000, SLOW_SECONDS=60, RINGLB=build/ringlb.
# Output: bench/out/slow-<timestamp>/ (logs, configs) and a table on stdout.

set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.."

read -ra CONTENDERS <<<"${SLOW_CONTENDERS:-ringlb nginx haproxy}"
read -ra MODES <<<"${SLOW_MODES:-slowloris slowbody}"
CONNS=${SLOW_CONNS:-1000}
SECONDS_RUN=${SLOW_SECONDS:-60}
RINGLB=${RINGLB:-build/ringlb}
OUT=bench/out/slow-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT/www" "$OUT/tmp"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

for cmd in slowhttptest nginx python3 curl; do
	command -v "$cmd" >/dev/null || { echo "slow.sh: $cmd not found (sh scripts/deps.sh)" >&2; exit 1; }
done

PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() {
	for _ in $(seq 100); do
		curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$1/" && return 0
		sleep 0.1
	done
	echo "slow.sh: nothing answers on port $1" >&2
	return 1
}

user_line=""
[[ $(id -u) == 0 ]] && user_line="user root;"
ORIGIN=$(port)
sed -e "s|@NAME@|origin|g" -e "s|@PORT@|$ORIGIN|g" -e "s|@USER_LINE@|$user_line|g" \
	bench/nginx-origin.conf.in >"$OUT/origin.conf"
mkdir -p "$OUT/tmp/origin"
nginx -p "$OUT/" -c origin.conf -e origin.error.log -g 'daemon off;' >"$OUT/origin.log" 2>&1 &
PIDS+=($!)
wait_up "$ORIGIN"

start_contender() { # name port -> sets CPID
	local name=$1 p=$2
	case $name in
	ringlb)
		cat >"$OUT/ringlb.yaml" <<EOF
workers: 2
log_level: warn
listeners: [{address: "127.0.0.1:$p"}]
pools: [{name: origin, backends: ["127.0.0.1:$ORIGIN"]}]
limits: {body_min_rate: 1KiB, body_rate_window: 5s}
EOF
		"$RINGLB" -c "$OUT/ringlb.yaml" >"$OUT/ringlb.log" 2>&1 &
		;;
	nginx)
		mkdir -p "$OUT/tmp/proxy"
		cat >"$OUT/nginx-proxy.conf" <<EOF
$user_line
worker_processes 2;
worker_rlimit_nofile 65536;
pid nginx-proxy.pid;
error_log nginx-proxy.error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path tmp/proxy/body;
    proxy_temp_path tmp/proxy/proxy;
    fastcgi_temp_path tmp/proxy/fastcgi;
    uwsgi_temp_path tmp/proxy/uwsgi;
    scgi_temp_path tmp/proxy/scgi;
    upstream origin { server 127.0.0.1:$ORIGIN; keepalive 64; }
    server {
        listen 127.0.0.1:$p backlog=4096;
        location / { proxy_pass http://origin; proxy_http_version 1.1;
                     proxy_set_header Connection ""; }
    }
}
EOF
		nginx -p "$OUT/" -c nginx-proxy.conf -e nginx-proxy.error.log -g 'daemon off;' \
			>"$OUT/nginx.log" 2>&1 &
		;;
	haproxy)
		cat >"$OUT/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    option http-buffer-request
frontend fe
    bind 127.0.0.1:$p
    default_backend be
backend be
    server o1 127.0.0.1:$ORIGIN
EOF
		haproxy -f "$OUT/haproxy.cfg" -db >"$OUT/haproxy.log" 2>&1 &
		;;
	esac
	CPID=$!
	PIDS+=("$CPID")
}

printf '| contender | mode | legit requests | served | p50 ms | p99 ms | max ms | attack connections at end |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for mode in "${MODES[@]}"; do
	for name in "${CONTENDERS[@]}"; do
		p=$(port)
		start_contender "$name" "$p"
		wait_up "$p"
		flag=-H
		extra=(-t GET)
		[[ $mode == slowbody ]] && flag=-B && extra=(-t POST -s 8192)
		slowhttptest "$flag" "${extra[@]}" -c "$CONNS" -r 200 -i 10 -x 24 -p 3 \
			-l "$SECONDS_RUN" -u "http://127.0.0.1:$p/" >"$OUT/$name-$mode.slowhttptest.log" 2>&1 &
		spid=$!
		PIDS+=("$spid")
		sleep 5 # let the attack reach its connection count first
		res=$(python3 bench/slow_client.py "$p" "$((SECONDS_RUN - 10))")
		wait "$spid" 2>/dev/null || true
		echo "$res" >"$OUT/$name-$mode.client.json"
		conn=$(sed 's/\x1b\[[0-9;]*m//g' "$OUT/$name-$mode.slowhttptest.log" |
			awk '/^connected:/ { n = $2 } END { print n }' || true)
		python3 - "$name" "$mode" "$res" "${conn:-?}" <<'PY'
import json, sys
r = json.loads(sys.argv[3])
print("| %s | %s | %d | %.2f%% | %s | %s | %s | %s |" % (sys.argv[1], sys.argv[2], r["requests"],
      r["served_pct"], r["p50_ms"], r["p99_ms"], r["max_ms"], sys.argv[4]))
PY
		kill -TERM "$CPID" 2>/dev/null || true
		wait "$CPID" 2>/dev/null || true
	done
done
echo "slow.sh: logs in $OUT" >&2
