#!/bin/sh
# SPDX-License-Identifier: MIT
# The systemd units pass systemd-analyze verify, and the daemon works with
# systemd's protocols without systemd: it serves on a socket passed by
# systemd-socket-activate, and reports READY=1, STATUS= and STOPPING=1 to
# a NOTIFY_SOCKET.  Parts whose tools are missing are skipped with a line.
set -u
src=${srcdir:-.}
. "$src/tests/lib.sh"
passed=0
skipped=0

# 1. The units, with ExecStart pointing at the built daemon so that verify
# checks a binary that exists; any complaint (even an ignored unknown key)
# fails.
if command -v systemd-analyze >/dev/null; then
	for u in service socket; do
		sed -e "s|@sbindir@|$top/daemon|g; s|@sysconfdir@|$dir|g" \
			"$src/etc/potad.$u.in" >"$dir/potad.$u" ||
			fail "cannot fill in etc/potad.$u.in"
	done
	out=$(systemd-analyze verify --man=no "$dir/potad.socket" \
		"$dir/potad.service" 2>&1) || fail "verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify complains: $out"
	grep -q '^ExecStart=.*--foreground' "$dir/potad.service" ||
		fail "ExecStart does not keep potad in the foreground"
	echo "ok: systemd-analyze verify accepts potad.socket and potad.service"
	passed=$((passed + 1))
else
	echo "SKIP: systemd-analyze not installed (apt-get install systemd)"
	skipped=$((skipped + 1))
fi

# 2. potad --unit-dropin: one line per device or file, from the
# configuration and from the journal (a space added at run time), and a
# drop-in systemd-analyze verify accepts beside the units.
cat >"$dir/dropin.conf" <<EOF
[space disk0]
kind = blockdev
path = /dev/null
[space ids]
kind = range
base = 0
size = 1G
[child kid]
parent = ids
size = 64M
EOF
: >"$dir/f1" && truncate -s 16M "$dir/f1" || fail "cannot make $dir/f1"
"$potad" --foreground --state-dir "$dir/dst" --socket "$dir/d.sock" \
	2>"$dir/log" &
pid=$!
for i in $(seq 50); do [ -S "$dir/d.sock" ] && break; sleep 0.1; done
out=$("$ctl" --socket "$dir/d.sock" space add f1 --kind file \
	--path "$dir/f1" 2>&1) || fail "space add f1: $out"
kill -TERM $pid
wait $pid || fail "daemon exited $? after SIGTERM"
pid=
"$potad" --unit-dropin --config "$dir/dropin.conf" --state-dir "$dir/dst" \
	>"$dir/dropin.out" 2>"$dir/log" || fail "--unit-dropin failed"
want="[Service]
DeviceAllow=/dev/null rw
ReadWritePaths=$(realpath "$dir/f1")"
got=$(grep -v '^#' "$dir/dropin.out")
[ "$got" = "$want" ] || fail "--unit-dropin printed:
$(cat "$dir/dropin.out")
expected:
$want"
if [ -f "$dir/potad.service" ]; then
	mkdir "$dir/potad.service.d" &&
		cp "$dir/dropin.out" "$dir/potad.service.d/spaces.conf"
	out=$(systemd-analyze verify --man=no "$dir/potad.socket" \
		"$dir/potad.service" 2>&1) || fail "verify with the drop-in: $out"
	[ -z "$out" ] || fail "systemd-analyze verify complains: $out"
fi
echo "ok: --unit-dropin names the configured device and the journaled file"
passed=$((passed + 1))

# The daemon must be built with libsystemd for the rest.
if ! grep -q '^#define HAVE_LIBSYSTEMD 1' "$top/config.h" 2>/dev/null; then
	echo "SKIP: potad built without libsystemd: no socket activation or" \
		"notify to test"
	[ $passed -gt 0 ] && exit 0
	exit 77
fi

# 3. Socket activation: systemd-socket-activate binds, potad inherits.
if command -v systemd-socket-activate >/dev/null; then
	systemd-socket-activate -l "$dir/s.sock" "$potad" --foreground \
		--memory-only --state-dir "$dir/st" --socket "$dir/unused.sock" \
		2>"$dir/log" &
	pid=$!
	for i in $(seq 50); do [ -S "$dir/s.sock" ] && break; sleep 0.1; done
	out=$("$ctl" --socket "$dir/s.sock" hello 2>&1) ||
		fail "hello over the inherited socket: $out"
	grep -q 'inherited from systemd' "$dir/log" ||
		fail "the daemon does not log that it uses the inherited socket"
	[ ! -e "$dir/unused.sock" ] || fail "potad bound --socket as well"
	kill -TERM $pid
	wait $pid || fail "daemon exited $? after SIGTERM"
	pid=
	[ -S "$dir/s.sock" ] ||
		fail "potad unlinked the socket systemd-socket-activate made"
	echo "ok: serves on the inherited socket and leaves it in place: $out"
	passed=$((passed + 1))
else
	echo "SKIP: systemd-socket-activate not installed (apt-get install systemd)"
	skipped=$((skipped + 1))
fi

# 4. sd_notify: a datagram listener stands in for systemd.  Without
# --foreground potad must still not detach, since NOTIFY_SOCKET is set.
if command -v python3 >/dev/null; then
	python3 - "$dir/notify.sock" "$dir/notify.txt" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
with open(sys.argv[2], "w") as out:
    while True:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        out.write(msg + "\n")
        out.flush()
        if "STOPPING=1" in msg:
            break
PY
	lpid=$!
	for i in $(seq 50); do [ -S "$dir/notify.sock" ] && break; sleep 0.1; done
	NOTIFY_SOCKET=$dir/notify.sock "$potad" \
		--state-dir "$dir/st2" --socket "$dir/n.sock" 2>"$dir/log" &
	pid=$!
	for i in $(seq 50); do
		grep -q 'READY=1' "$dir/notify.txt" 2>/dev/null && break
		sleep 0.1
	done
	grep -q 'READY=1' "$dir/notify.txt" || fail "no READY=1 arrived"
	grep -Eq '^STATUS=serving 1 space\(s\), 0 extent\(s\); (last checkpoint [0-9-]+ [0-9:]+|no checkpoint yet)$' \
		"$dir/notify.txt" ||
		fail "no STATUS= line: $(cat "$dir/notify.txt")"
	kill -0 $pid 2>/dev/null || fail "potad detached under NOTIFY_SOCKET"
	kill -TERM $pid
	wait $pid || fail "daemon exited $? after SIGTERM"
	pid=
	wait $lpid
	grep -q 'STOPPING=1' "$dir/notify.txt" ||
		fail "no STOPPING=1 after SIGTERM: $(cat "$dir/notify.txt")"
	echo "ok: notify sent $(tr '\n' ' ' <"$dir/notify.txt")"
	passed=$((passed + 1))
else
	echo "SKIP: python3 not installed: no NOTIFY_SOCKET listener"
	skipped=$((skipped + 1))
fi

echo "systemd: $passed passed, $skipped skipped"
[ $passed -gt 0 ] || exit 77
exit 0
