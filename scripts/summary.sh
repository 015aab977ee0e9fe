#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sum up a `make check` run in build directory DIR (default: the tree):
# each Check program's closing line, each other test's result, then one
# line "WHAT: N passed, N failed, N skipped" (WHAT defaults to "tests").
# Exits 0; the caller decides from make's status.
set -euo pipefail
dir=${1:-.}
what=${2:-tests}
passed=0 failed=0 skipped=0
for log in "$dir"/tests/*.log "$dir"/tests/*/*.log; do
	[ -f "$log" ] || continue
	trs=${log%.log}.trs
	[ -f "$trs" ] || continue # not a test's log
	name=${log#"$dir"/tests/}
	name=${name%.log}
	if grep -q '^:test-result: SKIP' "$trs" 2>/dev/null; then
		skipped=$((skipped + 1))
		echo "$name: skipped: $(tail -n 1 "$log")"
		continue
	fi
	line=$(grep -h -E '^[0-9]+%: Checks: ' "$log" | tail -n 1 || true)
	if [ -z "$line" ]; then
		# Not a Check program: one test, judged by its result.
		if grep -q '^:test-result: PASS' "$trs" 2>/dev/null; then
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
echo "$what: $passed passed, $failed failed, $skipped skipped"
