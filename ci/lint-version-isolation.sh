#!/usr/bin/env bash
# Checks that every CPython version difference of the extension stays in its two places:
# python/src/pyversion.rs (the Rust side) and python/src/pystate.c (the C shim, compiled against
# each version's own headers). A port to another CPython version then touches only those files.
#
# Usage: ci/lint-version-isolation.sh [DIR]    DIR defaults to python/src
#        ci/lint-version-isolation.sh --self-test
# Fails (status 1) printing file:line and the rule for each version check found elsewhere in DIR:
# a pyo3 version cfg (Py_3_*), PY_VERSION_HEX / PY_MINOR_VERSION, Py_BUILD_CORE, or an include
# of CPython's internal headers. Comments count too: a comment naming one of these is either
# stale or describes code that belongs in the allowed files. Run by `make lint`.
set -euo pipefail
cd "$(dirname "$0")/.."

ALLOWED=(pyversion.rs pystate.c)
PATTERN='Py_3_[0-9]+|PY_VERSION_HEX|PY_MINOR_VERSION|PY_MAJOR_VERSION|Py_BUILD_CORE|internal/pycore|include[[:space:]]*[<"]internal/'

check() {
  local dir=$1 found=0 file rel name allowed
  while IFS= read -r -d '' file; do
    rel=${file#"$dir"/}
    allowed=0
    for name in "${ALLOWED[@]}"; do
      [ "$rel" = "$name" ] && allowed=1
    done
    [ "$allowed" = 1 ] && continue
    if grep -nE "$PATTERN" "$file" | sed "s|^|$file:|"; then
      found=1
    fi
  done < <(find "$dir" -type f \( -name '*.rs' -o -name '*.c' -o -name '*.h' \) -print0 | sort -z)
  if [ "$found" = 1 ]; then
    echo "lint-version-isolation: CPython version checks belong in $dir/pyversion.rs (Rust) or" \
      "$dir/pystate.c (C) only: move the difference there behind a version-independent function" \
      "or constant" >&2
    return 1
  fi
}

if [ "${1:-}" = "--self-test" ]; then
  # The rule must fail on a version cfg outside the allowed files and pass on the same cfg inside
  # them, on a throwaway copy of python/src.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp -r python/src "$tmp/src"
  check "$tmp/src" >/dev/null 2>&1 || { echo "self-test: python/src itself fails the rule" >&2; exit 1; }
  printf '#[cfg(Py_3_13)]\nfn f() {}\n' >>"$tmp/src/pyversion.rs"
  check "$tmp/src" >/dev/null 2>&1 || { echo "self-test: a cfg in pyversion.rs was refused" >&2; exit 1; }
  printf '#[cfg(not(Py_3_12))]\nfn f() {}\n' >>"$tmp/src/greenlet/switch.rs"
  if out=$(check "$tmp/src" 2>&1); then
    echo "self-test: a cfg in greenlet/switch.rs was not caught" >&2
    exit 1
  fi
  grep -q "greenlet/switch.rs:[0-9]*:#\[cfg(not(Py_3_12))\]" <<<"$out" \
    || { echo "self-test: the report does not name file:line: $out" >&2; exit 1; }
  echo "lint-version-isolation: self-test passed"
  exit 0
fi

check "${1:-python/src}"
