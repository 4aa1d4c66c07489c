#!/bin/sh
# Installs, as root on Debian 12, the packages moss needs to build and test
# that are not installed yet. Everything comes from Debian's archive.
# Recommends are off, so every package the build or the tests use is named,
# even where another package only recommends it: the cross compilers'
# C libraries (libc6-dev-arm64-cross, libc6-dev-riscv64-cross) are such, and
# so is libclang-rt-14-dev, whose libclang_rt.fuzzer and sanitizer runtimes
# the fuzzers (tests/fuzz) link with clang-14. chromium (about 290 MB with
# its libraries) is for tests only: it renders the HTML reports at 1200
# pixels (tests/e2e/test_report_browser.py). libsodium-dev signs and checks
# bundles (libmossrt_sign, runtime/sign); python3-cryptography checks
# those signatures in the tests with another Ed25519 implementation.
# pocl-opencl-icd (PoCL: OpenCL on the CPU, which compiles kernels with its
# own clang-15) and ocl-icd-libopencl1 (the ICD loader, libOpenCL.so.1, which
# libmossrt's OpenCL executor dlopen()s) run the OpenCL backend's tests;
# valgrind checks that path's memory accesses (tests/e2e/test_opencl.py).
# The SPIR-V backends: spirv-headers (the opcode enums, spirv/unified1) and
# spirv-tools (libSPIRV-Tools.a, linked into the compiler, validates every
# module it makes; spirv-val and spirv-dis for the tests); llvm-spirv-15
# translates the OpenCL backend's spir64 bitcode into SPIR-V. Vulkan:
# libvulkan-dev (vulkan/vulkan.h), libvulkan1 (the loader libmossrt's Vulkan
# executor dlopen()s) and mesa-vulkan-drivers (lavapipe: Vulkan on the CPU).
# espeak-ng speaks the sentences the voice-activity example listens to
# (examples/vad/check.py). python3-pytest and python3-venv test the Python
# package (python/, tests/python: pytest, and an offline pip install into a
# venv). gcc-arm-none-eabi with libnewlib-arm-none-eabi (its C library, only
# recommended) builds the Cortex-M7 firmware example, which qemu-system-arm
# runs on its mps2-an500 board (examples/firmware-m7/check.py). ninja-build:
# the installed CMake package's test builds the examples with Ninja as well as
# Makefiles (tests/e2e/test_package.py).
set -eu
pkgs="build-essential cmake pkg-config clang-14 libclang-rt-14-dev libprotobuf-c-dev protobuf-c-compiler
      libxml2-dev python3-onnx python3-numpy libonnx-testdata llvm-19-dev
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-riscv64-linux-gnu libc6-dev-riscv64-cross
      qemu-user chromium libsodium-dev python3-cryptography pocl-opencl-icd ocl-icd-libopencl1
      valgrind spirv-headers spirv-tools llvm-spirv-15 libvulkan-dev libvulkan1 mesa-vulkan-drivers
      espeak-ng python3-pytest python3-venv gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
      ninja-build"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "moss: installing$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
