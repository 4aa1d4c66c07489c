#!/bin/sh
# The fuzzers' inputs (tests/fuzz/corpus and tests/fuzz/regress) through the
# moss command itself, in whatever build runs the tests (under ASan and UBSan
# in CI's second build), with or without clang: every ONNX model compiled
# for the host (code emitted too), every target XML validated, every tensor
# file frozen as the input of a small model (--constant). Each must succeed
# or fail with a message in the diagnostic shape, not 'internal', and an exit
# status from 1 to 127 (128 and above: killed by a signal).
#   replay_cli.sh MOSS SOURCE_DIR WORK_DIR
set -u
moss=$1 src=$2 work=$3
fail=0 n=0
rm -rf "$work" && mkdir -p "$work"
export MOSS_TARGETS_DIR="$src/targets"

check() { # check FILE STATUS: the last command's status and its stderr in $work/err
  n=$((n + 1))
  if [ "$2" -ge 128 ]; then
    echo "FAIL $1: exit status $2"; cat "$work/err"; fail=$((fail + 1))
  elif [ "$2" -ne 0 ]; then
    if grep -q ': internal: ' "$work/err" ||
       ! grep -Eq ': (invalid-model|unsupported|target|io|out-of-memory): ' "$work/err"; then
      echo "FAIL $1: exit status $2 with:"; cat "$work/err"; fail=$((fail + 1))
    fi
  fi
}

for kind in corpus regress; do
  for f in "$src/tests/fuzz/$kind/onnx/"*; do
    [ -f "$f" ] || continue
    "$moss" compile "$f" --target host -o "$work/out.moss" 2>"$work/err" >/dev/null
    check "$f" $?
  done
  for f in "$src/tests/fuzz/$kind/target/"*; do
    [ -f "$f" ] || continue
    "$moss" targets validate "$f" 2>"$work/err" >/dev/null
    check "$f" $?
  done
  for f in "$src/tests/fuzz/$kind/tensor/"*; do
    [ -f "$f" ] || continue
    "$moss" compile "$src/tests/unit/data/models/good.onnx" --target host --constant "x=$f" \
      -o "$work/out.moss" 2>"$work/err" >/dev/null
    check "$f" $?
  done
done
echo "replay_cli: $n inputs, $fail problems"
[ "$n" -gt 0 ] && [ "$fail" = 0 ]
