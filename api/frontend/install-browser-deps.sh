#!/bin/sh
# Installs what the browser tests (tests/browser) need: playwright-core from npm, and Debian's Chromium
# when /usr/bin/chromium is missing. Safe to run again: it does nothing when both are in place.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
browser_tests="$here/../../tests/browser"

if [ ! -x /usr/bin/chromium ]; then
    echo "installing Debian's chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends chromium
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "installing Debian's nodejs and npm" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends nodejs npm
fi

if [ ! -f "$browser_tests/node_modules/playwright-core/package.json" ]; then
    echo "installing playwright-core into $browser_tests" >&2
    (cd "$browser_tests" && npm ci --no-audit --no-fund)
fi
