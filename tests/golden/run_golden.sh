#!/bin/sh
# Golden tests of the C backend: every tests/golden/NAME.onnx is compiled for
# the c99 target and must give exactly NAME.c and NAME.h; it is compiled twice
# and the outputs compared byte for byte; the code must build warning-free
# under gcc and clang with -std=c99 -Wall -Wextra -pedantic.
# UPDATE_GOLDEN=1 rewrites the expected files.
#   run_golden.sh MOSS GOLDEN_DIR WORK_DIR
set -u
moss=$1 dir=$2 work=$3
fail=0 n=0
rm -rf "$work" && mkdir -p "$work"
for model in "$dir"/*.onnx; do
  name=$(basename "$model" .onnx)
  n=$((n + 1))
  # NAME.flags, if present, holds extra compile flags (e.g. --input-shape).
  flags=""
  [ -f "$dir/$name.flags" ] && flags=$(cat "$dir/$name.flags")
  for run in a b; do
    # shellcheck disable=SC2086
    if ! "$moss" compile "$model" --target c99 --emit c -q -o "$work/$run" $flags; then
      echo "FAIL $name: moss compile failed"; fail=$((fail + 1)); continue 2
    fi
  done
  for ext in c h manifest; do
    if ! cmp -s "$work/a/$name.$ext" "$work/b/$name.$ext"; then
      echo "FAIL $name.$ext: two compiles of the same input differ"; fail=$((fail + 1))
    fi
  done
  for ext in c h; do
    if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
      cp "$work/a/$name.$ext" "$dir/$name.$ext"
    elif ! diff -u "$dir/$name.$ext" "$work/a/$name.$ext"; then
      echo "FAIL $name.$ext differs from the golden file"; fail=$((fail + 1))
    fi
  done
  for cc in gcc clang-14; do
    command -v $cc >/dev/null 2>&1 || { echo "FAIL: $cc not installed"; fail=$((fail + 1)); continue; }
    if ! $cc -std=c99 -Wall -Wextra -pedantic -Werror -c "$work/a/$name.c" -o "$work/a/$name.$cc.o"; then
      echo "FAIL $name: $cc warns or fails"; fail=$((fail + 1))
    fi
  done
  # The header alone, as a user includes it.
  printf '#include "%s.h"\nint main(void) { return 0; }\n' "$name" > "$work/a/hdr.c"
  if ! gcc -std=c99 -Wall -Wextra -pedantic -Werror -I"$work/a" -c "$work/a/hdr.c" -o "$work/a/hdr.o"; then
    echo "FAIL $name.h does not compile alone"; fail=$((fail + 1))
  fi
done
echo "golden: $n models, $fail problems"
[ "$n" -gt 0 ] && [ "$fail" = 0 ]
