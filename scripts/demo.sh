#!/usr/bin/env bash
# Set up on a fresh machine and run the demo (extra arguments go to `hypercare demo`, e.g. --once).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/hypercare demo "$@"
