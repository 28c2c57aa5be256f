#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgate and a broker socket it cannot use: one message per cause.

Each case builds one situation at the socket path (nothing there, a
stale socket file, a regular file, a stream socket, a SOCK_SEQPACKET
listener that answers garbage or hangs up, a socket the caller may not
write) and checks the exit status, that the error is one line on stderr
naming the likely fix, and that stdout stays empty (or, with -j, holds
the one JSON document). No daemon and no Dovecot are needed; as root the
permission case drops to nobody, so it runs either way.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import types

from kgtest.daemon import build_dir
from kgtest.runner import Runner, check

EXIT_UNAVAILABLE = 69
EXIT_NOPERM = 77
CMD_TIMEOUT = 30
ACCEPT_TIMEOUT = 10
NOBODY = 65534


def kickgate(*args, env=None, preexec=()):
    """Runs kickgate ARGS (preexec: a command that execs it); returns
    (exit code, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.pop("KICKGATE_SOCKET", None)
    full_env.update(env or {})
    argv = [*preexec, os.path.join(build_dir(), "kickgate"), *args]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                          capture_output=True, env=full_env,
                          timeout=CMD_TIMEOUT, encoding="utf-8",
                          errors="surrogateescape", check=False)
    return proc.returncode, proc.stdout, proc.stderr


def check_error(res, code, *texts):
    """res failed with code, nothing on stdout, and one stderr line that
    holds every text."""
    rc, out, err = res
    check(rc == code, f"exit {rc}, expected {code}: {err!r}")
    check(out == "", f"stdout {out!r}")
    lines = err.split("\n")
    check(len(lines) == 2 and lines[1] == "" and
          lines[0].startswith("kickgate: "),
          f"stderr {err!r}: expected one line")
    for text in texts:
        check(text in lines[0], f"stderr {err!r} lacks {text!r}")


@contextlib.contextmanager
def listener(path, kind, answer):
    """A socket of kind listening on path; answer(conn) serves the one
    connection it accepts, in a thread."""
    srv = socket.socket(socket.AF_UNIX, kind)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(ACCEPT_TIMEOUT)

    def serve():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        if thread.is_alive():
            # kickgate never connected: wake the accept it waits in.
            os.chmod(path, 0o600)
            with socket.socket(socket.AF_UNIX, kind) as s:
                s.connect(path)
        thread.join(ACCEPT_TIMEOUT)
        srv.close()
        os.unlink(path)


def answer_garbage(conn):
    conn.recv(4096)
    conn.send(b"HTTP/1.0 400 Bad Request\r\n\r\n")


def hang_up(conn):
    conn.recv(4096)


def case_missing_path(st):
    path = os.path.join(st.dir, "missing.sock")
    check_error(kickgate("who", "-S", path), EXIT_UNAVAILABLE,
                f"the broker socket {path} does not exist",
                "systemctl status kickgated.socket", "-S or KICKGATE_SOCKET")


def case_missing_path_from_environment(st):
    path = os.path.join(st.dir, "nodir", "missing.sock")
    check_error(kickgate("kick", "foo", env={"KICKGATE_SOCKET": path}),
                EXIT_UNAVAILABLE, f"the broker socket {path} does not exist")


def case_missing_path_json(st):
    path = os.path.join(st.dir, "missing.sock")
    rc, out, err = kickgate("kick", "-j", "-S", path, "foo")
    check(rc == EXIT_UNAVAILABLE, f"exit {rc}: {err!r}")
    doc = json.loads(out)
    check(doc["status"] == EXIT_UNAVAILABLE and
          "does not exist" in doc["error"], f"stdout {out!r}")
    check(err == f"kickgate: {doc['error']}\n", f"stderr {err!r}")


def case_stale_socket(st):
    path = os.path.join(st.dir, "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.bind(path)
    try:
        check_error(kickgate("who", "-S", path), EXIT_UNAVAILABLE,
                    f"nothing listens on {path}", "kickgated is not running",
                    "systemctl status kickgated.socket")
    finally:
        os.unlink(path)


def case_regular_file(st):
    path = os.path.join(st.dir, "file")
    with open(path, "w", encoding="ascii") as f:
        f.write("not a socket\n")
    try:
        check_error(kickgate("who", "-S", path), EXIT_UNAVAILABLE,
                    f"{path} is not a socket", "-S or KICKGATE_SOCKET")
    finally:
        os.unlink(path)


def case_stream_listener(st):
    path = os.path.join(st.dir, "stream.sock")
    with listener(path, socket.SOCK_STREAM, hang_up):
        check_error(kickgate("who", "-S", path), EXIT_UNAVAILABLE,
                    f"{path} is not a kickgated socket",
                    "-S or KICKGATE_SOCKET")


def case_seqpacket_garbage(st):
    path = os.path.join(st.dir, "garbage.sock")
    with listener(path, socket.SOCK_SEQPACKET, answer_garbage):
        check_error(kickgate("kick", "-S", path, "foo"), EXIT_UNAVAILABLE,
                    f"{path} is not a kickgated socket",
                    "not in kickgated's protocol", "-S or KICKGATE_SOCKET")


def case_seqpacket_hang_up(st):
    path = os.path.join(st.dir, "hangup.sock")
    with listener(path, socket.SOCK_SEQPACKET, hang_up):
        check_error(kickgate("who", "-S", path), EXIT_UNAVAILABLE,
                    f"no reply from {path}", "not a kickgated socket",
                    "journalctl -u kickgated")


def case_permission_denied(st):
    path = os.path.join(st.dir, "private.sock")
    preexec = ()
    if os.geteuid() == 0:
        preexec = ("setpriv", "--reuid", str(NOBODY), "--regid",
                   str(NOBODY), "--clear-groups")
    with listener(path, socket.SOCK_SEQPACKET, hang_up):
        os.chmod(path, 0o600 if preexec else 0)
        check_error(kickgate("who", "-S", path, preexec=preexec),
                    EXIT_NOPERM, f"permission denied on {path}",
                    "ask an administrator")


CASES = [
    ("missing_path_says_start_the_socket_unit", case_missing_path),
    ("missing_path_from_environment", case_missing_path_from_environment),
    ("missing_path_with_json_completes_the_document",
     case_missing_path_json),
    ("stale_socket_says_nothing_listens", case_stale_socket),
    ("regular_file_is_not_a_socket", case_regular_file),
    ("stream_listener_is_not_kickgated", case_stream_listener),
    ("seqpacket_garbage_is_not_kickgated", case_seqpacket_garbage),
    ("seqpacket_hang_up_without_reply", case_seqpacket_hang_up),
    ("permission_denied_exits_77", case_permission_denied),
]


@contextlib.contextmanager
def setup():
    with tempfile.TemporaryDirectory(prefix="kgsock") as path:
        # nobody must reach the sockets for the permission case to be
        # about the socket, not the directory.
        os.chmod(path, 0o755)
        yield types.SimpleNamespace(dir=path)


if __name__ == "__main__":
    runner = Runner()
    runner.group(CASES, setup)
    sys.exit(runner.finish())
