#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Who may use kickgated: Unix users created for the test, with and
without rules, against a real Dovecot 2.3.

Two kickgated instances read the same Dovecot's anvil: one without rules
(only root is allowed), one with a rule naming a user and a rule for a
group with a narrow scope. kickgate runs as those users through setpriv;
the broker learns who they are from the kernel alone.
"""

import contextlib
import types

from kgtest import env
from kgtest.daemon import Kickgated
from kgtest.dovecot import Dovecot
from kgtest.runner import check, main
from kgtest.scenarios import USERS, disconnected, session_set

EXIT_NO_MATCH = 68
EXIT_NOPERM = 77
# The supervisor's answer to a caller no rule names, before any request
# is read: no audit line, as there is no request (SECURITY.md).
NO_RULE = "kickgate: permission denied: no rule allows this caller\n"
NO_FORCE = "kickgate: permission denied: -f is not allowed\n"
# The group rule's scope.
TEAM_USERS = "ba*"
TEAM_NETWORKS = "127.0.0.0/8"


def in_team_scope(row):
    user, _service, _pid, ip = row
    return user.startswith("ba") and ":" not in ip


@contextlib.contextmanager
def setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        accounts = stack.enter_context(env.Accounts())
        team = accounts.group("team")
        st.helper = accounts.user("help")
        st.member = accounts.user("memb", groups=[team.gr_name])
        st.team_gid = team.gr_gid
        st.dovecot = stack.enter_context(Dovecot(USERS))
        anvil = {"anvil": st.dovecot.anvil_path}
        st.open = stack.enter_context(Kickgated(anvil))
        st.ruled = stack.enter_context(Kickgated(anvil, rules={
            "helper": {"principals": f"user:{st.helper.pw_name}"},
            "team": {"principals": f"group:{team.gr_name}",
                     "users": TEAM_USERS, "networks": TEAM_NETWORKS},
        }))
        yield st


def as_user(kg, pw, *args, groups=None):
    return kg.run(*args, uid=pw.pw_uid, gid=pw.pw_gid, groups=groups)


def who_rows(res):
    check(res.code == 0, f"who -1: exit {res.code}, {res.err!r}")
    lines = res.out.splitlines()
    check(lines[:1] == ["username proto pid ip"], f"who -1 {res.out!r}")
    rows = set()
    for line in lines[1:]:
        user, service, pid, ip = line.split(" ")
        rows.add((user, service, int(pid), ip))
    return rows


def check_one_audit(kg, res, **want):
    lines = kg.audit_for(res.pid)
    check(len(lines) == 1, f"{len(lines)} audit lines for pid {res.pid}")
    for key, value in want.items():
        check(lines[0].get(key) == value,
              f"audit {key}={lines[0].get(key)!r}, expected {value!r}")


def case_user_without_rule_denied(st):
    with session_set(st.dovecot) as sessions:
        for args in (["who"], ["who", "-1", "foo"], ["kick", "foo"],
                     ["kick", "-n", "127.0.0.0/8"]):
            res = as_user(st.open, st.helper, *args)
            check((res.code, res.out, res.err) == (EXIT_NOPERM, "", NO_RULE),
                  f"{args}: exit {res.code}, {res.out!r}, {res.err!r}")
        check(not disconnected(sessions), "a session was disconnected")
    uid = f"uid={st.helper.pw_uid} "
    check(not [a for a in st.open.audit_lines() if uid in a],
          "a caller refused before its request was read was audited")
    check(f"refused a connection of uid {st.helper.pw_uid}: no rule names "
          "it" in st.open.log_text(), "the refusal was not logged")


def case_root_allowed_without_rules(st):
    with session_set(st.dovecot):
        res = st.open.run("who", "-1")
        check(who_rows(res) == st.dovecot.who(),
              f"who -1 as root: {res.out!r}")
        check_one_audit(st.open, res, uid="0", rule="root")


def case_user_named_by_rule_may_list(st):
    with session_set(st.dovecot):
        res = as_user(st.ruled, st.helper, "who", "-1")
        check(who_rows(res) == st.dovecot.who(),
              f"who -1 as {st.helper.pw_name}: {res.out!r}")
        check_one_audit(st.ruled, res, uid=str(st.helper.pw_uid),
                        rule="helper", outcome="listed")
        res = as_user(st.open, st.helper, "who", "-1")
        check(res.code == EXIT_NOPERM, "the rule leaked to another daemon")


def case_group_rule_limits_scope(st):
    with session_set(st.dovecot):
        res = as_user(st.ruled, st.member, "who", "-1",
                      groups=[st.team_gid])
        want = {row for row in st.dovecot.who() if in_team_scope(row)}
        check(want and who_rows(res) == want,
              f"who -1 as a team member: {res.out!r}, expected {want}")
        check_one_audit(st.ruled, res, rule="team")


def case_group_taken_from_the_kernel(st):
    """The member without its supplementary group is nobody special: the
    broker must not look the groups up in /etc/group."""
    res = as_user(st.ruled, st.member, "who")
    check((res.code, res.err) == (EXIT_NOPERM, NO_RULE),
          f"who without the group: exit {res.code}, {res.err!r}")


def case_group_rule_kicks_within_scope(st):
    with session_set(st.dovecot) as sessions:
        team = [st.team_gid]
        res = as_user(st.ruled, st.member, "kick", "-f", "bar", groups=team)
        check((res.code, res.err) == (EXIT_NOPERM, NO_FORCE),
              f"kick -f: exit {res.code}, {res.err!r}")
        # jane is outside the scope: invisible, so nothing matches.
        res = as_user(st.ruled, st.member, "kick", "jane", groups=team)
        check((res.code, res.out) == (EXIT_NO_MATCH, "no users kicked\n"),
              f"kick jane: exit {res.code}, {res.out!r}")
        res = as_user(st.ruled, st.member, "kick", "ba?", groups=team)
        check(res.code == 0 and res.out ==
              "kicked connections from the following users:\nbar baz\n",
              f"kick ba?: exit {res.code}, {res.out!r}, {res.err!r}")
        gone = [s for s in sessions if s.user in ("bar", "baz")]
        closed = disconnected(sessions, expect=gone)
        check(closed == set(gone), f"disconnected {sorted(map(repr, closed))}")
        check_one_audit(st.ruled, res, rule="team", outcome="kicked")


def case_root_allowed_beside_rules(st):
    """No rule names uid 0, so root still may do everything."""
    with session_set(st.dovecot):
        res = st.ruled.run("who", "-1")
        check(who_rows(res) == st.dovecot.who(), f"who -1: {res.out!r}")
        check_one_audit(st.ruled, res, uid="0", rule="root")


CASES = [
    ("user_without_rule_denied", case_user_without_rule_denied),
    ("root_allowed_without_rules", case_root_allowed_without_rules),
    ("user_named_by_rule_may_list", case_user_named_by_rule_may_list),
    ("group_rule_limits_what_is_listed", case_group_rule_limits_scope),
    ("group_membership_comes_from_the_kernel",
     case_group_taken_from_the_kernel),
    ("group_rule_kicks_only_within_scope_and_without_force",
     case_group_rule_kicks_within_scope),
    ("root_allowed_beside_rules", case_root_allowed_beside_rules),
]


if __name__ == "__main__":
    main((CASES, setup))
