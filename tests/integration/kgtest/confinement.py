# SPDX-License-Identifier: MIT
"""What the kernel shows about a confined kickgated process.

check_frontend and check_broker read /proc/PID (as root) and return a list
of problems, empty when the process is confined as SECURITY.md says:
no_new_privs, seccomp filter mode with at least one filter, not dumpable,
and the role's ids and capability sets.
"""

import os
import subprocess

from kgtest.env import wait_until

CAP_KILL = 5
# What a broker keeps when anvil does every kick (every instance is pinned
# to "protocol = 2.4"): nothing.
ANVIL_KICKS_CAPS = ()
SECCOMP_MODE_FILTER = "2"
CAP_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def status(pid):
    """/proc/PID/status as {field: value}."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def wait_filtered(pids, timeout=5):
    """Waits (bounded) until every pid runs under a seccomp filter: the
    daemon says it listens before its processes have finished entering
    their sandboxes."""
    return wait_until(lambda: all(status(p).get("Seccomp") ==
                                  SECCOMP_MODE_FILTER for p in pids),
                      timeout)


def _caps(fields):
    return {name: int(fields[name], 16) for name in CAP_SETS}


def _common(fields):
    problems = []
    if fields.get("NoNewPrivs") != "1":
        problems.append(f"NoNewPrivs is {fields.get('NoNewPrivs')}")
    if fields.get("Seccomp") != SECCOMP_MODE_FILTER:
        problems.append(f"Seccomp is {fields.get('Seccomp')}")
    if int(fields.get("Seccomp_filters", "0")) < 1:
        problems.append("no seccomp filter")
    return problems


def _ids(fields, key, want):
    ids = fields[key].split()
    if ids != [str(want)] * 4:
        return [f"{key} {ids}, expected {want} in all four"]
    return []


def _not_dumpable_as_root(pid):
    """A dumpable process of uid 0 lets another uid-0 process holding its
    capabilities (here CAP_KILL) read its environment; a process that is
    not dumpable does not."""
    res = subprocess.run(
        ["setpriv", "--bounding-set=-all,+kill", "--inh-caps=-all", "cat",
         f"/proc/{pid}/environ"],
        capture_output=True, check=False)
    if res.returncode == 0:
        return ["dumpable: its environment is readable with CAP_KILL only"]
    if b"Permission denied" not in res.stderr:
        return [f"environment check failed: {res.stderr!r}"]
    return []


def check_frontend(pid, uid, gid):
    """Problems of the frontend: runs as uid/gid without groups, has no
    capabilities at all, an empty root, and is not dumpable (its /proc
    files then belong to root although it runs as uid)."""
    fields = status(pid)
    problems = _common(fields)
    problems += _ids(fields, "Uid", uid) + _ids(fields, "Gid", gid)
    if fields.get("Groups"):
        problems.append(f"supplementary groups {fields['Groups']}")
    for name, value in _caps(fields).items():
        if value:
            problems.append(f"{name} is {value:#x}, expected 0")
    root = os.listdir(f"/proc/{pid}/root")
    if root:
        problems.append(f"root directory not empty: {sorted(root)[:5]}")
    if os.stat(f"/proc/{pid}/status").st_uid != 0:
        problems.append("dumpable: its /proc files belong to its uid")
    return problems


def check_broker(pid, uid=0, gid=None, groups=None, caps=(CAP_KILL,)):
    """Problems of the broker: uid (0 by default; then gid and groups are
    left as they came) with caps alone permitted and effective, empty
    inheritable, bounding and ambient sets, not dumpable. groups: the
    supplementary gids expected, in any order. caps: capability numbers;
    CAP_KILL alone by default, ANVIL_KICKS_CAPS (none) for a broker whose
    instances are all pinned to protocol 2.4."""
    fields = status(pid)
    problems = _common(fields)
    problems += _ids(fields, "Uid", uid)
    if gid is not None:
        problems += _ids(fields, "Gid", gid)
    if groups is not None and \
            sorted(fields.get("Groups", "").split()) != \
            sorted(str(g) for g in groups):
        problems.append(f"supplementary groups {fields.get('Groups')}, "
                        f"expected {sorted(groups)}")
    kept = sum(1 << c for c in caps)
    want = {"CapInh": 0, "CapPrm": kept, "CapEff": kept, "CapBnd": 0,
            "CapAmb": 0}
    for name, value in _caps(fields).items():
        if value != want[name]:
            problems.append(f"{name} is {value:#x}, expected "
                            f"{want[name]:#x}")
    return problems + _not_dumpable_as_root(pid)
