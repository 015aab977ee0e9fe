#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs tests/crash_test twice: with the daemon's default journal writer
# (io_uring where the kernel allows it) and with --journal-io sync (the
# pwrite and fdatasync fallback).
#
# POTAD_CRASH_CYCLES (default 50) and POTAD_SEED reach the driver; a
# failure prints the line that reproduces it.  Exits 0 when every run that
# could run passed, 77 when none could, 1 when one failed.

builddir=${abs_top_builddir:-.}
driver=${POTAD_CRASH_TEST:-$builddir/tests/crash_test}

if ! [ -x "$driver" ]; then
	echo "crash: $driver not found (make tests/crash_test)"
	exit 99
fi

ran=0
failed=0
for mode in default sync; do
	if [ "$mode" = default ]; then
		set --
	else
		set -- --journal-io "$mode"
	fi
	echo "crash: journal writer: $mode"
	"$driver" "$@"
	rc=$?
	case $rc in
	0) ran=$((ran + 1)) ;;
	77) echo "crash: journal writer $mode: skipped" ;;
	*)
		echo "crash: journal writer $mode: FAILED (exit status $rc)"
		failed=1
		;;
	esac
done
if [ $failed -ne 0 ]; then
	exit 1
fi
if [ $ran -eq 0 ]; then
	exit 77
fi
exit 0
