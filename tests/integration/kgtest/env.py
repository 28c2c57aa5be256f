# SPDX-License-Identifier: MIT
"""Test environment: privilege checks, throwaway Unix accounts, bounded waits.

Integration tests change the system (they create users and run a mail
server), so they need root. Without it they skip with meson's code 77,
except in CI, where a skipped integration test would hide a broken setup
and therefore fails.
"""

import atexit
import grp
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time

SKIP_EXIT = 77
PREFIX = "kgt"
# useradd and groupadd refuse names longer than 32 bytes.
NAME_MAX = 32
# useradd/groupadd/userdel/groupdel exit codes meaning "could not lock or
# update /etc/passwd or /etc/group": another test creating accounts at the
# same moment. Retried a few times, never forever.
_LOCK_EXIT_CODES = (1, 10)
_ACCOUNT_TRIES = 5
_ACCOUNT_CMD_TIMEOUT = 30


def in_ci():
    """True under CI=true, where nothing a test needs may be missing."""
    return os.environ.get("CI") == "true"


def skip_or_fail(reason):
    """Ends the test: a skip (77) locally, a failure (1) in CI."""
    if in_ci():
        print(f"FAIL: {reason} (skips are failures in CI)", flush=True)
        sys.exit(1)
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP_EXIT)


def require_root():
    """Skips (or fails in CI) unless this runs as root.

    Also turns SIGTERM (meson's timeout) into SystemExit so that every
    finally block and atexit handler still removes what the test created.
    """
    if os.geteuid() != 0:
        skip_or_fail("integration tests need root (they create users "
                     "and run Dovecot)")
    signal.signal(signal.SIGTERM, _exit_on_signal)


def require_root_and_dovecot():
    """require_root(), and skips (or fails in CI) unless Dovecot is
    installed."""
    require_root()
    for prog in ("dovecot", "doveadm"):
        if shutil.which(prog) is None:
            skip_or_fail(f"'{prog}' not found in PATH (install "
                         "dovecot-core, dovecot-imapd, dovecot-pop3d)")


def _exit_on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def wait_until(pred, timeout, interval=0.05):
    """Polls pred() until it returns a true value or timeout seconds pass.

    Returns that value, or the last false value on timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def stop_process(proc, timeout):
    """Ends a child: SIGTERM, then SIGKILL if it outlives timeout seconds;
    reaps it either way. Popen ignores signals to a process already
    reaped."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def unique_name(purpose):
    """Returns a fresh account name: PREFIX + purpose + random hex."""
    name = f"{PREFIX}{purpose}{secrets.token_hex(3)}"
    if len(name) > NAME_MAX:
        raise ValueError(f"account name too long: {name}")
    return name


def _run_account_cmd(argv):
    for attempt in range(_ACCOUNT_TRIES):
        res = subprocess.run(argv, capture_output=True, text=True,
                             timeout=_ACCOUNT_CMD_TIMEOUT, check=False)
        if res.returncode == 0:
            return
        if res.returncode not in _LOCK_EXIT_CODES:
            break
        time.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"{' '.join(argv)} failed ({res.returncode}): "
                       f"{res.stderr.strip()}")


class Service:
    """A context manager around start() and stop(): leaving the with block
    stops the service, whatever happened inside it."""

    def start(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


class Accounts:
    """Creates system users and groups and removes them again.

    Removal happens on close(), on leaving a with block, and at interpreter
    exit as a last resort, so an exception in a test leaves nothing behind.
    All names start with PREFIX. Home directories are never created.
    """

    def __init__(self):
        self._users = []
        self._groups = []
        atexit.register(self.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def group(self, purpose):
        """Creates a system group; returns its grp entry."""
        name = unique_name(purpose)
        _run_account_cmd(["groupadd", "--system", name])
        self._groups.append(name)
        return grp.getgrnam(name)

    def user(self, purpose, groups=()):
        """Creates a system user with its own primary group.

        groups: names of existing groups to add it to. Returns its pwd
        entry.
        """
        name = unique_name(purpose)
        argv = ["useradd", "--system", "--no-create-home", "--user-group",
                "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"]
        if groups:
            argv += ["--groups", ",".join(groups)]
        _run_account_cmd(argv + [name])
        self._users.append(name)
        return pwd.getpwnam(name)

    def close(self):
        """Removes every account made here; keeps going past errors."""
        errors = []
        while self._users:
            errors += _remove(["userdel", self._users.pop()])
        while self._groups:
            errors += _remove(["groupdel", self._groups.pop()])
        for err in errors:
            print(f"cleanup: {err}", file=sys.stderr, flush=True)


def _remove(argv):
    try:
        _run_account_cmd(argv)
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        return [str(err)]
    return []
