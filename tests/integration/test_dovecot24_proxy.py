#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kick -h: sessions a Dovecot 2.4 proxy sends on to a backend.

A backend Dovecot 2.4 serves every user; a proxy Dovecot 2.4 in front of
it proxies foo and bar (passdb extra fields proxy=y host=127.0.0.1
port=BACKEND) and serves baz itself. The proxy's anvil lists foo's and
bar's sessions under imap-login with dest_ip 127.0.0.1, in one login
process that serves every client (Dovecot 2.4.1 kicks proxied sessions
only there). kickgated reads the proxy as its default instance.

-h is a right of its own: a helpdesk rule without `by_dest` is denied
(77) and nothing goes; with `by_dest = yes` kick -h 127.0.0.1 takes
exactly the proxied sessions, and baz's session, served by the proxy
itself, stays. A second proxy whose login processes serve one client
each shows what kickgate's second look is for: anvil answers that it
kicked, doveadm says so, but the sessions stay, and kickgate exits 75
naming their users.
"""

import collections
import contextlib
import sys
import time
import types

from kgtest import env, replies24
from kgtest.daemon import Kickgated
from kgtest.dovecot import DovecotError
from kgtest.dovecot24 import PROXY_HOST, Dovecot24, build_root
from kgtest.runner import Runner, check
from kgtest.scenarios import expect_closed, session_set
from kgtest.sessions import ImapSession

USERS = {"foo": "foo-pw", "bar": "bar-pw", "baz": "baz-pw"}
PROXIED = {"foo", "bar"}
SESSIONS = [
    (ImapSession, "foo", "127.0.0.2"),
    (ImapSession, "foo", "127.0.0.3"),
    (ImapSession, "bar", "::1"),
    (ImapSession, "baz", "127.0.0.2"),
]
EXIT_NO_MATCH = 68
EXIT_NOPERM = 77
NO_BY_DEST = ("kickgate: permission denied: rule 'plain' does not allow "
              "kicking by destination (-h)\n")
# How long kickgated looks for kicked connections to go (the default is
# 2000 ms): the lone proxy's never do.
KICK_CONFIRM_MS = 1000
Caller = collections.namedtuple("Caller", "name uid gid groups")


def fixture(root):
    @contextlib.contextmanager
    def make():
        with contextlib.ExitStack() as stack:
            st = types.SimpleNamespace()
            acc = stack.enter_context(env.Accounts())
            g_plain, g_dest = acc.group("hd"), acc.group("hdh")
            st.plain = caller(acc.user("hd", groups=[g_plain.gr_name]),
                              g_plain)
            st.by_dest = caller(acc.user("hdh", groups=[g_dest.gr_name]),
                                g_dest)
            st.backend = stack.enter_context(Dovecot24(USERS, root=root))
            st.proxy = stack.enter_context(Dovecot24(
                USERS, root=root, proxy_to=st.backend, proxied=PROXIED,
                shared_login=True))
            st.lone = stack.enter_context(Dovecot24(
                USERS, root=root, proxy_to=st.backend, proxied=PROXIED))
            rules = {
                "plain": {"principals": f"group:{g_plain.gr_name}",
                          "users": "*", "instances": "default lone"},
                "by-dest": {"principals": f"group:{g_dest.gr_name}",
                            "users": "*", "by_dest": True, "force": True,
                            "instances": "default lone"},
            }
            st.kg = stack.enter_context(Kickgated(
                {"anvil": st.proxy.anvil_path,
                 "kick_confirm_ms": KICK_CONFIRM_MS},
                {"lone": st.lone.anvil_path}, rules))
            yield st
    return make


def caller(pw, group):
    return Caller(pw.pw_name, pw.pw_uid, pw.pw_gid, [group.gr_gid])


def run(st, by, *args):
    if by is None:
        return st.kg.run_audited(*args)
    return st.kg.run_audited(*args, uid=by.uid, gid=by.gid,
                             groups=by.groups)


def case_proxy_rows_carry_dest(st):
    """doveadm who -1 on the proxy: foo and bar under imap-login with
    dest_ip 127.0.0.1, in one process; baz under imap without."""
    with session_set(st.proxy, SESSIONS) as sessions:
        rows = st.proxy.who_rows()
        got = {(r["username"], r["service"], r["ip"], r["dest_ip"])
               for r in rows}
        want = {(s.user, "imap-login" if s.user in PROXIED else "imap",
                 s.src, PROXY_HOST if s.user in PROXIED else "")
                for s in sessions}
        check(got == want, f"doveadm who -1 {got}, expected {want}")
        logins = {r["pid"] for r in rows if r["service"] == "imap-login"}
        check(len(logins) == 1, f"login processes {logins}")
        expect_closed(sessions, [])


def case_who_shows_dest_like_doveadm(st):
    with session_set(st.proxy, SESSIONS) as sessions:
        res, _audit = run(st, None, "who", "-1")
        replies24.check_who1_like_doveadm(res, st.proxy)
        res, _audit = run(st, None, "who", "-j")
        dests = {(r["user"], r["ip"]): r["dest_ip"]
                 for r in replies24.who_json_rows(res)}
        want = {(s.user, s.src): PROXY_HOST if s.user in PROXIED else None
                for s in sessions}
        check(dests == want, f"who -j dest_ip {dests}, expected {want}")
        expect_closed(sessions, [])


def case_h_denied_without_by_dest(st):
    with session_set(st.proxy, SESSIONS) as sessions:
        for args in (["-h", PROXY_HOST], ["-n", "-h", PROXY_HOST],
                     ["-h", PROXY_HOST, "foo"]):
            res, audit = run(st, st.plain, "kick", *args)
            check((res.code, res.out, res.err) ==
                  (EXIT_NOPERM, "", NO_BY_DEST) and
                  audit.get("outcome") == "denied",
                  f"kick {args} without by_dest: {res.code} {res.out!r} "
                  f"{res.err!r} {audit}")
        # The same caller may kick by user name.
        gone = [s for s in sessions if s.user == "baz"]
        res, audit = run(st, st.plain, "kick", "baz")
        replies24.check_kicked(res, audit, {"baz"}, 1)
        expect_closed(sessions, gone)


def case_h_takes_exactly_the_proxied(st):
    with session_set(st.proxy, SESSIONS) as sessions:
        gone = [s for s in sessions if s.user in PROXIED]
        res, audit = run(st, st.by_dest, "kick", "-h", PROXY_HOST)
        replies24.check_kicked(res, audit, PROXIED, len(gone))
        expect_closed(sessions, gone)


def case_h_elsewhere_matches_nothing(st):
    with session_set(st.proxy, SESSIONS) as sessions:
        res, _audit = run(st, st.by_dest, "kick", "-h", "127.0.0.9")
        check((res.code, res.out) == (EXIT_NO_MATCH, "no users kicked\n"),
              f"kick -h 127.0.0.9: {res.code} {res.out!r} {res.err!r}")
        expect_closed(sessions, [])


def case_h_with_user(st):
    with session_set(st.proxy, SESSIONS) as sessions:
        gone = [s for s in sessions if s.user == "bar"]
        res, audit = run(st, st.by_dest, "kick", "-h", PROXY_HOST, "bar")
        replies24.check_kicked(res, audit, {"bar"}, 1)
        expect_closed(sessions, gone)


def case_h_with_part_of_a_user_needs_force(st):
    """foo's two proxied sessions share the login process: -h with
    127.0.0.2/32 selects one, which anvil cannot kick alone. Without -f
    nothing goes; with -f both of foo's go, and bar, in the same
    process, stays."""
    with session_set(st.proxy, SESSIONS) as sessions:
        args = ["-h", PROXY_HOST, "foo", "127.0.0.2/32"]
        res, audit = run(st, st.by_dest, "kick", *args)
        replies24.check_need_force(res, audit, {"foo"})
        expect_closed(sessions, [])
        gone = [s for s in sessions if s.user == "foo"]
        res, audit = run(st, st.by_dest, "kick", "-f", *args)
        replies24.check_kicked(res, audit, {"foo"}, 2)
        expect_closed(sessions, gone)


def case_lone_login_kick_does_not_end_sessions(st):
    """Login processes of one client each: anvil SIGTERMs them and counts
    them kicked (doveadm says 2), but the proxied sessions stay; kickgate
    looks again for kick_confirm_ms, then exits 75 naming foo."""
    specs = [(ImapSession, "foo", "127.0.0.2"),
             (ImapSession, "foo", "127.0.0.3"),
             (ImapSession, "baz", "::1")]
    with session_set(st.lone, specs) as sessions:
        check(st.lone.kick("-h", PROXY_HOST, "foo") == 2,
              "doveadm kick -h foo on lone login processes")
        expect_closed(sessions, [])
        start = time.monotonic()
        res, audit = run(st, st.by_dest, "kick", "-a", "lone", "-h",
                         PROXY_HOST, "foo")
        took = time.monotonic() - start
        replies24.check_remained(res, audit, {"foo"})
        check(took >= KICK_CONFIRM_MS / 1000,
              f"kickgate gave up after {took:.2f} s")
        expect_closed(sessions, [])


CASES = [
    ("doveadm_lists_proxied_sessions_with_dest_ip",
     case_proxy_rows_carry_dest),
    ("who_shows_dest_ip_like_doveadm", case_who_shows_dest_like_doveadm),
    ("kick_h_denied_without_by_dest", case_h_denied_without_by_dest),
    ("kick_h_takes_exactly_the_proxied_sessions",
     case_h_takes_exactly_the_proxied),
    ("kick_h_elsewhere_matches_nothing", case_h_elsewhere_matches_nothing),
    ("kick_h_with_a_user", case_h_with_user),
    ("kick_h_with_part_of_a_user_needs_force",
     case_h_with_part_of_a_user_needs_force),
    ("lone_login_processes_keep_sessions_kickgate_says_75",
     case_lone_login_kick_does_not_end_sessions),
]


def main():
    env.require_root()
    try:
        root = build_root()
    except DovecotError as err:
        env.skip_or_fail(f"no Debian 13 root with Dovecot 2.4: {err}")
    runner = Runner()
    runner.group(CASES, fixture(root))
    sys.exit(runner.finish())


if __name__ == "__main__":
    main()
