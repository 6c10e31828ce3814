#!/usr/bin/env bash
# ON the GPU machine, after scripts/gpu/build.sh (wan-bench): every figure of README's performance table,
# as JSON lines in $OUT/readme.jsonl (random weights at the real sizes). ~6 min on one H200.
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/gpu/bench-env.sh readme.jsonl
run() { echo "== $*"; timeout "${WAN_STEP_TIMEOUT:-240}" "$@" --json "$J" 2>&1 | grep -E "^\{|error|wan-bench:" | cut -c1-400; }
run $B dit --model 1.3B --size 832*480
run $B dit --model 14B --layers 4 --size 1280*720
WAN_FP8=1 run $B dit --model 1.3B --size 832*480
WAN_FP8=1 run $B dit --model 14B --layers 4 --size 1280*720
run $B vae --size 832*480 --dtype f32 --compare 0
run $B vae --size 832*480 --dtype bf16
run $B vae --size 1280*720 --dtype bf16 --compare 0
run $B gen --model 1.3B --size 832*480 --preset lightx2v-4step
run $B gen --model 14B --size 832*480 --preset lightx2v-4step --make-lora 64 --lora /tmp/r64.safetensors
run $B gen --model 1.3B --size 832*480 --steps 50
run $B gen --model 14B --size 1280*720 --steps 2
