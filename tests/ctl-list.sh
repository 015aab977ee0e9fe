#!/bin/sh
# SPDX-License-Identifier: MIT
# potadctl list pages: a space with more extents than one reply may hold
# (max_queue is 4K here) is listed whole, in address order, each extent
# once, in the table and in JSON, with and without a label filter.
set -u
. "${srcdir:-.}/tests/lib.sh"

printf '[daemon]\nmax_queue = 4K\n\n[space p]\nkind = range\nsize = 1G\ngranule = 4K\nallow = all\n' >"$dir/c.conf"
"$potad" --foreground --memory-only --config "$dir/c.conf" \
	--socket "$dir/s.sock" 2>"$dir/log" &
pid=$!
for i in $(seq 50); do [ -S "$dir/s.sock" ] && break; sleep 0.1; done
export POTAD_SOCKET="$dir/s.sock"
n=150
i=0
while [ $i -lt $n ]; do
	l=plain
	[ $((i % 3)) -eq 0 ] && l=third
	"$ctl" alloc p 4K --label $l >/dev/null || fail "alloc $i"
	i=$((i + 1))
done

rows=$("$ctl" list p | tail -n +2 | wc -l) || fail "list"
[ "$rows" -eq $n ] || fail "list printed $rows rows, want $n"
# Offsets in the first column: increasing, none twice.
"$ctl" list p | tail -n +2 | while read -r off rest; do
	printf '%d\n' "$off"
done >"$dir/offs"
sort -n -u "$dir/offs" | cmp -s - "$dir/offs" ||
	fail "offsets are not strictly increasing"
echo "ok: list printed all $n extents in order over pages"

json=$("$ctl" --json list p) || fail "list --json"
cnt=$(printf '%s' "$json" | grep -o '"offset":' | wc -l)
[ "$cnt" -eq $n ] || fail "JSON listed $cnt extents, want $n"
case $json in
'{"space":"p","extents":['*']}') ;;
*) fail "JSON is not one document: $(printf '%s' "$json" | head -c 200)" ;;
esac
echo "ok: --json lists all $n in one document"

want=$(((n + 2) / 3))
rows=$("$ctl" list p --label third | tail -n +2 | wc -l)
[ "$rows" -eq $want ] || fail "--label third printed $rows rows, want $want"
echo "ok: a label filter over pages lists its $want"

kill -TERM $pid
wait $pid || fail "daemon exited $? after SIGTERM"
pid=
echo "3 passed, 0 failed"
