#!/bin/sh
# SPDX-License-Identifier: MIT
# Lint every man page with groff's warnings on; any warning fails.
# A page that is only a ".so manN/page.N" link (the way liburing and the
# Linux man-pages alias one page to another) is checked for a target in
# man/ instead: groff resolves .so relative to the installed man tree.
command -v groff >/dev/null 2>&1 || { echo "SKIP: groff not installed"; exit 77; }
status=0 n=0
for page in "${srcdir:-.}"/man/*.[1-8]; do
	n=$((n + 1))
	if [ "$(wc -l <"$page")" -eq 1 ] && grep -q '^\.so man[1-8]/[^/ ]*$' "$page"; then
		target=$(sed 's|^\.so man[1-8]/||' "$page")
		if [ -f "${srcdir:-.}/man/$target" ]; then
			echo "ok: $page (link to $target)"
		else
			echo "FAIL: $page: link to missing man/$target"
			status=1
		fi
		continue
	fi
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
