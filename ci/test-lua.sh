#!/usr/bin/env bash
# examples/lua: the C host embedding Lua 5.4, every session on its own coroutine. Runs 10,000
# interleaved sessions (each suspends from inside nested C -> Lua -> C calls, table.sort and
# string.gsub; some are killed, some fail on purpose) and checks every result; then 1,000 under
# AddressSanitizer + UBSan. Needs liblua5.4-dev (ci/deps.sh lua5.4).
#   CORO_LIB_DIR  directory holding libcoro.so (default: target/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
CC=${CC:-cc}
CORO_LIB_DIR=${CORO_LIB_DIR:-target/debug}
[ -f "$CORO_LIB_DIR/libcoro.so" ] || { echo "test-lua: $CORO_LIB_DIR/libcoro.so not found (run: cargo build -p coro)" >&2; exit 1; }
pkg-config --exists lua5.4 || { echo "test-lua: Lua 5.4 not found (run: ci/deps.sh lua5.4)" >&2; exit 1; }
lib=$(cd "$CORO_LIB_DIR" && pwd)
out=target/lua
mkdir -p "$out"
. ci/lib/cflags.sh
read -ra CFLAGS <<<"$CORO_CFLAGS"
CFLAGS+=(-g -Iinclude)
read -r -a LUA_CFLAGS <<<"$(pkg-config --cflags lua5.4)"
read -r -a LUA_LIBS <<<"$(pkg-config --libs lua5.4)"
LINK=(-L"$lib" -lcoro -Wl,-rpath,"$lib" "${LUA_LIBS[@]}")

run() { # binary, sessions, [options]
  local log
  log=$("$1" --sessions "$2" "${@:3}" examples/lua/session.lua)
  echo "$log"
  grep -q "attempt to yield across a C-call boundary" <<<"$log"
  grep -q "^all $2 sessions ok$" <<<"$log"
}

echo "== lua_host: 10000 sessions"
"$CC" "${CFLAGS[@]}" -O2 "${LUA_CFLAGS[@]}" examples/lua/lua_host.c "${LINK[@]}" -o "$out/lua_host"
run "$out/lua_host" 10000

if grep -q '#define CORO_FLAG_COPYING' include/coro.h; then
  echo "== lua_host --copying: 10000 sessions on one shared stack"
  run "$out/lua_host" 10000 --copying
fi

echo "== lua_host under ASan + UBSan: 1000 sessions"
"$CC" "${CFLAGS[@]}" -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
  "${LUA_CFLAGS[@]}" examples/lua/lua_host.c "${LINK[@]}" -o "$out/lua_host-asan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 run "$out/lua_host-asan" 1000

echo "== Lua embedding OK"
