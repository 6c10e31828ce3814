#!/bin/sh
# save_latents_exists.sh DIR WANSTUDIO ARGS… — puts a file at DIR/existing.safetensors, runs WANSTUDIO ARGS…
# --save-latents onto it, and prints UNCHANGED (on stderr, after the run's output) when the file kept its content.
dir=$1
shift
mkdir -p "$dir" && printf keep >"$dir/existing.safetensors" || exit 2
OMP_NUM_THREADS=1 "$@" --save-latents "$dir/existing.safetensors"
rc=$?
[ "$(cat "$dir/existing.safetensors")" = keep ] && echo "UNCHANGED" >&2
exit $rc
