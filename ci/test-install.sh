#!/usr/bin/env bash
# `make install` as a user runs it, into a temporary prefix; then examples/c/first.c is built with
# nothing but what pkg-config says, once against the shared library and once (`--static`) against
# libcoro.a, and both programs are run.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib/cflags.sh # CORO_STRICT_CFLAGS, CORO_CXXFLAGS (unquoted below: they are word lists)
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
expected=$'got 0\ngot 1\ngot 2'

echo "== make install PREFIX=$prefix"
make --no-print-directory install PREFIX="$prefix" >/dev/null
for f in include/coro.h include/coro.hpp lib/libcoro.so lib/libcoro.so.0.1 lib/libcoro.so.0.1.0 lib/libcoro.a \
         lib/pkgconfig/coro.pc; do
  [ -e "$prefix/$f" ] || { echo "test-install: $prefix/$f missing" >&2; exit 1; }
done
[ "$(readlink "$prefix/lib/libcoro.so")" = libcoro.so.0.1 ] || { echo "test-install: bad libcoro.so symlink" >&2; exit 1; }
[ "$(readlink "$prefix/lib/libcoro.so.0.1")" = libcoro.so.0.1.0 ] || { echo "test-install: bad soname symlink" >&2; exit 1; }

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[ "$(pkg-config --modversion coro)" = "$(sed -n 's/^#define CORO_VERSION_MAJOR \([0-9]*\)$/\1/p' include/coro.h).$(sed -n 's/^#define CORO_VERSION_MINOR \([0-9]*\)$/\1/p' include/coro.h).$(sed -n 's/^#define CORO_VERSION_PATCH \([0-9]*\)$/\1/p' include/coro.h)" ] \
  || { echo "test-install: coro.pc version does not match coro.h" >&2; exit 1; }

check_output() { # program, label
  local out
  out=$("$1")
  [ "$out" = "$expected" ] || { echo "test-install: $2 printed:"; echo "$out"; exit 1; }
}

echo "== shared: cc first.c \$(pkg-config --cflags --libs coro)"
# shellcheck disable=SC2046
"$CC" $CORO_STRICT_CFLAGS examples/c/first.c $(pkg-config --cflags --libs coro) -o "$tmp/first-shared"
readelf -d "$tmp/first-shared" | grep -q 'NEEDED.*\[libcoro.so.0.1\]' \
  || { echo "test-install: first-shared does not record the soname libcoro.so.0.1" >&2; exit 1; }
LD_LIBRARY_PATH=$prefix/lib check_output "$tmp/first-shared" first-shared

echo "== C++: c++ first.cpp \$(pkg-config --cflags --libs coro)"
cat >"$tmp/first.cpp" <<'CPP'
#include <coro.hpp>
#include <cstdint>
#include <cstdio>
#include <stdexcept>

int main() {
    coro::handle main_c = coro::main();
    coro::coroutine counter([&](void *limit) -> void * {
        for (std::uintptr_t i = 0; i < reinterpret_cast<std::uintptr_t>(limit); i++)
            main_c.switch_to(reinterpret_cast<void *>(i));  // hand out i, wait to be resumed
        throw std::runtime_error("done");                   // goes to the resumer
    });
    try {
        void *v = counter.switch_to(reinterpret_cast<void *>(3));
        for (;;) {
            std::printf("got %ld\n", static_cast<long>(reinterpret_cast<std::uintptr_t>(v)));
            v = counter.switch_to();
        }
    } catch (const std::runtime_error &e) {
        return counter.dead() ? 0 : 1;
    }
}
CPP
# shellcheck disable=SC2046
"${CXX:-c++}" $CORO_CXXFLAGS "$tmp/first.cpp" $(pkg-config --cflags --libs coro) -o "$tmp/first-cpp"
LD_LIBRARY_PATH=$prefix/lib check_output "$tmp/first-cpp" first-cpp

echo "== static: cc first.c \$(pkg-config --static --cflags --libs coro)"
# The linker takes libcoro.so over libcoro.a when a directory has both, so the static build uses
# a copy of the prefix without the shared library (a static-only install, as some distributions
# ship): then `-lcoro` can only mean libcoro.a and Libs.private must be complete.
cp -a "$prefix" "$tmp/static-prefix"
rm "$tmp"/static-prefix/lib/libcoro.so*
sed -i "s|$prefix|$tmp/static-prefix|g" "$tmp/static-prefix/lib/pkgconfig/coro.pc"
export PKG_CONFIG_PATH=$tmp/static-prefix/lib/pkgconfig
# shellcheck disable=SC2046
"$CC" $CORO_STRICT_CFLAGS examples/c/first.c $(pkg-config --static --cflags --libs coro) -o "$tmp/first-static"
if readelf -d "$tmp/first-static" | grep -q 'NEEDED.*libcoro'; then
  echo "test-install: first-static still needs libcoro.so" >&2; exit 1
fi
check_output "$tmp/first-static" first-static
echo "== install OK (shared and static, via pkg-config)"
