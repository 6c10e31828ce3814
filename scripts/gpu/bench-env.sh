# Sourced by the benchmark scripts here, from the repository root on the GPU machine:
#   . scripts/gpu/bench-env.sh NAME.jsonl
# sets OUT (the results folder: $OUT or ./out, created), B (wan-bench) and J ($OUT/NAME.jsonl, the JSON lines).
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
B=build-gpu/bench/wan-bench
J="$OUT/$1"
