# SPDX-License-Identifier: MIT
"""The session sets and kick scenarios that several integration tests share,
and how to observe which sessions a kick disconnected."""

import collections
import concurrent.futures
import contextlib

from kgtest.env import wait_until
from kgtest.runner import check
from kgtest.sessions import ImapSession, Pop3Session, open_sessions

USERS = {"foo": "foo-pw", "bar": "bar-pw", "baz": "baz-pw",
         "bart": "bart-pw", "jane": "jane-pw"}

# The session set of doveadm-kick(1)'s examples, plus POP3 and IPv6. Each
# session has its own process unless Dovecot shares imap processes.
STANDARD = [
    (ImapSession, "bar", "127.0.0.2"),
    (ImapSession, "baz", "127.0.0.3"),
    (ImapSession, "bart", "127.0.0.2"),
    (ImapSession, "jane", "::1"),
    (ImapSession, "foo", "127.0.0.2"),
    (ImapSession, "foo", "127.0.0.3"),
    (Pop3Session, "foo", "127.0.0.4"),
]

# A kicked process closes its connection as soon as it handles SIGTERM,
# which the kick sent before it returned. Sessions expected to close get
# the long wait; for the others the short one is the window in which a
# wrong kill would show.
CLOSE_WAIT = 5
STRAY_CLOSE_WAIT = 1.5
WHO_TIMEOUT = 10

Scenario = collections.namedtuple("Scenario", "name args kicked users")

# kick ARGS on the STANDARD set disconnects exactly the sessions for which
# kicked(session) holds, and reports the user names users.
KICK_SCENARIOS = [
    Scenario("glob_ba?", ["ba?"],
             lambda s: s.user in ("bar", "baz"), {"bar", "baz"}),
    Scenario("foo_from_127.0.0.2/32", ["foo", "127.0.0.2/32"],
             lambda s: s.user == "foo" and s.src == "127.0.0.2", {"foo"}),
    Scenario("everyone_from_127.0.0.4", ["127.0.0.4"],
             lambda s: s.src == "127.0.0.4", {"foo"}),
    Scenario("network_::1/128", ["::1/128"],
             lambda s: s.src == "::1", {"jane"}),
    Scenario("jane_from_::1", ["jane", "::1"],
             lambda s: s.user == "jane" and s.src == "::1", {"jane"}),
    Scenario("foo_imap_and_pop3", ["foo"],
             lambda s: s.user == "foo", {"foo"}),
    Scenario("nobody", ["nobody"], lambda s: False, set()),
]


def session_key(s):
    return (s.user, s.service, s.src)


@contextlib.contextmanager
def session_set(dovecot, specs=STANDARD):
    """Fresh sessions, logged in and registered; closed on leaving."""
    sessions = open_sessions(dovecot, specs)
    try:
        yield sessions
    finally:
        for s in sessions:
            s.close()


def disconnected(sessions, expect=()):
    """The sessions the server closed: those in expect are given
    CLOSE_WAIT seconds, the others STRAY_CLOSE_WAIT, all at once."""
    def closed(s):
        return s.wait_closed(CLOSE_WAIT if s in expect else STRAY_CLOSE_WAIT)

    if not sessions:
        return set()
    with concurrent.futures.ThreadPoolExecutor(len(sessions)) as pool:
        results = list(pool.map(closed, sessions))
    return {s for s, gone in zip(sessions, results) if gone}


def expect_closed(sessions, gone):
    """Checks that the server closed exactly the sessions in gone and
    that every other one still works; returns the others."""
    closed = disconnected(sessions, expect=gone)
    check(closed == set(gone),
          f"disconnected {sorted(map(repr, closed))}, expected "
          f"{sorted(map(repr, gone))}")
    alive = [s for s in sessions if s not in gone]
    dead = [s for s in alive if not s.alive()]
    check(not dead, f"{dead!r} stopped working")
    return alive


def pids_by_session(dovecot):
    """{(user, service, ip): pid} from doveadm who -1."""
    return {(user, service, ip): pid
            for user, service, pid, ip in dovecot.who()}


def who_keys(dovecot):
    return collections.Counter((user, service, ip)
                               for user, service, _pid, ip in dovecot.who())


def who_settles_to(dovecot, sessions):
    """True once doveadm who -1 lists exactly sessions (bounded)."""
    want = collections.Counter(session_key(s) for s in sessions)
    return bool(wait_until(lambda: who_keys(dovecot) == want, WHO_TIMEOUT))
