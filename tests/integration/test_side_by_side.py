#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgate kick and doveadm kick, side by side on one real Dovecot 2.3.

For each scenario two identical fresh session sets are logged in, one
after the other: the first is kicked by `kickgate kick X`, the second by
`doveadm -c CONF kick X`. Both must disconnect the same sessions (by user,
service and source address), exit alike and name the same users. A table
of the comparison is printed at the end.

doveadm 2.3 writes its header and the user names through two differently
buffered streams; on a pipe, as here, the names come first.
"""

import contextlib
import re

from kgtest.daemon import Kickgated
from kgtest.dovecot import Dovecot
from kgtest.runner import check, main
from kgtest.scenarios import (KICK_SCENARIOS, USERS, disconnected,
                              session_key, session_set)

DOVEADM_KICKED_RE = re.compile(
    r"((?:[^ \n]+ )*)kicked connections from the following users:\n\n")
KICKGATE_KICKED_RE = re.compile(
    r"kicked connections from the following users:\n((?:[^ \n]+ )*[^ \n]+)"
    r"\n")
NO_USERS_KICKED = "no users kicked\n"


def reported_users(out, pattern):
    if out == NO_USERS_KICKED:
        return set()
    m = pattern.fullmatch(out)
    check(m is not None, f"unexpected kick output {out!r}")
    return set(m.group(1).split())


class Setup:
    def __init__(self, dovecot, kg):
        self.dovecot = dovecot
        self.kg = kg
        self.table = []


@contextlib.contextmanager
def setup():
    with Dovecot(USERS) as dovecot, \
            Kickgated({"anvil": dovecot.anvil_path}) as kg:
        yield Setup(dovecot, kg)


def kick_and_observe(st, scenario, kick):
    """Logs in a fresh session set, runs kick(); returns its exit code,
    the users it reported and the keys of the disconnected sessions.

    The scenario's expectation only sets how long each session is
    watched; any session that closes counts.
    """
    with session_set(st.dovecot) as sessions:
        code, users = kick()
        expect = [s for s in sessions if scenario.kicked(s)]
        gone = {session_key(s) for s in disconnected(sessions, expect)}
    return code, users, gone


def side_by_side_case(scenario):
    def case(st):
        def by_kickgate():
            res = st.kg.run("kick", *scenario.args)
            return res.code, reported_users(res.out, KICKGATE_KICKED_RE)

        def by_doveadm():
            res = st.dovecot.doveadm("kick", *scenario.args)
            return (res.returncode,
                    reported_users(res.stdout, DOVEADM_KICKED_RE))

        kg = kick_and_observe(st, scenario, by_kickgate)
        da = kick_and_observe(st, scenario, by_doveadm)
        st.table.append((" ".join(scenario.args), kg, da))
        check(kg[2] == da[2], f"kickgate disconnected {sorted(kg[2])}, "
                              f"doveadm {sorted(da[2])}")
        check(kg[0] == da[0], f"kickgate exit {kg[0]}, doveadm {da[0]}")
        check(kg[1] == da[1], f"kickgate reported {sorted(kg[1])}, "
                              f"doveadm {sorted(da[1])}")

    return case


def describe(gone):
    return ", ".join(f"{svc}:{user}@{src}"
                     for user, svc, src in sorted(gone)) or "-"


def case_print_table(st):
    rows = [("kick", "exits", "same", "disconnected (kickgate | doveadm)")]
    for args, kg, da in st.table:
        same = "yes" if kg == da else "NO"
        rows.append((args, f"{kg[0]}/{da[0]}", same,
                     f"{describe(kg[2])} | {describe(da[2])}"))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("     " + "  ".join(c.ljust(w) for c, w in zip(r, width)) +
              "  " + r[3], flush=True)
    check(len(st.table) == len(KICK_SCENARIOS),
          f"{len(st.table)} of {len(KICK_SCENARIOS)} scenarios compared")


CASES = [(f"same_as_doveadm_{sc.name}", side_by_side_case(sc))
         for sc in KICK_SCENARIOS]
CASES.append(("comparison_table", case_print_table))


if __name__ == "__main__":
    main((CASES, setup))
