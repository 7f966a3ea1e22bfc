#!/bin/sh
# Runs every cmocka unit-test binary given on the command line and prints one
# summary line. A binary that exits 77 was skipped (a missing kernel feature).
build="$1"; shift
passed=0; failed=0; skipped=0
for t in "$@"; do
	out=$("$t" 2>&1); rc=$?
	if [ $rc -eq 0 ]; then passed=$((passed + 1))
	elif [ $rc -eq 77 ]; then skipped=$((skipped + 1)); echo "SKIP $t"
	else failed=$((failed + 1)); echo "$out"; echo "FAIL $t (exit $rc)"; fi
done
echo "# unit test binaries in $build"; echo "unit: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
