#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The listening socket cannot be used to change another file's mode.

A local user who can write to the directory that holds the listening
socket races kickgated's start-up: whenever a socket appears at the
listen path, it replaces it by a symlink to a root-owned 0600 file. A start that set
the socket's mode through the path (chmod after bind) would follow the
link and make that file 0666. kickgated refuses such a directory before
it creates anything, and sets the mode through the umask at bind, so the
file keeps its mode and owner over every start; the racer itself keeps
running, which shows it really raced.

The same holds in a root-owned sticky directory such as /tmp, where the
user may add links but not replace root's socket: every start either
serves or is refused, and the file is unchanged.
"""

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import types

from kgtest import env
from kgtest.daemon import build_dir
from kgtest.runner import Runner, check

STARTS = 20
START_WAIT = 3.0
STOP_TIMEOUT = 10
RACER_LIFETIME = 120
ANVIL = "/nonexistent/anvil"

# Runs as the unprivileged user: whenever a socket appears at the listen
# path (kickgated has just bound it), it is replaced by a symlink to the
# target at once; for a bounded time.
RACER = r"""
import os, stat, sys, time
path, target, lifetime = sys.argv[1], sys.argv[2], float(sys.argv[3])
end = time.monotonic() + lifetime
while time.monotonic() < end:
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
            os.symlink(target, path)
    except OSError:
        pass
"""


def write_conf(st, listen):
    conf = os.path.join(st.tmp, "kickgated.conf")
    with open(conf, "w") as f:
        f.write(f"[broker]\nlisten = {listen}\nanvil = {ANVIL}\n"
                f"audit = stderr\nlisten_mode = 0666\n"
                f"frontend_user = {st.frontend.pw_name}\n")
    os.chmod(conf, 0o600)
    return conf


def start_once(conf, log):
    """One start: refused at once, or listening within START_WAIT and then
    stopped. Returns the exit code, or None when it served."""
    proc = subprocess.Popen([os.path.join(build_dir(), "kickgated"), "-F",
                             "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log)
    try:
        return proc.wait(START_WAIT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
        return None


@contextlib.contextmanager
def racer(user, path, target):
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
         "--clear-groups", "--", sys.executable, "-c", RACER, path, target,
         str(RACER_LIFETIME)], stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(STOP_TIMEOUT)


def race(st, listen_dir, want_served):
    """STARTS starts of kickgated against the racer; the target keeps
    mode 0600 and owner root after each. want_served: whether some start
    may serve (sticky directory) or none may (writable directory)."""
    listen = os.path.join(listen_dir, f"kgrace-{os.getpid()}.sock")
    conf = write_conf(st, listen)
    outcomes = []
    log_path = os.path.join(st.tmp, "kickgated.log")
    try:
        with open(log_path, "w") as log, \
                racer(st.user, listen, st.target) as proc:
            for _ in range(STARTS):
                # Each start begins with a free path, as at boot.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(listen)
                outcomes.append(start_once(conf, log))
                mode = os.lstat(st.target)
                check(stat.S_IMODE(mode.st_mode) == 0o600 and
                      mode.st_uid == 0,
                      f"target now {stat.filemode(mode.st_mode)} uid "
                      f"{mode.st_uid} after {len(outcomes)} starts")
            check(proc.poll() is None, "the racer stopped early")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(listen)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(conf)
    if not want_served:
        check(all(code == 1 for code in outcomes),
              f"outcomes {outcomes}: a start went ahead")
        with open(log_path) as f:
            text = f.read()
        check(f"listen directory {listen_dir} must be a directory owned by "
              "root and not writable by group or others" in text,
              f"log {text[-400:]!r}")
    return outcomes


def case_user_writable_directory(st):
    d = os.path.join(st.tmp, "open")
    os.mkdir(d)
    os.chown(d, st.user.pw_uid, st.user.pw_gid)
    os.chmod(d, 0o755)
    race(st, d, want_served=False)


def case_sticky_directory(st):
    """/tmp: the user cannot replace root's socket there, so every start
    serves."""
    outcomes = race(st, "/tmp", want_served=True)
    check(all(code is None for code in outcomes), f"outcomes {outcomes}")


@contextlib.contextmanager
def setup():
    with env.Accounts() as accounts, \
            tempfile.TemporaryDirectory(prefix="kgq", dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)
        secret = os.path.join(tmp, "secret")
        os.mkdir(secret, 0o700)
        target = os.path.join(secret, "target")
        with open(target, "w") as f:
            f.write("root's\n")
        os.chmod(target, 0o600)
        # The racer must reach the target's path to make a link to it,
        # not read it: the directory is traversable, the file is not.
        os.chmod(secret, 0o711)
        yield types.SimpleNamespace(tmp=tmp, target=target,
                                    user=accounts.user("race"),
                                    frontend=accounts.user("fe"))


def main():
    env.require_root_and_dovecot()
    runner = Runner()
    runner.group([
        ("user_writable_directory_refused_and_file_untouched",
         case_user_writable_directory),
        ("sticky_directory_race_leaves_file_untouched",
         case_sticky_directory),
    ], setup)
    sys.exit(runner.finish())


if __name__ == "__main__":
    main()
