#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the project with its dev tools.
# Idempotent: skips the install while pyproject.toml is unchanged since the last successful one.
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
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && [ -x .venv/bin/smartbus ]; then
    exit 0
fi
echo "bootstrap: installing smartbus and its dev tools into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "$wanted" > "$stamp"
