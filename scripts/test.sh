#!/usr/bin/env bash
# The README's test command: set up, start the real services, lint, type-check, then run pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/services -x`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$(date +%s)
finish() {
    local status=$?
    echo "test.sh: exit ${status}, total $(($(date +%s) - started)) s"
}
trap finish EXIT

bash scripts/bootstrap.sh
.venv/bin/smartbus services up
# The browser tests drive Debian's headless Chromium with playwright-core from npm.
sh api/frontend/install-browser-deps.sh
echo "test.sh: ruff check"
.venv/bin/ruff check .
echo "test.sh: mypy"
# bench/ holds plain scripts (no __init__.py), one named like the simulator package: name modules by path.
.venv/bin/mypy --explicit-package-bases .

status=0
# bootstrap.sh compiled the ETA core (eta/native.py): the tests run what production runs, and a missing
# build fails the byte-for-byte comparison of compiled and interpreted replays instead of skipping it.
SMARTBUS_REQUIRE_NATIVE=1 .venv/bin/pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; that is a failure" >&2
    exit 1
fi
if [ "$#" -eq 0 ]; then
    # The interpreted ETA core is what runs wherever nothing is compiled, or right after an edit: its tests too.
    echo "test.sh: the ETA core's tests again, interpreted (SMARTBUS_NATIVE=0)"
    SMARTBUS_NATIVE=0 .venv/bin/pytest -q tests/eta tests/prediction || status=$?
fi
exit "$status"
