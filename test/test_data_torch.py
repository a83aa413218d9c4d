"""The torch Dataset and collate: the documented (batch_index, class, cx, cy, w, h) convention, augmentation
reproducible per (seed, epoch, index) and identical with or without DataLoader workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from yolo_compress.data import synthetic_dataset
from yolo_compress.data.augment import AugmentConfig, prepare
from yolo_compress.data.torch_dataset import TorchDetectionDataset, collate, normalized_targets


def test_item_is_the_contract_input_and_normalized_targets():
    dataset = synthetic_dataset(4, seed=1)
    torch_set = TorchDetectionDataset(dataset, (192, 192))
    image, targets = torch_set[2]
    assert image.shape == (3, 192, 192) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    sample = dataset[2]
    rgb = sample.load_image()[:, :, ::-1].transpose(2, 0, 1) / 255  # same size: stretch is the identity
    np.testing.assert_allclose(image.numpy(), rgb, atol=1e-6)
    b = sample.boxes
    expected = np.c_[sample.classes, (b[:, :2] + b[:, 2:]) / 2 / 192, (b[:, 2:] - b[:, :2]) / 192]
    np.testing.assert_allclose(targets.numpy(), expected, atol=1e-6)


def test_targets_follow_letterbox_into_input_pixels():
    dataset = synthetic_dataset(3, seed=2)
    sample = dataset[0]
    image, targets = TorchDetectionDataset(dataset, (96, 160), "letterbox")[0]
    _, boxes, keep = prepare(sample.load_image(), sample.boxes, (96, 160), "letterbox")
    cxcy = targets[:, 1:3].numpy() * [160, 96]
    np.testing.assert_allclose(cxcy, (boxes[:, :2] + boxes[:, 2:]) / 2, atol=1e-4)
    assert image.shape == (3, 96, 160) and targets[:, 0].tolist() == sample.classes[keep].tolist()


def test_collate_stacks_images_and_prefixes_batch_index():
    items = [
        (torch.zeros(3, 8, 8), torch.tensor([[1, 0.5, 0.5, 0.2, 0.2]])),
        (torch.ones(3, 8, 8), torch.zeros(0, 5)),
        (torch.full((3, 8, 8), 0.5), torch.tensor([[0, 0.1, 0.2, 0.3, 0.4], [2, 0.5, 0.6, 0.1, 0.1]])),
    ]
    images, targets = collate(items)
    assert images.shape == (3, 3, 8, 8) and images[1].min() == 1
    assert targets.shape == (3, 6) and targets[:, 0].tolist() == [0, 2, 2]
    assert targets[1:, 1].tolist() == [0, 2] and targets[0, 2:].tolist() == pytest.approx([0.5, 0.5, 0.2, 0.2])
    assert collate([(torch.zeros(3, 8, 8), torch.zeros(0, 5))])[1].shape == (0, 6)
    assert normalized_targets(np.zeros((0, 4)), np.zeros(0, np.int64), (8, 8)).shape == (0, 5)


def _epoch(torch_set: TorchDetectionDataset, workers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader = DataLoader(torch_set, batch_size=3, shuffle=False, num_workers=workers, collate_fn=collate)
    return list(loader)


def test_augmentation_is_reproducible_and_worker_independent():
    torch_set = TorchDetectionDataset(synthetic_dataset(9, seed=3), (192, 192), "letterbox", AugmentConfig(), seed=5)
    torch_set.set_epoch(1)
    serial, parallel = _epoch(torch_set, 0), _epoch(torch_set, 2)
    for (a_img, a_t), (b_img, b_t) in zip(serial, parallel, strict=True):
        assert torch.equal(a_img, b_img) and torch.equal(a_t, b_t)
    torch_set.set_epoch(2)
    other = _epoch(torch_set, 0)
    assert not torch.equal(serial[0][0], other[0][0])
    plain = TorchDetectionDataset(torch_set.dataset, (192, 192), "letterbox")
    plain.set_epoch(7)
    assert torch.equal(plain[0][0], TorchDetectionDataset(torch_set.dataset, (192, 192), "letterbox")[0][0])


def test_mosaic_off_keeps_the_draws_of_runs_made_before_mosaics():
    dataset = synthetic_dataset(5, seed=4)
    torch_set = TorchDetectionDataset(dataset, (128, 160), "letterbox", AugmentConfig(mosaic=0.0), seed=2)
    torch_set.set_epoch(3)
    image, targets = torch_set[1]
    sample = dataset[1]
    expected, boxes, keep = prepare(sample.load_image(), sample.boxes, (128, 160), "letterbox", AugmentConfig(),
                                    np.random.default_rng([2, 3, 1]))
    assert np.array_equal(image.numpy(), expected)
    np.testing.assert_allclose(targets.numpy(), normalized_targets(boxes, sample.classes[keep], (128, 160)))


def test_mosaic_items_hold_the_boxes_of_four_images_in_quadrants():
    dataset = synthetic_dataset(6, seed=5)
    torch_set = TorchDetectionDataset(dataset, (128, 160), "stretch", AugmentConfig(mosaic=1.0), seed=1)
    single = TorchDetectionDataset(dataset, (128, 160), "stretch", AugmentConfig(), seed=1)
    counts = []
    for index in range(len(dataset)):
        image, targets = torch_set[index]
        assert torch.equal(image, torch_set[index][0])  # reproducible per (seed, epoch, index)
        assert image.shape == (3, 128, 160) and not torch.equal(image, single[index][0])
        low, high = targets[:, 1:3] - targets[:, 3:5] / 2, targets[:, 1:3] + targets[:, 3:5] / 2
        assert ((high <= 0.5 + 1e-6) | (low >= 0.5 - 1e-6)).all()  # every box inside one quadrant
        counts.append(len(targets))
    assert sum(counts) > sum(len(single[i][1]) for i in range(len(dataset)))  # four images' people per item
