#!/usr/bin/env bash
# Run HERE (Debian 12), not on the GPU machine: downloads the few C++ libraries the GPU machine lacks
# (it has no network) as Debian packages into .gpudeps/, which the device run carries and unpacks.
# Debian 12 binaries run on the GPU machine's Ubuntu 24.04 (newer glibc/libstdc++).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpudeps
EXCLUDE="$(git rev-parse --git-common-dir)/info/exclude"
mkdir -p "$(dirname "$EXCLUDE")"
grep -qx '/.gpudeps/' "$EXCLUDE" 2>/dev/null || echo '/.gpudeps/' >> "$EXCLUDE"
cd .gpudeps
apt-get download libsentencepiece0 libsentencepiece-dev nlohmann-json3-dev googletest >/dev/null
ls -la
