# SPDX-License-Identifier: MIT
# Sourced by the shell tests that run the daemon: the built potad and
# potadctl (skipped, 77, when they are not built), a scratch directory
# $dir removed at exit with the daemon whose pid is in $pid stopped, and
# fail(), which prints the daemon's log ($dir/log) with the reason.
top=${abs_top_builddir:-$(pwd)}
potad=${POTAD_DAEMON:-$top/daemon/potad}
ctl=$top/clients/potadctl
[ -x "$potad" ] && [ -x "$ctl" ] || { echo "SKIP: $potad or $ctl not built"; exit 77; }
dir=$(mktemp -d)
pid=
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; [ -f "$dir/log" ] && cat "$dir/log"; exit 1; }
