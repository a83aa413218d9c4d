"""Darknet .weights files: a header, then float32 blobs for each [convolutional] in cfg order.

Per conv: with batch norm, biases, scales, rolling means, rolling variances, weights; without,
biases and weights. The file holds no shapes, so the cfg is the only check: a size mismatch is
reported with the layer and both float counts before the model is touched, and a file read and
written back is byte-identical (the header is returned by load_weights and taken by save_weights).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from yolo_compress.models.atomic import atomic_path
from yolo_compress.models.darknet import Darknet
from yolo_compress.models.layers import ConvBlock

FLOAT32 = np.dtype("<f4")
_VERSION = np.dtype("<i4")


class WeightsError(ValueError):
    """A .weights file that does not fit the cfg it is loaded into."""


@dataclass(frozen=True)
class WeightsHeader:
    """major, minor, revision, then `seen` (images trained on): int64 from format 0.2 on, else int32."""

    major: int = 0
    minor: int = 2
    revision: int = 5
    seen: int = 0

    @property
    def seen_dtype(self) -> np.dtype:
        wide = self.major * 10 + self.minor >= 2 and self.major < 1000 and self.minor < 1000
        return np.dtype("<i8" if wide else "<i4")

    @property
    def size(self) -> int:
        """Bytes the header takes in the file."""
        return 3 * _VERSION.itemsize + self.seen_dtype.itemsize

    def to_bytes(self) -> bytes:
        version = np.array([self.major, self.minor, self.revision], dtype=_VERSION)
        return version.tobytes() + np.array([self.seen], dtype=self.seen_dtype).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, path: Path) -> WeightsHeader:
        if len(data) < 3 * _VERSION.itemsize:
            raise WeightsError(f"{path}: {len(data)} bytes is too short for a Darknet weights header")
        header = cls(*(int(v) for v in np.frombuffer(data, dtype=_VERSION, count=3)))
        if len(data) < header.size:
            version = f"{header.major}.{header.minor}"
            raise WeightsError(f"{path}: {len(data)} bytes is too short for a format {version} header")
        seen = int(np.frombuffer(data, dtype=header.seen_dtype, count=1, offset=3 * _VERSION.itemsize)[0])
        return cls(header.major, header.minor, header.revision, seen)


def conv_tensors(block: ConvBlock) -> list[torch.Tensor]:
    """The tensors of one conv layer in the file's order."""
    if block.bn is None:
        return [block.conv.bias, block.conv.weight]
    bn = block.bn
    return [bn.bias, bn.weight, bn.running_mean, bn.running_var, block.conv.weight]


def _conv_layers(model: Darknet) -> list[tuple[int, list[torch.Tensor]]]:
    return [(i, conv_tensors(layer)) for i, layer in enumerate(model.layers) if isinstance(layer, ConvBlock)]


def load_weights(model: Darknet, path: str | os.PathLike) -> WeightsHeader:
    """Copy a .weights file into `model` in place and return its header; the model is left as it was on error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    data = path.read_bytes()
    header = WeightsHeader.from_bytes(data, path)
    body = len(data) - header.size
    if body % FLOAT32.itemsize:
        raise WeightsError(f"{path}: {body} bytes after the header are not a whole number of float32 values")
    floats = np.frombuffer(data, dtype=FLOAT32, offset=header.size)
    layers = _conv_layers(model)
    _check_sizes(model, layers, floats.size, path)
    offset = 0
    with torch.no_grad():
        for _, tensors in layers:
            for tensor in tensors:
                chunk = floats[offset : offset + tensor.numel()].reshape(tensor.shape)
                tensor.copy_(torch.from_numpy(chunk.copy()))
                offset += tensor.numel()
    return header


def _check_sizes(model: Darknet, layers: list[tuple[int, list[torch.Tensor]]], found: int, path: Path) -> None:
    """Name the first conv layer the file runs short in, or the surplus after the last one."""
    expected_total = sum(t.numel() for _, tensors in layers for t in tensors)
    offset = 0
    for index, tensors in layers:
        needed = sum(t.numel() for t in tensors)
        if offset + needed > found:
            raise WeightsError(
                f"{path}: too few floats for {model.describe(index)}: expected {needed}, found {found - offset} "
                f"(the cfg needs {expected_total} floats in all, the file has {found}: truncated, or another cfg?)"
            )
        offset += needed
    if found != expected_total:
        last = model.describe(layers[-1][0]) if layers else "the header"
        raise WeightsError(
            f"{path}: {found - expected_total} floats too many after {last}: expected {expected_total} floats "
            f"in all, found {found} (weights of another cfg?)"
        )


def save_weights(model: Darknet, path: str | os.PathLike, header: WeightsHeader | None = None) -> None:
    """Write `model` as a .weights file, atomically; `header` defaults to format 0.2.5 with seen=0."""
    header = header or WeightsHeader()
    blobs = [t.detach().cpu().numpy().astype(FLOAT32).ravel() for _, tensors in _conv_layers(model) for t in tensors]
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(header.to_bytes())
        for blob in blobs:
            f.write(blob.tobytes())
