#!/usr/bin/env bash
# Ctrl+C during `wanstudio --batch` (one process): SIGINT after a few seconds cancels the running job, skips
# the rest, and exits 130 with a summary. Usage: batch_ctrl_c.sh WANSTUDIO OUTPUT_DIR
set -u
wanstudio=$1 out=$2
rm -rf "$out" && mkdir -p "$out"
for i in 1 2 3 4 5 6 7 8; do echo "job number $i, a fox in the snow"; done > "$out/jobs.txt"
# 8 jobs of the demo model's default size take well over the 3 s before the interrupt.
timeout --preserve-status -s INT 3 "$wanstudio" --batch "$out/jobs.txt" --device cpu --output-dir "$out/videos" \
  > "$out/stdout.txt" 2> "$out/stderr.txt"
rc=$?
cat "$out/stderr.txt" | grep -v '^\[r0\] I' | tail -5
echo "exit code: $rc"
[ "$rc" -eq 130 ] || { echo "FAIL: expected exit code 130 after SIGINT"; exit 1; }
grep -q '^interrupted: ' "$out/stderr.txt" || { echo "FAIL: no 'interrupted:' line"; exit 1; }
grep -q 'of 8 jobs ok, interrupted' "$out/stderr.txt" || { echo "FAIL: no summary line"; exit 1; }
n=$(find "$out/videos" -name '*.mp4' 2>/dev/null | wc -l)
[ "$n" -lt 8 ] || { echo "FAIL: every job ran despite the interrupt"; exit 1; }
echo "ok: interrupted with $n of 8 videos written"
