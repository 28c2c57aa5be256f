#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""No tenant learns about another from kickgate's replies.

A real Dovecot 2.3 with two tenants' users logged in over IMAP, each
session its own imap process. The caller "help" is a created system user
in a created group, whose rule covers tenant A. Every request form a
helpdesk uses (who, who -1, kick -n, kick, and their -j forms) runs twice
on fresh sessions of tenant A: once with tenant A alone in anvil, once
with tenant B there as well: a real session of b1 and, registered in
anvil beside it, more of tenant B's connections, two of them in forms
kickgated cannot read (an empty user name, an overlong service name).

The replies must be the same byte for byte. Only the pids of tenant A's
processes differ between the runs; each is replaced by the name of the
user it serves before the comparison, and nothing else is. Root, whose
scope is everything, is told about the unreadable lines: the test would
not notice their count otherwise.
"""

import contextlib
import json
import re
import socket
import types

from kgtest import env, synthetic
from kgtest.daemon import Kickgated
from kgtest.dovecot import Dovecot
from kgtest.runner import check, main
from kgtest.scenarios import disconnected, session_set
from kgtest.sessions import ImapSession

A1 = "a1@tenant-a.example"
A2 = "a2@tenant-a.example"
B1 = "b1@tenant-b.example"
USERS = {A1: "a1-pw", A2: "a2-pw", B1: "b1-pw"}
TENANT_A = "*@tenant-a.example"
OWN = [(ImapSession, A1, "127.0.0.2"), (ImapSession, A2, "127.0.0.3")]
# b1 shares a1's address: only the user scope tells them apart.
OTHERS = [(ImapSession, B1, "127.0.0.2")]
# Tenant B's connections registered in anvil, on pids no process has.
OTHER_IDENTS = ["imap/127.0.0.2/b2@tenant-b.example",
                "pop3/::1/b3@tenant-b.example",
                "imap/127.0.0.4/",
                "x" * 40 + "/127.0.0.4/b4@tenant-b.example"]
UNREADABLE = 2

# In this order: the dry runs before the kicks that end a1's and a2's
# sessions.
REQUESTS = [("who",), ("who", "-j"), ("who", "-1"), ("who", "-1", "-j"),
            ("kick", "-n", A1), ("kick", "-n", "-j", A1),
            ("kick", "-j", A1), ("kick", A2)]
SETTLE_TIMEOUT = 10


@contextlib.contextmanager
def setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        acc = stack.enter_context(env.Accounts())
        group = acc.group("hdA")
        pw = acc.user("help", groups=[group.gr_name])
        st.help = (pw.pw_uid, pw.pw_gid, [group.gr_gid])
        st.dovecot = stack.enter_context(Dovecot(USERS))
        st.kg = stack.enter_context(Kickgated(
            {"anvil": st.dovecot.anvil_path}, rules={
                "helpdesk-a": {"principals": f"group:{group.gr_name}",
                               "users": TENANT_A}}))
        yield st


@contextlib.contextmanager
def other_connections(dovecot):
    """OTHER_IDENTS registered in anvil for as long as the block runs."""
    pid0 = synthetic.first_pid()
    lines = b"VERSION\tanvil\t1\t0\n" + b"".join(
        f"CONNECT\t{pid0 + i}\t{ident}\n".encode()
        for i, ident in enumerate(OTHER_IDENTS))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(dovecot.anvil_path)
        sock.sendall(lines)
        check(env.wait_until(lambda: len(dovecot.anvil_dump()) >=
                             len(OTHER_IDENTS), SETTLE_TIMEOUT),
              "anvil did not list the other tenant's connections")
        yield


def tenant_a_gone(dovecot):
    """Waits until anvil lists none of tenant A's sessions: an earlier
    run's must not show in the next one."""
    def gone():
        return not any(ident[2].endswith("@tenant-a.example")
                       for ident, _pid, _refcount in dovecot.anvil_dump())
    check(env.wait_until(gone, SETTLE_TIMEOUT),
          "tenant A's ended sessions stay in anvil")


def named_pids(text, pids):
    """text with each of tenant A's pids replaced by its user's name."""
    for pid, user in pids.items():
        text = re.sub(rf"(?<![0-9]){pid}(?![0-9])", f"<pid of {user}>",
                      text)
    return text


def replies(st, others):
    """(args, exit, stdout, stderr) of every request as the helpdesk."""
    tenant_a_gone(st.dovecot)
    specs = OWN + (OTHERS if others else [])
    with session_set(st.dovecot, specs) as sessions:
        own = [s for s in sessions if s.user != B1]
        # From anvil: doveadm who cannot read an empty user name either.
        pids = {pid: ident[2] for ident, pid, _refcount
                in st.dovecot.anvil_dump() if ident[2] in (A1, A2)}
        check(len(pids) == len(own), f"tenant A shares a process: {pids}")
        got = []
        for args in REQUESTS:
            uid, gid, groups = st.help
            res = st.kg.run(*args, uid=uid, gid=gid, groups=groups)
            got.append((args, res.code, named_pids(res.out, pids),
                        named_pids(res.err, pids)))
        closed = disconnected(sessions, expect=own)
        check(closed == set(own), f"disconnected {closed}, expected {own}")
    return got


def case_replies_do_not_depend_on_other_tenants(st):
    alone = replies(st, others=False)
    with other_connections(st.dovecot):
        crowded = replies(st, others=True)
        res = st.kg.run("who", "-j")
        count = json.loads(res.out)["malformed_anvil_lines"]
        check(count == UNREADABLE, f"root is told of {count} malformed "
                                   f"lines, not {UNREADABLE}")
    for a, b in zip(alone, crowded):
        check(a == b, f"kickgate {' '.join(a[0])}: alone {a[1:]}, "
                      f"with tenant B {b[1:]}")
    # The comparison must have something to compare.
    check(all(code == 0 for _args, code, _out, _err in alone),
          f"not every request succeeded: {alone}")


CASES = [
    ("replies_do_not_depend_on_other_tenants",
     case_replies_do_not_depend_on_other_tenants),
]


if __name__ == "__main__":
    main((CASES, setup))
