#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""User names with an invisible character, against a real Dovecot 2.3.

a<U+200B>1@tenant-a.example and a1@tenant-a.example look alike on a
screen, and U+202E (right-to-left override) turns the text after it
around. kickgate's text output must tell the names apart, a name as
printed must, pasted back as the user glob, kick that user's session and
no other, and JSON must carry every name exactly.
"""

import contextlib
import json
import types

from kgtest.daemon import Kickgated
from kgtest.dovecot import Dovecot
from kgtest.runner import check, main
from kgtest.scenarios import disconnected, session_set
from kgtest.sessions import ImapSession

HIDDEN = "a\u200b1@tenant-a.example"
PLAIN = "a1@tenant-a.example"
# HIDDEN as kickgate's text output shows it: U+200B is e2 80 8b in UTF-8.
HIDDEN_TEXT = "a\\xe2\\x80\\x8b1@tenant-a.example"
OVERRIDE = "\u202etxt.exe@tenant-a.example"
OVERRIDE_TEXT = "\\xe2\\x80\\xaetxt.exe@tenant-a.example"
USERS = {HIDDEN: "hidden-pw", PLAIN: "plain-pw", OVERRIDE: "override-pw"}
SPECS = [(ImapSession, HIDDEN, "127.0.0.2"),
         (ImapSession, PLAIN, "127.0.0.3"),
         (ImapSession, OVERRIDE, "127.0.0.4")]


@contextlib.contextmanager
def setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        st.dovecot = stack.enter_context(Dovecot(USERS))
        st.kg = stack.enter_context(
            Kickgated({"anvil": st.dovecot.anvil_path}))
        yield st


def case_text_tells_the_names_apart(st):
    with session_set(st.dovecot, SPECS):
        res = st.kg.run("who", "-1")
        users = sorted(line.split(" ")[0]
                       for line in res.out.splitlines()[1:])
        want = sorted([HIDDEN_TEXT, PLAIN, OVERRIDE_TEXT])
        check(res.code == 0 and users == want,
              f"who -1: exit {res.code}, {res.out!r}, {res.err!r}")


def case_json_carries_the_names(st):
    with session_set(st.dovecot, SPECS):
        res = st.kg.run("who", "-j")
        doc = json.loads(res.out)
        users = sorted(s["user"] for s in doc["sessions"])
        check(res.code == 0 and users == sorted(USERS) and
              "\\u200b" in res.out and "\\u202e" in res.out,
              f"who -j: exit {res.code}, {res.out!r}, {res.err!r}")


def case_printed_name_kicks_that_user(st):
    with session_set(st.dovecot, SPECS) as sessions:
        res = st.kg.run("kick", HIDDEN_TEXT)
        check(res.code == 0 and res.out ==
              "kicked connections from the following users:\n"
              f"{HIDDEN_TEXT}\n",
              f"kick: exit {res.code}, {res.out!r}, {res.err!r}")
        gone = [s for s in sessions if s.user == HIDDEN]
        closed = disconnected(sessions, expect=gone)
        check(closed == set(gone),
              f"disconnected {sorted(map(repr, closed))}")


CASES = [
    ("text_tells_the_names_apart", case_text_tells_the_names_apart),
    ("json_carries_the_names", case_json_carries_the_names),
    ("printed_name_kicks_that_user", case_printed_name_kicks_that_user),
]


if __name__ == "__main__":
    main((CASES, setup))
