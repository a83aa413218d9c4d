"""The node's parameters: one table with type, default, range and description, declared up front.

The table is the single source for the declarations (so `ros2 param describe` shows every range), for
config/detector.yaml and the README table (a test compares them), and for DetectorSettings, the typed
snapshot the node works from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from yolo_compress.runtime.providers import SPIN_US
from yolo_compress.runtime.serving import ServeSettings

AUTO = "auto"


@dataclass(frozen=True)
class ParamDef:
    """One parameter: default (a Parameter.Type for arrays, whose default is 'unset'), range, description."""

    name: str
    default: object
    description: str
    range: tuple[float, float] | None = None
    read_only: bool = False

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(description=self.description, read_only=self.read_only)
        if self.range is not None and isinstance(self.default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(self.range[0]), to_value=int(self.range[1]))]
        elif self.range is not None:
            descriptor.floating_point_range = [FloatingPointRange(from_value=self.range[0], to_value=self.range[1])]
        return descriptor


PARAMETERS = (
    ParamDef("tier", "", "tier to serve: a name from tiers_file (fast, medium, accurate), 'auto' (the most "
             "accurate tier that holds target_hz, adjusted at run time), or '' for the file's default"),
    ParamDef("tiers_file", "", "tiers.yaml with the tier models; '' = the package's config/tiers.yaml"),
    ParamDef("model", "", "a contract .onnx file to serve instead of a tier (overrides tier while set)"),
    ParamDef("providers", Parameter.Type.STRING_ARRAY, "ONNX Runtime execution providers in order of preference, "
             "e.g. [tensorrt, cuda, cpu]; unset = the fastest this build has"),
    ParamDef("ort_spin_us", SPIN_US, "microseconds ONNX Runtime's idle CPU threads spin before they sleep: "
             "long enough to bridge a run's gaps between ops (0 = never spin: inference 1.4-1.7x slower here), "
             "short of a frame period (-1 = ORT's default, spin on between frames: 37 ms of CPU per 33 ms "
             "frame at 30 Hz on 2 cores, time the robot's other nodes need)", (-1, 1_000_000)),
    ParamDef("conf_threshold", -1.0, "confidence threshold; negative = the tier's (tiers_file, else 0.25)",
             (-1.0, 1.0)),
    ParamDef("iou_threshold", -1.0, "NMS IoU threshold; negative = the tier's (tiers_file, else 0.45)", (-1.0, 1.0)),
    ParamDef("classes", Parameter.Type.STRING_ARRAY, "class names (or ids) to detect; unset or [] = all"),
    ParamDef("max_detections", 100, "most detections published per frame", (1, 10000)),
    ParamDef("use_compressed", False, "subscribe image/compressed (JPEG/PNG) instead of image", read_only=True),
    ParamDef("publish_annotated", False, "always publish ~/annotated; else only while something subscribes"),
    ParamDef("target_hz", 0.0, "detection rate the auto tier must hold (needed for tier 'auto'); 0 = none",
             (0.0, 1000.0)),
)


@dataclass(frozen=True)
class DetectorSettings:
    """Typed values of every parameter; the node swaps its whole settings object on each accepted change."""

    tier: str
    tiers_file: str
    model: str
    providers: tuple[str, ...]
    ort_spin_us: int
    conf_threshold: float
    iou_threshold: float
    classes: tuple[str, ...]
    max_detections: int
    use_compressed: bool
    publish_annotated: bool
    target_hz: float

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> DetectorSettings:
        """From {name: value}; unset arrays (None) become (), numbers get their declared type."""
        return cls(
            tier=str(values["tier"]).strip(),
            tiers_file=str(values["tiers_file"]).strip(),
            model=str(values["model"]).strip(),
            providers=tuple(str(v) for v in values["providers"] or ()),
            ort_spin_us=int(values["ort_spin_us"]),
            conf_threshold=float(values["conf_threshold"]),
            iou_threshold=float(values["iou_threshold"]),
            classes=tuple(str(v).strip() for v in values["classes"] or () if str(v).strip()),
            max_detections=int(values["max_detections"]),
            use_compressed=bool(values["use_compressed"]),
            publish_annotated=bool(values["publish_annotated"]),
            target_hz=float(values["target_hz"]),
        )

    def with_changes(self, changes: Mapping[str, object]) -> DetectorSettings:
        """These settings with some parameters changed (as a SetParameters request carries them)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return DetectorSettings.from_values({**values, **changes})

    def serve_settings(self) -> ServeSettings:
        return ServeSettings(self.providers, self.conf_threshold, self.iou_threshold, self.classes,
                             self.max_detections, None if self.ort_spin_us < 0 else self.ort_spin_us)

    def tiers_path(self, default: Path) -> Path:
        return Path(self.tiers_file).expanduser() if self.tiers_file else default


def declare_parameters(node: Node) -> DetectorSettings:
    """Declare every parameter with its descriptor; the values given at launch (or the defaults) come back.

    An array parameter given no value stays unset (its value is None), which means "all" / "fastest".
    """
    declared = {spec.name: node.declare_parameter(spec.name, spec.default, spec.descriptor()) for spec in PARAMETERS}
    return DetectorSettings.from_values({name: param.value for name, param in declared.items()})
