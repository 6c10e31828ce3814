#!/bin/sh
# interrupt_batch.sh MPIRUN_AND_ARGS… — runs a 2-rank batch, waits until the first job is denoising (an event in
# its output, not a fixed sleep), then sends SIGINT to every rank, as a terminal's Ctrl+C does to the job's
# processes, and checks that the job ends within 30 s. Prints the run's output and "ended after Ctrl+C" on success.
. "$(dirname "$0")/ctrl_c.sh"
log=$(mktemp)
"$@" >"$log" 2>&1 &
launcher=$!
i=0
until grep -Eq "(denoise|Denoising) [1-9]" "$log"; do  # the headless or the Qt runner's progress
    i=$((i + 1))
    if [ $i -gt 1200 ] || ! kill -0 $launcher 2>/dev/null; then cat "$log"; echo "never reached denoising" >&2; exit 2; fi
    sleep 0.1
done
ctrl_c_and_wait $launcher "$log" 30
cat "$log"
rm -f "$log"
echo "ended after Ctrl+C (exit $rc)"
exit $rc
