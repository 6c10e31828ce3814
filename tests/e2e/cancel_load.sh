#!/bin/sh
# cancel_load.sh WHO MPIRUN_AND_ARGS… — runs a job whose model load is slowed down (WAN_TEST_LOAD_DELAY_MS, passed
# with -x by the caller), waits until the text encoder is loaded (an event in the output, not a fixed sleep), then
# sends SIGINT: WHO=all to every rank (a terminal's Ctrl+C), WHO=head to world rank 0 alone (as the window's Cancel:
# the other ranks must learn it from the head). Every rank must end within 30 s. Prints the run's output and
# "ended after Ctrl+C (exit N)".
. "$(dirname "$0")/ctrl_c.sh"
who=$1
shift
log=$(mktemp)
"$@" >"$log" 2>&1 &
launcher=$!
i=0
until grep -q "loaded the text encoder" "$log"; do
    i=$((i + 1))
    if [ $i -gt 1200 ] || ! kill -0 $launcher 2>/dev/null; then cat "$log"; echo "the load never got past the text encoder" >&2; exit 2; fi
    sleep 0.1
done
if [ "$who" = head ]; then
    # The ranks are mpirun's children; rank 0 is the one whose environment says so (Open MPI, PMIx).
    for pid in $(pgrep -P "$launcher"); do
        if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -Eq '^(OMPI_COMM_WORLD_RANK|PMIX_RANK)=0$'; then
            kill -INT "$pid"
            head_found=1
        fi
    done
    [ -n "$head_found" ] || { cat "$log"; echo "rank 0 was not found among mpirun's children" >&2; kill -KILL $launcher; exit 2; }
    i=0
    while kill -0 $launcher 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 300 ]; then cat "$log"; echo "still running 30 s after the head's Ctrl+C" >&2; kill -KILL $launcher; exit 3; fi
        sleep 0.1
    done
    wait $launcher
    rc=$?
else
    ctrl_c_and_wait $launcher "$log" 30
fi
cat "$log"
rm -f "$log"
echo "ended after Ctrl+C (exit $rc)"
exit $rc
