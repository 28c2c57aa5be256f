#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Request latency of two kickgate builds, side by side on one anvil.

Both daemons read the same private Dovecot 2.3, whose anvil lists N
synthetic connections (kgtest/synthetic.py; pids no kick can reach).
Whole commands are timed, start to exit, interleaved: each round runs
every operation once against each build, so load on the machine falls on
both alike. The table shows each build's median and its ratio to the
first build's.

Used to hold a change to the process model (a frontend per connection,
say) against the tree before it:

    git worktree add /tmp/base COMMIT
    meson setup /tmp/base/build-bench /tmp/base
    meson compile -C /tmp/base/build-bench
    python3 bench/latency.py /tmp/base/build-bench build-bench

Needs root (it starts Dovecot and kickgated).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests",
                                "integration"))
from kgtest import synthetic  # noqa: E402
from kgtest.daemon import Kickgated  # noqa: E402
from kgtest.dovecot import Dovecot  # noqa: E402

OPS = {
    "who > /dev/null": ["who"],
    "kick nosuchuser@nowhere.example": ["kick", "nosuchuser@nowhere.example"],
    "kick -n '*@tenant7.example'": ["kick", "-n", "*@tenant7.example"],
}


def timed(build, sock, args):
    t0 = time.monotonic()
    subprocess.run([os.path.join(build, "kickgate"), *args, "-S", sock],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60, check=False)
    return time.monotonic() - t0


def measure(builds, n, runs):
    times = {(b, op): [] for b in builds for op in OPS}
    with Dovecot({}) as dovecot:
        floor = os.path.join(builds[0], "bench", "floor")
        keep = synthetic.register(dovecot.anvil_path, n, floor)
        daemons = {}
        try:
            for b in builds:
                os.environ["KG_BUILD_DIR"] = b
                daemons[b] = Kickgated({"anvil": dovecot.anvil_path})
                daemons[b].start()
            for _ in range(runs):
                for op, args in OPS.items():
                    for b in builds:
                        times[(b, op)].append(timed(b, daemons[b].sock,
                                                    args))
        finally:
            for kg in daemons.values():
                kg.stop()
            keep.close()
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs=2, metavar="BUILD_DIR")
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    builds = [os.path.abspath(b) for b in args.builds]
    times = measure(builds, args.connections, args.runs)
    print(f"{args.connections} connections, median of {args.runs} runs")
    for op in OPS:
        base = statistics.median(times[(builds[0], op)])
        cells = [f"{statistics.median(times[(b, op)]) * 1000:7.2f} ms "
                 f"({statistics.median(times[(b, op)]) / base:4.2f}x)"
                 for b in builds]
        print(f"  {op:34s} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
