#!/bin/sh
# make lint: the style rules a compiler cannot check.
#  1. every C file is formatted as .clang-format says;
#  2. no unbounded string calls anywhere (sprintf, strcpy, strcat, gets);
#  3. no malloc/calloc/realloc in the request-path files: they run per
#     request and must take memory only from slabs sized at start-up;
#  4. functions fit on a screen (at most 90 lines, body included).
set -u
cd "$(dirname "$0")/.." || exit 1
status=0
files=$(git ls-files '*.c' '*.h')

if ! clang-format --dry-run -Werror $files >/dev/null 2>&1; then
	echo "lint: not formatted (run make format):"
	clang-format --dry-run $files 2>&1 | grep warning | cut -d: -f1 | sort -u
	status=1
fi
if grep -nE '\b(sprintf|vsprintf|strcpy|strcat|gets)\(' $files; then
	echo "lint: unbounded string call above (use snprintf/memcpy with a bound)"
	status=1
fi
hot="core/proxy.c core/upstream.c core/buf.c core/ring.c core/h1.c core/timer.c"
if grep -nE '\b(malloc|calloc|realloc)\(' $hot | grep -v 'boot-time'; then
	echo "lint: allocation in a request-path file above"
	status=1
fi
long=$(awk '
	FNR == 1 { infn = 0 }
	/^[a-z].*\)$/ || /^[a-z].*[^;]$/ { sig = FNR; name = $0 }
	/^\{/ { infn = 1; start = sig }
	/^\}/ && infn { if (FNR - start > 90) printf "%s:%d: %d lines: %s\n", FILENAME, start, FNR - start, name; infn = 0 }
' $(git ls-files '*.c'))
if [ -n "$long" ]; then
	echo "$long"
	echo "lint: functions above are longer than 90 lines"
	status=1
fi
[ $status -eq 0 ] && echo "lint: clean"
exit $status
