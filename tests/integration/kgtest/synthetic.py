# SPDX-License-Identifier: MIT
"""Synthetic connections in a real anvil, for load tests and benchmarks.

Anvil takes CONNECT lines from any client of its socket. register() sends
N of them over one connection and returns that connection open: anvil 2.3
keeps a client's connections when the client goes away (they go when
Dovecot's master reports the pid dead, which never happens here), but the
caller holds the connection for as long as it uses them all the same.

Connection i is "imap/IP/useri@tenantK.example" (K = i mod TENANTS) with
pid first_pid() + i. Every pid lies above the kernel's largest possible
pid_max, so no kick and no signal can ever reach a real process.
Addresses alternate between IPv4 and IPv6.
"""

import os
import socket
import subprocess

from kgtest.daemon import build_dir
from kgtest.env import wait_until

# The largest pid_max the kernel accepts on 64-bit machines.
PID_MAX_LIMIT = 4194304
TENANTS = 10
REGISTER_TIMEOUT = 300


def first_pid():
    """The first synthetic pid: above pid_max now and at any later time."""
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    return max(pid_max, PID_MAX_LIMIT) + 1


def user(i):
    return f"user{i}@tenant{i % TENANTS}.example"


def address(i):
    if i % 2:
        return f"2001:db8:{i >> 16:x}:{i & 0xffff:x}::1"
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def connect_lines(n, pid0):
    lines = [b"VERSION\tanvil\t1\t0\n"]
    lines += [f"CONNECT\t{pid0 + i}\timap/{address(i)}/{user(i)}\n".encode()
              for i in range(n)]
    return b"".join(lines)


def dump_count(floor, anvil, floor_args=()):
    """How many connection lines anvil's CONNECT-DUMP holds, read by
    bench/floor (floor_args: its options, e.g. -2 for protocol 2)."""
    res = subprocess.run([floor, *floor_args, anvil], capture_output=True,
                         text=True, timeout=REGISTER_TIMEOUT, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"floor failed: {res.stderr.strip()}")
    return int(res.stdout.split()[2])


def hold(anvil, payload, count, want, handshake=None):
    """Connects to anvil, runs handshake(sock) if given, sends payload
    (CONNECT lines after any VERSION line) and returns the connection
    open once count() == want."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(REGISTER_TIMEOUT)
        sock.connect(anvil)
        if handshake:
            handshake(sock)
        sock.sendall(payload)
        if not wait_until(lambda: count() == want, REGISTER_TIMEOUT,
                          interval=0.5):
            raise RuntimeError(f"anvil did not list {want} connections")
    except BaseException:
        sock.close()
        raise
    return sock


def register(anvil, n, floor, expect_total=None):
    """Registers n connections; returns the open anvil connection once
    the dump lists expect_total lines (default n)."""
    want = n if expect_total is None else expect_total
    return hold(anvil, connect_lines(n, first_pid()),
                lambda: dump_count(floor, anvil), want)


def floor_path():
    """The build's bench/floor."""
    return os.path.join(build_dir(), "bench", "floor")


def registered(anvil, n):
    """register() with the build's bench/floor as the dump counter; the
    connection is a context manager, held for the with block."""
    return register(anvil, n, floor_path())
