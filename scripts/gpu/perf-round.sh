#!/usr/bin/env bash
# ON the GPU machine: one performance round. Builds, runs the GPU parity test, then the DiT benchmark with each
# attention backend and with/without the fused kernels, the VAE with and without cuDNN autotuning, and a
# full 1.3B 480p generation. Everything lands in $OUT/bench.jsonl (+ logs).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
scripts/gpu/build.sh > "$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head -20; exit 1; }
B=build-gpu/bench/wan-bench
J=(--json "$OUT/bench.jsonl")
build-gpu/tests/gpu/test_gpu_parity 2>&1 | grep -E "^\[gpu\]|OK|FAIL" | tee "$OUT/gpu_parity.log"
[ -x build-gpu/tests/gpu/test_fused_kernels ] &&
  build-gpu/tests/gpu/test_fused_kernels 2>&1 | grep -E "^\[fused\]|OK|FAIL|Failure|Expected|Which is|error" | tee "$OUT/fused_kernels.log"
[ -x build-gpu/tests/gpu/test_attention_backends ] &&
  build-gpu/tests/gpu/test_attention_backends 2>&1 | grep -E "^\[attention\]|OK|FAIL|Failure|Expected|Which is|error" | tee "$OUT/attention_backends.log"
run() { echo "## $*" >&2; "$@" "${J[@]}" 2>&1 | tail -1; }
# Attention backends head to head inside the whole forward, interleaved (A B A B) so that clock drift falls
# on both alike: cuDNN against FlashAttention-3.
case " ${WAN_ROUND:-} " in *" attn "*)
  for r in 1 2; do for cfg in "--model 1.3B --size 832*480" "--model 14B --layers 4 --size 1280*720"; do
    for attn in cudnn fa3; do
      # shellcheck disable=SC2086
      WAN_ATTENTION=$attn run $B dit $cfg | sed "s/^/round=$r attn=$attn /"
    done
  done; done ;; esac
case " ${WAN_ROUND:-dit vae gen} " in *" dit "*)
  for attn in sdpa cudnn; do for fused in 0 1; do
    WAN_ATTENTION=$attn WAN_FUSED=$fused run $B dit --model 1.3B --size 832*480 | sed "s/^/attn=$attn fused=$fused /"
    WAN_ATTENTION=$attn WAN_FUSED=$fused run $B dit --model 14B --layers 4 --size 1280*720 | sed "s/^/attn=$attn fused=$fused /"
  done; done ;; esac
# Where a forward's GPU time goes, stage by stage (Note [Stage clock] in engine/dit/stage_clock.h).
case " ${WAN_ROUND:-} " in *" stages "*)
  for cfg in "--model 1.3B --size 832*480" "--model 14B --layers 4 --size 1280*720"; do
    # shellcheck disable=SC2086
    WAN_DIT_STAGES=1 $B dit $cfg --runs 1 2>&1 | grep -E "^\[dit stages\]" | tail -1 | sed "s/^/$cfg /" | tee -a "$OUT/stages.log"
  done ;; esac
# FP8 block GEMMs against bf16 on the same weights (speed-up and error), then where the FP8 forward's time goes.
case " ${WAN_ROUND:-} " in *" fp8 "*)
  for cfg in "--model 1.3B --size 832*480" "--model 14B --layers 4 --size 1280*720"; do
    # shellcheck disable=SC2086
    run $B dit $cfg --fp8 1
    # shellcheck disable=SC2086
    WAN_FP8=1 WAN_DIT_STAGES=1 $B dit $cfg --runs 1 2>&1 | grep -E "^\[dit stages\]" | tail -1 | sed "s/^/fp8 $cfg /" | tee -a "$OUT/stages.log"
  done ;; esac
case " ${WAN_ROUND:-dit vae gen} " in *" ditfast "*)
  run $B dit --model 1.3B --size 832*480
  run $B dit --model 14B --layers 4 --size 1280*720 ;; esac
case " ${WAN_ROUND:-dit vae gen} " in *" vae "*)
  for cb in 0 1; do for dt in f32 bf16; do
    WAN_CUDNN_BENCHMARK=$cb run $B vae --size 832*480 --dtype $dt --compare 0 | sed "s/^/cudnn_benchmark=$cb /"
  done; done ;; esac
case " ${WAN_ROUND:-dit vae gen} " in *" gen "*)
  run $B gen --model 1.3B --size 832*480 --steps 50 ;; esac
case " ${WAN_ROUND:-} " in *" gen14 "*)
  run $B gen --model 14B --size 1280*720 --steps "${WAN_GEN14_STEPS:-2}" --vae_dtype "${WAN_GEN14_VAE:-bf16}" ;; esac
# Block weights held as fp8 (--dit-dtype fp8, Note [FP8 weights]): the GPU test, one forward's error against bf16
# (with and without the FP8 GEMMs), then 14B generations at 480p and 720p, resident and under --max-vram 22,
# against bf16 (peak_gb, per_step_s in the JSON lines).
case " ${WAN_ROUND:-} " in *" fp8w "*)
  build-gpu/tests/gpu/test_dit_fp8_gpu 2>&1 | grep -E "fp8 weights|blocks:|OK|FAIL|Failure|Expected|Which is" | tee "$OUT/dit_fp8_gpu.log"
  for direct in 1 0; do
    WAN_FP8_DIRECT=$direct run $B dit --model 14B --layers 4 --size 1280*720 --dit-dtype fp8 --compare 1 | sed "s/^/fp8_direct=$direct /"
  done
  for size in 832*480 1280*720; do for vram in 0 22; do for dt in bf16 fp8; do
    run $B gen --model 14B --size "$size" --steps "${WAN_GEN14_STEPS:-2}" --vae_dtype bf16 --dit-dtype $dt --max-vram $vram |
      sed "s/^/dit_dtype=$dt max_vram=$vram /"
  done; done; done ;; esac
