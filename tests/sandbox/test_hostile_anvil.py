#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgated against a hostile anvil.

A fake anvil (tests/tools/fake_anvil.py) sends 100,000 lines whose user
names are full of \\001 escapes, raw tabs, '/', invalid UTF-8 and 64 KiB
of text, naming init, this test, the fake itself, a gone pid and the fake's
own mail process; a second one sends the same and stalls in the middle of
a line. The broker, confined as in production, must list what it can and
say that the listing is incomplete (a user name that fills a line leaves
no room for the rest of its row), refuse the kick (lines it cannot read,
some without a pid it can trust, may be anybody's sessions on any
process: nothing is signalled, not even the mail process), give up on the
stalled anvil within its anvil timeout, and then still serve: a kick on a
sane anvil signals that anvil's mail process.

The hostile and the sane anvil each pass as a Dovecot: the process that
listens on the socket is named "dovecot" and has a child named "imap".
"""

import json
import os
import shutil
import signal
import sys
import tempfile
import time

from kgtest import env
from kgtest.daemon import Kickgated
from kgtest.fakeanvil import FakeAnvil, ended_by
from kgtest.runner import Runner, check

LINES = 100_000
LINE_MAX = 65536  # KG_ANVIL_LINE_MAX
ANVIL_TIMEOUT_MS = 2000
# A reply to a stalled anvil comes after the timeout, but not much later.
STALL_SLACK = 3.0
KICK_WAIT = 5
CHUNK = ("--chunk", "65536")
GONE_PID = 2147483647
EXIT_OK = 0
EXIT_UNAVAILABLE = 69
EXIT_SOFTWARE = 70
EXIT_NOPERM = 77


def hostile_line(i, pids):
    """Line i of the hostile dump: every pattern in turn, and every pid."""
    pid = pids[i % len(pids)]
    n = str(i).encode()
    idents = [
        b"imap/10.0.0.1/tab\x01t" + n,               # escaped tab
        b"imap/10.0.0.2/a\x011b\x01n\x01r\x010" + n,  # escaped \001 LF CR NUL
        b"pop3/192.0.2.7/x/y/../../" + n,            # slashes
        b"imap/10.0.0.3/raw\ttab" + n,               # a raw tab: malformed
        b"imap/10.0.0.4/\xff\xfe\xc0\xaf\xed\xa0\x80" + n,  # not UTF-8
        b"imap/10.0.0.5/end" + n + b"\x01",          # escape cut off
        b"submission/" + n,                          # no address
        b"imap/not-an-address/" + n,
        b"imap/::1/" + n + b"/\x01/\x01",
    ]
    refcount = [b"1", b"2", b"0", b"4294967296"][i % 4]
    return idents[i % len(idents)] + b"\t%d\t" % pid + refcount + b"\n"


def hostile_lines(pids):
    lines = [hostile_line(i, pids) for i in range(LINES - 3)]
    # A user name that fills a line to the limit, and two beyond it.
    for size in (LINE_MAX, LINE_MAX + 1, 4 * LINE_MAX):
        user = b"u" * (size - len(b"imap/10.0.0.9/\t1\t1"))
        lines.append(b"imap/10.0.0.9/" + user + b"\t1\t1\n")
    return b"".join(lines)


class Fakes:
    """Three fake anvils in one directory; stop() ends them all, and their
    children."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kgh", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.anvils = []
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        self.hostile = self._anvil("hostile", comm="dovecot",
                                   children=["imap"], options=CHUNK)
        pids = [1, os.getpid(), self.hostile.children[0], self.hostile.pid,
                GONE_PID]
        body = hostile_lines(pids)
        self.hostile.set_dump(body + b"\n")
        # Stop in the middle of the last line, before the end.
        self.stalled = self._anvil(
            "stalled", body + b"\n",
            options=CHUNK + ("--stall-after", str(len(body) - 7)))
        self.sane = self._anvil("sane", comm="dovecot", children=["imap"])
        self.victim = self.sane.children[0]
        self.sane.set_dump(b"imap/127.0.0.1/victim\t%d\t1\n\n" % self.victim)

    def _anvil(self, name, dump="\n", **kw):
        fake = FakeAnvil(self.dir, name, dump, **kw)
        self.anvils.append(fake)
        return fake

    def stop(self):
        for fake in self.anvils:
            fake.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def check_nothing_signalled(f):
    for fake in f.anvils:
        check(fake.proc.poll() is None, f"fake {fake.dir} was signalled")
        for pid in fake.children:
            check(ended_by(pid) is None,
                  f"mail process {pid} of {fake.dir} was signalled")
    os.kill(1, 0)  # init is there (ProcessLookupError otherwise)


def case_who_lists_what_it_can(f, k):
    res = k.run("who", "-j", "-a", f.hostile.path)
    doc = json.loads(res.out)
    check(res.code == EXIT_SOFTWARE and "the reply is incomplete: 1 "
          "record(s)" in (doc["error"] or ""),
          f"who: {res.code} {doc['error']} {res.err[:300]}")
    check(doc["malformed_anvil_lines"] > 0, "no line counted as malformed")
    # The rows sorted after the one left out are listed all the same.
    check(any(s["user"].startswith("x/y/") for s in doc["sessions"]),
          "rows after the one left out are missing")


def case_kick_signals_nothing(f, k):
    res = k.run("kick", "-f", "-j", "-a", f.hostile.path, "*")
    check(res.code == EXIT_NOPERM, f"kick: {res.code} {res.err[:300]}")
    doc = json.loads(res.out)
    check("kickgated cannot read" in (doc["error"] or "") and
          doc["pids"] == [] and doc["refused"] == [], f"kick: {doc}")
    check_nothing_signalled(f)


def case_stalled_anvil_times_out(f, k):
    start = time.monotonic()
    res = k.run("kick", "-f", "-a", f.stalled.path, "*")
    took = time.monotonic() - start
    check(res.code == EXIT_UNAVAILABLE, f"kick: {res.code} {res.err[:300]}")
    check(ANVIL_TIMEOUT_MS / 1000 * 0.9 <= took
          <= ANVIL_TIMEOUT_MS / 1000 + STALL_SLACK,
          f"answered after {took:.2f}s, anvil timeout {ANVIL_TIMEOUT_MS} ms")
    check_nothing_signalled(f)


def case_next_request_is_served(f, k):
    res = k.run("kick", "victim")
    check(res.code == EXIT_OK, f"kick: {res.code} {res.err[:300]}")
    how = env.wait_until(lambda: ended_by(f.victim), KICK_WAIT)
    check(how == signal.SIGTERM,
          f"the sane anvil's mail process was ended by {how!r}, not SIGTERM")
    check(ended_by(f.hostile.children[0]) is None,
          "the hostile anvil's mail process was signalled")
    check(k.running(), "a daemon process is gone")


CASES = [
    ("who on a hostile anvil lists what it can", case_who_lists_what_it_can),
    ("kick on a hostile anvil signals nothing", case_kick_signals_nothing),
    ("a stalled anvil times out, nothing signalled",
     case_stalled_anvil_times_out),
    ("the next request is served", case_next_request_is_served),
]


def main():
    if os.geteuid() != 0:
        env.skip_or_fail("kickgated must start as root")
    runner = Runner()
    f = Fakes()
    try:
        broker = {"anvil": f.sane.path, "services": "imap",
                  "anvil_timeout_ms": ANVIL_TIMEOUT_MS}
        instances = {"hostile": f.hostile.path, "stalled": f.stalled.path}
        with Kickgated(broker=broker, instances=instances) as k:
            for name, case in CASES:
                runner.run(name, case, f, k)
            if not k.running():
                runner.fail("daemon", k.log_text()[-2000:])
    finally:
        f.stop()
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
