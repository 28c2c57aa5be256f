#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the Dovecot 2.4 harness (kgtest.dovecot24) against the real thing.

A Dovecot 2.4 from the Debian 13 root (tools/debian13-root) is started in
each start mode; real IMAP and POP3 sessions of two users log in from
127.0.0.2, 127.0.0.3 and ::1. The root's own doveadm who must list
exactly them, and anvil, asked from the host, must speak protocol 2: its
VERSION line first, unasked; after the client's answer, a CONNECT-DUMP
whose header names user_tenant and whose rows are those sessions with the
user's domain as tenant. Restarts (doveadm stop, SIGTERM, a change of
mode) must leave a working instance with a new master.

Needs root and the root (a cold build downloads from Debian's archive):
without either it skips, and fails in CI.
"""

import collections
import os
import re
import socket
import sys

from kgtest import env
from kgtest.dovecot import DETACHED, FOREGROUND, START_MODES, DovecotError
from kgtest.dovecot24 import (CLIENT_HANDSHAKE, SERVER_VERSION, TENANT_FIELD,
                              Dovecot24, build_root, parse_connect_dump)
from kgtest.runner import Runner, check
from kgtest.scenarios import session_set
from kgtest.sessions import ImapSession, Pop3Session

USERS = {"alice@tenant-a.example": "alice-pw",
         "bob@tenant-b.example": "bob-pw"}
SESSIONS = [
    (ImapSession, "alice@tenant-a.example", "127.0.0.2"),
    (Pop3Session, "alice@tenant-a.example", "127.0.0.3"),
    (ImapSession, "bob@tenant-b.example", "::1"),
    (ImapSession, "bob@tenant-b.example", "127.0.0.3"),
    (Pop3Session, "bob@tenant-b.example", "127.0.0.2"),
]
GUID_RE = re.compile(r"[0-9a-f]{32}")
# How long anvil is given to speak first before the client says anything.
GREETING_TIMEOUT = 5
WHO_TIMEOUT = 10


def session_keys(sessions):
    return collections.Counter((s.user, s.service, s.src) for s in sessions)


def who(dovecot):
    """The root's own `doveadm who -1` as a Counter of (user, service, ip),
    and the set of pids it names; every row's user_tenant must be the
    user's domain."""
    keys = collections.Counter()
    pids = set()
    for row in dovecot.who_rows():
        check(row.get(TENANT_FIELD) == row["username"].split("@", 1)[1],
              f"doveadm who -1 row {row!r}: {TENANT_FIELD}")
        keys[(row["username"], row["service"], row["ip"])] += 1
        pids.add(int(row["pid"]))
    return keys, pids


def check_who(dovecot, sessions):
    want = session_keys(sessions)
    env.wait_until(lambda: who(dovecot)[0] == want, WHO_TIMEOUT)
    keys = who(dovecot)[0]
    check(keys == want,
          f"doveadm who -1 shows {dict(keys)}, expected {dict(want)}")


def case_version(dovecot):
    check(dovecot.version.startswith("2.4."),
          f"dovecot --version is {dovecot.version!r}")


def case_who_lists_exactly_the_sessions(dovecot):
    with session_set(dovecot, SESSIONS) as sessions:
        check_who(dovecot, sessions)
        _keys, pids = who(dovecot)
        check(len(pids) == len(sessions),
              f"{len(pids)} processes for {len(sessions)} sessions")
        check(all(s.alive() for s in sessions), "a session stopped working")
    check_who(dovecot, [])


def case_anvil_handshake_and_dump(dovecot):
    with session_set(dovecot, SESSIONS) as sessions:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(GREETING_TIMEOUT)
            s.connect(dovecot.anvil_path)
            # Anvil speaks first: nothing has been sent yet.
            first = b""
            for _ in range(len(SERVER_VERSION)):
                if b"\n" in first:
                    break
                chunk = s.recv(len(SERVER_VERSION) - len(first) or 1)
                check(chunk, f"anvil closed after {first!r}")
                first += chunk
            check(first == SERVER_VERSION,
                  f"anvil's unasked first bytes {first!r}")
            s.sendall(CLIENT_HANDSHAKE + b"CONNECT-DUMP\n")
            data = b""
            for _ in range(1000):
                if data == b"\n" or data.endswith(b"\n\n"):
                    break
                chunk = s.recv(65536)
                check(chunk, f"anvil closed after {data!r}")
                data += chunk
        fields, rows = parse_connect_dump(data)
        check(TENANT_FIELD in fields, f"dump header {fields!r}")
        got = collections.Counter((r.user, r.service, r.ip) for r in rows)
        check(got == session_keys(sessions),
              f"dump lists {dict(got)}, expected "
              f"{dict(session_keys(sessions))}")
        for r in rows:
            check(r.alt.get(TENANT_FIELD) == r.user.split("@", 1)[1],
                  f"row {r!r}: {TENANT_FIELD} is not the user's domain")
            check(GUID_RE.fullmatch(r.guid), f"row {r!r}: conn guid")
            check(r.dest_ip is None, f"row {r!r}: dest ip on a backend")
        check({r.pid for r in rows} == who(dovecot)[1],
              "dump and doveadm who name different pids")
        # The harness's own dump agrees.
        harness = collections.Counter(
            (r.user, r.service, r.ip)
            for r in dovecot.anvil_connections()[1])
        check(harness == got, f"harness dump {dict(harness)}")


def case_anvil_refuses_23_client(dovecot):
    """A 2.3 client receives the server's VERSION line, then EOF."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(GREETING_TIMEOUT)
        s.connect(dovecot.anvil_path)
        s.sendall(b"VERSION\tanvil\t1\t0\nCONNECT-DUMP\n")
        data = b""
        for _ in range(100):
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    check(data == SERVER_VERSION, f"a 2.3 client got {data!r}")


def restart_case(how, mode):
    def case(dovecot):
        before = dovecot.master_pid()
        dovecot.restart(mode=mode, how=how)
        after = dovecot.master_pid()
        check(after is not None and after != before,
              f"master pid {before} -> {after}")
        check(dovecot.mode == mode, f"mode {dovecot.mode}")
        with session_set(dovecot, SESSIONS[:3]) as sessions:
            check_who(dovecot, sessions)
    return case


CASES = [
    ("version_is_2.4", case_version),
    ("doveadm_who_lists_exactly_the_sessions",
     case_who_lists_exactly_the_sessions),
    ("anvil_speaks_first_and_dumps_user_tenant",
     case_anvil_handshake_and_dump),
    ("anvil_answers_a_2.3_client_with_version_then_eof",
     case_anvil_refuses_23_client),
]


def proc_mounts(root):
    path = os.path.join(root, "proc")
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if line.split()[4] == path)


def main():
    env.require_root()
    try:
        root = build_root()
    except DovecotError as err:
        env.skip_or_fail(f"no Debian 13 root with Dovecot 2.4: {err}")
    mounts = proc_mounts(root)
    runner = Runner()
    for mode in START_MODES:
        other = DETACHED if mode == FOREGROUND else FOREGROUND
        cases = [(f"{mode}:{name}", func) for name, func in CASES] + [
            (f"{mode}:restart_by_doveadm_stop",
             restart_case("doveadm", mode)),
            (f"{mode}:restart_by_sigterm_as_{other}",
             restart_case("signal", other)),
            (f"{mode}:after_restart:doveadm_who_lists_exactly_the_sessions",
             case_who_lists_exactly_the_sessions),
        ]
        runner.group(cases, lambda m=mode: Dovecot24(USERS, mode=m,
                                                     root=root))
        runner.run(f"{mode}:proc_unmounted_after_stop",
                   lambda: check(proc_mounts(root) == mounts,
                                 f"{proc_mounts(root)} proc mounts on "
                                 f"{root}/proc, {mounts} before"))
    sys.exit(runner.finish())


if __name__ == "__main__":
    main()
