#!/usr/bin/env bash
# Generates include/coro.h from coro/src/ffi.rs with a pinned cbindgen.
# Usage: ci/header.sh            regenerate include/coro.h
#        ci/header.sh --check    fail if include/coro.h is not what the generator produces
set -euo pipefail
cd "$(dirname "$0")/.."

CBINDGEN_VERSION=0.29.4
TOOLS="$PWD/.tools"
CBINDGEN="$TOOLS/bin/cbindgen"

if ! [ -x "$CBINDGEN" ] || [ "$("$CBINDGEN" --version)" != "cbindgen $CBINDGEN_VERSION" ]; then
  echo "ci/header.sh: installing cbindgen $CBINDGEN_VERSION into .tools/"
  cargo install cbindgen --version "=$CBINDGEN_VERSION" --locked --root "$TOOLS" --quiet
fi

generate() {
  "$CBINDGEN" --quiet --config coro/cbindgen.toml --output "$1" coro/src/ffi.rs
}

if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  generate "$tmp"
  if ! diff -u include/coro.h "$tmp"; then
    echo "include/coro.h is stale: run 'make header' and commit it" >&2
    exit 1
  fi
  echo "include/coro.h is fresh (cbindgen $CBINDGEN_VERSION)"
else
  generate include/coro.h
  echo "wrote include/coro.h (cbindgen $CBINDGEN_VERSION)"
fi
