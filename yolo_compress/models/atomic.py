"""Write a file so that readers see the old file or the complete new one, never a partial one.

Stdlib only: the robot side (no torch) writes its JSON through here too.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed.

    Same directory, so os.replace is a rename on one file system (atomic on POSIX). The file gets the mode a
    plain open() would give (0o666 minus the umask), not mkstemp's private 0o600: models and tiers written
    offline are read by the robot's node, often as another user.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask (reading it means setting it: restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write `data` as indented, strict JSON (no NaN: other tools must be able to read it), atomically.

    numpy scalars (an AP from pycocotools, a latency from np.median) are written as plain numbers."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, allow_nan=False, default=plain_number) + "\n", encoding="utf-8")
    return Path(path)


def plain_number(value: Any) -> Any:
    """numpy scalars to Python numbers, duck-typed so this module needs no numpy."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def with_defaults(saved: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`saved` settings, where keys added since it was written (at any depth) take their default values."""
    merged = dict(defaults)
    for key, value in saved.items():
        default = defaults.get(key)
        both_dicts = isinstance(value, dict) and isinstance(default, dict)
        merged[key] = with_defaults(value, default) if both_dicts else value
    return merged
