#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A local user cannot lock others out of kickgated.

The supervisor reads each accepted connection's kernel identity before
it gives it a slot: a caller that no rule names is refused at once (77),
and a uid that already has max_connections_per_uid connections held is
refused (69, "too many connections"). Either refusal is read by the
client whole, never lost to a reset connection.

- A flooder uid (with a rule) opens thousands of connections that stay
  silent, refilling them as they go, for several seconds. Meanwhile
  another uid's requests all succeed, the flooder's own `kickgate who`
  is refused with a readable "too many connections" (69), and a uid that
  no rule names gets 77 without waiting for a slot.
"""

import contextlib
import os
import resource
import select
import signal
import socket
import sys
import time

from kgtest.daemon import Kickgated
from kgtest.dovecot import Dovecot
from kgtest.env import Accounts, wait_until
from kgtest.runner import check, main

PER_UID = 16
FLOOD_HELD = 3000
FLOOD_SECONDS = 60
LEGIT_REQUESTS = 20
# A held connection's slot frees at client_timeout_ms (5 s by default): a
# refusal that waited for one would take that long. The flood's connects
# share the listen backlog with everyone's, so on a loaded machine an
# answer given at once may still take a second or two to arrive.
SLOT_FREES = 5.0
FLOOD_ATTEMPTS = 10
FLOOD_READY = 30
SETTLE = 10
EXIT_OK = 0
EXIT_UNAVAILABLE = 69
EXIT_NOPERM = 77
TOO_MANY = "kickgate: too many connections: uid "
NO_RULE = "kickgate: permission denied: no rule allows this caller\n"


def flood_loop(path, keep, seconds, ready_fd):
    """Connects as fast as it can, keeps the last keep connections open
    and sends nothing, for seconds; writes one byte to ready_fd once it
    holds keep."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held, made = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(1)
        try:
            s.connect(path)
        except OSError:  # the listen backlog is full: try again
            s.close()
            continue
        held.append(s)
        made += 1
        if len(held) > keep:
            held.pop(0).close()
        if made == keep:
            os.write(ready_fd, b"!")


class Setup:
    def __init__(self, kg, flooder, helper, stranger):
        self.kg = kg
        self.flooder = flooder
        self.helper = helper
        self.stranger = stranger


@contextlib.contextmanager
def setup():
    with Dovecot({"probe": "probe-pw"}) as dovecot, Accounts() as acc:
        flooder = acc.user("flood")
        helper = acc.user("help")
        stranger = acc.user("strange")
        rules = {"flooder": {"principals": f"user:{flooder.pw_name}",
                             "users": "nobody-here*"},
                 "helpdesk": {"principals": f"user:{helper.pw_name}"}}
        with Kickgated({"anvil": dovecot.anvil_path,
                        "max_connections_per_uid": PER_UID},
                       rules=rules) as kg:
            yield Setup(kg, flooder, helper, stranger)


@contextlib.contextmanager
def flood(st):
    """A child process of the flooder's uid running flood_loop."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.setgroups([])
            os.setresgid(st.flooder.pw_gid, st.flooder.pw_gid,
                         st.flooder.pw_gid)
            os.setresuid(st.flooder.pw_uid, st.flooder.pw_uid,
                         st.flooder.pw_uid)
            flood_loop(st.kg.sock, FLOOD_HELD, FLOOD_SECONDS, ready_w)
        finally:
            os._exit(0)
    os.close(ready_w)
    try:
        ready = select.select([ready_r], [], [], FLOOD_READY)[0]
        check(ready, f"the flooder did not hold {FLOOD_HELD} connections "
                     f"within {FLOOD_READY}s")
        yield pid
        check(os.waitpid(pid, os.WNOHANG) == (0, 0),
              "the flood ended before the checks")
    finally:
        os.close(ready_r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def case_flood_of_one_uid_locks_out_no_one_else(st):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    check(hard > FLOOD_HELD + 64, f"RLIMIT_NOFILE hard limit {hard} leaves "
                                  f"no room for {FLOOD_HELD} connections")
    with flood(st):
        slowest = 0.0
        for i in range(LEGIT_REQUESTS):
            t0 = time.monotonic()
            res = st.kg.run("who", uid=st.helper.pw_uid)
            slowest = max(slowest, time.monotonic() - t0)
            check(res.code == EXIT_OK, f"request {i} of another uid: exit "
                                       f"{res.code}: {res.err!r}")
        print(f"     slowest of {LEGIT_REQUESTS} requests of another uid "
              f"during the flood: {slowest:.3f}s", flush=True)
        refused = 0
        for _ in range(FLOOD_ATTEMPTS):
            res = st.kg.run("who", uid=st.flooder.pw_uid)
            if res.code == EXIT_UNAVAILABLE:
                check(res.err.startswith(TOO_MANY) and
                      "max_connections_per_uid" in res.err,
                      f"the flooder's refusal: {res.err!r}")
                refused += 1
            else:
                check(res.code == EXIT_OK, f"the flooder's who: exit "
                                           f"{res.code}: {res.err!r}")
        check(refused > 0, "the flooder's own requests were never "
                           "refused while it held its connections")
        t0 = time.monotonic()
        res = st.kg.run("who", uid=st.stranger.pw_uid)
        took = time.monotonic() - t0
        print(f"     a uid no rule names, during the flood: {took:.3f}s",
              flush=True)
        check((res.code, res.out, res.err) == (EXIT_NOPERM, "", NO_RULE),
              f"no-rule uid: exit {res.code}: {res.out!r} {res.err!r}")
        check(took < SLOT_FREES, f"the no-rule uid waited {took:.2f}s, as "
                                 "if for a slot")
    check(st.kg.running(), "the daemon did not survive the flood")
    # The flood's connections are let go as the supervisor sees them
    # closed, which takes a moment.
    res = wait_until(lambda: st.kg.run("who", uid=st.flooder.pw_uid).code
                     == EXIT_OK, SETTLE)
    check(res, "the flooder's requests still refused after its flood")


CASES = [
    ("flood_of_one_uid_locks_out_no_one_else",
     case_flood_of_one_uid_locks_out_no_one_else),
]


if __name__ == "__main__":
    sys.exit(main((CASES, setup)))
