#!/bin/sh
# README command 2: install what is missing, build, and run the whole test
# suite twice: a normal build, then one under AddressSanitizer and
# UndefinedBehaviorSanitizer (the generated code is built with them too).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOSS_WERROR=ON >/dev/null
cmake --build build -j"$jobs" >/dev/null
ctest --test-dir build --output-on-failure
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMOSS_SANITIZE=ON -DMOSS_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
MOSS_CFLAGS="-O1 -Wall -Wextra -pedantic -Werror -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure
