#!/usr/bin/env bash
# The whole quality gate, as CI runs it: lint, format, types, migrations in step with models, tests.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/monitor -k probe).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff check";        ruff check .
echo "== ruff format";       ruff format --check .
echo "== mypy";              mypy
echo "== migrations match the models"; hypercare db check
echo "== runbooks lint";    hypercare runbooks lint
echo "== pytest";            python -m pytest "$@"
