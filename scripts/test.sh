#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs dependencies, configures, builds, runs ctest.
# Usage: scripts/test.sh [extra ctest args, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_DIR=${WAN_BUILD_DIR:-build}
JOBS=${WAN_JOBS:-$(nproc)}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
cd "$BUILD_DIR"
exec ctest --output-on-failure --timeout 900 -j "$JOBS" "$@"
