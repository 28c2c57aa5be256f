# SPDX-License-Identifier: MIT
"""A small runner for integration cases: one line per case, then
"N passed, N failed"; the exit status is 0 only when nothing failed."""

import contextlib
import sys
import traceback

from kgtest import env


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, func, *args):
        try:
            func(*args)
        except CheckFailed as err:
            self.fail(name, str(err))
        except Exception:  # a broken case must not stop the others
            self.fail(name, traceback.format_exc().rstrip())
        else:
            self.passed += 1
            print(f"ok   {name}", flush=True)

    def fail(self, name, reason):
        self.failed += 1
        print(f"FAIL {name}: {reason}", flush=True)

    def group(self, cases, fixture):
        """Runs (name, func) cases, each called with what the context
        manager fixture() yields. A fixture that fails to start fails every
        case; one that fails to stop counts as one more failure."""
        stack = contextlib.ExitStack()
        try:
            value = stack.enter_context(fixture())
        except Exception:
            reason = traceback.format_exc().rstrip()
            for name, _func in cases:
                self.fail(name, f"setup failed: {reason}")
            return
        try:
            for name, func in cases:
                self.run(name, func, value)
        finally:
            try:
                stack.close()
            except Exception:
                self.fail("teardown", traceback.format_exc().rstrip())

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0


def main(*groups):
    """The whole run of a test script: needs root and Dovecot, runs each
    (cases, fixture) group in order and exits with the runner's status."""
    env.require_root_and_dovecot()
    runner = Runner()
    for cases, fixture in groups:
        runner.group(cases, fixture)
    sys.exit(runner.finish())
