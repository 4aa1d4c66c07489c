#!/bin/sh
# Installs, as root on Debian 12, the packages moss needs to build and test
# that are not installed yet. Everything comes from Debian's archive.
set -eu
pkgs="build-essential cmake pkg-config clang-14 libprotobuf-c-dev protobuf-c-compiler
      libxml2-dev python3-onnx python3-numpy libonnx-testdata gcc-aarch64-linux-gnu"
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
