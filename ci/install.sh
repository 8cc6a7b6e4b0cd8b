#!/usr/bin/env bash
# Installs libcoro for C users: the header, the shared library with its soname symlinks, the
# static library and a pkg-config file.
#
# Usage: ci/install.sh            (what `make install` runs)
# Env:   PREFIX      install prefix (default /usr/local)
#        LIBDIR      library directory (default $PREFIX/lib)
#        INCLUDEDIR  header directory (default $PREFIX/include)
#        DESTDIR     staging root for packagers: files go to $DESTDIR$PREFIX/..., while the
#                    paths written into coro.pc stay $PREFIX/...
#        CARGO       cargo to build with (default cargo)
#
# Result (version 0.1.0):
#   $INCLUDEDIR/coro.h
#   $INCLUDEDIR/coro.hpp       the header-only C++ wrapper (bindings/cpp)
#   $LIBDIR/libcoro.so.0.1.0   the shared library, soname libcoro.so.0.1 (set by coro/build.rs)
#   $LIBDIR/libcoro.so.0.1 -> libcoro.so.0.1.0   what the loader looks up (the soname)
#   $LIBDIR/libcoro.so     -> libcoro.so.0.1     what `-lcoro` finds at link time
#   $LIBDIR/libcoro.a
#   $LIBDIR/pkgconfig/coro.pc
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
PREFIX=${PREFIX:-/usr/local}
LIBDIR=${LIBDIR:-$PREFIX/lib}
INCLUDEDIR=${INCLUDEDIR:-$PREFIX/include}
DESTDIR=${DESTDIR:-}
case "$PREFIX" in
  /*) ;;
  *) echo "ci/install.sh: PREFIX must be an absolute path (got '$PREFIX')" >&2; exit 2 ;;
esac

# Rust std's system dependencies for the static library; printed by
#   cargo rustc -p coro --release --lib --crate-type staticlib -- --print native-static-libs
# (minus -lc, which every C link has). ci/test-install.sh links a program with them.
LIBS_PRIVATE="-lgcc_s -lutil -lrt -lpthread -lm -ldl"

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)
IFS=. read -r major minor _ <<<"$version"
# Same rule as coro/build.rs: 0.x releases are compatible within a minor version.
if [ "$major" = 0 ]; then soname=libcoro.so.0.$minor; else soname=libcoro.so.$major; fi

$CARGO build -q -p coro --release
built=target/release
actual=$(readelf -d "$built/libcoro.so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [ "$actual" != "$soname" ]; then
  echo "ci/install.sh: $built/libcoro.so has soname '$actual', expected '$soname' (coro/build.rs)" >&2
  exit 1
fi

lib=$DESTDIR$LIBDIR
inc=$DESTDIR$INCLUDEDIR
install -d "$lib/pkgconfig" "$inc"
install -m 644 include/coro.h "$inc/coro.h"
install -m 644 bindings/cpp/coro.hpp "$inc/coro.hpp"
install -m 755 "$built/libcoro.so" "$lib/libcoro.so.$version"
ln -sfn "libcoro.so.$version" "$lib/$soname"
ln -sfn "$soname" "$lib/libcoro.so"
install -m 644 "$built/libcoro.a" "$lib/libcoro.a"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@LIBDIR@|$LIBDIR|g" -e "s|@INCLUDEDIR@|$INCLUDEDIR|g" \
    -e "s|@VERSION@|$version|g" -e "s|@LIBS_PRIVATE@|$LIBS_PRIVATE|g" \
    coro/coro.pc.in >"$lib/pkgconfig/coro.pc"
chmod 644 "$lib/pkgconfig/coro.pc"
echo "installed libcoro $version into $DESTDIR$PREFIX (pkg-config: $LIBDIR/pkgconfig/coro.pc)"
