#!/bin/sh
# build.sh - test_elf's inputs (tests/unit/test_elf.c), and its runs on
# foreign architectures.
#   sh build.sh objects ARCH OUTDIR       the ELF objects test_elf loads, made
#                                         from model.c and ARCH.s into OUTDIR
#   sh build.sh run ARCH OUTDIR ROOT      the objects, then test_elf and
#                                         ROOT/runtime/src/cpu/elf.c built by
#                                         ARCH-linux-gnu-gcc -static and run
#                                         under qemu-ARCH
# ARCH is x86_64, aarch64 or riscv64. Tools: clang-14 (C to LLVM IR),
# llc-19, llvm-mc-19, gcc for the host or ARCH-linux-gnu-gcc. "run" exits
# 77 (skipped) when ARCH-linux-gnu-gcc or qemu-ARCH is missing, and only then.
set -eu
mode=$1 arch=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
case $arch in
  x86_64|aarch64|riscv64) ;;
  *) echo "build.sh: unknown architecture '$arch'" >&2; exit 2 ;;
esac
if [ "$arch" = "$(uname -m)" ]; then gcc=${CC:-cc}; else gcc=$arch-linux-gnu-gcc; fi

objects() {
  mkdir -p "$out"
  m=$here/model.c
  t=$arch-linux-gnu
  clang-14 -target "$t" -O2 -fno-pic -S -emit-llvm "$m" -o "$out/model-static.ll"
  clang-14 -target "$t" -O2 -fPIC -S -emit-llvm "$m" -o "$out/model-pic.ll"
  clang-14 -target "$t" -O2 -fno-pic -DELF_SMALL -S -emit-llvm "$m" -o "$out/small.ll"
  llc-19 -O2 -filetype=obj -relocation-model=static "$out/model-static.ll" -o "$out/llc-static.o"
  llc-19 -O2 -filetype=obj -relocation-model=pic "$out/model-pic.ll" -o "$out/llc-pic.o"
  llc-19 -O2 -filetype=obj -relocation-model=static "$out/small.ll" -o "$out/small-llc.o"
  mc=""
  case $arch in
    aarch64)
      llc-19 -O2 -filetype=obj -relocation-model=static -code-model=large \
        "$out/model-static.ll" -o "$out/llc-large.o" ;;
    riscv64)
      mc="-mattr=+c,+relax"
      llc-19 -O2 -filetype=obj -relocation-model=static -mattr=+relax \
        "$out/model-static.ll" -o "$out/llc-relax.o"
      llc-19 -O2 -filetype=obj -relocation-model=pic -mattr=+relax \
        "$out/model-pic.ll" -o "$out/llc-relax-pic.o" ;;
  esac
  $gcc -O2 -g -fno-pic -c "$m" -o "$out/gcc-static.o"
  $gcc -O2 -fPIC -ffunction-sections -fdata-sections -c "$m" -o "$out/gcc-pic.o"
  $gcc -O2 -fPIC -fno-plt -c "$m" -o "$out/gcc-noplt.o"
  $gcc -O2 -fno-pic -fcommon -DELF_COMMON -c "$m" -o "$out/gcc-common.o"
  $gcc -O2 -fPIC -DELF_SMALL -c "$m" -o "$out/small-gcc.o"
  $gcc -O2 -DELF_CTOR -c "$m" -o "$out/ctor.o"
  $gcc -O2 -DELF_TLS -c "$m" -o "$out/tls.o"
  llvm-mc-19 -triple="$t" $mc -filetype=obj "$here/$arch.s" -o "$out/asm.o"
}

case $mode in
  objects) objects ;;
  run)
    root=$4
    if ! command -v "$gcc" >/dev/null 2>&1 || ! command -v "qemu-$arch" >/dev/null 2>&1; then
      echo "build.sh: skipped: $gcc or qemu-$arch is not installed"
      exit 77
    fi
    objects
    "$gcc" -std=gnu11 -O1 -g -Wall -Wextra -Werror -static -I"$root/runtime/include" \
      -DMOSS_ELF_OBJ_DIR="\"$out\"" "$root/tests/unit/test_elf.c" "$root/runtime/src/cpu/elf.c" \
      -lm -o "$out/test_elf"
    exec "qemu-$arch" -L "/usr/$arch-linux-gnu" "$out/test_elf" ;;
  *) echo "build.sh: unknown mode '$mode'" >&2; exit 2 ;;
esac
