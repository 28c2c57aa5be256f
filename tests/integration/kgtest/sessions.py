# SPDX-License-Identifier: MIT
"""Real IMAP and POP3 client sessions against a test Dovecot.

A session connects from a chosen loopback source address (Linux answers
on all of 127.0.0.0/8 without configuration; '::1' selects IPv6), logs
in and keeps the connection open, so anvil lists it until the server side
goes away. Every network wait is bounded.
"""

import collections
import socket
import time

from kgtest.env import wait_until

TIMEOUT = 10
LINE_MAX = 65536
REGISTER_TIMEOUT = 15


class SessionError(RuntimeError):
    pass


class _Session:
    """Line-oriented client connection; subclasses speak the protocol."""

    service = None

    def __init__(self, dovecot, user, password, src="127.0.0.2",
                 timeout=TIMEOUT):
        self.user = user
        self.src = src
        self.timeout = timeout
        self._buf = b""
        self._open = True
        family = socket.AF_INET6 if ":" in src else socket.AF_INET
        dst = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(timeout)
            self._sock.bind((src, 0))
            self._sock.connect((dst, self._port(dovecot)))
            self._login(password)
        except BaseException:
            self._sock.close()
            raise

    def __repr__(self):
        return f"{self.service}:{self.user}@{self.src}"

    def _port(self, dovecot):
        raise NotImplementedError

    def _login(self, password):
        raise NotImplementedError

    def _send(self, line):
        if any(c in line for c in "\r\n\0"):
            raise ValueError(f"line break or NUL in command: {line!r}")
        self._sock.sendall(line.encode() + b"\r\n")

    def _readline(self, deadline):
        """Returns one line without CRLF, or None at EOF.

        Raises socket.timeout at the deadline; buffered data is kept.
        """
        while b"\n" not in self._buf:
            if len(self._buf) > LINE_MAX:
                raise SessionError("server line too long")
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete line")
            self._sock.settimeout(left)
            chunk = self._sock.recv(4096)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def _expect(self, deadline, prefix):
        line = self._readline(deadline)
        if line is None or not line.startswith(prefix):
            raise SessionError(f"{self!r}: expected {prefix!r}, got {line!r}")
        return line

    def _noop_ok(self, deadline):
        raise NotImplementedError

    def alive(self, timeout=5):
        """True when a NOOP gets a proper OK reply within timeout.

        False on EOF, reset, BYE or no answer; a session once found dead
        stays dead.
        """
        if not self._open:
            return False
        try:
            if self._noop_ok(time.monotonic() + timeout):
                return True
        except (OSError, SessionError):
            pass
        self.close()
        return False

    def wait_closed(self, timeout=5):
        """Waits, without sending, until the server closes the connection.

        Lines sent before closing (IMAP's "* BYE") are read and dropped.
        """
        if not self._open:
            return True
        deadline = time.monotonic() + timeout
        try:
            while self._readline(deadline) is not None:
                pass
        except socket.timeout:
            return False
        except OSError:
            pass
        self.close()
        return True

    def close(self):
        self._open = False
        self._sock.close()


class ImapSession(_Session):
    service = "imap"

    def __init__(self, *args, **kwargs):
        self._tag = 0
        super().__init__(*args, **kwargs)

    def _port(self, dovecot):
        return dovecot.imap_port

    def _command(self, text, deadline):
        """Sends a tagged command; returns (untagged lines, tagged line)."""
        self._tag += 1
        tag = f"a{self._tag}"
        self._send(f"{tag} {text}")
        untagged = []
        while True:
            line = self._readline(deadline)
            if line is None:
                raise SessionError(f"{self!r}: EOF after {text.split()[0]}")
            if line.startswith(tag + " "):
                return untagged, line[len(tag) + 1:]
            untagged.append(line)

    @staticmethod
    def _quote(s):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def _login(self, password):
        deadline = time.monotonic() + self.timeout
        self._expect(deadline, "* OK")
        _, status = self._command(
            f"LOGIN {self._quote(self.user)} {self._quote(password)}",
            deadline)
        if not status.startswith("OK"):
            raise SessionError(f"{self!r}: LOGIN failed: {status}")

    def _noop_ok(self, deadline):
        untagged, status = self._command("NOOP", deadline)
        if any(line.startswith("* BYE") for line in untagged):
            return False
        return status.startswith("OK")


class Pop3Session(_Session):
    service = "pop3"

    def _port(self, dovecot):
        return dovecot.pop3_port

    def _login(self, password):
        deadline = time.monotonic() + self.timeout
        self._expect(deadline, "+OK")
        self._send(f"USER {self.user}")
        self._expect(deadline, "+OK")
        self._send(f"PASS {password}")
        self._expect(deadline, "+OK")

    def _noop_ok(self, deadline):
        self._send("NOOP")
        line = self._readline(deadline)
        return line is not None and line.startswith("+OK")


def anvil_ident(dovecot, s):
    """(service, ip, user) as anvil lists session s: a proxy (a Dovecot
    with proxied users) lists a proxied session under its login
    service."""
    proxied = s.user in getattr(dovecot, "proxied", ())
    return (f"{s.service}-login" if proxied else s.service, s.src, s.user)


def _registered(dovecot, sessions):
    want = collections.Counter(anvil_ident(dovecot, s) for s in sessions)
    have = collections.Counter()
    for ident, _pid, refcount in dovecot.anvil_dump():
        have[ident] += refcount
    return all(have[key] >= n for key, n in want.items())


def wait_registered(dovecot, sessions, timeout=REGISTER_TIMEOUT):
    """Waits until anvil (what doveadm who reads) counts every session.

    A mail process registers with anvil asynchronously after the login
    reply, so a fresh session may be missing for a moment.
    """
    if not wait_until(lambda: _registered(dovecot, sessions), timeout):
        raise SessionError(f"not all sessions registered in anvil within "
                           f"{timeout}s: {sessions!r}")


def open_sessions(dovecot, specs, timeout=REGISTER_TIMEOUT):
    """Logs in one session per (session class, user, src) in specs.

    Passwords come from dovecot.users. Returns the sessions once doveadm
    who shows them all; closes them again if that fails.
    """
    sessions = []
    try:
        for cls, user, src in specs:
            sessions.append(cls(dovecot, user, dovecot.users[user], src))
        wait_registered(dovecot, sessions, timeout)
    except BaseException:
        for s in sessions:
            s.close()
        raise
    return sessions
