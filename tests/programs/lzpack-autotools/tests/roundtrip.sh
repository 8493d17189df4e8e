#!/bin/sh
# Synthetic-data round trip: output must say "ok" and match the recorded
# output for a small size exactly.
set -u
: "${LZPACK:=../src/lzpack}"
: "${srcdir:=.}"

out=$("$LZPACK" 2) || { echo "lzpack exited with status $?"; exit 1; }
printf '%s\n' "$out"

echo "$out" | grep -q '^fast roundtrip: ok$' || { echo "fast round trip failed"; exit 1; }
echo "$out" | grep -q '^best roundtrip: ok$' || { echo "best round trip failed"; exit 1; }
echo "$out" | grep -q '^status: ok$' || { echo "status line missing"; exit 1; }

expected=$(cat "$srcdir/expected-2.txt")
if [ "$out" != "$expected" ]; then
    echo "output differs from $srcdir/expected-2.txt"
    exit 1
fi
exit 0
