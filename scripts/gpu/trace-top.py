#!/usr/bin/env python3
"""Summarise a Chrome trace written by `wan-bench gen --trace FILE` (LibTorch's Kineto profiler).

Prints the GPU kernels grouped by name: total milliseconds, calls, share of the kernel time, and the span of the
trace, so that "where does a forward's time go" is one command on the GPU machine (stdlib only).
    python3 scripts/gpu/trace-top.py trace.json [--top 25] [--match SUBSTRING]
"""
import argparse
import json
from collections import defaultdict


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--match", default="", help="only kernels whose name contains this")
    a = ap.parse_args()
    with open(a.trace) as f:
        events = json.load(f)
    events = events.get("traceEvents", events) if isinstance(events, dict) else events
    kernels = [e for e in events if e.get("cat") == "kernel" and e.get("ph") == "X"]
    if not kernels:
        print("no kernel events in", a.trace)
        return
    total = defaultdict(float)
    calls = defaultdict(int)
    for e in kernels:
        name = e.get("name", "?")
        if a.match and a.match not in name:
            continue
        total[name] += e.get("dur", 0.0)
        calls[name] += 1
    start = min(e["ts"] for e in kernels)
    end = max(e["ts"] + e.get("dur", 0.0) for e in kernels)
    busy = sum(total.values())
    print(f"kernels: {sum(calls.values())}, busy {busy / 1e3:.1f} ms of a {(end - start) / 1e3:.1f} ms span")
    for name, us in sorted(total.items(), key=lambda kv: -kv[1])[: a.top]:
        short = name if len(name) <= 110 else name[:107] + "..."
        print(f"{us / 1e3:10.2f} ms {calls[name]:6d} calls {100 * us / busy:5.1f} %  {short}")


if __name__ == "__main__":
    main()
