#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# README's first command: install, build, start the daemon on its built-in
# configuration (one 1 GiB range space, "default"), and show potadctl
# allocating, aligning, looking up, shrinking and freeing.  The daemon
# keeps running; the last lines say how to talk to it and how to stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh

run=${POTAD_RUN_DIR:-$PWD/run}
mkdir -p "$run"
export POTAD_SOCKET=$run/potad.sock
ctl() {
	echo "\$ potadctl $*"
	./clients/potadctl "$@"
	echo
}

if ./clients/potadctl hello >/dev/null 2>&1; then
	echo "potad is already serving on $POTAD_SOCKET"
else
	./daemon/potad --socket "$POTAD_SOCKET" --state-dir "$run/state" \
		2>>"$run/potad.log"
	echo "(daemon log: $run/potad.log)"
fi
echo

ctl spaces
ctl alloc default 12K --label demo
# The 8 MiB extent's offset, for the lookup below: an address inside it.
echo "\$ potadctl alloc default 8M --align 1M --label demo"
out=$(./clients/potadctl alloc default 8M --align 1M --label demo)
echo "$out"
echo
big=$(echo "$out" | sed -E 's/.*offset (0x[0-9a-f]+).*/\1/')
ctl alloc default 100K --top-down --label demo
h=$(./clients/potadctl --json alloc default 64K --label demo |
	sed -E 's/.*"handle":"([^"]+)".*/\1/')
echo "\$ potadctl --json alloc default 64K --label demo   # handle $h"
echo
ctl lookup default "$(printf '%#x' $((big + 0x100000)))"
ctl shrink default "$h" 16K
ctl list default --label demo
ctl buddyinfo default
ctl free default "$h"
echo "\$ potadctl free default $h   # again: refused, nothing changes"
./clients/potadctl free default "$h" || true
echo
ctl space stat default --frag

# A real swap file: potad identifies it with libblkid, reads its header for
# the usable pages and bad pages, and journals its UUID.  A freed extent is
# dirty (it holds its owner's data); --clean asks for untouched units.
if [ ! -f "$run/swapfile" ]; then
	truncate -s 64M "$run/swapfile"
	PATH=$PATH:/usr/sbin:/sbin mkswap -q "$run/swapfile" >/dev/null
fi
if ! ./clients/potadctl space stat swap0 >/dev/null 2>&1; then
	ctl space add swap0 --kind swap --path "$run/swapfile"
fi
h=$(./clients/potadctl --json alloc swap0 1M --label demo |
	sed -E 's/.*"handle":"([^"]+)".*/\1/')
echo "\$ potadctl --json alloc swap0 1M --label demo   # handle $h"
echo
ctl free swap0 "$h"
ctl alloc swap0 1M --clean --label demo
ctl spaces

# Every acknowledged change is in the journal: a restart finds it again.
pid=$(pgrep -f "potad --socket $POTAD_SOCKET" | head -n 1 || true)
if [ -n "$pid" ]; then
	echo "\$ kill $pid; potad ...   # restart: the extents come back"
	kill "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	./daemon/potad --socket "$POTAD_SOCKET" --state-dir "$run/state" \
		2>>"$run/potad.log"
	ctl list default --label demo
	ctl list swap0 --label demo
	pid=$(pgrep -f "potad --socket $POTAD_SOCKET" | head -n 1 || true)
fi
cat <<MSG
potad is serving on $POTAD_SOCKET (pid ${pid:-?}); its journal is in
$run/state (potad --check --state-dir $run/state inspects it).
  export POTAD_SOCKET=$POTAD_SOCKET; ./clients/potadctl --help
  stop it with: kill ${pid:-<pid>}
MSG
