"""Turn cfg sections into torch modules, inferring every layer's output shape as Darknet does.

Shapes are checked while building, so a bad value is reported against its cfg line before any
tensor runs, and a pruned cfg (fewer filters somewhere) rebuilds with consistent channels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from yolo_compress.models.cfg import CfgError, Section
from yolo_compress.models.heads import Head
from yolo_compress.models.layers import (
    ACTIVATION_NAMES,
    BN_EPS,
    BN_MOMENTUM,
    ConvBlock,
    MaxPool,
    Reorg,
    Route,
    Shortcut,
    Upsample,
    make_activation,
)

Shape = tuple[int, int, int]  # (channels, height, width)
HEAD_TYPES = ("yolo", "region")
# Options that change what a layer computes and that this builder does not implement, with the
# value that means "off" (None: any value is unsupported). Darknet would honour them; silently
# ignoring them would build a different network.
_UNSUPPORTED: dict[str, dict[str, float | str | None]] = {
    "convolutional": {"dilation": 1.0, "stride_x": None, "stride_y": None, "binary": 0.0, "xnor": 0.0,
                      "antialiasing": 0.0, "deform": 0.0, "share_index": None, "flipped": 0.0},
    "maxpool": {"stride_x": None, "stride_y": None, "maxpool_depth": 0.0, "antialiasing": 0.0},
    "shortcut": {"weights_type": "none"},
    "upsample": {"scale": 1.0},
    "reorg": {"reverse": 0.0, "extra": 0.0, "flatten": 0.0},
    "yolo": {"new_coords": 0.0},
}


@dataclass
class BuiltLayer:
    """One layer: its module, output shape, the layers it reads (-1 = the image) and its head."""

    module: nn.Module
    shape: Shape
    sources: tuple[int, ...]
    head: Head | None = None


@dataclass
class _Context:
    index: int
    input_shape: Shape
    layers: list[BuiltLayer]
    types: list[str]

    def shape(self, layer: int) -> Shape:
        return self.input_shape if layer < 0 else self.layers[layer].shape

    @property
    def previous(self) -> Shape:
        return self.shape(self.index - 1)

    def source(self, section: Section, key: str, value: int) -> int:
        """Absolute index of the earlier layer that `key=value` names (negative = relative)."""
        layer = self.index + value if value < 0 else value
        if not 0 <= layer < self.index:
            raise section.error(f"{key}: {value} names layer {layer}, not one of 0..{self.index - 1}", key)
        if self.types[layer] in HEAD_TYPES:
            raise section.error(f"{key}: {value} names layer {layer}, a [{self.types[layer]}] head", key)
        return layer


def input_shape(net: Section) -> Shape:
    """(channels, height, width) of the network input, from [net]."""
    return _positive(net, "channels", 3), _positive(net, "height"), _positive(net, "width")


def build_layers(sections: list[Section]) -> list[BuiltLayer]:
    """Build every layer section (sections[1:]; sections[0] is [net])."""
    if not sections or sections[0].type != "net":
        where = sections[0].where() if sections else "<cfg>"
        raise CfgError(f"{where}: a cfg must start with a [net] section")
    ctx = _Context(0, input_shape(sections[0]), [], [s.type for s in sections[1:]])
    for ctx.index, section in enumerate(sections[1:]):
        builder = _BUILDERS.get(section.type)
        if builder is None:
            raise section.error(f"unknown layer type (supported: {', '.join(_BUILDERS)})")
        _check_supported(section)
        ctx.layers.append(builder(section, ctx))
    if not any(layer.head for layer in ctx.layers):
        raise CfgError(f"{sections[0].source}: no [yolo] or [region] layer: not a detector")
    return ctx.layers


def _check_supported(section: Section) -> None:
    for key, off in _UNSUPPORTED.get(section.type, {}).items():
        if key not in section.options:
            continue
        value = section.get_float(key) if isinstance(off, float) else section.get_str(key)
        if off is None or value != off:
            raise section.error(f"option {key}={section.options[key]} is not supported", key)


def _positive(section: Section, key: str, default: object = None) -> int:
    value = section.get_int(key) if default is None else section.get_int(key, default)
    if value <= 0:
        raise section.error(f"option {key}={value} must be positive", key)
    return value


def _activation(section: Section, default: str) -> nn.Module:
    name = section.get_str("activation", default)
    if name not in ACTIVATION_NAMES:
        raise section.error(f"unknown activation={name} (supported: {', '.join(ACTIVATION_NAMES)})", "activation")
    return make_activation(name)


def _previous(ctx: _Context) -> tuple[int, ...]:
    return (ctx.index - 1,)


def _convolutional(section: Section, ctx: _Context) -> BuiltLayer:
    filters = _positive(section, "filters", 1)
    size = _positive(section, "size", 1)
    stride = _positive(section, "stride", 1)
    groups = _positive(section, "groups", 1)
    padding = size // 2 if section.get_int("pad", 0) else section.get_int("padding", 0)
    batch_normalize = section.get_int("batch_normalize", 0) != 0
    act = _activation(section, "logistic")  # Darknet's default for convolutions
    channels, height, width = ctx.previous
    if channels % groups or filters % groups:
        raise section.error(f"groups={groups} must divide the {channels} input channels and filters={filters}")
    out_h, out_w = ((n + 2 * padding - size) // stride + 1 for n in (height, width))
    if min(out_h, out_w) <= 0:
        raise section.error(f"size={size} does not fit the {height}x{width} input with padding {padding}")
    conv = nn.Conv2d(channels, filters, size, stride, padding, groups=groups, bias=not batch_normalize)
    bn = nn.BatchNorm2d(filters, eps=BN_EPS, momentum=BN_MOMENTUM) if batch_normalize else None
    return BuiltLayer(ConvBlock(conv, bn, act), (filters, out_h, out_w), _previous(ctx))


def _maxpool(section: Section, ctx: _Context) -> BuiltLayer:
    stride = _positive(section, "stride", 1)
    size = _positive(section, "size", stride)
    padding = section.get_int("padding", size - 1)
    if not 0 <= padding < size:
        raise section.error(f"padding={padding} must be in 0..{size - 1}", "padding")
    channels, height, width = ctx.previous
    out_h, out_w = ((n + padding - size) // stride + 1 for n in (height, width))
    if min(out_h, out_w) <= 0:
        raise section.error(f"size={size} does not fit the {height}x{width} input")
    return BuiltLayer(MaxPool(size, stride, padding), (channels, out_h, out_w), _previous(ctx))


def _route(section: Section, ctx: _Context) -> BuiltLayer:
    sources = tuple(ctx.source(section, "layers", value) for value in section.get_ints("layers"))
    if not sources:
        raise section.error("layers= names no layer", "layers")
    groups = _positive(section, "groups", 1)
    group_id = section.get_int("group_id", 0)
    if not 0 <= group_id < groups:
        raise section.error(f"group_id={group_id} must be in 0..{groups - 1}", "group_id")
    shapes = [ctx.shape(i) for i in sources]
    if len({shape[1:] for shape in shapes}) != 1 or any(shape[0] % groups for shape in shapes):
        raise section.error(
            f"layers {list(sources)} have shapes (C,H,W) {shapes}: they need the same H,W and channels "
            f"divisible by groups={groups}"
        )
    channels = sum(shape[0] // groups for shape in shapes)
    return BuiltLayer(Route(groups, group_id), (channels, *shapes[0][1:]), sources)


def _shortcut(section: Section, ctx: _Context) -> BuiltLayer:
    values = section.get_ints("from")
    if len(values) != 1:
        raise section.error(f"from= must name one layer, got {values}", "from")
    other = ctx.source(section, "from", values[0])
    if ctx.shape(other) != ctx.previous:
        raise section.error(
            f"adds layer {other} of shape (C,H,W) {ctx.shape(other)} to the previous layer's {ctx.previous}"
        )
    return BuiltLayer(Shortcut(_activation(section, "linear")), ctx.previous, (ctx.index - 1, other))


def _upsample(section: Section, ctx: _Context) -> BuiltLayer:
    stride = _positive(section, "stride", 2)
    channels, height, width = ctx.previous
    return BuiltLayer(Upsample(stride), (channels, height * stride, width * stride), _previous(ctx))


def _dropout(section: Section, ctx: _Context) -> BuiltLayer:
    probability = section.get_float("probability", 0.5)
    if not 0.0 <= probability < 1.0:
        raise section.error(f"probability={probability} must be in [0, 1)", "probability")
    return BuiltLayer(nn.Dropout(probability), ctx.previous, _previous(ctx))


def _reorg(section: Section, ctx: _Context) -> BuiltLayer:
    stride = _positive(section, "stride", 1)
    channels, height, width = ctx.previous
    if height % stride or width % stride or channels % (stride * stride):
        raise section.error(f"stride={stride} must divide H,W ({height},{width}) and its square C ({channels})")
    shape = (channels * stride * stride, height // stride, width // stride)
    return BuiltLayer(Reorg(stride), shape, _previous(ctx))


def _anchor_pairs(section: Section, num: int) -> list[tuple[float, float]]:
    values = section.get_floats("anchors")
    if len(values) != 2 * num:
        raise section.error(f"anchors= holds {len(values)} numbers, num={num} needs {2 * num}", "anchors")
    return list(zip(values[0::2], values[1::2], strict=True))


def _head(section: Section, ctx: _Context, anchors: list[tuple[float, float]], classes: int,
          scale_x_y: float) -> BuiltLayer:
    """A pass-through layer that records the head; checks the previous layer's filters fit it."""
    channels, height, width = ctx.previous
    needed = len(anchors) * (5 + classes)
    if channels != needed:
        raise section.error(
            f"the layer before has {channels} filters; {len(anchors)} anchors x (5 + {classes} classes) "
            f"need {needed}"
        )
    stride = round(ctx.input_shape[1] / height)
    head = Head(section.type, ctx.index, tuple(anchors), classes, scale_x_y, stride, (height, width))
    return BuiltLayer(nn.Identity(), ctx.previous, _previous(ctx), head)


def _yolo(section: Section, ctx: _Context) -> BuiltLayer:
    classes = _positive(section, "classes", 20)
    num = _positive(section, "num", 1)
    pairs = _anchor_pairs(section, num)
    mask = section.get_ints("mask", list(range(num)))
    if not mask or not all(0 <= m < num for m in mask):
        raise section.error(f"mask={mask} must pick anchors among 0..{num - 1}", "mask")
    return _head(section, ctx, [pairs[m] for m in mask], classes, section.get_float("scale_x_y", 1.0))


def _region(section: Section, ctx: _Context) -> BuiltLayer:
    classes = _positive(section, "classes", 20)
    num = _positive(section, "num", 1)
    if section.get_int("coords", 4) != 4:
        raise section.error("only coords=4 is supported", "coords")
    if section.get_int("softmax", 0) != 1:
        raise section.error("only softmax=1 is supported", "softmax")
    # region anchors are in grid cells: convert them to input pixels like yolo anchors
    _, height, width = ctx.previous
    cell_h, cell_w = ctx.input_shape[1] / height, ctx.input_shape[2] / width
    anchors = [(w * cell_w, h * cell_h) for w, h in _anchor_pairs(section, num)]
    return _head(section, ctx, anchors, classes, 1.0)


_BUILDERS: dict[str, Callable[[Section, _Context], BuiltLayer]] = {
    "convolutional": _convolutional,
    "maxpool": _maxpool,
    "route": _route,
    "shortcut": _shortcut,
    "upsample": _upsample,
    "dropout": _dropout,
    "reorg": _reorg,
    "yolo": _yolo,
    "region": _region,
}
