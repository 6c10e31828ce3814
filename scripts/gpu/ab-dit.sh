#!/usr/bin/env bash
# ON the GPU machine: A/B of the DiT forward between this tree and a baseline source tarball, on the same GPU
# in one session, runs interleaved (A B A B ...) so that clock and thermal drift fall on both sides alike.
#   scripts/gpu/ab-dit.sh build-baseline/src.tar [rounds]
# Make the tarball here with: git archive -o build-baseline/src.tar <commit>   (build-* is git-ignored; carry it)
# Writes $OUT/ab.jsonl (one line per run, "variant" = base|new) and prints mean seconds per variant.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
TAR=$1; ROUNDS=${2:-2}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
rm -rf /tmp/base && mkdir -p /tmp/base && tar -xf "$TAR" -C /tmp/base
cp scripts/gpu/build.sh /tmp/base/scripts/gpu/build.sh  # the target list option
WAN_BUILD_TARGETS=wan-bench /tmp/base/scripts/gpu/build.sh > "$OUT/build-base.log" 2>&1 || { tail -20 "$OUT/build-base.log"; exit 1; }
for r in $(seq "$ROUNDS"); do
  for cfg in "--model 1.3B --size 832*480" "--model 14B --layers 4 --size 1280*720"; do
    for v in base new; do
      bin=build-gpu/bench/wan-bench; [ $v = base ] && bin=/tmp/base/build-gpu/bench/wan-bench
      # shellcheck disable=SC2086
      $bin dit $cfg --json /tmp/ab-$v.jsonl 2>/dev/null | tail -1 | sed "s/^{/{\"variant\":\"$v\",\"round\":$r,/" | tee -a "$OUT/ab.jsonl"
    done
  done
done
python3 - "$OUT/ab.jsonl" <<'PY'
import json, sys, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[(r["model"], r["layers"], r["variant"])].append(r["seconds"])
for k in sorted(runs):
    v = runs[k]
    print(f"{k[0]} layers {k[1]} {k[2]}: mean {sum(v)/len(v):.4f} s over {len(v)} runs {['%.4f' % x for x in v]}")
PY
