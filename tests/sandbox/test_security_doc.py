#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SECURITY.md's tables of system calls say what sandbox/sandbox.c does:
for each role the same calls, in the same order, with the same outcome
(allowed, or the errno it fails with) and the same reason. And the
frontend's list stays the smaller one, holding no call the broker's lacks
but the one SECURITY.md names."""

import os
import re
import sys

SOURCE_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           os.pardir, os.pardir)
TABLES = {"frontend_rules": "### Frontend system calls",
          "broker_rules": "### Broker system calls",
          "broker_signal_rules": "### Broker signal calls"}
ENTRY = re.compile(r'\b(ALLOW|ALLOW_IF|REFUSE)\(\s*(\w+),\s*'
                   r'(?:(E[A-Z]+),\s*)?((?:"(?:[^"\\]|\\.)*"\s*)+)')
LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')


def code_rules(text, table):
    start = text.index(f"static const struct rule {table}[] = {{")
    body = text[start:text.index("};", start)]
    rules = []
    for kind, call, err, literals in ENTRY.findall(body):
        why = "".join(LITERAL.findall(literals))
        rules.append((call, err if kind.startswith("REFUSE") else "",
                      why.replace("\\'", "'")))
    return rules


def doc_rules(text, heading):
    start = text.index(heading + "\n")
    rules = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        m = re.fullmatch(r"fails: `(E[A-Z]+)`", cells[2])
        if cells[2] != "allowed" and m is None:
            raise ValueError(f"unknown outcome in {line!r}")
        rules.append((cells[0].strip("`"), m.group(1) if m else "",
                      cells[3]))
    return rules


# The call on its client's socket that the broker never makes
# (SECURITY.md, "Frontend system calls").
FRONTEND_ONLY = {"recvfrom"}


def check_frontend_smaller(code):
    frontend = {c for c, _, _ in code_rules(code, "frontend_rules")}
    broker = {c for c, _, _ in code_rules(code, "broker_rules")}
    problems = []
    if len(frontend) >= len(broker):
        problems.append(f"frontend allows {len(frontend)} calls, broker "
                        f"{len(broker)}")
    if frontend - broker != FRONTEND_ONLY:
        problems.append(f"frontend-only calls {sorted(frontend - broker)}, "
                        f"SECURITY.md names {sorted(FRONTEND_ONLY)}")
    for p in problems:
        print(f"FAIL {p}")
    if not problems:
        print(f"ok   frontend: {len(frontend)} calls, broker: {len(broker)};"
              f" frontend only: {', '.join(sorted(FRONTEND_ONLY))}")
    return problems


def main():
    with open(os.path.join(SOURCE_ROOT, "sandbox", "sandbox.c")) as f:
        code = f.read()
    with open(os.path.join(SOURCE_ROOT, "SECURITY.md")) as f:
        doc = f.read()
    failed = False
    for table, heading in TABLES.items():
        want, have = code_rules(code, table), doc_rules(doc, heading)
        if not want:
            print(f"FAIL {table}: no rules found in sandbox.c")
            failed = True
        elif want != have:
            failed = True
            print(f"FAIL {heading} differs from {table}:")
            for i in range(max(len(want), len(have))):
                w = want[i] if i < len(want) else None
                h = have[i] if i < len(have) else None
                if w != h:
                    print(f"  row {i + 1}: code {w}, SECURITY.md {h}")
        else:
            print(f"ok   {heading}: {len(want)} rules")
    if check_frontend_smaller(code):
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
