#!/usr/bin/env bash
# The example launch scripts' layout choice and command lines, through --dry-run (nothing is started).
# Usage: test_launch_layouts.sh SCRIPTS_DIR
set -uo pipefail
DIR="$1"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/wan-launch-test.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
export WANSTUDIO=/opt/test/wanstudio   # fixed, so the expected lines do not depend on what is built
unset MPIRUN MPIRUN_FLAGS
for v in $(compgen -e | grep '^NCCL_' || true); do unset "$v"; done
failures=0

ckpt() {  # ckpt NAME HEADS: a checkpoint directory with just a (multi-line) config.json
    mkdir -p "$TMP/$1"
    printf '{\n  "_class_name": "WanModel",\n  "dim": 1536,\n  "num_heads": %s,\n  "num_layers": 30\n}\n' "$2" > "$TMP/$1/config.json"
    echo "$TMP/$1"
}
C12=$(ckpt h12 12)
C40=$(ckpt h40 40)

# expect NAME EXPECTED_RC 'PATTERN...' -- COMMAND...: runs COMMAND, checks the exit code and that every
# pattern (fixed strings, '|'-separated) occurs in its output; a pattern starting with '!' must not occur.
expect() {
    local name="$1" want_rc="$2" patterns="$3"; shift 4
    local out rc=0
    out="$("$@" 2>&1)" || rc=$?
    local ok=1
    [ "$rc" -eq "$want_rc" ] || { echo "FAIL $name: exit $rc, expected $want_rc"; ok=0; }
    local IFS='|' p
    for p in $patterns; do
        if [ "${p:0:1}" = "!" ]; then
            if grep -qF -- "${p:1}" <<<"$out"; then echo "FAIL $name: unexpected '${p:1}'"; ok=0; fi
        elif ! grep -qF -- "$p" <<<"$out"; then
            echo "FAIL $name: missing '$p'"; ok=0
        fi
    done
    if [ $ok -eq 1 ]; then echo "ok   $name"; else echo "---- output:"; echo "$out"; failures=$((failures + 1)); fi
}

SP="$DIR/run_sequence_parallel_example.sh"
FSDP="$DIR/run_fsdp_example.sh"

# Sequence parallel: the largest Ulysses degree dividing heads and GPUs, the rest as Ring.
expect "sp 12 heads, 4 GPUs" 0 "ulysses 4 x ring 1|--check --ckpt-dir $C12 --ulysses-size 4 --ring-size 1|mpirun -np 4 --bind-to none" -- "$SP" "$C12" 4 --dry-run
expect "sp 12 heads, default GPUs" 0 "4 processes = ulysses 4 x ring 1" -- "$SP" "$C12" --dry-run
expect "sp 40 heads, 8 GPUs" 0 "ulysses 8 x ring 1|--ulysses-size 8 --ring-size 1" -- "$SP" "$C40" 8 --dry-run
expect "sp 12 heads, 8 GPUs" 0 "ulysses 4 x ring 2|--ulysses-size 4 --ring-size 2" -- "$SP" "$C12" 8 --dry-run
expect "sp 40 heads, 6 GPUs" 0 "ulysses 2 x ring 3" -- "$SP" "$C40" 6 --dry-run
expect "sp 40 heads, 16 GPUs" 0 "ulysses 8 x ring 2" -- "$SP" "$C40" 16 --dry-run
expect "sp 12 heads, 1 GPU" 0 "ulysses 1 x ring 1|mpirun -np 1" -- "$SP" "$C12" 1 --dry-run
expect "sp 12 heads, 3 GPUs" 0 "ulysses 3 x ring 1" -- "$SP" "$C12" 3 --dry-run
expect "sp 40 heads, 3 GPUs" 0 "ulysses 1 x ring 3" -- "$SP" "$C40" 3 --dry-run

# FSDP: upstream's --dit_fsdp --t5_fsdp --ulysses_size N.
expect "fsdp 12 heads, default GPUs" 0 "mpirun -np 2|--check --ckpt-dir $C12 --dit-fsdp --t5-fsdp --ulysses-size 2|launch: " -- "$FSDP" "$C12" --dry-run
expect "fsdp 40 heads, 8 GPUs" 0 "--dit-fsdp --t5-fsdp --ulysses-size 8" -- "$FSDP" "$C40" 8 --dry-run
expect "fsdp 12 heads, 8 GPUs is refused" 2 "does not divide the model's 12 attention heads|run_sequence_parallel_example.sh" -- "$FSDP" "$C12" 8 --dry-run

# Extra options: to both commands, except the job options (--prompt/--batch) which only the launch gets.
out_check="--check --ckpt-dir $C12 --ulysses-size 4 --ring-size 1 --t5-cpu"
expect "extra options" 0 "check:  |$out_check|launch: |--prompt a\\ fox --t5-cpu|!--check --ckpt-dir $C12 --ulysses-size 4 --ring-size 1 --prompt" -- "$SP" "$C12" 4 --dry-run -- --prompt "a fox" --t5-cpu
expect "extra --batch=FILE" 0 "$out_check|--batch=jobs.txt" -- "$SP" "$C12" 4 --dry-run -- --batch=jobs.txt --t5-cpu

# mpirun flags: NCCL_* and CUDA_VISIBLE_DEVICES exported; --allow-run-as-root only as root.
expect "env passing" 0 "-x CUDA_VISIBLE_DEVICES|-x NCCL_DEBUG|-x NCCL_P2P_DISABLE|--oversubscribe" -- \
    env CUDA_VISIBLE_DEVICES=0,1 NCCL_DEBUG=INFO NCCL_P2P_DISABLE=1 MPIRUN_FLAGS=--oversubscribe "$SP" "$C12" 2 --dry-run
if [ "$(id -u)" -eq 0 ]; then root_pat="--allow-run-as-root"; else root_pat="!--allow-run-as-root"; fi
expect "run as root flag" 0 "$root_pat" -- "$SP" "$C12" 2 --dry-run
expect "MPIRUN override" 0 "check:  mpiexec.openmpi -np 2" -- env MPIRUN=mpiexec.openmpi "$SP" "$C12" 2 --dry-run

# Bad input.
expect "no arguments" 2 "Usage: run_sequence_parallel_example.sh CKPT_DIR" -- "$SP"
expect "NUM_GPUS 0" 2 "must be a positive integer" -- "$SP" "$C12" 0 --dry-run
expect "NUM_GPUS x" 2 "must be a positive integer" -- "$FSDP" "$C12" x --dry-run
expect "no config.json" 1 "config.json not found" -- "$SP" "$TMP/nothing-here" 4 --dry-run
expect "unknown option" 2 "unknown option '--bogus'" -- "$SP" "$C12" --bogus
expect "help" 0 "Usage: run_fsdp_example.sh CKPT_DIR [NUM_GPUS=2]" -- "$FSDP" --help

if [ $failures -ne 0 ]; then echo "$failures case(s) failed"; exit 1; fi
echo "all launch layout cases passed"
