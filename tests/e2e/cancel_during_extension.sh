#!/bin/sh
# cancel_during_extension.sh MPIRUN_AND_ARGS… — runs a job whose prompt is extended by "DashScope" (a loopback
# stand-in, python3, that takes the request and never answers; DASH_API_URL and DASH_API_KEY are exported for
# the run), waits until the request has arrived (an event, not a fixed sleep), sends SIGINT to every rank as a
# terminal's Ctrl+C does, and checks that the run ends within 15 s. Prints the run's output, then
# "ended after Ctrl+C (exit N)".
. "$(dirname "$0")/ctrl_c.sh"
dir=$(mktemp -d)
log=$dir/log
python3 - "$dir" <<'EOF' &
import os, socket, sys, time
d = sys.argv[1]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(4)
with open(os.path.join(d, "port.tmp"), "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
c, _ = s.accept()
c.recv(65536)
open(os.path.join(d, "asked"), "w").close()
time.sleep(120)  # never answers
EOF
server=$!
i=0
until [ -f "$dir/port" ]; do i=$((i + 1)); [ $i -gt 100 ] && { echo "the stand-in did not start" >&2; exit 2; }; sleep 0.1; done
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1 DASH_API_URL="http://127.0.0.1:$(cat "$dir/port")" DASH_API_KEY=test-key
"$@" >"$log" 2>&1 &
launcher=$!
i=0
until [ -f "$dir/asked" ]; do
    i=$((i + 1))
    if [ $i -gt 1200 ] || ! kill -0 $launcher 2>/dev/null; then cat "$log"; echo "no request reached the stand-in" >&2; kill $server; exit 2; fi
    sleep 0.1
done
ctrl_c_and_wait $launcher "$log" 15 $server
kill $server 2>/dev/null
cat "$log"
rm -rf "$dir"
echo "ended after Ctrl+C (exit $rc)"
exit $rc
