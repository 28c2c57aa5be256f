#!/bin/sh
# Every man page renders without a groff warning.
set -eu
status=0
for page in "$@"; do
	out=$(groff -man -ww -z "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "FAIL $page:"
		echo "$out"
		status=1
	else
		echo "ok   $page"
	fi
done
exit $status
