#!/usr/bin/env bash
# Builds, for the default Python (PYTHON, else python3), the uthread wheel and the drop-in greenlet
# wheel (python/greenlet-compat, pure Python plus our greenlet.h, depends on uthread of the same
# release) into OUTDIR.
# Usage: ci/python-wheel.sh [OUTDIR]     (default: dist)
#
# The greenlet distribution's version is 3.5.6.post<N> with N = MAJOR*10000 + MINOR*100 + PATCH of
# uthread's version (see python/greenlet-compat/pyproject.toml); this script checks that the
# version and the `uthread==` pin written there (and greenlet.__version__) match the workspace
# version, so a release bump cannot leave them behind.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. ci/lib/python.sh # default_python, venv_for, pin_version, maturin_version
out=${1:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=$(default_python)
minor=$(python_minor "$py")
# The greenlet release whose API (and test suite) the compat package follows: its pin.
GREENLET_API_VERSION=$(pin_version greenlet)

# --- versions -----------------------------------------------------------------------------------
uthread_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)
IFS=. read -r major minor_v patch <<<"$uthread_version"
post=$((major * 10000 + minor_v * 100 + patch))
greenlet_version="$GREENLET_API_VERSION.post$post"
compat=python/greenlet-compat
check() { # file, expected text
  grep -qF -- "$2" "$1" || {
    echo "ci/python-wheel.sh: $1 must contain '$2' (uthread $uthread_version -> greenlet $greenlet_version)" >&2
    exit 1
  }
}
check "$compat/pyproject.toml" "version = \"$greenlet_version\""
check "$compat/pyproject.toml" "\"uthread==$uthread_version\""
check "$compat/greenlet/__init__.py" "__version__ = \"$greenlet_version\""

# --- uthread (maturin) --------------------------------------------------------------------------
# maturin at the version python/pyproject.toml's [build-system] requires, in target/venv-3.X-build.
venv_for build "$py"
venv=$VENV
"$venv/bin/python" "${PIP[@]}" install "maturin==$(maturin_version)"
rm -f "$out"/uthread-"$uthread_version"-cp"${minor/./}"-*.whl "$out"/greenlet-"$greenlet_version"-*.whl
(cd python && PYO3_PYTHON="$venv/bin/python" "$venv/bin/maturin" build --release -q -i "$venv/bin/python" -o "$out")

# --- greenlet (pure Python; its pinned build backend comes from PyPI in an isolated build) -------
# A copy, so that the build leaves nothing in the source tree.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$compat" "$tmp/greenlet-compat"
rm -rf "$tmp/greenlet-compat/build" "$tmp"/greenlet-compat/greenlet/__pycache__
"$venv/bin/python" "${PIP[@]}" wheel --no-deps "$tmp/greenlet-compat" -w "$out"

# The drop-in must ship greenlet.h where greenlet's wheel does: in the package, and in the wheel's
# `headers` scheme (installed as <prefix>/include/site/pythonX.Y/greenlet/greenlet.h).
"$venv/bin/python" - "$out/greenlet-$greenlet_version-py3-none-any.whl" "$greenlet_version" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
for want in ("greenlet/greenlet.h", "greenlet-%s.data/headers/greenlet.h" % sys.argv[2]):
    if want not in names:
        sys.exit("ci/python-wheel.sh: %s lacks %s" % (sys.argv[1], want))
EOF
ls "$out"/uthread-"$uthread_version"-cp"${minor/./}"-*.whl "$out"/greenlet-"$greenlet_version"-py3-none-any.whl
