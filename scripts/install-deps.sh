#!/usr/bin/env bash
# Installs every Debian 12 package WanStudio needs to build, run and test. Idempotent and non-interactive;
# quick (no apt-get at all) when everything is already present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  dpkg-dev                                       # dpkg-shlibdeps for the .deb's Depends (cpack)
  libtorch-dev                                   # LibTorch 1.13.1 (CPU)
  libopenmpi-dev openmpi-bin                     # MPI (control plane; CPU collectives)
  nlohmann-json3-dev                             # JSON
  libsentencepiece-dev                           # optional: the text_spm_crosscheck test only
  libgtest-dev libgmock-dev                      # tests
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev   # video writer (FFmpeg 5.1)
  libcurl4-openssl-dev libpcre2-dev              # prompt extension (DashScope, BPE pre-tokenizer)
  libssl-dev                                     # OpenSSL's SHA-256 for LoRA files (optional: built-in fallback)
  qt6-base-dev qt6-multimedia-dev libqt6opengl6-dev   # desktop app, Qt Test
  qt6-httpserver-dev qt6-websockets-dev          # --listen: the remote engine's HTTP + WebSocket API
  qml6-module-qtmultimedia gstreamer1.0-plugins-good gstreamer1.0-libav  # video preview playback
  xvfb xauth                                     # GUI tests and screenshots without a display
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
