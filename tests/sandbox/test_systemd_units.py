#!/usr/bin/env python3
"""The systemd units as built: systemd-analyze verify accepts both, and the
service's exposure (systemd-analyze security --offline) stays at or below
MAX_EXPOSURE. verify also checks that ExecStart names an executable, so
the service is checked with ExecStart pointing at the kickgated of this
build instead of the installed path.
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
TIMEOUT = 60


def copy_units(src, dst, kickgated):
    for name in ("kickgated.service", "kickgated.socket"):
        with open(os.path.join(src, name)) as f:
            lines = f.read().splitlines(keepends=True)
        with open(os.path.join(dst, name), "w") as f:
            for line in lines:
                if line.startswith("ExecStart="):
                    args = line.split("=", 1)[1].split(" ", 1)[1]
                    line = f"ExecStart={kickgated} {args}"
                f.write(line)


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
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
