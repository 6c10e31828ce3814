#!/usr/bin/env bash
# ON the GPU machine: build (scripts/gpu/build.sh), run every ctest test (CPU parity + GPU parity + MPI +
# e2e), then the benchmarks named in $WAN_BENCH (default: "all"), writing logs and JSON to $OUT (or ./out).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
scripts/gpu/build.sh 2>&1 | tee "$OUT/build.log" | grep -E "error|FAILED|WanStudio|^torch" || true
[ -x build-gpu/bench/wan-bench ] || { echo "build failed"; tail -50 "$OUT/build.log"; exit 1; }
if [ "${WAN_SKIP_TESTS:-0}" != 1 ]; then
  (cd build-gpu && ctest --output-on-failure -j 8 ${WAN_CTEST_ARGS:-} 2>&1) | tee "$OUT/ctest.log" | grep -E "^\[gpu\]|tests passed|Failed|\*\*\*|Total Test" || true
fi
for b in ${WAN_BENCH:-all}; do
  case "$b" in
    all) build-gpu/bench/wan-bench all --json "$OUT/bench.jsonl" ;;
    gen) build-gpu/bench/wan-bench gen --model 1.3B --size 832*480 --steps 50 --json "$OUT/bench.jsonl" ;;
    *) build-gpu/bench/wan-bench $b --json "$OUT/bench.jsonl" ;;
  esac
done 2>&1 | tee "$OUT/bench.log"
