#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The delegation policy end to end: Unix users and groups created for the
test, a real Dovecot 2.3 with two tenants' users logged in over IMAP, and
kickgated deciding who may see and kick whom. Every request must leave
exactly one complete audit line, on stderr or through syslog.

Tenant A's users are a1 and a2, tenant B's is b1. The callers are system
users in created groups; kickgate runs as them through setpriv, so the
broker learns who they are from the kernel alone. The first rule whose
principals match the caller and whose instances include the requested
one decides (kickgated.conf(5), EVALUATION).

The syslog cases start kickgated in a private mount namespace whose /dev
is the host's /dev under an overlay: there /dev/log is a datagram socket
of this test (bind-mounted), or absent. The host's /dev is never written.
"""

import collections
import contextlib
import ctypes
import datetime
import grp
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import types

from kgtest import confinement, env
from kgtest.daemon import Kickgated, parse_audit
from kgtest.dovecot import Dovecot
from kgtest.fakeanvil import FakeAnvil
from kgtest.runner import check, main
from kgtest.scenarios import (disconnected, pids_by_session, session_key,
                              session_set)
from kgtest.sessions import ImapSession

A1 = "a1@tenant-a.example"
A2 = "a2@tenant-a.example"
B1 = "b1@tenant-b.example"
NOBODY_B = "nobody@tenant-b.example"
USERS = {A1: "a1-pw", A2: "a2-pw", B1: "b1-pw"}
TENANT_A = "*@tenant-a.example"
TENANT_B = "*@tenant-b.example"

# Each session its own imap process. b1 shares a1's address, so only the
# user scope tells them apart.
TENANTS = [(ImapSession, A1, "127.0.0.2"), (ImapSession, A2, "127.0.0.3"),
           (ImapSession, B1, "127.0.0.2")]
# One imap process for both; b1's address is its own.
SHARED = [(ImapSession, A1, "127.0.0.2"), (ImapSession, B1, "127.0.0.3")]
B1_SHARED_ADDR = "127.0.0.3"

EXIT_NO_MATCH = 68
EXIT_NOPERM = 77
KICKED_HEADER = "kicked connections from the following users:\n"
NO_USERS_KICKED = "no users kicked\n"
NO_RULE = ("kickgate: permission denied: no rule allows this caller on this "
           "instance\n")
# No rule names the caller at all: the supervisor answers before any
# request is read, and there is no request to audit.
NO_RULE_AT_ALL = "kickgate: permission denied: no rule allows this caller\n"
NO_FORCE = "kickgate: permission denied: -f is not allowed\n"
NO_WHO = "kickgate: permission denied: listing sessions is not allowed\n"
MAX_SESSIONS = 1
OVER_LIMIT = ("kickgate: refused: the kick would disconnect {n} connections; "
              f"the rule allows at most {MAX_SESSIONS}\n")

# Fields every audit line carries (kickgated(8), AUDIT).
AUDIT_FIELDS = ("time", "uid", "user", "pid", "rule", "instance", "op",
                "outcome", "status", "conns", "npids", "nusers", "pids",
                "users")
AUDIT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# How far an audit time may lie from this test's clock.
AUDIT_CLOCK_SLACK = 300
AUDIT_WAIT = 5

# syslog: LOG_AUTHPRIV (10 << 3) | LOG_NOTICE (5).
LOG_AUTHPRIV = 10
LOG_NOTICE = 5
SYSLOG_RE = re.compile(r"^<(\d+)>([A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d) "
                       r"kickgated\[(\d+)\]: audit: (.*)$", re.DOTALL)
DATAGRAM_MAX = 65536
DEV_LOG = "/dev/log"

# Mount namespace plumbing (linux/sched.h, linux/mount.h).
CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
_libc = ctypes.CDLL(None, use_errno=True)


# Callers and audited requests -------------------------------------------

Caller = collections.namedtuple("Caller", "name uid gid groups")
ROOT = Caller("root", 0, 0, None)


def caller(pw, groups=()):
    """A caller from a pwd entry and the grp entries it is a member of."""
    return Caller(pw.pw_name, pw.pw_uid, pw.pw_gid,
                  [g.gr_gid for g in groups])


class Audited:
    """A kickgated and its audit lines: each request is checked to leave
    one complete line naming its caller; check_ledger() later checks that
    no further line turned up."""

    def __init__(self, kg, lines=None):
        self.kg = kg
        self._lines = lines or kg.audit_lines
        self.requests = []

    def lines_for(self, pid):
        def found():
            return [a for a in map(parse_audit, self._lines())
                    if a.get("pid") == str(pid)]
        env.wait_until(found, AUDIT_WAIT)
        return found()

    def run(self, by, *args, **want):
        """kickgate ARGS as caller by; returns (result, audit line). The
        line must carry every field, the caller's uid and name, the client
        pid, the exit status, and the values in want."""
        if by.uid == 0:
            res = self.kg.run(*args)
        else:
            res = self.kg.run(*args, uid=by.uid, gid=by.gid,
                              groups=by.groups)
        self.requests.append(res.pid)
        lines = self.lines_for(res.pid)
        what = f"kickgate {' '.join(args)} as {by.name}"
        check(len(lines) == 1, f"{what}: {len(lines)} audit lines")
        line = lines[0]
        missing = [k for k in AUDIT_FIELDS if k not in line]
        check(not missing, f"{what}: audit lacks {missing}: {line}")
        check_audit_time(line["time"])
        want = {"uid": str(by.uid), "user": by.name,
                "status": str(res.code), **want}
        for key, value in want.items():
            check(line.get(key) == value,
                  f"{what}: audit {key}={line.get(key)!r}, expected "
                  f"{value!r}: {line}")
        return res, line

    def refused(self, by, *args):
        """kickgate ARGS as caller by, whom no rule names: refused before
        its request is read, with no audit line."""
        res = self.kg.run(*args, uid=by.uid, gid=by.gid, groups=by.groups)
        what = f"kickgate {' '.join(args)} as {by.name}"
        check((res.code, res.out, res.err) ==
              (EXIT_NOPERM, "", NO_RULE_AT_ALL),
              f"{what}: exit {res.code}: {res.out!r} {res.err!r}")
        check(not [a for a in map(parse_audit, self._lines())
                   if a.get("pid") == str(res.pid)],
              f"{what}: audited, though no request was read")
        return res

    def check_ledger(self):
        pids = collections.Counter(a.get("pid") for a in
                                   map(parse_audit, self._lines()))
        want = collections.Counter(str(p) for p in self.requests)
        check(pids == want, f"audit lines by client pid {dict(pids)}, "
                            f"expected one for each of {dict(want)}")


def check_audit_time(text):
    when = datetime.datetime.strptime(text, AUDIT_TIME_FORMAT)
    age = abs(time.time() - when.replace(
        tzinfo=datetime.timezone.utc).timestamp())
    check(age < AUDIT_CLOCK_SLACK, f"audit time {text} is {age:.0f}s off")


def audit_pids(line):
    return {int(p) for p in line["pids"].split(",") if p}


def audit_users(line):
    return set(filter(None, line["users"].split(",")))


# Reading kickgate's output ----------------------------------------------

def who_users(res):
    """User names of kickgate who (one line per user, after a header)."""
    lines = res.out.splitlines()
    check(lines[:1] == ["username # proto (pids) (ips)"],
          f"who header: {res.out!r}")
    return sorted(line.split(" ")[0] for line in lines[1:])


def who1_rows(res):
    lines = res.out.splitlines()
    check(lines[:1] == ["username proto pid ip"], f"who -1: {res.out!r}")
    return {tuple(line.split(" ")) for line in lines[1:]}


def who_json_users(res):
    doc = json.loads(res.out)
    check(doc["status"] == 0 and doc["error"] is None, f"who -j: {doc}")
    return sorted(s["user"] for s in doc["sessions"])


def mentions(res, text):
    """True when text appears in stdout or stderr, not as part of a longer
    number (a pid inside another pid does not count)."""
    pattern = r"(?<![0-9])" + re.escape(text) + r"(?![0-9])"
    return any(re.search(pattern, s) for s in (res.out, res.err))


def check_disconnected(sessions, gone):
    closed = disconnected(sessions, expect=gone)
    check(closed == set(gone), f"disconnected {sorted(map(repr, closed))}, "
                               f"expected {sorted(map(repr, gone))}")


def session_pids(dovecot, sessions):
    pids = pids_by_session(dovecot)
    return {s: pids[session_key(s)] for s in sessions}


# The tenants' world -----------------------------------------------------

@contextlib.contextmanager
def setup():
    """Accounts, a Dovecot with both tenants, a fake anvil as a second
    instance, and two kickgated: `kg` without a rule naming uid 0 and
    `kg_root` with one."""
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        acc = stack.enter_context(env.Accounts())
        st.accounts = acc
        g_help = acc.group("hdA")
        g_first = acc.group("first")
        g_late = acc.group("late")

        def member(purpose, *groups):
            pw = acc.user(purpose, groups=[g.gr_name for g in groups])
            return caller(pw, groups)

        st.helper = member("help", g_help)
        st.both_first = member("bfst", g_first, g_help)
        st.both_late = member("blat", g_help, g_late)
        st.limited = member("lim")
        st.nowho = member("nowho")
        st.net = member("net")
        st.stranger = member("strg")
        st.dovecot = stack.enter_context(Dovecot(USERS))
        st.tmp = tempfile.mkdtemp(prefix="kgp", dir="/tmp")
        stack.callback(shutil.rmtree, st.tmp, ignore_errors=True)
        os.chmod(st.tmp, 0o755)
        st.fake = FakeAnvil(st.tmp, "fake", "imap/127.0.0.2/x1@tenant-a."
                            f"example\t{os.getpid()}\t1\n\n")
        stack.callback(st.fake.stop)
        broker = {"anvil": st.dovecot.anvil_path}
        instances = {"fake": st.fake.path}
        st.kg = Audited(stack.enter_context(Kickgated(
            broker, instances, rules={
                "first": {"principals": f"group:{g_first.gr_name}",
                          "users": A2},
                "helpdesk-a": {"principals": f"group:{g_help.gr_name}",
                               "users": TENANT_A},
                "late": {"principals": f"group:{g_late.gr_name}",
                         "users": B1},
                "limited": {"principals": f"user:{st.limited.name}",
                            "users": TENANT_A,
                            "max_sessions": MAX_SESSIONS},
                "nowho": {"principals": f"user:{st.nowho.name}",
                          "users": TENANT_A, "who": False},
                "net": {"principals": f"user:{st.net.name}",
                        "networks": "127.0.0.2/32"},
            })))
        st.kg_root = Audited(stack.enter_context(Kickgated(
            broker, instances, rules={
                "root-b": {"principals": "uid:0", "users": TENANT_B},
                "helpdesk-a": {"principals": f"group:{g_help.gr_name}",
                               "users": TENANT_A,
                               "instances": ["default", "fake"]},
            })))
        yield st


def case_who_lists_own_tenant_only(st):
    with session_set(st.dovecot, TENANTS) as sessions:
        b1 = next(s for s in sessions if s.user == B1)
        b1_pid = str(session_pids(st.dovecot, [b1])[b1])
        for args, users in ((["who"], who_users),
                            (["who", "-j"], who_json_users)):
            res, _ = st.kg.run(st.helper, *args, rule="helpdesk-a",
                               instance="default", op="who",
                               outcome="listed", conns="2")
            check(res.code == 0 and res.err == "",
                  f"{args}: exit {res.code}, {res.err!r}")
            check(users(res) == [A1, A2], f"{args}: {res.out!r}")
            check(not mentions(res, B1) and not mentions(res, b1_pid),
                  f"{args} shows b1: {res.out!r}")
        res, _ = st.kg.run(st.helper, "who", "-1", separate="yes",
                           outcome="listed")
        check({row[0] for row in who1_rows(res)} == {A1, A2},
              f"who -1: {res.out!r}")


def case_audit_names_outlive_account_changes(st):
    """Creating an account replaces /etc/passwd. Callers that existed when
    kickgated started keep their names in the audit; an account created
    later is named by uid, with user=-."""
    st.kg.run(st.helper, "who", rule="helpdesk-a")
    helpdesk = grp.getgrgid(st.helper.groups[0])
    later = caller(st.accounts.user("late", groups=[helpdesk.gr_name]),
                   [helpdesk])
    st.kg.run(st.helper, "who", rule="helpdesk-a")
    res, _ = st.kg.run(later, "who", user="-", rule="helpdesk-a",
                       outcome="listed")
    check(res.code == 0, f"who as {later.name}: exit {res.code}, "
                         f"{res.err!r}")
    st.kg.run(ROOT, "who", rule="root")


def case_kick_all_spares_other_tenant(st):
    with session_set(st.dovecot, TENANTS) as sessions:
        gone = [s for s in sessions if s.user != B1]
        pids = set(session_pids(st.dovecot, gone).values())
        res, audit = st.kg.run(st.helper, "kick", "*", rule="helpdesk-a",
                               op="kick", glob="*", outcome="kicked",
                               conns="2", npids="2", nusers="2")
        check((res.code, res.out, res.err) ==
              (0, KICKED_HEADER + f"{A1} {A2}\n", ""),
              f"exit {res.code}: {res.out!r} {res.err!r}")
        check(audit_pids(audit) == pids and
              audit_users(audit) == {A1, A2}, f"audit {audit}")
        check_disconnected(sessions, gone)
        b1 = next(s for s in sessions if s.user == B1)
        check(b1.alive(), "b1 stopped working")


def case_other_tenant_looks_like_nobody(st):
    """Kicking or listing b1 answers byte for byte what a name that
    exists nowhere gets."""
    with session_set(st.dovecot, TENANTS) as sessions:
        for extra in ([], ["-j"]):
            for op in ("kick", "who"):
                outcome = "no-match" if op == "kick" else "listed"
                got = {}
                for name in (B1, NOBODY_B):
                    res, _ = st.kg.run(st.helper, op, *extra, name,
                                       glob=name, outcome=outcome,
                                       conns="0")
                    got[name] = (res.code, res.out, res.err)
                check(got[B1] == got[NOBODY_B],
                      f"{op} {extra}: b1 gets {got[B1]}, nobody gets "
                      f"{got[NOBODY_B]}")
                if op == "kick" and not extra:
                    check(got[B1] == (EXIT_NO_MATCH, NO_USERS_KICKED, ""),
                          f"kick b1: {got[B1]}")
        check_disconnected(sessions, [])


def case_force_needs_force_yes(st):
    with session_set(st.dovecot, TENANTS) as sessions:
        res, _ = st.kg.run(st.helper, "kick", "-f", "A1@Tenant-A.example",
                           rule="helpdesk-a", glob=A1, force="yes",
                           outcome="denied")
        check((res.code, res.out, res.err) == (EXIT_NOPERM, "", NO_FORCE),
              f"exit {res.code}: {res.out!r} {res.err!r}")
        check_disconnected(sessions, [])


def case_max_sessions_refuses_larger_kicks(st):
    with session_set(st.dovecot, TENANTS) as sessions:
        for extra in ([], ["-n"]):
            res, audit = st.kg.run(st.limited, "kick", *extra, "*",
                                   rule="limited", outcome="over-limit",
                                   conns="2", pids="", users="")
            check((res.code, res.out, res.err) ==
                  (EXIT_NOPERM, "", OVER_LIMIT.format(n=2)),
                  f"kick {extra} '*': exit {res.code}: {res.out!r} "
                  f"{res.err!r}")
            check(audit.get("dry_run") == ("yes" if extra else None),
                  f"audit {audit}")
        res, _ = st.kg.run(st.limited, "kick", "-n", "-j", "*",
                           outcome="over-limit")
        doc = json.loads(res.out)
        check((doc["status"], doc["connections"], doc["pids"],
               doc["kicked"]) == (EXIT_NOPERM, 2, [], []),
              f"kick -n -j: {doc}")
        check_disconnected(sessions, [])
        # Within the limit the rule does allow a kick.
        a1 = next(s for s in sessions if s.user == A1)
        res, _ = st.kg.run(st.limited, "kick", A1, outcome="kicked",
                           conns="1", users=A1)
        check(res.code == 0, f"kick a1: exit {res.code}, {res.err!r}")
        check_disconnected(sessions, [a1])


def case_instance_outside_rule_never_asked(st):
    path = st.fake.path
    before = st.fake.connections()
    for args in (["who", "-a", path], ["kick", "-a", path, A1]):
        res, _ = st.kg.run(st.helper, *args, rule="-", instance="fake",
                           anvil=path, outcome="denied")
        check((res.code, res.out, res.err) == (EXIT_NOPERM, "", NO_RULE),
              f"{args}: exit {res.code}: {res.out!r} {res.err!r}")
    check(st.fake.connections() == before,
          f"the fake anvil got {st.fake.connections() - before} "
          "connections")
    # The same path is reachable where a rule lists the instance.
    res, _ = st.kg_root.run(st.helper, "who", "-a", path, rule="helpdesk-a",
                            instance="fake", outcome="listed")
    check(res.code == 0 and st.fake.connections() == before + 1,
          f"who -a through a rule listing it: exit {res.code}, "
          f"{st.fake.connections()} connections")


def case_who_no_denies_listing_only(st):
    with session_set(st.dovecot, TENANTS) as sessions:
        res, _ = st.kg.run(st.nowho, "who", rule="nowho", outcome="denied")
        check((res.code, res.out, res.err) == (EXIT_NOPERM, "", NO_WHO),
              f"who: exit {res.code}: {res.out!r} {res.err!r}")
        # A dry run is answered by the policy alone (test_who_hidden.py).
        res, _ = st.kg.run(st.nowho, "kick", "-n", A1, rule="nowho",
                           outcome="checked", dry_run="yes")
        check(res.code == 0 and not mentions(res, A1),
              f"kick -n: exit {res.code}, {res.out!r} {res.err!r}")
        check_disconnected(sessions, [])


def case_first_matching_rule_decides(st):
    """Two callers in two groups each: the rule that comes first in the
    file decides, whether it is narrower or broader than the other."""
    with session_set(st.dovecot, TENANTS):
        res, _ = st.kg.run(st.both_first, "who", rule="first", conns="1")
        check(who_users(res) == [A2], f"who as first+helpdesk: {res.out!r}")
        res, _ = st.kg.run(st.both_late, "who", rule="helpdesk-a",
                           conns="2")
        check(who_users(res) == [A1, A2],
              f"who as helpdesk+late: {res.out!r}")
        res, _ = st.kg.run(st.both_late, "kick", "-n", B1,
                           rule="helpdesk-a", outcome="no-match")
        check(res.code == EXIT_NO_MATCH, f"kick -n b1: exit {res.code}")


def case_caller_without_rule_denied(st):
    with session_set(st.dovecot, TENANTS) as sessions:
        for args in (["who"], ["kick", "*"], ["kick", "-n", A1]):
            st.kg.refused(st.stranger, *args)
        check_disconnected(sessions, [])


def case_root_may_do_everything(st):
    with session_set(st.dovecot, TENANTS) as sessions:
        res, _ = st.kg.run(ROOT, "who", rule="root", conns="3")
        check(who_users(res) == [A1, A2, B1], f"who: {res.out!r}")
        before = st.fake.connections()
        res, _ = st.kg.run(ROOT, "who", "-a", st.fake.path, rule="root",
                           instance="fake")
        check(res.code == 0 and st.fake.connections() == before + 1,
              f"who -a: exit {res.code}, {res.err!r}")
        b1 = next(s for s in sessions if s.user == B1)
        res, _ = st.kg.run(ROOT, "kick", "-f", B1, rule="root",
                           outcome="kicked", users=B1)
        check(res.code == 0, f"kick -f b1: exit {res.code}, {res.err!r}")
        check_disconnected(sessions, [b1])


def case_rule_naming_uid0_restricts_root(st):
    kg = st.kg_root
    with session_set(st.dovecot, TENANTS) as sessions:
        res, _ = kg.run(ROOT, "who", rule="root-b", conns="1")
        check(who_users(res) == [B1], f"who: {res.out!r}")
        got = {}
        for name in (A1, "nobody@tenant-a.example"):
            res, _ = kg.run(ROOT, "kick", name, rule="root-b",
                            outcome="no-match")
            got[name] = (res.code, res.out, res.err)
        check(got[A1] == (EXIT_NO_MATCH, NO_USERS_KICKED, "") and
              len(set(got.values())) == 1, f"kick: {got}")
        before = st.fake.connections()
        res, _ = kg.run(ROOT, "who", "-a", st.fake.path, rule="-",
                        instance="fake", outcome="denied")
        check((res.code, res.err) == (EXIT_NOPERM, NO_RULE),
              f"who -a: exit {res.code}, {res.err!r}")
        check(st.fake.connections() == before, "the fake anvil was asked")
        check_disconnected(sessions, [])


def case_network_scope(st):
    """networks = 127.0.0.2/32: sessions from elsewhere are invisible."""
    with session_set(st.dovecot, TENANTS) as sessions:
        res, _ = st.kg.run(st.net, "who", "-1", rule="net", conns="2")
        rows = who1_rows(res)
        check({(r[0], r[3]) for r in rows} ==
              {(A1, "127.0.0.2"), (B1, "127.0.0.2")}, f"who -1: {res.out!r}")
        res, _ = st.kg.run(st.net, "kick", "127.0.0.3", net="127.0.0.3/32",
                           outcome="no-match")
        check((res.code, res.out) == (EXIT_NO_MATCH, NO_USERS_KICKED),
              f"kick 127.0.0.3: exit {res.code}, {res.out!r}")
        gone = [s for s in sessions if s.src == "127.0.0.2"]
        pids = set(session_pids(st.dovecot, gone).values())
        res, audit = st.kg.run(st.net, "kick", "*", rule="net",
                               outcome="kicked", conns="2")
        check((res.code, res.out) == (0, KICKED_HEADER + f"{A1} {B1}\n"),
              f"kick '*': exit {res.code}, {res.out!r}")
        check(audit_pids(audit) == pids, f"audit {audit}")
        check_disconnected(sessions, gone)


# syslog -----------------------------------------------------------------

class SyslogKickgated(Kickgated):
    """kickgated with audit = syslog (Kickgated writes audit = stderr)."""

    def config_text(self):
        text = super().config_text()
        check("\naudit = stderr\n" in text, f"config {text!r}")
        return text.replace("\naudit = stderr\n", "\naudit = syslog\n", 1)


def _sys(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None):
    def b(s):
        return None if s is None else s.encode()

    _sys(_libc.mount(b(source), b(target), b(fstype), ctypes.c_ulong(flags),
                     b(data)), f"mount {target}")


@contextlib.contextmanager
def private_dev_log(work, sock):
    """Runs the block in a new mount namespace, private in both
    directions, where /dev is the host's /dev under an overlay whose
    upper layer lies in work: in it /dev/log is the socket sock
    (bind-mounted), or absent when sock is None. Processes started in the
    block stay there; this process returns to its own namespace."""
    check(threading.active_count() == 1, "threads would share the namespace")
    upper, scratch = os.path.join(work, "upper"), os.path.join(work, "work")
    os.mkdir(upper)
    os.mkdir(scratch)
    home = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    cwd = os.open(".", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _sys(_libc.unshare(CLONE_NEWNS), "unshare")
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _mount("overlay", "/dev", "overlay", 0,
               f"lowerdir=/dev,upperdir={upper},workdir={scratch}")
        if os.path.lexists(DEV_LOG):
            os.unlink(DEV_LOG)
        if sock is not None:
            open(DEV_LOG, "x").close()
            _mount(sock, DEV_LOG, None, MS_BIND)
        yield
    finally:
        _sys(_libc.setns(home, CLONE_NEWNS), "setns")
        os.fchdir(cwd)
        os.close(cwd)
        os.close(home)


class SyslogCatcher:
    """A datagram socket standing in for syslog; keeps every datagram."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.datagrams = []

    def drain(self):
        while True:
            try:
                self.datagrams.append(self.sock.recv(DATAGRAM_MAX))
            except BlockingIOError:
                return

    def audit_lines(self):
        """The audit part of every datagram that has the syslog form."""
        self.drain()
        lines = []
        for d in self.datagrams:
            m = SYSLOG_RE.match(d.decode("utf-8", "surrogateescape"))
            if m:
                lines.append(m.group(4))
        return lines

    def close(self):
        self.sock.close()


def host_dev_log():
    try:
        st = os.lstat(DEV_LOG)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mode)


@contextlib.contextmanager
def namespaced_kickgated(st, sock):
    """A SyslogKickgated like st.kg (same Dovecot, same helpdesk rule),
    started in private_dev_log(sock). Its frontend account is made
    before, so that useradd's own syslog lines stay out of sock."""
    host = host_dev_log()
    work = tempfile.mkdtemp(prefix="kgn", dir="/tmp")
    acc = env.Accounts()
    try:
        rules = {"helpdesk-a": {"principals": f"gid:{st.helper.groups[0]}",
                                "users": TENANT_A}}
        kg = SyslogKickgated({"anvil": st.dovecot.anvil_path,
                              "frontend_user": acc.user("fe").pw_name},
                             rules=rules)
        with private_dev_log(work, sock):
            kg.start()
        try:
            yield kg
        finally:
            kg.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        acc.close()
        check(host_dev_log() == host, "the host's /dev/log changed")


def syslog_audit_requests(st, kg):
    """A denied, a listing and a kick request through kg (an Audited),
    each with its audit line checked."""
    with session_set(st.dovecot, TENANTS) as sessions:
        a1 = next(s for s in sessions if s.user == A1)
        pid = str(session_pids(st.dovecot, [a1])[a1])
        kg.run(st.helper, "kick", "-f", A1, rule="helpdesk-a",
               outcome="denied", status=str(EXIT_NOPERM))
        kg.run(st.helper, "who", rule="helpdesk-a", outcome="listed",
               conns="2")
        kg.run(st.helper, "kick", A1, rule="helpdesk-a", outcome="kicked",
               conns="1", npids="1", pids=pid, users=A1)
        check_disconnected(sessions, [a1])


def case_syslog_lines_reach_authpriv(st):
    work = tempfile.mkdtemp(prefix="kgs", dir="/tmp")
    catcher = SyslogCatcher(os.path.join(work, "log"))
    try:
        with namespaced_kickgated(st, catcher.path) as kg:
            broker = kg.pids()["broker"]
            confinement.wait_filtered([broker])
            problems = confinement.check_broker(broker)
            check(not problems, f"broker not confined: {problems}")
            audited = Audited(kg, catcher.audit_lines)
            syslog_audit_requests(st, audited)
            audited.check_ledger()
            catcher.drain()
            for d in catcher.datagrams:
                m = SYSLOG_RE.match(d.decode("utf-8", "surrogateescape"))
                check(m, f"datagram {d!r}")
                pri, tag_pid = int(m.group(1)), int(m.group(3))
                check(divmod(pri, 8) == (LOG_AUTHPRIV, LOG_NOTICE),
                      f"priority <{pri}>, expected authpriv.notice")
                check(tag_pid == broker, f"tag pid {tag_pid}, broker "
                                         f"{broker}")
            check(not kg.audit_lines(),
                  f"audit lines on stderr as well: {kg.audit_lines()}")
            # The syslog daemon goes away: lines fall back to stderr.
            catcher.close()
            fallback = Audited(kg)
            fallback.run(st.helper, "who", rule="helpdesk-a",
                         outcome="listed")
            fallback.check_ledger()
    finally:
        catcher.close()
        shutil.rmtree(work, ignore_errors=True)


def case_syslog_absent_falls_back_to_stderr(st):
    with namespaced_kickgated(st, None) as kg:
        audited = Audited(kg)
        syslog_audit_requests(st, audited)
        audited.check_ledger()


def case_every_request_audited_once(st):
    st.kg.check_ledger()
    st.kg_root.check_ledger()


CASES = [
    ("who_lists_only_own_tenant", case_who_lists_own_tenant_only),
    ("audit_names_outlive_account_changes",
     case_audit_names_outlive_account_changes),
    ("kick_all_spares_other_tenant", case_kick_all_spares_other_tenant),
    ("other_tenant_user_looks_like_nonexistent",
     case_other_tenant_looks_like_nobody),
    ("force_denied_without_force_yes", case_force_needs_force_yes),
    ("max_sessions_refuses_larger_kicks_and_dry_runs",
     case_max_sessions_refuses_larger_kicks),
    ("instance_outside_rule_denied_and_never_asked",
     case_instance_outside_rule_never_asked),
    ("who_no_denies_listing_only", case_who_no_denies_listing_only),
    ("first_matching_rule_decides", case_first_matching_rule_decides),
    ("caller_without_rule_denied", case_caller_without_rule_denied),
    ("root_may_do_everything", case_root_may_do_everything),
    ("rule_naming_uid0_restricts_root",
     case_rule_naming_uid0_restricts_root),
    ("network_scope_limits_who_and_kick", case_network_scope),
    ("syslog_lines_reach_authpriv_from_the_sandbox",
     case_syslog_lines_reach_authpriv),
    ("no_syslog_socket_falls_back_to_stderr",
     case_syslog_absent_falls_back_to_stderr),
    ("every_request_left_exactly_one_audit_line",
     case_every_request_audited_once),
]


# One imap process for two tenants ----------------------------------------

@contextlib.contextmanager
def shared_setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        acc = stack.enter_context(env.Accounts())
        st.forcer = caller(acc.user("force"))
        st.dovecot = stack.enter_context(Dovecot(USERS, shared_imap=True))
        st.kg = Audited(stack.enter_context(Kickgated(
            {"anvil": st.dovecot.anvil_path}, rules={
                "force-a": {"principals": f"user:{st.forcer.name}",
                            "users": TENANT_A, "force": True}})))
        yield st


def case_force_never_reaches_other_tenant(st):
    """a1 and b1 share one imap process: even with -f and force = yes the
    process is not signalled, and nothing of b1 shows."""
    with session_set(st.dovecot, SHARED) as sessions:
        pids = session_pids(st.dovecot, sessions)
        check(len(set(pids.values())) == 1, f"not shared: {pids}")
        shared_pid = str(next(iter(pids.values())))
        for args in (["-f"], ["-f", "-n"], ["-f", "-j"], [], ["-j"]):
            res, audit = st.kg.run(st.forcer, "kick", *args, A1,
                                   rule="force-a",
                                   outcome="blocked-by-scope", pids="",
                                   users="")
            check(res.code == EXIT_NOPERM,
                  f"kick {args}: exit {res.code}, {res.out!r} {res.err!r}")
            for secret in (B1, shared_pid, B1_SHARED_ADDR):
                check(not mentions(res, secret),
                      f"kick {args} shows {secret}: {res.out!r} "
                      f"{res.err!r}")
            if "-j" in args:
                doc = json.loads(res.out)
                check((doc["status"], doc["kicked"], doc["pids"],
                       doc["warning"]) == (EXIT_NOPERM, [], [], []),
                      f"kick {args}: {doc}")
        check_disconnected(sessions, [])
        res, _ = st.kg.run(st.forcer, "who", "-j", outcome="listed",
                           conns="1")
        check(who_json_users(res) == [A1], f"who -j: {res.out!r}")
        check(not mentions(res, B1) and not mentions(res, B1_SHARED_ADDR),
              f"who -j shows b1: {res.out!r}")
    st.kg.check_ledger()


SHARED_CASES = [
    ("force_never_kicks_a_process_shared_with_other_tenant",
     case_force_never_reaches_other_tenant),
]


if __name__ == "__main__":
    main((CASES, setup), (SHARED_CASES, shared_setup))
