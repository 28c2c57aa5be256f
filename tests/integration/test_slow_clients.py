#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Clients that read their reply slowly or not at all do not stall others.

The broker serves one request at a time. A reply waits for room on its
client's socket at most KG_REPLY_STALL_MS (250 ms) for one packet, and
KG_REPLY_WAIT_MS plus KG_REPLY_WAIT_PACKET_MS per packet sent in all
(broker/reply_out.h); beyond that it is cut off, logged and audited with
reply=stalled. With 10,000 synthetic connections in anvil (a who reply
of about half a megabyte, several packets):

- ten clients that ask for every session and never read delay another
  caller's `kickgate who` by one stall limit each, not by five seconds
  per packet as a send timeout did;
- a client that reads one packet every few seconds delays it by one
  stall limit;
- a listing of every session read at a normal pace arrives whole, and
  its audit line has no reply= field;
- so does one whose output goes to a pager nobody scrolls for a few
  seconds: kickgate reads the whole reply before it prints.

Each latency is printed, as it is the figure SECURITY.md quotes.
"""

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time

from kgtest import synthetic
from kgtest.daemon import Kickgated, build_dir
from kgtest.dovecot import Dovecot
from kgtest.env import wait_until
from kgtest.runner import check, main

N_CONNS = 10000
SILENT = 10
SLOW_READ_EVERY = 3.0
# What one stalled reply may cost the others: the stall limit (250 ms)
# and the request's own work (about 30 ms).
PER_STALL = 0.4
OWN_WHO = 1.0
LOG_WAIT = 5
# How long a pager leaves kickgate's output unread: far beyond the
# broker's stall limit.
PAGER_PAUSE = 3.0
CMD_TIMEOUT = 60
# A who request: version 2, op who, no flags, no network, glob, path or
# instance name.
WHO_REQUEST = b"\x03\x02" + bytes(10)
PKT_MAX = 96 * 1024


def kickgate(*args):
    argv = [os.path.join(build_dir(), "kickgate"), *args]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=CMD_TIMEOUT, check=False)


def timed_who(sock):
    """(seconds, exit code, stdout lines, stderr) of `kickgate who -1`."""
    t0 = time.monotonic()
    res = kickgate("who", "-1", "-S", sock)
    took = time.monotonic() - t0
    return took, res.returncode, res.stdout.splitlines(), res.stderr


def ask_who(sock):
    """A raw client that has sent a who request and reads nothing yet."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(CMD_TIMEOUT)
    s.connect(sock)
    s.send(WHO_REQUEST)
    return s


def stalled_count_of_all(kg):
    return sum(1 for line in kg.audit_lines() if " reply=stalled" in line)


def stalled_count(kg):
    return sum(1 for line in kg.audit_lines()
               if f"pid={os.getpid()} " in line and
               " reply=stalled" in line)


@contextlib.contextmanager
def setup():
    with Dovecot({"probe": "probe-pw"}) as dovecot, \
            synthetic.registered(dovecot.anvil_path, N_CONNS), \
            Kickgated({"anvil": dovecot.anvil_path}) as kg:
        yield kg


def case_large_reply_read_normally_arrives_whole(kg):
    took, code, lines, err = timed_who(kg.sock)
    print(f"     who of {N_CONNS} rows, alone: {took:.3f}s", flush=True)
    check(code == 0 and len(lines) == N_CONNS + 1,
          f"who: exit {code}, {len(lines)} lines: {err}")
    check(" reply=" not in kg.audit_lines()[-1],
          f"a whole reply audited as cut off: {kg.audit_lines()[-1]}")


def case_output_nobody_reads_yet_still_whole(kg):
    """kickgate who into a pipe that stays unread for PAGER_PAUSE: the
    rows wait in kickgate, not in the broker's reply."""
    stalled = stalled_count_of_all(kg)
    r, w = os.pipe()
    proc = subprocess.Popen([os.path.join(build_dir(), "kickgate"), "who",
                             "-1", "-S", kg.sock], stdin=subprocess.DEVNULL,
                            stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    try:
        time.sleep(PAGER_PAUSE)
        with os.fdopen(r, "rb") as out:
            lines = out.read().splitlines()
        err = proc.stderr.read().decode(errors="replace")
        code = proc.wait(CMD_TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    check(code == 0 and len(lines) == N_CONNS + 1,
          f"who into an unread pipe: exit {code}, {len(lines)} lines: {err}")
    check(stalled_count_of_all(kg) == stalled,
          "a reply was cut off while kickgate's output waited")


def case_silent_clients_add_a_stall_each(kg):
    before = stalled_count(kg)
    silent = [ask_who(kg.sock) for _ in range(SILENT)]
    try:
        took, code, lines, err = timed_who(kg.sock)
        print(f"     who behind {SILENT} clients that never read: "
              f"{took:.3f}s", flush=True)
        check(code == 0 and len(lines) == N_CONNS + 1,
              f"who: exit {code}, {len(lines)} lines: {err}")
        limit = SILENT * PER_STALL + OWN_WHO
        check(took <= limit, f"who took {took:.2f}s behind {SILENT} "
                             f"silent clients (limit {limit:.2f}s)")
        check(wait_until(lambda: stalled_count(kg) - before == SILENT,
                         LOG_WAIT),
              f"{stalled_count(kg) - before} audit lines with "
              f"reply=stalled, want {SILENT}")
        line = (f"client pid {os.getpid()} (uid 0) did not take its reply "
                "within")
        check(kg.log_text().count(line) >= SILENT,
              f"no {line!r} in the log: {kg.log_text()[-500:]}")
    finally:
        for s in silent:
            s.close()


def slow_reader(s, stop, got):
    """Reads one packet every SLOW_READ_EVERY seconds until the reply ends
    or is cut off; records each packet's size."""
    while not stop.wait(SLOW_READ_EVERY):
        try:
            pkt = s.recv(PKT_MAX)
        except OSError:
            return
        got.append(len(pkt))
        if not pkt:
            return


def case_slow_reader_adds_one_stall(kg):
    before = stalled_count(kg)
    stop = threading.Event()
    got = []
    with ask_who(kg.sock) as s:
        reader = threading.Thread(target=slow_reader, args=(s, stop, got))
        reader.start()
        try:
            took, code, lines, err = timed_who(kg.sock)
            print(f"     who behind a client reading a packet every "
                  f"{SLOW_READ_EVERY:.0f}s: {took:.3f}s", flush=True)
            check(code == 0 and len(lines) == N_CONNS + 1,
                  f"who: exit {code}, {len(lines)} lines: {err}")
            check(took <= PER_STALL + OWN_WHO,
                  f"who took {took:.2f}s behind a slow reader")
            check(wait_until(lambda: stalled_count(kg) - before == 1,
                             LOG_WAIT),
                  "the slow reader's reply is not audited as stalled")
        finally:
            stop.set()
            reader.join()
    check(kg.running(), "the daemon did not survive the slow reader")


CASES = [
    ("who_of_10000_rows_read_normally_arrives_whole",
     case_large_reply_read_normally_arrives_whole),
    ("who_into_output_nobody_reads_for_3s_still_arrives_whole",
     case_output_nobody_reads_yet_still_whole),
    ("10_clients_that_never_read_delay_another_who_by_a_stall_limit_each",
     case_silent_clients_add_a_stall_each),
    ("a_reader_of_one_packet_every_3s_delays_another_who_by_one_stall_limit",
     case_slow_reader_adds_one_stall),
]


if __name__ == "__main__":
    sys.exit(main((CASES, setup)))
