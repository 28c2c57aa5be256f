#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgated with broker_user: the broker drops root for an account of its
own and still kicks.

A real Dovecot gives a group made for this test its anvil socket (mode
0660); the broker runs as a user in that group, keeps CAP_KILL alone, and
lists and kicks real IMAP sessions of the mail user, another uid. A second
daemon whose broker_user is not in the group cannot reach anvil and says
so. Neither may leave the broker's ids to a configuration that names the
frontend's user.
"""

import contextlib
import os
import subprocess
import types

from kgtest.confinement import check_broker, wait_filtered
from kgtest.daemon import ACCOUNT_HINT, Kickgated, build_dir
from kgtest.dovecot import Dovecot
from kgtest.env import Accounts
from kgtest.runner import check, main
from kgtest.scenarios import disconnected
from kgtest.sessions import ImapSession, open_sessions

USERS = {"bar": "bar-pw", "baz": "baz-pw"}
EXIT_OK = 0
EXIT_UNAVAILABLE = 69
EXIT_CONFIG = 78
CMD_TIMEOUT = 30


@contextlib.contextmanager
def setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        accounts = stack.enter_context(Accounts())
        st.group = accounts.group("anvil")
        st.user = accounts.user("brk", groups=[st.group.gr_name])
        st.outsider = accounts.user("out")
        st.dovecot = stack.enter_context(
            Dovecot(USERS, anvil_group=st.group.gr_name))
        st.sessions = open_sessions(st.dovecot,
                                    [(ImapSession, "bar", "127.0.0.2"),
                                     (ImapSession, "baz", "127.0.0.3")])
        for s in st.sessions:
            stack.callback(s.close)
        st.kg = stack.enter_context(Kickgated(
            {"anvil": st.dovecot.anvil_path, "broker_user": st.user.pw_name}))
        yield st


def case_broker_runs_as_broker_user(st):
    broker = st.kg.pids()["broker"]
    wait_filtered([broker])
    problems = check_broker(broker, st.user.pw_uid, st.user.pw_gid,
                            os.getgrouplist(st.user.pw_name,
                                            st.user.pw_gid))
    check(st.group.gr_gid in os.getgrouplist(st.user.pw_name,
                                             st.user.pw_gid),
          "the broker user is not in the anvil group")
    check(not problems, "; ".join(problems))


def case_who_and_kick_as_broker_user(st):
    res = st.kg.run("who")
    check(res.code == EXIT_OK and "bar" in res.out and "baz" in res.out,
          f"who: {res.code} {res.out!r} {res.err!r}")
    res = st.kg.run("kick", "bar")
    check(res.code == EXIT_OK, f"kick: {res.code} {res.err!r}")
    bar = st.sessions[0]
    closed = disconnected(st.sessions, expect=[bar])
    check(closed == {bar}, f"closed: {closed}, expected only {bar}")


def case_user_outside_anvil_group_cannot_reach_anvil(st):
    broker = {"anvil": st.dovecot.anvil_path,
              "broker_user": st.outsider.pw_name}
    with Kickgated(broker) as kg:
        res = kg.run("who")
        check(res.code == EXIT_UNAVAILABLE and
              res.err == f"kickgate: kickgated cannot reach Dovecot's "
                         f"anvil at {st.dovecot.anvil_path} for instance "
                         f"default: Permission denied; is Dovecot running? "
                         f"does the broker's account have the anvil "
                         f"socket's group?\n",
              f"who: {res.code} {res.err!r}")
        check(kg.running(), "a daemon process died: " + kg.log_text())


def case_broker_user_same_as_frontend_is_refused(st):
    conf = os.path.join(st.kg.dir, "same.conf")
    with open(conf, "w") as f:
        f.write(f"[broker]\nbroker_user = {st.user.pw_name}\n"
                f"frontend_user = {st.user.pw_name}\n")
    res = subprocess.run([os.path.join(build_dir(), "kickgated"), "-t",
                          "-c", conf], capture_output=True, text=True,
                         timeout=CMD_TIMEOUT, check=False)
    check(res.returncode == EXIT_CONFIG and res.stderr ==
          f"{conf}:3: frontend_user: '{st.user.pw_name}' is also "
          f"broker_user; they must differ{ACCOUNT_HINT}\n",
          f"kickgated -t: {res.returncode} {res.stderr!r}")


CASES = [
    ("the broker runs as broker_user with CAP_KILL alone",
     case_broker_runs_as_broker_user),
    ("who and kick work as broker_user", case_who_and_kick_as_broker_user),
    ("a broker_user outside the anvil group gets 69",
     case_user_outside_anvil_group_cannot_reach_anvil),
    ("broker_user equal to frontend_user is a config error",
     case_broker_user_same_as_frontend_is_refused),
]

if __name__ == "__main__":
    main((CASES, setup))
