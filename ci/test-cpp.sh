#!/usr/bin/env bash
# Builds the C++ wrapper's tests (bindings/cpp/coro.hpp, tests/cpp/) as C++17 with warnings as
# errors and runs them plain, under AddressSanitizer + UBSan, built by clang++ too and under
# valgrind (those two when installed).
#   CORO_LIB_DIR  directory holding libcoro.so (default: target/debug)
#   CXX           C++ compiler (default: c++)
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX:-c++}
CORO_LIB_DIR=${CORO_LIB_DIR:-target/debug}
[ -f "$CORO_LIB_DIR/libcoro.so" ] || { echo "test-cpp: $CORO_LIB_DIR/libcoro.so not found (run: cargo build -p coro)" >&2; exit 1; }
lib=$(cd "$CORO_LIB_DIR" && pwd)
out=target/cpp
mkdir -p "$out"
. ci/lib/cflags.sh
read -ra CXXFLAGS <<<"$CORO_CXXFLAGS"
CXXFLAGS+=(-g -Iinclude -Ibindings/cpp -pthread)
LINK=(-L"$lib" -lcoro -Wl,-rpath,"$lib")

for t in tests/cpp/*.cpp; do
  name=$(basename "$t" .cpp)
  echo "== $name (plain)"
  "$CXX" "${CXXFLAGS[@]}" -O2 "$t" "${LINK[@]}" -o "$out/$name"
  "$out/$name"
  echo "== $name (ASan + UBSan)"
  "$CXX" "${CXXFLAGS[@]}" -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
    -fno-sanitize-recover=all "$t" "${LINK[@]}" -o "$out/$name-asan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 "$out/$name-asan"
  if [ "$CXX" != clang++ ] && command -v clang++ >/dev/null; then
    echo "== $name (clang++)"
    clang++ "${CXXFLAGS[@]}" -O2 "$t" "${LINK[@]}" -o "$out/$name-clang"
    "$out/$name-clang"
  fi
  if command -v valgrind >/dev/null; then
    echo "== $name (valgrind memcheck)"
    valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite "$out/$name"
  fi
done
echo "== C++ wrapper OK"
