#!/usr/bin/env bash
# The Python package's tests, as a new user gets the package: build the wheel
# the way `pip install .` does (maturin, release profile), install it into a
# fresh virtual environment, and run pytest there against the installed
# `whystuck` command and package. Extra arguments go to pytest (-k NAME, -x).
#
#   tests/python/run.sh
#
# Needs python3 with venv (Debian: python3-venv), a Rust toolchain, and PyPI
# for maturin and pytest. Everything it makes is under target/python/.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
python=${PYTHON:-python3}
work=$root/target/python

# Nothing from a development setup (README) may point the tests elsewhere.
unset WHYSTUCK_BIN PYTHONPATH
rm -rf "$work/wheels" "$work/venv"
mkdir -p "$work"

"$python" -m venv "$work/venv"
venv=$work/venv/bin

# The wheel, built by pip through pyproject.toml's build backend (in an
# isolated build environment), exactly as `pip install .` builds it;
# --locked as for cargo test.
MATURIN_PEP517_ARGS="--locked" "$venv/pip" wheel --no-deps --quiet --wheel-dir "$work/wheels" "$root"
wheel=$(ls "$work"/wheels/whystuck-*.whl)
echo "built $(basename "$wheel")"
"$venv/pip" install --quiet "$wheel" pytest jsonschema

# The tests must see the installed package and binary, not the source tree.
"$venv/python" - <<'EOF'
import os, sys, sysconfig, whystuck
site = sysconfig.get_path("purelib")
assert whystuck.__file__.startswith(site), f"whystuck imported from {whystuck.__file__}, not {site}"
binary = whystuck.find_whystuck_bin()
assert binary == os.path.join(sysconfig.get_path("scripts"), "whystuck"), binary
print(f"testing {whystuck.__file__} and {binary}")
EOF

status=0
(cd "$root/tests/python" && "$venv/pytest" -p no:cacheprovider "$@") || status=$?
if [ "$status" = 5 ]; then
    echo "tests/python/run.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
