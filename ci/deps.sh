#!/usr/bin/env bash
# Installs the system tools a make target needs, so that every target works on a fresh machine.
#
#   ci/deps.sh TOOL...    install each TOOL that is missing (the Makefile's deps-* steps)
#   ci/deps.sh --list     print each tool, how it is installed, and whether it is there now
#
# A tool is either a set of Debian packages or a piece of the Rust toolchain (a toolchain, a
# component, or a target's standard library). "Installed" is decided
# by the Debian package's own status (dpkg-query) or by rustup's list of what it has installed,
# never by looking for a file with a pattern: a pattern can be satisfied by a different package (the
# image's libclang-cpp14 ships /usr/lib/llvm-14/lib/libclang-cpp.so.14, which is not the
# libclang.so that bindgen loads).
# Missing Debian packages are installed with apt-get when we are root; otherwise the script says in
# one line what to install and fails.
set -euo pipefail

# tool -> Debian packages (all must be installed)
declare -A DEBIAN=(
  [cc]="gcc libc6-dev"                          # every C build; libasan/libubsan/libtsan come with gcc
  [c++]="g++"                                   # bindings/cpp tests
  [valgrind]="valgrind"                         # make valgrind, tests/cpp under memcheck
  [gdb]="gdb"                                   # tests/gdb
  [pkg-config]="pkg-config"                     # make test-install, the Lua host
  [libclang]="libclang-dev"                     # bindgen in bindings/rust/coro-sys loads libclang.so
  [aarch64-cc]="gcc-aarch64-linux-gnu libc6-dev-arm64-cross"   # the aarch64 builds
  [qemu-aarch64]="qemu-user"                    # runs them on x86_64
  [boost-context]="libboost-context-dev"        # make bench: Boost.Context's jump_fcontext
  [lua5.4]="liblua5.4-dev"                      # examples/lua
)

# tool -> rustup's name for it: "TOOLCHAIN" or "TOOLCHAIN COMPONENT"
declare -A RUSTUP=(
  [rustfmt]="active rustfmt"                    # make lint (the toolchain cargo runs)
  [clippy]="active clippy"                      # make lint
  [rust-nightly]="nightly"                      # make sanitize (-Zsanitizer)
  [rust-src]="nightly rust-src"                 # make sanitize (-Zbuild-std, Rust under TSan)
)

# tool -> a target whose standard library the active toolchain needs (rustup target add)
declare -A RUSTUP_TARGET=(
  [rust-aarch64]="aarch64-unknown-linux-gnu"    # make test: the engine's tests under qemu
)

debian_installed() { # package
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# "active" is the toolchain plain `cargo` runs here.
toolchain_arg() { [ "$1" = active ] || echo "--toolchain=$1"; }

rustup_installed() { # toolchain [component]
  command -v rustup >/dev/null || return 1
  if [ "$1" != active ]; then
    rustup toolchain list | awk '{print $1}' | grep -Eq "^$1(-|$)" || return 1
  fi
  [ $# -eq 1 ] && return 0
  # shellcheck disable=SC2046
  rustup component list --installed $(toolchain_arg "$1") 2>/dev/null | grep -Eq "^$2(-|$)"
}

target_installed() { # target, for the active toolchain
  command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx "$1"
}

known() { [ -n "${DEBIAN[$1]+x}" ] || [ -n "${RUSTUP[$1]+x}" ] || [ -n "${RUSTUP_TARGET[$1]+x}" ]; }

if [ "${1:-}" = "--list" ]; then
  for t in $(printf '%s\n' "${!DEBIAN[@]}" "${!RUSTUP[@]}" "${!RUSTUP_TARGET[@]}" | sort); do
    if [ -n "${RUSTUP_TARGET[$t]+x}" ]; then
      how="rustup target: ${RUSTUP_TARGET[$t]}"
      if target_installed "${RUSTUP_TARGET[$t]}"; then state=yes; else state=no; fi
    elif [ -n "${DEBIAN[$t]+x}" ]; then
      how="apt: ${DEBIAN[$t]}"
      state=yes
      for p in ${DEBIAN[$t]}; do debian_installed "$p" || state=no; done
    else
      how="rustup: ${RUSTUP[$t]}"
      # shellcheck disable=SC2086
      if rustup_installed ${RUSTUP[$t]}; then state=yes; else state=no; fi
    fi
    printf '%-14s %-3s %s\n' "$t" "$state" "$how"
  done
  exit 0
fi

[ $# -gt 0 ] || { echo "usage: ci/deps.sh TOOL... | --list" >&2; exit 2; }

packages=()
for t in "$@"; do
  known "$t" || { echo "ci/deps.sh: unknown tool '$t' (ci/deps.sh --list shows the known ones)" >&2; exit 2; }
  if [ -n "${DEBIAN[$t]+x}" ]; then
    for p in ${DEBIAN[$t]}; do
      debian_installed "$p" || packages+=("$p")
    done
    continue
  fi
  if [ -n "${RUSTUP_TARGET[$t]+x}" ]; then
    target_installed "${RUSTUP_TARGET[$t]}" && continue
    command -v rustup >/dev/null || { echo "ci/deps.sh: $t needs rustup (https://rustup.rs)" >&2; exit 1; }
    echo "ci/deps.sh: adding the ${RUSTUP_TARGET[$t]} target to the active Rust toolchain"
    rustup target add "${RUSTUP_TARGET[$t]}"
    continue
  fi
  # shellcheck disable=SC2086
  set -- ${RUSTUP[$t]}
  rustup_installed "$@" && continue
  command -v rustup >/dev/null || { echo "ci/deps.sh: $t needs rustup (https://rustup.rs)" >&2; exit 1; }
  if [ $# -eq 1 ]; then
    echo "ci/deps.sh: installing the $1 Rust toolchain"
    rustup toolchain install "$1" --profile minimal
  else
    [ "$1" = active ] || rustup_installed "$1" || rustup toolchain install "$1" --profile minimal
    echo "ci/deps.sh: installing $2 for the $1 Rust toolchain"
    # shellcheck disable=SC2046
    rustup component add "$2" $(toolchain_arg "$1")
  fi
done

[ ${#packages[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ci/deps.sh: missing Debian packages; run: sudo apt-get install ${packages[*]}" >&2
  exit 1
fi
echo "ci/deps.sh: installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
# Wait for a dpkg lock held by another apt run instead of failing at once; a fresh machine's
# package lists may be stale or absent, so a failed install is retried after an update.
apt=(apt-get -o DPkg::Lock::Timeout=900)
"${apt[@]}" install -y -qq "${packages[@]}" >/dev/null 2>&1 || {
  "${apt[@]}" update -qq >/dev/null
  "${apt[@]}" install -y -qq "${packages[@]}" >/dev/null
}
for p in "${packages[@]}"; do
  debian_installed "$p" || { echo "ci/deps.sh: $p is still not installed after apt-get install" >&2; exit 1; }
done
