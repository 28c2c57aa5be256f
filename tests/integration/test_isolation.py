#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What of kickgated other processes can reach (SECURITY.md, "Descriptors"
and "The frontend's account").

Descriptors: kickgated is started with two more open than a shell's
standard three, a pipe and a socket connected to a listener of this test
in a directory only root may enter. No kickgated process may hold either;
each holds exactly the descriptors SECURITY.md lists for its role.

One client, one frontend: while two clients, of two uids, are connected,
each frontend holds exactly one client connection, its own (the peer of
its fd 3 is that client's socket), and never the listener; so no
frontend can speak on another client's connection, or replay a request
on one. Once the clients are gone no frontend remains.

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
from kgtest.daemon import ACCOUNT_HINT, Kickgated, _children, build_dir
from kgtest.env import Accounts, wait_until
from kgtest.fakeanvil import FakeAnvil
from kgtest.runner import check, main

DUMP = "imap/192.0.2.10/alice\t4242\t1\n\n"
EXIT_CONFIG = 78
CMD_TIMEOUT = 30
WAIT = 5
# Frontends kept exec'd and confined ahead of their client (SECURITY.md,
# "One frontend per connection").
POOL = 4


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
    """Idle: the listener, the binary it execs frontends from, its
    signalfd, the broker's channel and one socket per pooled frontend."""
    check_std("supervisor", table, kg)
    check(table.get(3) == listener,
          f"supervisor: fd 3 is {table.get(3)}, not the listener "
          f"{listener}")
    rest = sorted(t if not is_socket(t) else "socket"
                  for fd, t in table.items() if fd > 3)
    exe = os.path.realpath(os.path.join(build_dir(), "kickgated"))
    want = [exe, "anon_inode:[signalfd]", "socket"] + ["socket"] * POOL
    check(rest == sorted(want),
          f"supervisor: beyond 0-3 {rest}, want the kickgated binary, its "
          f"signalfd, the broker's channel and {POOL} pooled frontends' "
          f"sockets ({table})")


def check_frontend(table, kg):
    check_std("frontend", table, kg)
    check(sorted(table) == [0, 1, 2, 3, 4] and
          all(is_socket(table[fd]) for fd in (3, 4)),
          f"frontend: {table}, want 0-2, its client's connection and its "
          f"socket to the supervisor")


def check_idle_frontend(table, kg):
    check_std("pooled frontend", table, kg)
    check(sorted(table) == [0, 1, 2, 4] and is_socket(table[4]),
          f"pooled frontend: {table}, want 0-2 and its socket to the "
          f"supervisor, no client")


def full_pool(kg):
    """The pooled frontends, once there are POOL of them, confined."""
    check(wait_until(lambda: len(kg.idle_frontends()) == POOL, WAIT),
          f"pooled frontends {kg.idle_frontends()}, want {POOL}")
    idle = kg.idle_frontends()
    wait_filtered(idle)
    return idle


def check_broker(table, kg):
    check_std("broker", table, kg)
    check(sorted(table) == [0, 1, 2, 3] and is_socket(table[3]),
          f"broker: {table}, want 0-2 and the channel from the supervisor")


def inode(target):
    return int(target[len("socket:["):-1])


def unix_peers():
    """{socket inode: peer socket inode} of every connected AF_UNIX
    socket, as ss reads them from the kernel."""
    res = subprocess.run(["ss", "-xHa"], capture_output=True, text=True,
                         timeout=CMD_TIMEOUT, check=True)
    peers = {}
    for line in res.stdout.splitlines():
        f = line.split()
        # Netid State Recv-Q Send-Q Local Port Peer Port
        if len(f) >= 8 and f[5].isdigit() and f[7].isdigit():
            peers[int(f[5])] = int(f[7])
    return peers


@contextlib.contextmanager
def client_as(kg, user):
    """A connection to kg made by a process running as user, which sends
    nothing; yields the inode of its socket."""
    code = ("import os, socket, sys\n"
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
            f"s.connect({kg.sock!r})\n"
            "print(os.fstat(s.fileno()).st_ino, flush=True)\n"
            "sys.stdin.read()\n")
    with subprocess.Popen(["setpriv", "--reuid", str(user.pw_uid), "--regid",
                           str(user.pw_gid), "--clear-groups", "--",
                           "python3", "-c", code], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            yield int(proc.stdout.readline())
        finally:
            proc.stdin.close()
            proc.wait(CMD_TIMEOUT)


def case_one_client_per_frontend(st):
    # A caller no rule names gets no frontend: it is refused as it
    # connects.
    rules = {"clients": {"principals": f"user:{st.other.pw_name} "
                                       f"user:{st.busy.pw_name}"}}
    with Kickgated(st.broker, rules=rules) as kg:
        listener = fd_table(kg.supervisor)[3]
        with client_as(kg, st.other) as one, client_as(kg, st.busy) as two:
            check(wait_until(lambda: len(kg.frontends()) == 2, WAIT),
                  f"frontends {kg.frontends()} for two clients")
            peers = unix_peers()
            served = []
            for pid in kg.frontends():
                table = fd_table(pid)
                check_frontend(table, kg)
                check(listener not in table.values(),
                      f"frontend {pid} holds the listener")
                served.append(peers.get(inode(table[3])))
            check(sorted(served) == sorted([one, two]),
                  f"the frontends serve the sockets {served}, the clients "
                  f"are {one} and {two}")
        check(wait_until(lambda: not kg.frontends(), WAIT),
              f"frontends {kg.frontends()} outlived their clients")
        idle = full_pool(kg)
        check(sorted(_children(kg.supervisor)) ==
              sorted([kg.pids()["broker"], *idle]),
              f"children {_children(kg.supervisor)} of the idle daemon: "
              f"want the broker and {POOL} pooled frontends")
        for pid in idle:
            check_idle_frontend(fd_table(pid), kg)


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
                idle = full_pool(kg)
                tables = {"supervisor": fd_table(kg.supervisor),
                          "pooled frontend": fd_table(idle[0]),
                          **{r: fd_table(p) for r, p in pids.items()}}
                with socket.socket(socket.AF_UNIX,
                                   socket.SOCK_SEQPACKET) as client:
                    client.connect(kg.sock)
                    check(wait_until(lambda: len(kg.frontends()) == 1,
                                     WAIT), "no frontend for a client")
                    # Forked, it still holds the supervisor's descriptors
                    # until it is exec'd and has closed the rest.
                    wait_filtered(kg.frontends())
                    tables["frontend"] = fd_table(kg.frontends()[0])
                for role, table in tables.items():
                    held = leaked & set(table.values())
                    check(not held, f"{role} holds inherited {held}")
                check_frontend(tables["frontend"], kg)
                check_idle_frontend(tables["pooled frontend"], kg)
                check_broker(tables["broker"], kg)
                check_supervisor(tables["supervisor"],
                                 os.readlink(f"/proc/{kg.supervisor}/fd/3"),
                                 kg)
    finally:
        os.close(read_end)
        os.close(write_end)


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return stat[stat.rindex(")") + 2]


def case_no_user_signals_kickgated(st):
    with Kickgated(st.broker) as kg, \
            socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as client:
        client.connect(kg.sock)
        check(wait_until(lambda: len(kg.frontends()) == 1, WAIT),
              "no frontend for a client")
        pids = {"supervisor": kg.supervisor, **kg.pids(),
                "frontend": kg.frontends()[0],
                "pooled frontend": full_pool(kg)[0]}
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
    ("each frontend holds its own client's connection only",
     case_one_client_per_frontend),
    ("no other user can stop a kickgated process",
     case_no_user_signals_kickgated),
    ("nobody, root and a busy account are refused",
     case_unfit_accounts_refused),
    ("a missing account is refused", case_missing_account_refused),
]

if __name__ == "__main__":
    main((CASES, setup))
