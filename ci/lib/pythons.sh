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
