#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""max_sessions_per_hour with real users and sessions
(kickgated.conf(5)): what a caller has kicked under a rule counts against
the rule's hourly budget, so a kick over what remains is refused whole,
and nothing of it kicked, however the sessions are split between kicks.
Dry runs are not charged; each caller has a budget of their own; a
reload's new broker starts every budget anew.
"""

import contextlib
import types

from kgtest import env
from kgtest.daemon import Kickgated
from kgtest.dovecot import Dovecot
from kgtest.runner import check, main
from kgtest.scenarios import disconnected, session_set
from kgtest.sessions import ImapSession

A1 = "a1@tenant-a.example"
A2 = "a2@tenant-a.example"
C1 = "c1@tenant-a.example"
C2 = "c2@tenant-a.example"
USERS = {A1: "a1-pw", A2: "a2-pw", C1: "c1-pw", C2: "c2-pw"}
SESSIONS = [(ImapSession, u, "127.0.0.2") for u in (A1, A2, C1, C2)]
BUDGET = 3
EXIT_NOPERM = 77


def refusal(remain, n=None):
    head = (f"the kick would disconnect {n} connections; " if n
            else "nothing was kicked: ")
    return (f"kickgate: refused: {head}rule 'budget' allows you {BUDGET} "
            f"connections per hour, and {remain} remain now\n")


@contextlib.contextmanager
def setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        acc = stack.enter_context(env.Accounts())
        st.desk = acc.user("bud")
        st.other = acc.user("bud2")
        st.dovecot = stack.enter_context(Dovecot(USERS))
        st.kg = stack.enter_context(Kickgated(
            {"anvil": st.dovecot.anvil_path}, rules={
                "budget": {"principals": f"user:{st.desk.pw_name} "
                                         f"user:{st.other.pw_name}",
                           "users": "*@tenant-a.example",
                           "max_sessions_per_hour": BUDGET},
            }))
        yield st


def run(st, pw, *args, **want):
    """kickgate ARGS as pw; checks its one audit line against want."""
    res = st.kg.run(*args, uid=pw.pw_uid)
    lines = st.kg.audit_for(res.pid)
    check(len(lines) == 1, f"{args}: audit lines {lines}")
    got = {k: lines[0].get(k) for k in want}
    check(got == want, f"{args}: audit {lines[0]}, expected {want}")
    return res


def check_gone(sessions, gone):
    closed = disconnected(sessions, expect=gone)
    check(closed == set(gone), f"disconnected {sorted(map(repr, closed))}, "
                               f"expected {sorted(map(repr, gone))}")


def case_split_kicks_share_one_budget(st):
    with session_set(st.dovecot, SESSIONS) as sessions:
        by_user = {s.user: s for s in sessions}
        res = run(st, st.desk, "kick", "-n", "c*", outcome="dry-run",
                  conns="2")
        check(res.code == 0, f"dry run: {res}")
        res = run(st, st.desk, "kick", "a*", outcome="kicked", conns="2")
        check(res.code == 0, f"first kick: {res}")
        check_gone(sessions, [by_user[A1], by_user[A2]])
        rest = [by_user[C1], by_user[C2]]
        res = run(st, st.desk, "kick", "c*", outcome="over-budget",
                  pids="", users="")
        check((res.code, res.out, res.err) ==
              (EXIT_NOPERM, "", refusal(1, n=2)), f"second kick: {res}")
        check_gone(rest, [])
        res = run(st, st.desk, "kick", C1, outcome="kicked", conns="1")
        check(res.code == 0, f"kick c1 with one left: {res}")
        check_gone(rest, [by_user[C1]])
        for args in (["kick", C2], ["kick", "-n", C2], ["kick", "zz*"]):
            res = run(st, st.desk, *args, outcome="over-budget")
            check((res.code, res.err) == (EXIT_NOPERM, refusal(0)),
                  f"{args} with none left: {res}")
        check_gone([by_user[C2]], [])


def case_each_caller_and_each_broker_counts_anew(st):
    """After the case above, desk's budget is used up."""
    with session_set(st.dovecot, SESSIONS[:2]) as sessions:
        res = run(st, st.other, "kick", A1, outcome="kicked", conns="1")
        check(res.code == 0, f"another caller: {res}")
        check_gone(sessions, [sessions[0]])
        res = run(st, st.desk, "kick", A2, outcome="over-budget")
        check(res.code == EXIT_NOPERM, f"desk before the reload: {res}")
        check(st.kg.reload(), "the reload kept the old broker")
        res = run(st, st.desk, "kick", A2, outcome="kicked", conns="1")
        check(res.code == 0, f"desk after the reload: {res}")
        check_gone(sessions[1:], [sessions[1]])


CASES = [
    ("split_kicks_share_one_budget", case_split_kicks_share_one_budget),
    ("each_caller_and_each_broker_counts_anew",
     case_each_caller_and_each_broker_counts_anew),
]

if __name__ == "__main__":
    main((CASES, setup))
