#!/usr/bin/env bash
# The engine on aarch64, on an x86_64 machine: its Rust tests (`cargo test -p coro`) and the C suite
# (tests/c/, against the aarch64 libcoro.so), cross-built with Debian's gcc-aarch64-linux-gnu and
# run under qemu-aarch64 with Debian's aarch64 sysroot. The context-switch assembly alone is
# ci/test-arch.sh. Needs the tools `make test` installs first (ci/deps.sh aarch64-cc qemu-aarch64
# rust-aarch64). On an aarch64 machine the native runs already cover this: it says so and stops.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(uname -m)" = aarch64 ]; then
  echo "ci/test-aarch64.sh: native aarch64 machine; make test's own runs are the aarch64 runs"
  exit 0
fi
TARGET=aarch64-unknown-linux-gnu
SYSROOT=/usr/aarch64-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $SYSROOT"

echo "== aarch64: the engine's Rust tests under qemu"
cargo test -q -p coro --target "$TARGET"
echo "== aarch64: the C suite under qemu"
cargo build -q -p coro --target "$TARGET"
CORO_AARCH64_LIB_DIR=$PWD/target/$TARGET/debug ci/test-c.sh aarch64
