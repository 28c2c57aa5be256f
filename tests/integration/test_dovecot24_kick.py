#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgate against a real Dovecot 2.4 (anvil protocol 2), checked from the
client side: which IMAP and POP3 sessions really went.

One Dovecot 2.4 from the Debian 13 root serves sessions from 127.0.0.2,
127.0.0.3, 127.0.0.4 and ::1, in two groups: single processes
(client_limit 1, started in the foreground) and one shared imap process
(client_limit 10, restart_request_count unlimited, process_limit 1,
started detached). kickgated, as root without rules, reads it as its
default instance, whose protocol it finds out from anvil's greeting.

On 2.4 anvil kicks (KICK-USER user guid), per user per process; kickgate
dumps again and reports what went. Its results are set against doveadm
2.4's own on the same instance: doveadm reports "0 connections kicked"
where a shared process kicked, and a network-restricted kick in a shared
process takes the user's other sessions in that process too. kickgate
refuses such a kick without -f (exit 1, naming the user) and, with -f,
reports the true count. Other users in a shared process are no
collateral: anvil ends only the named user's connections.

Each group also restarts Dovecot under the running kickgated, which
keeps its broker and follows the new master.
"""

import contextlib
import json
import sys
import types

from kgtest import env, replies24
from kgtest.daemon import Kickgated
from kgtest.dovecot import DETACHED, FOREGROUND, DovecotError
from kgtest.dovecot24 import TENANT_FIELD, Dovecot24, build_root
from kgtest.runner import Runner, check
from kgtest.scenarios import (KICK_SCENARIOS, STANDARD, USERS, Scenario,
                              expect_closed, pids_by_session,
                              session_key, session_set, who_settles_to)
from kgtest.sessions import ImapSession, Pop3Session

ALICE = "alice@tenant-a.example"
BOB = "bob@tenant-b.example"
ALL_USERS = {**USERS, ALICE: "alice-pw", BOB: "bob-pw"}
TENANT_A = "tenant-a.example"
FIELD_A = f"{TENANT_FIELD}={TENANT_A}"

EXIT_NEED_FORCE = 1

# The standard set, and two tenants' users at addresses no standard
# scenario selects (so those scenarios' outcomes stay as they are).
SINGLE = STANDARD + [
    (ImapSession, ALICE, "127.0.0.3"),
    (Pop3Session, ALICE, "127.0.0.2"),
    (ImapSession, BOB, "127.0.0.2"),
]

FIELD_SCENARIOS = [
    Scenario("field_tenant_a", ["--field", FIELD_A],
             lambda s: s.user == ALICE, {ALICE}),
    Scenario("field_tenant_a_from_127.0.0.2",
             ["--field", FIELD_A, "127.0.0.2/32"],
             lambda s: s.user == ALICE and s.src == "127.0.0.2", {ALICE}),
    Scenario("field_tenant_a_and_glob_a*", ["--field", FIELD_A, "a*"],
             lambda s: s.user == ALICE, {ALICE}),
    Scenario("field_tenant_a_and_glob_b*", ["--field", FIELD_A, "b*"],
             lambda s: False, set()),
    Scenario("field_of_nobody", ["--field", f"{TENANT_FIELD}=nowhere"],
             lambda s: False, set()),
]

# Five imap sessions in one process (foo twice, bar, alice, bob), and a
# POP3 session of foo in a process of its own.
SHARED = [
    (ImapSession, "foo", "127.0.0.2"),
    (ImapSession, "foo", "127.0.0.3"),
    (ImapSession, "bar", "::1"),
    (ImapSession, ALICE, "127.0.0.2"),
    (ImapSession, BOB, "127.0.0.3"),
    (Pop3Session, "foo", "127.0.0.4"),
]

# kick ARGS on the SHARED set: none of them selects part of a user's
# connections in the shared process, so none needs -f.
SHARED_SCENARIOS = [
    Scenario("glob_ba?", ["ba?"], lambda s: s.user == "bar", {"bar"}),
    Scenario("network_::1", ["::1"], lambda s: s.src == "::1", {"bar"}),
    Scenario("network_127.0.0.0/24_of_bob", ["bob*", "127.0.0.0/24"],
             lambda s: s.user == BOB, {BOB}),
    Scenario("foo_pop3_from_127.0.0.4", ["foo", "127.0.0.4/32"],
             lambda s: s.user == "foo" and s.src == "127.0.0.4", {"foo"}),
    Scenario("foo_everywhere", ["foo"], lambda s: s.user == "foo", {"foo"}),
    Scenario("field_tenant_a", ["--field", FIELD_A],
             lambda s: s.user == ALICE, {ALICE}),
    Scenario("nobody", ["nobody"], lambda s: False, set()),
]


def fixture(root, specs, scenarios, mode, shared):
    @contextlib.contextmanager
    def make():
        with Dovecot24(ALL_USERS, shared_imap=shared, mode=mode,
                       root=root) as dovecot, \
                Kickgated({"anvil": dovecot.anvil_path}) as kg:
            yield types.SimpleNamespace(dovecot=dovecot, kg=kg, specs=specs,
                                        scenarios=scenarios)
    return make


def check_who_is(st, sessions):
    check(who_settles_to(st.dovecot, sessions),
          f"doveadm who -1 shows {sorted(st.dovecot.who())}, expected "
          f"{sorted(map(repr, sessions))}")


# Kicks ------------------------------------------------------------------

def kick_case(scenario):
    """kick ARGS disconnects exactly the scenario's sessions, reports
    their number as kicked and the users, and one audit line says so."""
    def case(st):
        with session_set(st.dovecot, st.specs) as sessions:
            gone = [s for s in sessions if scenario.kicked(s)]
            pids = pids_by_session(st.dovecot)
            res, audit = st.kg.run_audited("kick", *scenario.args)
            if gone:
                replies24.check_kicked(res, audit, scenario.users,
                                       len(gone),
                                       {pids[session_key(s)] for s in gone})
            else:
                replies24.check_no_match(res, audit)
            check_who_is(st, expect_closed(sessions, gone))
    return case


def case_kick_json(st):
    """kick -j on the group's first scenario: the users, the count the
    new dump confirmed, nobody remaining."""
    sc = st.scenarios[0]
    with session_set(st.dovecot, st.specs) as sessions:
        gone = [s for s in sessions if sc.kicked(s)]
        res, _audit = st.kg.run_audited("kick", "-j", *sc.args)
        check(res.code == 0, f"exit {res.code}: {res.err!r}")
        doc = json.loads(res.out)
        check((doc["status"], doc["kicked"], doc["connections"],
               doc["confirmed"], doc["remained"]) ==
              (0, sorted(sc.users), len(gone), True, []), f"JSON {doc}")
        expect_closed(sessions, gone)


def case_dry_runs(st):
    """kick -n on every scenario reports its plan and disconnects
    nothing."""
    with session_set(st.dovecot, st.specs) as sessions:
        for sc in st.scenarios:
            planned = [s for s in sessions if sc.kicked(s)]
            res, audit = st.kg.run_audited("kick", "-n", *sc.args)
            replies24.check_dry_run(res, audit, sc.users, len(planned))
        expect_closed(sessions, [])


# doveadm 2.4, side by side ----------------------------------------------

def case_doveadm_says_0_where_kickgate_counts(st):
    """In the shared process doveadm kick bar disconnects bar and says
    "0 connections kicked"; kickgate kick on alice says 1, and alice is
    gone."""
    with session_set(st.dovecot, st.specs) as sessions:
        bar = [s for s in sessions if s.user == "bar"]
        alice = [s for s in sessions if s.user == ALICE]
        check(st.dovecot.kick("bar") == 0, "doveadm kick bar")
        expect_closed(sessions, bar)
        rest = [s for s in sessions if s not in bar]
        res, audit = st.kg.run_audited("kick", "alice*")
        replies24.check_kicked(res, audit, {ALICE}, 1, None)
        expect_closed(rest, alice)


def case_part_of_a_user_in_a_shared_process(st):
    """foo has sessions from 127.0.0.2 and 127.0.0.3 in the shared
    process: kick foo 127.0.0.2/32 would take both (anvil kicks per user
    per process), so kickgate refuses and names foo; nothing goes."""
    with session_set(st.dovecot, st.specs) as sessions:
        res, audit = st.kg.run_audited("kick", "foo", "127.0.0.2/32")
        replies24.check_need_force(res, audit, {"foo"})
        res, _audit = st.kg.run_audited("kick", "-j", "foo", "127.0.0.2/32")
        doc = json.loads(res.out)
        check((res.code, doc["status"], doc["warning"], doc["kicked"]) ==
              (EXIT_NEED_FORCE, EXIT_NEED_FORCE, ["foo"], []),
              f"kick -j: exit {res.code}, JSON {doc}")
        expect_closed(sessions, [])


def case_part_of_a_user_forced(st):
    """With -f both of foo's imap sessions go, and they are counted;
    everyone else, foo's POP3 session too, stays."""
    with session_set(st.dovecot, st.specs) as sessions:
        gone = [s for s in sessions
                if s.user == "foo" and s.service == "imap"]
        res, audit = st.kg.run_audited("kick", "-f", "foo", "127.0.0.2/32")
        replies24.check_kicked(res, audit, {"foo"}, 2, None)
        check_who_is(st, expect_closed(sessions, gone))


def case_doveadm_takes_the_extra_session(st):
    """doveadm kick foo 127.0.0.2/32 says 0 and silently takes foo's
    session from 127.0.0.3 as well (Dovecot 2.4.1's shared-process
    kick drops the connection's GUID)."""
    with session_set(st.dovecot, st.specs) as sessions:
        gone = [s for s in sessions
                if s.user == "foo" and s.service == "imap"]
        check(st.dovecot.kick("foo", "127.0.0.2/32") == 0,
              "doveadm kick foo 127.0.0.2/32")
        expect_closed(sessions, gone)


def case_doveadm_counts_single_processes(st):
    """With a process per session doveadm kick foo 127.0.0.2/32 counts 1
    and takes exactly that session, as kickgate does."""
    with session_set(st.dovecot, st.specs) as sessions:
        gone = [s for s in sessions
                if s.user == "foo" and s.src == "127.0.0.2"]
        check(st.dovecot.kick("foo", "127.0.0.2/32") == 1,
              "doveadm kick foo 127.0.0.2/32")
        expect_closed(sessions, gone)


# Listings ---------------------------------------------------------------

def case_who_agrees_with_doveadm(st):
    with session_set(st.dovecot, st.specs) as sessions:
        replies24.check_who_like_doveadm(st.kg, st.dovecot, len(sessions))
        expect_closed(sessions, [])


# Restarts ---------------------------------------------------------------

def restart_case(mode, how):
    """Dovecot stops and starts again (mode, how) under the running
    kickgated: same broker, a new master; who and kick work on it."""
    def case(st):
        before = st.dovecot.master_pid()
        daemon = st.kg.pids()
        st.dovecot.restart(mode=mode, how=how)
        check(st.dovecot.master_pid() not in (None, before),
              f"master {before} -> {st.dovecot.master_pid()}")
        check(st.kg.pids() == daemon,
              f"kickgated changed: {daemon} -> {st.kg.pids()}")
        case_who_agrees_with_doveadm(st)
        kick_case(st.scenarios[0])(st)
    return case


def cases(scenarios, mode, other):
    named = [(f"kick_{sc.name}", kick_case(sc)) for sc in scenarios]
    return named + [
        ("kick_json_counts_connections", case_kick_json),
        ("dry_runs_report_plans_and_disconnect_nothing", case_dry_runs),
        ("who_agrees_with_doveadm_who", case_who_agrees_with_doveadm),
        (f"restart_by_doveadm_stop_as_{mode}",
         restart_case(mode, "doveadm")),
        (f"restart_by_sigterm_as_{other}", restart_case(other, "signal")),
        ("after_restarts_who_agrees_with_doveadm_who",
         case_who_agrees_with_doveadm),
    ]


SINGLE_SCENARIOS = KICK_SCENARIOS + FIELD_SCENARIOS
SINGLE_CASES = [("doveadm_counts_single_processes",
                 case_doveadm_counts_single_processes)]
SINGLE_CASES += cases(SINGLE_SCENARIOS, FOREGROUND, DETACHED)

SHARED_CASES = [
    ("doveadm_says_0_where_kickgate_counts",
     case_doveadm_says_0_where_kickgate_counts),
    ("part_of_a_user_in_a_shared_process_needs_force",
     case_part_of_a_user_in_a_shared_process),
    ("part_of_a_user_forced_takes_the_user_only",
     case_part_of_a_user_forced),
    ("doveadm_takes_the_extra_session_silently",
     case_doveadm_takes_the_extra_session),
]
SHARED_CASES += cases(SHARED_SCENARIOS, DETACHED, FOREGROUND)


def main():
    env.require_root()
    try:
        root = build_root()
    except DovecotError as err:
        env.skip_or_fail(f"no Debian 13 root with Dovecot 2.4: {err}")
    runner = Runner()
    runner.group(SINGLE_CASES, fixture(root, SINGLE, SINGLE_SCENARIOS,
                                       FOREGROUND, False))
    runner.group(SHARED_CASES, fixture(root, SHARED, SHARED_SCENARIOS,
                                       DETACHED, True))
    sys.exit(runner.finish())


if __name__ == "__main__":
    main()
