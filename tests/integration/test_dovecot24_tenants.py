#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""One kickgated serving a Dovecot 2.3 and a Dovecot 2.4 at once, and
tenants scoped by Dovecot 2.4's alternative usernames.

The 2.3 instance (the host's Dovecot) is kickgated's default instance,
its protocol found out from the conversation; the 2.4 instance (from the
Debian 13 root, one shared imap process) is instance "d24", pinned to
protocol 2.4. Both Dovecots have the same user names logged in, so a
kick that reached the wrong instance would show. Instances are selected
with -a NAME. Reloads switch d24 to auto (the same listing) and pin each
instance to the other's protocol (a clear error, nothing kicked).

Tenants: Unix groups and users created for the test. Tenant A's
helpdesk has a rule with `fields = user_tenant=tenant-a.example` and no
user glob; tenant B's has the same for tenant-b.example together with
`users = b*`. In the shared process a tenant's user sits beside the
other tenant's: kicking it needs no -f and leaves the other connected.
On the 2.3 instance no connection carries fields, so a fields rule sees
and kicks nothing there.

The 2.4 instance restarts under the running kickgated (foreground to
detached); who and kick work on the new master.
"""

import collections
import contextlib
import sys
import types

from kgtest import env, replies24
from kgtest.daemon import Kickgated
from kgtest.dovecot import DETACHED, FOREGROUND, Dovecot, DovecotError
from kgtest.dovecot24 import TENANT_FIELD, Dovecot24, build_root
from kgtest.runner import Runner, check
from kgtest.scenarios import expect_closed, session_key, session_set
from kgtest.sessions import ImapSession, Pop3Session

A1 = "a1@tenant-a.example"
A2 = "a2@tenant-a.example"
B1 = "b1@tenant-b.example"
USERS = {A1: "a1-pw", A2: "a2-pw", B1: "b1-pw", "foo": "foo-pw"}
TENANT_A = "tenant-a.example"
TENANT_B = "tenant-b.example"

# The same sessions on both instances; on 2.4 the imap ones share one
# process, so a1 and b1 (and a2, foo) sit in it together.
SESSIONS = [
    (ImapSession, A1, "127.0.0.2"),
    (ImapSession, A2, "::1"),
    (ImapSession, B1, "127.0.0.2"),
    (ImapSession, "foo", "127.0.0.3"),
    (Pop3Session, A1, "127.0.0.3"),
]

EXIT_NO_MATCH = 68
Caller = collections.namedtuple("Caller", "name uid gid groups")


def fixture(root):
    return lambda: setup(root)


@contextlib.contextmanager
def setup(root):
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        acc = stack.enter_context(env.Accounts())
        g_a, g_b = acc.group("tenA"), acc.group("tenB")
        st.helper_a = caller(acc.user("hlpA", groups=[g_a.gr_name]), g_a)
        st.helper_b = caller(acc.user("hlpB", groups=[g_b.gr_name]), g_b)
        st.d23 = stack.enter_context(Dovecot(USERS))
        st.d24 = stack.enter_context(Dovecot24(USERS, shared_imap=True,
                                               mode=FOREGROUND, root=root))
        st.broker = {"anvil": st.d23.anvil_path}
        st.instances = {"d24": {"anvil": st.d24.anvil_path,
                                "protocol": "2.4"}}
        all_instances = ["default", "d24"]
        rules = {
            "tenant-a": {"principals": f"group:{g_a.gr_name}",
                         "fields": f"{TENANT_FIELD}={TENANT_A}",
                         "instances": all_instances},
            "tenant-b": {"principals": f"group:{g_b.gr_name}",
                         "users": "b*",
                         "fields": f"{TENANT_FIELD}={TENANT_B}",
                         "instances": all_instances},
        }
        st.kg = stack.enter_context(Kickgated(st.broker, st.instances,
                                              rules))
        yield st


def caller(pw, group):
    return Caller(pw.pw_name, pw.pw_uid, pw.pw_gid, [group.gr_gid])


def run(st, by, *args):
    """kickgate ARGS as caller by (root when None); (result, audit)."""
    if by is None:
        return st.kg.run_audited(*args)
    return st.kg.run_audited(*args, uid=by.uid, gid=by.gid,
                             groups=by.groups)


@contextlib.contextmanager
def both_sets(st):
    """The same sessions on both instances: (2.3 ones, 2.4 ones)."""
    with session_set(st.d23, SESSIONS) as s23, \
            session_set(st.d24, SESSIONS) as s24:
        yield s23, s24


def expect_both_closed(s23, s24, gone23, gone24):
    expect_closed(s23 + s24, list(gone23) + list(gone24))


# Two protocols, one kickgated --------------------------------------------

def case_who_per_instance(st):
    """who -1 -a NAME lists that instance's sessions as its doveadm does:
    the 2.3 columns for the default instance, 2.4's for d24."""
    with both_sets(st) as (s23, s24):
        res, audit = run(st, None, "who", "-1")
        check(res.code == 0 and replies24.who1_23(res.out) == st.d23.who(),
              f"who -1 (2.3): {res.code} {res.out!r}, doveadm "
              f"{sorted(st.d23.who())}")
        res, audit = run(st, None, "who", "-1", "-a", "d24")
        check(audit.get("instance") == "d24", f"audit {audit}")
        replies24.check_who1_like_doveadm(res, st.d24)
        expect_both_closed(s23, s24, [], [])


def case_kick_reaches_the_named_instance(st):
    """kick -a d24 foo ends foo on 2.4 only (counted); kick foo on the
    default instance then ends the 2.3 one."""
    with both_sets(st) as (s23, s24):
        foo24 = [s for s in s24 if s.user == "foo"]
        res, audit = run(st, None, "kick", "-a", "d24", "foo")
        replies24.check_kicked(res, audit, {"foo"}, 1)
        expect_both_closed(s23, s24, [], foo24)
        s24 = [s for s in s24 if s not in foo24]
        foo23 = [s for s in s23 if s.user == "foo"]
        res, audit = run(st, None, "kick", "foo")
        check(res.code == 0 and res.out == replies24.KICKED_HEADER +
              "foo\n", f"kick foo on 2.3: {res.code} {res.out!r}")
        expect_both_closed(s23, s24, foo23, [])


def reload_with(st, broker_protocol, d24_protocol):
    broker = dict(st.broker, protocol=broker_protocol)
    instances = {"d24": dict(st.instances["d24"], protocol=d24_protocol)}
    st.kg.reconfigure(broker=broker, instances=instances)
    check(st.kg.reload(), f"reload refused: {st.kg.log_text()[-1000:]}")


def case_auto_and_pinned_agree(st):
    """d24 pinned to 2.4 and left to auto list the same; each Dovecot
    pinned to the other's protocol is an error (69) that says which
    protocol the setting names, and nothing is kicked."""
    with both_sets(st) as (s23, s24):
        pinned = run(st, None, "who", "-1", "-a", "d24")[0]
        try:
            reload_with(st, "auto", "auto")
            auto = run(st, None, "who", "-1", "-a", "d24")[0]
            check(auto == pinned, f"who -1: auto {auto}, pinned {pinned}")
            reload_with(st, "2.4", "2.3")
            for args, proto in ((["foo"], "2 (Dovecot 2.4)"),
                                (["-a", "d24", "foo"], "1 (Dovecot 2.3)")):
                res, audit = run(st, None, "kick", *args)
                want = (f"kickgate: anvil does not speak protocol {proto}, "
                        "which the instance's protocol setting names\n")
                check((res.code, res.out, res.err) == (69, "", want) and
                      audit.get("outcome") == "error",
                      f"kick {args} mispinned: {res.code} {res.out!r} "
                      f"{res.err!r} {audit}")
        finally:
            reload_with(st, "auto", "2.4")
        expect_both_closed(s23, s24, [], [])


# Tenants by field ----------------------------------------------------------

def case_tenant_sees_own_field_only(st):
    with both_sets(st) as (s23, s24):
        res, audit = run(st, st.helper_a, "who", "-1", "-a", "d24")
        users = replies24.who1_users(res)
        check(res.code == 0 and users == {A1, A2},
              f"tenant A's who -1: {res.code} {res.out!r} {res.err!r}")
        check(audit.get("rule") == "tenant-a" and audit.get("conns") == "3",
              f"audit {audit}")
        res, _audit = run(st, st.helper_b, "who", "-1", "-a", "d24")
        check(replies24.who1_users(res) == {B1},
              f"tenant B's who -1: {res.out!r}")
        expect_both_closed(s23, s24, [], [])


def case_tenant_kicks_own_user_beside_other_tenant(st):
    """a1 and b1 share the imap process (from the same address): tenant
    A's kick of a1 needs no -f, takes a1's imap and POP3 sessions, and
    b1 stays."""
    with both_sets(st) as (s23, s24):
        pid = {session_key(s): p for s, p in
               replies24.session_pids(st.d24, s24).items()}
        check(pid[(A1, "imap", "127.0.0.2")] == pid[(B1, "imap", "127.0.0.2")],
              f"a1 and b1 in different processes: {pid}")
        gone = [s for s in s24 if s.user == A1]
        res, audit = run(st, st.helper_a, "kick", "-a", "d24", A1)
        replies24.check_kicked(res, audit, {A1}, 2)
        expect_both_closed(s23, s24, [], gone)


def case_tenant_glob_star_takes_own_tenant(st):
    with both_sets(st) as (s23, s24):
        gone = [s for s in s24 if s.user in (A1, A2)]
        res, audit = run(st, st.helper_a, "kick", "-a", "d24", "*")
        replies24.check_kicked(res, audit, {A1, A2}, 3)
        expect_both_closed(s23, s24, [], gone)


def case_other_tenant_looks_like_nobody(st):
    with both_sets(st) as (s23, s24):
        got = {}
        for name in (B1, "nobody@tenant-b.example"):
            res, _audit = run(st, st.helper_a, "kick", "-a", "d24", name)
            got[name] = (res.code, res.out, res.err)
        check(got[B1] == (EXIT_NO_MATCH, "no users kicked\n", "") and
              len(set(got.values())) == 1, f"kick b1 as tenant A: {got}")
        res, _audit = run(st, st.helper_a, "kick", "-a", "d24", "--field",
                          f"{TENANT_FIELD}={TENANT_B}")
        check(res.code == EXIT_NO_MATCH,
              f"kick --field tenant B as tenant A: {res.code} {res.out!r}")
        expect_both_closed(s23, s24, [], [])


def case_users_and_fields_together(st):
    """Tenant B's rule also says users = b*: b1 is both, so it may be
    kicked; on 2.3, where b1 has no fields, it may not."""
    with both_sets(st) as (s23, s24):
        res, _audit = run(st, st.helper_b, "kick", B1)
        check(res.code == EXIT_NO_MATCH,
              f"kick b1 on 2.3 as tenant B: {res.code} {res.out!r}")
        gone = [s for s in s24 if s.user == B1]
        res, audit = run(st, st.helper_b, "kick", "-a", "d24", B1)
        replies24.check_kicked(res, audit, {B1}, 1)
        expect_both_closed(s23, s24, [], gone)


def case_fields_rule_sees_nothing_on_23(st):
    with both_sets(st) as (s23, s24):
        res, audit = run(st, st.helper_a, "who")
        check(res.code == 0 and audit.get("conns") == "0" and
              replies24.who_users(res) == set(),
              f"who on 2.3 as tenant A: {res.code} {res.out!r}")
        res, _audit = run(st, st.helper_a, "kick", "*")
        check(res.code == EXIT_NO_MATCH,
              f"kick * on 2.3 as tenant A: {res.code} {res.out!r}")
        expect_both_closed(s23, s24, [], [])


def case_restart_24_under_kickgated(st):
    before = st.d24.master_pid()
    daemon = st.kg.pids()
    st.d24.restart(mode=DETACHED, how="doveadm")
    check(st.d24.master_pid() not in (None, before) and
          st.kg.pids() == daemon,
          f"master {before} -> {st.d24.master_pid()}, kickgated "
          f"{daemon} -> {st.kg.pids()}")
    case_who_per_instance(st)
    case_tenant_kicks_own_user_beside_other_tenant(st)


CASES = [
    ("who_lists_each_instance_as_its_doveadm", case_who_per_instance),
    ("kick_reaches_the_named_instance_only",
     case_kick_reaches_the_named_instance),
    ("auto_and_pinned_2.4_agree", case_auto_and_pinned_agree),
    ("tenant_sees_its_field_only", case_tenant_sees_own_field_only),
    ("tenant_kicks_own_user_beside_other_tenant",
     case_tenant_kicks_own_user_beside_other_tenant),
    ("tenant_glob_star_takes_own_tenant_only",
     case_tenant_glob_star_takes_own_tenant),
    ("other_tenant_looks_like_nobody", case_other_tenant_looks_like_nobody),
    ("users_and_fields_together", case_users_and_fields_together),
    ("fields_rule_sees_nothing_on_2.3", case_fields_rule_sees_nothing_on_23),
    ("restart_2.4_detached_under_kickgated",
     case_restart_24_under_kickgated),
]

def main():
    env.require_root_and_dovecot()
    try:
        root = build_root()
    except DovecotError as err:
        env.skip_or_fail(f"no Debian 13 root with Dovecot 2.4: {err}")
    runner = Runner()
    runner.group(CASES, fixture(root))
    sys.exit(runner.finish())


if __name__ == "__main__":
    main()
