"""Reading input files with errors that name the file and the field (writes: models.atomic.write_json)."""

from __future__ import annotations

import json
import os
from typing import Any


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
