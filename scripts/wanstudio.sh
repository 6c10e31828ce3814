#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs dependencies, builds, and runs `wanstudio` with the
# given options (headless when --prompt/--batch is given; with no --ckpt-dir it uses the built-in tiny demo
# checkpoint). Example: scripts/wanstudio.sh --prompt "a red fox running through snow"
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
scripts/install-deps.sh
BUILD_DIR=${WAN_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "${WAN_JOBS:-$(nproc)}" --target wanstudio >&2
exec "$BUILD_DIR/app/wanstudio" "$@"
