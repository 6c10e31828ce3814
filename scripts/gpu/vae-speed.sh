#!/usr/bin/env bash
# ON the GPU machine, after `WAN_BUILD_TARGETS="wan-bench test_gpu_parity" scripts/gpu/build.sh`: the VAE decode's
# speed switches (VAESpeedOptions, Note [VAE speed switches] in engine/vae/vae_modules.h) and where a decode's time
# goes (Note [VAE stage clock]). JSON lines in $OUT/vae-speed.jsonl, stage tables in $OUT/vae-stages.log. ~3 min on
# one H200 (each line ~10 s: weights, 1 warm-up + 2 timed decodes, a stage-clock decode, the comparison decodes).
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/gpu/bench-env.sh vae-speed.jsonl
run() {
  echo "== $*" | tee -a "$OUT/vae-stages.log"
  timeout "${WAN_STEP_TIMEOUT:-90}" "$@" --json "$J" > "$OUT/vae-step.log" 2>&1
  grep -vE "^\{" "$OUT/vae-step.log" >> "$OUT/vae-stages.log"
  grep -E "^\{|error|wan-bench:" "$OUT/vae-step.log" | grep -v vae_stages | cut -c1-400
  # the stage table's 20 largest rows and its total (the whole table is in vae-stages.log)
  grep -A21 -E "^\[vae stages\]" "$OUT/vae-step.log" | cut -c1-80
  grep -E "^total |^by kind:" "$OUT/vae-step.log" | cut -c1-600
}
# GPU parity of the switches (the fused kernel included) on the golden cases, and of the plain decode.
# Printed: the results and the all-switches lines (every line in vae-parity.log).
build-gpu/tests/gpu/test_gpu_parity --gtest_filter='*Vae*' > "$OUT/vae-parity.log" 2>&1
grep -E "OK \]|FAIL|Failure| all[ :]" "$OUT/vae-parity.log" | cut -c1-200
S="--size 832*480 --dtype bf16 --channels-last 1"
run $B vae $S --stages 1                                         # plain: seconds, PSNR vs f32, stage table
run $B vae $S --fold-time 1 --stages 1 --compare 0               # conv2d over the folded time taps
run $B vae $S --cache-buffer 1 --fused-norm 1 --stages 1 --compare 0  # no cat, one-kernel norm + SiLU
run $B vae $S --chunk-frames 4 --stages 1 --compare 0            # 4 latent frames per decoder call
# the upsample as 2×2 phase convs of the low-res input (Note [Sub-pixel upsample]), on the CUDA defaults, off / on
run $B vae $S --cache-buffer 1 --fused-norm 1 --subpixel-upsample 0 --stages 1 --compare 0
run $B vae $S --cache-buffer 1 --fused-norm 1 --subpixel-upsample 1 --stages 1   # also vs plain bf16 and f32
run $B vae $S --fast 1 --chunk-frames 4 --stages 1               # all: seconds, vs plain bf16, vs f32
run $B vae $S --fast 1 --chunk-frames 20 --compare 0             # the whole sequence after the first frame
WAN_CUDNN_BENCHMARK=1 run $B vae $S --fast 1 --chunk-frames 4 --compare 0 --compare-base 0  # + cuDNN autotuning
# the first decode of a process (a session's first job): first_seconds
run $B vae $S --fast 1 --chunk-frames 4 --warmup 0 --runs 3 --compare 0 --compare-base 0
S="--size 1280*720 --dtype bf16 --channels-last 1 --compare 0"
run $B vae $S
run $B vae $S --fast 1 --chunk-frames 4 --compare-base 0
run $B vae $S --cache-buffer 1 --fused-norm 1 --subpixel-upsample 0 --compare-base 0
run $B vae $S --cache-buffer 1 --fused-norm 1 --subpixel-upsample 1 --compare-base 0
