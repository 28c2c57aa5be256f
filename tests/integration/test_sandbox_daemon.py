#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The running daemon is confined as SECURITY.md says, and its sandboxes
leave it able to serve.

Against a real Dovecot, kickgated runs with a frontend_user made for this
test. What /proc shows about the broker and about the frontend of a
connected client and about the frontends waiting for a client is checked
before and after a who and a real kick: ids,
capability sets, no_new_privs, seccomp, not dumpable, and the frontend's
empty root. Requests that make libc do more
inside the sandbox must not kill it either: a caller without a passwd
entry, and the default audit = syslog (once confined, the broker reads the
account names for its audit lines and connects to syslog).
"""

import contextlib
import socket
import types

from kgtest.confinement import check_broker, check_frontend, wait_filtered
from kgtest.daemon import Kickgated
from kgtest.dovecot import Dovecot
from kgtest.env import Accounts, wait_until
from kgtest.runner import check, main
from kgtest.scenarios import disconnected
from kgtest.sessions import ImapSession, open_sessions

USERS = {"bar": "bar-pw", "baz": "baz-pw"}
# No passwd line has this uid.
UID_WITHOUT_ACCOUNT = 54321
EXIT_OK = 0
EXIT_NOPERM = 77
WAIT = 5


class DefaultAuditKickgated(Kickgated):
    """kickgated with the configuration's default audit = syslog."""

    def config_text(self):
        return super().config_text().replace("audit = stderr\n", "")


def check_confined(st):
    """The broker, the frontend a silent client gets, and every frontend
    waiting in the pool for a client of its own."""
    pids = st.kg.pids()
    check(set(pids) == {"broker"}, f"processes: {pids}")
    check(wait_until(lambda: st.kg.idle_frontends(), WAIT),
          "no frontend waits for a client")
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as client:
        client.connect(st.kg.sock)
        check(wait_until(lambda: len(st.kg.frontends()) == 1, WAIT),
              f"frontends {st.kg.frontends()} for one client")
        frontends = st.kg.frontends() + st.kg.idle_frontends()
        wait_filtered([*frontends, pids["broker"]])
        problems = []
        for pid in frontends:
            problems += check_frontend(pid, st.fe.pw_uid, st.fe.pw_gid)
    problems += check_broker(pids["broker"])
    check(not problems, "; ".join(problems))


@contextlib.contextmanager
def setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        accounts = stack.enter_context(Accounts())
        st.fe = accounts.user("fe")
        st.dovecot = stack.enter_context(Dovecot(USERS))
        st.sessions = open_sessions(st.dovecot,
                                    [(ImapSession, "bar", "127.0.0.2"),
                                     (ImapSession, "baz", "127.0.0.3")])
        for s in st.sessions:
            stack.callback(s.close)
        st.broker = {"anvil": st.dovecot.anvil_path,
                     "frontend_user": st.fe.pw_name}
        st.kg = stack.enter_context(Kickgated(st.broker))
        yield st


def case_confined_at_start(st):
    check_confined(st)


def case_serves_who_and_kick(st):
    res = st.kg.run("who")
    check(res.code == EXIT_OK, f"who: {res.code} {res.err}")
    check("bar" in res.out and "baz" in res.out, f"who: {res.out!r}")
    res = st.kg.run("kick", "bar")
    check(res.code == EXIT_OK, f"kick: {res.code} {res.err}")
    bar = st.sessions[0]
    closed = disconnected(st.sessions, expect=[bar])
    check(closed == {bar}, f"closed: {closed}, expected only {bar}")
    check_confined(st)


def case_caller_without_account(st):
    res = st.kg.run("who", uid=UID_WITHOUT_ACCOUNT)
    check(res.code == EXIT_NOPERM, f"who: {res.code} {res.err}")
    check(st.kg.running(), "a daemon process died: " + st.kg.log_text())


def case_default_audit(st):
    with DefaultAuditKickgated(st.broker) as kg:
        res = kg.run("who")
        check(res.code == EXIT_OK, f"who: {res.code} {res.err}")
        check(kg.running(), "a daemon process died: " + kg.log_text())


CASES = [
    ("broker and frontend confined at start", case_confined_at_start),
    ("who and kick work, still confined", case_serves_who_and_kick),
    ("a caller without passwd entry kills nothing",
     case_caller_without_account),
    ("audit = syslog (the default) starts and serves", case_default_audit),
]

if __name__ == "__main__":
    main((CASES, setup))
