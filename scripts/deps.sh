#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian packages potad builds and tests with (run as root).
# The one list of build dependencies; README's commands and CI use it.
set -euo pipefail

pkgs=(
	build-essential autoconf automake libtool pkg-config
	libuv1-dev             # the daemon's event loop
	libprotobuf-c-dev      # the wire format
	protobuf-c-compiler    # protoc-c generates the C code from proto/
	liburing-dev           # journal writes through io_uring
	libinih-dev            # the configuration file
	libblkid-dev           # the swap and block device probes
	libsystemd-dev         # socket activation and sd_notify (optional)
	systemd                # tests: systemd-analyze, systemd-socket-activate
	check                  # unit and randomized tests
	util-linux mount       # probe tests: mkswap, blkid; losetup, mount
	e2fsprogs fdisk        # probe tests: mkfs.ext4; sfdisk
	python3-protobuf protobuf-compiler  # a stock-protobuf client test
	clang libclang-rt-14-dev  # make fuzz: the libFuzzer targets and runtime
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#pkgs[@]} packages present"
	exit 0
fi
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: need root to install packages (try: sudo $0)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
