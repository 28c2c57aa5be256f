#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs sandbox_probe once per row: each row enters a role's sandbox through
the daemon's own function, or one layer of it (ROLE/LAYER) through the
function that sandbox stacks, and makes one call, which must end as the
row says: "ok" (the call works: the sandbox leaves the role able to do its
job), SIGSYS (seccomp kills the process), or an errno (EPERM, EACCES: a
seccomp rule that fails the call, a Landlock rule or a missing capability
refuses it). A forbidden call that succeeds fails the test, and so does a
needed call that is refused. Two more rows hold the probe inside the
sandbox: one checks what /proc shows about it, one stops and continues it
in the middle of a poll() with a timeout, which the kernel resumes
through restart_syscall.
"""

import ctypes
import errno
import os
import pwd
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from kgtest import env
from kgtest.confinement import (ANVIL_KICKS_CAPS, CAP_KILL, check_broker,
                                check_frontend)

PROBE_ENV = "KG_SANDBOX_PROBE"
SYS_LANDLOCK_CREATE_RULESET = 444
LANDLOCK_CREATE_RULESET_VERSION = 1
ROW_TIMEOUT = 20
# The probe starts with a supplementary group, as root in a login shell
# may: the frontend must shed it.
START_GROUP = 54322
EXIT_ERRNO = 100
PR_SET_CHILD_SUBREAPER = 36
OK = "ok"
SIGSYS = "SIGSYS"
EPERM = "EPERM"
EACCES = "EACCES"

NO_SETUID_FIXUP = ("setpriv", "--securebits=+no_setuid_fixup", "--")
# The "broker-user" role: the broker as broker_user = daemon, with one
# supplementary group (sandbox_probe.c). "broker-anvil" and
# "broker-user-anvil": the same brokers where every instance is pinned to
# protocol 2.4, so anvil does every kick.
BROKER_USER = "daemon"
BROKER_USER_GROUP = 54323

# Started with a capability in the ambient set, which must not survive.
AMBIENT_KILL = ("setpriv", "--inh-caps=+kill", "--ambient-caps=+kill", "--")

# The Landlock ABI a row's expectation needs (1: filesystem, 3: truncate,
# 6: scopes).
FS, TRUNCATE, SCOPE = 1, 3, 6

# role, call, expected end, why; a fifth field: the Landlock ABI needed.
ROWS = [
    # The frontend: what it needs.
    ("frontend", "recvmsg_supervisor", OK, "takes its client from the "
     "supervisor"),
    ("frontend", "recv_client", OK, "reads its client's request"),
    ("frontend", "send_client", OK, "answers its client"),
    ("frontend", "send_supervisor", OK, "passes the request on"),
    ("frontend", "send_log", OK, "writes syslog lines"),
    ("frontend", "write_stderr", OK, "logs"),
    ("frontend", "malloc_large", OK, "allocates"),
    # The frontend: no files, no new sockets, no signals.
    ("frontend", "open_proc_stat", SIGSYS, "opens no file"),
    ("frontend", "open_passwd", SIGSYS, "opens no file"),
    ("frontend", "open_write", SIGSYS, "creates no file"),
    ("frontend", "open_mem_rdwr", SIGSYS, "opens no file"),
    ("frontend", "access", SIGSYS, "probes no path"),
    ("frontend", "socket_unix", EACCES, "creates no socket"),
    ("frontend", "socket_inet", EACCES, "creates no network socket"),
    ("frontend", "connect_anvil", SIGSYS, "connects nowhere"),
    ("frontend", "connect_abstract", SIGSYS, "connects nowhere"),
    ("frontend", "sendto_abstract", SIGSYS, "reaches no abstract socket"),
    ("frontend", "sendto_abstract_log", EPERM, "reaches no abstract socket "
     "through the syslog socket either", SCOPE),
    ("frontend", "recv", SIGSYS, "reads no socket but its client's"),
    ("frontend", "send", SIGSYS, "writes to no socket but its client's, "
     "the supervisor's and syslog's"),
    ("frontend", "sendmsg_fd", SIGSYS, "passes no fds"),
    ("frontend", "accept", SIGSYS, "accepts no clients"),
    ("frontend", "recvmsg", SIGSYS, "receives no fds but from the "
     "supervisor"),
    ("frontend", "recvmsg_client", SIGSYS, "takes no descriptor from its "
     "client"),
    ("frontend", "getsockopt_peercred", SIGSYS, "reads no identities"),
    ("frontend", "getsockname", SIGSYS, "reads no addresses"),
    ("frontend", "setsockopt_passcred", SIGSYS, "asks for no credentials"),
    ("frontend", "write_stdout", SIGSYS, "writes nowhere but stderr"),
    ("frontend", "kill", SIGSYS, "signals nothing"),
    ("frontend", "tkill", SIGSYS, "signals nothing"),
    ("frontend", "tgkill", SIGSYS, "signals nothing"),
    ("frontend", "pidfd_open", SIGSYS, "pins no process"),
    ("frontend", "pidfd_signal0", SIGSYS, "signals nothing"),
    # The broker: what it needs.
    ("broker", "open_proc_stat", OK, "reads /proc/PID/stat"),
    ("broker", "socket_unix", OK, "creates a socket for anvil"),
    ("broker", "connect_anvil", OK, "connects to anvil"),
    ("broker", "send", OK, "answers a client"),
    ("broker", "recvmsg", OK, "receives requests and fds"),
    ("broker", "getsockopt_peercred", OK, "reads the caller's identity"),
    ("broker", "getsockopt_type", OK, "checks a client's socket type"),
    ("broker", "getsockopt_acceptconn", OK, "checks a client's socket is "
     "no listener"),
    ("broker", "getsockname", OK, "checks a client's socket came from the "
     "listener"),
    ("broker", "setsockopt_passcred", OK, "learns anvil's pid from the "
     "kernel"),
    ("broker", "write_stderr", OK, "logs"),
    ("broker", "pidfd_open", OK, "pins a target"),
    ("broker", "pidfd_signal0", OK, "probes a target"),
    ("broker", "pidfd_sigterm", OK, "kicks a process of another uid"),
    ("broker", "malloc_large", OK, "allocates for large dumps"),
    # The broker: nothing beyond.
    ("broker", "open_shadow", EACCES, "reads nothing outside /proc", FS),
    ("broker", "open_passwd", EACCES, "reads nothing outside /proc", FS),
    ("broker", "open_write", SIGSYS, "creates no file"),
    ("broker", "open_mem_rdwr", SIGSYS, "opens nothing for writing"),
    ("broker", "open_dir", SIGSYS, "lists no directory"),
    ("broker", "access", SIGSYS, "probes no path"),
    ("broker", "socket_inet", SIGSYS, "creates no network socket"),
    ("broker", "socket_inet6", SIGSYS, "creates no network socket"),
    ("broker", "socket_netlink", SIGSYS, "creates no netlink socket"),
    ("broker", "connect_abstract", EPERM, "reaches no abstract socket",
     SCOPE),
    ("broker", "sendto_abstract", EPERM, "reaches no abstract socket",
     SCOPE),
    ("broker", "accept", SIGSYS, "accepts no clients"),
    ("broker", "sendmsg_fd", SIGSYS, "passes no fds"),
    ("broker", "getsockopt_sndbuf", SIGSYS, "reads only the options it "
     "checks"),
    ("broker", "setsockopt_rcvbuf", SIGSYS, "sets only send timeouts and "
     "SO_PASSCRED"),
    ("broker", "write_stdout", SIGSYS, "writes nowhere but stderr"),
    ("broker", "kill", SIGSYS, "signals only through pidfds"),
    ("broker", "tkill", SIGSYS, "signals only through pidfds"),
    ("broker", "tgkill", SIGSYS, "signals only through pidfds"),
    ("broker", "pidfd_open_nonblock", SIGSYS, "opens pidfds as verify.c "
     "does only"),
    ("broker", "pidfd_sigkill", SIGSYS, "sends SIGTERM only"),
    ("broker", "pidfd_sigterm_siginfo", SIGSYS, "sends no forged siginfo"),
    ("broker", "pidfd_signal0_siginfo", SIGSYS, "sends no forged siginfo"),
    ("broker", "pidfd_sigterm_thread", SIGSYS, "no signal flags"),
    ("broker", "pidfd_signal0_thread", SIGSYS, "no signal flags"),
    ("broker", "getsockopt_ip_domain", SIGSYS, "socket-level options only"),
    ("broker", "getsockopt_ip_peercred", SIGSYS, "socket-level options "
     "only"),
    ("broker", "getsockopt_ip_peergroups", SIGSYS, "socket-level options "
     "only"),
    ("broker", "getsockopt_ip_type", SIGSYS, "socket-level options only"),
    ("broker", "getsockopt_ip_acceptconn", SIGSYS, "socket-level options "
     "only"),
    ("broker", "setsockopt_ip_sndtimeo", SIGSYS, "socket-level options "
     "only"),
    ("broker", "setsockopt_ip_passcred", SIGSYS, "socket-level options "
     "only"),
]

# Calls neither role may make.
for _role in ("frontend", "broker"):
    ROWS += [
        (_role, "execve", SIGSYS, "runs no program"),
        (_role, "execveat", SIGSYS, "runs no program"),
        (_role, "fork", SIGSYS, "creates no process"),
        (_role, "clone_newuser", SIGSYS, "creates no namespace"),
        (_role, "clone3_newns", SIGSYS, "creates no namespace"),
        (_role, "unshare", SIGSYS, "creates no namespace"),
        (_role, "ptrace", SIGSYS, "traces nothing"),
        (_role, "process_vm_readv", SIGSYS, "reads no other memory"),
        (_role, "process_vm_writev", SIGSYS, "writes no other memory"),
        (_role, "setuid", SIGSYS, "changes no ids"),
        (_role, "setresuid", SIGSYS, "changes no ids"),
        (_role, "setgid", SIGSYS, "changes no ids"),
        (_role, "setgroups", SIGSYS, "changes no groups"),
        (_role, "capset", SIGSYS, "changes no capabilities"),
        (_role, "mount", SIGSYS, "mounts nothing"),
        (_role, "chroot", SIGSYS, "changes no root"),
        (_role, "bpf", SIGSYS, "loads no BPF"),
        (_role, "userfaultfd", SIGSYS, "no userfaultfd"),
        (_role, "io_uring_setup", SIGSYS, "no io_uring"),
        (_role, "keyctl", SIGSYS, "no keyrings"),
        (_role, "prctl", SIGSYS, "changes no process attributes"),
        (_role, "mmap_exec", SIGSYS, "maps no executable memory"),
        (_role, "mprotect_exec", SIGSYS, "makes no memory executable"),
    ]

# Each layer alone, entered as root with every capability: a call refused
# here is refused by that layer, whatever the other layers do. A row per
# Landlock right, as DIR is outside every rule (REFER and IOCTL_DEV: see
# test_landlock_rights.c).
for _role in ("frontend", "broker"):
    _layer = f"{_role}/landlock"
    ROWS += [
        (_layer, "open_passwd", EACCES, "READ_FILE outside its rules", FS),
        (_layer, "open_foreign", EACCES, "READ_FILE outside its rules", FS),
        (_layer, "open_dir", EACCES, "READ_DIR", FS),
        (_layer, "execve", EACCES, "EXECUTE", FS),
        (_layer, "write_file", EACCES, "WRITE_FILE", FS),
        (_layer, "remove_file", EACCES, "REMOVE_FILE", FS),
        (_layer, "remove_dir", EACCES, "REMOVE_DIR", FS),
        (_layer, "make_reg", EACCES, "MAKE_REG", FS),
        (_layer, "make_dir", EACCES, "MAKE_DIR", FS),
        (_layer, "make_fifo", EACCES, "MAKE_FIFO", FS),
        (_layer, "make_char", EACCES, "MAKE_CHAR", FS),
        (_layer, "make_block", EACCES, "MAKE_BLOCK", FS),
        (_layer, "make_sym", EACCES, "MAKE_SYM", FS),
        (_layer, "make_sock", EACCES, "MAKE_SOCK", FS),
        (_layer, "truncate", EACCES, "TRUNCATE", TRUNCATE),
        (_layer, "connect_abstract", EPERM, "abstract socket scope", SCOPE),
        (_layer, "sendto_abstract", EPERM, "abstract socket scope", SCOPE),
    ]
ROWS += [
    ("frontend/landlock", "kill", EPERM, "signal scope", SCOPE),
    ("frontend/landlock", "sendto_abstract", EPERM, "abstract socket scope",
     SCOPE),
    ("frontend/landlock", "pidfd_sigterm", EPERM, "signal scope", SCOPE),
    ("broker/landlock", "open_proc_stat", OK, "/proc stays readable", FS),
    ("broker/landlock", "open_mem_rdwr", EACCES, "/proc is read only", FS),
    ("broker/landlock", "pidfd_sigterm", OK, "no signal scope: it kicks"),
    ("frontend/privileges", "open_proc_stat", EACCES, "empty root, not "
     "even searchable"),
    ("frontend/privileges", "setresuid", EPERM, "cannot become root "
     "again"),
    ("frontend/privileges", "capset", EPERM, "no capability to regain"),
    ("broker/privileges", "securebits", OK, "securebits set and locked"),
    ("broker/privileges", "open_foreign", EACCES, "no CAP_DAC_OVERRIDE"),
    ("broker/privileges", "capset", EPERM, "no capability but CAP_KILL"),
    ("broker/privileges", "pidfd_sigterm", OK, "keeps CAP_KILL"),
    ("broker-user", "pidfd_sigterm", OK, "keeps CAP_KILL as another uid"),
    ("broker-user", "open_proc_stat", OK, "reads /proc/PID/stat"),
    ("broker-user", "open_foreign", EACCES, "no CAP_DAC_OVERRIDE"),
    ("broker-user", "setresuid", SIGSYS, "changes no ids"),
    ("broker-user/privileges", "setresuid", EPERM, "cannot become root "
     "again"),
    ("broker-user/privileges", "securebits", OK, "securebits set and "
     "locked"),
]

# Where anvil does every kick, the broker keeps no capability and sends no
# signal, whether it stays uid 0 or runs as broker_user; it still asks
# anvil and answers clients.
for _role in ("broker-anvil", "broker-user-anvil"):
    ROWS += [
        (_role, "send", OK, "answers a client"),
        (_role, "recvmsg", OK, "receives requests and fds"),
        (_role, "getsockopt_peercred", OK, "reads the caller's identity"),
        (_role, "open_proc_stat", OK, "reads /proc/PID/stat"),
        (_role, "pidfd_sigterm", SIGSYS, "anvil kicks: no signal rule"),
        (_role, "pidfd_signal0", SIGSYS, "anvil kicks: no signal rule"),
        (_role, "kill", SIGSYS, "signals nothing"),
        (_role, "setresuid", SIGSYS, "changes no ids"),
        (f"{_role}/privileges", "pidfd_sigterm", EPERM, "no CAP_KILL: "
         "another uid's process is out of reach"),
        (f"{_role}/privileges", "capset", EPERM, "no capability to regain"),
        (f"{_role}/privileges", "open_foreign", EACCES,
         "no CAP_DAC_OVERRIDE"),
        (f"{_role}/privileges", "securebits", OK, "securebits set and "
         "locked"),
    ]
ROWS += [
    # The probe's anvil is root's socket: broker_user reaches it through
    # a group only (test_broker_user.py).
    ("broker-anvil", "connect_anvil", OK, "connects to anvil"),
    ("broker-anvil/landlock", "pidfd_sigterm", EPERM, "signal scope: anvil "
     "kicks", SCOPE),
    ("broker-anvil/landlock", "open_proc_stat", OK, "/proc stays readable",
     FS),
    ("broker-user-anvil/privileges", "setresuid", EPERM, "cannot become "
     "root again"),
]


def landlock_abi():
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                       ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(abi, 0)


def become_subreaper():
    """Each probe leaves a child that exits after it; orphaned, it comes
    here to be reaped instead of to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_CHILD_SUBREAPER")


def reap_orphans():
    """Called with no probe running: every child left is an orphan."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def outcome(code):
    if code < 0:
        return signal.Signals(-code).name
    if code == 0:
        return OK
    if code > EXIT_ERRNO:
        return errno.errorcode.get(code - EXIT_ERRNO, f"errno {code}")
    return f"exit {code}"


def make_dir(nobody):
    d = tempfile.mkdtemp(prefix="kgp", dir="/tmp")
    os.chmod(d, 0o755)
    os.mkdir(os.path.join(d, "empty"))
    foreign = os.path.join(d, "foreign")
    with open(foreign, "w") as f:
        f.write("for nobody's eyes only\n")
    os.chown(foreign, nobody.pw_uid, nobody.pw_gid)
    os.chmod(foreign, 0o600)
    return d


class Probe:
    """One sandbox_probe run, whose stderr is read until it is sandboxed;
    prefix: a command that runs it (setpriv)."""

    def __init__(self, role, call, d, prefix=()):
        self.proc = subprocess.Popen(
            [*prefix, os.environ[PROBE_ENV], role, call, d],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            extra_groups=[START_GROUP])
        self.err = b""

    def wait_sandboxed(self):
        deadline = time.monotonic() + ROW_TIMEOUT
        while b"sandboxed\n" not in self.err:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stderr], [], [],
                                        max(left, 0))
            if not ready:
                return False
            chunk = os.read(self.proc.stderr.fileno(), 4096)
            if not chunk:
                return False
            self.err += chunk
        return True

    def finish(self):
        try:
            _, err = self.proc.communicate(timeout=ROW_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.err += err
        return outcome(self.proc.returncode)

    def detail(self):
        return self.err.decode(errors="replace").strip().replace("\n", " | ")


def run_row(role, call, nobody):
    """Returns how the call ended and the probe's stderr."""
    d = make_dir(nobody)
    try:
        probe = Probe(role, call, d)
        return probe.finish(), probe.detail()
    finally:
        reap_orphans()
        shutil.rmtree(d, ignore_errors=True)


def run_held(role, nobody, inspect, prefix=()):
    """Runs the hold call; inspect(pid) runs while the probe is inside
    the sandbox and returns a list of problems."""
    d = make_dir(nobody)
    try:
        probe = Probe(role, "hold", d, prefix)
        problems = []
        if probe.wait_sandboxed():
            problems = inspect(probe.proc.pid)
        else:
            problems = ["never got into the sandbox"]
        end = probe.finish()  # closing stdin ends the hold
        if end != OK:
            problems.append(f"ended {end}: {probe.detail()}")
        return problems
    finally:
        reap_orphans()
        shutil.rmtree(d, ignore_errors=True)


def stop_and_continue(pid):
    os.kill(pid, signal.SIGSTOP)
    time.sleep(0.2)
    os.kill(pid, signal.SIGCONT)
    return []


def main():
    if os.geteuid() != 0:
        env.skip_or_fail("entering the sandboxes needs root")
    if not os.environ.get(PROBE_ENV):
        env.skip_or_fail(f"{PROBE_ENV} is not set (meson test sets it)")
    nobody = pwd.getpwnam("nobody")
    abi = landlock_abi()
    become_subreaper()
    failures = []
    for row in ROWS:
        role, call, want, why = row[:4]
        need = row[4] if len(row) > 4 else 0
        if need > abi:
            missing = (f"{role} {call}: needs Landlock ABI {need}, "
                       f"kernel {os.uname().release} has {abi}")
            if env.in_ci():
                # CI's kernel is the one the rows were written for: a
                # row that cannot run there hides a layer nobody checks.
                print(f"FAIL {missing} (skips are failures in CI)",
                      flush=True)
                failures.append(missing)
            else:
                print(f"skip {missing}", flush=True)
            continue
        got, detail = run_row(role, call, nobody)
        mark = "ok  " if got == want else "FAIL"
        print(f"{mark} {role:28} {call:22} {got:7} (want {want}: {why})",
              flush=True)
        if got != want:
            failures.append(f"{role} {call}: {got}, want {want} "
                            f"[{detail}]")
    def frontend(pid):
        return check_frontend(pid, nobody.pw_uid, nobody.pw_gid)

    def broker_user(pid, caps=(CAP_KILL,)):
        user = pwd.getpwnam(BROKER_USER)
        return check_broker(pid, user.pw_uid, user.pw_gid,
                            [BROKER_USER_GROUP], caps)

    def broker_anvil(pid):
        return check_broker(pid, caps=ANVIL_KICKS_CAPS)

    def broker_user_anvil(pid):
        return broker_user(pid, ANVIL_KICKS_CAPS)

    held = [
        ("frontend", frontend, (),
         "ids, capabilities, no_new_privs, seccomp, empty root"),
        # With this bit a uid change keeps the capabilities: the
        # frontend must clear them itself.
        ("frontend", frontend, NO_SETUID_FIXUP,
         "capabilities empty though started with SECBIT_NO_SETUID_FIXUP"),
        ("broker", check_broker, (),
         "ids, capabilities, no_new_privs, seccomp, not dumpable"),
        ("frontend", frontend, AMBIENT_KILL,
         "capabilities empty though started with an ambient one"),
        ("broker", check_broker, AMBIENT_KILL,
         "ambient set empty though started with CAP_KILL there"),
        ("broker-user", broker_user, (),
         "broker_user's ids and groups, CAP_KILL kept, not dumpable"),
        ("broker-anvil", broker_anvil, (),
         "anvil kicks: uid 0 without any capability"),
        ("broker-anvil", broker_anvil, AMBIENT_KILL,
         "anvil kicks: CAP_KILL from the ambient set not kept either"),
        ("broker-user-anvil", broker_user_anvil, (),
         "anvil kicks: broker_user's ids without any capability"),
    ]
    for role in ("frontend", "broker"):
        held.append((role, stop_and_continue, (),
                     "poll() resumes after SIGSTOP and SIGCONT"))
    for role, inspect, prefix, what in held:
        problems = run_held(role, nobody, inspect, prefix)
        print(f"{'FAIL' if problems else 'ok  '} {role:17} held: {what}"
              + "".join(f"\n     {p}" for p in problems))
        failures += [f"{role} held: {p}" for p in problems]
    print(f"{len(failures)} failure(s)")
    for f in failures:
        print(f"  {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
