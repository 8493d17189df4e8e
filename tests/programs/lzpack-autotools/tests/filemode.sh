#!/bin/sh
# Round-trip a real file (this script and the lzpack binary itself).
set -u
: "${LZPACK:=../src/lzpack}"
: "${srcdir:=.}"

for f in "$srcdir/filemode.sh" "$LZPACK"; do
    out=$("$LZPACK" --file "$f") || { echo "lzpack --file $f failed"; exit 1; }
    printf '%s\n' "$out"
    n=$(echo "$out" | grep -c '^file roundtrip: ok$')
    if [ "$n" -ne 2 ]; then
        echo "round trip of $f failed"
        exit 1
    fi
done
exit 0
