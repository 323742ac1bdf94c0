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

# LangGraph Studio's extra cannot share a venv with `dev`: langgraph-api pins jsonschema-rs < 0.45 and every
# schemathesis from 4.16 on needs >= 0.45 (docs/containers.md, "Studio and the test extras"). So
# tests/test_studio.py runs in its own venv, .venv-studio, with `.[studio]` and pytest only: by default in CI
# (CI=true), or with EA_TEST_STUDIO=1; EA_TEST_STUDIO=0 skips it. In .venv it is skipped.
if [ "${EA_TEST_STUDIO:-$([ "${CI:-}" = "true" ] && echo 1 || echo 0)}" = "1" ]; then
  echo "tests/test_studio.py in .venv-studio (the studio extra)..."
  if [ ! -x .venv-studio/bin/python ]; then
    python3 -m venv .venv-studio
  fi
  .venv-studio/bin/python -m pip install -q --upgrade pip
  .venv-studio/bin/python -m pip install -q -e '.[studio]' 'pytest>=8' 'pytest-asyncio>=0.24' 'pytest-timeout>=2.3'
  .venv-studio/bin/python -m pip check
  .venv-studio/bin/python -m pytest -p no:cacheprovider -q tests/test_studio.py
fi

# Three test processes (pytest-xdist), whole files to each: most tests wait on real servers, not on the CPU.
# EA_TEST_WORKERS=0 runs them in this one process.
exec .venv/bin/python -m pytest -p no:cacheprovider -n "${EA_TEST_WORKERS:-3}" --dist loadfile "$@"
