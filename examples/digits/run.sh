#!/bin/sh
# The README's first command ends here: compiles the digits MLP and CNN with
# moss for this machine, builds each into the example program, and runs them
# on the digits test set, printing accuracy (next to torch's) and latency.
#   examples/digits/run.sh [MOSS]   (default build/moss)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
moss=${1:-$root/build/moss}
data=$root/tests/e2e/digits
work=${TMPDIR:-/tmp}/moss-digits-example
rm -rf "$work" && mkdir -p "$work"
for m in mlp cnn; do
  case $m in mlp) shape=1x64 ;; cnn) shape=1x1x8x8 ;; esac
  "$moss" compile "$data/$m.onnx" --emit c --input-shape input=$shape --name model -o "$work/$m"
  cc -O3 -std=c99 -Wall -Wextra -pedantic -I"$work/$m" "$root/examples/digits/main.c" \
     "$work/$m/model.c" -lm -o "$work/$m/digits"
  printf '%s: torch accuracy %s; moss: ' "$m" "$(grep "^$m " "$data/accuracy.txt" | cut -d' ' -f2)"
  "$work/$m/digits" "$data/x_test_$m.npy" "$data/y_test.npy"
done
