#!/usr/bin/env bash
# The README's main job on built-in defaults, runnable on a fresh machine (creates .venv first):
# tools/prune.py with no arguments = synthetic scenes, the demo cfg trained from scratch, pruned with the
# Taylor criterion into fast / medium / accurate tiers with a report. Extra arguments go to tools/prune.py
# (e.g. --resume after an interruption, --out DIR).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
python tools/prune.py "$@"
