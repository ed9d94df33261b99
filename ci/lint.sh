#!/usr/bin/env bash
# The linter and the type checker over the whole tree (part of `make test`).
# Test directories are checked one at a time: each is its own import root
# for pytest (their helpers are imported by module name, and every
# directory has its own conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
"$VENV/bin/ruff" check --quiet .
"$VENV/bin/mypy" --no-error-summary agent codegen bench tests/harness.py tests/sinkutil.py tests/conftest.py
for d in tests/*/; do
    MYPYPATH="tests:$d:tests/rules" "$VENV/bin/mypy" --no-error-summary --allow-untyped-defs "$d"
done
