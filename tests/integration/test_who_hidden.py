#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""who = no hides sessions from kicks too (kickgated.conf(5), who), with
real users and sessions: a dry run is answered from the policy alone,
the same for every glob whatever matches, without asking anvil; a real
kick reports only its counts. The audit line still names everything.

The caller `hid` has a rule for tenant A with who = no, on the default
instance and on a fake anvil that counts its connections; `seer` has the
same rule with who = yes, to show that the globs do match.
"""

import contextlib
import json
import os
import shutil
import tempfile
import types

from kgtest import env
from kgtest.daemon import Kickgated
from kgtest.dovecot import Dovecot
from kgtest.fakeanvil import FakeAnvil
from kgtest.runner import check, main
from kgtest.scenarios import disconnected, pids_by_session, session_set
from kgtest.sessions import ImapSession

A1 = "a1@tenant-a.example"
A2 = "a2@tenant-a.example"
B1 = "b1@tenant-b.example"
USERS = {A1: "a1-pw", A2: "a2-pw", B1: "b1-pw"}
TENANT_A = "*@tenant-a.example"
SESSIONS = [(ImapSession, A1, "127.0.0.2"), (ImapSession, A2, "127.0.0.3"),
            (ImapSession, B1, "127.0.0.2")]
# Globs that match two sessions, one, or none of the caller's scope.
PROBES = ["*", "*2@*", A1, "nobody@tenant-a.example", "zz*"]

HIDDEN_DRY_RUN = ("dry run: your rule allows this kick; it does not show "
                  "sessions (who = no), so what it would kick is not shown\n")
EXIT_NO_MATCH = 68


@contextlib.contextmanager
def setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        acc = stack.enter_context(env.Accounts())
        st.hid = acc.user("hid")
        st.seer = acc.user("seer")
        st.dovecot = stack.enter_context(Dovecot(USERS))
        tmp = tempfile.mkdtemp(prefix="kgh", dir="/tmp")
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        os.chmod(tmp, 0o755)
        st.fake = FakeAnvil(tmp, "fake",
                            "imap/127.0.0.2/x1@tenant-a.example\t1\t1\n\n")
        stack.callback(st.fake.stop)
        rule = {"users": TENANT_A, "instances": ["default", "fake"]}
        st.kg = stack.enter_context(Kickgated(
            {"anvil": st.dovecot.anvil_path}, {"fake": st.fake.path}, rules={
                "hidden": {"principals": f"user:{st.hid.pw_name}",
                           "who": False, **rule},
                "seer": {"principals": f"user:{st.seer.pw_name}", **rule},
            }))
        yield st


def run(st, pw, *args):
    """kickgate ARGS as pw; returns the result and its one audit line."""
    res = st.kg.run(*args, uid=pw.pw_uid)
    lines = st.kg.audit_for(res.pid)
    check(len(lines) == 1, f"{args}: audit lines {lines}")
    return res, lines[0]


def check_none_kicked(sessions):
    gone = disconnected(sessions)
    check(not gone, f"disconnected {sorted(map(repr, gone))}")


def shows_session(res, sessions, dovecot):
    pids = [str(p) for p in pids_by_session(dovecot).values()]
    names = [s.user for s in sessions]
    return any(x in res.out or x in res.err for x in names + pids)


def case_dry_run_answers_every_probe_alike(st):
    with session_set(st.dovecot, SESSIONS) as sessions:
        res, _ = run(st, st.seer, "kick", "-n", "*2@*")
        check((res.code, res.out.splitlines()[1:2]) == (0, [A2]),
              f"seer's dry run: {res}")
        for extra in ([], ["-j"]):
            answers = set()
            for glob in PROBES:
                res, audit = run(st, st.hid, "kick", "-n", *extra, glob)
                check(audit.get("outcome") == "checked" and
                      audit.get("rule") == "hidden" and
                      audit.get("pids") == "", f"{glob}: audit {audit}")
                check(not shows_session(res, sessions, st.dovecot),
                      f"{glob} {extra}: shows a session: {res}")
                answers.add((res.code, res.out, res.err))
            check(len(answers) == 1, f"{extra}: answers differ: {answers}")
            code, out, err = answers.pop()
            check((code, err) == (0, ""), f"{extra}: exit {code}, {err!r}")
            if extra:
                doc = json.loads(out)
                check({k: doc[k] for k in ("status", "dry_run", "kicked",
                                           "pids", "connections")} ==
                      {"status": 0, "dry_run": True, "kicked": None,
                       "pids": None, "connections": None}, f"json: {doc}")
            else:
                check(out == HIDDEN_DRY_RUN, f"text: {out!r}")
        check_none_kicked(sessions)


def case_dry_run_does_not_ask_anvil(st):
    before = st.fake.connections()
    res, audit = run(st, st.hid, "kick", "-n", "-a", st.fake.path, "x*")
    check((res.code, res.out) == (0, HIDDEN_DRY_RUN) and
          audit.get("instance") == "fake", f"dry run on fake: {res}")
    check(st.fake.connections() == before,
          f"the fake anvil was asked {st.fake.connections() - before} "
          "time(s)")
    # The same dry run under who = yes does ask it.
    run(st, st.seer, "kick", "-n", "-a", st.fake.path, "x*")
    check(st.fake.connections() == before + 1,
          f"seer's dry run: {st.fake.connections() - before} connections")


def case_kick_reports_counts_only(st):
    with session_set(st.dovecot, SESSIONS) as sessions:
        a2 = next(s for s in sessions if s.user == A2)
        res, audit = run(st, st.hid, "kick", "*2@*")
        check((res.code, res.out, res.err) ==
              (0, "kicked 1 connection in 1 process\n", ""),
              f"kick: {res}")
        check(audit.get("outcome") == "kicked" and
              audit.get("users") == A2 and audit.get("npids") == "1",
              f"audit {audit}")
        gone = disconnected(sessions, expect=[a2])
        check(gone == {a2}, f"disconnected {sorted(map(repr, gone))}")
        a1 = next(s for s in sessions if s.user == A1)
        res, audit = run(st, st.hid, "kick", "-j", A1)
        doc = json.loads(res.out)
        check((doc["status"], doc["kicked"], doc["pids"],
               doc["connections"], doc["processes"]) ==
              (0, None, None, 1, 1), f"kick -j: {doc}")
        check(A1 not in res.out and audit.get("users") == A1,
              f"kick -j: {res.out!r}, audit {audit}")
        check(disconnected([a1], expect=[a1]) == {a1}, "a1 still there")
        res, _ = run(st, st.hid, "kick", "*")
        check((res.code, res.out) == (EXIT_NO_MATCH, "no users kicked\n"),
              f"kick '*' with no session left: {res}")


CASES = [
    ("dry_run_answers_every_probe_alike",
     case_dry_run_answers_every_probe_alike),
    ("dry_run_does_not_ask_anvil", case_dry_run_does_not_ask_anvil),
    ("kick_reports_counts_only", case_kick_reports_counts_only),
]

if __name__ == "__main__":
    main((CASES, setup))
