#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs tests/stock_client.py: a stock-protobuf Python client against the
# daemon, proving the wire can be spoken from proto/potad.proto alone.
#
# Debian's python3-protobuf lives with /usr/bin/python3, not with whatever
# python3 comes first on PATH, so that one is used.  Exits 77 (skip) when
# protoc or the library is missing.

srcdir=${srcdir:-$(dirname "$0")/..}
python=${POTAD_PYTHON:-/usr/bin/python3}
daemon=${POTAD_DAEMON:-${abs_top_builddir:-.}/daemon/potad}

if ! command -v protoc >/dev/null 2>&1; then
	echo "stock-client: SKIP: protoc not found (Debian: protobuf-compiler)"
	exit 77
fi
if ! [ -x "$python" ]; then
	echo "stock-client: SKIP: $python not found"
	exit 77
fi
if ! "$python" -c 'import google.protobuf' 2>/dev/null; then
	echo "stock-client: SKIP: $python has no google.protobuf" \
		"(Debian: python3-protobuf)"
	exit 77
fi
if ! [ -f "$srcdir/proto/potad.proto" ]; then
	echo "stock-client: $srcdir/proto/potad.proto not found (set srcdir)"
	exit 99
fi
if ! [ -x "$daemon" ]; then
	echo "stock-client: $daemon not found (set POTAD_DAEMON)"
	exit 99
fi
exec "$python" "$srcdir/tests/stock_client.py" \
	--proto "$srcdir/proto/potad.proto" --daemon "$daemon"
