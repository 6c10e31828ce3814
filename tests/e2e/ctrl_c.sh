# ctrl_c.sh — sourced by the e2e scripts that interrupt a run. ctrl_c_and_wait LAUNCHER LOG SECONDS [PID…] sends
# SIGINT to every child of LAUNCHER (each rank, as a terminal's Ctrl+C does), waits up to SECONDS for LAUNCHER to
# end and sets rc to its exit status. If it is still running then, it prints LOG, says so, kills LAUNCHER and the
# further PIDs, and exits the calling script with 3.
ctrl_c_and_wait() {
    ctrl_c_launcher=$1 ctrl_c_log=$2 ctrl_c_seconds=$3
    shift 3
    for pid in $(pgrep -P "$ctrl_c_launcher"); do kill -INT "$pid"; done
    i=0
    while kill -0 "$ctrl_c_launcher" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt $((ctrl_c_seconds * 10)) ]; then
            cat "$ctrl_c_log"
            echo "still running $ctrl_c_seconds s after Ctrl+C" >&2
            kill -KILL "$ctrl_c_launcher" "$@"
            exit 3
        fi
        sleep 0.1
    done
    wait "$ctrl_c_launcher"
    rc=$?
}
