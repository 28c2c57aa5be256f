#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Proves that the confinement tests notice the loss of any one restriction.

The source tree is copied and built apart; then, one at a time, each
restriction of sandbox/sandbox.c is removed from the copy: an argument
check or an errno rule of either seccomp table, a whole filter, a
privilege step, a Landlock layer, scope or right. Each mutant is rebuilt
and the confinement tests run on it; at least one of them must fail. A
mutant that passes them all, a mutation whose text is no longer in the
source, or a mutant that does not build fails this test.

Argument checks and errno rules are found in the tables themselves, so a
check added later is covered without a change here.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from kgtest import env

SANDBOX_C = os.path.join("sandbox", "sandbox.c")
# The tests that must notice: the probe (each layer alone and together),
# the Landlock rights table, the compromised frontend, and the running
# daemon's /proc view.
CHECKS = ["sandbox_probe", "landlock_rights", "compromised_frontend",
          "sandbox_daemon"]
BUILD_TIMEOUT = 900
TEST_TIMEOUT = 600

LANDLOCK_ABI1_RIGHTS = [
    "EXECUTE", "WRITE_FILE", "READ_FILE", "READ_DIR", "REMOVE_DIR",
    "REMOVE_FILE", "MAKE_CHAR", "MAKE_DIR", "MAKE_REG", "MAKE_SOCK",
    "MAKE_FIFO", "MAKE_BLOCK", "MAKE_SYM",
]

# name, old text, new text: each old text must occur once in sandbox.c.
STEPS = [
    ("frontend: no seccomp filter",
     "\treturn seccomp_filter(KG_SANDBOX_FRONTEND);", "\treturn 0;"),
    ("broker: no seccomp filter",
     "\treturn seccomp_filter(role);", "\treturn 0;"),
    ("seccomp: unlisted calls logged, not killed",
     "seccomp_init(SCMP_ACT_KILL_PROCESS)", "seccomp_init(SCMP_ACT_LOG)"),
    ("frontend: no Landlock",
     "\t    kg_sandbox_landlock(KG_SANDBOX_FRONTEND) < 0)", "\t    0)"),
    ("broker: no Landlock",
     "\t    kg_sandbox_landlock(role) < 0)", "\t    0)"),
    ("frontend: no Landlock signal scope",
     "(role == KG_SANDBOX_BROKER ? 0 : LANDLOCK_SCOPE_SIGNAL)", "0"),
    ("anvil kicks: no Landlock signal scope",
     "(role == KG_SANDBOX_BROKER ? 0 :", "(broker ? 0 :"),
    ("anvil kicks: signal rules installed",
     "\tif (role != KG_SANDBOX_BROKER)\n\t\treturn 0;", ""),
    ("Landlock: no abstract socket scope",
     "LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET |", "0 |"),
    ("broker: Landlock reads / instead of /proc",
     'ruleset_allow(fd, "/proc",', 'ruleset_allow(fd, "/",'),
    ("Landlock: REFER unhandled",
     "r |= LANDLOCK_ACCESS_FS_REFER;", "r |= 0;"),
    ("Landlock: TRUNCATE unhandled",
     "r |= LANDLOCK_ACCESS_FS_TRUNCATE;", "r |= 0;"),
    ("Landlock: IOCTL_DEV unhandled",
     "r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;", "r |= 0;"),
    ("broker: no securebits",
     "\tif (prctl(PR_SET_SECUREBITS,", "\tif (0 && prctl(PR_SET_SECUREBITS,"),
    ("no no_new_privs",
     "\tif (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||", "\tif ("),
    ("dumpable",
     "\t    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)",
     "\t    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)"),
    ("bounding set kept",
     "\t\tif (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)",
     "\t\tif (0)"),
    ("broker: every capability kept",
     "\tif (set_caps(keep, signals ? 1 : 0) < 0)",
     "\tif (0 && set_caps(keep, signals ? 1 : 0) < 0)"),
    ("anvil kicks: CAP_KILL kept", "set_caps(keep, signals ? 1 : 0)",
     "set_caps(keep, signals ? 1 : 1)"),
    ("frontend: capabilities kept",
     "\tif (set_caps(NULL, 0) < 0)", "\tif (0 && set_caps(NULL, 0) < 0)"),
    ("frontend: no empty root",
     "\tif (enter_empty_root() < 0)", "\tif (0 && enter_empty_root() < 0)"),
    ("frontend: supplementary groups kept",
     "\tif (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||",
     "\tif ((0 && setgroups(0, NULL) < 0) || setresgid(gid, gid, gid) < 0 ||"),
    ("frontend: gid kept",
     "setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||",
     "setgroups(0, NULL) < 0 || (0 && setresgid(gid, gid, gid) < 0) ||"),
    ("broker: broker_user's groups not taken",
     "\tif (setgroups(ids->n_groups, ids->groups) < 0 ||",
     "\tif ((0 && setgroups(ids->n_groups, ids->groups) < 0) ||"),
    ("broker: broker_user's gid not taken",
     "\t    setresgid(ids->gid, ids->gid, ids->gid) < 0 ||",
     "\t    (0 && setresgid(ids->gid, ids->gid, ids->gid) < 0) ||"),
    ("broker: broker_user's uid not taken",
     "\t    setresuid(ids->uid, ids->uid, ids->uid) < 0)",
     "\t    (0 && setresuid(ids->uid, ids->uid, ids->uid) < 0))"),
    ("frontend: uid kept",
     "\t    setresuid(uid, uid, uid) < 0)",
     "\t    (0 && setresuid(uid, uid, uid) < 0))"),
]

STEPS += [(f"Landlock: {right} unhandled",
           "uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;",
           "uint64_t r = ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1) & "
           f"~LANDLOCK_ACCESS_FS_{right};")
          for right in LANDLOCK_ABI1_RIGHTS]


def table_mutations(text):
    """One mutation per argument check and per errno rule in the seccomp
    tables: the check is dropped, the rule becomes an allow rule."""
    start = text.index("static const struct rule frontend_rules[]")
    # The broker's tables, its signals' too, follow the frontend's.
    broker = text.index("static const struct rule broker_rules[]") - start
    tables = text[start:text.index("#define N_RULES")]
    found = []

    def role(pos):
        return "broker" if pos > broker else "frontend"

    for m in re.finditer(r",\s*ARG_[A-Z]+\(", tables):
        close = matching_paren(tables, m.end() - 1)
        old = tables[rule_start(tables, m.start()):close + 1]
        new = old.replace(tables[m.start():close + 1], "", 1)
        check = one_line(tables[m.start() + 1:close + 1])
        found.append((f"{role(m.start())} seccomp: {rule_call(old)} without "
                      f"{check}", old, new))
    for m in re.finditer(r"REFUSE\((\w+), (\w+),", tables):
        found.append((f"{role(m.start())} seccomp: {m.group(1)} allowed "
                      f"instead of {m.group(2)}", m.group(0),
                      f"ALLOW({m.group(1)},"))
    return found


def matching_paren(s, i):
    depth = 0
    for j in range(i, len(s)):
        depth += {"(": 1, ")": -1}.get(s[j], 0)
        if depth == 0:
            return j
    raise ValueError("unbalanced parentheses in the seccomp tables")


def rule_start(s, i):
    """Where the table entry holding position i begins: its text makes the
    mutation's old text unique."""
    return max(s.rfind("ALLOW_IF(", 0, i), s.rfind("REFUSE", 0, i))


def rule_call(entry):
    return entry[entry.index("(") + 1:entry.index(",")]


def one_line(s):
    return " ".join(s.split())


def copy_tree(src, dst):
    def ignore(path, names):
        if os.path.samefile(path, src):
            return [n for n in names if n.startswith("build") or
                    n == ".git"]
        return []
    shutil.copytree(src, dst, ignore=ignore)


def run(argv, timeout):
    return subprocess.run(argv, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout, text=True)


def failed_checks(build):
    """Runs CHECKS on build; returns the names of those that did not pass,
    or None when the build failed."""
    if run(["ninja", "-C", build], BUILD_TIMEOUT).returncode != 0:
        return None
    log = os.path.join(build, "meson-logs", "testlog.json")
    if os.path.exists(log):
        os.unlink(log)
    run(["meson", "test", "-C", build, "--no-rebuild", *CHECKS],
        TEST_TIMEOUT)
    results = {}
    with open(log) as f:
        for line in f:
            rec = json.loads(line)
            # "project:suite / name"
            results[rec["name"].rpartition(" / ")[2]] = rec["result"]
    return [n for n in CHECKS if results.get(n) != "OK"]


def main():
    if os.geteuid() != 0:
        env.skip_or_fail("the confinement tests need root")
    src = os.environ["KG_SOURCE_ROOT"]
    with open(os.path.join(src, SANDBOX_C)) as f:
        original = f.read()
    steps = STEPS + table_mutations(original)
    tmp = tempfile.mkdtemp(prefix="kgrm", dir="/tmp")
    problems = []
    try:
        tree, build = os.path.join(tmp, "src"), os.path.join(tmp, "build")
        copy_tree(src, tree)
        setup = run(["meson", "setup", build, tree], BUILD_TIMEOUT)
        if setup.returncode != 0:
            print(setup.stdout[-3000:])
            return 1
        base = failed_checks(build)
        print(f"unchanged source: {'builds, checks pass' if base == [] else base}",
              flush=True)
        if base != []:
            return 1
        target = os.path.join(tree, SANDBOX_C)
        for name, old, new in steps:
            problems += try_mutation(build, target, original, name, old, new)
        with open(target, "w") as f:
            f.write(original)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(steps)} removals, {len(problems)} problem(s)")
    for p in problems:
        print(f"  {p}")
    return 1 if problems else 0


def try_mutation(build, target, original, name, old, new):
    if original.count(old) != 1:
        print(f"FAIL {name}: text found {original.count(old)} times")
        return [f"{name}: mutation text not found once"]
    with open(target, "w") as f:
        f.write(original.replace(old, new))
    caught = failed_checks(build)
    if caught is None:
        print(f"FAIL {name}: the mutant does not build")
        return [f"{name}: does not build"]
    mark = "ok  " if caught else "FAIL"
    print(f"{mark} {name}: caught by {', '.join(caught) or 'nothing'}",
          flush=True)
    return [] if caught else [f"{name}: no test noticed"]


if __name__ == "__main__":
    sys.exit(main())
