"""What a detection head ([yolo] or [region]) needs to turn its raw tensor into boxes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Head:
    """One head, decoded from its input tensor [B, A*(5+C), h, w] (the output of layer `index` - 1).

    `anchors` are (w, h) in input pixels for both kinds: a region head's grid-unit anchors are
    converted at build time. `grid` is (h, w) and `stride` the input pixels per cell at the cfg's
    input size.
    """

    kind: str  # "yolo" | "region"
    index: int
    anchors: tuple[tuple[float, float], ...]
    num_classes: int
    scale_x_y: float
    stride: int
    grid: tuple[int, int]

    @property
    def num_anchors(self) -> int:
        return len(self.anchors)
