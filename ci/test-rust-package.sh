#!/usr/bin/env bash
# `cargo package` of the two crates under bindings/rust (coro-sys, libcoro): metadata, license and
# readme are complete, and each packaged crate builds on its own (cargo's verify step; libcoro
# against the packaged coro-sys through a temporary local registry).
# Then a user's view: the two .crate files unpacked outside the repository, a small program
# depending on libcoro, built against a `make install`ed libcoro found by pkg-config only, and run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CARGO=${CARGO:-cargo}
$CARGO build -q -p coro
# The packaged coro-sys is verified inside target/package/; name the header and library for it.
# --allow-dirty: developers run this with uncommitted work; CI runs it on a clean checkout.
CORO_INCLUDE_DIR=$ROOT/include CORO_LIB_DIR=$ROOT/target/debug \
  $CARGO package -q -p coro-sys -p libcoro --allow-dirty
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)
ls "target/package/coro-sys-$version.crate" "target/package/libcoro-$version.crate"
echo "== cargo package OK (coro-sys, libcoro)"

echo "== the packaged crates outside the repository, against an installed libcoro (pkg-config)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make --no-print-directory install PREFIX="$tmp/prefix" >/dev/null
mkdir -p "$tmp/crates" "$tmp/app/src"
tar -xzf "target/package/coro-sys-$version.crate" -C "$tmp/crates"
tar -xzf "target/package/libcoro-$version.crate" -C "$tmp/crates"
# As if both came from a registry: libcoro's dependency on coro-sys points at the unpacked copy.
sed -i "s|^\[dependencies.coro-sys\]|[dependencies.coro-sys]\npath = \"../coro-sys-$version\"|" \
  "$tmp/crates/libcoro-$version/Cargo.toml"
cat >"$tmp/app/Cargo.toml" <<TOML
[package]
name = "libcoro-user"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
libcoro = { path = "../crates/libcoro-$version" }

[workspace]
TOML
cat >"$tmp/app/src/main.rs" <<'RS'
fn main() {
    let main = libcoro::Handle::main().unwrap();
    let c = libcoro::Coroutine::new(move |n| {
        main.switch(n + 1).unwrap();
        n + 2
    })
    .unwrap();
    println!("{} {}", c.switch(40).unwrap(), c.switch(0).unwrap());
}
RS
# Its own target directory (kept between runs, so bindgen is built once); no CORO_* variables.
(cd "$tmp/app" && env -u CORO_LIB_DIR -u CORO_INCLUDE_DIR PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" \
  CARGO_TARGET_DIR="$ROOT/target/libcoro-user" $CARGO build -q)
out=$(LD_LIBRARY_PATH=$tmp/prefix/lib "$ROOT/target/libcoro-user/debug/libcoro-user")
[ "$out" = "41 42" ] || { echo "test-rust-package: the program printed '$out', expected '41 42'" >&2; exit 1; }
echo "== a program using the packaged libcoro crate ran against the installed library: $out"
