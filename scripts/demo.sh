#!/usr/bin/env bash
# The README's main command: the whole service with simulated buses, in one process, no system services.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
exec .venv/bin/smartbus demo "$@"
