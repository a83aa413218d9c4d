#!/usr/bin/env bash
# The test command of the README (and of CI): lint, then the whole pytest suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ruff check .
python -m pytest -q "$@"
