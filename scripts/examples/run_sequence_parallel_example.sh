#!/usr/bin/env bash
# WanStudio's equivalent of upstream Wan2.1's sequence-parallel example
#   torchrun --nproc_per_node=N generate.py --task t2v-... --ckpt_dir CKPT --ulysses_size U --ring_size R
# with a layout that is valid for the checkpoint: U·R = N, and U must divide the DiT's attention heads
# (12 for 1.3B, 40 for 14B). U is the largest degree dividing both the head count and N (their gcd); the rest
# of N goes to Ring attention: 12 heads on 4 GPUs -> U 4 x R 1, 40 heads on 8 -> U 8 x R 1, 12 heads on 8 ->
# U 4 x R 2. Ulysses moves heads (two all-to-alls per attention), Ring passes K/V blocks around (R rounds),
# so Ulysses is preferred where the heads allow it.
#
# Usage: run_sequence_parallel_example.sh CKPT_DIR [NUM_GPUS=4] [--dry-run] [-- wanstudio options...]
#   e.g. run_sequence_parallel_example.sh ./Wan2.1-T2V-1.3B 8
#        run_sequence_parallel_example.sh ./Wan2.1-T2V-14B 8 -- --dit-fsdp --t5-fsdp   (less memory per GPU)
#
# It first runs `mpirun ... wanstudio --check` with the same options and starts wanstudio (the window on
# rank 0, or a headless run with --prompt/--batch after --) only if that passed. The mpirun flags are
# explained in wanstudio_launch_common.sh; MPIRUN_FLAGS adds your own.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=wanstudio_launch_common.sh
source "$HERE/wanstudio_launch_common.sh"
WL_NAME=run_sequence_parallel_example.sh
WL_DEFAULT_GPUS=4
WL_ABOUT="Ulysses x Ring sequence parallelism over NUM_GPUS processes, the layout chosen from the head count in
CKPT_DIR/config.json (largest Ulysses degree dividing both, the rest as Ring)."

gcd() { local a=$1 b=$2 t; while [ "$b" -ne 0 ]; do t=$((a % b)); a=$b; b=$t; done; echo "$a"; }

wl_parse_args "$@"
heads=$(wl_num_heads "$CKPT_DIR")
ulysses=$(gcd "$heads" "$NUM_GPUS")
ring=$((NUM_GPUS / ulysses))
echo "layout: $NUM_GPUS processes = ulysses $ulysses x ring $ring; $heads attention heads"
wl_check_then_launch --ckpt-dir "$CKPT_DIR" --ulysses-size "$ulysses" --ring-size "$ring"
