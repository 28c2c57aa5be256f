#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgated when things go wrong around it.

- 1,000 clients that connect and send nothing do not delay a real request
  (answered within a second), and each is dropped once client_timeout_ms
  has passed, not before.
- A client that goes away in the middle of a large `who` reply: the broker
  notices, logs it and serves the next request.
- Anvil closing the connection mid-dump, anvil absent, and Dovecot stopped:
  exit 69 with a message that says so; once Dovecot runs again the next
  request works without restarting kickgated.
- The broker killed: the supervisor logs the signal and exits 1, and the
  daemon started again serves.
- A frontend killed by SIGSYS: the supervisor logs it as a seccomp kill,
  closes that one client, and the same broker serves the next request.
- stderr (the log and the audit lines) on a full device, or closed: kicks
  still work and disconnect the session.

The supervisor holds a descriptor per waiting client. It is started with the
usual soft RLIMIT_NOFILE of 1024, which it must raise itself; the test,
which holds the idle clients' other ends, raises its own afterwards.
"""

import contextlib
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

from kgtest import synthetic
from kgtest.daemon import Kickgated, _children, build_dir
from kgtest.dovecot import Dovecot
from kgtest.env import Accounts, stop_process, wait_until
from kgtest.fakeanvil import FakeAnvil
from kgtest.runner import check, main
from kgtest.sessions import ImapSession, wait_registered

N_CONNS = 10000
IDLE_CLIENTS = 1000
CLIENT_TIMEOUT_MS = 3000
ANSWER_WITHIN = 1.0
DROP_SLACK = 2.0
EXIT_OK = 0
EXIT_UNAVAILABLE = 69
LOG_WAIT = 5
CMD_TIMEOUT = 60
START_TIMEOUT = 15
STOP_TIMEOUT = 10
# A who request: version 2, op who, no flags, no network, glob, path or
# instance name.
WHO_REQUEST = b"\x03\x02" + bytes(10)
USERS = {"victim": "victim-pw", "bystander": "bystander-pw"}


def kickgate(*args):
    argv = [os.path.join(build_dir(), "kickgate"), *args]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=CMD_TIMEOUT, check=False)


# The soft limit most systems give a service that does not ask for more.
USUAL_SOFT_NOFILE = 1024


def set_soft_nofile(soft=None):
    """Sets the soft limit to soft, or to the hard limit."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if soft is None or (hard != resource.RLIM_INFINITY and soft > hard):
        soft = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def wait_log(kg, text):
    return wait_until(lambda: text in kg.log_text(), LOG_WAIT)


def who_lines(sock):
    res = kickgate("who", "-1", "-S", sock)
    return res.returncode, res.stdout.splitlines(), res.stderr


class Setup:
    def __init__(self, dovecot, kg):
        self.dovecot = dovecot
        self.kg = kg


@contextlib.contextmanager
def setup():
    """A Dovecot whose anvil lists N_CONNS synthetic connections and two
    users who can log in, and a kickgated reading it."""
    with Dovecot(USERS) as dovecot, \
            synthetic.registered(dovecot.anvil_path, N_CONNS):
        kg = Kickgated({"anvil": dovecot.anvil_path,
                        "client_timeout_ms": CLIENT_TIMEOUT_MS})
        try:
            set_soft_nofile(USUAL_SOFT_NOFILE)
            kg.start()
            set_soft_nofile()
            yield Setup(dovecot, kg)
        finally:
            kg.stop()


# Clients ------------------------------------------------------------------

def nofile_limits(pid):
    """(soft, hard) RLIMIT_NOFILE of pid, as /proc shows them."""
    with open(f"/proc/{pid}/limits") as f:
        line = next(x for x in f if x.startswith("Max open files"))
    return tuple(line.split()[3:5])


def case_idle_clients_neither_delay_nor_stay(st):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    check(hard > IDLE_CLIENTS + 64, f"RLIMIT_NOFILE hard limit {hard} "
                                    f"leaves no room for {IDLE_CLIENTS} "
                                    "clients")
    for role, pid in {"supervisor": st.kg.supervisor,
                      **st.kg.pids()}.items():
        soft, hard_text = nofile_limits(pid)
        check(soft == hard_text, f"the {role} kept a soft descriptor "
                                 f"limit of {soft} (hard {hard_text})")
    idle = []
    try:
        t_connect = time.monotonic()
        for _ in range(IDLE_CLIENTS):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(st.kg.sock)
            idle.append(s)
        t0 = time.monotonic()
        code, lines, err = who_lines(st.kg.sock)
        took = time.monotonic() - t0
        check(code == EXIT_OK and len(lines) == N_CONNS + 1,
              f"who beside idle clients: exit {code}, {len(lines)} lines: "
              f"{err}")
        check(took <= ANSWER_WITHIN, f"who took {took:.2f}s beside "
                                     f"{IDLE_CLIENTS} idle clients")
        # None is answered before its time (when there is time left to
        # tell).
        early = select.select(idle, [], [], 0)[0]
        if time.monotonic() - t_connect < CLIENT_TIMEOUT_MS / 1000:
            check(not early, f"{len(early)} idle clients dropped before "
                             f"{CLIENT_TIMEOUT_MS} ms")
        deadline = t_connect + CLIENT_TIMEOUT_MS / 1000 + DROP_SLACK
        check(all_dropped(idle, deadline), f"idle clients still connected "
                                           f"{CLIENT_TIMEOUT_MS} ms + "
                                           f"{DROP_SLACK}s after connecting")
    finally:
        for s in idle:
            s.close()


def all_dropped(socks, deadline):
    """True once every socket got its timeout reply and end of file."""
    left = set(socks)
    while left and time.monotonic() < deadline:
        ready = select.select(list(left), [], [],
                              max(0, deadline - time.monotonic()))[0]
        for s in ready:
            if not s.recv(65536):
                left.discard(s)
    return not left


def case_client_leaving_mid_reply(st):
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(CMD_TIMEOUT)
        s.connect(st.kg.sock)
        s.send(WHO_REQUEST)
        first = s.recv(1 << 17)
        check(len(first) > 1000, f"first reply packet {len(first)} bytes")
    check(wait_log(st.kg, f"client pid {os.getpid()} went away before the "
                          "reply ended"),
          f"no log line for the client that left: {st.kg.log_text()[-500:]}")
    code, lines, err = who_lines(st.kg.sock)
    check(code == EXIT_OK and len(lines) == N_CONNS + 1,
          f"next who: exit {code}, {len(lines)} lines: {err}")


# Anvil ------------------------------------------------------------------------

def case_dovecot_stopped_then_restarted(st):
    d = st.dovecot
    d._stop_master()
    try:
        res = kickgate("who", "-S", st.kg.sock)
        check(res.returncode == EXIT_UNAVAILABLE and
              f"cannot reach Dovecot's anvil at {d.anvil_path}" in
              res.stderr,
              f"who with Dovecot stopped: exit {res.returncode}: "
              f"{res.stderr!r}")
    finally:
        d._launch(last=True)
    session = ImapSession(d, "victim", USERS["victim"])
    try:
        wait_registered(d, [session])
        res = kickgate("who", "-1", "-S", st.kg.sock, "victim")
        check(res.returncode == EXIT_OK and
              res.stdout.splitlines()[1].startswith("victim imap "),
              f"who after the restart: exit {res.returncode}: "
              f"{res.stdout!r} {res.stderr!r}")
    finally:
        session.close()


@contextlib.contextmanager
def fake_anvil(close_after):
    """A fake anvil whose dump of N_CONNS lines stops after close_after
    bytes."""
    dump = "".join(f"imap/{synthetic.address(i)}/{synthetic.user(i)}"
                   f"\t{synthetic.first_pid() + i}\t1\n"
                   for i in range(N_CONNS)) + "\n"
    with tempfile.TemporaryDirectory(prefix="kgf", dir="/tmp") as tmp, \
            FakeAnvil(tmp, "fake", dump,
                      options=("--close-after", str(close_after))) as fake:
        yield fake.path


def case_anvil_closing_mid_dump(st):
    with fake_anvil(close_after=20000) as path, \
            Kickgated({"anvil": path}) as kg:
        res = kickgate("who", "-S", kg.sock)
        check(res.returncode == EXIT_UNAVAILABLE and
              "anvil closed the connection mid-dump" in res.stderr and
              res.stdout == "",
              f"exit {res.returncode}: {res.stdout!r} {res.stderr!r}")
        res = kickgate("kick", "-S", kg.sock, "user1*")
        check(res.returncode == EXIT_UNAVAILABLE and
              "anvil closed the connection mid-dump" in res.stderr,
              f"kick: exit {res.returncode}: {res.stderr!r}")


def case_anvil_absent(st):
    with tempfile.TemporaryDirectory(prefix="kgf", dir="/tmp") as tmp:
        path = os.path.join(tmp, "anvil")
        with Kickgated({"anvil": path}) as kg:
            res = kickgate("kick", "-S", kg.sock, "victim")
            check(res.returncode == EXIT_UNAVAILABLE and
                  f"cannot reach Dovecot's anvil at {path}" in res.stderr,
                  f"exit {res.returncode}: {res.stderr!r}")


# Daemon processes -----------------------------------------------------------

def check_serves(kg):
    res = kickgate("who", "-S", kg.sock, "nobody-at-all")
    check(res.returncode == EXIT_OK, f"the daemon started again: exit "
                                     f"{res.returncode}: {res.stderr!r}")


def case_broker_killed(st):
    """The supervisor logs how the broker ended and exits 1, taking every
    child with it; the daemon started again serves."""
    kg = Kickgated({"anvil": st.dovecot.anvil_path})
    kg.start()
    try:
        broker = kg.pids()["broker"]
        os.kill(broker, signal.SIGKILL)
        line = f"broker pid {broker} was killed by signal {signal.SIGKILL}"
        check(wait_log(kg, line), f"no {line!r} in the log: "
                                  f"{kg.log_text()[-300:]}")
        status = kg.wait_exit()
        check(status == 1, f"the supervisor's exit status is {status}")
        kg.stop()
        kg.start()
        check_serves(kg)
    finally:
        kg.stop()


def case_frontend_killed(st):
    """A frontend that dies (here by SIGSYS, as its seccomp filter would
    kill it) costs its one client only: the supervisor logs the signal and
    what it means, closes that client's connection, and the same broker
    serves the next request."""
    kg = Kickgated({"anvil": st.dovecot.anvil_path})
    kg.start()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        broker = kg.pids()["broker"]
        client.connect(kg.sock)
        check(wait_until(lambda: len(kg.frontends()) == 1, LOG_WAIT),
              f"frontends for one silent client: {kg.frontends()}")
        frontend = kg.frontends()[0]
        os.kill(frontend, signal.SIGSYS)
        line = (f"frontend pid {frontend} was killed by signal "
                f"{int(signal.SIGSYS)} (SIGSYS), as its seccomp filter "
                "kills a forbidden system call")
        check(wait_log(kg, line), f"no {line!r} in the log: "
                                  f"{kg.log_text()[-300:]}")
        client.settimeout(LOG_WAIT)
        try:
            got = client.recv(64)
        except ConnectionResetError:
            got = b""
        check(got == b"", f"the killed frontend's client got {got!r}")
        check_serves(kg)
        check(kg.pids() == {"broker": broker},
              f"the broker changed: {kg.pids()} (was {broker})")
    finally:
        client.close()
        kg.stop()


# Logging on a broken stderr -------------------------------------------------

@contextlib.contextmanager
def bare_daemon(dovecot, **popen):
    """kickgated -F started directly, its stdio as popen gives it, with a
    frontend account of its own."""
    with tempfile.TemporaryDirectory(prefix="kgf", dir="/tmp") as tmp, \
            Accounts() as acc:
        os.chmod(tmp, 0o755)
        sock = os.path.join(tmp, "kg.sock")
        conf = os.path.join(tmp, "kickgated.conf")
        with open(conf, "w") as f:
            f.write(f"[broker]\nlisten = {sock}\nanvil = {dovecot.anvil_path}"
                    f"\nfrontend_user = {acc.user('fe').pw_name}"
                    f"\naudit = stderr\n")
        proc = subprocess.Popen([os.path.join(build_dir(), "kickgated"), "-F",
                                 "-c", conf], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, **popen)
        try:
            check(wait_until(lambda: proc.poll() is None and
                             os.path.exists(sock) and
                             len(_children(proc.pid)) >= 1, START_TIMEOUT),
                  f"kickgated did not start (exit {proc.poll()})")
            yield sock, proc
        finally:
            stop_process(proc, STOP_TIMEOUT)


def kick_still_works(st, sock, proc):
    victim = ImapSession(st.dovecot, "victim", USERS["victim"])
    bystander = ImapSession(st.dovecot, "bystander", USERS["bystander"])
    try:
        wait_registered(st.dovecot, [victim, bystander])
        res = kickgate("kick", "-S", sock, "victim")
        check(res.returncode == EXIT_OK and "victim" in res.stdout,
              f"kick: exit {res.returncode}: {res.stdout!r} {res.stderr!r}")
        check(victim.wait_closed(5), "the kicked session stayed open")
        check(bystander.alive(), "the other session was disconnected")
        check(proc.poll() is None, f"kickgated exited ({proc.poll()})")
        res = kickgate("who", "-S", sock, "bystander")
        check(res.returncode == EXIT_OK, f"who after the kick: exit "
                                         f"{res.returncode}")
    finally:
        victim.close()
        bystander.close()


def case_stderr_on_full_device(st):
    with open("/dev/full", "w") as full, \
            bare_daemon(st.dovecot, stderr=full) as (sock, proc):
        kick_still_works(st, sock, proc)


def case_stderr_closed(st):
    with bare_daemon(st.dovecot, stderr=subprocess.DEVNULL,
                     preexec_fn=lambda: os.close(2)) as (sock, proc):
        kick_still_works(st, sock, proc)


CASES = [
    ("1000_idle_clients_neither_delay_a_request_nor_outstay_the_timeout",
     case_idle_clients_neither_delay_nor_stay),
    ("client_leaving_mid_reply_logged_and_next_request_served",
     case_client_leaving_mid_reply),
    ("anvil_closing_mid_dump_exits_69", case_anvil_closing_mid_dump),
    ("anvil_absent_exits_69", case_anvil_absent),
    ("dovecot_stopped_exits_69_and_restarted_serves_again",
     case_dovecot_stopped_then_restarted),
    ("broker_killed_supervisor_logs_and_exits_then_restarts",
     case_broker_killed),
    ("frontend_killed_logged_its_client_closed_others_served",
     case_frontend_killed),
    ("stderr_on_a_full_device_kick_still_disconnects",
     case_stderr_on_full_device),
    ("stderr_closed_kick_still_disconnects", case_stderr_closed),
]


if __name__ == "__main__":
    sys.exit(main((CASES, setup)))
