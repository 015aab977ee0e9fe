#!/bin/sh
# SPDX-License-Identifier: MIT
# potadctl shrink: the extent keeps its head under the same handle, the
# tail is free again, and what cannot be kept is refused with a message.
set -u
. "${srcdir:-.}/tests/lib.sh"

"$potad" --foreground --memory-only --socket "$dir/s.sock" 2>"$dir/log" &
pid=$!
for i in $(seq 50); do [ -S "$dir/s.sock" ] && break; sleep 0.1; done
export POTAD_SOCKET="$dir/s.sock"

out=$("$ctl" --json alloc default 64K --label vol) || fail "alloc"
h=$(printf '%s' "$out" | sed -n 's/.*"handle":"\(0x[0-9a-f]*\)".*/\1/p')
[ -n "$h" ] || fail "no handle in $out"
out=$("$ctl" shrink default "$h" 16K) || fail "shrink: $out"
case $out in
"shrunk space default offset 0x0 length 16K handle $h") ;;
*) fail "shrink printed: $out" ;;
esac
echo "ok: shrink keeps 16K of 64K under handle $h"

out=$("$ctl" --json lookup default 0x3fff) || fail "lookup in the head"
case $out in *'"length":16384,"handle":"'"$h"'"'*) ;;
*) fail "lookup of the head: $out" ;; esac
"$ctl" lookup default 0x4000 >/dev/null 2>&1 && fail "the tail is still held"
out=$("$ctl" --json shrink default "$h" 8K) || fail "shrink --json"
case $out in
'{"space":"default","offset":0,"length":8192,"handle":"'"$h"'","shrunk":true}') ;;
*) fail "shrink --json printed: $out" ;;
esac
echo "ok: the tail is free, and --json says what is kept"

err=$("$ctl" shrink default "$h" 8K 2>&1) && fail "kept all of it: $err"
case $err in *"cannot keep 8192 bytes"*) ;;
*) fail "refusal said: $err" ;; esac
"$ctl" shrink default "$h" 0 >/dev/null 2>&1 && fail "shrink to 0 accepted"
echo "ok: a length not shorter, or 0, is refused"

kill -TERM $pid
wait $pid || fail "daemon exited $? after SIGTERM"
pid=
echo "3 passed, 0 failed"
