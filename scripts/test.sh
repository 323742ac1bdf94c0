#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: creates .venv, installs the project with its test extras,
# installs Debian's chromium for the browser tests when missing, then runs pytest. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (browser tests)..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: install Debian's 'chromium' package (sudo apt-get install chromium)" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'

echo "ruff (lint) and import-linter (the floors)..."
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache >/dev/null

exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
