#!/bin/sh
# SPDX-License-Identifier: MIT
# Every man page renders without a groff warning, passes mandoc's lint at
# every level (style included), and carries the same date as the others.
set -eu
status=0
for page in "$@"; do
	out=$({ groff -man -ww -z "$page"; mandoc -Tlint -W style "$page"; } \
		2>&1 || true)
	if [ -n "$out" ]; then
		echo "FAIL $page:"
		echo "$out"
		status=1
	else
		echo "ok   $page"
	fi
done
dates=$(for page in "$@"; do awk '/^\.TH /{print $4; exit}' "$page"; done |
	sort -u)
if [ "$(printf '%s\n' "$dates" | wc -l)" -ne 1 ]; then
	echo "FAIL the pages' dates differ:" $dates
	status=1
fi
exit $status
