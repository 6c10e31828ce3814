#!/usr/bin/env bash
# ON the GPU machine: build exactly what `ctest -L gpu` runs (the GPU test binaries, the headless wanstudio and
# wan-compare for the e2e GPU cases, wan-bench) and run those tests. A partial build (WAN_BUILD_TARGETS with fewer
# targets) leaves some gpu-labelled tests without their executables, which ctest then reports as failed: this
# script is the quick round that avoids that (scripts/gpu/run-tests-and-bench.sh builds and runs everything).
#   scripts/gpu/gpu-tests.sh [extra ctest arguments]
set -uo pipefail
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
WAN_BUILD_TARGETS="wan-bench wanstudio wan-compare test_gpu_parity test_fused_kernels test_attention_backends \
test_dit_fp8_gpu test_lora_gpu test_nccl_renewal" scripts/gpu/build.sh 2>&1 | grep -E "error|FAILED|^torch" || true
cd build-gpu && ctest -L gpu --output-on-failure "$@"
