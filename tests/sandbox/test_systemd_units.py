#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The systemd units as built: systemd-analyze verify accepts both, the
service's exposure (systemd-analyze security --offline) stays at or below
MAX_EXPOSURE, and the service checks the configuration before each start,
reloads on SIGHUP and is not restarted after a configuration error
(RELOAD_LINES). verify also checks that ExecStart and ExecStartPre name an
executable, so the service is checked with both pointing at the kickgated
of this build instead of the installed path.
"""

import os
import shutil
import subprocess
import sys
import tempfile

from kgtest import env

UNITS_ENV = "KG_UNIT_DIR"
BUILD_ENV = "KG_BUILD_DIR"
# systemd-analyze's --threshold counts tenths: 20 is an exposure of 2.0.
MAX_EXPOSURE = 20
# kickgated exits 78 (EX_CONFIG) on a configuration with errors, -t too.
RELOAD_LINES = ("ExecStartPre={sbindir}/kickgated -t -c {config}",
                "ExecReload=/bin/kill -HUP $MAINPID",
                "RestartPreventExitStatus=78")
TIMEOUT = 60


def copy_units(src, dst, kickgated):
    for name in ("kickgated.service", "kickgated.socket"):
        with open(os.path.join(src, name)) as f:
            lines = f.read().splitlines(keepends=True)
        with open(os.path.join(dst, name), "w") as f:
            for line in lines:
                key, sep, value = line.partition("=")
                if sep and key in ("ExecStart", "ExecStartPre"):
                    line = f"{key}={kickgated} {value.split(' ', 1)[1]}"
                f.write(line)


def missing_reload_lines(src):
    """The lines of RELOAD_LINES the built service lacks. Its ExecStart
    names the installed kickgated and the configuration it runs with."""
    with open(os.path.join(src, "kickgated.service")) as f:
        lines = f.read().splitlines()
    start = next((line for line in lines if line.startswith("ExecStart=")),
                 "ExecStart= ")
    exe, _, args = start.split("=", 1)[1].partition(" ")
    config = args.rsplit(" ", 1)[-1]
    want = [line.format(sbindir=os.path.dirname(exe), config=config)
            for line in RELOAD_LINES]
    return [line for line in want if line not in lines]


def analyze(*args, cwd):
    res = subprocess.run(["systemd-analyze", *args], cwd=cwd,
                         capture_output=True, text=True, timeout=TIMEOUT,
                         check=False)
    return res.returncode, (res.stdout + res.stderr).strip()


def main():
    if shutil.which("systemd-analyze") is None:
        env.skip_or_fail("systemd-analyze not found (package systemd)")
    for name in (UNITS_ENV, BUILD_ENV):
        if not os.environ.get(name):
            env.skip_or_fail(f"{name} is not set (meson test sets it)")
    with tempfile.TemporaryDirectory(prefix="kgu") as d:
        copy_units(os.environ[UNITS_ENV], d,
                   os.path.join(os.environ[BUILD_ENV], "kickgated"))
        failed = False
        code, out = analyze("verify", "--man=no", "./kickgated.service",
                            "./kickgated.socket", cwd=d)
        print(f"verify: exit {code}" + (f"\n{out}" if out else ""))
        failed |= code != 0 or bool(out)
        code, out = analyze("security", "--offline=true",
                            f"--threshold={MAX_EXPOSURE}",
                            "./kickgated.service", cwd=d)
        print(out.splitlines()[-1] if out else "security: no output")
        if code != 0:
            print(out)
        failed |= code != 0
        missing = missing_reload_lines(os.environ[UNITS_ENV])
        print(f"reload lines missing: {missing}" if missing
              else "reload lines: present")
        failed |= bool(missing)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
