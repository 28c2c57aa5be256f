#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgate against a real Dovecot 2.3 started each way admins start it:
in the foreground (`dovecot -F`, as under systemd) and detached (`dovecot`,
as by an init script or by hand, where the process that opened the
listeners forks the master and exits), and across restarts of Dovecot
under a kickgated that keeps running (the master's pid changes).

In every mode kick disconnects exactly the matching sessions, and fake
anvils that name a foreign process or a real mail process of the instance
are refused: the master kickgated trusts is the parent of the process the
kernel names as anvil's writer.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types

from kgtest import env
from kgtest.daemon import Kickgated
from kgtest.dovecot import DETACHED, FOREGROUND, Dovecot
from kgtest.fakeanvil import FakeAnvil
from kgtest.runner import Runner, check
from kgtest.scenarios import (USERS, disconnected, pids_by_session,
                              session_key, session_set)

EXIT_NOPERM = 77
KICKED_HEADER = "kicked connections from the following users:\n"
NOT_DOVECOT = "not a Dovecot mail process"
CHILD_LIFETIME = "120"
STOP_TIMEOUT = 10
SURVIVE_WAIT = 1.0


def dump_line(user, pid, ip="127.0.0.2", service="imap"):
    return f"{service}/{ip}/{user}\t{pid}\t1\n"


def fixture_for(mode):
    """A Dovecot started in mode, a kickgated with it as the default
    instance, a fake anvil (a "dovecot" process whose child "anvil"
    answers) as instance "fake", and an unrelated process."""
    @contextlib.contextmanager
    def fixture():
        with contextlib.ExitStack() as stack:
            st = types.SimpleNamespace(mode=mode)
            st.dovecot = stack.enter_context(Dovecot(USERS, mode=mode))
            tmp = tempfile.mkdtemp(prefix="kgm", dir="/tmp")
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
            os.chmod(tmp, 0o755)
            st.sleeper = subprocess.Popen(["sleep", CHILD_LIFETIME],
                                          stdin=subprocess.DEVNULL)
            stack.callback(lambda: (st.sleeper.kill(),
                                    st.sleeper.wait(STOP_TIMEOUT)))
            st.fake = stack.enter_context(
                FakeAnvil(tmp, "fake", comm="dovecot"))
            st.kg = stack.enter_context(Kickgated(
                {"anvil": st.dovecot.anvil_path},
                instances={"fake": st.fake.path}))
            yield st
    return fixture


def check_master_matches(st):
    """The harness started the master the way the mode says."""
    master = st.dovecot.master_pid()
    with open(f"/proc/{master}/stat") as f:
        stat = f.read()
    ppid = int(stat[stat.rindex(")") + 2:].split()[1])
    if st.mode == FOREGROUND:
        check(ppid == os.getpid(), f"master {master} has parent {ppid}, "
                                   "not this test")
    else:
        check(ppid != os.getpid(), f"detached master {master} is a child "
                                   "of this test")


def kick_exactly(st, args, kicked, users):
    """Fresh sessions; kick ARGS disconnects exactly those for which
    kicked(session) holds and reports users."""
    with session_set(st.dovecot) as sessions:
        gone = [s for s in sessions if kicked(s)]
        res = st.kg.run("kick", *args)
        check((res.code, res.out, res.err) ==
              (0, KICKED_HEADER + " ".join(sorted(users)) + "\n", ""),
              f"kick {args} ({st.mode}): exit {res.code}, stdout "
              f"{res.out!r}, stderr {res.err!r}")
        closed = disconnected(sessions, expect=gone)
        check(closed == set(gone),
              f"kick {args} ({st.mode}): disconnected "
              f"{sorted(map(repr, closed))}, expected "
              f"{sorted(map(repr, gone))}")


def check_kicks(st):
    check_master_matches(st)
    kick_exactly(st, ["ba?"], lambda s: s.user in ("bar", "baz"),
                 {"bar", "baz"})
    kick_exactly(st, ["foo", "127.0.0.2/32"],
                 lambda s: s.user == "foo" and s.src == "127.0.0.2", {"foo"})
    kick_exactly(st, ["::1/128"], lambda s: s.src == "::1", {"jane"})


def case_kicks(st):
    check_kicks(st)


def survives(pid_alive):
    time.sleep(SURVIVE_WAIT)
    return pid_alive()


def check_fake_refused(st, pid, alive):
    """kick -a fake victim: refused (77) with pid named, nothing killed."""
    res = st.kg.run("kick", "-a", st.fake.path, "victim")
    check(survives(alive), f"pid {pid} was signalled")
    check(res.code == EXIT_NOPERM and
          f"refused: pid {pid}: {NOT_DOVECOT}\n" in res.out and
          "kicked connections" not in res.out,
          f"exit {res.code}, stdout {res.out!r}, stderr {res.err!r}")


def case_fake_naming_a_foreign_pid(st):
    st.fake.set_dump(dump_line("victim", st.sleeper.pid) + "\n")
    check_fake_refused(st, st.sleeper.pid,
                       lambda: st.sleeper.poll() is None)


def case_fake_naming_a_real_mail_process(st):
    """The fake's master is its own "dovecot" process, not the instance's:
    a real imap process of the running Dovecot is not its child."""
    with session_set(st.dovecot) as sessions:
        victim = next(s for s in sessions if s.user == "bar")
        pid = pids_by_session(st.dovecot)[session_key(victim)]
        st.fake.set_dump(dump_line("victim", pid) + "\n")
        check_fake_refused(st, pid, victim.alive)
        check(not disconnected(sessions), "a session was disconnected")


def restart_case(how, mode_after):
    """Dovecot is stopped (doveadm stop, or SIGTERM to the master) and
    started again, perhaps the other way; kickgated keeps running and
    follows the new master."""
    def case(st):
        before = st.dovecot.master_pid()
        daemon = st.kg.pids()
        st.dovecot.restart(mode=mode_after or st.mode, how=how)
        st.mode = st.dovecot.mode
        check(st.dovecot.master_pid() != before,
              f"the master kept pid {before}")
        check(st.kg.pids() == daemon,
              f"kickgated changed: {daemon} -> {st.kg.pids()}")
        check_kicks(st)
    return case


def cases_for(mode):
    other = DETACHED if mode == FOREGROUND else FOREGROUND
    return [
        (f"{mode}_kicks_exactly_the_matching_sessions", case_kicks),
        (f"{mode}_fake_anvil_naming_a_foreign_pid_refused",
         case_fake_naming_a_foreign_pid),
        (f"{mode}_fake_anvil_naming_a_real_mail_process_refused",
         case_fake_naming_a_real_mail_process),
        (f"{mode}_after_doveadm_stop_and_start",
         restart_case("doveadm", None)),
        (f"{mode}_after_sigterm_and_start_{other}",
         restart_case("signal", other)),
        (f"{mode}_then_{other}_fake_anvil_still_refused",
         case_fake_naming_a_foreign_pid),
    ]


def main():
    env.require_root_and_dovecot()
    runner = Runner()
    for mode in (FOREGROUND, DETACHED):
        runner.group(cases_for(mode), fixture_for(mode))
    sys.exit(runner.finish())


if __name__ == "__main__":
    main()
