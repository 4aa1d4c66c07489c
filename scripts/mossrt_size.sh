#!/bin/sh
# mossrt_size.sh - the code size of libmossrt's core (runtime/src/core and
# runtime/src/cpu; not the plugin executor): each file compiled alone with
# -Os for x86-64, and the sum of their .text sections printed in bytes.
#   sh scripts/mossrt_size.sh                 # prints e.g. "mossrt core .text: 9876 bytes (-Os, x86-64, gcc 12.2.0)"
#   sh scripts/mossrt_size.sh --check 32768   # also fails unless the total is below 32768
# CC picks the compiler (default cc); it must target x86-64.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cc=${CC:-cc}
limit=
if [ "${1:-}" = "--check" ]; then limit=$2; fi
case $($cc -dumpmachine) in
  x86_64*) ;;
  *) echo "mossrt_size.sh: $cc does not target x86-64 ($($cc -dumpmachine))" >&2; exit 77 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
total=0
for f in "$root"/runtime/src/core/*.c "$root"/runtime/src/cpu/*.c; do
  o="$tmp/$(basename "$f" .c).o"
  $cc -std=gnu11 -Os -fPIC -fvisibility=hidden -DNDEBUG -I"$root/runtime/include" \
      -I"$root/plugins/include" -c "$f" -o "$o"
  t=$(size -A "$o" | awk '$1 ~ /^\.text/  { s += $2 } END { print s + 0 }')
  printf '  %-12s %6d\n' "$(basename "$f")" "$t"
  total=$((total + t))
done
echo "mossrt core .text: $total bytes (-Os, x86-64, $($cc --version | head -n 1))"
if [ -n "$limit" ] && [ "$total" -ge "$limit" ]; then
  echo "mossrt_size.sh: $total bytes is not under the limit of $limit" >&2
  exit 1
fi
