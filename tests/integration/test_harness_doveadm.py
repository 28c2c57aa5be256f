#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the integration harness against Dovecot's own doveadm.

A private Dovecot runs real IMAP and POP3 sessions from several loopback
addresses; doveadm who must list exactly them and doveadm kick must close
exactly the ones it names. kickgate's integration tests build on the same
harness, so this shows the harness observes the real server correctly.

doveadm 2.3 writes the user names and its header line through two
differently buffered streams. On a terminal the header comes first
("kicked connections from the following users:\nbar baz \n"); on a pipe,
as here, the names come first ("bar baz kicked connections from the
following users:\n\n"). The patterns below match the pipe form.

The kick cases are the scenarios that test_side_by_side compares kickgate
against (kgtest.scenarios), so their expectations are checked here against
doveadm itself.
"""

import collections
import re

from kgtest.dovecot import Dovecot
from kgtest.runner import check, main
from kgtest.scenarios import (KICK_SCENARIOS, USERS, session_key, session_set,
                              who_keys, who_settles_to)
from kgtest.sessions import ImapSession

KICKED_RE = re.compile(
    r"((?:[^ \n]+ )*)kicked connections from the following users:\n\n")
NEED_FORCE_RE = re.compile(
    r"((?:[^ \n]+ )*)warning: other connections would also be kicked "
    r"from following users:\n\nUse the '-f' option to enforce the "
    r"disconnect\.\n")
NO_USERS_KICKED = "no users kicked\n"
EXIT_NO_MATCH = 68
CLOSE_TIMEOUT = 5


def session_keys(sessions):
    return collections.Counter(session_key(s) for s in sessions)


def check_who_equals(dovecot, sessions):
    check(who_settles_to(dovecot, sessions),
          f"doveadm who -1 shows {dict(who_keys(dovecot))}, "
          f"expected {dict(session_keys(sessions))}")


def kicked_names(res, pattern):
    m = pattern.fullmatch(res.stdout)
    check(m is not None, f"unexpected doveadm kick output {res.stdout!r} "
                         f"(stderr {res.stderr!r})")
    return set(m.group(1).split())


def check_only_closed(sessions, closed):
    """The sessions in closed were disconnected, all others still work."""
    for s in sessions:
        if s in closed:
            check(s.wait_closed(CLOSE_TIMEOUT), f"{s!r} still connected")
    for s in sessions:
        if s not in closed:
            check(s.alive(), f"{s!r} disconnected, but was not to be kicked")


def kick_case(scenario):
    """A case: doveadm kick with scenario.args, on the standard sessions,
    closes those for which scenario.kicked(session) holds and reports
    exactly the user names scenario.users; where there are none, it exits
    68 with "no users kicked"."""

    def case(dovecot):
        with session_set(dovecot) as sessions:
            res = dovecot.doveadm("kick", *scenario.args)
            if scenario.users:
                check(res.returncode == 0, f"exit {res.returncode}")
                check(kicked_names(res, KICKED_RE) == scenario.users,
                      f"reported {res.stdout!r}, expected users "
                      f"{sorted(scenario.users)}")
            else:
                check(res.returncode == EXIT_NO_MATCH,
                      f"exit {res.returncode}")
                check(res.stdout == NO_USERS_KICKED,
                      f"output {res.stdout!r}")
            gone = [s for s in sessions if scenario.kicked(s)]
            check_only_closed(sessions, gone)
            check_who_equals(dovecot,
                             [s for s in sessions if s not in gone])

    return case


def case_only_loopback_listeners(dovecot):
    res = dovecot.doveadm("config", "-h", "listen")
    check(res.stdout.strip() == "127.0.0.1, ::1",
          f"listen = {res.stdout.strip()!r}")
    res = dovecot.doveadm("config", "-a")
    ports = {int(p) for p in re.findall(r"^ *port = (\d+)$", res.stdout,
                                        re.MULTILINE)}
    check(ports - {0} == {dovecot.imap_port, dovecot.pop3_port},
          f"inet listener ports {sorted(ports)}")


def case_who_lists_every_session(dovecot):
    with session_set(dovecot) as sessions:
        check_who_equals(dovecot, sessions)
        pids = {pid for _u, _s, pid, _ip in dovecot.who()}
        check(len(pids) == len(sessions),
              f"{len(pids)} processes for {len(sessions)} sessions")
        anvil = collections.Counter()
        for (service, ip, user), _pid, refcount in dovecot.anvil_dump():
            anvil[(user, service, ip)] += refcount
        check(anvil == session_keys(sessions),
              f"anvil dump {dict(anvil)} differs from the sessions")
        check(all(s.alive() for s in sessions), "a session stopped working")


def case_shared_process(dovecot):
    specs = [(ImapSession, "foo", "127.0.0.2"),
             (ImapSession, "bar", "127.0.0.3")]
    with session_set(dovecot, specs) as sessions:
        check_who_equals(dovecot, sessions)
        pids = {pid for _u, _s, pid, _ip in dovecot.who()}
        check(len(pids) == 1, f"pids {sorted(pids)}: expected one process")

        res = dovecot.doveadm("kick", "foo")
        # doveadm 2.3 exits 0 even though it kicked nothing.
        check(res.returncode == 0, f"exit {res.returncode}")
        check(kicked_names(res, NEED_FORCE_RE) == {"bar"},
              f"warning lists {res.stdout!r}, expected bar")
        check_only_closed(sessions, [])

        res = dovecot.doveadm("kick", "-f", "foo")
        check(kicked_names(res, KICKED_RE) == {"foo", "bar"},
              f"forced kick reported {res.stdout!r}")
        check_only_closed(sessions, sessions)
        check_who_equals(dovecot, [])


PRIVATE_CASES = [
    ("only_loopback_imap_pop3_listeners", case_only_loopback_listeners),
    ("who_lists_every_session", case_who_lists_every_session),
] + [(f"kick_{sc.name}", kick_case(sc)) for sc in KICK_SCENARIOS]

SHARED_CASES = [
    ("shared_process_needs_force_and_force_kicks_both",
     case_shared_process),
]


if __name__ == "__main__":
    main((PRIVATE_CASES, lambda: Dovecot(USERS)),
         (SHARED_CASES, lambda: Dovecot(USERS, shared_imap=True)))
