#!/usr/bin/env bash
# Installs (or detects) the system tools the tests need, so `make test` works on a fresh machine.
# Usage: ci/deps.sh [tool...]   (default: everything `make test` uses)
# Each tool maps to a Debian package; missing ones are installed with apt when we are root.
set -euo pipefail

declare -A PACKAGE=(
  [cc]=gcc
  [valgrind]=valgrind
  [aarch64-linux-gnu-gcc]="gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
  [qemu-aarch64]=qemu-user
  [libclang]=libclang-dev
  [gdb]=gdb
  [boost-context]=libboost-context-dev
  [pkg-config]=pkg-config
  [c++]=g++
  [lua5.4]=liblua5.4-dev
)

have() {
  case "$1" in
    lua5.4) pkg-config --exists lua5.4 2>/dev/null ;;
    boost-context) compgen -G "/usr/lib/*/libboost_context.so" >/dev/null ;;
    libclang) compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null || compgen -G "/usr/lib/x86_64-linux-gnu/libclang*.so*" >/dev/null ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(cc valgrind gdb aarch64-linux-gnu-gcc qemu-aarch64 libclang pkg-config c++ lua5.4)

missing=()
for t in "${tools[@]}"; do
  have "$t" || missing+=("${PACKAGE[$t]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "ci/deps.sh: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "ci/deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2068
apt-get install -y -qq ${missing[@]} >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null
  apt-get install -y -qq ${missing[@]} >/dev/null
}
