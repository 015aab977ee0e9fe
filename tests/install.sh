#!/bin/sh
# SPDX-License-Identifier: MIT
# make install into a DESTDIR: every program, library, header, pkg-config
# file, man page, unit and the example configuration lands where configure
# said, and the libraries export only their API.
top=${abs_top_builddir:-.}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# shellcheck disable=SC2086
set -- $INSTALL_DIRS
[ $# -ge 6 ] || { echo "SKIP: run me from make check (INSTALL_DIRS)"; exit 77; }
sbindir=$1 bindir=$2 libdir=$3 includedir=$4 mandir=$5 sysconfdir=$6
unitdir=${7:-} sysusersdir=${8:-}

${MAKE:-make} -C "$top" install DESTDIR="$tmp" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "make install DESTDIR=$tmp"; }
d=$tmp
want="$sbindir/potad $bindir/potadctl $bindir/potad-demo
$libdir/libpotad.so $libdir/libpotad-engine.so
$libdir/pkgconfig/libpotad.pc $libdir/pkgconfig/libpotad-engine.pc
$includedir/potad/engine.h $includedir/potad/client.h
$sysconfdir/potad/potad.conf
$mandir/man7/potad.7 $mandir/man8/potad.8 $mandir/man8/potadctl.8
$mandir/man5/potad.conf.5 $mandir/man5/potad-journal.5
$mandir/man3/libpotad.3 $mandir/man3/potad_engine.3 $mandir/man3/potad_alloc.3
$mandir/man3/potad_claim.3 $mandir/man3/potad_client_alloc.3"
if [ -n "$unitdir" ]; then
	want="$want $unitdir/potad.service $unitdir/potad.socket"
fi
if [ -n "$sysusersdir" ]; then
	want="$want $sysusersdir/potad.conf"
fi
n=0
for f in $want; do
	[ -e "$d$f" ] || fail "make install did not install $f"
	n=$((n + 1))
done
echo "ok: $n files where configure said"

# Every public man page names a page that was installed with it.
for f in "$d$mandir"/man3/*.3; do
	l=$(sed -n 's/^\.so man3\///p' "$f")
	[ -z "$l" ] || [ -e "$d$mandir/man3/$l" ] || fail "$f links to missing $l"
done

# Only the API leaves the shared libraries.
if command -v nm >/dev/null 2>&1; then
	for lib in libpotad.so libpotad-engine.so; do
		extra=$(nm -D --defined-only "$d$libdir/$lib" |
			awk '$2 ~ /^[TDBR]$/ && $3 !~ /^potad_/ {print $3}')
		[ -z "$extra" ] || fail "$lib exports non-API symbols: $extra"
	done
	echo "ok: the libraries export only potad_* symbols"
fi
# The pkg-config file points at the installed library.
grep -q '^Libs: -L${libdir} -lpotad$' "$d$libdir/pkgconfig/libpotad.pc" ||
	fail "libpotad.pc: bad Libs line"
echo "PASS: make install"
