#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgate's bash completion, loaded as bash-completion loads it.

Each case sources bash-completion and cli/kickgate.bash-completion in a
fresh bash, sets COMP_LINE, COMP_POINT, COMP_WORDS and COMP_CWORD as
bash does for a command line (split at blanks and around '='), calls the
completion function and compares COMPREPLY with what is expected:
commands, each command's options, file names after -S, nothing where
the caller must write a glob or a network, and instance names after -a.
The instance names come from the built kickgate, run by the completion
as "kickgate instances" against a small broker on a SOCK_SEQPACKET
socket that answers as kickgated does (wire version 3); the broker
checks that it was asked for the instances and nothing else. A broker
that never answers must not hold the completion for more than its short
timeout, and a missing one must leave no message on the terminal.
No root and no daemon are needed.
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from kgtest import env
from kgtest.runner import Runner, check

BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
WIRE_VERSION = 3
OP_INSTANCES = 3
PKT_RECORDS = 1
PKT_END = 2
REC_INSTANCE = 6
INSTANCES = [("default", "/run/dovecot/anvil"),
             ("tenant-b", "/run/dovecot-b/anvil"),
             ("tenant-c", "/run/dovecot-c/anvil")]
CMD_TIMEOUT = 30
# The completion gives "kickgate instances" two seconds; bash and
# bash-completion start in well under one on this machine.
SILENT_BROKER_LIMIT = 6.0

# Sources bash-completion and the completion, completes "$1" (the command
# line; COMP_WORDS follow as the other arguments) and prints COMPREPLY,
# one item a line, after a line saying whether "kickgate" has the
# completion registered.
DRIVER = r"""
set -u
line=$1 script=$2
shift 2
. /usr/share/bash-completion/bash_completion
. "$script"
complete -p kickgate >/dev/null 2>&1 && echo registered || echo unregistered
COMP_LINE=$line
COMP_POINT=${#line}
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
COMP_TYPE=9
COMPREPLY=()
_kickgate "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" \
	"${COMP_WORDS[COMP_CWORD > 0 ? COMP_CWORD - 1 : 0]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def comp_words(line):
    """COMP_WORDS as bash splits line with its default COMP_WORDBREAKS
    (only blanks and '=' occur here): '=' is a word of its own; a line
    ending in a blank has an empty word at the cursor."""
    words = []
    for token in line.split(" "):
        if token == "" and words:
            continue
        parts = token.split("=")
        for k, part in enumerate(parts):
            if k > 0:
                words.append("=")
            if part != "" or k == len(parts) - 1:
                words.append(part)
    if line.endswith(" ") and words[-1] != "":
        words.append("")
    return words


class Broker:
    """A kickgated stand-in on a SOCK_SEQPACKET socket: answers each
    connection's request with the INSTANCES rows and status 0, or, when
    silent, reads the request and never answers. Records each request."""

    def __init__(self, path, silent=False):
        self.path = path
        self.silent = silent
        self.requests = []
        self.held = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.srv.bind(path)
        self.srv.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            req = conn.recv(4096)
            self.requests.append(req)
            if self.silent:
                self.held.append(conn)
                continue
            with conn:
                rows = b"".join(self._row(n, p) for n, p in INSTANCES)
                conn.send(bytes([WIRE_VERSION, PKT_RECORDS]) + rows)
                conn.send(struct.pack("<4B4IH", WIRE_VERSION, PKT_END, 0, 0,
                                      0, 0, 0, len(INSTANCES), 0))

    @staticmethod
    def _row(name, path):
        payload = (bytes([len(name)]) + name.encode() +
                   bytes([len(path)]) + path.encode())
        return struct.pack("<BH", REC_INSTANCE, len(payload)) + payload

    def close(self):
        self.srv.shutdown(socket.SHUT_RDWR)
        self.srv.close()
        for conn in self.held:
            conn.close()
        self.thread.join(5)


class Completer:
    def __init__(self, tmp, kickgate, script):
        self.tmp = tmp
        self.kickgate = kickgate
        self.script = script
        # kickgate is found on PATH, as an installed one is.
        self.path = os.path.dirname(kickgate) + ":" + os.environ["PATH"]

    def complete(self, line, env_extra=None, words=None):
        """(COMPREPLY as a sorted list, stderr, seconds taken)."""
        run_env = {"PATH": self.path, "HOME": self.tmp, "LC_ALL": "C"}
        run_env.update(env_extra or {})
        argv = ["bash", "--norc", "--noprofile", "-c", DRIVER, "driver",
                line, self.script, *(words or comp_words(line))]
        start = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, encoding="utf-8",
                              env=run_env, cwd=self.tmp, timeout=CMD_TIMEOUT,
                              stdin=subprocess.DEVNULL, check=False)
        took = time.monotonic() - start
        check(proc.returncode == 0,
              f"{line!r}: bash exited {proc.returncode}: {proc.stderr!r}")
        out = proc.stdout.split("\n")
        check(out[0] == "registered",
              f"the completion did not register for kickgate: {out[0]!r}")
        return sorted(w for w in out[1:] if w != ""), proc.stderr, took

    def expect(self, line, expected, env_extra=None):
        got, err, _ = self.complete(line, env_extra)
        check(got == sorted(expected),
              f"{line!r}: COMPREPLY {got}, expected {sorted(expected)}")
        check(err == "", f"{line!r}: stderr {err!r}")


KICK_OPTS = ["-f", "-n", "-j", "-S", "-a", "-u", "-h", "--net", "--field",
             "--dest", "--help"]
WHO_OPTS = ["-1", "-j", "-S", "-a", "-u", "-h", "--net", "--field",
            "--dest", "--help"]
NAMES = [name for name, _ in INSTANCES]
PATHS = [path for _, path in INSTANCES]


def case_commands(c, sock):
    c.expect("kickgate ", ["kick", "who", "instances", "help"])
    c.expect("kickgate w", ["who"])
    c.expect("kickgate i", ["instances"])
    # Options before the command do not make a word the command.
    c.expect(f"kickgate -S {sock} k", ["kick"])
    c.expect("kickgate -j ", ["kick", "who", "instances", "help"])


def case_options(c, _sock):
    c.expect("kickgate -", ["-S", "-a", "-j", "-h", "--help", "-V",
                            "--version"])
    c.expect("kickgate kick -", KICK_OPTS)
    c.expect("kickgate who -", WHO_OPTS)
    c.expect("kickgate who --", ["--net", "--field", "--dest", "--help"])
    c.expect("kickgate instances -", ["-j", "-S", "--help"])
    c.expect("kickgate help -", [])
    # Options after the glob still belong to the command.
    c.expect("kickgate kick -n 'bob@*' -", KICK_OPTS)
    c.expect("kickgate kick -- -", [])


def case_arguments(c, _sock):
    """Where the caller writes a glob, a network, a field or a
    destination, nothing is offered; in particular not the commands."""
    for line in ("kickgate kick ", "kickgate kick bob ", "kickgate who -u ",
                 "kickgate who --net ", "kickgate kick --field ",
                 "kickgate kick -h ", "kickgate who --dest ",
                 "kickgate kick --net=", "kickgate kick --net=10."):
        c.expect(line, [])


def case_socket_files(c, sock):
    """-S completes file names, the way to a socket."""
    base = os.path.basename(sock)
    c.expect(f"kickgate who -S {c.tmp}/{base[:2]}", [sock])
    c.expect(f"kickgate -S {c.tmp}/{base[:2]}", [sock])


def case_instances(c, sock, broker):
    before = len(broker.requests)
    c.expect(f"kickgate -S {sock} kick -a ", NAMES)
    c.expect(f"kickgate kick -S {sock} -a t", ["tenant-b", "tenant-c"])
    c.expect(f"kickgate who -S{sock} -a tenant-b", ["tenant-b"])
    c.expect(f"kickgate who -fS {sock} -a ", NAMES)
    c.expect(f"kickgate who -S {sock} -a /run/dovecot-", PATHS[1:])
    c.expect(f"kickgate who -S {sock} -ate", ["-atenant-b", "-atenant-c"])
    c.expect("kickgate kick -a ", NAMES,
             env_extra={"KICKGATE_SOCKET": sock})
    # Each -a completion asked once, for the instances alone.
    asked = broker.requests[before:]
    check(len(asked) == 7, f"{len(asked)} requests, expected 7")
    for req in asked:
        check(len(req) >= 8 and req[0] == WIRE_VERSION and
              req[1] == OP_INSTANCES,
              f"request {req!r} is not version 3's instances")
    # The kickgate being completed is the one run.
    words = [c.kickgate, "who", "-S", sock, "-a", ""]
    got, _, _ = c.complete(" ".join(words), words=words)
    check(got == NAMES, f"completing {c.kickgate}: {got}")


def case_no_broker(c, _sock):
    """No broker at the socket: no names, and no message on the
    terminal."""
    missing = os.path.join(c.tmp, "missing.sock")
    c.expect(f"kickgate kick -S {missing} -a ", [])
    c.expect("kickgate kick -a ", [], env_extra={"KICKGATE_SOCKET": missing})


def case_silent_broker(c, _sock):
    path = os.path.join(c.tmp, "silent.sock")
    silent = Broker(path, silent=True)
    try:
        got, err, took = c.complete(f"kickgate kick -S {path} -a ")
    finally:
        silent.close()
    check(got == [] and err == "", f"COMPREPLY {got}, stderr {err!r}")
    check(len(silent.requests) == 1, f"{len(silent.requests)} requests")
    check(took < SILENT_BROKER_LIMIT,
          f"the completion waited {took:.1f} s for a silent broker")


def main():
    kickgate = os.environ.get("KG_KICKGATE", "")
    script = os.environ.get("KG_COMPLETION", "")
    if not os.path.isfile(BASH_COMPLETION) or shutil.which("bash") is None:
        env.skip_or_fail("bash-completion is not installed")
    check_inputs = os.access(kickgate, os.X_OK) and os.path.isfile(script)
    if not check_inputs:
        print(f"FAIL KG_KICKGATE={kickgate!r} or KG_COMPLETION={script!r} "
              "is missing")
        sys.exit(1)
    runner = Runner()
    with tempfile.TemporaryDirectory(prefix="kg-completion-") as tmp:
        sock = os.path.join(tmp, "kickgate.sock")
        broker = Broker(sock)
        c = Completer(tmp, kickgate, script)
        try:
            for name, func in (("commands", case_commands),
                               ("options", case_options),
                               ("arguments", case_arguments),
                               ("socket_files", case_socket_files),
                               ("no_broker", case_no_broker),
                               ("silent_broker", case_silent_broker)):
                runner.run(name, func, c, sock)
            runner.run("instances", case_instances, c, sock, broker)
        finally:
            broker.close()
    sys.exit(runner.finish())


if __name__ == "__main__":
    main()
