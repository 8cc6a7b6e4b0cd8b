# The one way the scripts run something on a CPython: which interpreter, which venv, which pinned
# tools, which of our wheels. Sourced by every script that needs a Python (ci/python.sh,
# ci/python-wheel.sh, ci/wheels.sh, ci/compat.sh, ci/gevent.sh, ci/fuzz.sh, ci/soak.sh,
# ci/pystate.sh, bench/python/run.sh, examples/python/run.sh). Expects `set -euo pipefail`; sets
# ROOT to the repository if it is unset.
#
# Why a shell library and not a noxfile: every runner here is already a bash script that also
# compiles C, drives cargo and parses logs, and the Makefile calls them directly. nox would have to
# be installed from PyPI into a bootstrap venv first (one more pinned tool, one more network fetch
# before anything runs, one more interpreter-discovery rule of its own), and it would still shell
# out to these steps. A library of a few functions gives the same single rule for interpreters,
# venvs and pins without any of that.
#
# The rules:
#   interpreter 3.X  the newest patch release under $PYENV_ROOT/versions (default ~/.pyenv), named
#                    exactly 3.X.N (so not 3.13.0t), else python3.X from PATH  (find_python)
#   versions         PY_SUPPORTED; under CI=true each requested one must be found  (pick_python)
#   venv             target/venv-3.X-PURPOSE, made once and reused  (venv_for); or a given
#                    directory, made afresh  (venv_at)
#   pins             ci/pins.txt, one `name==version` per package  (pip_pins, pin_version)
#   our wheels       built by ci/python-wheel.sh for that interpreter, installed with --no-deps
#                    --force-reinstall  (build_wheels, install_wheels)

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}
PINS=$ROOT/ci/pins.txt
PY_SUPPORTED=(3.10 3.11 3.12 3.13)
PIP=(-m pip --disable-pip-version-check -q)

# find_python 3.X: prints the interpreter of that minor version (the rule above); fails if none.
find_python() {
  local minor=$1 best="" d
  for d in "$PYENV_ROOT"/versions/"$minor".*; do
    [ -x "$d/bin/python$minor" ] || continue
    [[ "$(basename "$d")" =~ ^$minor\.[0-9]+$ ]] || continue
    best=$d
  done
  if [ -n "$best" ]; then echo "$best/bin/python$minor"; return 0; fi
  command -v "python$minor" 2>/dev/null
}

# python_minor PYTHON: prints its "3.X".
python_minor() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

# default_python: the interpreter of the scripts that run on one Python only (PYTHON, else
# python3), resolved to its real executable.
default_python() {
  "${PYTHON:-python3}" -c 'import sys; print(sys.executable)'
}

# one_python 3.X: sets PY to that interpreter or exits 2 (the single-version scripts).
one_python() {
  PY=$(find_python "$1" || true)
  [ -n "$PY" ] && return 0
  echo "$0: CPython $1 not found (under $PYENV_ROOT/versions or on PATH)" >&2
  exit 2
}

# pin_version NAME: the version ci/pins.txt pins NAME to; fails (and says so) if it is not there.
pin_version() {
  local v
  v=$(awk -F'==' -v n="$1" '$1 == n { print $2 }' "$PINS")
  [ -n "$v" ] || { echo "$0: $1 is not pinned in ci/pins.txt" >&2; return 1; }
  echo "$v"
}

# pin NAME: prints NAME==VERSION.
pin() {
  local v
  v=$(pin_version "$1") && echo "$1==$v"
}

# pin_sdist_sha256 NAME: the `#sdist-sha256 NAME HASH` line's hash.
pin_sdist_sha256() {
  local h
  h=$(awk -v n="$1" '$1 == "#sdist-sha256" && $2 == n { print $3 }' "$PINS")
  [ -n "$h" ] || { echo "$0: no '#sdist-sha256 $1' line in ci/pins.txt" >&2; return 1; }
  echo "$h"
}

# maturin's pin is the build requirement in python/pyproject.toml (what pip's own builds use).
maturin_version() {
  sed -n 's/^requires = \["maturin==\([^"]*\)"\]/\1/p' "$ROOT/python/pyproject.toml"
}

# venv_for PURPOSE PYTHON: sets VENV to target/venv-3.X-PURPOSE, made if missing (reused, so pins
# already installed cost nothing).
venv_for() {
  VENV=$ROOT/target/venv-$(python_minor "$2")-$1
  [ -x "$VENV/bin/python" ] || "$2" -m venv "$VENV"
}

# venv_at DIR PYTHON: sets VENV to DIR, made afresh (for the suites that must see only what they
# install).
venv_at() {
  VENV=$1
  rm -rf "$VENV"
  "$2" -m venv "$VENV"
}

# pip_pins VENV NAME... [-- PIP_ARGS...]: installs each NAME at its pinned version into VENV; the
# arguments after `--` (wheel files, pip options) go to the same pip call (one resolution).
pip_pins() {
  local venv=$1 reqs=() r
  shift
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    r=$(pin "$1") || return 1
    reqs+=("$r")
    shift
  done
  [ $# -eq 0 ] || shift
  "$venv/bin/python" "${PIP[@]}" install "${reqs[@]}" "$@"
}

# build_wheels PYTHON DIR: the uthread and drop-in greenlet wheels for PYTHON into DIR (emptied
# first), by ci/python-wheel.sh, quietly unless it fails. Sets WHEELS=DIR.
build_wheels() {
  WHEELS=$2
  rm -rf "$WHEELS"
  local log
  log=$(mktemp)
  if PYTHON=$1 "$ROOT/ci/python-wheel.sh" "$WHEELS" >"$log" 2>&1; then
    rm -f "$log"
    return 0
  fi
  cat "$log" >&2
  rm -f "$log"
  return 1
}

# install_wheels VENV uthread|greenlet...: (re)installs those of WHEELS into VENV, without their
# dependencies (the greenlet drop-in's only one is the uthread wheel beside it).
install_wheels() {
  local venv=$1 files=() name
  shift
  for name in "$@"; do files+=("$WHEELS"/"$name"-*.whl); done
  "$venv/bin/python" "${PIP[@]}" install --force-reinstall --no-deps "${files[@]}"
}

# wheel_venv PURPOSE PYTHON: build_wheels into target/wheels-3.X-PURPOSE, venv_for PURPOSE, and
# the uthread wheel installed there. Sets WHEELS, VENV.
wheel_venv() {
  local minor
  minor=$(python_minor "$2")
  build_wheels "$2" "$ROOT/target/wheels-$minor-$1"
  venv_for "$1" "$2"
  install_wheels "$VENV" uthread
}

# ---- the scripts that loop over versions ---------------------------------------------------------
# They declare `declare -A RESULT` and `failed=0`, then for each version:
#   pick_python 3.X || continue                # sets PY, or records 3.X as missing
#   ... run pytest into LOG, STATUS = its exit status ...
#   record_pytest 3.X STATUS LOG [PREFIX]      # RESULT[3.X] = "ok: PREFIX<summary>" or FAILED
# and finish with `print_results "title"; exit $failed`.

# requested_versions ARGS...: sets `versions` to the arguments, or PY_SUPPORTED if none.
requested_versions() {
  versions=("$@")
  [ ${#versions[@]} -gt 0 ] || versions=("${PY_SUPPORTED[@]}")
}

# pick_python 3.X: sets PY (find_python). If there is none, records it as missing (a failure
# under CI=true, where every version is required).
pick_python() {
  local v=$1
  PY=$(find_python "$v" || true)
  [ -n "$PY" ] && return 0
  RESULT[$v]="missing"
  if [ "${CI:-}" = "true" ]; then failed=1; fi
  echo "$0: CPython $v not found (under $PYENV_ROOT/versions or on PATH)" >&2
  return 1
}

# record_pytest 3.X STATUS LOG [PREFIX]: the outcome of a pytest run, with PREFIX put before
# pytest's own summary line on success.
record_pytest() {
  local v=$1 status=$2 log=$3 prefix=${4:-} summary
  summary=$(grep -E '[0-9]+ (passed|failed|skipped|errors?)' "$log" | tail -1 | sed 's/=//g; s/^ *//; s/ *$//')
  if [ "$status" -eq 0 ]; then
    RESULT[$v]="ok: $prefix${summary:-passed}"
  else
    RESULT[$v]="FAILED (pytest exit $status): ${summary:-see $log}"
    failed=1
  fi
}

# print_results TITLE: the title and one line per version in `versions`.
print_results() {
  echo "=== $1 ==="
  for v in "${versions[@]}"; do
    printf '  CPython %-5s %s\n' "$v" "${RESULT[$v]}"
  done
}

# fetch_sdist PYTHON NAME WORK: the source distribution of NAME's pinned version, downloaded with
# PYTHON's pip into WORK once (kept while it matches the pinned hash), unpacked afresh into
# WORK/src. Sets SDIST (the archive) and SDIST_DIR (WORK/src/NAME-VERSION).
fetch_sdist() {
  local py=$1 name=$2 work=$3 version sha256
  version=$(pin_version "$name")
  sha256=$(pin_sdist_sha256 "$name")
  mkdir -p "$work"
  SDIST=$work/$name-$version.tar.gz
  if [ ! -f "$SDIST" ] || ! echo "$sha256  $SDIST" | sha256sum -c --quiet - 2>/dev/null; then
    rm -f "$SDIST"
    echo "$name==$version --hash=sha256:$sha256" >"$work/requirements.txt"
    "$py" "${PIP[@]}" download --no-deps --no-binary :all: \
      --require-hashes -r "$work/requirements.txt" -d "$work"
  fi
  rm -rf "$work/src"
  mkdir -p "$work/src"
  tar xzf "$SDIST" -C "$work/src"
  SDIST_DIR=$work/src/$name-$version
}
