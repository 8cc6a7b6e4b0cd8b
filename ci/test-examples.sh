#!/usr/bin/env bash
# Build the C examples against libcoro and run their tests.
#
#   CORO_LIB_DIR  directory holding libcoro.so (default: target/debug; build it
#                 first with `cargo build -p coro`)
#   CC            C compiler (default: cc)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CORO_LIB_DIR=${CORO_LIB_DIR:-target/debug}
CC=${CC:-cc}
. ci/lib/cflags.sh
read -ra CFLAGS <<<"$CORO_CFLAGS"
CFLAGS+=(-O2)
OUT=target/examples

if [[ ! -f "$CORO_LIB_DIR/libcoro.so" ]]; then
    echo "test-examples: $CORO_LIB_DIR/libcoro.so not found (run: cargo build -p coro)" >&2
    exit 1
fi
lib_dir=$(cd "$CORO_LIB_DIR" && pwd)   # absolute, for the rpath
mkdir -p "$OUT"

echo "== build echo_server"
"$CC" "${CFLAGS[@]}" -Iinclude examples/c/echo_server.c \
    -L"$lib_dir" -lcoro -Wl,-rpath,"$lib_dir" -o "$OUT/echo_server"

echo "== build and run first.c (the README's example)"
"$CC" "${CFLAGS[@]}" -Iinclude examples/c/first.c \
    -L"$lib_dir" -lcoro -Wl,-rpath,"$lib_dir" -o "$OUT/first"
out=$("$OUT/first")
expected=$'got 0\ngot 1\ngot 2'
if [[ "$out" != "$expected" ]]; then
    echo "first.c printed:"; echo "$out"; echo "expected:"; echo "$expected"; exit 1
fi

echo "== test echo_server (1000 concurrent clients)"
timeout 60 python3 tests/examples/test_echo_server.py "$OUT/echo_server"

echo "== smoke: echo_server --demo --clients 200"
timeout 60 "$OUT/echo_server" --demo --clients 200

echo "== examples OK"
