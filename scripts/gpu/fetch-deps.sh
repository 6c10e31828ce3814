#!/usr/bin/env bash
# Run HERE (Debian 12), not on the GPU machine: downloads the few C++ libraries the GPU machine lacks
# (it has no network) into .gpudeps/, which the device run carries and scripts/gpu/build.sh unpacks:
#  - Debian packages (sentencepiece, nlohmann-json, googletest); Debian 12 binaries run on the GPU machine's
#    Ubuntu 24.04 (newer glibc/libstdc++); libssl-dev for OpenSSL's headers only (build.sh links the machine's
#    own libcrypto.so.3, which Ubuntu always has);
#  - FlashAttention-3's Hopper sources and the CUTLASS headers they pin (Note [FlashAttention-3] in
#    engine/dit/layers.cpp), as two tarballs at fixed commits. Give local clones with WAN_FA3_GIT /
#    WAN_CUTLASS_GIT (git directories) to skip the download.
set -euo pipefail
cd "$(dirname "$0")/../.."
FA3_COMMIT=0251105a2fb19d2957484b7f023cd8c115286ced      # Dao-AILab/flash-attention, 2026-08-15
CUTLASS_COMMIT=7127592069c2fe01b041e174ba4345ef9b279671  # NVIDIA/cutlass, flash-attention's csrc/cutlass pin
mkdir -p .gpudeps
EXCLUDE="$(git rev-parse --git-common-dir)/info/exclude"
mkdir -p "$(dirname "$EXCLUDE")"
grep -qx '/.gpudeps/' "$EXCLUDE" 2>/dev/null || echo '/.gpudeps/' >> "$EXCLUDE"
DEPS=$PWD/.gpudeps
(cd "$DEPS" && apt-get download libsentencepiece0 libsentencepiece-dev nlohmann-json3-dev googletest libssl-dev >/dev/null)

# $1 repository URL, $2 commit, $3 git dir override (may be empty) → prints a git dir holding the commit
git_dir_with() {
  if [ -n "$3" ]; then echo "$3"; return; fi
  local dir
  dir=/tmp/wan-fetch-$(basename "$1" .git)
  [ -d "$dir" ] || git clone --bare --filter=blob:none "$1" "$dir" >&2
  git --git-dir="$dir" cat-file -e "$2^{commit}" 2>/dev/null || git --git-dir="$dir" fetch origin "$2" >&2
  echo "$dir"
}
fa3=$(git_dir_with https://github.com/Dao-AILab/flash-attention.git $FA3_COMMIT "${WAN_FA3_GIT:-}")
git --git-dir="$fa3" archive --prefix=flash-attention/ -o "$DEPS/flash-attention-hopper.tar.gz" $FA3_COMMIT hopper
cutlass=$(git_dir_with https://github.com/NVIDIA/cutlass.git $CUTLASS_COMMIT "${WAN_CUTLASS_GIT:-}")
git --git-dir="$cutlass" archive --prefix=cutlass/ -o "$DEPS/cutlass-include.tar.gz" $CUTLASS_COMMIT include
ls -la "$DEPS"
