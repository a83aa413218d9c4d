"""Frames (BGR uint8, as OpenCV and cv_bridge give them) to the contract input, and the way back for boxes.

Stretch resizes like `cv2.dnn.blobFromImage` (INTER_LINEAR, no crop), so a stretch model sees exactly what
OpenCV DNN would feed the original Darknet network. The batch is written into one buffer reused across
calls: on a 2-core robot CPU the allocation alone would cost a tenth of the budget. For a `frames` model
(uint8 BGR pixels in, the rest in the graph) this is one cv2.resize into that buffer; for an `images` model
it is the resize, a channel-reversing planar copy to float and the 1/255 (about twice the time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from yolo_compress.runtime.contract import FRAMES_INPUT, IMAGES_INPUT, RESIZE_MODES

PAD_PIXEL = 114  # the gray Darknet/YOLOv5 letterboxes pad with


@dataclass(frozen=True)
class Transform:
    """How one image was fitted into the network input: x_net = x_orig * scale_x + pad_x (same for y)."""

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    width: int  # original image size
    height: int

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """[K,4] x1,y1,x2,y2 network-input pixels -> original-image pixels, clipped to the image."""
        out = np.empty_like(boxes, dtype=np.float32)
        out[:, 0::2] = ((boxes[:, 0::2] - self.pad_x) / self.scale_x).clip(0, self.width)
        out[:, 1::2] = ((boxes[:, 1::2] - self.pad_y) / self.scale_y).clip(0, self.height)
        return out


def fit_transform(height: int, width: int, input_size: tuple[int, int], resize: str) -> Transform:
    """The transform `resize` applies to a height x width image; letterbox keeps aspect and centers it."""
    net_h, net_w = input_size
    if resize == "stretch":
        return Transform(net_w / width, net_h / height, 0, 0, width, height)
    scale = min(net_h / height, net_w / width)
    new_w, new_h = min(net_w, round(width * scale)), min(net_h, round(height * scale))
    return Transform(new_w / width, new_h / height, (net_w - new_w) // 2, (net_h - new_h) // 2, width, height)


class Preprocessor:
    """Callable: list of frames -> (contract batch, one Transform per frame).

    `input_name` picks the contract's input form: `images`, float32 [B,3,H,W] RGB 0..1, or `frames`, uint8
    [B,H,W,3] BGR. The returned batch is a view of an internal buffer that the next call overwrites: run
    the model on it (or copy it) before preprocessing again.
    """

    def __init__(self, input_size: tuple[int, int], resize: str = "stretch", input_name: str = IMAGES_INPUT) -> None:
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        if input_name not in (IMAGES_INPUT, FRAMES_INPUT):
            raise ValueError(f"input_name must be {IMAGES_INPUT!r} or {FRAMES_INPUT!r}, got {input_name!r}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.resize = resize
        self.input_name = input_name
        self._buffer = self._allocate(0)

    def __call__(self, frames: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Transform]]:
        batch = self._batch_buffer(len(frames))
        transforms = [self._fill(batch[i], frame, i) for i, frame in enumerate(frames)]
        return batch, transforms

    def _allocate(self, size: int) -> np.ndarray:
        if self.input_name == FRAMES_INPUT:
            return np.empty((size, *self.input_size, 3), dtype=np.uint8)
        return np.empty((size, 3, *self.input_size), dtype=np.float32)

    def _batch_buffer(self, size: int) -> np.ndarray:
        if size == 0:
            raise ValueError("no frames to preprocess")
        if len(self._buffer) < size:
            self._buffer = self._allocate(size)
        return self._buffer[:size]

    def _fill(self, out: np.ndarray, frame: np.ndarray, index: int) -> Transform:
        """Resize `frame` into its place in `out` (the image region, pad strips around it for letterbox)."""
        frame = _as_bgr_or_gray(frame, index)
        transform = fit_transform(frame.shape[0], frame.shape[1], self.input_size, self.resize)
        size = round(frame.shape[1] * transform.scale_x), round(frame.shape[0] * transform.scale_y)  # (W, H)
        top, left = transform.pad_y, transform.pad_x
        if self.input_name == FRAMES_INPUT:
            _write_pixels(out[top : top + size[1], left : left + size[0]], frame, size)
            planes, pad = out.transpose(2, 0, 1), PAD_PIXEL  # a channel-first view of the same memory
        else:
            _write_planes(out[:, top : top + size[1], left : left + size[0]], frame, size)
            planes, pad = out, PAD_PIXEL / 255
        if self.resize == "letterbox":
            _pad_around(planes, top, left, size[1], size[0], pad)
        return transform


def _write_pixels(region: np.ndarray, frame: np.ndarray, size: tuple[int, int]) -> None:
    """BGR uint8 as it is: straight into the buffer when the region is all of it (stretch)."""
    if frame.ndim == 3 and region.flags.c_contiguous:
        cv2.resize(frame, size, dst=region, interpolation=cv2.INTER_LINEAR)
        return
    resized = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
    np.copyto(region, resized[:, :, None] if resized.ndim == 2 else resized)


def _write_planes(region: np.ndarray, frame: np.ndarray, size: tuple[int, int]) -> None:
    """BGR->RGB by reversed channel order into float planes, then scaled to 0..1 in place."""
    resized = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
    np.copyto(region, resized[None] if resized.ndim == 2 else resized.transpose(2, 0, 1)[::-1])
    region *= np.float32(1 / 255)


def _pad_around(planes: np.ndarray, top: int, left: int, height: int, width: int, value: float) -> None:
    """Fill only the border strips around the image region of [C,H,W] `planes`, not the whole plane."""
    planes[:, :top] = value
    planes[:, top + height :] = value
    planes[:, top : top + height, :left] = value
    planes[:, top : top + height, left + width :] = value


def _as_bgr_or_gray(frame: np.ndarray, index: int) -> np.ndarray:
    """Accept HxWx3 BGR, HxW or HxWx1 gray uint8; anything else is a caller bug worth a clear message."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame {index}: expected a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame {index}: expected uint8 pixels, got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)) or 0 in frame.shape:
        raise ValueError(f"frame {index}: expected an HxWx3 BGR or HxW gray image, got shape {frame.shape}")
    return frame
