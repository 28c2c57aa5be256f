#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""-Dprograms_only=true, the build for packages and quick installs.

Configures the source tree so beside this build, with this build's
directories, and checks from meson's introspection that it defines no
test, builds nothing but kickgate, kickgated and their two libraries,
does not look for cmocka, and installs exactly what this build installs:
the option leaves out tests, benchmarks and test helpers, none of which
is installed, and nothing else. Configuring only, no compiling.
Arguments: the source root, this build's directory.
"""

import json
import os
import subprocess
import sys
import tempfile

# Options that decide where files are installed, copied from this build.
PLACES = ("prefix", "bindir", "sbindir", "datadir", "mandir",
          "example_dir", "systemd_unit_dir")
TARGETS = {"kickgate", "kickgated", "kgcore", "kgbroker"}


def introspect(build, what):
    out = subprocess.run(["meson", "introspect", what, build],
                         capture_output=True, check=True, encoding="utf-8")
    return json.loads(out.stdout)


def main():
    src, build = sys.argv[1], sys.argv[2]
    options = {o["name"]: o["value"]
               for o in introspect(build, "--buildoptions")}
    failed = []

    def check(cond, msg):
        print(("ok   " if cond else "FAIL ") + msg, flush=True)
        if not cond:
            failed.append(msg)

    with tempfile.TemporaryDirectory(prefix="kg-programs-only-") as tmp:
        only = os.path.join(tmp, "build")
        argv = ["meson", "setup", only, src, "-Dprograms_only=true"]
        argv += [f"-D{name}={options[name]}" for name in PLACES]
        setup = subprocess.run(argv, capture_output=True, encoding="utf-8",
                               check=False)
        if setup.returncode != 0:
            print("FAIL meson setup -Dprograms_only=true:\n" + setup.stdout +
                  setup.stderr)
            sys.exit(1)
        check(introspect(only, "--tests") == [], "no test is defined")
        targets = {t["name"] for t in introspect(only, "--targets")}
        check(targets == TARGETS,
              f"builds {sorted(targets)}, expected {sorted(TARGETS)}")
        deps = {d["name"] for d in introspect(only, "--dependencies")}
        with open(os.path.join(only, "meson-logs", "meson-log.txt"),
                  encoding="utf-8", errors="replace") as f:
            log = f.read()
        check("cmocka" not in deps and "cmocka" not in log,
              "cmocka is not looked for")
        installed = sorted(introspect(only, "--installed").values())
        expected = sorted(introspect(build, "--installed").values())
        check(installed == expected,
              "installs what the full build installs:\n  " +
              "\n  ".join(installed) +
              ("" if installed == expected
               else "\nexpected:\n  " + "\n  ".join(expected)))
        names = {os.path.basename(p) for p in installed}
        check({"kickgate", "kickgated", "kickgated.service",
               "kickgated.socket", "kickgate.1", "kickgated.8",
               "kickgated.conf.5", "kickgated.conf.example"} <= names and
              any(p.endswith("/bash-completion/completions/kickgate")
                  for p in installed),
              "the programs, units, man pages, example and completion "
              "are installed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
