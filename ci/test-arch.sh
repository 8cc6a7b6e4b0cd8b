#!/usr/bin/env bash
# Builds and runs tests/arch/switch_harness.c against the context-switch assembly of each
# architecture: natively on the host, and for aarch64 cross-compiled (-static) and run under
# qemu-user on an x86_64 host. When clang is available, each harness is also linked against the
# assembly as assembled by LLVM (the assembler behind Rust's global_asm!) and run again.
#
# Build outputs go to target/arch-harness/. Exits non-zero if any harness fails, or (with CI=true)
# if the aarch64 toolchain is missing and cannot be installed (ci/deps.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=target/arch-harness
HARNESS=tests/arch/switch_harness.c
. ci/lib/cflags.sh
read -ra CFLAGS <<<"$CORO_STRICT_CFLAGS"
CFLAGS+=(-O2 -g)
mkdir -p "$OUT"

failures=0
ran=0

# run_harness LABEL BINARY [RUNNER...]
run_harness() {
    local label=$1 bin=$2
    shift 2
    echo "=== $label: $bin"
    local rc=0
    if command -v timeout >/dev/null; then
        timeout 600 "$@" "$bin" || rc=$?
    else
        "$@" "$bin" || rc=$?
    fi
    ran=$((ran + 1))
    if [ "$rc" -ne 0 ]; then
        echo "=== $label: FAILED (exit status $rc)"
        failures=$((failures + 1))
    fi
}

# build_and_run ARCH CC RUNNER... : harness with GNU as, then (if clang exists) with LLVM's.
build_and_run() {
    local arch=$1 cc=$2
    shift 2
    local extra=()
    if [ "$arch" = aarch64 ] && [ "$(uname -m)" != aarch64 ]; then
        extra=(-static) # runs under qemu-user without an aarch64 sysroot
    fi
    local asm=coro/src/arch/$arch.s
    local bin=$OUT/switch_harness-$arch
    echo "--- building $bin ($cc)"
    "$cc" "${CFLAGS[@]}" "${extra[@]}" "$HARNESS" "$asm" -o "$bin"
    run_harness "$arch (GNU as)" "$bin" "$@"

    if command -v clang >/dev/null; then
        local obj=$OUT/$arch-llvm.o
        echo "--- assembling $asm with clang (LLVM, as Rust's global_asm! does)"
        clang --target="$arch-linux-gnu" -c "$asm" -o "$obj"
        "$cc" "${CFLAGS[@]}" "${extra[@]}" "$HARNESS" "$obj" -o "$bin-llvm"
        run_harness "$arch (LLVM assembler)" "$bin-llvm" "$@"
    else
        echo "--- clang not found: skipping the LLVM-assembled $arch harness"
    fi
}

host=$(uname -m)

# ---- native ---------------------------------------------------------------------------------
case "$host" in
x86_64 | aarch64)
    build_and_run "$host" "${CC:-gcc}"
    ;;
*)
    echo "--- host $host: no native harness"
    ;;
esac

# ---- aarch64 on a foreign host: cross-compile and run under qemu-user --------------------------
find_qemu() {
    command -v qemu-aarch64 || command -v qemu-aarch64-static || true
}

if [ "$host" != aarch64 ]; then
    # The cross compiler and qemu-user, as Debian packages (ci/deps.sh installs them when root).
    if ci/deps.sh aarch64-cc qemu-aarch64; then
        build_and_run aarch64 aarch64-linux-gnu-gcc "$(find_qemu)"
    else
        msg="the aarch64 cross compiler or qemu-user is missing (ci/deps.sh aarch64-cc qemu-aarch64)"
        if [ "${CI:-}" = true ]; then
            echo "ERROR: $msg" >&2
            exit 1
        fi
        echo "--- SKIPPED aarch64 harness: $msg"
    fi
fi

echo "=== arch harnesses: $ran run, $failures failed"
[ "$failures" -eq 0 ]
