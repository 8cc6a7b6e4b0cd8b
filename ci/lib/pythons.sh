# Sourced by the scripts that run something on each CPython 3.10-3.13 found (ci/python.sh,
# ci/wheels.sh, tests/compat/run.sh) or in a venv holding our wheels (bench/python/run.sh,
# examples/python/run.sh). Expects ROOT (the repository) and `set -euo pipefail`.

PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}

# The newest installed patch release of a minor version, e.g. 3.12 -> ~/.pyenv/versions/3.12.1/
# bin/python3.12; with `--or-path`, else python3.X from PATH. Fails if there is none.
find_python() {
  local minor=$1 best=""
  for d in "$PYENV_ROOT"/versions/"$minor".*; do
    [ -x "$d/bin/python$minor" ] || continue
    [[ "$(basename "$d")" =~ ^$minor\.[0-9]+$ ]] || continue
    best=$d
  done
  if [ -n "$best" ]; then echo "$best/bin/python$minor"; return 0; fi
  if [ "${2:-}" = "--or-path" ]; then command -v "python$minor" 2>/dev/null; return; fi
  return 1
}

# wheel_venv NAME PYTHON: builds the uthread and drop-in greenlet wheels for PYTHON into
# target/NAME-wheels-3.X (ci/python-wheel.sh, quietly unless it fails), makes the venv
# target/NAME-venv-3.X if missing, and (re)installs the uthread wheel into it. Sets WHEELS, VENV.
wheel_venv() {
  local name=$1 py minor
  py=$("$2" -c 'import sys; print(sys.executable)')
  minor=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  WHEELS=$ROOT/target/$name-wheels-$minor
  VENV=$ROOT/target/$name-venv-$minor
  rm -rf "$WHEELS"
  PYTHON=$py "$ROOT/ci/python-wheel.sh" "$WHEELS" >/dev/null 2>&1 || PYTHON=$py "$ROOT/ci/python-wheel.sh" "$WHEELS"
  [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
    "$WHEELS"/uthread-*.whl
}

# The per-version bookkeeping of the scripts that loop over versions: they declare
# `declare -A RESULT` and `failed=0`, then for each version:
#   pick_python 3.X [--or-path] || continue    # sets PY, or records 3.X as missing
#   ... run pytest into LOG, STATUS = its exit status ...
#   record_pytest 3.X STATUS LOG [PREFIX]      # RESULT[3.X] = "ok: PREFIX<summary>" or FAILED
# and finish with `print_results "title"; exit $failed`.

# Sets PY to the interpreter of minor version $1 (find_python, options passed on). If there is
# none, records it as missing (a failure under CI=true, where every version is required).
pick_python() {
  local v=$1
  shift
  PY=$(find_python "$v" "$@" || true)
  [ -n "$PY" ] && return 0
  RESULT[$v]="missing"
  if [ "${CI:-}" = "true" ]; then failed=1; fi
  echo "$0: CPython $v not found under $PYENV_ROOT/versions" >&2
  return 1
}

# Records the outcome of a pytest run for version $1: exit status $2, output in $3, with $4 put
# before pytest's own summary line on success.
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

# Prints the title and one line per version in `versions`.
print_results() {
  echo "=== $1 ==="
  for v in "${versions[@]}"; do
    printf '  CPython %-5s %s\n' "$v" "${RESULT[$v]}"
  done
}

# fetch_sdist PYTHON NAME VERSION SHA256 WORK: the source distribution NAME==VERSION from PyPI,
# downloaded with PYTHON's pip into WORK once (kept while it matches the pinned hash), unpacked
# afresh into WORK/src. Sets SDIST (the archive) and SDIST_DIR (WORK/src/NAME-VERSION).
fetch_sdist() {
  local py=$1 name=$2 version=$3 sha256=$4 work=$5
  mkdir -p "$work"
  SDIST=$work/$name-$version.tar.gz
  if [ ! -f "$SDIST" ] || ! echo "$sha256  $SDIST" | sha256sum -c --quiet - 2>/dev/null; then
    rm -f "$SDIST"
    echo "$name==$version --hash=sha256:$sha256" >"$work/requirements.txt"
    "$py" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
      --require-hashes -r "$work/requirements.txt" -d "$work"
  fi
  rm -rf "$work/src"
  mkdir -p "$work/src"
  tar xzf "$SDIST" -C "$work/src"
  SDIST_DIR=$work/src/$name-$version
}
