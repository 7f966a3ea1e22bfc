#!/usr/bin/env bash
# bench/run.sh — ringlb vs nginx vs HAProxy as reverse proxies, measured with
# wrk. Entry point of `make bench`; see bench/README.md for what is measured
# and how to read the results.
#
# Environment:
#   BENCH_DURATION=10s   length of one wrk run (wrk syntax: 10s, 1m)
#   BENCH_ROUNDS=3       rounds; the table reports the median over rounds
#   BENCH_QUICK=1        sanity run: 3s x 1 round (BENCH_DURATION/ROUNDS win)
#   BENCH_PIN=1          pin proxy to cores 0-1, origins to 2 and 3, wrk to
#                        4-7 (only when nproc >= 8; ignored otherwise)
#   BENCH_CONTENDERS="ringlb nginx haproxy"   which proxies to measure
#   BENCH_WORKLOADS="cache-1k gzip-100k"      a subset of the workloads by name
#                        (default: all of them; see WORKLOADS below)
#   RINGLB=build/ringlb  the ringlb binary
#
# Everything a run writes lives in bench/out/<timestamp>/ (git-ignored):
# rendered configs, logs, every wrk output, raw.tsv and results.md. The
# script starts two nginx origins and the contenders on free 127.0.0.1 ports
# and kills exactly those processes on exit.

set -euo pipefail

# The command line as given, for the report (before defaults are filled in).
if [[ -n "${MAKELEVEL:-}" ]]; then cmdline="make bench"; else cmdline="bash bench/run.sh"; fi
for v in RINGLB BENCH_CONTENDERS BENCH_WORKLOADS BENCH_PIN BENCH_ROUNDS BENCH_DURATION BENCH_QUICK; do
	if [[ -n "${!v:-}" ]]; then cmdline="$v=$(printf '%q' "${!v}") $cmdline"; fi
done

export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/.."

QUICK=${BENCH_QUICK:-0}
if [[ "$QUICK" == 1 ]]; then
	DURATION=${BENCH_DURATION:-3s}
	ROUNDS=${BENCH_ROUNDS:-1}
	WARMUP=1s
else
	DURATION=${BENCH_DURATION:-10s}
	ROUNDS=${BENCH_ROUNDS:-3}
	WARMUP=2s
fi
PIN=${BENCH_PIN:-0}
RINGLB=${RINGLB:-build/ringlb}
PICK_BENCH=build/bench_pick
read -ra CONTENDERS_WANTED <<<"${BENCH_CONTENDERS:-ringlb nginx haproxy}"
WRK_THREADS=2

# Workloads: name, path, connections, scheme, connection mode, feature. Every
# response body is fixed-size. "close" sends Connection: close, so wrk opens
# a new connection for every request: over https that is one full TLS
# handshake per request, because every contender's TLS listener has session
# resumption turned off (wrk resumes sessions when a server allows it).
# feature: "-" plain proxying; "cache": a cacheable object (the origin sends
# Cache-Control: max-age=3600) served from the proxy's cache, checked for a
# hit once before measuring; "gzip", "br", "zstd": a 100 KiB HTML page
# requested with that Accept-Encoding, so the proxy compresses every
# response, checked once for Content-Encoding and a body that decodes.
# Feature workloads are reported in a table of their own.
WORKLOADS=(
	"small-c64 / 64 http keep -"
	"small-c256 / 256 http keep -"
	"16k-c64 /16k 64 http keep -"
	"256k-c64 /256k 64 http keep -"
	"https-small-c64 / 64 https keep -"
	"https-16k-c64 /16k 64 https keep -"
	"https-handshake-c64 / 64 https close -"
	"h2-small-c16x32 / 16 h2 keep -"
	"cache-1k /cache/1k 64 http keep cache"
	"cache-64k /cache/64k 64 http keep cache"
	"gzip-100k /html/100k 64 http keep gzip"
	"br-100k /html/100k 64 http keep br"
	"zstd-100k /html/100k 64 http keep zstd"
)
# Exact body sizes of the feature workloads' objects (the origins' files; the
# HTML page is made by gen_html below).
declare -A BODY_SIZE=([/cache/1k]=1024 [/cache/64k]=65536 [/html/100k]=102400)
if [[ -n "${BENCH_WORKLOADS:-}" ]]; then
	# a subset by name, e.g. BENCH_WORKLOADS="https-small-c64 https-handshake-c64"
	keep=()
	for w in "${WORKLOADS[@]}"; do
		[[ " $BENCH_WORKLOADS " == *" ${w%% *} "* ]] && keep+=("$w")
	done
	WORKLOADS=("${keep[@]}")
	((${#WORKLOADS[@]} > 0)) || { echo "bench: no workload matches BENCH_WORKLOADS" >&2; exit 1; }
fi
NEED_TLS=0       # a selected workload uses the TLS listeners
for w in "${WORKLOADS[@]}"; do
	read -r _ _ _ scheme _ <<<"$w"
	[[ "$scheme" != http ]] && NEED_TLS=1
done

die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ "$DURATION" =~ ^[1-9][0-9]*[smh]?$ ]] || die "BENCH_DURATION must look like 10s or 1m"
need=(wrk curl python3 ps getconf nginx h2load)   # nginx also runs the origins
[[ " ${CONTENDERS_WANTED[*]} " == *" haproxy "* ]] && need+=(haproxy)
for cmd in "${need[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found (run: sh scripts/deps.sh)"
done
CLK_TCK=$(getconf CLK_TCK)
NPROC=$(nproc)

TS=$(date +%Y%m%d-%H%M%S)
OUT=bench/out/$TS
mkdir -p "$OUT/www" "$OUT/wrk" "$OUT/tmp"
ABS_OUT="$PWD/$OUT"   # only ever passed on command lines, never written

# ---------------------------------------------------------------- processes

STARTED_PIDS=()   # every process this script started, in start order
declare -A PID    # name -> pid

alive() { # pid: running and not a zombie
	local st
	[[ -r /proc/$1/stat ]] || return 1
	st=$(</proc/"$1"/stat) 2>/dev/null || return 1
	st=${st##*) }
	[[ "${st:0:1}" != Z ]]
}

children_of() { ps --ppid "$1" -o pid= 2>/dev/null | tr -s ' \n' ' ' || true; }

cleanup() {
	local rc=$? pid kids=() i
	trap - EXIT INT TERM
	if [[ -n "${WRK_PID:-}" ]]; then
		kill -TERM "$WRK_PID" 2>/dev/null || true
		wait "$WRK_PID" 2>/dev/null || true
	fi
	for pid in "${STARTED_PIDS[@]}"; do
		# shellcheck disable=SC2207
		kids+=($(children_of "$pid"))
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${STARTED_PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			log "pid $pid did not exit on SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	# nginx workers of a master that had to be SIGKILLed.
	for pid in "${kids[@]}"; do
		if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
	done
	# nginx's cache directory on tmpfs, made by this script (see set-up)
	if [[ -n "${SHM_DIR:-}" && "$SHM_DIR" == /dev/shm/ringlb-bench.* ]]; then
		rm -rf -- "$SHM_DIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD...: run CMD in the background, output to $OUT/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$OUT/$name.log" 2>&1 &
	PID[$name]=$!
	STARTED_PIDS+=("$!")
}

# cpu_ticks PID...: utime+stime (all threads) summed over the PIDs.
cpu_ticks() {
	local total=0 p line f
	for p in "$@"; do
		line=$(</proc/"$p"/stat) 2>/dev/null || continue
		read -ra f <<<"${line##*) }"
		total=$((total + f[11] + f[12]))
	done
	echo "$total"
}

# tree PID: the pid and its direct children (nginx master + workers).
tree() { echo "$1 $(children_of "$1")"; }

# free_ports N: N distinct free TCP ports on 127.0.0.1, below the ephemeral
# range so the benchmark's own outgoing connections cannot take them.
free_ports() {
	python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except OSError:
    lo = 32768
socks, ports = [], []
for _ in range(2000):
    if len(ports) == n:
        break
    port = random.randint(10000, lo - 1) if lo > 11000 else 0
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    socks.append(s)
    ports.append(s.getsockname()[1])
print(" ".join(map(str, ports)))
PY
}

# render TEMPLATE OUTPUT KEY=VALUE...: replace @KEY@ with VALUE.
render() {
	local in=$1 out=$2 kv expr=()
	shift 2
	for kv in "$@"; do
		expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
	done
	sed "${expr[@]}" "$in" >"$out"
	if grep -q '@[A-Z0-9_]*@' "$out"; then
		die "unrendered placeholder in $out"
	fi
}

# wait_ready NAME PORT: the process is alive and answers GET / with 2xx, and
# /16k and /256k have exactly the right sizes.
wait_ready() {
	local name=$1 port=$2 i size spec
	for ((i = 0; i < 100; i++)); do
		alive "${PID[$name]}" || { log "$name exited; its log:"; tail -20 "$OUT/$name.log" >&2;
			tail -20 "$OUT/$name.error.log" 2>/dev/null >&2 || true; return 1; }
		curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$port/" && break
		sleep 0.1
	done
	((i < 100)) || { log "$name does not answer on 127.0.0.1:$port"; return 1; }
	for spec in /16k:16384 /256k:262144; do
		size=$(curl -sf --max-time 5 -o /dev/null -w '%{size_download}' \
			"http://127.0.0.1:$port${spec%%:*}") || size=fail
		[[ "$size" == "${spec#*:}" ]] || {
			log "$name: GET ${spec%%:*} returned $size bytes, want ${spec#*:}"; return 1; }
	done
}

# -------------------------------------------------------------------- pinning

PIN_PROXY=() PIN_ORIGIN1=() PIN_ORIGIN2=() PIN_WRK=()
PIN_DESC="none (all processes share all $NPROC cores)"
if [[ "$PIN" == 1 ]]; then
	if ((NPROC >= 8)); then
		PIN_PROXY=(taskset -c 0-1)
		PIN_ORIGIN1=(taskset -c 2)
		PIN_ORIGIN2=(taskset -c 3)
		PIN_WRK=(taskset -c 4-7)
		PIN_DESC="proxy 0-1, origin-1 2, origin-2 3, wrk 4-7 (taskset)"
	else
		log "BENCH_PIN=1 needs nproc >= 8 (have $NPROC); running unpinned"
	fi
fi

# --------------------------------------------------------------------- set-up

read -r P_O1 P_O2 P_RINGLB P_NGINX P_HAPROXY S_RINGLB S_NGINX S_HAPROXY <<<"$(free_ports 8)"
[[ -n "$S_HAPROXY" ]] || die "could not find 8 free ports"
declare -A PORT=([origin-1]=$P_O1 [origin-2]=$P_O2 [ringlb]=$P_RINGLB
	[nginx]=$P_NGINX [haproxy]=$P_HAPROXY)
declare -A TLS_PORT=([ringlb]=$S_RINGLB [nginx]=$S_NGINX [haproxy]=$S_HAPROXY)

# One certificate for every contender: ECDSA P-256, the common choice for
# fast handshakes. HAProxy wants certificate and key in one file.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
	-keyout "$OUT/tls.key" -out "$OUT/tls.crt" >/dev/null 2>&1 || die "openssl could not make a certificate"
chmod 600 "$OUT/tls.key"
cat "$OUT/tls.crt" "$OUT/tls.key" >"$OUT/tls.pem"
chmod 600 "$OUT/tls.pem"

USER_LINE=""
[[ $(id -u) == 0 ]] && USER_LINE="user root;"

# gen_html FILE SIZE: an HTML page of exactly SIZE bytes for the compression
# workloads: articles with paragraphs, link lists and tables made from a
# fixed word list with a fixed seed, so that every run on every machine
# compresses the same bytes. Repetitive like real markup, varied like real
# text: gzip -6 takes it to about 28 % of its size (zstd -3 similar).
gen_html() {
	python3 - "$1" "$2" <<'PY'
import random, sys

path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261128)
words = """
    able about account across action active address after again against agent
    allow already always amount analysis another answer appear apply area argue
    around article author available average balance basket before begin behind
    better between billing board body border branch budget build business button
    buyer cache calendar camera capital career carry catalog center certain change
    channel chapter check choice city claim class client close cloud collect
    column comment common company compare complete concert connect consider
    contact content context control country course cover create credit culture
    current customer dashboard data debate decide default delivery describe design
    detail develop device different dinner direction discount discover display
    document domain during early economy edition effect either energy engine
    enough entire entry event evidence example expect experience expert export
    factor family feature field figure filter final finance follow football
    foreign format forward founder friend garden general global gallery green
    ground group growth guide health history holiday house image impact import
    include income index industry inside interest invoice island issue journal
    kitchen label language large later launch leader learn letter library light
    limit listing local market measure media member memory message method middle
    minute mobile modern module moment monthly morning mountain movie museum
    network notice number object office online option order organize origin
    output owner package partner payment people percent period person picture
    place planet player policy popular position premium present price private
    product profile program project property public quality quarter question
    quick rating reader recent record region release report request research
    result review river sample schedule school science screen search season
    section secure select seller service session settings share shipping signal
    simple single social source special sport spring staff standard station
    status store story street student studio style subject summer support system
    table target teacher template theatre ticket today topic total travel trend
    update upload useful value vendor version video village visit volume weather
    website weekly window winter worker world writer yearly yellow
""".split()


def pick(n):
    return [rng.choice(words) for _ in range(n)]


def sentence():
    text = " ".join(pick(rng.randint(6, 20)))
    return text[0].upper() + text[1:] + rng.choice(".....?!")


def slug():
    return "-".join(pick(rng.randint(2, 4)))


def para():
    body = " ".join(sentence() for _ in range(rng.randint(2, 6)))
    return '<p class="%s">%s</p>\n' % (rng.choice(["lead", "body", "body", "note"]), body)


def links():
    out = ['<ul class="links">\n']
    for _ in range(rng.randint(3, 9)):
        out.append('  <li><a href="/%s/%s.html" title="%s">%s</a></li>\n'
                   % (rng.choice(["news", "shop", "docs", "blog"]), slug(),
                      " ".join(pick(3)), " ".join(pick(rng.randint(2, 5))).title()))
    out.append("</ul>\n")
    return "".join(out)


def table():
    cols = pick(rng.randint(3, 5))
    out = ['<table class="data">\n  <thead><tr>',
           "".join("<th>%s</th>" % c.title() for c in cols), "</tr></thead>\n  <tbody>\n"]
    for _ in range(rng.randint(3, 8)):
        cells = []
        for _ in cols:
            kind = rng.random()
            if kind < 0.4:
                cells.append("%d" % rng.randint(0, 99999))
            elif kind < 0.6:
                cells.append("%d.%02d" % (rng.randint(0, 999), rng.randint(0, 99)))
            else:
                cells.append(" ".join(pick(rng.randint(1, 3))))
        out.append("    <tr>" + "".join("<td>%s</td>" % c for c in cells) + "</tr>\n")
    out.append("  </tbody>\n</table>\n")
    return "".join(out)


def article(n):
    out = ['<article id="post-%d" class="post %s">\n' % (n, rng.choice(["featured", "standard", "compact"])),
           '<h2><a href="/blog/%s">%s</a></h2>\n' % (slug(), sentence().rstrip(".?!")),
           '<div class="meta">By <a href="/people/%s">%s</a> on <time datetime="2026-%02d-%02d">%s</time></div>\n'
           % (slug(), " ".join(pick(2)).title(), rng.randint(1, 12), rng.randint(1, 28), " ".join(pick(2)))]
    for _ in range(rng.randint(2, 4)):
        out.append(rng.choice([para, para, para, links, table])())
    out.append("</article>\n")
    return "".join(out)


head = ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>ringlb benchmark page</title>\n"
        '<link rel="stylesheet" href="/static/site.css">\n</head>\n<body>\n'
        '<header><nav><a href="/">Home</a> <a href="/news/">News</a> <a href="/shop/">Shop</a> '
        '<a href="/docs/">Docs</a> <a href="/blog/">Blog</a></nav></header>\n<main>\n')
tail = ('</main>\n<footer><p>Generated by bench/run.sh for the compression workloads.</p></footer>\n'
        "</body>\n</html>\n")
parts, n, i = [head], len(head), 0
while True:
    block = article(i)
    if n + len(block) + len(tail) + 10 > size:
        break
    parts.append(block)
    n += len(block)
    i += 1
fill = size - n - len(tail) - 10   # the rest: "<!-- " + fill bytes + " -->\n"
text = ""
while len(text) < fill:
    text += sentence() + " "
parts += ["<!-- " + text[:fill] + " -->\n", tail]
data = "".join(parts).encode("ascii")
assert len(data) == size, len(data)
open(path, "wb").write(data)
PY
}

# Static bodies of exact sizes for the origins.
mkdir -p "$OUT/www/cache" "$OUT/www/html"
head -c 16384 /dev/zero | tr '\0' 'a' >"$OUT/www/16k"
head -c 262144 /dev/zero | tr '\0' 'b' >"$OUT/www/256k"
head -c "${BODY_SIZE[/cache/1k]}" /dev/zero | tr '\0' 'c' >"$OUT/www/cache/1k"
head -c "${BODY_SIZE[/cache/64k]}" /dev/zero | tr '\0' 'd' >"$OUT/www/cache/64k"
gen_html "$OUT/www/html/100k" "${BODY_SIZE[/html/100k]}" || die "could not generate the HTML page"

# nginx's proxy_cache keeps bodies in files: put them on tmpfs, so that all
# three contenders serve hits from memory. Removed on exit (cleanup).
SHM_DIR=""
if [[ -d /dev/shm && -w /dev/shm ]] && SHM_DIR=$(mktemp -d /dev/shm/ringlb-bench.XXXXXX); then
	NGINX_CACHE_DIR=$SHM_DIR/nginx-cache
	NGINX_CACHE_FS="tmpfs, $NGINX_CACHE_DIR"
else
	SHM_DIR=""
	NGINX_CACHE_DIR=$ABS_OUT/tmp/nginx-cache
	NGINX_CACHE_FS="$(df --output=fstype "$OUT/tmp" 2>/dev/null | tail -1), $NGINX_CACHE_DIR (/dev/shm not writable)"
	log "warning: /dev/shm is not writable; nginx's cache lives in $NGINX_CACHE_DIR"
fi
mkdir -p "$NGINX_CACHE_DIR"

for o in origin-1 origin-2; do
	mkdir -p "$OUT/tmp/$o"
	render bench/nginx-origin.conf.in "$OUT/$o.conf" NAME="$o" PORT="${PORT[$o]}" \
		USER_LINE="$USER_LINE"
done
mkdir -p "$OUT/tmp/nginx-proxy"
render bench/nginx-proxy.conf.in "$OUT/nginx-proxy.conf" PORT="$P_NGINX" TLS_PORT="$S_NGINX" \
	ORIGIN1="$P_O1" ORIGIN2="$P_O2" USER_LINE="$USER_LINE" CERT="$ABS_OUT/tls.crt" KEY="$ABS_OUT/tls.key" \
	CACHE_DIR="$NGINX_CACHE_DIR"
render bench/haproxy.cfg.in "$OUT/haproxy.cfg" PORT="$P_HAPROXY" TLS_PORT="$S_HAPROXY" \
	ORIGIN1="$P_O1" ORIGIN2="$P_O2" PEM="$ABS_OUT/tls.pem"
render bench/ringlb.yaml.in "$OUT/ringlb.yaml" PORT="$P_RINGLB" TLS_PORT="$S_RINGLB" \
	ORIGIN1="$P_O1" ORIGIN2="$P_O2" CERT="$ABS_OUT/tls.crt" KEY="$ABS_OUT/tls.key"

# wrk and the proxies need a few thousand descriptors each; the configs stay
# under 16384 per process.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

log "output directory: $OUT"
start origin-1 "${PIN_ORIGIN1[@]}" nginx -p "$ABS_OUT/" -c origin-1.conf -e origin-1.error.log -g 'daemon off;'
start origin-2 "${PIN_ORIGIN2[@]}" nginx -p "$ABS_OUT/" -c origin-2.conf -e origin-2.error.log -g 'daemon off;'
wait_ready origin-1 "$P_O1" || die "origin-1 did not start"
wait_ready origin-2 "$P_O2" || die "origin-2 did not start"

CONTENDERS=()   # the ones that are running and answering
declare -A SKIPPED
for c in "${CONTENDERS_WANTED[@]}"; do
	case $c in
	ringlb)
		if [[ ! -x "$RINGLB" ]]; then
			SKIPPED[ringlb]="$RINGLB not found (run make first)"
			log "skipping ringlb: ${SKIPPED[ringlb]}"
			continue
		fi
		start ringlb "${PIN_PROXY[@]}" "$RINGLB" -c "$OUT/ringlb.yaml"
		;;
	nginx)
		start nginx "${PIN_PROXY[@]}" nginx -p "$ABS_OUT/" -c nginx-proxy.conf \
			-e nginx-proxy.error.log -g 'daemon off;'
		;;
	haproxy)
		start haproxy "${PIN_PROXY[@]}" haproxy -db -f "$OUT/haproxy.cfg"
		;;
	*) die "unknown contender '$c' in BENCH_CONTENDERS" ;;
	esac
	if wait_ready "$c" "${PORT[$c]}" &&
		curl -skf --max-time 5 -o /dev/null "https://127.0.0.1:${TLS_PORT[$c]}/16k"; then
		CONTENDERS+=("$c")
	else
		SKIPPED[$c]="failed to start or answer; see $OUT/$c.log"
		log "skipping $c: ${SKIPPED[$c]}"
	fi
done
((${#CONTENDERS[@]} > 0)) || die "no contender is running"

# ------------------------------------------------------------------- versions

ver_nginx=$(nginx -v 2>&1 | head -1 | sed 's/^nginx version: //') || true   # nginx/1.22.1
ver_haproxy="HAProxy not used"
if command -v haproxy >/dev/null 2>&1; then
	ver_haproxy=$( { haproxy -v 2>&1 || true; } | head -1) || true
fi
ver_wrk=$( { wrk -v 2>&1 || true; } | head -1 | sed 's/ Copyright.*//; s/^wrk /wrk /') || true
ver_ringlb="not built"
if [[ -x "$RINGLB" ]]; then
	ver_ringlb=$( { "$RINGLB" --version 2>&1 || true; } | head -1) || true
fi
# Compression support of the other contenders: HAProxy is built with either
# zlib or libslz; Debian's nginx has gzip built in and brotli or zstd only as
# extra modules (libnginx-mod-http-brotli-filter), which this script does not
# load.
comp_haproxy="not used"
haproxy_algos=""   # e.g. "identity, deflate, raw-deflate, gzip"
if command -v haproxy >/dev/null 2>&1; then
	comp_haproxy=$( { haproxy -vv 2>&1 || true; } | grep -i -m1 -E 'built with (libslz|zlib)' |
		sed 's/^[[:space:]]*//; s/\.$//') || true
	haproxy_algos=$( { haproxy -vv 2>&1 || true; } | sed -n 's/^Compression algorithms supported : //p' |
		sed 's/("[^"]*")//g') || true
	case ${comp_haproxy,,} in
	*libslz*) comp_haproxy+=" (libslz: one fixed level, faster than zlib with larger output)" ;;
	*zlib*) comp_haproxy+=" (zlib at level 1: tune.comp.maxlevel's default)" ;;
	*) comp_haproxy="no compression library found in haproxy -vv" ;;
	esac
fi
nginx_modules=$( { nginx -V 2>&1 || true; } | tr ' ' '\n' | sed -n 's/^--modules-path=//p') || true
declare -A NGINX_MODULE=([br]="no brotli module" [zstd]="no zstd module")
for m in br zstd; do
	pattern=$m
	[[ "$m" == br ]] && pattern=brotli
	if compgen -G "${nginx_modules:-/usr/lib/nginx/modules}/*${pattern}*" >/dev/null; then
		NGINX_MODULE[$m]="$pattern module installed but not loaded by run.sh"
	fi
done
comp_nginx="gzip (zlib), ${NGINX_MODULE[br]}, ${NGINX_MODULE[zstd]}"
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
[[ -n "$cpu_model" ]] || cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
kernel=$(uname -r)

# ------------------------------------------------------------------ measuring

RAW=$OUT/raw.tsv
printf 'round\tcontender\tworkload\trps\tp50_us\tp99_us\trequests\tcpu_ticks\tcpu_us_per_req\terrors\n' >"$RAW"

# run_client TOOL FILE ARGS...: the load generator TOOL (wrk or h2load) with
# ARGS, its output in FILE. It runs in the background so that a signal to
# this script is handled at once (cleanup then stops it too).
WRK_PID=""
run_client() {
	local tool=$1 file=$2
	shift 2
	"${PIN_WRK[@]}" "$tool" "$@" >"$file" 2>&1 &
	WRK_PID=$!
	wait "$WRK_PID" || true
	WRK_PID=""
}
run_wrk() { run_client wrk "$@"; }
run_h2load() { run_client h2load "$@"; }

# parse_h2load FILE: "rps mean_us max_us requests errors" (h2load reports the
# mean and the maximum request time, not percentiles)
parse_h2load() {
	awk '
	function us(v) {
		if (v ~ /us$/) return v + 0
		if (v ~ /ms$/) return (v + 0) * 1000
		if (v ~ /s$/) return (v + 0) * 1000000
		return v + 0
	}
	/^finished in/ { rps = $4 }
	/^requests:/ { reqs = $8; err = $10 + $12 + $14 }
	/^status codes:/ { err += $7 + $9 }
	/^time for request:/ { mean = us($6); max = us($5) }
	END { printf "%.2f %.0f %.0f %d %d\n", rps, mean, max, reqs, err }
	' "$1"
}

# parse_wrk FILE: "rps p50_us p99_us requests errors"
parse_wrk() {
	awk '
	function us(v) {
		if (v ~ /us$/) return v + 0
		if (v ~ /ms$/) return (v + 0) * 1000
		if (v ~ /m$/) return (v + 0) * 60000000
		if (v ~ /s$/) return (v + 0) * 1000000
		return v + 0
	}
	$1 == "50%" { p50 = us($2) }
	$1 == "99%" { p99 = us($2) }
	/ requests in / { reqs = $1 }
	/^Requests\/sec:/ { rps = $2 }
	/Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
	/Non-2xx or 3xx responses:/ { err += $NF }
	END { printf "%.2f %.0f %.0f %d %d\n", rps, p50, p99, reqs, err }
	' "$1"
}

# measure ROUND CONTENDER WORKLOAD
measure() {
	local round=$1 c=$2 w=$3 name path conns scheme mode feature pids t0 t1 file rps p50 p99 reqs errs
	local port hdr=()
	read -r name path conns scheme mode feature <<<"$w"
	file=$OUT/wrk/r$round-$c-$name.txt
	port=${PORT[$c]}
	[[ "$scheme" != http ]] && port=${TLS_PORT[$c]}
	[[ "$mode" == close ]] && hdr=(-H "Connection: close")
	case $feature in
	gzip | br | zstd) hdr+=(-H "Accept-Encoding: $feature") ;;
	esac
	# shellcheck disable=SC2207
	pids=($(tree "${PID[$c]}"))
	t0=$(cpu_ticks "${pids[@]}")
	if [[ "$scheme" == h2 ]]; then
		# HTTP/2: h2load, $conns connections x 32 concurrent streams each
		run_h2load "$file" -t"$WRK_THREADS" -c"$conns" -m32 -D"${DURATION%s}" \
			"https://127.0.0.1:$port$path"
		t1=$(cpu_ticks "${pids[@]}")
		read -r rps p50 p99 reqs errs <<<"$(parse_h2load "$file")"
	else
		run_wrk "$file" -t"$WRK_THREADS" -c"$conns" -d"$DURATION" --latency "${hdr[@]}" \
			"$scheme://127.0.0.1:$port$path"
		t1=$(cpu_ticks "${pids[@]}")
		read -r rps p50 p99 reqs errs <<<"$(parse_wrk "$file")"
	fi
	local ticks=$((t1 - t0))
	local cpu
	cpu=$(awk -v t="$ticks" -v hz="$CLK_TCK" -v n="$reqs" \
		'BEGIN { if (n > 0) printf "%.2f", t * 1000000 / hz / n; else print "nan" }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$c" "$name" "$rps" "$p50" \
		"$p99" "$reqs" "$ticks" "$cpu" "$errs" >>"$RAW"
	log "$(printf 'round %d  %-8s %-11s %10s req/s  p50 %7sus  p99 %7sus  cpu %6sus/req  errors %s' \
		"$round" "$c" "$name" "$rps" "$p50" "$p99" "$cpu" "$errs")"
	if ! alive "${PID[$c]}"; then
		die "$c died during $name; see $OUT/$c.log"
	fi
}

log "warming up (${WARMUP} per contender)"
for c in "${CONTENDERS[@]}"; do
	run_wrk "$OUT/wrk/warmup-$c.txt" -t"$WRK_THREADS" -c256 -d"$WARMUP" "http://127.0.0.1:${PORT[$c]}/"
	if [[ "$NEED_TLS" == 1 ]]; then
		run_wrk "$OUT/wrk/warmup-tls-$c.txt" -t"$WRK_THREADS" -c64 -d"$WARMUP" "https://127.0.0.1:${TLS_PORT[$c]}/"
	fi
done

# ------------------------------------------------- cache and compression checks

# Before measuring a feature workload, each contender gets one request that
# warms it (fills the cache), then one checked request: a cache hit with the
# exact body, or a body in the requested Content-Encoding that decodes to
# the page. A contender without the feature, or whose check fails, is not
# measured on that workload; its row says why. Results in checks.tsv.
CHECKS=$OUT/checks.tsv
mkdir -p "$OUT/checks"
printf 'contender\tworkload\tstatus\tdetail\tbody_bytes\n' >"$CHECKS"
declare -A CHECK   # "contender workload" -> ok, or why it is not measured

# header_value FILE NAME: the value of the last NAME header in a curl -D dump.
header_value() {
	tr -d '\r' <"$1" | awk -v h="$2" '
	{ n = index($0, ":") }
	n > 1 && tolower(substr($0, 1, n - 1)) == tolower(h) { v = substr($0, n + 1); sub(/^[ \t]+/, "", v) }
	END { print v }'
}

# unsupported CONTENDER FEATURE: why the contender cannot do FEATURE here
# (nothing when it can).
unsupported() {
	case $1/$2 in
	nginx/br | nginx/zstd)
		echo "nginx: ${NGINX_MODULE[$2]}" ;;
	haproxy/br | haproxy/zstd)
		echo "HAProxy has no $2 (only ${haproxy_algos:-none})" ;;
	haproxy/gzip)
		[[ "$haproxy_algos" == *gzip* ]] || echo "this HAProxy has no gzip" ;;
	esac
}

# check_cache CONTENDER NAME PATH: sets CHECK_ST ("ok" or what is wrong) and
# CHECK_BYTES (the body size of the checked response).
check_cache() {
	local c=$1 name=$2 path=$3 url hdrs body want hit i v=""
	url="http://127.0.0.1:${PORT[$c]}$path"
	hdrs=$OUT/checks/$c-$name.headers body=$OUT/checks/$c-$name.body
	want=${BODY_SIZE[$path]}
	hit=X-Cache-Status
	[[ "$c" == ringlb ]] && hit=X-Cache
	if ! curl -sf --max-time 5 -o /dev/null "$url"; then
		CHECK_ST="warm-up request failed"
		return
	fi
	# The cache may be filled just after the response: allow a few tries.
	for ((i = 0; i < 5; i++)); do
		if ! curl -sf --max-time 5 -D "$hdrs" -o "$body" "$url"; then
			CHECK_ST="request failed"
			return
		fi
		v=$(header_value "$hdrs" "$hit")
		[[ "$v" == HIT ]] && break
		sleep 0.2
	done
	CHECK_BYTES=$(wc -c <"$body")
	if [[ "$v" != HIT ]]; then
		CHECK_ST="no cache hit ($hit: ${v:-none})"
	elif ((CHECK_BYTES != want)); then
		CHECK_ST="cache hit of $CHECK_BYTES bytes, want $want"
	else
		CHECK_ST=ok
	fi
}

# check_compression CONTENDER NAME PATH CODING: sets CHECK_ST ("ok" or what
# is wrong) and CHECK_BYTES (the compressed body size).
check_compression() {
	local c=$1 name=$2 path=$3 coding=$4 url hdrs raw dec ce
	url="http://127.0.0.1:${PORT[$c]}$path"
	hdrs=$OUT/checks/$c-$name.headers raw=$OUT/checks/$c-$name.body dec=$OUT/checks/$c-$name.decoded
	if ! curl -sf --max-time 5 -H "Accept-Encoding: $coding" -D "$hdrs" -o "$raw" "$url"; then
		CHECK_ST="request failed"
		return
	fi
	CHECK_BYTES=$(wc -c <"$raw")
	ce=$(header_value "$hdrs" Content-Encoding)
	if [[ -z "$ce" ]]; then
		CHECK_ST="not compressed"
		return
	elif [[ "${ce,,}" != "$coding" ]]; then
		CHECK_ST="not compressed (Content-Encoding: $ce)"
		return
	fi
	case $coding in
	gzip | br)
		# curl decodes gzip and br itself; the header asks for $coding only
		if ! curl -sf --max-time 5 --compressed -H "Accept-Encoding: $coding" -o "$dec" "$url"; then
			CHECK_ST="$coding body does not decode (curl --compressed)"
			return
		fi
		;;
	zstd)
		if ! command -v zstd >/dev/null 2>&1; then
			log "$c $name: no zstd binary, decoding not checked"
			CHECK_ST=ok
			return
		fi
		if ! zstd -dqc <"$raw" >"$dec" 2>/dev/null; then
			CHECK_ST="zstd body does not decode (zstd -d)"
			return
		fi
		;;
	esac
	if cmp -s "$dec" "$OUT/www$path"; then
		CHECK_ST=ok
	else
		CHECK_ST="$coding body decodes to other bytes than the page"
	fi
}

for w in "${WORKLOADS[@]}"; do
	read -r name path _ _ _ feature <<<"$w"
	[[ "$feature" == - ]] && continue
	for c in "${CONTENDERS[@]}"; do
		CHECK_ST="" CHECK_BYTES=0
		why=$(unsupported "$c" "$feature")
		if [[ -n "$why" ]]; then
			kind=unsupported CHECK_ST=$why
		else
			if [[ "$feature" == cache ]]; then
				check_cache "$c" "$name" "$path"
			else
				check_compression "$c" "$name" "$path" "$feature"
			fi
			kind=failed
			[[ "$CHECK_ST" == ok ]] && kind=ok
		fi
		CHECK["$c $name"]=$kind
		case $kind in
		ok) log "check $name $c: ok ($CHECK_BYTES-byte body)" ;;
		unsupported) log "check $name $c: $CHECK_ST; not measured" ;;
		*) log "WARNING: $name $c: $CHECK_ST; not measured, its row says so (see $OUT/checks/)" ;;
		esac
		printf '%s\t%s\t%s\t%s\t%s\n' "$c" "$name" "$kind" "$CHECK_ST" "$CHECK_BYTES" >>"$CHECKS"
	done
done

n=${#CONTENDERS[@]}
log "measuring: ${#WORKLOADS[@]} workloads x $n contenders x $ROUNDS rounds x $DURATION"
for ((r = 1; r <= ROUNDS; r++)); do
	order=()
	for ((i = 0; i < n; i++)); do
		order+=("${CONTENDERS[$(((i + r - 1) % n))]}")
	done
	log "round $r: ${order[*]}"
	for w in "${WORKLOADS[@]}"; do
		for c in "${order[@]}"; do
			# feature workloads: only where the check passed
			[[ "${CHECK["$c ${w%% *}"]:-ok}" == ok ]] || continue
			measure "$r" "$c" "$w"
			sleep 0.5
		done
	done
done

# Optional pick micro-benchmark (balancer), when it has been built.
PICK_OUT=""
if [[ -x "$PICK_BENCH" ]]; then
	log "running $PICK_BENCH"
	PICK_OUT=$OUT/bench_pick.txt
	timeout 300 "${PIN_PROXY[@]}" "$PICK_BENCH" >"$PICK_OUT" 2>&1 || log "$PICK_BENCH failed (see $PICK_OUT)"
fi

# -------------------------------------------------------------------- report

FEATURE_WORKLOADS=()   # selected cache and compression workloads, in order
for w in "${WORKLOADS[@]}"; do
	read -r name _ _ _ _ feature <<<"$w"
	[[ "$feature" != - ]] && FEATURE_WORKLOADS+=("$name")
done

RESULTS=$OUT/results.md
{
	echo "# Benchmark run $TS"
	echo
	echo "- Command: \`$cmdline\` (wrk -t$WRK_THREADS, keep-alive, $DURATION per run, $ROUNDS round(s), median reported)"
	echo "- Date: $(date '+%Y-%m-%d %H:%M %Z')"
	echo "- Versions: $ver_nginx; $ver_haproxy; $ver_wrk; ringlb: $ver_ringlb"
	echo "- Machine: $cpu_model, $NPROC cores, kernel $kernel"
	echo "- Pinning: $PIN_DESC"
	if ((${#FEATURE_WORKLOADS[@]} > 0)); then
		echo "- Cache: ringlb route cache (memory 256MiB, max_object 1MiB); nginx proxy_cache" \
			"(keys_zone 16m, files on $NGINX_CACHE_FS, proxy_cache_lock on); HAProxy cache" \
			"(total-max-size 256 MB, max-object-size 1048576)"
		echo "- Compression: ringlb defaults (gzip 6, brotli 4, zstd 3); nginx $comp_nginx," \
			"gzip_comp_level 6; HAProxy compression algo gzip, $comp_haproxy"
	fi
	for c in "${!SKIPPED[@]}"; do
		echo "- Not measured: $c — ${SKIPPED[$c]}"
	done
	echo
} >"$RESULTS"

python3 - "$RAW" "${CONTENDERS_WANTED[*]}" "$CHECKS" "${FEATURE_WORKLOADS[*]}" >>"$RESULTS" <<'PY'
import csv, statistics, sys

raw, wanted, checks_file, features = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4].split()
rows = list(csv.DictReader(open(raw), delimiter="\t"))
checks = {(r["contender"], r["workload"]): r
          for r in csv.DictReader(open(checks_file), delimiter="\t")}
workloads = []
for r in rows:
    if r["workload"] not in workloads and r["workload"] not in features:
        workloads.append(r["workload"])

def med(vals):
    vals = [v for v in vals if v == v]  # drop NaN
    return statistics.median(vals) if vals else float("nan")

agg = {}
for w in workloads + features:
    for c in wanted:
        rs = [r for r in rows if r["workload"] == w and r["contender"] == c]
        if not rs:
            continue
        rps = [float(r["rps"]) for r in rs]
        agg[w, c] = dict(
            rps=med(rps),
            spread=(max(rps) - min(rps)) / med(rps) * 100 if med(rps) > 0 else float("nan"),
            p50=med([float(r["p50_us"]) for r in rs]),
            p99=med([float(r["p99_us"]) for r in rs]),
            cpu=med([float(r["cpu_us_per_req"]) for r in rs]),
            errors=sum(int(r["errors"]) for r in rs),
            n=len(rs),
        )

def lat(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"

def ratios(a, base):
    if base and base["rps"] > 0 and base["cpu"] > 0:
        return f"{a['rps'] / base['rps']:.2f}", f"{a['cpu'] / base['cpu']:.2f}"
    return "n/a", "n/a"

if workloads:
    print("| workload | contender | req/s | spread | p50 | p99 | CPU-µs/req | req/s vs nginx | CPU vs nginx | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        base = agg.get((w, "nginx"))
        for c in wanted:
            a = agg.get((w, c))
            if a is None:
                print(f"| {w} | {c} | pending | | | | | | | |")
                continue
            rr, cr = ratios(a, base)
            print(f"| {w} | {c} | {a['rps']:,.0f} | {a['spread']:.1f}% | {lat(a['p50'])} | "
                  f"{lat(a['p99'])} | {a['cpu']:.1f} | {rr} | {cr} | {a['errors']} |")
    print()
    print("Workloads: small = GET / (12-byte body), 16k = GET /16k (16384 bytes), "
          "256k = GET /256k (262144 bytes); cNN = wrk connections; https- = the same over "
          "TLS (ECDSA P-256 certificate, keep-alive); https-handshake = Connection: close, "
          "a new connection and full TLS handshake per request; h2-small-c16x32 = h2load, "
          "HTTP/2 over TLS, 16 connections x 32 streams (its p50/p99 columns hold h2load's mean "
          "and maximum request time). "
          "spread = (max - min) / median of req/s over the rounds. "
          "CPU-µs/req = utime+stime of the proxy's processes during the run / requests completed. "
          "Ratios: > 1 for req/s is better than nginx, < 1 for CPU is better than nginx.")

if features:
    if workloads:
        print()
        print("### Cache and compression")
        print()
    print("| workload | contender | req/s | spread | p50 | p99 | CPU-µs/req | req/s vs nginx | "
          "CPU vs nginx | req/s vs HAProxy | CPU vs HAProxy | body bytes | body MB/s | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in features:
        for c in wanted:
            a, chk = agg.get((w, c)), checks.get((c, w))
            if chk is None:
                print(f"| {w} | {c} | pending | | | | | | | | | | | |")
                continue
            if chk["status"] != "ok" or a is None:
                why = chk["detail"] if chk["status"] != "ok" else "not measured"
                if chk["status"] == "unsupported":
                    why = f"n/a ({why})"
                print(f"| {w} | {c} | {why} | | | | | | | | | | | |")
                continue
            nr, nc = ratios(a, agg.get((w, "nginx")))
            hr, hc = ratios(a, agg.get((w, "haproxy")))
            size = int(chk["body_bytes"])
            print(f"| {w} | {c} | {a['rps']:,.0f} | {a['spread']:.1f}% | {lat(a['p50'])} | "
                  f"{lat(a['p99'])} | {a['cpu']:.1f} | {nr} | {nc} | {hr} | {hc} | {size:,} | "
                  f"{a['rps'] * size / 1e6:,.1f} | {a['errors']} |")
    print()
    print("Workloads: cache-1k, cache-64k = GET /cache/1k, /cache/64k (1024 and 65536 bytes, "
          "Cache-Control: max-age=3600 from the origin), served from each proxy's cache "
          "(a hit was checked once before measuring); gzip-100k, br-100k, zstd-100k = GET "
          "/html/100k (a 102400-byte HTML page) with Accept-Encoding: gzip, br or zstd, "
          "compressed by the proxy on every request (Content-Encoding and decoding checked "
          "once). All with wrk -t2 -c64, keep-alive. body bytes = the body of one response "
          "(compressed size for the compression rows); body MB/s = req/s x body bytes. "
          "Ratios: > 1 for req/s and < 1 for CPU are better than nginx or HAProxy; n/a where "
          "that contender has no row.")

if any(a["errors"] for a in agg.values()):
    print()
    print("**Warning:** some runs had socket errors or non-2xx responses; see raw.tsv and wrk/.")
bad = [(w, c, k["detail"]) for (c, w), k in checks.items() if k["status"] == "failed"]
if bad:
    print()
    print("**Warning:** failed checks, not measured (see checks/ in the run directory):")
    print()
    for w, c, why in bad:
        print(f"- {w}, {c}: {why}")
PY

if [[ -n "$PICK_OUT" ]]; then
	{
		echo
		echo "## Pick micro-benchmark ($PICK_BENCH)"
		echo
		echo '```'
		cat "$PICK_OUT"
		echo '```'
	} >>"$RESULTS"
fi

echo
cat "$RESULTS"
echo
log "raw data: $RAW; wrk outputs: $OUT/wrk/; report: $RESULTS"
