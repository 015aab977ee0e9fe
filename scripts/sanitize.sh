#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite again, built with AddressSanitizer, LeakSanitizer
# and UndefinedBehaviorSanitizer (./configure --enable-sanitizers), in
# build-san/ beside the normal build.  Any sanitizer report fails the test
# that saw it: a memory error or undefined behaviour aborts the program,
# and a daemon that leaks exits non-zero at its clean stop, which the
# integration tests refuse.  This build also leaves libsystemd out
# (--without-systemd), so the daemon's plain path is tested as well.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# configure refuses a build directory beside an in-tree build, so the
# sanitized build gets its own copy of the sources: `make distdir`, the
# same file list distcheck proves complete.
bash scripts/build.sh
rm -rf build-san && mkdir build-san
make -s distdir distdir=build-san/src >/dev/null
mkdir build-san/build
cd build-san/build
../src/configure -q --enable-sanitizers --without-systemd
make -j"$(nproc)" >/dev/null
# abort_on_error: a report kills the program with SIGABRT, which no test
# mistakes for a refusal.  A small quarantine keeps RSS comparable to the
# normal build for the tests that bound the daemon's memory.
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:quarantine_size_mb=32:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=exitcode=23
status=0
make -j"$(nproc)" check || status=$?
[ "$status" -eq 0 ] || { [ -f test-suite.log ] && cat test-suite.log; }
bash ../../scripts/summary.sh . sanitizers
exit "$status"
