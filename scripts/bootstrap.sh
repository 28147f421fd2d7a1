#!/usr/bin/env bash
# Create .venv (Python 3.11+), install the project with its dev tools, and compile the ETA core's hot modules.
# Idempotent: skips the install while pyproject.toml is unchanged since the last successful one, and the
# compilation while the sources are unchanged since the last build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "bootstrap: $python is $("$python" --version 2>&1); smartbus needs Python 3.11 or newer" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv with $("$python" --version 2>&1)"
    if ! "$python" -m venv .venv; then
        # Debian's python3 ships venv's ensurepip separately, in python3-venv.
        rm -rf .venv
        echo "bootstrap: venv creation failed; installing python3-venv with apt-get"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
        "$python" -m venv .venv
    fi
fi

stamp=.venv/.smartbus-pyproject-sha256
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] || [ ! -x .venv/bin/smartbus ]; then
    echo "bootstrap: installing smartbus and its dev tools into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    echo "$wanted" > "$stamp"
fi

# The ETA core's hot modules compiled by mypyc (eta/native.py): a C compiler and Python's headers. Compiling
# is an optimisation: when it cannot be done, the same modules run interpreted, correct and slower, and the
# demo still starts. (scripts/test.sh fails then: its tests require the compiled core.)
compile_native() {
    if ! command -v cc >/dev/null 2>&1; then
        echo "bootstrap: no C compiler; installing gcc with apt-get"
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc libc6-dev || return 1
    fi
    if ! .venv/bin/python -c 'import pathlib, sys, sysconfig; sys.exit(not pathlib.Path(sysconfig.get_paths()["include"], "Python.h").is_file())'; then
        echo "bootstrap: no Python.h; installing python3-dev with apt-get"
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-dev || return 1
    fi
    # Quick when the build is current; otherwise about 40 s (and some 500 MB of memory).
    .venv/bin/python -m smartbus.native_build
}
if ! compile_native; then
    echo "bootstrap: WARNING: the ETA core could not be compiled; it runs interpreted (same results, slower)" >&2
fi
