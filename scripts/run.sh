#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# README's first command: install, build, and show the engine allocating.
# Until the daemon lands (issue 3) this runs the engine demo in memory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
./clients/potad-demo "$@"
