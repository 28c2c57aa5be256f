#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgated's start-up contract (kickgated(8)).

-t checks a configuration and prints each error as FILE:LINE: message,
exiting 78 (EX_CONFIG) as a start with that configuration would; a
configuration with errors keeps the daemon from starting. The listening
socket replaces a stale socket file but never anything else and never a
live socket (a second start exits 73 and the running daemon keeps
serving), gets listen_mode, or comes from systemd socket activation,
which must pass exactly one SOCK_SEQPACKET socket. Missing directories
above it are created root-owned 0755; one that others could write to is
refused. Only root may start the daemon, and
without -F it detaches and goes on serving.

Every case writes its configuration into a directory of its own. The
daemons read a fake anvil (tests/tools/fake_anvil.py) whose dump holds one
session, so `kickgate who` through a socket shows that a daemon answered
on it. Nothing is kicked.
"""

import collections
import contextlib
import os
import re
import select
import signal
import socket
import stat
import subprocess
import tempfile

from kgtest.daemon import _children, build_dir
from kgtest.env import Accounts, wait_until
from kgtest.fakeanvil import FakeAnvil
from kgtest.runner import check, main

EXIT_FAILURE = 1
EXIT_BUSY = 73
EXIT_CONFIG = 78
START_TIMEOUT = 15
# Frontends kept ready ahead of their client (SECURITY.md).
POOL = 4
STOP_TIMEOUT = 10
CMD_TIMEOUT = 30
NOBODY = 65534
DUMP = "imap/192.0.2.10/alice\t4242\t1\n\n"
WHO_OUT = "username proto pid ip\nalice imap 4242 192.0.2.10\n"
ACTIVATION_TWO = "socket activation: expected one socket, got LISTEN_FDS=2\n"
ACTIVATION_STREAM = ("socket activation: the passed socket is not a "
                     "listening AF_UNIX SOCK_SEQPACKET socket\n")

GOOD_CONF = """\
[broker]
listen = {listen}
anvil = {anvil}
frontend_user = {frontend}
audit = stderr
{extra}"""

# One error of each kind, each on a line of its own.
BAD_CONF = """\
[broker]
listen = {listen}
anvil = {anvil}
bogus = 1
[frobnicate]
[rule a]
principals = uid:1 user:kg-no-such-user
networks = 10.0.0.0/33
instances = nowhere
[rule a]
principals = uid:2
"""
BAD_ERRORS = [
    (4, "unknown key 'bogus' in [broker]"),
    (5, "unknown section [frobnicate]"),
    (7, "principals: unknown user 'kg-no-such-user'"),
    (8, "networks: network '10.0.0.0/33'"),
    (9, "instances: instance 'nowhere' is not defined"),
    (10, "duplicate rule 'a'"),
]


class Case:
    """A case's directory: its configuration, sockets and daemon log."""

    def __init__(self, world, path):
        self.anvil = world.anvil
        self.frontend = world.frontend
        self.dir = path
        self.conf = os.path.join(path, "kickgated.conf")
        self.listen = os.path.join(path, "kg.sock")
        self.log = os.path.join(path, "kickgated.log")

    def sock(self, name):
        return os.path.join(self.dir, name)

    def write_conf(self, template=GOOD_CONF, extra=""):
        """Root's file, readable by all: nobody must get as far as the
        root check."""
        with open(self.conf, "w") as f:
            f.write(template.format(listen=self.listen, anvil=self.anvil,
                                    frontend=self.frontend, extra=extra))
        os.chmod(self.conf, 0o644)
        return self.conf

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()


World = collections.namedtuple("World", "anvil frontend")


@contextlib.contextmanager
def setup():
    """The fake anvil and a frontend account that all cases share: one
    daemon runs at a time, or a second one next to the first, whose
    frontend kickgated counts as its own."""
    with tempfile.TemporaryDirectory(prefix="kgs", dir="/tmp") as tmp, \
            FakeAnvil(tmp, "fake", DUMP) as fake, Accounts() as acc:
        yield World(fake.path, acc.user("fe").pw_name)


def with_dir(func):
    """Runs func(case) in a fresh world-traversable directory."""
    def case(world):
        with tempfile.TemporaryDirectory(prefix="kgs", dir="/tmp") as path:
            os.chmod(path, 0o755)
            func(Case(world, path))

    return case


def run(argv):
    return subprocess.run(argv, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True,
                          timeout=CMD_TIMEOUT, check=False)


def kickgated(*args):
    return [os.path.join(build_dir(), "kickgated"), *args]


def check_serves(sock):
    res = run([os.path.join(build_dir(), "kickgate"), "who", "-S", sock,
               "-1"])
    check((res.returncode, res.stdout) == (0, WHO_OUT),
          f"who through {sock}: exit {res.returncode}, {res.stdout!r} "
          f"{res.stderr!r}")


def connectable(path, kind=socket.SOCK_SEQPACKET):
    with socket.socket(socket.AF_UNIX, kind) as s:
        try:
            s.connect(path)
        except OSError:
            return False
        return True


def daemon_pid(conf):
    """The detached supervisor started with -c conf: the kickgated process
    for that config whose parent is not one too (the broker's is). The socket cannot say: its listen() ran before the
    daemon detached."""
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if argv[0].endswith(b"kickgated") and conf.encode() in argv:
            procs[int(entry)] = ppid
    supervisors = [pid for pid, ppid in procs.items() if ppid not in procs]
    if len(supervisors) != 1:
        raise AssertionError(f"kickgated processes for {conf}: {procs}")
    return supervisors[0]


def _pidfd(pid):
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def _signal(pidfd, sig):
    """A process that has exited and been reaped needs no signal."""
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        pass


def stop_daemon(supervisor):
    """SIGTERM to the supervisor; it stops its children. All are held by
    pidfds, so no pid can be reused meanwhile; what has not exited after
    STOP_TIMEOUT gets SIGKILL."""
    fds = [fd for fd in [_pidfd(supervisor)] if fd is not None]
    if fds:
        fds += [fd for fd in map(_pidfd, _children(supervisor))
                if fd is not None]
        _signal(fds[0], signal.SIGTERM)
    for fd in fds:
        if not select.select([fd], [], [], STOP_TIMEOUT)[0]:
            _signal(fd, signal.SIGKILL)
            select.select([fd], [], [], STOP_TIMEOUT)
        os.close(fd)


@contextlib.contextmanager
def daemon(c, argv, sock, kind=socket.SOCK_SEQPACKET):
    """argv started with its output in c.log; yields the process once a
    connection of kind to sock succeeds, or once it exits; stops it on
    leaving. Behind systemd-socket-activate that first connection is what
    starts the daemon."""
    with open(c.log, "w") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log)
    try:
        wait_until(lambda: proc.poll() is not None or
                   connectable(sock, kind), START_TIMEOUT)
        yield proc
    finally:
        if proc.poll() is None:
            stop_daemon(proc.pid)
        proc.wait(STOP_TIMEOUT)


def check_error_lines(c, stderr):
    """stderr is one CONF:LINE: message line per error in BAD_ERRORS."""
    pattern = re.compile(re.escape(c.conf) + r":(\d+): (.*)")
    got = []
    for line in stderr.splitlines():
        m = pattern.fullmatch(line)
        check(m is not None, f"not a FILE:LINE: message line: {line!r}")
        got.append((int(m.group(1)), m.group(2)))
    got.sort()
    check(len(got) == len(BAD_ERRORS) and
          all(line == want_line and want in msg
              for (line, msg), (want_line, want) in zip(got, BAD_ERRORS)),
          f"errors {got}, expected {BAD_ERRORS}")


def case_check_good_config(c):
    conf = c.write_conf()
    res = run(kickgated("-t", "-c", conf))
    check((res.returncode, res.stdout, res.stderr) == (0, f"{conf}: ok\n", ""),
          f"exit {res.returncode}, {res.stdout!r}, {res.stderr!r}")
    check(not os.path.lexists(c.listen), "-t created the socket")


def case_check_bad_config(c):
    res = run(kickgated("-t", "-c", c.write_conf(BAD_CONF)))
    check(res.returncode == EXIT_CONFIG and res.stdout == "",
          f"exit {res.returncode}, stdout {res.stdout!r}")
    check_error_lines(c, res.stderr)


def case_bad_config_refuses_to_start(c):
    res = run(kickgated("-F", "-c", c.write_conf(BAD_CONF)))
    check(res.returncode == EXIT_CONFIG, f"exit {res.returncode}, "
                                         f"{res.stderr!r}")
    check_error_lines(c, res.stderr)
    check(not os.path.lexists(c.listen), "the socket was created")


def case_stale_socket_replaced(c):
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as stale:
        stale.bind(c.listen)
    # A second name keeps the stale inode, so a new socket cannot get its
    # number.
    os.link(c.listen, c.sock("stale.sock"))
    before = os.lstat(c.listen).st_ino
    check(not connectable(c.listen), "the stale socket accepts")
    with daemon(c, kickgated("-F", "-c", c.write_conf()), c.listen) as proc:
        check(proc.poll() is None, f"exit {proc.poll()}: {c.log_text()!r}")
        check(os.lstat(c.listen).st_ino != before, "socket not replaced")
        check_serves(c.listen)


def case_regular_file_at_listen_kept(c):
    with open(c.listen, "w") as f:
        f.write("keep\n")
    res = run(kickgated("-F", "-c", c.write_conf()))
    check(res.returncode == EXIT_FAILURE, f"exit {res.returncode}")
    check(f"listen path {c.listen} exists and is not a socket" in res.stderr,
          f"stderr {res.stderr!r}")
    check(stat.S_ISREG(os.lstat(c.listen).st_mode), "the file was replaced")
    with open(c.listen) as f:
        check(f.read() == "keep\n", "the file was changed")


def case_listen_mode_applied(c):
    conf = c.write_conf(extra="listen_mode = 0660\n")
    with daemon(c, kickgated("-F", "-c", conf), c.listen) as proc:
        check(proc.poll() is None, f"exit {proc.poll()}: {c.log_text()!r}")
        mode = os.lstat(c.listen).st_mode
        check(stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660,
              f"socket mode {stat.filemode(mode)}")


def activate(*options, sockets):
    """systemd-socket-activate, passing one listening socket per path in
    sockets; it execs the command at the first connection."""
    argv = ["systemd-socket-activate", *options]
    for path in sockets:
        argv += ["-l", path]
    return argv


def case_socket_activation_serves(c):
    sock = c.sock("activated.sock")
    argv = activate("--seqpacket", sockets=[sock]) + \
        kickgated("-F", "-c", c.write_conf())
    with daemon(c, argv, sock) as proc:
        check_serves(sock)
        check(proc.poll() is None, f"exit {proc.poll()}: {c.log_text()!r}")
        check(not os.path.lexists(c.listen),
              "the configured listen path was created")


def activation_refused_case(options, names, kind, message):
    """The sockets systemd passes are not exactly one SOCK_SEQPACKET
    listener: the daemon exits 1 at its first start and says why."""
    def case(c):
        sockets = [c.sock(name) for name in names]
        argv = activate(*options, sockets=sockets) + \
            kickgated("-F", "-c", c.write_conf())
        with daemon(c, argv, sockets[0], kind) as proc:
            code = proc.wait(START_TIMEOUT)
            check(code == EXIT_FAILURE, f"exit {code}: {c.log_text()!r}")
            check(message in c.log_text(),
                  f"log {c.log_text()!r}")
            check(not os.path.lexists(c.listen),
                  "the configured listen path was created")

    return case


def case_not_root_refused(c):
    res = run(["setpriv", f"--reuid={NOBODY}", "--"] +
              kickgated("-F", "-c", c.write_conf()))
    check((res.returncode, res.stderr) ==
          (EXIT_FAILURE, "kickgated: must be started as root\n"),
          f"exit {res.returncode}, {res.stderr!r}")
    check(not os.path.lexists(c.listen), "the socket was created")


def case_detaches_and_serves(c):
    res = run(kickgated("-c", c.write_conf()))
    check((res.returncode, res.stdout, res.stderr) == (0, "", ""),
          f"exit {res.returncode}, {res.stdout!r}, {res.stderr!r}")
    check(wait_until(lambda: connectable(c.listen), START_TIMEOUT),
          "the detached daemon does not listen")
    supervisor = daemon_pid(c.conf)
    try:
        exe = os.readlink(f"/proc/{supervisor}/exe")
        check(os.path.samefile(exe, kickgated()[0]),
              f"the socket's listener {supervisor} is {exe}")
        check(os.getsid(supervisor) != os.getsid(0),
              "the daemon is still in the starter's session")
        # Idle: the broker and the pool of frontends waiting for a
        # client; a frontend lives for one connection (that of
        # connectable's probe, too).
        check(wait_until(lambda: len(_children(supervisor)) == 1 + POOL,
                         START_TIMEOUT),
              f"supervisor {supervisor} has children "
              f"{_children(supervisor)}")
        check_serves(c.listen)
        check(wait_until(lambda: len(_children(supervisor)) == 1 + POOL,
                         START_TIMEOUT),
              f"a frontend outlived its request: children "
              f"{_children(supervisor)}")
    finally:
        stop_daemon(supervisor)


def check_second_start_refused(c, conf):
    """kickgated -F with the same listen path: exit 73, one line naming
    the path, the socket file untouched."""
    before = os.lstat(c.listen).st_ino
    res = run(kickgated("-F", "-c", conf))
    check(res.returncode == EXIT_BUSY and
          f"{c.listen} is in use: another kickgated, or kickgated.socket, "
          "is listening there; not taking it over" in res.stderr,
          f"second start: exit {res.returncode}, {res.stderr!r}")
    check(os.lstat(c.listen).st_ino == before, "the socket was replaced")


def case_second_start_leaves_live_socket(c):
    conf = c.write_conf()
    with daemon(c, kickgated("-F", "-c", conf), c.listen) as proc:
        check(proc.poll() is None, f"exit {proc.poll()}: {c.log_text()!r}")
        check_second_start_refused(c, conf)
        check_serves(c.listen)
        check(proc.poll() is None, "the first daemon stopped")


def case_second_start_leaves_activated_socket(c):
    """The socket unit holds the path: before the first connection
    starts the daemon, and while the activated daemon runs."""
    conf = c.write_conf()
    argv = activate("--seqpacket", sockets=[c.listen]) + \
        kickgated("-F", "-c", conf)
    with open(c.log, "w") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log)
    try:
        check(wait_until(lambda: os.path.exists(c.listen), START_TIMEOUT),
              "the socket unit did not create the socket")
        check_second_start_refused(c, conf)
        check_serves(c.listen)
        check_second_start_refused(c, conf)
        check_serves(c.listen)
    finally:
        if proc.poll() is None:
            stop_daemon(proc.pid)
        proc.wait(STOP_TIMEOUT)


def case_missing_directories_created(c):
    """Made root's and 0755 whatever the umask (systemd's UMask=0077),
    so that callers can reach the socket."""
    top = c.sock("run")
    c.listen = os.path.join(top, "kickgate", "kg.sock")
    conf = c.write_conf()
    with open(c.log, "w") as log:
        proc = subprocess.Popen(kickgated("-F", "-c", conf),
                                stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, preexec_fn=lambda: os.umask(0o77))
    try:
        wait_until(lambda: proc.poll() is not None or
                   connectable(c.listen), START_TIMEOUT)
        check(proc.poll() is None, f"exit {proc.poll()}: {c.log_text()!r}")
        for d in (top, os.path.dirname(c.listen)):
            st = os.lstat(d)
            check(stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and
                  stat.S_IMODE(st.st_mode) == 0o755,
                  f"{d}: uid {st.st_uid}, mode {stat.filemode(st.st_mode)}")
        check_serves(c.listen)
    finally:
        if proc.poll() is None:
            stop_daemon(proc.pid)
        proc.wait(STOP_TIMEOUT)


def unsafe_dir_case(mode, uid):
    """A directory on the listen path that someone else could change:
    refused before anything is created in it."""
    def case(c):
        d = c.sock("open")
        os.mkdir(d)
        os.chmod(d, mode)
        os.chown(d, uid, -1)
        c.listen = os.path.join(d, "kg.sock")
        res = run(kickgated("-F", "-c", c.write_conf()))
        check(res.returncode == EXIT_FAILURE and
              f"listen directory {d} must be a directory owned by root and "
              "not writable by group or others" in res.stderr,
              f"exit {res.returncode}, {res.stderr!r}")
        check(os.listdir(d) == [], f"{d} holds {os.listdir(d)}")

    return case


CASES = [(name, with_dir(func)) for name, func in [
    ("check_good_config_prints_ok", case_check_good_config),
    ("check_bad_config_prints_each_error_at_its_line",
     case_check_bad_config),
    ("bad_config_refuses_to_start", case_bad_config_refuses_to_start),
    ("stale_socket_replaced_and_served", case_stale_socket_replaced),
    ("regular_file_at_listen_kept_and_start_fails",
     case_regular_file_at_listen_kept),
    ("listen_mode_applied_to_the_socket", case_listen_mode_applied),
    ("second_start_exits_73_and_first_keeps_serving",
     case_second_start_leaves_live_socket),
    ("second_start_leaves_socket_activated_daemon_alone",
     case_second_start_leaves_activated_socket),
    ("missing_listen_directories_created_root_0755",
     case_missing_directories_created),
    ("listen_directory_writable_by_others_refused",
     unsafe_dir_case(0o777, 0)),
    ("listen_directory_writable_by_group_refused",
     unsafe_dir_case(0o775, 0)),
    ("listen_directory_owned_by_another_user_refused",
     unsafe_dir_case(0o755, NOBODY)),
    ("socket_activation_serves_the_passed_socket",
     case_socket_activation_serves),
    ("socket_activation_of_two_sockets_refused",
     activation_refused_case(["--seqpacket"], ["a1.sock", "a2.sock"],
                             socket.SOCK_SEQPACKET, ACTIVATION_TWO)),
    ("socket_activation_of_a_stream_socket_refused",
     activation_refused_case([], ["stream.sock"], socket.SOCK_STREAM,
                             ACTIVATION_STREAM)),
    ("not_root_refused", case_not_root_refused),
    ("without_F_detaches_and_serves", case_detaches_and_serves),
]]


if __name__ == "__main__":
    main((CASES, setup))
