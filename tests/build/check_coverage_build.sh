#!/bin/sh
# SPDX-License-Identifier: MIT
# The test-only coverage build (-Dcoverage_daemon=true, README.md,
# "Coverage") still configures and its block of sandbox/sandbox.c still
# compiles, though no other test builds it; and the option is refused
# without -Db_coverage=true. Only that one file is compiled: the rest is
# the normal build's code, and tools/coverage builds everything.
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if meson setup "$tmp/refused" "$src" -Dcoverage_daemon=true \
	>"$tmp/log" 2>&1; then
	echo "FAIL -Dcoverage_daemon=true without -Db_coverage=true configured"
	exit 1
fi
if ! grep -q 'needs -Db_coverage=true' "$tmp/log"; then
	echo "FAIL -Dcoverage_daemon=true refused for another reason:"
	cat "$tmp/log"
	exit 1
fi
echo "ok   -Dcoverage_daemon=true refused without -Db_coverage=true"
if ! meson setup "$tmp/cov" "$src" -Db_coverage=true \
	-Dcoverage_daemon=true >"$tmp/log" 2>&1 ||
	! ninja -C "$tmp/cov" libkgbroker.a.p/sandbox_sandbox.c.o \
		>>"$tmp/log" 2>&1; then
	echo "FAIL the coverage build's sandbox/sandbox.c:"
	cat "$tmp/log"
	exit 1
fi
echo "ok   sandbox/sandbox.c compiles in a coverage build"
