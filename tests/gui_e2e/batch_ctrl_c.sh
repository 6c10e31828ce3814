#!/usr/bin/env bash
# Ctrl+C during `wanstudio --batch` (one process): SIGINT after a few seconds cancels the running job, skips
# the rest, and exits 130 with a summary. Usage: batch_ctrl_c.sh WANSTUDIO OUTPUT_DIR
set -u
wanstudio=$1 out=$2
rm -rf "$out" && mkdir -p "$out"
for i in 1 2 3 4 5 6 7 8; do echo "job number $i, a fox in the snow"; done > "$out/jobs.txt"
# Interrupt once the first job is running (not at a fixed time: on a loaded machine the start-up alone can
# take seconds, and a SIGINT before the handler exists would just kill the process).
"$wanstudio" --batch "$out/jobs.txt" --device cpu --output-dir "$out/videos" > "$out/stdout.txt" 2> "$out/stderr.txt" &
pid=$!
for _ in $(seq 1 600); do
  grep -q 'job 1/8' "$out/stderr.txt" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
cat "$out/stderr.txt" | grep -v '^\[r0\] I' | tail -5
echo "exit code: $rc"
[ "$rc" -eq 130 ] || { echo "FAIL: expected exit code 130 after SIGINT"; exit 1; }
grep -q '^interrupted: ' "$out/stderr.txt" || { echo "FAIL: no 'interrupted:' line"; exit 1; }
grep -q 'of 8 jobs ok, interrupted' "$out/stderr.txt" || { echo "FAIL: no summary line"; exit 1; }
n=$(find "$out/videos" -name '*.mp4' 2>/dev/null | wc -l)
[ "$n" -lt 8 ] || { echo "FAIL: every job ran despite the interrupt"; exit 1; }
echo "ok: interrupted with $n of 8 videos written"
