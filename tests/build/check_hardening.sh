#!/bin/sh
# SPDX-License-Identifier: MIT
# The installed programs are built hardened: PIE, full RELRO (GNU_RELRO
# and BIND_NOW), non-executable stack, stack protector and
# _FORTIFY_SOURCE (when not built with sanitizers, which replace it).
set -eu
status=0
check() { # binary, what, command...
	bin=$1 what=$2
	shift 2
	if "$@" >/dev/null 2>&1; then
		echo "ok   $(basename "$bin"): $what"
	else
		echo "FAIL $(basename "$bin"): $what"
		status=1
	fi
}
for bin in "$@"; do
	check "$bin" PIE sh -c "readelf -h '$bin' | grep -q 'Type:.*DYN'"
	check "$bin" RELRO sh -c "readelf -l '$bin' | grep -q GNU_RELRO"
	check "$bin" BIND_NOW sh -c "readelf -d '$bin' | grep -Eq 'BIND_NOW|FLAGS_1.*NOW'"
	check "$bin" "no exec stack" sh -c "readelf -lW '$bin' | grep GNU_STACK | grep -qv RWE"
	check "$bin" "stack protector" sh -c "readelf -sW '$bin' | grep -q __stack_chk_fail"
	if [ "${KG_SANITIZED:-no}" = no ]; then
		check "$bin" FORTIFY sh -c "readelf -sW '$bin' | grep -q '__[a-z]*_chk'"
	fi
done
exit $status
