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
[ "$status" -eq 0 ] || { [ -f test-suite.log ] && cat test-suite.log; }
bash scripts/summary.sh . tests
if [ "$status" -eq 0 ] && [ "${POTAD_DISTCHECK:-0}" = 1 ]; then
	make -j"$(nproc)" distcheck || status=$?
fi
exit "$status"
