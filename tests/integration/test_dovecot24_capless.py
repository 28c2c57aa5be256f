#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A broker with no capability and no root: every instance is a real
Dovecot 2.4 pinned to `protocol = 2.4`, so anvil does every kick and the
broker signals nothing.

Both Dovecots (one with a process per session, started in the
foreground; one shared imap process, started detached) give a group
made for this test their anvil socket (`service anvil { unix_listener
anvil { group = G mode = 0660 } }`, as Dovecot 2.4.1 needs); the broker
runs as broker_user, a test account in G. Its /proc status must show
uid and gid not 0 and CapPrm, CapEff and CapBnd (and CapInh, CapAmb)
all 0, and it must still list and kick real sessions on both. A second
daemon whose default instance is left to `protocol = auto` (it might be
a 2.3 that needs a signal) keeps CAP_KILL, and only that.
"""

import contextlib
import os
import sys
import types

from kgtest import confinement, env, replies24
from kgtest.daemon import Kickgated
from kgtest.dovecot import DETACHED, FOREGROUND, DovecotError
from kgtest.dovecot24 import Dovecot24, build_root
from kgtest.runner import Runner, check
from kgtest.scenarios import expect_closed, session_set
from kgtest.sessions import ImapSession, Pop3Session

USERS = {"foo": "foo-pw", "bar": "bar-pw", "baz": "baz-pw"}
SESSIONS = [
    (ImapSession, "foo", "127.0.0.2"),
    (ImapSession, "bar", "127.0.0.3"),
    (ImapSession, "baz", "::1"),
    (Pop3Session, "foo", "127.0.0.3"),
]
CAP_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def fixture(root):
    @contextlib.contextmanager
    def make():
        with contextlib.ExitStack() as stack:
            st = types.SimpleNamespace()
            acc = stack.enter_context(env.Accounts())
            st.group = acc.group("anvil")
            st.user = acc.user("brk", groups=[st.group.gr_name])
            st.single = stack.enter_context(Dovecot24(
                USERS, mode=FOREGROUND, root=root,
                anvil_group=st.group.gr_name))
            st.shared = stack.enter_context(Dovecot24(
                USERS, shared_imap=True, mode=DETACHED, root=root,
                anvil_group=st.group.gr_name))
            st.broker = {"anvil": st.single.anvil_path, "protocol": "2.4",
                         "broker_user": st.user.pw_name}
            st.kg = stack.enter_context(Kickgated(
                st.broker, {"shared": {"anvil": st.shared.anvil_path,
                                       "protocol": "2.4"}}))
            yield st
    return make


def case_anvil_socket_is_the_groups(st):
    for dovecot in (st.single, st.shared):
        info = os.stat(dovecot.anvil_path)
        check((info.st_uid, info.st_gid, info.st_mode & 0o777) ==
              (0, st.group.gr_gid, 0o660),
              f"{dovecot.anvil_path}: uid {info.st_uid} gid {info.st_gid} "
              f"mode {info.st_mode & 0o777:o}")


def case_broker_has_no_capability(st):
    pid = st.kg.pids()["broker"]
    confinement.wait_filtered([pid])
    fields = confinement.status(pid)
    ids = {key: fields[key].split() for key in ("Uid", "Gid")}
    check(ids == {"Uid": [str(st.user.pw_uid)] * 4,
                  "Gid": [str(st.user.pw_gid)] * 4} and st.user.pw_uid != 0,
          f"broker ids {ids}, expected {st.user.pw_name}'s")
    check(str(st.group.gr_gid) in fields.get("Groups", "").split(),
          f"broker groups {fields.get('Groups')!r} lack the anvil group")
    caps = {name: int(fields[name], 16) for name in CAP_SETS}
    check(not any(caps.values()), f"broker capabilities {caps}")
    check(fields.get("NoNewPrivs") == "1" and
          fields.get("Seccomp") == confinement.SECCOMP_MODE_FILTER,
          f"broker NoNewPrivs {fields.get('NoNewPrivs')}, Seccomp "
          f"{fields.get('Seccomp')}")


def case_who_on_both(st):
    with session_set(st.single, SESSIONS) as s1, \
            session_set(st.shared, SESSIONS) as s2:
        res, _audit = st.kg.run_audited("who", "-1")
        replies24.check_who1_like_doveadm(res, st.single)
        res, _audit = st.kg.run_audited("who", "-1", "-a", "shared")
        replies24.check_who1_like_doveadm(res, st.shared)
        expect_closed(s1 + s2, [])


def case_kicks_on_both(st):
    """Kicks through anvil: single processes (a SIGTERM by anvil, root,
    to a mail process of another uid) and the shared one, where bar goes
    and foo and baz stay."""
    with session_set(st.single, SESSIONS) as s1, \
            session_set(st.shared, SESSIONS) as s2:
        gone = [s for s in s1 if s.user == "foo"]
        res, audit = st.kg.run_audited("kick", "foo")
        replies24.check_kicked(res, audit, {"foo"}, 2)
        gone += [s for s in s2 if s.user == "bar"]
        res, audit = st.kg.run_audited("kick", "-a", "shared", "bar")
        replies24.check_kicked(res, audit, {"bar"}, 1)
        expect_closed(s1 + s2, gone)


def case_restarted_dovecot_under_capless_broker(st):
    before = st.kg.pids()
    st.single.restart(mode=DETACHED, how="signal")
    check(st.kg.pids() == before, f"kickgated {before} -> {st.kg.pids()}")
    case_kicks_on_both(st)


def case_auto_instance_keeps_cap_kill(st):
    """The same daemon with the default instance left to auto: the
    broker may meet a 2.3 anvil and have to signal, so it keeps CAP_KILL
    (alone)."""
    broker = dict(st.broker, protocol="auto")
    with Kickgated(broker) as kg:
        pid = kg.pids()["broker"]
        confinement.wait_filtered([pid])
        problems = confinement.check_broker(
            pid, st.user.pw_uid, st.user.pw_gid,
            os.getgrouplist(st.user.pw_name, st.user.pw_gid))
        check(not problems, "; ".join(problems))


CASES = [
    ("anvil_sockets_belong_to_the_test_group",
     case_anvil_socket_is_the_groups),
    ("broker_runs_without_root_and_capabilities",
     case_broker_has_no_capability),
    ("who_lists_real_sessions_on_both", case_who_on_both),
    ("kick_ends_real_sessions_on_both", case_kicks_on_both),
    ("restarted_dovecot_kicked_by_the_same_broker",
     case_restarted_dovecot_under_capless_broker),
    ("an_auto_instance_keeps_cap_kill_alone",
     case_auto_instance_keeps_cap_kill),
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
