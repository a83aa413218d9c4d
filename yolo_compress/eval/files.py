"""Reading input files with errors that name the file, and atomic writes of results.

A report or plot is either the old file or the complete new one, never half written: an
interrupted tool must not leave a truncated JSON that a later comparison of tiers would read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from yolo_compress.models.atomic import atomic_path  # stdlib only: importing it loads no torch


class InputFileError(ValueError):
    """An input file that is missing, not valid JSON, or lacks a field; the message names file and field."""


def read_json(path: str | os.PathLike) -> Any:
    """Parsed JSON of `path`, or InputFileError saying why it could not be read."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise InputFileError(f"{path}: cannot read: {e.strerror or e}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputFileError(f"{path}: not valid JSON: {e}") from e


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write `data` as indented JSON, atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return Path(path)
