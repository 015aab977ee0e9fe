#!/bin/sh
# SPDX-License-Identifier: MIT
# The example configuration starts the daemon with its declared space, and
# a configuration error stops start-up with a message naming the key.
set -u
top=${abs_top_builddir:-$(pwd)}
potad=${POTAD_DAEMON:-$top/daemon/potad}
ctl=$top/clients/potadctl
conf=${srcdir:-.}/etc/potad.conf
[ -x "$potad" ] && [ -x "$ctl" ] || { echo "SKIP: $potad or $ctl not built"; exit 77; }
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; [ -f "$dir/log" ] && cat "$dir/log"; exit 1; }

sed "s|/run/potad/potad.sock|$dir/s.sock|; s|/var/lib/potad|$dir/state|" \
	"$conf" >"$dir/c.conf"
"$potad" --foreground --config "$dir/c.conf" 2>"$dir/log" &
pid=$!
for i in $(seq 50); do [ -S "$dir/s.sock" ] && break; sleep 0.1; done
out=$(POTAD_SOCKET=$dir/s.sock "$ctl" --json spaces) || fail "spaces: $out"
echo "$out" | grep -q '"name":"ids"' || fail "space ids missing: $out"
echo "$out" | grep -q '"size":4294967296' || fail "ids is not 4G: $out"
out=$(POTAD_SOCKET=$dir/s.sock "$ctl" --json alloc ids 1 --align 1024) ||
	fail "alloc: $out"
echo "ok: example configuration serves space ids: $out"
kill -TERM $pid
wait $pid || fail "daemon exited $? after SIGTERM"
pid=

printf '[daemon]\nmax_frame = lots\n' >"$dir/bad.conf"
if "$potad" --foreground --config "$dir/bad.conf" 2>"$dir/log"; then
	fail "a bad value was accepted"
fi
grep -q 'max_frame' "$dir/log" || fail "the error does not name the key"
echo "ok: a bad value stops start-up: $(cat "$dir/log")"
echo "2 passed, 0 failed"
