#!/usr/bin/env python3
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
"""

import collections
import re
import sys
import traceback

from kgtest import env
from kgtest.dovecot import Dovecot
from kgtest.sessions import ImapSession, Pop3Session, open_sessions

USERS = {"foo": "foo-pw", "bar": "bar-pw", "baz": "baz-pw",
         "bart": "bart-pw", "jane": "jane-pw"}

# The session set of doveadm-kick(1)'s examples, plus POP3 and IPv6.
STANDARD = [
    (ImapSession, "bar", "127.0.0.2"),
    (ImapSession, "baz", "127.0.0.3"),
    (ImapSession, "bart", "127.0.0.2"),
    (ImapSession, "jane", "::1"),
    (ImapSession, "foo", "127.0.0.2"),
    (ImapSession, "foo", "127.0.0.3"),
    (Pop3Session, "foo", "127.0.0.4"),
]

KICKED_RE = re.compile(
    r"((?:[^ \n]+ )*)kicked connections from the following users:\n\n")
NEED_FORCE_RE = re.compile(
    r"((?:[^ \n]+ )*)warning: other connections would also be kicked "
    r"from following users:\n\nUse the '-f' option to enforce the "
    r"disconnect\.\n")
NO_USERS_KICKED = "no users kicked\n"
EXIT_NO_MATCH = 68
CLOSE_TIMEOUT = 5
WHO_TIMEOUT = 10


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def session_keys(sessions):
    return collections.Counter((s.user, s.service, s.src) for s in sessions)


def who_keys(dovecot):
    return collections.Counter((user, service, ip)
                               for user, service, _pid, ip in dovecot.who())


def check_who_equals(dovecot, sessions):
    want = session_keys(sessions)
    ok = env.wait_until(lambda: who_keys(dovecot) == want, WHO_TIMEOUT)
    check(ok, f"doveadm who -1 shows {dict(who_keys(dovecot))}, "
              f"expected {dict(want)}")


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


class StandardSessions:
    """The STANDARD sessions, closed again on leaving the with block."""

    def __init__(self, dovecot):
        self.dovecot = dovecot
        self.sessions = []

    def __enter__(self):
        self.sessions = open_sessions(self.dovecot, STANDARD)
        return self.sessions

    def __exit__(self, *exc):
        for s in self.sessions:
            s.close()


def kick_case(args, kicked, users):
    """A case: doveadm kick ARGS closes the sessions for which
    kicked(session) holds, and reports exactly the user names users."""

    def case(dovecot):
        with StandardSessions(dovecot) as sessions:
            res = dovecot.doveadm("kick", *args)
            check(res.returncode == 0, f"exit {res.returncode}")
            check(kicked_names(res, KICKED_RE) == users,
                  f"reported {res.stdout!r}, expected users {sorted(users)}")
            gone = [s for s in sessions if kicked(s)]
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
    with StandardSessions(dovecot) as sessions:
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


def case_kick_no_match(dovecot):
    with StandardSessions(dovecot) as sessions:
        res = dovecot.doveadm("kick", "nobody")
        check(res.returncode == EXIT_NO_MATCH, f"exit {res.returncode}")
        check(res.stdout == NO_USERS_KICKED, f"output {res.stdout!r}")
        check_only_closed(sessions, [])


def case_shared_process(dovecot):
    specs = [(ImapSession, "foo", "127.0.0.2"),
             (ImapSession, "bar", "127.0.0.3")]
    sessions = open_sessions(dovecot, specs)
    try:
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
    finally:
        for s in sessions:
            s.close()


def is_bar_or_baz(s):
    return s.user in ("bar", "baz")


def is_foo_from_2(s):
    return s.user == "foo" and s.src == "127.0.0.2"


def is_from_4(s):
    return s.src == "127.0.0.4"


def is_ipv6(s):
    return s.src == "::1"


PRIVATE_CASES = [
    ("only_loopback_imap_pop3_listeners", case_only_loopback_listeners),
    ("who_lists_every_session", case_who_lists_every_session),
    ("kick_glob_closes_only_bar_and_baz",
     kick_case(["ba?"], is_bar_or_baz, {"bar", "baz"})),
    ("kick_user_and_host_closes_only_foo_from_127_0_0_2",
     kick_case(["foo", "127.0.0.2/32"], is_foo_from_2, {"foo"})),
    ("kick_ipv4_host_closes_the_pop3_session",
     kick_case(["127.0.0.4"], is_from_4, {"foo"})),
    ("kick_ipv6_network_closes_only_jane",
     kick_case(["::1/128"], is_ipv6, {"jane"})),
    ("kick_without_match_reports_no_users", case_kick_no_match),
]

SHARED_CASES = [
    ("shared_process_needs_force_and_force_kicks_both",
     case_shared_process),
]


class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, func, *args):
        try:
            func(*args)
        except CheckFailed as err:
            self.fail(name, str(err))
        except Exception:  # a broken case must not stop the others
            self.fail(name, traceback.format_exc().rstrip())
        else:
            self.passed += 1
            print(f"ok   {name}", flush=True)

    def fail(self, name, reason):
        self.failed += 1
        print(f"FAIL {name}: {reason}", flush=True)

    def group(self, cases, **dovecot_args):
        """Runs cases against one Dovecot; a failed start fails them all."""
        dovecot = Dovecot(USERS, **dovecot_args)
        try:
            dovecot.start()
        except Exception:
            reason = traceback.format_exc().rstrip()
            for name, _func in cases:
                self.fail(name, f"no Dovecot: {reason}")
            return
        try:
            for name, func in cases:
                self.run(name, func, dovecot)
        finally:
            dovecot.stop()


def main():
    env.require_root_and_dovecot()
    runner = Runner()
    runner.group(PRIVATE_CASES)
    runner.group(SHARED_CASES, shared_imap=True)
    print(f"{runner.passed} passed, {runner.failed} failed", flush=True)
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(main())
