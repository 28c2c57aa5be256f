#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgate against doveadm, side by side, on real Dovecot 2.3 and 2.4 anvils.

For each size N a private Dovecot is started and N synthetic connections
are registered in its anvil (kgtest/synthetic.py, for 2.4
kgtest/synthetic24.py) over one client connection, which stays open
while measuring. Each connection has its own user,
"userI@tenantK.example", and its own pid above the kernel's largest
possible pid, so no kick or signal can ever reach a real process.
Addresses alternate between IPv4 and IPv6; users are spread over ten
tenants, so "*@tenant7.example" matches a tenth of them.

Then kickgated is started and kickgate and doveadm are timed as whole
commands (start to exit), together with the floor: bench/floor reads one
CONNECT-DUMP and discards it, once with plain blocking reads (the minimal
reader) and once with -p, paced as kickgated reads (see
broker/anvil_client.c). Every command runs once per round, RUNS rounds;
the table shows medians. Peak memory is the broker's VmHWM (reset through
/proc/PID/clear_refs before each kickgate run, the largest over the runs)
and doveadm's ru_maxrss. bench/timed starts each command and takes its
time and ru_maxrss (started straight from Python, a command's ru_maxrss
would include the bench's own memory, inherited at fork).

Dovecot 2.4 runs from the Debian 13 root (kgtest/dovecot24.py), its
doveadm chrooted into it (`chroot ROOT doveadm -c CONF`), kickgated on
the host, reading the same anvil through ROOT/<base_dir>/anvil (its
protocol found out from the conversation: protocol = auto, the default);
the floor reads with -2. Before measuring, doveadm's `who -1` must list
the N connections. The 2.4 sizes are --sizes-24; their table comes
second, without targets.

Last, real IMAP sessions (Dovecot 2.3): SESSIONS logins spread over 100
users, killed by one glob; the time from starting the command to the last
session seeing end of file. Five sessions of another user must survive
each kick.

Needs root (it starts Dovecot and kickgated) and a build: KG_BUILD_DIR, or
--build. bench/run builds and runs this.
"""

import argparse
import collections
import concurrent.futures
import os
import selectors
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from kgtest import env, synthetic, synthetic24  # noqa: E402
from kgtest.daemon import Kickgated  # noqa: E402
from kgtest.dovecot import Dovecot  # noqa: E402
from kgtest.dovecot24 import Dovecot24, build_root  # noqa: E402
from kgtest.sessions import ImapSession, wait_registered  # noqa: E402

TENTH_GLOB = "*@tenant7.example"
NO_MATCH = "nosuchuser@nowhere.example"
CMD_TIMEOUT = 300
SESSION_USERS = 100
KEEPERS = 5
LOGIN_THREADS = 8
EOF_TIMEOUT = 120
MIB = 1024 * 1024


class BenchError(RuntimeError):
    pass


class ManySessionsDovecot(Dovecot):
    """A Dovecot for many sessions: every imap process also holds a
    connection to the stats service, whose client_limit (1000 by default)
    must make room for them all."""

    def __init__(self, users, sessions):
        super().__init__(users, imap_process_limit=sessions + 100)
        self.stats_clients = sessions + 100

    def _write_conf(self):
        super()._write_conf()
        with open(self.conf_path, "a") as f:
            f.write(f"service stats {{\n  client_limit = "
                    f"{self.stats_clients}\n}}\n")


def host_version():
    return subprocess.run(["dovecot", "--version"], capture_output=True,
                          text=True, check=False).stdout.strip()


def root_version():
    return subprocess.run(["chroot", build_root(), "/usr/sbin/dovecot",
                           "--version"], capture_output=True, text=True,
                          check=False).stdout.strip()


# A Dovecot line the bench runs against: its instances (a class of
# kgtest), how synthetic connections are registered in its anvil, the
# floor's options for its protocol, the exit codes doveadm's no-match
# kick ends with (2.3 fails, 2.4 reports "0 connections kicked") and how
# to ask its version.
Line = collections.namedtuple(
    "Line", "name dovecot register floor_args no_match_exit version")

LINES = {
    "2.3": Line("2.3", Dovecot, synthetic.register, (), (68,), host_version),
    "2.4": Line("2.4", Dovecot24, synthetic24.register,
                synthetic24.FLOOR_ARGS, (0,), root_version),
}


# One measured command: its name in the table, argv, the exit codes it
# may end with, and whether its peak is the broker's (a kickgate command).
Op = collections.namedtuple("Op", "name argv expect broker",
                            defaults=(True,))


class Bench:
    def __init__(self, build, runs):
        self.build = build
        self.runs = runs
        self.floor = os.path.join(build, "bench", "floor")
        self.kickgate = os.path.join(build, "kickgate")
        self.timer = os.path.join(build, "bench", "timed")

    # Commands ------------------------------------------------------------

    def timed(self, argv):
        """(seconds, peak RSS in bytes, exit code) of one run, as
        bench/timed measures it."""
        r, w = os.pipe()
        with os.fdopen(r) as report:
            try:
                proc = subprocess.Popen([self.timer, str(w), *argv],
                                        stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL,
                                        pass_fds=(w,))
            finally:
                os.close(w)
            proc.wait()
            fields = report.read().split()
        if len(fields) != 2:
            raise BenchError(f"{' '.join(argv)}: not timed (exit "
                             f"{proc.returncode})")
        return float(fields[0]), int(fields[1]) * 1024, proc.returncode

    # Anvil -----------------------------------------------------------------

    def check_anvil_keeps_connections(self, line):
        """Records whether anvil drops a client's connections when the
        client disconnects (the bench keeps its connection open either
        way)."""
        with line.dovecot({"probe": "probe-pw"}) as dovecot:
            line.register(dovecot.anvil_path, 3, self.floor).close()
            time.sleep(1)
            return synthetic.dump_count(self.floor, dovecot.anvil_path,
                                        line.floor_args) == 3

    # Measurements --------------------------------------------------------

    def size(self, line, n):
        """The rows of line's table for n connections."""
        with line.dovecot({"probe": "probe-pw"}) as dovecot, \
                line.register(dovecot.anvil_path, n, self.floor), \
                Kickgated({"anvil": dovecot.anvil_path}) as kg:
            check_listed(dovecot, n)
            return self.size_rows(line, n, dovecot, kg)

    def run_once(self, op, kg):
        """(seconds, peak bytes) of one run of op: for kickgate the
        broker's VmHWM during the run, for the others their own peak."""
        broker = kg.pids()["broker"]
        if op.broker:
            with open(f"/proc/{broker}/clear_refs", "w") as f:
                f.write("5")
        t, rss, code = self.timed(op.argv)
        if code not in op.expect:
            raise BenchError(f"{' '.join(op.argv)} exited {code}")
        if op.broker:
            with open(f"/proc/{broker}/status") as f:
                rss = next(int(line.split()[1]) * 1024 for line in f
                           if line.startswith("VmHWM:"))
        return t, rss

    def measure(self, ops, kg):
        """Runs every op once per round, RUNS rounds, so that a slow moment
        of the machine falls on all of them alike; returns each op's
        median time and peak memory."""
        times = {op.name: [] for op in ops}
        peaks = dict.fromkeys(times, 0)
        for _ in range(self.runs):
            for op in ops:
                t, rss = self.run_once(op, kg)
                times[op.name].append(t)
                peaks[op.name] = max(peaks[op.name], rss)
        return {name: (statistics.median(times[name]), peaks[name])
                for name in times}

    def size_rows(self, line, n, dovecot, kg):
        floor = [self.floor, *line.floor_args]
        anvil = dovecot.anvil_path
        da = dovecot.doveadm_argv()
        kgc = [self.kickgate]
        kick = f"kick {NO_MATCH}"
        dry = f"kick -n '{TENTH_GLOB}'"
        who = "who > /dev/null"
        ops = [Op("floor", floor + [anvil], (0,), False),
               Op("paced", floor + ["-p", anvil], (0,), False),
               Op(kick, kgc + ["kick", "-S", kg.sock, NO_MATCH], (68,)),
               Op("da " + kick, da + ["kick", NO_MATCH],
                  line.no_match_exit, False),
               Op(dry, kgc + ["kick", "-n", "-S", kg.sock, TENTH_GLOB],
                  (0, 68)),
               Op(who, kgc + ["who", "-S", kg.sock], (0,)),
               Op("da " + who, da + ["who"], (0,), False)]
        m = self.measure(ops, kg)
        floor, paced = m["floor"][0], m["paced"][0]
        rows = [(n, "floor: read one dump", floor, None, floor, paced,
                 None, None),
                (n, "floor -p: paced reads", paced, None, floor, paced,
                 None, None)]
        for name in (kick, dry, who):
            theirs = m.get("da " + name, (None, None))
            rows.append((n, name, m[name][0], theirs[0], floor, paced,
                         m[name][1], theirs[1]))
        return rows

    # Real sessions -------------------------------------------------------

    def sessions(self, n_sessions):
        users = {f"bulk{i:03d}": f"pw{i}" for i in range(SESSION_USERS)}
        users["keeper"] = "keeper-pw"
        with ManySessionsDovecot(users, n_sessions) as dovecot, \
                Kickgated({"anvil": dovecot.anvil_path}) as kg:
            kg_t, da_t = [], []
            for _ in range(self.runs):
                kg_t.append(self.kick_real(
                    dovecot, users, n_sessions,
                    [self.kickgate, "kick", "-S", kg.sock, "bulk*"]))
                da_t.append(self.kick_real(
                    dovecot, users, n_sessions,
                    ["doveadm", "-c", dovecot.conf_path, "kick", "bulk*"]))
        return statistics.median(kg_t), statistics.median(da_t)

    def kick_real(self, dovecot, users, n, argv):
        """Logs n sessions in, kicks them with argv; returns the time from
        the start of argv to the last session's end of file."""
        def login(i):
            user = f"bulk{i % SESSION_USERS:03d}"
            return ImapSession(dovecot, user, users[user],
                               src=f"127.0.{1 + i // 250}.{1 + i % 250}")

        # Each login starts an imap-login and an imap process: a few at
        # once keep both cores busy.
        with concurrent.futures.ThreadPoolExecutor(LOGIN_THREADS) as pool:
            bulk = list(pool.map(login, range(n)))
        keepers = [ImapSession(dovecot, "keeper", users["keeper"])
                   for _ in range(KEEPERS)]
        try:
            wait_registered(dovecot, bulk + keepers,
                            synthetic.REGISTER_TIMEOUT)
            sel = selectors.DefaultSelector()
            for s in bulk:
                s._sock.setblocking(False)
                sel.register(s._sock, selectors.EVENT_READ)
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            last = wait_all_eof(sel, len(bulk), t0)
            proc.wait(CMD_TIMEOUT)
            if not all(k.alive() for k in keepers):
                raise BenchError(f"{argv[0]} kicked a session it must "
                                 "not")
            return last - t0
        finally:
            for s in bulk + keepers:
                s.close()


def check_listed(dovecot, n):
    """Checks that doveadm's `who -1` lists the n connections, a header
    line above them."""
    res = subprocess.run(dovecot.doveadm_argv("who", "-1"),
                         capture_output=True, text=True,
                         timeout=CMD_TIMEOUT, check=False)
    listed = len(res.stdout.splitlines()) - 1
    if res.returncode != 0 or listed != n:
        raise BenchError(f"doveadm who -1 listed {listed} connections, "
                         f"not {n}: exit {res.returncode} "
                         f"{res.stderr.strip()}")


def wait_all_eof(sel, n, t0):
    """Reads every registered socket until end of file; returns when the
    last one got there."""
    left, last = n, t0
    while left:
        if time.perf_counter() - t0 > EOF_TIMEOUT:
            raise BenchError(f"{left} sessions still open after "
                             f"{EOF_TIMEOUT}s")
        for key, _ in sel.select(timeout=1):
            try:
                data = key.fileobj.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                left -= 1
                last = time.perf_counter()
    return last


# Output ---------------------------------------------------------------

def fmt_s(t):
    return "-" if t is None else f"{t:.3f}"


def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def mib(b):
    return "-" if b is None else f"{b / MIB:.1f}"


def print_table(rows, real=None):
    head = ("N", "operation", "kickgate s", "doveadm s", "kg/doveadm",
            "kg/floor", "kg/floor -p", "broker MiB", "doveadm MiB")
    lines = [head]
    for n, name, t, dt, floor, paced, hwm, drss in rows:
        own = name.startswith("floor")
        lines.append((f"{n:,}", name, fmt_s(t), fmt_s(dt), ratio(t, dt),
                      "-" if own else ratio(t, floor),
                      "-" if own else ratio(t, paced), mib(hwm), mib(drss)))
    if real:
        kt, dt, count = real
        lines.append((f"{count:,} real", "kick 'bulk*': last session EOF",
                      fmt_s(kt), fmt_s(dt), ratio(kt, dt), "-", "-", "-",
                      "-"))
    width = [max(len(r[i]) for r in lines) for i in range(len(head))]
    for r in lines:
        print("  ".join(c.rjust(w) if i != 1 else c.ljust(w)
                        for i, (c, w) in enumerate(zip(r, width))))


def targets(rows, real, small):
    by = {(n, name): (t, dt, floor, paced, hwm)
          for n, name, t, dt, floor, paced, hwm, _ in rows}
    big = max(n for n, *_ in rows)
    checks = []
    kick = by.get((big, f"kick {NO_MATCH}"))
    who = by.get((big, "who > /dev/null"))
    if kick:
        t, dt, floor, paced, _ = kick
        checks += [(f"kick at {big:,} <= 0.9x doveadm", t <= 0.9 * dt),
                   (f"kick at {big:,} <= 1.1x floor", t <= 1.1 * floor),
                   (f"kick at {big:,} <= 1.1x paced floor",
                    t <= 1.1 * paced)]
    if who:
        t, _, floor, paced, _ = who
        checks += [(f"who at {big:,} <= 1.5x floor", t <= 1.5 * floor),
                   (f"who at {big:,} <= 1.5x paced floor",
                    t <= 1.5 * paced)]
    peak = max((hwm for (n, _), (*_, hwm) in by.items()
                if n == big and hwm), default=None)
    if peak:
        checks.append((f"broker VmHWM at {big:,} <= 64 MiB",
                       peak <= 64 * MIB))
    if small:
        n, t, dt = small
        checks.append((f"kick at {n} connections <= 0.5x doveadm",
                       t <= 0.5 * dt))
    print()
    for what, ok in checks:
        print(f"{'met ' if ok else 'MISS'}  {what}")


def sizes(text):
    return [int(n) for n in text.split(",") if n]


def measure_line(bench, line, ns):
    """Runs line's sizes; returns its rows and, for a size of at most 100
    connections, (n, kickgate s, doveadm s) of the no-match kick."""
    kept = bench.check_anvil_keeps_connections(line)
    print(f"anvil {line.name} {'keeps' if kept else 'drops'} a client's "
          f"connections when the client disconnects; this bench keeps its "
          f"own open", flush=True)
    rows = []
    small = None
    for n in ns:
        print(f"measuring Dovecot {line.name}, N={n:,} ...", file=sys.stderr,
              flush=True)
        size_rows = bench.size(line, n)
        rows += size_rows
        if n <= 100:
            k = next(r for r in size_rows if r[1].startswith("kick nosuch"))
            small = (n, k[2], k[3])
    return rows, small


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.environ.get("KG_BUILD_DIR",
                                                      "build"))
    ap.add_argument("--sizes", type=sizes, default="100,10000,100000,1000000",
                    help="comma-separated connection counts, Dovecot 2.3 "
                    "(empty: none)")
    ap.add_argument("--sizes-24", type=sizes, default="10000,100000",
                    help="comma-separated connection counts, Dovecot 2.4 "
                    "(empty: none)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=1000,
                    help="real IMAP sessions to kick, Dovecot 2.3 (0: skip)")
    args = ap.parse_args()
    if args.runs < 5:
        ap.error("--runs must be at least 5: the table shows medians")
    if args.sessions and not args.sizes:
        ap.error("--sessions needs --sizes: its row is in the 2.3 table")
    if args.sizes:
        env.require_root_and_dovecot()
    else:
        env.require_root()
    os.environ["KG_BUILD_DIR"] = args.build
    bench = Bench(args.build, args.runs)
    tables = []
    for line, ns in ((LINES["2.3"], args.sizes),
                     (LINES["2.4"], args.sizes_24)):
        if ns:
            tables.append((line, *measure_line(bench, line, ns)))
    real = None
    failure = None
    if args.sessions:
        print(f"kicking {args.sessions} real sessions ...", file=sys.stderr,
              flush=True)
        try:
            kt, dt = bench.sessions(args.sessions)
            real = (kt, dt, args.sessions)
        except (BenchError, OSError, subprocess.SubprocessError) as err:
            failure = f"real sessions: {err}"
    for line, rows, small in tables:
        print(f"\nDovecot {line.version()}: median of {args.runs} runs; "
              f"{os.cpu_count()} CPUs", flush=True)
        if line.name == "2.3":
            print_table(rows, real)
            targets(rows, real, small)
        else:
            print_table(rows)
    if failure:
        print(f"\nFAILED {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
