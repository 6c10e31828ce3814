#!/usr/bin/env bash
# WanStudio's equivalent of upstream Wan2.1's multi-GPU FSDP example
#   torchrun --nproc_per_node=N generate.py --task t2v-14B --ckpt_dir CKPT --dit_fsdp --t5_fsdp --ulysses_size N
# i.e. both the DiT and the T5 encoder sharded across the N processes (FSDP) and the sequence split N ways
# with Ulysses attention (every rank computes 1/N of the tokens, N must divide the model's head count).
#
# Usage: run_fsdp_example.sh CKPT_DIR [NUM_GPUS=2] [--dry-run] [-- wanstudio options...]
#   e.g. run_fsdp_example.sh ./Wan2.1-T2V-14B 8
#        run_fsdp_example.sh ./Wan2.1-T2V-1.3B 2 -- --prompt "a red fox running through fresh snow"
#
# It first runs `mpirun ... wanstudio --check` with the same options (devices, checkpoint, layout, one
# collective, the sharded model build) and starts wanstudio (the window on rank 0, or a headless run with
# --prompt/--batch after --) only if that passed. The mpirun flags are explained in
# wanstudio_launch_common.sh; MPIRUN_FLAGS adds your own.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=wanstudio_launch_common.sh
source "$HERE/wanstudio_launch_common.sh"
WL_NAME=run_fsdp_example.sh
WL_DEFAULT_GPUS=2
WL_ABOUT="DiT and T5 sharded over NUM_GPUS processes (--dit-fsdp --t5-fsdp) with Ulysses sequence parallelism
of degree NUM_GPUS (--ulysses-size NUM_GPUS), as upstream's FSDP example."

wl_parse_args "$@"
heads=$(wl_num_heads "$CKPT_DIR")
if [ $((heads % NUM_GPUS)) -ne 0 ]; then
    echo "$WL_NAME: --ulysses-size $NUM_GPUS does not divide the model's $heads attention heads" \
         "($CKPT_DIR/config.json). Use a GPU count that divides $heads, or run_sequence_parallel_example.sh," \
         "which combines Ulysses and Ring attention for any count." >&2
    exit 2
fi
echo "layout: $NUM_GPUS processes = ulysses $NUM_GPUS x ring 1, DiT and T5 sharded (FSDP); $heads attention heads"
wl_check_then_launch --ckpt-dir "$CKPT_DIR" --dit-fsdp --t5-fsdp --ulysses-size "$NUM_GPUS"
