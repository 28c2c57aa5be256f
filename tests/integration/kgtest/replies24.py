# SPDX-License-Identifier: MIT
"""kickgate's replies for a Dovecot 2.4 instance, read and checked.

On 2.4 anvil kicks and kickgated dumps again: a kick's reply starts with
"N connections kicked" (the count the new dumps showed gone, not
anvil's), names the users whose connections went, and exits 0 when
every planned connection went, 75 when some stayed (the users still
there follow "still connected after the kick:"). who -1 prints doveadm
2.4's columns, username service pid ip dest_ip and one per alternative
username field, one space apart (an empty value is empty); the checks
compare it with doveadm's own `who -1` on the same instance, as sets of
rows. who groups by user as it does for 2.3.

The check_* functions raise kgtest.runner.CheckFailed with what was seen.
"""

import collections
import json
import re

from kgtest.runner import check
from kgtest.dovecot24 import WHO_COLUMNS
from kgtest.scenarios import pids_by_session, session_key

KICKED_HEADER = "kicked connections from the following users:\n"
DRY_HEADER = "dry run: would kick connections from the following users:\n"
NEED_FORCE = ("warning: other connections would also be kicked from "
              "following users:\n{users}\n"
              "Use the '-f' option to enforce the disconnect.\n")
EXIT_NEED_FORCE = 1
EXIT_PARTIAL = 75
WHO_GROUP_HEADER = "username # proto (pids) (ips)"
WHO1_23_HEADER = "username proto pid ip"


def users_line(users):
    return " ".join(sorted(users)) + "\n"


def counted(n, noun):
    """'1 connection', '2 connections', '1 process', '2 processes'."""
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun}es" if noun.endswith("s") else f"{n} {noun}s"


def _check_audit(audit, **want):
    for key, value in want.items():
        check(audit.get(key) == value,
              f"audit {key}={audit.get(key)!r}, expected {value!r}: {audit}")


def audit_pids(audit):
    return {int(p) for p in audit["pids"].split(",") if p}


# Kicks ------------------------------------------------------------------

def check_kicked(res, audit, users, conns, pids=None):
    """Every planned connection went: exit 0, the users, conns counted
    as kicked; the audit agrees (and names pids, when given)."""
    want = f"{conns} connections kicked\n" + KICKED_HEADER + users_line(users)
    check((res.code, res.out, res.err) == (0, want, ""),
          f"exit {res.code}, stdout {res.out!r}, stderr {res.err!r}; "
          f"expected {want!r}")
    _check_audit(audit, outcome="kicked", status="0", conns=str(conns),
                 users=",".join(sorted(users)))
    if pids is not None:
        check(audit_pids(audit) == pids,
              f"audit pids {audit['pids']}, expected {sorted(pids)}")


def check_no_match(res, audit):
    check((res.code, res.out, res.err) == (68, "no users kicked\n", ""),
          f"exit {res.code}, stdout {res.out!r}, stderr {res.err!r}")
    _check_audit(audit, outcome="no-match", status="68", conns="0")


def check_dry_run(res, audit, users, conns):
    """kick -n: the plan, nothing asked of anvil."""
    if not conns:
        check_no_match(res, audit)
        return
    text = res.out.splitlines(keepends=True)
    check(res.code == 0 and text[:2] == [DRY_HEADER, users_line(users)] and
          re.fullmatch(counted(conns, "connection") +
                       r" in \d+ process(es)?\n", "".join(text[2:])),
          f"kick -n: exit {res.code}, stdout {res.out!r}")
    _check_audit(audit, outcome="dry-run", dry_run="yes",
                 conns=str(conns))


def check_need_force(res, audit, users):
    """Refused for want of -f: the users named, nothing asked."""
    want = NEED_FORCE.format(users=" ".join(sorted(users)))
    check((res.code, res.out, res.err) == (EXIT_NEED_FORCE, want, ""),
          f"exit {res.code}, stdout {res.out!r}, stderr {res.err!r}")
    _check_audit(audit, outcome="need-force", status="1", pids="")


def check_remained(res, audit, remained):
    """Anvil was asked, but none of the planned connections went: they
    were all still there when kickgated stopped looking. Exit 75, the
    users still connected named."""
    want = ("0 connections kicked\nstill connected after the kick:\n" +
            users_line(remained))
    check((res.code, res.out, res.err) == (EXIT_PARTIAL, want, ""),
          f"exit {res.code}, stdout {res.out!r}, stderr {res.err!r}; "
          f"expected {want!r}")
    _check_audit(audit, outcome="not-kicked", status=str(EXIT_PARTIAL),
                 conns="0", users="", remained=",".join(sorted(remained)))


# Listings ---------------------------------------------------------------

def who1_23(text):
    """kickgate who -1 on a 2.3 instance: {(user, service, pid, ip)}."""
    lines = text.splitlines()
    check(lines[:1] == [WHO1_23_HEADER], f"who -1 header: {text!r}")
    rows = set()
    for line in lines[1:]:
        user, service, pid, ip = line.split(" ")
        rows.add((user, service, int(pid), ip))
    return rows


def who1_rows(text):
    """kickgate who -1 on a 2.4 instance: a Counter of rows, each a
    tuple of (column, value) in the header's order."""
    lines = text.splitlines()
    check(lines and lines[0].split(" ")[:5] == WHO_COLUMNS,
          f"who -1 header: {text!r}")
    columns = lines[0].split(" ")
    rows = collections.Counter()
    for line in lines[1:]:
        values = line.split(" ")
        check(len(values) == len(columns), f"who -1 line {line!r}")
        rows[tuple(zip(columns, values))] += 1
    return rows


def _doveadm_rows(dovecot):
    return collections.Counter(tuple(row.items())
                               for row in dovecot.who_rows())


def check_who1_like_doveadm(res, dovecot):
    """kickgate who -1 lists the rows doveadm who -1 lists."""
    check(res.code == 0 and res.err == "",
          f"who -1: exit {res.code}, stderr {res.err!r}")
    got = who1_rows(res.out)
    want = _doveadm_rows(dovecot)
    check(got == want, f"who -1 {sorted(got)}, doveadm who -1 "
                       f"{sorted(want)}")


def who1_users(res):
    check(res.code == 0, f"who -1: exit {res.code}, {res.err!r}")
    return {dict(row)["username"] for row in who1_rows(res.out)}


def who_json_rows(res):
    check(res.code == 0, f"who -j: exit {res.code}, {res.err!r}")
    doc = json.loads(res.out)
    check(doc["status"] == 0 and doc["error"] is None, f"who -j: {doc}")
    return doc["sessions"]


def who_groups(text):
    """kickgate who: {user: (count, services, pids, ips)}, sorted."""
    lines = text.splitlines()
    check(lines[:1] == [WHO_GROUP_HEADER], f"who header: {text!r}")
    users = {}
    for line in lines[1:]:
        head, _, rest = line.partition(" (")
        pids, _, ips = rest.partition(") (")
        check(ips.endswith(")"), f"who line {line!r}")
        user, count, *services = head.split(" ")
        check(user not in users, f"who lists {user} twice")
        users[user] = (int(count), sorted(services),
                       sorted(int(p) for p in pids.split()),
                       sorted(ips[:-1].split()))
    return users


def who_users(res):
    check(res.code == 0, f"who: exit {res.code}, {res.err!r}")
    return set(who_groups(res.out))


def _doveadm_groups(dovecot):
    """doveadm 2.4's who lines (one per user and service) merged per
    user, as kickgate groups them."""
    users = collections.defaultdict(lambda: [0, set(), set(), set()])
    for user, count, service, pids, ips in dovecot.who_groups():
        entry = users[user]
        entry[0] += count
        entry[1].add(service)
        entry[2].update(pids)
        entry[3].update(ips)
    return {u: (n, sorted(sv), sorted(p), sorted(i))
            for u, (n, sv, p, i) in users.items()}


def check_who_like_doveadm(kg, dovecot, conns):
    """who, who -1 and who -j of root agree with doveadm who and who -1,
    and list conns connections."""
    res, audit = kg.run_audited("who", "-1")
    check_who1_like_doveadm(res, dovecot)
    _check_audit(audit, op="who", separate="yes", outcome="listed",
                 conns=str(conns))
    res, _audit = kg.run_audited("who")
    check(res.code == 0 and
          who_groups(res.out) == _doveadm_groups(dovecot),
          f"who {res.out!r}, doveadm who {dovecot.who_groups()}")
    res, _audit = kg.run_audited("who", "-j")
    rows = who_json_rows(res)
    guids = sorted(r["guid"] for r in rows)
    anvil = sorted(c.guid for c in dovecot.anvil_connections()[1])
    check(guids == anvil, f"who -j GUIDs {guids}, anvil's {anvil}")
    got = collections.Counter(
        (r["user"], r["service"], r["pid"], r["ip"], r["dest_ip"],
         tuple(sorted(r["fields"].items()))) for r in rows)
    want = collections.Counter(
        (r["username"], r["service"], int(r["pid"]), r["ip"] or None,
         r["dest_ip"] or None,
         tuple(sorted((k, v) for k, v in r.items()
                      if k not in WHO_COLUMNS and v)))
        for r in dovecot.who_rows())
    check(got == want, f"who -j {sorted(got)}, doveadm {sorted(want)}")


def session_pids(dovecot, sessions):
    """{session: pid} from doveadm who -1."""
    pids = pids_by_session(dovecot)
    return {s: pids[session_key(s)] for s in sessions}
