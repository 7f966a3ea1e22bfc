#!/bin/sh
# scripts/deps.sh — make sure the Debian packages ringlb needs are installed.
#
# Runs before every `make run` / `make test` / `make bench`, so the common case
# (everything present) is one dpkg-query call and no output.
#
#   - everything installed:  prints nothing, exits 0
#   - something missing, root: `apt-get update` once, then installs exactly the
#     missing packages (no recommends, non-interactive, no service starts)
#   - something missing, not root: prints the `sudo apt-get install ...` line
#     and exits 1
#
# It also warns (without failing) when io_uring is disabled by the kernel
# sysctl. It never starts or stops services.

set -eu

# libclang-rt-14-dev: libFuzzer and the sanitizer runtimes for clang 14.
PACKAGES="build-essential pkg-config liburing-dev android-libboringssl-dev"
PACKAGES="$PACKAGES libxxhash-dev libcmocka-dev libyaml-dev liburcu-dev"
PACKAGES="$PACKAGES clang libclang-rt-14-dev python3 curl wrk nginx haproxy"
PACKAGES="$PACKAGES openssl procps iproute2 libnghttp2-dev nghttp2-client testssl.sh"
PACKAGES="$PACKAGES zlib1g-dev libbrotli-dev libzstd-dev"
# libpcre2-dev: request filter patterns; libseccomp-dev: the optional system call
# allow-list; slowhttptest: the slow-client benchmark (bench/slow.sh).
PACKAGES="$PACKAGES libpcre2-dev libseccomp-dev slowhttptest"

check_kernel() {
	f=/proc/sys/kernel/io_uring_disabled
	if [ -r "$f" ]; then
		v=$(cat "$f" 2>/dev/null || echo 0)
		if [ "$v" != "0" ]; then
			echo "deps.sh: warning: io_uring is restricted by the kernel" \
				"(kernel.io_uring_disabled=$v); ringlb will fail to start." >&2
			echo "deps.sh: fix (as root): sysctl -w kernel.io_uring_disabled=0" >&2
		fi
	fi
}

# missing_packages prints the packages of $PACKAGES that are not fully
# installed ("ii" in dpkg's database), space separated; empty if none.
missing_packages() {
	# One dpkg-query for all of them; unknown packages are simply absent
	# from its output (it complains on stderr and exits 1: both ignored).
	# shellcheck disable=SC2086
	installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' $PACKAGES 2>/dev/null |
		awk '$2 == "ii" { printf " %s", $1 }' || true)
	out=""
	for p in $PACKAGES; do
		case "$installed " in
		*" $p "*) ;;
		*) out="$out $p" ;;
		esac
	done
	echo "${out# }"
}

check_kernel

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: not a Debian-based system (no dpkg-query); install the equivalents of:" >&2
	echo "  $PACKAGES" >&2
	exit 0
fi

missing=$(missing_packages)
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != "0" ]; then
	echo "deps.sh: missing packages: $missing" >&2
	echo "deps.sh: install them with:" >&2
	echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing" >&2
	exit 1
fi

echo "deps.sh: installing: $missing"

# Installing nginx or haproxy would normally start their services. Prevent
# that for the duration of the install only: with a policy-rc.d that denies
# every start (exit 101), created here and removed on exit. An existing
# policy-rc.d (e.g. Docker's) is left exactly as it is. RUNLEVEL=1 also keeps
# sysvinit's invoke-rc.d from starting anything.
POLICY=/usr/sbin/policy-rc.d
POLICY_MARK="# ringlb scripts/deps.sh temporary policy"
created_policy=0
remove_policy() {
	if [ "$created_policy" = 1 ] && [ -f "$POLICY" ] && grep -qF "$POLICY_MARK" "$POLICY"; then
		rm -f "$POLICY"
	fi
	created_policy=0
}
trap remove_policy EXIT
trap 'remove_policy; exit 130' INT
trap 'remove_policy; exit 143' TERM HUP

if [ ! -e "$POLICY" ]; then
	created_policy=1
	printf '#!/bin/sh\n%s\nexit 101\n' "$POLICY_MARK" >"$POLICY"
	chmod 755 "$POLICY"
fi

export DEBIAN_FRONTEND=noninteractive RUNLEVEL=1
apt-get update
# shellcheck disable=SC2086 # $missing is a list of package names
apt-get install -y --no-install-recommends $missing

remove_policy

still=$(missing_packages)
if [ -n "$still" ]; then
	echo "deps.sh: still missing after install: $still" >&2
	exit 1
fi
echo "deps.sh: all packages installed"
