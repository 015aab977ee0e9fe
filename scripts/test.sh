#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# README's second command: install, build, and pass every test.
# POTAD_DISTCHECK=1 also runs `make distcheck`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
status=0
make -j"$(nproc)" check || status=$?
# Each Check program's closing line, then one summary over all of them.
passed=0 failed=0 skipped=0
for log in tests/*.log; do
	[ -f "$log" ] || continue
	name=$(basename "$log" .log)
	if grep -q '^:test-result: SKIP' "tests/$name.trs" 2>/dev/null; then
		skipped=$((skipped + 1))
		echo "$name: skipped: $(tail -n 1 "$log")"
		continue
	fi
	line=$(grep -h -E '^[0-9]+%: Checks: ' "$log" | tail -n 1 || true)
	if [ -z "$line" ]; then
		# Not a Check program: one test, judged by its result.
		if grep -q '^:test-result: PASS' "tests/$name.trs" 2>/dev/null; then
			passed=$((passed + 1))
			echo "$name: passed"
		else
			failed=$((failed + 1))
			echo "$name: failed (see $log)"
		fi
		continue
	fi
	echo "$name: $line"
	n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
	f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
	e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
	passed=$((passed + n - f - e))
	failed=$((failed + f + e))
done
[ "$status" -eq 0 ] || { [ -f test-suite.log ] && cat test-suite.log; }
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$status" -eq 0 ] && [ "${POTAD_DISTCHECK:-0}" = 1 ]; then
	make -j"$(nproc)" distcheck || status=$?
fi
exit "$status"
