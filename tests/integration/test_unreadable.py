#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What kickgated does with anvil data it cannot carry or cannot read.

A fake anvil that passes as a Dovecot (its listener is named "dovecot"
and has a child named "imap", the mail process here) serves each case's
dump. The caller "desk" is a created system user whose rule covers tenant
A, with force = yes.

- A who row whose user name leaves no room for the rest of the row in a
  reply record is never dropped silently: the rows after it are listed,
  and the reply fails (70) saying that it is incomplete.
- A line that does not parse may be anybody's session. On the process it
  names it blocks a kick as a session outside the caller's scope does,
  even with -f; when its process cannot be told, no kick that matches
  anything proceeds. The refusal says why, and nothing is signalled.
- A caller whose scope is not everything is not told how many of anvil's
  lines were malformed; root is.
"""

import contextlib
import json
import shutil
import tempfile
import types

from kgtest import env
from kgtest.daemon import Kickgated
from kgtest.fakeanvil import FakeAnvil, ended_by
from kgtest.runner import check, main

A1 = "a1@tenant-a.example"
B_LONG = "b" * 70000 + "@tenant-b.example"
TENANT_A = "*@tenant-a.example"
# Over 65,535 bytes with the rest of an IPv6 row, within an anvil line.
LONG_ROW_USER = "m" * 65490 + "@tenant-a.example"

EXIT_OK = 0
EXIT_NO_MATCH = 68
EXIT_SOFTWARE = 70
EXIT_NOPERM = 77
INCOMPLETE = ("kickgate: the reply is incomplete: 1 record(s) too large for "
              "a reply record (a user name of nearly 64 KiB) were left out\n")
UNREADABLE_ON_PROCESS = (
    "kickgate: refused: nothing was kicked: a matching process also serves "
    "a session kickgated cannot read, which counts as outside your scope; "
    "ask the administrator (kickgated logs the malformed line)\n")
UNREADABLE_NOWHERE = (
    "kickgate: refused: nothing was kicked: anvil lists a session "
    "kickgated cannot read, on a process it cannot tell, so no process is "
    "known to serve only your sessions; ask the administrator (kickgated "
    "logs the malformed line)\n")


@contextlib.contextmanager
def setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        acc = stack.enter_context(env.Accounts())
        st.desk = acc.user("desk")
        st.tmp = tempfile.mkdtemp(prefix="kgu", dir="/tmp")
        stack.callback(shutil.rmtree, st.tmp, ignore_errors=True)
        st.fake = stack.enter_context(FakeAnvil(
            st.tmp, "fake", comm="dovecot", children=["imap"]))
        st.mail = st.fake.children[0]
        st.kg = stack.enter_context(Kickgated(
            {"anvil": st.fake.path, "services": "imap"}, rules={
                "desk": {"principals": f"user:{st.desk.pw_name}",
                         "users": TENANT_A, "force": True}}))
        yield st


def dump(*lines):
    return "".join(f"{ident}\t{pid}\t{refcount}\n"
                   for ident, pid, refcount in lines) + "\n"


def as_desk(st, *args):
    return st.kg.run(*args, uid=st.desk.pw_uid, gid=st.desk.pw_gid)


def case_long_row_fails_the_listing_loudly(st):
    st.fake.set_dump(dump(("imap/::1/a@x", 100, 1),
                          (f"imap/2001:db8::1/{LONG_ROW_USER}", 101, 1),
                          ("imap/::1/z@x", 102, 1)))
    res = st.kg.run("who", "-1")
    check((res.code, res.err) == (EXIT_SOFTWARE, INCOMPLETE),
          f"who -1: exit {res.code}, {res.err!r}")
    check(res.out == "username proto pid ip\na@x imap 100 ::1\n"
                     "z@x imap 102 ::1\n", f"who -1: {res.out!r}")
    audit = st.kg.audit_for(res.pid)
    check(len(audit) == 1 and audit[0].get("status") == "70",
          f"audit {audit}")
    res = st.kg.run("who", "-j")
    doc = json.loads(res.out)
    check(res.code == EXIT_SOFTWARE and doc["status"] == EXIT_SOFTWARE and
          [s["user"] for s in doc["sessions"]] == ["a@x", "z@x"] and
          "the reply is incomplete" in doc["error"], f"who -j: {doc}")


def check_refused(st, args, want_err):
    for extra in ([], ["-j"]):
        res = as_desk(st, "kick", *extra, *args)
        check(res.code == EXIT_NOPERM,
              f"kick {extra} {args}: exit {res.code}, {res.err!r}")
        if extra:
            doc = json.loads(res.out)
            check((doc["kicked"], doc["pids"]) == ([], []) and
                  "kickgate: " + doc["error"] + "\n" == want_err,
                  f"kick -j {args}: {doc}")
        else:
            check((res.out, res.err) == ("", want_err),
                  f"kick {args}: {res.out!r} {res.err!r}")
    check(ended_by(st.mail) is None, "the mail process was signalled")


def case_unreadable_session_blocks_its_process(st):
    st.fake.set_dump(dump((f"imap/127.0.0.2/{A1}", st.mail, 1),
                          (f"imap/127.0.0.3/{B_LONG}", st.mail, 1)))
    for args in ([A1], ["-f", A1], ["-f", "-n", A1]):
        check_refused(st, args, UNREADABLE_ON_PROCESS)


def case_unreadable_session_elsewhere_blocks_nothing(st):
    """On another process the line changes nothing: the dry run passes
    (it verifies the mail process, and signals nothing)."""
    st.fake.set_dump(dump((f"imap/127.0.0.2/{A1}", st.mail, 1),
                          (f"imap/127.0.0.3/{B_LONG}", st.fake.pid, 1)))
    res = as_desk(st, "kick", "-n", A1)
    check(res.code == EXIT_OK and res.err == "",
          f"kick -n: exit {res.code}, {res.err!r}")
    check(ended_by(st.mail) is None, "the mail process was signalled")


def case_unreadable_process_blocks_every_kick(st):
    st.fake.set_dump(dump((f"imap/127.0.0.2/{A1}", st.mail, 1),
                          ("imap/127.0.0.3/b1@tenant-b.example", "x1", 1)))
    check_refused(st, ["-f", A1], UNREADABLE_NOWHERE)
    # A kick that matches nothing has nothing to widen.
    res = as_desk(st, "kick", "nobody@tenant-a.example")
    check((res.code, res.out) == (EXIT_NO_MATCH, "no users kicked\n"),
          f"kick nobody: exit {res.code}, {res.out!r} {res.err!r}")


def case_malformed_count_only_for_unrestricted_callers(st):
    st.fake.set_dump(dump((f"imap/127.0.0.2/{A1}", st.mail, 1),
                          ("imap/127.0.0.3/", 5, 1)))
    for args in (["who"], ["kick", "-n", A1]):
        res = as_desk(st, *args)
        check(res.code == EXIT_OK and res.err == "",
              f"{args} as desk: exit {res.code}, {res.err!r}")
        res = st.kg.run(*args)
        check(res.code == EXIT_OK and res.err == "kickgate: warning: anvil "
              "sent 1 malformed line, skipped\n",
              f"{args} as root: exit {res.code}, {res.err!r}")
    res = as_desk(st, "who", "-j")
    check(json.loads(res.out)["malformed_anvil_lines"] is None,
          f"who -j as desk: {res.out!r}")


CASES = [
    ("a_row_too_long_to_send_fails_the_listing_loudly",
     case_long_row_fails_the_listing_loudly),
    ("an_unreadable_session_blocks_its_process_even_with_force",
     case_unreadable_session_blocks_its_process),
    ("an_unreadable_session_elsewhere_blocks_nothing",
     case_unreadable_session_elsewhere_blocks_nothing),
    ("an_unreadable_line_without_a_process_blocks_every_kick",
     case_unreadable_process_blocks_every_kick),
    ("malformed_count_only_for_callers_who_see_everything",
     case_malformed_count_only_for_unrestricted_callers),
]


if __name__ == "__main__":
    main((CASES, setup))
