#!/usr/bin/env bash
# ON the GPU machine, after `WAN_BUILD_TARGETS="wan-bench test_gpu_parity" scripts/gpu/build.sh`: the VAE decode's
# memory switch tail_frames (Note [Decode tail] in engine/vae/vae_modules.h), off / 2 / 1 frames: the decode's peak
# and seconds at 480p and 720p with the engine's CUDA switches, then the 14B fp8 480p job's peak (issue 21: ≤ 18 GB)
# with and without it. JSON lines in $OUT/vae-tail.jsonl. ~6 min on one H200.
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/gpu/bench-env.sh vae-tail.jsonl
run() {
  echo "== $*"
  timeout "${WAN_STEP_TIMEOUT:-180}" "$@" --json "$J" 2>&1 | grep -E "^\{|error|wan-bench:|decode|peak" | cut -c1-400
}
build-gpu/tests/gpu/test_gpu_parity --gtest_filter='*VaeSpeed*' 2>&1 | grep -E "OK \]|FAIL|Failure|tail" | cut -c1-200
ENGINE="--dtype bf16 --channels-last 1 --cache-buffer 1 --fused-norm 1 --subpixel-upsample 1"
for size in 832*480 1280*720; do
  for k in 0 2 1; do
    # tail 1 is also compared with the plain bf16 decode (compare-base); the others time and measure only
    base=0; [ "$k" = 1 ] && base=1
    run $B vae --size "$size" $ENGINE --tail-frames $k --compare 0 --compare-base $base
  done
done
# the job as the engine runs it (--vae-autotune auto: on here), without and with the tail; then with autotuning off
# (its algorithms' workspaces may differ)
for k in 0 1; do
  run $B gen --model 14B --size 832*480 --steps 2 --dit-dtype fp8 --tail-frames $k
done
run $B gen --model 14B --size 832*480 --steps 2 --dit-dtype fp8 --tail-frames 1 --vae-autotune off
