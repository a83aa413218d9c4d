"""Darknet .cfg text: parse it into sections, write it back, find built-in cfgs.

The cfg is the architecture (DESIGN.md, "Models"), so every mistake in it must point at the file and
line that holds it: sections remember where they and each of their options came from, and their typed
getters raise CfgError with that location.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

# darknet's own spellings of the same section, mapped to one name
_ALIASES = {"network": "net", "conv": "convolutional", "max": "maxpool"}
LAYER_TYPES = (
    "convolutional", "maxpool", "route", "shortcut", "upsample", "dropout", "reorg", "region", "yolo",
)
_REQUIRED = object()


class CfgError(ValueError):
    """A cfg that cannot be parsed or built; the message starts with "file:line:"."""


@dataclass
class Section:
    """One [type] block with its key=value options, in file order.

    `line` (1-based, the [header]'s line), `source` and `key_lines` only locate errors: they take no
    part in equality, so a cfg equals its own formatted-and-reparsed text.
    """

    type: str
    options: dict[str, str]
    line: int = field(default=0, compare=False)
    source: str = field(default="<cfg>", compare=False)
    key_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def where(self, key: str | None = None) -> str:
        """"file:line" of option `key` when known, else of the section header."""
        return f"{self.source}:{self.key_lines.get(key, self.line) if key else self.line}"

    def error(self, message: str, key: str | None = None) -> CfgError:
        return CfgError(f"{self.where(key)}: [{self.type}] {message}")

    def get_str(self, key: str, default: object = _REQUIRED) -> str:
        if key in self.options:
            return self.options[key]
        if default is _REQUIRED:
            raise self.error(f"missing option '{key}'")
        return default  # type: ignore[return-value]

    def get_int(self, key: str, default: object = _REQUIRED) -> int:
        return self._convert(key, default, int, "an integer")

    def get_float(self, key: str, default: object = _REQUIRED) -> float:
        return self._convert(key, default, float, "a number")

    def get_ints(self, key: str, default: object = _REQUIRED) -> list[int]:
        return self._convert(key, default, lambda v: [int(p) for p in _split_list(v)], "a list of integers")

    def get_floats(self, key: str, default: object = _REQUIRED) -> list[float]:
        return self._convert(key, default, lambda v: [float(p) for p in _split_list(v)], "a list of numbers")

    def _convert(self, key: str, default: object, convert: Callable[[str], Any], what: str) -> Any:
        if key not in self.options:
            return self.get_str(key, default)
        try:
            return convert(self.options[key])
        except ValueError:
            raise self.error(f"option {key}={self.options[key]} is not {what}", key) from None


def _split_list(value: str) -> list[str]:
    parts = [p.strip() for p in value.split(",")]
    # darknet tolerates a trailing comma ("anchors = 1,2, 3,4,")
    if parts and not parts[-1]:
        parts.pop()
    return parts


def parse_cfg(text: str, source: str = "<cfg>") -> list[Section]:
    """Sections of a Darknet cfg; the first is [net], the rest are layers (layer i = sections[i + 1])."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            sections.append(_header(line, number, source))
        elif not sections:
            raise CfgError(f"{source}:{number}: option before the first [section]: {line!r}")
        else:
            _add_option(sections[-1], line, number)
    _check_net(sections, source)
    return sections


def _header(line: str, number: int, source: str) -> Section:
    if not line.endswith("]"):
        raise CfgError(f"{source}:{number}: expected a [section] header, got {line!r}")
    name = line[1:-1].strip()
    kind = _ALIASES.get(name, name)
    if kind != "net" and kind not in LAYER_TYPES:
        raise CfgError(f"{source}:{number}: unknown layer type [{name}] (supported: {', '.join(LAYER_TYPES)})")
    return Section(kind, {}, number, source)


def _add_option(section: Section, line: str, number: int) -> None:
    key, sep, value = (part.strip() for part in line.partition("="))
    if not sep or not key or not value:
        raise CfgError(f"{section.source}:{number}: expected key=value, got {line!r}")
    if key in section.options:
        raise CfgError(f"{section.source}:{number}: duplicate option '{key}' (first at line {section.key_lines[key]})")
    section.options[key] = value
    section.key_lines[key] = number


def _check_net(sections: list[Section], source: str) -> None:
    if not sections or sections[0].type != "net":
        where = f"{source}:{sections[0].line}" if sections else source
        raise CfgError(f"{where}: a cfg must start with a [net] section")
    for section in sections[1:]:
        if section.type == "net":
            raise CfgError(f"{section.where()}: a second [net] section")


def format_cfg(sections: list[Section]) -> str:
    """Cfg text for `sections`; parse_cfg(format_cfg(s)) == s."""
    blocks = []
    for section in sections:
        body = "".join(f"{key}={value}\n" for key, value in section.options.items())
        blocks.append(f"[{section.type}]\n{body}")
    return "\n".join(blocks)


def _builtin_dir():
    return resources.files(__package__).joinpath("cfgs")


def builtin_cfg_names() -> list[str]:
    """Names accepted by resolve_cfg besides file paths (e.g. "yolov3-tiny", "demo")."""
    return sorted(p.name[:-4] for p in _builtin_dir().iterdir() if p.name.endswith(".cfg"))


def resolve_cfg(name_or_path: str | os.PathLike) -> tuple[str, str]:
    """(text, source) of a cfg file path or of a built-in cfg name (with or without ".cfg")."""
    path = Path(name_or_path)
    if path.is_file():
        return path.read_text(), str(path)
    name = str(name_or_path)
    stem = name[:-4] if name.endswith(".cfg") else name
    if stem in builtin_cfg_names():
        return _builtin_dir().joinpath(f"{stem}.cfg").read_text(), f"{stem}.cfg"
    raise FileNotFoundError(
        f"cfg not found: {name} is neither a file nor a built-in cfg ({', '.join(builtin_cfg_names())})"
    )
