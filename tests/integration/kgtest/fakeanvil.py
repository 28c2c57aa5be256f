# SPDX-License-Identifier: MIT
"""A fake anvil socket (tests/tools/fake_anvil.py) serving a dump that a
test can replace at any time, in anvil protocol 1 (Dovecot 2.3) or 2
(Dovecot 2.4).

The process listening on the fake's socket can pass as Dovecot's master
(comm="dovecot") with service processes of its own (children=["imap"]),
or not; as in Dovecot, a child of it named "anvil" answers (serve_as), so
the process kickgated finds as anvil's writer has the fake master as its
parent. Each fake lives in a directory of its own, so that the files next
to its socket belong to it alone. The fake process stops itself, and its
children, after LIFETIME seconds at the latest, so a test that dies cannot
leave them behind for long.
"""

import os
import subprocess
import sys

from kgtest.env import stop_process, wait_until

FAKE_ANVIL = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          os.pardir, os.pardir, "tools", "fake_anvil.py")
START_TIMEOUT = 10
STOP_TIMEOUT = 10
LIFETIME = 280
# proc(5): /proc/PID/stat field 52, a zombie's wait status.
EXIT_CODE_FIELD = 52


def ended_by(pid):
    """None while process pid runs; once it has ended, the signal that
    ended it, or 0 if it exited. Holds only while pid is an unreaped child
    of its parent, which keeps the pid and the wait status: a FakeAnvil's
    children until stop(), a Popen child until poll() or wait()."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The fields after the name, which may hold spaces, start at field 3.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] != "Z":
        return None
    return int(fields[EXIT_CODE_FIELD - 3]) & 0x7f


class FakeAnvil:
    """fake_anvil.py listening on PARENT/NAME/anvil; use as a context
    manager or call stop().

    dump: the text or bytes sent for CONNECT-DUMP (a well-formed dump ends
    with an empty line); set_dump() replaces it for the next connection.
    comm: the listener's process name, None for the interpreter's own.
    serve_as: the name of the child that answers; None: the listener
    answers itself.
    children: the names of child processes the listener starts; .children
    holds their pids in the same order, .pid the listener's. options: more
    fake_anvil.py options. connections() counts the clients accepted so
    far.

    protocol 2: the fake answers as Dovecot 2.4's anvil; dump is then the
    whole reply to CONNECT-DUMP (header line, rows, empty line; by
    default no fields and no rows), commands() lists the command lines it
    was sent, in order, and after_kick, when given, is the dump every
    CONNECT-DUMP after a KICK-USER gets.
    """

    def __init__(self, parent, name, dump=None, comm=None, children=(),
                 options=(), serve_as="anvil", protocol=1, after_kick=None):
        self.dir = os.path.join(parent, name)
        os.mkdir(self.dir)
        # The confined broker connects without bypassing permissions.
        os.chmod(self.dir, 0o755)
        self.path = os.path.join(self.dir, "anvil")
        self.count_path = os.path.join(self.dir, "count")
        self.dump_path = os.path.join(self.dir, "dump")
        self.command_path = os.path.join(self.dir, "commands")
        self.children = []
        if dump is None:
            dump = "\n" if protocol == 1 else "\n\n"
        self.set_dump(dump)
        argv = [sys.executable, FAKE_ANVIL, "--socket", self.path, "--dump",
                self.dump_path, "--count-file", self.count_path,
                "--lifetime", str(LIFETIME), *options]
        if protocol != 1:
            argv += ["--protocol", str(protocol), "--command-file",
                     self.command_path]
        if after_kick is not None:
            after_path = os.path.join(self.dir, "after-kick")
            _write_whole(after_path, after_kick)
            argv += ["--after-kick", after_path]
        if comm is not None:
            argv += ["--comm", comm]
        if serve_as is not None:
            argv += ["--serve-as", serve_as]
        for child in children:
            argv += ["--child", child]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        wait_until(lambda: os.path.exists(self.path) or
                   self.proc.poll() is not None, START_TIMEOUT)
        if self.proc.poll() is not None or not os.path.exists(self.path):
            self.stop()
            raise RuntimeError(f"fake anvil {name} did not start")
        if children:
            # Written before the socket appeared.
            with open(os.path.join(self.dir, "children")) as f:
                self.children = [int(line) for line in f]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def set_dump(self, dump):
        """Replaces the dump whole (write, then rename), so a connection
        never reads half of it."""
        _write_whole(self.dump_path, dump)

    def connections(self):
        try:
            with open(self.count_path) as f:
                return len(f.read().splitlines())
        except FileNotFoundError:
            return 0

    def commands(self):
        """Protocol 2: the command lines received so far, in order, each
        without its line feed."""
        try:
            with open(self.command_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        return data.decode(errors="surrogateescape").split("\n")[:-1]

    def stop(self):
        """Stops the fake, which kills and reaps its children (bounded);
        Popen ignores signals to a process that has already exited."""
        stop_process(self.proc, STOP_TIMEOUT)


def _write_whole(path, dump):
    """Writes text or bytes to path, then renames it into place."""
    data = dump.encode() if isinstance(dump, str) else dump
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)
