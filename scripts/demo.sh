#!/bin/sh
# README command 1: install what is missing, build moss, compile the bundled
# digits models for this machine and run them on the bundled test data.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
sh examples/digits/run.sh build/moss
