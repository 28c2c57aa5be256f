#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Bad input, from the kickgate command line and straight on the wire.

The CLI rejects every malformed user glob and network before contacting
the daemon, with its exit code and one line naming the problem. A client
that skips the CLI and writes raw packets to the daemon's SOCK_SEQPACKET
socket gets an error reply for anything malformed, and the daemon keeps
serving; a client that sends nothing is dropped after client_timeout_ms.
"""

import contextlib
import random
import socket
import struct
import time
import types

from kgtest.daemon import Kickgated
from kgtest.dovecot import Dovecot
from kgtest.runner import CheckFailed, check, main
from kgtest.scenarios import USERS

EXIT_OK = 0
EXIT_USAGE = 64
EXIT_DATAERR = 65
EXIT_NOMATCH = 68
CLIENT_TIMEOUT_MS = 500
REPLY_TIMEOUT = 5
# The daemon drops an idle client no sooner than client_timeout_ms and, on
# an idle machine, well within this.
IDLE_LATEST = 3.0
AUDIT_SETTLE = 0.5

# Wire format (proto/wire.h).
WIRE_VERSION = 3
OP_KICK, OP_WHO = 1, 2
PKT_RECORDS, PKT_END = 1, 2
NAME_MAX = 64
FIELD_NAME_MAX, FIELD_VALUE_MAX = 64, 255
REQ_MAX = (8 + 16 + 255 + 107 + NAME_MAX + 4 + FIELD_NAME_MAX
           + FIELD_VALUE_MAX + 16)
PKT_MAX = 96 * 1024
# Replies past the first packet that a client reads before giving up.
REPLY_PACKETS_MAX = 64
# A reset reported before the queued reply (the daemon closed with our
# unread packets pending) is read past this many times.
RESETS_MAX = 2

USE_U = "(for a user name that looks like this, use -u)"

# argv after "kick", exit code, text the message must contain.
CLI_ERRORS = [
    (["1.2.3"], EXIT_DATAERR, f"invalid network '1.2.3': is not a valid "
                              f"IPv4 address {USE_U}"),
    (["127.1"], EXIT_DATAERR, f"invalid network '127.1': is not a valid "
                              f"IPv4 address {USE_U}"),
    (["10.0.0.0/"], EXIT_DATAERR, f"invalid network '10.0.0.0/': has an "
                                  f"invalid prefix length {USE_U}"),
    (["1.2.3.4/"], EXIT_DATAERR, f"invalid network '1.2.3.4/': has an "
                                 f"invalid prefix length {USE_U}"),
    (["10.0.0.0/8x"], EXIT_DATAERR, f"invalid network '10.0.0.0/8x': has "
                                    f"an invalid prefix length {USE_U}"),
    (["fe80::1%eth0"], EXIT_DATAERR, f"invalid network 'fe80::1%eth0': has "
                                     f"an IPv6 zone (%...), which a client "
                                     f"address never has {USE_U}"),
    (["--net", "fe80::1%eth0"], EXIT_DATAERR,
     "invalid network 'fe80::1%eth0'"),
    (["a\tb"], EXIT_DATAERR, "invalid user glob 'a\\x09b'"),
    (["a" * 256], EXIT_DATAERR, "longer than 255 bytes"),
    ([""], EXIT_USAGE, "the user glob is empty"),
    (["-u", ""], EXIT_USAGE, "the user glob is empty"),
    (["foo", "bar"], EXIT_USAGE,
     "Multiple username masks not supported: 'bar' is a second user mask "
     "(quote a name that contains spaces)"),
    (["10.0.0.0/8", "192.168.0.0/16"], EXIT_USAGE,
     "Multiple network masks not supported: '192.168.0.0/16' is a second "
     "network (run kickgate once per network)"),
    (["-weird-user"], EXIT_USAGE,
     "unknown option '-w' (a user glob that starts with '-' goes after --)"),
    (["1.2.3.4/33"], EXIT_DATAERR, "invalid network '1.2.3.4/33'"),
]


def request(op=OP_WHO, flags=0, glob=b"", version=WIRE_VERSION):
    """A request packet without network, path, instance name, field or
    destination."""
    return (struct.pack("<8B", version, op, flags, 0, 0, len(glob), 0, 0)
            + glob + bytes(4))


GOOD_WHO = request()
_garbage = random.Random(1)
# First byte 0xff: never a valid version, whatever follows.
GARBAGE = [b"\xff" + _garbage.randbytes(99) for _ in range(50)]

# name, packets sent on one connection.
RAW_ERRORS = [
    ("truncated_header", [GOOD_WHO[:3]]),
    ("bad_version", [request(version=WIRE_VERSION + 1)]),
    ("old_version", [request(version=WIRE_VERSION - 1)]),
    ("unknown_op", [request(op=9)]),
    ("glob_with_control_byte", [request(glob=b"a\x01b")]),
    ("oversized_packet", [request(glob=b"a" * 200) + b"\0" * (2 * REQ_MAX)]),
    ("empty_packet", [b""]),
    ("stream_of_garbage", GARBAGE),
]


@contextlib.contextmanager
def setup():
    with Dovecot(USERS) as dovecot, Kickgated({
            "anvil": dovecot.anvil_path,
            "client_timeout_ms": CLIENT_TIMEOUT_MS}) as kg:
        yield types.SimpleNamespace(dovecot=dovecot, kg=kg,
                                    pids=kg.pids())


def cli_error_case(args, code, text):
    def case(st):
        before = len(st.kg.audit_lines())
        res = st.kg.run("kick", *args)
        check(res.code == code, f"exit {res.code}, expected {code}: "
                                f"{res.err!r}")
        check(res.out == "", f"stdout {res.out!r}")
        lines = res.err.split("\n")
        check(len(lines) == 2 and lines[1] == "" and
              lines[0].startswith("kickgate: ") and text in lines[0],
              f"stderr {res.err!r}, expected one line with {text!r}")
        time.sleep(AUDIT_SETTLE)
        check(len(st.kg.audit_lines()) == before,
              "the daemon got a request")

    return case


# Command lines in doveadm's freer forms, as Kickgated.run builds them
# (-S SOCK after the first word), the exit code and the whole stdout, or
# its start when it ends in "...". Nothing matches in the empty setup.
CLI_ACCEPTED = [
    ("options_after_the_user", ["kick", "nosuchuser", "-n"], EXIT_NOMATCH,
     "no users kicked\n"),
    ("dashed_user_after_dashdash", ["kick", "--", "-weird-user"],
     EXIT_NOMATCH, "no users kicked\n"),
    ("options_before_the_command", ["-1", "who"], EXIT_OK,
     "username proto pid ip\n"),
    ("help_command", ["help"], EXIT_OK, "usage: kickgate kick ..."),
    ("dash_h", ["-h"], EXIT_OK, "usage: kickgate kick ..."),
    ("dash_dash_help", ["--help"], EXIT_OK, "usage: kickgate kick ..."),
    ("dash_capital_v", ["-V"], EXIT_OK, "kickgate 0.1.0\n"),
    ("dash_dash_version", ["--version"], EXIT_OK, "kickgate 0.1.0\n"),
]


def cli_accepted_case(args, code, out):
    def case(st):
        res = st.kg.run(*args)
        check(res.code == code and res.err == "",
              f"exit {res.code}, expected {code}: {res.err!r}")
        if out.endswith("..."):
            check(res.out.startswith(out[:-3]), f"stdout {res.out!r}")
        else:
            check(res.out == out, f"stdout {res.out!r}, expected {out!r}")

    return case


def exchange(path, packets):
    """Sends packets on one connection, stopping when the daemon closes
    it; returns the reply packets read until end of stream."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(REPLY_TIMEOUT)
        s.connect(path)
        for pkt in packets:
            try:
                s.send(pkt)
            except (BrokenPipeError, ConnectionResetError):
                break
        replies = []
        resets = 0
        while len(replies) < REPLY_PACKETS_MAX:
            try:
                pkt = s.recv(PKT_MAX + 1)
            except ConnectionResetError:
                resets += 1
                if resets > RESETS_MAX:
                    break
                continue
            except socket.timeout:
                raise CheckFailed(f"no reply or close within "
                                  f"{REPLY_TIMEOUT}s") from None
            if not pkt:
                break
            replies.append(pkt)
        return replies


def error_status(replies):
    """The status of a reply that is exactly one end packet, else None."""
    if len(replies) != 1 or len(replies[0]) < 4:
        return None
    version, kind, status, _flags = replies[0][:4]
    return status if (version, kind) == (WIRE_VERSION, PKT_END) else None


def check_still_serving(st):
    res = st.kg.run("who", "-1")
    check(res.code == 0 and res.out.startswith("username proto pid ip\n"),
          f"who afterwards: exit {res.code}, {res.err!r}")
    check(st.kg.pids() == st.pids,
          f"daemon processes {st.kg.pids()}, were {st.pids}")


def case_good_packet_served(st):
    """The hand-made encoding is right: a good who gets records and an end
    packet with status 0."""
    replies = exchange(st.kg.sock, [GOOD_WHO])
    check(replies and replies[-1][:3] == bytes([WIRE_VERSION, PKT_END, 0]),
          f"reply {replies!r}")
    check(all(r[:2] == bytes([WIRE_VERSION, PKT_RECORDS])
              for r in replies[:-1]), f"reply {replies!r}")


def raw_error_case(packets):
    def case(st):
        replies = exchange(st.kg.sock, packets)
        status = error_status(replies)
        check(status in (EXIT_USAGE, EXIT_DATAERR),
              f"reply {[r[:24] for r in replies]!r}: expected one end "
              f"packet with status 64 or 65")
        check_still_serving(st)

    return case


def case_idle_client_dropped(st):
    start = time.monotonic()
    replies = exchange(st.kg.sock, [])
    took = time.monotonic() - start
    check(CLIENT_TIMEOUT_MS / 1000 <= took <= IDLE_LATEST,
          f"dropped after {took:.2f}s, client_timeout_ms is "
          f"{CLIENT_TIMEOUT_MS}")
    check(error_status(replies) == EXIT_USAGE, f"reply {replies!r}")
    check_still_serving(st)


CASES = [(f"cli_{' '.join(args)[:24]!r}_exits_{code}",
          cli_error_case(args, code, text))
         for args, code, text in CLI_ERRORS]
CASES += [(f"cli_{name}", cli_accepted_case(args, code, out))
          for name, args, code, out in CLI_ACCEPTED]
CASES.append(("raw_good_packet_served", case_good_packet_served))
CASES += [(f"raw_{name}_gets_error_reply", raw_error_case(packets))
          for name, packets in RAW_ERRORS]
CASES.append(("idle_client_dropped_after_client_timeout",
              case_idle_client_dropped))


if __name__ == "__main__":
    main((CASES, setup))
