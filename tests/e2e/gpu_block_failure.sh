#!/bin/sh
# gpu_block_failure.sh NP DIR WAN_COMPARE WANSTUDIO MPIRUN [MPIRUN_FLAGS…] — the NCCL side of e2e_block_failure: a
# batch of 3 jobs on NP GPUs (one per rank), run clean and then with a fault between two DiT blocks of job 2 on the
# last rank (WAN_TEST_FAIL_BLOCK_*: block 0's 9th run = job 2, step 1). The faulty batch must fail job 2 only, and
# jobs 1 and 3 must equal the clean run exactly (wan-compare, tolerance 0). Exits 77 (ctest: skipped) with the
# reason when the machine has fewer than NP GPUs.
np=$1 dir=$2 compare=$3 wanstudio=$4
shift 4
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
if [ "${gpus:-0}" -lt "$np" ]; then
    echo "SKIPPED: needs $np GPU(s), found ${gpus:-0} (nvidia-smi -L)"
    exit 77
fi
layout=""
[ "$np" -gt 1 ] && layout="--ulysses-size $np"
rm -rf "$dir" && mkdir -p "$dir" || exit 2
for kind in clean fault; do
    : >"$dir/$kind.jsonl"
    for job in 1 2 3; do
        echo "{\"prompt\": \"job $job of three\", \"base_seed\": $job$job, \"save_latents\": \"$dir/$kind/job$job.safetensors\"}" \
            >>"$dir/$kind.jsonl"
    done
done
batch="--size 64*64 --frame-num 5 --sample-steps 3 --device cuda --collective-timeout 300 $layout"

"$@" -np "$np" -x OMP_NUM_THREADS=1 "$wanstudio" --batch "$dir/clean.jsonl" $batch --output-dir "$dir/clean" \
    >"$dir/clean.log" 2>&1
rc=$?
cat "$dir/clean.log"
[ $rc -eq 0 ] && grep -q "3 of 3 jobs ok" "$dir/clean.log" || { echo "FAILED: the clean batch (exit $rc)"; exit 1; }

"$@" -np "$np" -x OMP_NUM_THREADS=1 -x WAN_TEST_FAIL_BLOCK_RANK=$((np - 1)) -x WAN_TEST_FAIL_BLOCK=0 \
    -x WAN_TEST_FAIL_BLOCK_TIME=9 "$wanstudio" --batch "$dir/fault.jsonl" $batch --output-dir "$dir/fault" \
    >"$dir/fault.log" 2>&1
rc=$?
cat "$dir/fault.log"
[ $rc -ne 0 ] || { echo "FAILED: the faulty batch exited 0"; exit 1; }
for line in "injected failure after DiT block 0" "2 of 3 jobs ok" "finished: job 1, 3" "failed: job 2"; do
    grep -q "$line" "$dir/fault.log" || { echo "FAILED: the faulty batch's output lacks '$line'"; exit 1; }
done
if grep -Eq "stopped answering|MPI_ABORT" "$dir/fault.log"; then echo "FAILED: the faulty batch ended every rank"; exit 1; fi

for job in 1 3; do
    "$compare" "$dir/clean/job$job.safetensors" "$dir/fault/job$job.safetensors" 0 0 ||
        { echo "FAILED: job $job differs from the clean run"; exit 1; }
done
echo "PASSED: job 2 failed on every rank; jobs 1 and 3 equal the clean run"
