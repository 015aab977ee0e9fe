#!/bin/sh
# SPDX-License-Identifier: MIT
# Lint every man page with groff's warnings on; any warning fails.
command -v groff >/dev/null 2>&1 || { echo "SKIP: groff not installed"; exit 77; }
status=0 n=0
for page in "${srcdir:-.}"/man/*.[1-8]; do
	n=$((n + 1))
	out=$(groff -t -ww -z -man "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "FAIL: $page"
		echo "$out"
		status=1
	else
		echo "ok: $page"
	fi
done
[ "$n" -gt 0 ] || { echo "FAIL: no man pages found"; exit 1; }
exit $status
