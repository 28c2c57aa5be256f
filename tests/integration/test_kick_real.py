#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgate against a real Dovecot 2.3: kick disconnects exactly the
sessions it names, who lists exactly the live ones (as doveadm who -1 does),
and every request leaves exactly one audit line.

Each case logs in a fresh set of IMAP and POP3 sessions from several
loopback addresses and IPv6, runs kickgate as root through a kickgated
that has no rules (root may do everything), and then watches which
connections the server actually closed.
"""

import collections
import contextlib
import json
import sys
import time

from kgtest import env
from kgtest.daemon import Kickgated, parse_audit
from kgtest.dovecot import Dovecot
from kgtest.runner import Runner, check
from kgtest.scenarios import (KICK_SCENARIOS, STANDARD, USERS, disconnected,
                              pids_by_session, session_key, session_set,
                              who_settles_to)
from kgtest.sessions import ImapSession, Pop3Session

EXIT_NEED_FORCE = 1
EXIT_NO_MATCH = 68
KICKED_HEADER = "kicked connections from the following users:\n"
DRY_HEADER = "dry run: would kick connections from the following users:\n"
WARNING_TEXT = ("warning: other connections would also be kicked from "
                "following users:\n{users}\n"
                "Use the '-f' option to enforce the disconnect.\n")
# Settling time before counting audit lines: a duplicate line would be
# written right after the first.
AUDIT_SETTLE = 0.5
AUDIT_TIMEOUT = 10

# Shared imap process: these three IMAP sessions share one process, the
# POP3 session has its own.
SHARED = [
    (ImapSession, "foo", "127.0.0.2"),
    (ImapSession, "bar", "127.0.0.3"),
    (ImapSession, "baz", "127.0.0.2"),
    (Pop3Session, "foo", "127.0.0.4"),
]


class Setup:
    """A Dovecot and a kickgated reading its anvil."""

    def __init__(self, dovecot, kickgated, specs):
        self.dovecot = dovecot
        self.kg = kickgated
        self.specs = specs
        self.requests = []

    def run(self, *args):
        """kickgate ARGS as root; checks it left exactly one audit line
        and returns (result, that line parsed)."""
        res = self.kg.run(*args)
        self.requests.append(res.pid)
        lines = self.kg.audit_for(res.pid)
        check(len(lines) == 1, f"kickgate {' '.join(args)}: {len(lines)} "
                               f"audit lines for pid {res.pid}, expected 1")
        return res, lines[0]


def setup(specs, **dovecot_args):
    """A fixture for Runner.group; specs: the session set of the group."""
    @contextlib.contextmanager
    def fixture():
        with Dovecot(USERS, **dovecot_args) as dovecot, \
                Kickgated({"anvil": dovecot.anvil_path}) as kg:
            yield Setup(dovecot, kg, specs)
    return fixture


def check_closed(sessions, gone):
    """Exactly the sessions in gone were disconnected; the others still
    work, and doveadm who -1 lists exactly them."""
    closed = disconnected(sessions, expect=gone)
    check(closed == set(gone),
          f"disconnected {sorted(map(repr, closed))}, expected "
          f"{sorted(map(repr, gone))}")
    alive = [s for s in sessions if s not in gone]
    dead = [s for s in alive if not s.alive()]
    check(not dead, f"{dead!r} stopped working")
    return alive


def check_who_is(st, sessions):
    check(who_settles_to(st.dovecot, sessions),
          f"doveadm who -1 shows {sorted(st.dovecot.who())}, expected "
          f"{sorted(map(repr, sessions))}")


def counted(n, noun):
    """'1 connection', '2 connections', '1 process', '2 processes'."""
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun}es" if noun.endswith("s") else f"{n} {noun}s"


def users_line(users):
    return " ".join(sorted(users)) + "\n"


def check_audit(line, **want):
    for key, value in want.items():
        check(line.get(key) == value,
              f"audit {key}={line.get(key)!r}, expected {value!r}: {line}")


def audit_pids(line):
    return {int(p) for p in line["pids"].split(",") if p}


# Kicks ----------------------------------------------------------------

def kick_case(scenario):
    def case(st):
        with session_set(st.dovecot) as sessions:
            gone = [s for s in sessions if scenario.kicked(s)]
            pids = pids_by_session(st.dovecot)
            want_pids = {pids[session_key(s)] for s in gone}
            res, audit = st.run("kick", *scenario.args)
            if gone:
                check(res.code == 0, f"exit {res.code}: {res.err!r}")
                check(res.out == KICKED_HEADER + users_line(scenario.users),
                      f"output {res.out!r}")
                check_audit(audit, outcome="kicked", status="0",
                            conns=str(len(gone)),
                            users=",".join(sorted(scenario.users)))
            else:
                check(res.code == EXIT_NO_MATCH, f"exit {res.code}")
                check(res.out == "no users kicked\n", f"output {res.out!r}")
                check_audit(audit, outcome="no-match",
                            status=str(EXIT_NO_MATCH), conns="0")
            check(res.err == "", f"stderr {res.err!r}")
            check(audit_pids(audit) == want_pids,
                  f"audit pids {audit['pids']}, expected {want_pids}")
            check_who_is(st, check_closed(sessions, gone))

    return case


def case_kick_json(st):
    with session_set(st.dovecot) as sessions:
        gone = [s for s in sessions if s.user in ("bar", "baz")]
        pids = pids_by_session(st.dovecot)
        res, _audit = st.run("kick", "-j", "ba?")
        check(res.code == 0, f"exit {res.code}: {res.err!r}")
        doc = json.loads(res.out)
        want = {"status": 0, "dry_run": False, "kicked": ["bar", "baz"],
                "warning": [], "refused": [],
                "connections": 2, "processes": 2,
                "malformed_anvil_lines": 0, "error": None}
        got_pids = set(doc.pop("pids"))
        check(doc == want, f"JSON {doc}")
        check(got_pids == {pids[session_key(s)] for s in gone},
              f"JSON pids {got_pids}")
        check_closed(sessions, gone)


def case_dry_runs_report_plans(st):
    """kick -n reports, as text and JSON, what each scenario would kick,
    and disconnects nothing."""
    with session_set(st.dovecot) as sessions:
        pids = pids_by_session(st.dovecot)
        for sc in KICK_SCENARIOS:
            planned = [s for s in sessions if sc.kicked(s)]
            want_pids = {pids[session_key(s)] for s in planned}
            status = 0 if planned else EXIT_NO_MATCH
            res, audit = st.run("kick", "-n", *sc.args)
            if planned:
                want = (DRY_HEADER + users_line(sc.users) +
                        f"{counted(len(planned), 'connection')} in "
                        f"{counted(len(want_pids), 'process')}\n")
            else:
                want = "no users kicked\n"
            check(res.code == status and res.out == want,
                  f"kick -n {sc.args}: exit {res.code}, output {res.out!r}")
            check_audit(audit, dry_run="yes", status=str(status))
            res, _audit = st.run("kick", "-n", "-j", *sc.args)
            doc = json.loads(res.out)
            got = (res.code, doc["status"], doc["dry_run"], doc["kicked"],
                   set(doc["pids"]), doc["connections"])
            check(got == (status, status, True, sorted(sc.users), want_pids,
                          len(planned)),
                  f"kick -n -j {sc.args}: exit {res.code}, JSON {doc}")
        check_closed(sessions, [])


# Listings ---------------------------------------------------------------

def parse_who_separate(text):
    lines = text.splitlines()
    check(lines and lines[0] == "username proto pid ip",
          f"who -1 header: {text!r}")
    rows = set()
    for line in lines[1:]:
        fields = line.split(" ")
        check(len(fields) == 4, f"who -1 line {line!r}")
        rows.add((fields[0], fields[1], int(fields[2]), fields[3]))
    check(len(rows) == len(lines) - 1, f"who -1 repeats a line: {text!r}")
    return rows


def group_by_user(rows):
    """doveadm who -1 rows as kickgate who prints them: per user the
    connection count, services, pids and ips, each once, sorted here."""
    users = collections.defaultdict(lambda: [0, set(), set(), set()])
    for user, service, pid, ip in rows:
        entry = users[user]
        entry[0] += 1
        entry[1].add(service)
        entry[2].add(pid)
        entry[3].add(ip)
    return {u: (n, sorted(sv), sorted(p), sorted(i))
            for u, (n, sv, p, i) in users.items()}


def parse_who_grouped(text):
    lines = text.splitlines()
    check(lines and lines[0] == "username # proto (pids) (ips)",
          f"who header: {text!r}")
    users = {}
    for line in lines[1:]:
        head, _, rest = line.partition(" (")
        pids, _, ips = rest.partition(") (")
        check(ips.endswith(")"), f"who line {line!r}")
        user, count, *services = head.split(" ")
        check(user not in users, f"who lists {user} twice")
        users[user] = (int(count), sorted(services),
                       sorted(int(p) for p in pids.split(" ")),
                       sorted(ips[:-1].split(" ")))
    return users


def case_who(st):
    with session_set(st.dovecot, st.specs) as sessions:
        want = {session_key(s) for s in sessions}
        doveadm = st.dovecot.who()
        check({(u, sv, ip) for u, sv, _p, ip in doveadm} == want,
              f"doveadm who -1 {sorted(doveadm)}")

        res, audit = st.run("who", "-1")
        check(res.code == 0 and res.err == "",
              f"who -1: exit {res.code}, stderr {res.err!r}")
        check(parse_who_separate(res.out) == doveadm,
              f"who -1 {res.out!r}, doveadm who -1 {sorted(doveadm)}")
        check_audit(audit, op="who", separate="yes", outcome="listed",
                    conns=str(len(sessions)))

        res, _audit = st.run("who")
        check(res.code == 0, f"who: exit {res.code}")
        check(parse_who_grouped(res.out) == group_by_user(doveadm),
              f"who {res.out!r}, doveadm who -1 {sorted(doveadm)}")

        res, _audit = st.run("who", "-j")
        doc = json.loads(res.out)
        rows = {(r["user"], r["service"], r["pid"], r["ip"])
                for r in doc["sessions"]}
        check(res.code == 0 and doc["status"] == 0 and rows == doveadm,
              f"who -j: exit {res.code}, {doc}")

        res, _audit = st.run("who", "-1", "F*", "127.0.0.2")
        want_foo = {r for r in doveadm if r[0] == "foo" and
                    r[3] == "127.0.0.2"}
        check(res.code == 0 and parse_who_separate(res.out) == want_foo,
              f"who -1 F* 127.0.0.2: exit {res.code}, {res.out!r}")
        check_closed(sessions, [])


# Shared processes -------------------------------------------------------

def case_shared_needs_force(st):
    with session_set(st.dovecot, SHARED) as sessions:
        res, audit = st.run("kick", "bar")
        check(res.code == EXIT_NEED_FORCE, f"exit {res.code}: {res.err!r}")
        check(res.out == WARNING_TEXT.format(users="baz foo"),
              f"output {res.out!r}")
        check_audit(audit, outcome="need-force", status="1", pids="")
        res, _audit = st.run("kick", "-j", "bar")
        doc = json.loads(res.out)
        check((res.code, doc["status"], doc["warning"], doc["kicked"],
               doc["pids"]) == (1, 1, ["baz", "foo"], [], []),
              f"kick -j bar: exit {res.code}, JSON {doc}")
        check_closed(sessions, [])


def case_shared_force(st):
    with session_set(st.dovecot, SHARED) as sessions:
        pids = pids_by_session(st.dovecot)
        imap = [s for s in sessions if s.service == "imap"]
        shared = {pids[session_key(s)] for s in imap}
        check(len(shared) == 1, f"imap sessions in processes {shared}")
        res, audit = st.run("kick", "-f", "bar")
        check(res.code == 0, f"exit {res.code}: {res.err!r}")
        check(res.out == KICKED_HEADER + "bar baz foo\n",
              f"output {res.out!r}")
        check_audit(audit, force="yes", outcome="kicked", conns="3",
                    users="bar,baz,foo")
        check(audit_pids(audit) == shared, f"audit pids {audit['pids']}")
        check_who_is(st, check_closed(sessions, imap))


# Audit ------------------------------------------------------------------

def case_one_audit_line_per_request(st):
    """Over the whole group: as many audit lines as requests, one each."""
    env.wait_until(lambda: len(st.kg.audit_lines()) >= len(st.requests),
                   AUDIT_TIMEOUT)
    time.sleep(AUDIT_SETTLE)
    got = collections.Counter(parse_audit(line).get("pid")
                              for line in st.kg.audit_lines())
    want = collections.Counter(str(p) for p in st.requests)
    check(got == want, f"audit lines per client pid {dict(got)}, expected "
                       f"one for each of {len(st.requests)} requests")


PRIVATE_CASES = [(f"kick_{sc.name}", kick_case(sc)) for sc in KICK_SCENARIOS]
PRIVATE_CASES += [
    ("kick_json_reports_users_and_pids", case_kick_json),
    ("dry_runs_report_the_plan_and_disconnect_nothing",
     case_dry_runs_report_plans),
    ("who_agrees_with_doveadm_who", case_who),
    ("every_request_left_one_audit_line", case_one_audit_line_per_request),
]

SHARED_CASES = [
    ("shared_process_kick_needs_force", case_shared_needs_force),
    ("shared_process_force_drops_all_its_sessions", case_shared_force),
    ("shared_who_agrees_with_doveadm_who", case_who),
    ("shared_every_request_left_one_audit_line",
     case_one_audit_line_per_request),
]


def main():
    env.require_root_and_dovecot()
    runner = Runner()
    runner.group(PRIVATE_CASES, setup(STANDARD))
    runner.group(SHARED_CASES, setup(SHARED, shared_imap=True))
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
