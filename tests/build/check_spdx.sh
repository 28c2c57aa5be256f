#!/bin/sh
# SPDX-License-Identifier: MIT
# Every source file names its licence, the one LICENSE and meson.build
# give, in an SPDX line among its first three lines.
set -eu
root=$1
grep -q "^  license : 'MIT'," "$root/meson.build" || {
	echo "FAIL meson.build does not say license : 'MIT'"
	exit 1
}
grep -q '^MIT License$' "$root/LICENSE" || {
	echo "FAIL LICENSE is not the MIT licence"
	exit 1
}
missing=0
checked=0
for f in $(cd "$root" && find . -path ./fuzz/corpus -prune -o -type f \
	\( -name '*.c' -o -name '*.h' -o -name '*.py' -o -name '*.sh' \
	-o -name meson.build -o -name '*.in' \) -print |
	grep -v '^\./build' | grep -v '^\./\.git/'); do
	checked=$((checked + 1))
	if ! head -n 3 "$root/$f" | grep -q 'SPDX-License-Identifier: MIT'; then
		echo "FAIL $f has no SPDX-License-Identifier line"
		missing=$((missing + 1))
	fi
done
echo "$checked files checked, $missing without an SPDX line"
[ "$missing" -eq 0 ] && [ "$checked" -gt 100 ]
