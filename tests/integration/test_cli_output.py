#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgate who for a person and for a script, against a live daemon.

With standard output on a terminal (a pseudo-terminal here) the columns
are padded to their widths, numbers aligned right, as doveadm pads its
tables; in a pipe the fields are separated by single spaces. Both show
the same rows.
"""

import contextlib
import os
import pty
import re
import subprocess
import types

from kgtest.daemon import Kickgated, build_dir
from kgtest.dovecot import Dovecot
from kgtest.runner import check, main
from kgtest.scenarios import USERS, session_set

CMD_TIMEOUT = 30
# A padded default who line: user, count, services, (pids), (ips). The
# services hold single spaces, so only the parentheses delimit them.
GROUP_RE = re.compile(r"^(\S+) +(\S+) (.*?) +(\(.*?\)) +(\(.*?\))$")
GROUP_PIPED_RE = re.compile(r"^(\S+) (\S+) (.*?) (\(.*?\)) (\(.*?\))$")


def on_terminal(kg, *args):
    """Runs kickgate ARGS with standard output on a pseudo-terminal;
    returns (exit code, output with the terminal's CR LF as LF, stderr)."""
    master, slave = pty.openpty()
    argv = [os.path.join(build_dir(), "kickgate"), args[0], "-S", kg.sock,
            *args[1:]]
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave,
                          stderr=subprocess.PIPE) as proc:
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        err = proc.stderr.read()
        code = proc.wait(CMD_TIMEOUT)
    out = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    return code, out, err.decode("utf-8")


def padded(rows, right):
    """rows as kickgate pads them: each column as wide as its widest cell,
    columns in right aligned right, no trailing spaces."""
    widths = {}
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths.get(i, 0), len(cell))
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            last = i == len(row) - 1
            if i in right:
                cells.append(cell.rjust(widths[i]))
            else:
                cells.append(cell if last else cell.ljust(widths[i]))
        lines.append(" ".join(cells) + "\n")
    return "".join(lines)


def split_rows(text, pattern):
    rows = []
    for line in text.splitlines():
        if pattern is None:
            rows.append(line.split())
            continue
        m = pattern.match(line)
        check(m is not None, f"line {line!r} is not a who line")
        rows.append(list(m.groups()))
    return rows


def check_listing(st, args, pattern, piped_pattern, right):
    code, out, err = on_terminal(st.kg, "who", *args)
    check(code == 0 and err == "", f"terminal: exit {code}, {err!r}")
    res = st.kg.run("who", *args)
    check(res.code == 0 and res.err == "", f"pipe: exit {res.code}")
    cells = split_rows(out, pattern)
    check(len(cells) > 2, f"terminal output {out!r}")
    check(out == padded(cells, right),
          f"terminal output not padded:\n{out}")
    piped = split_rows(res.out, piped_pattern)
    check(res.out == "".join(" ".join(r) + "\n" for r in piped),
          f"piped output not single-spaced:\n{res.out}")
    check(cells[0] == piped[0] and sorted(cells[1:]) == sorted(piped[1:]),
          f"terminal rows {cells} differ from piped rows {piped}")


def case_who_separate_padded_on_terminal(st):
    check_listing(st, ["-1"], None, None, {2})


def case_who_padded_on_terminal(st):
    check_listing(st, [], GROUP_RE, GROUP_PIPED_RE, {1})


@contextlib.contextmanager
def setup():
    with Dovecot(USERS) as dovecot, \
            Kickgated({"anvil": dovecot.anvil_path}) as kg, \
            session_set(dovecot):
        yield types.SimpleNamespace(dovecot=dovecot, kg=kg)


CASES = [
    ("who_separate_padded_on_terminal_single_spaced_in_pipe",
     case_who_separate_padded_on_terminal),
    ("who_padded_on_terminal_single_spaced_in_pipe",
     case_who_padded_on_terminal),
]


if __name__ == "__main__":
    main((CASES, setup))
