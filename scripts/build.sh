#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configure (once) and build the tree in place.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure "$@"
make -j"$(nproc)"
