#!/usr/bin/env bash
# The README's test command: installs what the suite needs, checks lint and types, then runs the whole
# default suite.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
# Debian's Chromium and ChromeDriver for the browser tests (nothing downloads its own browser).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "note: chromium/chromedriver not installed and not root; browser tests will skip outside CI" >&2
    fi
fi
python -m pip install -q -e ".[test]"
# Lint and types first: they take seconds and name the line, where the suite takes minutes.
# Their configuration (rules, strictness, caches under .cache/) is in pyproject.toml.
# Both run before either failure stops the script, so one run shows every finding.
checks=0
python -m ruff check search spaces storage || checks=1
python -m mypy search spaces storage || checks=1
if [ "$checks" != 0 ]; then
    echo "error: ruff or mypy found problems (above); the tests were not run" >&2
    exit 1
fi
# Two pytest-xdist workers: most tests wait on subprocesses (workers, launchers, TensorFlow start-up)
# rather than fill both cores, so two at a time take about two thirds of the time of one. The tests of
# a file stay together (see tests/conftest.py). Arguments after the script's name go to pytest; -n 0
# runs everything in this one process.
exec python -m pytest -n 2 --dist loadgroup "$@"
