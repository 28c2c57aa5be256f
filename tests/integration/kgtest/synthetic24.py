# SPDX-License-Identifier: MIT
"""Synthetic connections in a real Dovecot 2.4 anvil (protocol 2), for
load tests and benchmarks: the 2.4 counterpart of kgtest.synthetic, with
the same users, addresses and pids.

A 2.4 service registers each connection in anvil with

    CONNECT <conn-guid> <pid> <user> <service> <ip> [<kick-type>
            [<dest-ip> [<alt-usernames>]]]

(TAB-separated, each field escaped; the alternative usernames are one
field, itself the escaped, TAB-joined list "field value field value"),
after the handshake any client makes: anvil's VERSION line, the client's
VERSION line, then an empty line for a client that names no service and
pid. Anvil 2.4.1 takes CONNECT from any client of its socket (2.4.4 and
later only from the master's shared FIFO, so this fixture needs 2.4.1 to
2.4.3), and keeps a client's connections when the client goes away: they
go with a DISCONNECT, or when the master reports their pid dead, which
never happens here.

Connection i has the GUID guid(i), pid synthetic.first_pid() + i, kick
type S (a plain SIGTERM, which fails with ESRCH at a pid above any
pid_max, so a kick that selects it reaches nothing) and the alternative
username user_tenant = its user's domain, as kgtest.dovecot24's userdb
sets it.
"""

from kgtest import synthetic
from kgtest.dovecot24 import TENANT_FIELD, anvil_handshake

SERVICE = "imap"
KICK_TYPE = "S"
# The GUIDs' first half: "kgsynth\0"; the second half is i.
GUID_PREFIX = "6b6773796e746800"
FLOOR_ARGS = ("-2",)


def guid(i):
    """Connection i's GUID, 32 hex digits, never all zero (anvil's "no
    GUID")."""
    return f"{GUID_PREFIX}{i:016x}"


def _escape(text):
    """Anvil's field escaping (the \\001 escape first)."""
    return (text.replace("\x01", "\x011").replace("\t", "\x01t")
            .replace("\r", "\x01r").replace("\n", "\x01n"))


def tenant(i):
    return synthetic.user(i).partition("@")[2]


def connect_line(i, pid0):
    fields = ["CONNECT", guid(i), str(pid0 + i), synthetic.user(i), SERVICE,
              synthetic.address(i), KICK_TYPE, "",
              f"{_escape(TENANT_FIELD)}\t{_escape(tenant(i))}"]
    return "\t".join(_escape(f) for f in fields) + "\n"


def connect_lines(n, pid0):
    return "".join(connect_line(i, pid0) for i in range(n)).encode()


def dump_count(floor, anvil):
    """How many connections anvil's CONNECT-DUMP lists."""
    return synthetic.dump_count(floor, anvil, FLOOR_ARGS)


def register(anvil, n, floor):
    """Registers n connections; returns the open anvil connection once
    the dump lists n."""
    return synthetic.hold(anvil, connect_lines(n, synthetic.first_pid()),
                          lambda: dump_count(floor, anvil), n,
                          handshake=anvil_handshake)


def registered(anvil, n):
    """register() with the build's bench/floor as the dump counter; the
    connection is a context manager, held for the with block."""
    return register(anvil, n, synthetic.floor_path())
