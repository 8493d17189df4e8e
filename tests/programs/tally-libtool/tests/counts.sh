#!/bin/sh
# The program runs through libtool's wrapper script and its counts add up.
set -u
out=$(../src/tally 2) || { echo "tally exited with status $?"; exit 1; }
printf '%s\n' "$out"
echo "$out" | grep -q '^ 1\. ' || { echo "no top word"; exit 1; }
echo "$out" | grep -q '^checksum [0-9a-f]\{16\}$' || { echo "no checksum"; exit 1; }
echo "$out" | grep -q 'over-count: mean [0-9.]*, max [0-9]*$' || { echo "no sketch line"; exit 1; }
exit 0
