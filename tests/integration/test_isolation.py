#!/usr/bin/env python3
"""What of kickgated other processes can reach (SECURITY.md, "Descriptors"
and "The frontend's account").

Descriptors: kickgated is started with two more open than a shell's
standard three, a pipe and a socket connected to a listener of this test
in a directory only root may enter. No kickgated process may hold either;
each holds exactly the descriptors SECURITY.md lists for its role.

Signals: a user of its own tries kill -STOP on the supervisor, the
frontend and the broker; each attempt fails with EPERM and the process
keeps running.

The frontend's account: kickgated -t refuses nobody, root, a missing
account and an account that runs a process, each with the hint how to
create a dedicated one, and exits 78.
"""

import contextlib
import os
import socket
import subprocess
import tempfile
import types

from kgtest.confinement import wait_filtered
from kgtest.daemon import ACCOUNT_HINT, Kickgated, build_dir
from kgtest.env import Accounts, wait_until
from kgtest.fakeanvil import FakeAnvil
from kgtest.runner import check, main

DUMP = "imap/192.0.2.10/alice\t4242\t1\n\n"
EXIT_CONFIG = 78
CMD_TIMEOUT = 30


def fd_table(pid):
    """{fd number: what it is, as readlink shows it}."""
    table = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        table[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
    return table


def check_std(role, table, kg):
    """0 is /dev/null, 1 and 2 the log file kickgated was started with."""
    want = {0: "/dev/null", 1: kg.log_path, 2: kg.log_path}
    got = {fd: table.get(fd) for fd in want}
    check(got == want, f"{role}: standard descriptors {got}, want {want}")


def is_socket(target):
    return target.startswith("socket:[")


def check_supervisor(table, listener, kg):
    check_std("supervisor", table, kg)
    check(table.get(3) == listener,
          f"supervisor: fd 3 is {table.get(3)}, not the listener "
          f"{listener}")
    rest = sorted(t if not is_socket(t) else "socket"
                  for fd, t in table.items() if fd > 3)
    check(rest == ["anon_inode:[signalfd]", "socket"],
          f"supervisor: beyond 0-3 {rest}, want its signalfd and one "
          f"control socket ({table})")


def check_frontend(table, kg):
    check_std("frontend", table, kg)
    check(sorted(table) == [0, 1, 2, 3, 4, 5] and
          all(is_socket(table[fd]) for fd in (3, 4, 5)),
          f"frontend: {table}, want 0-2, the listener, the broker link "
          f"and the control socket")


def check_broker(table, kg):
    check_std("broker", table, kg)
    check(sorted(table) == [0, 1, 2, 3] and is_socket(table[3]),
          f"broker: {table}, want 0-2 and the link to the frontend")


def case_only_documented_descriptors(st):
    read_end, write_end = os.pipe()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as leak:
            leak.connect(st.root_listener)
            leaked = {os.readlink(f"/proc/self/fd/{fd}")
                      for fd in (read_end, leak.fileno())}
            with Kickgated(st.broker,
                           pass_fds=(read_end, leak.fileno())) as kg:
                pids = kg.pids()
                # A role's descriptors are final once it is sandboxed.
                wait_filtered(pids.values())
                tables = {"supervisor": fd_table(kg.supervisor),
                          **{r: fd_table(p) for r, p in pids.items()}}
                for role, table in tables.items():
                    held = leaked & set(table.values())
                    check(not held, f"{role} holds inherited {held}")
                check_frontend(tables["frontend"], kg)
                check_broker(tables["broker"], kg)
                check_supervisor(tables["supervisor"],
                                 tables["frontend"][3], kg)
    finally:
        os.close(read_end)
        os.close(write_end)


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return stat[stat.rindex(")") + 2]


def case_no_user_signals_kickgated(st):
    with Kickgated(st.broker) as kg:
        pids = {"supervisor": kg.supervisor, **kg.pids()}
        for role, pid in pids.items():
            res = subprocess.run(
                ["setpriv", "--reuid", str(st.other.pw_uid), "--regid",
                 str(st.other.pw_gid), "--clear-groups", "--",
                 "/bin/kill", "-STOP", str(pid)],
                capture_output=True, text=True, timeout=CMD_TIMEOUT,
                check=False)
            check(res.returncode != 0 and
                  "Operation not permitted" in res.stderr,
                  f"kill -STOP {role} {pid} as {st.other.pw_name}: "
                  f"{res.returncode} {res.stderr!r}")
            check(state(pid) != "T", f"{role} {pid} was stopped")
        check(kg.running(), f"a daemon process died: {kg.log_text()}")


def check_refused(st, user, message, hint=ACCOUNT_HINT):
    conf = os.path.join(st.dir, "account.conf")
    with open(conf, "w") as f:
        f.write(f"[broker]\nfrontend_user = {user}\n")
    os.chmod(conf, 0o600)
    res = subprocess.run([os.path.join(build_dir(), "kickgated"), "-t",
                          "-c", conf], capture_output=True, text=True,
                         timeout=CMD_TIMEOUT, check=False)
    want = f"{conf}:2: frontend_user: {message}{hint}\n"
    check((res.returncode, res.stderr) == (EXIT_CONFIG, want),
          f"kickgated -t with frontend_user = {user}: {res.returncode} "
          f"{res.stderr!r}, want {want!r}")


def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().rstrip("\n")


def case_unfit_accounts_refused(st):
    check_refused(st, "nobody", "'nobody' is the nobody account, shared by "
                  "other daemons and by unmapped ids")
    check_refused(st, "root", "'root' has uid or gid 0")
    with subprocess.Popen(["setpriv", "--reuid", str(st.busy.pw_uid),
                           "--regid", str(st.busy.pw_gid), "--clear-groups",
                           "--", "sleep", str(CMD_TIMEOUT)]) as sleeper:
        try:
            check(wait_until(lambda: comm(sleeper.pid) == "sleep",
                             CMD_TIMEOUT), "sleep did not start")
            check_refused(st, st.busy.pw_name,
                          f"'{st.busy.pw_name}' (uid {st.busy.pw_uid}) runs "
                          f"other processes, such as pid {sleeper.pid} "
                          f"(sleep)")
        finally:
            sleeper.kill()


def case_missing_account_refused(st):
    """The hint names the missing account, which is what to create."""
    name = "kgt-no-such-user"
    check_refused(st, name, f"no account '{name}'",
                  ACCOUNT_HINT.replace("_kickgate", name))


@contextlib.contextmanager
def setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        accounts = stack.enter_context(Accounts())
        st.other = accounts.user("oth")
        st.busy = accounts.user("busy")
        st.dir = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="kgi", dir="/tmp"))
        os.chmod(st.dir, 0o755)
        fake = stack.enter_context(FakeAnvil(st.dir, "fake", DUMP))
        st.broker = {"anvil": fake.path}
        private = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="kgp", dir="/tmp"))
        os.chmod(private, 0o700)
        listener = stack.enter_context(
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        st.root_listener = os.path.join(private, "root.sock")
        listener.bind(st.root_listener)
        listener.listen(4)
        yield st


CASES = [
    ("each process holds only its documented descriptors",
     case_only_documented_descriptors),
    ("no other user can stop a kickgated process",
     case_no_user_signals_kickgated),
    ("nobody, root and a busy account are refused",
     case_unfit_accounts_refused),
    ("a missing account is refused", case_missing_account_refused),
]

if __name__ == "__main__":
    main((CASES, setup))
