"""A fake anvil socket (tests/tools/fake_anvil.py) serving a fixed dump.

Each fake lives in a directory of its own, so that the master.pid written
next to its socket belongs to it alone. The fake process stops itself after
LIFETIME seconds at the latest, so a test that dies cannot leave it behind
for long.
"""

import os
import subprocess
import sys

from kgtest.env import wait_until

FAKE_ANVIL = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          os.pardir, os.pardir, "tools", "fake_anvil.py")
START_TIMEOUT = 10
STOP_TIMEOUT = 10
LIFETIME = 280


class FakeAnvil:
    """fake_anvil.py serving dump from PARENT/NAME/anvil; use as a context
    manager or call stop().

    dump: the text sent for CONNECT-DUMP (a well-formed one ends with an
    empty line). master: a pid for master.pid next to the socket, or None
    for no master.pid. connections() counts the clients accepted so far.
    """

    def __init__(self, parent, name, dump, master=None):
        self.dir = os.path.join(parent, name)
        os.mkdir(self.dir)
        self.path = os.path.join(self.dir, "anvil")
        self.count_path = os.path.join(self.dir, "count")
        dump_path = os.path.join(self.dir, "dump")
        with open(dump_path, "w") as f:
            f.write(dump)
        argv = [sys.executable, FAKE_ANVIL, "--socket", self.path, "--dump",
                dump_path, "--count-file", self.count_path, "--lifetime",
                str(LIFETIME)]
        if master is not None:
            argv += ["--master-pid-file", str(master)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        wait_until(lambda: os.path.exists(self.path) or
                   self.proc.poll() is not None, START_TIMEOUT)
        if self.proc.poll() is not None or not os.path.exists(self.path):
            self.stop()
            raise RuntimeError(f"fake anvil {name} did not start")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def connections(self):
        try:
            with open(self.count_path) as f:
                return len(f.read().splitlines())
        except FileNotFoundError:
            return 0

    def stop(self):
        """Stops the fake (bounded); Popen ignores signals to a process
        that has already exited."""
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
