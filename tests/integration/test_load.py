#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgated under load, bounded, on loopback only.

A private Dovecot's anvil holds 10,000 synthetic connections (pids above
any possible pid_max: nothing real can be signalled). 200 clients at once
each send 25 requests, alternating `kickgate who` and `kickgate kick -n`
for a tenth of the users; every reply must be complete and exactly what
the same request got when the daemon was idle.

Afterwards the supervisor (which holds every client's socket until the
broker has it) and the broker hold the descriptors they held before, and
their resident memory is back where it was; every frontend has exited. The reference is taken
after one request of each kind, so it includes what the first requests
set up for good (stdio's buffer for the audit lines, the name service
state behind the audit's user names, the heap grown to a request's
working size). What freed memory the allocator keeps for reuse is
page-granular and depends on where the heap's top ends, so resident
memory may differ by RSS_SLACK.
"""

import concurrent.futures
import contextlib
import hashlib
import os
import subprocess
import sys

from kgtest import synthetic
from kgtest.daemon import Kickgated, build_dir
from kgtest.dovecot import Dovecot
from kgtest.env import wait_until
from kgtest.runner import check, main

N_CONNS = 10000
CLIENTS = 200
REQUESTS = 25
TENTH = "*@tenant7.example"
EXIT_NOMATCH = 68
RSS_SLACK = 1 << 20
SETTLE_TIMEOUT = 10
CMD_TIMEOUT = 120


class Setup:
    def __init__(self, dovecot, kg):
        self.dovecot = dovecot
        self.kg = kg
        self.ref = {}
        self.before = None

    def argv(self, op):
        kickgate = os.path.join(build_dir(), "kickgate")
        if op == "who":
            return [kickgate, "who", "-S", self.kg.sock]
        return [kickgate, "kick", "-n", "-S", self.kg.sock, TENTH]


def run(argv):
    """(exit code, sha256 of stdout, stdout size, stderr, stdout)."""
    res = subprocess.run(argv, stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=CMD_TIMEOUT,
                         check=False)
    return (res.returncode, hashlib.sha256(res.stdout).hexdigest(),
            len(res.stdout), res.stderr.decode(errors="replace"), res.stdout)


def usage(pid):
    """(open descriptors, resident bytes) of pid."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f
                   if line.startswith("VmRSS:"))
    return fds, rss * 1024


def usage_all(kg):
    pids = {"supervisor": kg.supervisor, **kg.pids()}
    return {role: usage(pid) for role, pid in pids.items()}


@contextlib.contextmanager
def setup():
    with Dovecot({"probe": "probe-pw"}) as dovecot, \
            synthetic.registered(dovecot.anvil_path, N_CONNS), \
            Kickgated({"anvil": dovecot.anvil_path}) as kg:
        yield Setup(dovecot, kg)


def case_reference_replies(st):
    """The idle daemon's replies, checked against the registered set."""
    for op in ("who", "kick"):
        code, digest, size, err, out = run(st.argv(op))
        st.ref[op] = (code, digest, size)
        text = out.decode()
        if op == "who":
            lines = text.splitlines()
            check(code == 0 and err == "", f"who: exit {code}: {err}")
            check(lines[0] == "username # proto (pids) (ips)",
                  f"who header {lines[0]!r}")
            want = {synthetic.user(i) for i in range(N_CONNS)}
            check({line.split()[0] for line in lines[1:]} == want and
                  len(lines) == N_CONNS + 1, "who does not list every "
                  "connection once")
        else:
            # Every pid is above pid_max: the dry run finds them gone.
            gone = [line for line in text.splitlines()
                    if line.startswith("refused: pid ") and
                    line.endswith(": already gone")]
            check(code == EXIT_NOMATCH, f"kick -n: exit {code}: {err}")
            check(len(gone) == N_CONNS // synthetic.TENANTS,
                  f"kick -n names {len(gone)} pids, want "
                  f"{N_CONNS // synthetic.TENANTS}")
    st.before = usage_all(st.kg)


def client(st, k):
    """One client's requests; returns the mismatches."""
    bad = []
    for r in range(REQUESTS):
        op = ("who", "kick")[(k + r) % 2]
        code, digest, size, err, _ = run(st.argv(op))
        if (code, digest, size) != st.ref[op] or err:
            bad.append(f"client {k} request {r} ({op}): exit {code}, "
                       f"{size} bytes, stderr {err.strip()!r}")
    return bad


def case_concurrent_replies_complete_and_correct(st):
    check(st.ref, "no reference replies")
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda k: client(st, k), range(CLIENTS)))
    bad = [b for r in results for b in r]
    check(not bad, f"{len(bad)} of {CLIENTS * REQUESTS} replies differ, "
                   f"first: {bad[:3]}")
    check(st.kg.running(), "the daemon did not survive the load")


def case_descriptors_back_to_start(st):
    check(st.before, "no reference usage")

    def fds():
        return {role: u[0] for role, u in usage_all(st.kg).items()}

    want = {role: u[0] for role, u in st.before.items()}
    wait_until(lambda: fds() == want, SETTLE_TIMEOUT)
    check(fds() == want, f"open descriptors {fds()}, before {want}")
    check(wait_until(lambda: not st.kg.frontends(), SETTLE_TIMEOUT),
          f"frontends {st.kg.frontends()} still run")


def case_resident_memory_back_to_start(st):
    check(st.before, "no reference usage")
    after = usage_all(st.kg)
    for role, (fds, rss) in after.items():
        print(f"     {role}: {st.before[role][0]} -> {fds} descriptors, "
              f"{st.before[role][1] >> 10} -> {rss >> 10} KiB resident",
              flush=True)
    for role, (_, rss) in after.items():
        was = st.before[role][1]
        check(rss <= was + RSS_SLACK, f"{role} resident {rss} bytes, "
                                      f"before {was}")


CASES = [
    ("reference_replies_list_every_connection", case_reference_replies),
    ("200_clients_x_25_requests_all_replies_complete_and_correct",
     case_concurrent_replies_complete_and_correct),
    ("open_descriptors_back_to_start", case_descriptors_back_to_start),
    ("resident_memory_back_to_start", case_resident_memory_back_to_start),
]


if __name__ == "__main__":
    sys.exit(main((CASES, setup)))
