#!/usr/bin/env bash
# Run ON the GPU machine (device tool), from the repository root, with .gpudeps carried:
#   scripts/gpu/build.sh            configure + build engine, tests and wan-bench (no Qt, no FFmpeg)
#   WAN_BUILD_TARGETS="wan-bench test_gpu_parity" scripts/gpu/build.sh   only those targets (a quicker round)
#   WAN_FA3=0 scripts/gpu/build.sh   without FlashAttention-3 even when .gpudeps has its sources
# Prints the LibTorch/CUDA/NCCL versions found. Build dir: build-gpu (kept between calls on a warm machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
if [ ! -f /usr/local/include/sentencepiece_processor.h ]; then
  mkdir -p /tmp/deps
  for f in .gpudeps/*.deb; do dpkg -x "$f" /tmp/deps; done
  # OpenSSL for the LoRA files' SHA-256: the headers from .gpudeps where the machine has none, linked against its
  # own libcrypto.so.3 (Ubuntu always has it); with neither, CMake falls back to the built-in SHA-256.
  if [ -f /usr/include/openssl/evp.h ] || [ ! -e /usr/lib/x86_64-linux-gnu/libcrypto.so.3 ]; then
    rm -rf /tmp/deps/usr/include/openssl /tmp/deps/usr/include/x86_64-linux-gnu/openssl
  elif [ -d /tmp/deps/usr/include/openssl ]; then
    mkdir -p /usr/local/lib && ln -sf /usr/lib/x86_64-linux-gnu/libcrypto.so.3 /usr/local/lib/libcrypto.so
  fi
  cp -a /tmp/deps/usr/include/* /usr/local/include/
  cp -a /tmp/deps/usr/lib/x86_64-linux-gnu/libsentencepiece* /usr/local/lib/
  mkdir -p /usr/local/lib/pkgconfig /usr/local/share/cmake
  sed 's#^prefix=.*#prefix=/usr/local#; s#^libdir=.*#libdir=${prefix}/lib#' \
    /tmp/deps/usr/lib/x86_64-linux-gnu/pkgconfig/sentencepiece.pc > /usr/local/lib/pkgconfig/sentencepiece.pc
  cp -a /tmp/deps/usr/share/cmake/nlohmann_json /usr/local/share/cmake/
  cmake -S /tmp/deps/usr/src/googletest -B /tmp/gtest-build -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_POSITION_INDEPENDENT_CODE=ON >/dev/null
  cmake --build /tmp/gtest-build >/dev/null
  cmake --install /tmp/gtest-build --prefix /usr/local >/dev/null
  ldconfig
fi
# FlashAttention-3 sources (scripts/gpu/fetch-deps.sh): unpacked once, passed to CMake when present.
FA3_ARGS=()
if [ -f .gpudeps/flash-attention-hopper.tar.gz ] && [ -f .gpudeps/cutlass-include.tar.gz ] && [ "${WAN_FA3:-1}" != 0 ]; then
  mkdir -p build-gpu/_deps
  [ -d build-gpu/_deps/flash-attention ] || tar -xzf .gpudeps/flash-attention-hopper.tar.gz -C build-gpu/_deps
  [ -d build-gpu/_deps/cutlass ] || tar -xzf .gpudeps/cutlass-include.tar.gz -C build-gpu/_deps
  FA3_ARGS=(-DWAN_FLASH_ATTN3_DIR="$PWD/build-gpu/_deps/flash-attention/hopper" -DWAN_CUTLASS_DIR="$PWD/build-gpu/_deps/cutlass")
else
  FA3_ARGS=(-DWAN_FLASH_ATTN3_DIR= -DWAN_CUTLASS_DIR=)
fi
TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
# shellcheck disable=SC2086
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DWAN_BUILD_APP=OFF -DWAN_WITH_FFMPEG=OFF \
      -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;/usr/local" -DCMAKE_CUDA_ARCHITECTURES=90a "${FA3_ARGS[@]}" ${WAN_CMAKE_EXTRA:-} 2>&1 \
      | grep -E "WanStudio|Error|error|NCCL|CUDA" || true
# shellcheck disable=SC2086
cmake --build build-gpu -j "$(nproc)" ${WAN_BUILD_TARGETS:+--target $WAN_BUILD_TARGETS}
