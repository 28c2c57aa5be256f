#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Includes show the process model and its trust lines.

Every project header is included with its directory ("proto/wire.h"),
so only the top of the tree is searched and no project header can shadow
a system one. Over that, per directory, what its files may reach through
their includes, directly or through the headers they include:

  proto/     proto/ only: the wire format and parsers every side runs
  cli/       cli/, proto/: the CLI holds none of the daemon's code
  frontend/  frontend/, proto/, sandbox/: the unprivileged per-connection
             process sees neither policy nor the broker's logic
  broker/, policy/, sandbox/, daemon/: no cli/

Project headers include each other without a cycle.

Usage: check_includes.py SOURCE_ROOT, or --self-test (the checker
refuses a tree built to break each rule)."""
import os
import re
import sys
import tempfile

GENERATED = {"kg_config.h"}  # written into the build root by meson
DIRS = ("proto", "cli", "frontend", "broker", "policy", "sandbox", "daemon")
# Directory -> the directories its files may reach; None: any but cli/.
ALLOWED = {
    "proto": {"proto"},
    "cli": {"cli", "proto"},
    "frontend": {"frontend", "proto", "sandbox"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(root):
    for d in DIRS:
        top = os.path.join(root, d)
        if not os.path.isdir(top):
            continue
        for name in sorted(os.listdir(top)):
            if name.endswith((".c", ".h")):
                yield f"{d}/{name}"


def includes(root, path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return INCLUDE.findall(f.read())


def reach(root, path, seen):
    """Every project header path reaches through its includes."""
    for inc in includes(root, path):
        if inc in GENERATED or inc in seen:
            continue
        seen.add(inc)
        if os.path.isfile(os.path.join(root, inc)):
            reach(root, inc, seen)
    return seen


def cycle_from(root, path, stack, done):
    if path in stack:
        return stack[stack.index(path):] + [path]
    if path in done:
        return None
    done.add(path)
    for inc in includes(root, path):
        if inc.endswith(".h") and os.path.isfile(os.path.join(root, inc)):
            found = cycle_from(root, inc, stack + [path], done)
            if found:
                return found
    return None


def check(root):
    errors = []
    for path in sources(root):
        for inc in includes(root, path):
            if inc in GENERATED:
                continue
            if "/" not in inc or inc.startswith(("/", ".")):
                errors.append(f"{path}: include \"{inc}\" without its "
                              "directory (write \"DIR/NAME.h\")")
            elif not os.path.isfile(os.path.join(root, inc)):
                errors.append(f"{path}: include \"{inc}\" names no file "
                              "of the tree")
        side = path.split("/")[0]
        for inc in sorted(reach(root, path, set())):
            top = inc.split("/")[0]
            allowed = ALLOWED.get(side)
            bad = top == "cli" and side != "cli" if allowed is None \
                else top in DIRS and top not in allowed
            if bad:
                errors.append(f"{path}: reaches {inc}, which {side}/ must "
                              "not include")
    done = set()
    for path in sources(root):
        if path.endswith(".h"):
            found = cycle_from(root, path, [], done)
            if found:
                errors.append("include cycle: " + " -> ".join(found))
                break
    return errors


def self_test():
    """Each broken tree must be refused; the clean one accepted."""
    cases = {
        "clean": {},
        "no directory": {"proto/a.c": '#include "b.h"\n'},
        "frontend reaches policy through a header": {
            "frontend/f.c": '#include "proto/b.h"\n',
            "proto/b.h": '#include "policy/p.h"\n'},
        "broker includes cli": {"broker/k.c": '#include "cli/c.h"\n'},
        "proto includes broker": {"proto/a.c": '#include "broker/k.h"\n'},
        "cycle": {"proto/b.h": '#include "proto/c.h"\n',
                  "proto/c.h": '#include "proto/b.h"\n'},
    }
    base = {"proto/b.h": "", "proto/c.h": "", "policy/p.h": "",
            "cli/c.h": "", "broker/k.h": ""}
    failed = 0
    for name, files in cases.items():
        with tempfile.TemporaryDirectory() as root:
            for path, text in {**base, **files}.items():
                os.makedirs(os.path.join(root, os.path.dirname(path)),
                            exist_ok=True)
                with open(os.path.join(root, path), "w") as f:
                    f.write(text)
            refused = bool(check(root))
            ok = refused == (name != "clean")
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} self-test: {name} "
                  f"{'refused' if refused else 'accepted'}")
    return failed


def main():
    if sys.argv[1:] == ["--self-test"]:
        return 1 if self_test() else 0
    errors = check(sys.argv[1])
    for e in errors:
        print("FAIL " + e)
    n = sum(1 for _ in sources(sys.argv[1]))
    print(f"{n} files checked, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
