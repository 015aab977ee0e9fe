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
# The installed units pass systemd-analyze verify.  Only the DESTDIR
# prefix is put in front of the daemon's path, since verify checks that
# ExecStart's binary exists and a staged install has it under $d.
if [ -n "$unitdir" ] && command -v systemd-analyze >/dev/null 2>&1; then
	mkdir "$tmp/units"
	for u in potad.service potad.socket; do
		sed "s|^ExecStart=$sbindir/|ExecStart=$d$sbindir/|" \
			"$d$unitdir/$u" >"$tmp/units/$u" || fail "copy $u"
	done
	cmp -s "$d$unitdir/potad.service" "$tmp/units/potad.service" &&
		fail "potad.service does not start $sbindir/potad"
	out=$(systemd-analyze verify --man=no "$tmp/units/potad.socket" \
		"$tmp/units/potad.service" 2>&1) || fail "verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify complains: $out"
	echo "ok: systemd-analyze verify accepts the installed units"
fi
# The sysusers entry is one systemd-sysusers understands.
if [ -n "$sysusersdir" ] && command -v systemd-sysusers >/dev/null 2>&1; then
	mkdir -p "$tmp/sysroot"
	out=$(systemd-sysusers --dry-run --root="$tmp/sysroot" \
		"$d$sysusersdir/potad.conf" 2>&1) || fail "sysusers: $out"
	echo "$out" | grep -q "potad" ||
		fail "systemd-sysusers would not create the potad group: $out"
	echo "ok: systemd-sysusers would create the potad group"
fi
# The pkg-config file points at the installed library.
grep -q '^Libs: -L${libdir} -lpotad$' "$d$libdir/pkgconfig/libpotad.pc" ||
	fail "libpotad.pc: bad Libs line"
echo "PASS: make install"
