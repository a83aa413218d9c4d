"""A torch Dataset over a DetectionDataset, and the collate that batches its targets for the losses.

Convention (what the training code reads):

- image: float32 tensor [3, H, W], RGB, 0..1 — the ONNX contract's input, H, W = the network input;
- targets of one image: float32 [K, 5] = (class, cx, cy, w, h), box centre and size normalized to the
  network input (after letterbox/stretch and augmentation): cx * W, w * W are input pixels, so they
  compare directly with a head's anchors (input pixels);
- `collate` -> (images [B, 3, H, W], targets [M, 6] = (batch_index, class, cx, cy, w, h)), M = all boxes
  of the batch, batch_index = the image's position in the batch.

Augmentation is reproducible and independent of the number of workers: item i of epoch e always draws
from numpy Generator(seed, e, i). Call `set_epoch(e)` before each epoch (as with DistributedSampler),
and do not use persistent DataLoader workers, which would keep the old epoch. Nothing opens a file or
a cv2 handle before __getitem__, so the object pickles into workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from yolo_compress.data.augment import AugmentConfig, mosaic, prepare
from yolo_compress.data.dataset import DetectionDataset


class TorchDetectionDataset(Dataset):
    """Samples of `dataset` fitted to `input_size` (H, W) as `resize` ('stretch' or 'letterbox') says."""

    def __init__(
        self,
        dataset: DetectionDataset,
        input_size: tuple[int, int],
        resize: str = "stretch",
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.dataset = dataset
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.resize = resize
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of `epoch` (no effect without augmentation)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.augment else None
        if self.augment and self.augment.mosaic and rng.random() < self.augment.mosaic:
            image, boxes, classes = self._mosaic(index, rng)
        else:
            sample = self.dataset[index]
            image, boxes, keep = prepare(sample.load_image(), sample.boxes, self.input_size, self.resize,
                                         self.augment, rng)
            classes = sample.classes[keep]
        targets = normalized_targets(boxes, classes, self.input_size)
        return torch.from_numpy(image), torch.from_numpy(targets)

    def _mosaic(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample `index` and three drawn at random, one per quadrant: (input, boxes, classes)."""
        samples = [self.dataset[int(i)] for i in (index, *rng.integers(0, len(self), 3))]
        tiles = [(sample.load_image(), sample.boxes) for sample in samples]
        image, boxes, keeps = mosaic(tiles, self.input_size, self.resize, self.augment, rng)
        classes = np.concatenate([s.classes[keep] for s, keep in zip(samples, keeps, strict=True)])
        return image, boxes, classes


def normalized_targets(boxes: np.ndarray, classes: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """x1, y1, x2, y2 input pixels + class ids -> float32 [K, 5] (class, cx, cy, w, h) normalized."""
    height, width = input_size
    scale = np.array([width, height], np.float64)
    xyxy = boxes.astype(np.float64).reshape(-1, 4)
    centre, size = (xyxy[:, :2] + xyxy[:, 2:]) / 2 / scale, (xyxy[:, 2:] - xyxy[:, :2]) / scale
    return np.concatenate([classes.reshape(-1, 1), centre, size], axis=1).astype(np.float32)


def collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [B,3,H,W], targets [M,6] = (batch_index, class, cx, cy, w, h)); see the module doc."""
    images = torch.stack([image for image, _ in batch])
    targets = [
        torch.cat([torch.full((len(t), 1), float(i)), t], dim=1) for i, (_, t) in enumerate(batch)
    ]
    return images, torch.cat(targets) if targets else torch.zeros((0, 6))
