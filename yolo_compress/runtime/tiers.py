"""config/tiers.yaml: the model tiers a robot serves, read by the node and the bag evaluator, written by prune.

    default: medium
    models_dir: models          # relative to this file unless absolute; $YOLO_COMPRESS_MODELS overrides
    tiers:                      # fastest first: the auto tier moves along this order
      fast:     {model: fast.onnx, conf_threshold: 0.25, iou_threshold: 0.45, ap50: 0.41, latency_ms: 6.2}
      medium:   {model: medium.onnx, conf_threshold: 0.25, iou_threshold: 0.45}
      accurate: {model: accurate.onnx, conf_threshold: 0.25, iou_threshold: 0.45}

Loading resolves every path, so a TiersConfig names absolute model files whatever the working directory;
writing stores them relative to the file again, so a folder of models plus its tiers.yaml can be copied to
a robot as a whole. Mistakes are reported with the file, line, tier and field, because this file is
edited by hand on robots where a typo would otherwise surface as a missing-model error at launch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from yolo_compress.models.atomic import atomic_path  # stdlib only: no torch on the robot

MODELS_ENV = "YOLO_COMPRESS_MODELS"
TIER_ORDER = ("fast", "medium", "accurate")  # when these names are used they must appear in this order
DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.45
HEADER = (
    "# Model tiers the detector node serves, fastest first (the auto tier moves along this order).\n"
    "# models_dir is relative to this file unless absolute; $YOLO_COMPRESS_MODELS overrides it.\n"
)


class TiersError(ValueError):
    """tiers.yaml is missing, not YAML, or has a wrong field; the message names the file and the place."""


@dataclass(frozen=True)
class TierSpec:
    """One tier: its model and thresholds, plus what the prune tool measured (None where unknown)."""

    name: str
    model: Path  # absolute after load_tiers; built in code, a relative path is relative to the cwd like any Path
    conf_threshold: float = DEFAULT_CONF
    iou_threshold: float = DEFAULT_IOU
    ap50: float | None = None
    ap50_95: float | None = None
    gflops: float | None = None
    params: int | None = None
    latency_ms: float | None = None
    input_size: tuple[int, int] | None = None  # (H, W)
    size_mb: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", Path(self.model))
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))

    @property
    def model_path(self) -> Path:
        """The model file to open (the resolved `model`; named for call sites that open it)."""
        return self.model


# Optional measured fields and the type each one is read as.
MEASURED_FIELDS = {"ap50": float, "ap50_95": float, "gflops": float, "params": int, "latency_ms": float,
                   "input_size": tuple, "size_mb": float}
TIER_FIELDS = ("model", "conf_threshold", "iou_threshold", *MEASURED_FIELDS)


@dataclass(frozen=True)
class TiersConfig:
    """The tiers in speed order (fastest first), the default tier and the directory models are found in."""

    default: str
    models_dir: Path
    tiers: Mapping[str, TierSpec]
    source: Path | None = field(default=None, compare=False)  # the file it was loaded from

    def __post_init__(self) -> None:
        object.__setattr__(self, "models_dir", Path(self.models_dir))
        object.__setattr__(self, "tiers", dict(self.tiers))
        where = str(self.source or "tiers config")
        if not self.tiers:
            raise TiersError(f"{where}: no tiers")
        for key, spec in self.tiers.items():
            if key != spec.name:
                raise TiersError(f"{where}: tier key {key!r} holds a TierSpec named {spec.name!r}")
        if self.default not in self.tiers:
            known = ", ".join(self.tiers)
            raise TiersError(f"{where}: default tier {self.default!r} is not one of the tiers ({known})")
        _check_order(list(self.tiers), where)

    @property
    def names(self) -> tuple[str, ...]:
        """Tier names fastest first."""
        return tuple(self.tiers)

    def tier(self, name: str) -> TierSpec:
        """The tier called `name`; an unknown name raises TiersError listing the known ones."""
        if name not in self.tiers:
            raise TiersError(f"{self.source or 'tiers config'}: unknown tier {name!r} (tiers: {', '.join(self.tiers)})")
        return self.tiers[name]


def _check_order(names: list[str], where: str) -> None:
    ranked = [name for name in names if name in TIER_ORDER]
    if ranked != sorted(ranked, key=TIER_ORDER.index):
        order = " < ".join(TIER_ORDER)
        raise TiersError(f"{where}: tiers must be listed fastest first ({order}), got {', '.join(names)}")


def load_tiers(path: str | os.PathLike, environ: Mapping[str, str] | None = None) -> TiersConfig:
    """Read a tiers file; model paths come back absolute (models_dir from $YOLO_COMPRESS_MODELS when set)."""
    path = Path(path).absolute()
    document, lines = _read_yaml(path)
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise TiersError(f"{path}: expected a mapping with default, models_dir and tiers, got {kind}")
    unknown = sorted(set(document) - {"default", "models_dir", "tiers"})
    if unknown:
        raise TiersError(f"{path}: unknown top-level key(s) {', '.join(map(str, unknown))} "
                         "(expected default, models_dir, tiers)")
    tiers = document.get("tiers")
    if not isinstance(tiers, dict) or not tiers:
        raise TiersError(f"{path}: 'tiers' must be a non-empty mapping of tier name to settings")
    models_dir = _models_dir(path, document.get("models_dir", "."), environ)
    specs = {str(name): _tier_spec(str(name), body, models_dir, f"{path}:{lines.get(str(name), '?')}")
             for name, body in tiers.items()}
    default = document.get("default", next(iter(specs)))
    return TiersConfig(default=str(default), models_dir=models_dir, tiers=specs, source=path)


def _read_yaml(path: Path) -> tuple[object, dict[str, int]]:
    """The parsed document and the 1-based line of each tier's key (for error messages)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TiersError(f"{path}: cannot read tiers file ({exc.strerror or exc})") from exc
    try:
        document = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise TiersError(f"{path}: not valid YAML: {exc}") from exc
    return document, _tier_lines(root)


def _tier_lines(root: yaml.Node | None) -> dict[str, int]:
    if not isinstance(root, yaml.MappingNode):
        return {}
    for key, value in root.value:
        if key.value == "tiers" and isinstance(value, yaml.MappingNode):
            return {str(k.value): k.start_mark.line + 1 for k, _ in value.value}
    return {}


def _models_dir(path: Path, configured: object, environ: Mapping[str, str] | None) -> Path:
    override = (os.environ if environ is None else environ).get(MODELS_ENV, "")
    if override:
        return Path(override).expanduser().absolute()
    if not isinstance(configured, str) or not configured:
        raise TiersError(f"{path}: models_dir must be a directory path, got {configured!r}")
    directory = Path(configured).expanduser()
    return directory if directory.is_absolute() else path.parent / directory


def _tier_spec(name: str, body: object, models_dir: Path, where: str) -> TierSpec:
    where = f"{where}: tier {name!r}"
    if not isinstance(body, dict):
        raise TiersError(f"{where}: expected a mapping like {{model: {name}.onnx, conf_threshold: 0.25}}, got {body!r}")
    unknown = sorted(set(map(str, body)) - set(TIER_FIELDS))
    if unknown:
        raise TiersError(f"{where}: unknown field(s) {', '.join(unknown)} (fields: {', '.join(TIER_FIELDS)})")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise TiersError(f"{where}: 'model' must be a file name or path, got {model!r}")
    measured = {key: _measured(key, body[key], where) for key in MEASURED_FIELDS if body.get(key) is not None}
    return TierSpec(
        name=name,
        model=models_dir / Path(model).expanduser(),  # an absolute model path stays as it is
        conf_threshold=_threshold("conf_threshold", body.get("conf_threshold", DEFAULT_CONF), where),
        iou_threshold=_threshold("iou_threshold", body.get("iou_threshold", DEFAULT_IOU), where),
        **measured,
    )


def _threshold(key: str, value: object, where: str) -> float:
    number = _number(key, value, where)
    if not 0.0 <= number <= 1.0:
        raise TiersError(f"{where}: {key} must be in [0, 1], got {value!r}")
    return number


def _measured(key: str, value: object, where: str) -> object:
    kind = MEASURED_FIELDS[key]
    if kind is tuple:
        if not (isinstance(value, list) and len(value) == 2 and all(_is_int(v) and v > 0 for v in value)):
            raise TiersError(f"{where}: input_size must be [height, width] (two positive integers), got {value!r}")
        return tuple(value)
    if kind is int:
        if not _is_int(value):
            raise TiersError(f"{where}: {key} must be an integer, got {value!r}")
        return value
    return _number(key, value, where)


def _number(key: str, value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TiersError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def write_tiers(path: str | os.PathLike, config: TiersConfig, comment: str = "") -> Path:
    """Write `config` atomically; models_dir is stored relative to the file, models relative to models_dir.

    Paths that lie outside the file's folder (or models_dir) are stored absolute. Relative paths in `config`
    are relative to the working directory, like any Path. `comment` lines (e.g. what produced the file) go
    into the header. Returns the path written.
    """
    path = Path(path).absolute()
    models_dir = _relative_to(config.models_dir.absolute(), path.parent)
    lines = [HEADER, *(f"# {line}\n" for line in comment.splitlines())]
    lines.append(_yaml_line({"default": config.default}))
    lines.append(_yaml_line({"models_dir": models_dir.as_posix()}))
    lines.append("tiers:\n")
    width = max(len(name) for name in config.tiers) + 1
    for name, spec in config.tiers.items():
        lines.append(f"  {(name + ':').ljust(width)} {_flow(spec, config.models_dir.absolute())}\n")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(lines))
    return path


def _relative_to(target: Path, base: Path) -> Path:
    """Absolute `target` relative to absolute `base` when it lies inside it, else unchanged."""
    return target.relative_to(base) if target.is_relative_to(base) else target


def _flow(spec: TierSpec, models_dir: Path) -> str:
    """The tier as one YAML flow mapping: model and thresholds first, then the measured fields that are known."""
    model = _relative_to(spec.model.absolute(), models_dir)
    body: dict[str, object] = {"model": model.as_posix(), "conf_threshold": spec.conf_threshold,
                               "iou_threshold": spec.iou_threshold}
    for key in MEASURED_FIELDS:
        value = getattr(spec, key)
        if value is not None:
            body[key] = list(value) if key == "input_size" else value
    return yaml.safe_dump(body, default_flow_style=True, sort_keys=False, width=math.inf).strip()


def _yaml_line(mapping: dict[str, object]) -> str:
    return yaml.safe_dump(mapping, default_flow_style=False, sort_keys=False)

