#!/usr/bin/env bash
# bench/testssl.sh — run testssl.sh (Debian package) against a ringlb TLS
# listener configured as the reference recommends, and keep its findings.
#
#   bash bench/testssl.sh            writes bench/out/testssl-<ts>/ and prints
#                                    the summary kept in bench/TESTSSL.md
#
# The listener serves an ECDSA and an RSA certificate for the same name from
# a CA made here, staples an OCSP response, and sends HSTS, so the scan sees
# what a production listener would. Findings about the certificate's trust
# (a private test CA, a two-day lifetime, no CRL/OCSP URI, no CT) are about
# the test certificate, not about ringlb, and are listed apart.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v testssl >/dev/null || { echo "testssl.sh is not installed (sh scripts/deps.sh)" >&2; exit 1; }
RINGLB=${RINGLB:-build/ringlb}
[[ -x "$RINGLB" ]] || { echo "$RINGLB not built (make)" >&2; exit 1; }

OUT=bench/out/testssl-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

q() { openssl "$@" >/dev/null 2>&1 || { echo "openssl $1 failed" >&2; exit 1; }; }
q req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3 -subj "/CN=testssl CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
	-keyout "$OUT/ca.key" -out "$OUT/ca.crt"
for kind in ec rsa; do
	if [[ $kind == ec ]]; then alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); else alg=(-newkey rsa:2048); fi
	q req -new "${alg[@]}" -nodes -subj /CN=localhost -keyout "$OUT/$kind.key" -out "$OUT/$kind.csr"
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$OUT/$kind.ext"
	q x509 -req -in "$OUT/$kind.csr" -CA "$OUT/ca.crt" -CAkey "$OUT/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
		-days 2 -sha256 -extfile "$OUT/$kind.ext" -out "$OUT/$kind.crt"
	chmod 600 "$OUT/$kind.key"
done
echo "unique_subject = no" >"$OUT/index.txt.attr"  # both certificates name localhost
for kind in ec rsa; do
	serial=$(openssl x509 -in "$OUT/$kind.crt" -noout -serial | cut -d= -f2)
	printf 'V\t291231235959Z\t\t%s\tunknown\t/CN=localhost\n' "$serial" >>"$OUT/index.txt"
	q ocsp -issuer "$OUT/ca.crt" -cert "$OUT/$kind.crt" -reqout "$OUT/$kind.req" -no_nonce
	q ocsp -index "$OUT/index.txt" -rsigner "$OUT/ca.crt" -rkey "$OUT/ca.key" -CA "$OUT/ca.crt" \
		-reqin "$OUT/$kind.req" -respout "$OUT/$kind.ocsp" -ndays 1
done

read -r PORT BPORT < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
python3 tests/integration/backend.py --port "$BPORT" >"$OUT/backend.log" 2>&1 &
PIDS+=($!)
cat >"$OUT/ringlb.yaml" <<EOF
workers: 1
listeners:
  - address: 127.0.0.1:$PORT
    tls:
      certificates:
        - {cert: $PWD/$OUT/ec.crt, key: $PWD/$OUT/ec.key, ocsp: $PWD/$OUT/ec.ocsp}
        - {cert: $PWD/$OUT/rsa.crt, key: $PWD/$OUT/rsa.key, ocsp: $PWD/$OUT/rsa.ocsp}
      hsts: 8760h
pools:
  - name: app
    backends: [127.0.0.1:$BPORT]
EOF
"$RINGLB" -c "$OUT/ringlb.yaml" >"$OUT/ringlb.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
	curl -sk -o /dev/null "https://127.0.0.1:$PORT/" && break
	sleep 0.1
done

timeout 900 testssl --quiet --color 0 --warnings off --ip one \
	--jsonfile "$OUT/testssl.json" "127.0.0.1:$PORT" >"$OUT/testssl.txt" 2>&1 || true
testssl --version 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' |
	sed -n 's/^ *testssl *\([0-9][^ ]*\).*/testssl.sh \1/p' | head -1 >"$OUT/version.txt" || true

python3 - "$OUT/testssl.json" "$OUT/version.txt" <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
version = open(sys.argv[2]).read().strip() or "testssl.sh"
# Findings that describe the throw-away test certificate, not the server;
# the response headers an application sets; and testssl's own tooling.
CERT = ("cert_", "OCSP_URI", "DNS_CAA", "certificate_transparency", "chain_of_trust",
        "intermediate_cert")
APP = ("security_headers", "banner_", "cookie_")
TOOL = ("engine_problem", "scanProblem", "optimal_proto", "pre_128cipher")
groups = {"server": [], "cert": [], "app": [], "tool": []}
for f in findings:
    if f.get("severity") not in ("LOW", "MEDIUM", "HIGH", "CRITICAL", "WARN"):
        continue
    fid = f["id"]
    g = "cert" if fid.startswith(CERT) else "app" if fid.startswith(APP) else \
        "tool" if fid.startswith(TOOL) else "server"
    groups[g].append(f)
print(f"Scanned with {version}: {len(findings)} checks.")
print()
titles = {"server": "Protocols, ciphers, vulnerabilities and server behaviour",
          "cert": "About the throw-away test certificate (private CA, two-day lifetime)",
          "app": "About the backend's own response headers (the application's to set)",
          "tool": "About the scanner's environment"}
for g in ("server", "cert", "app", "tool"):
    print(f"{titles[g]}, severity LOW or worse: {'none.' if not groups[g] else ''}")
    for f in groups[g]:
        print(f"- {f['severity']}: {f['id']}: {f['finding']}")
    print()
keep = ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3", "ALPN_HTTP2", "ALPN",
        "cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
        "cipherlist_3DES_IDEA", "cipherlist_AVERAGE", "cipherlist_STRONG", "PFS",
        "PFS_ECDHE_curves", "cipher_order", "OCSP_stapling", "cert_keySize", "HSTS_time",
        "sessionresumption_ticket",
        "heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego", "secure_client_renego",
        "CRIME_TLS", "BREACH", "POODLE_SSL", "fallback_SCSV", "SWEET32", "FREAK", "DROWN",
        "LOGJAM", "BEAST", "LUCKY13", "RC4")
print("| check | result |")
print("|---|---|")
for f in findings:
    if f["id"].split(" <cert#")[0] in keep:
        print(f"| {f['id']} | {f['finding']} ({f['severity']}) |")
PY
