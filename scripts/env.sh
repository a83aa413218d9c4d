#!/usr/bin/env bash
# Creates or updates .venv with everything the offline tools and the tests need, then activates it.
# Sourced by scripts/demo.sh and scripts/test.sh so each of them works on a fresh machine by itself.
# Idempotent: a stamp of setup.py skips pip when nothing changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${YOLO_COMPRESS_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
STAMP="$(cat "$ROOT/setup.py" "$ROOT/scripts/env.sh" | cksum | cut -d' ' -f1)"
if [ "$(cat "$VENV/.yolo_compress_stamp" 2>/dev/null)" != "$STAMP" ]; then
  # torch 2.13.0 first: a CPU build that this machine image keeps on disk; the ">=2.1" of the
  # offline extra is then already met and pip fetches no multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[offline,test]"
  echo "$STAMP" > "$VENV/.yolo_compress_stamp"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
cd "$ROOT"
