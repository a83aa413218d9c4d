"""Build a criterion for the model as it is now; the Taylor one from real batches of the training set.

The Taylor criterion needs the loss's gradient at every activation, so calibration runs the detection loss
forward and backward on `batches` batches of the training set, without augmentation and in a fixed order
(a resumed run recomputes exactly the same scores), in eval mode: batch-norm statistics and dropout stay
as they are, since the calibration must measure the model, not change it.
"""

from __future__ import annotations

from torch.utils.data import DataLoader
from tqdm import tqdm

from yolo_compress.data.dataset import DetectionDataset
from yolo_compress.data.torch_dataset import TorchDetectionDataset, collate
from yolo_compress.models.darknet import Darknet
from yolo_compress.prune.importance import CRITERIA, Importance, TaylorImportance
from yolo_compress.train.loss import DetectionLoss


def taylor_importance(model: Darknet, train: DetectionDataset, batches: int, batch_size: int, resize: str,
                      progress: bool = True) -> TaylorImportance:
    """Taylor statistics of `model` over the first `batches` batches of `train`."""
    taylor = TaylorImportance(model)
    loss_fn = DetectionLoss(model)
    dataset = TorchDetectionDataset(train, model.input_size, resize, augment=None)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    was_training = model.training
    model.eval()
    try:
        with taylor.recording():
            for i, (images, targets) in enumerate(tqdm(loader, total=min(batches, len(loader)), desc="taylor",
                                                       unit="batch", disable=not progress, leave=False)):
                if i == batches:
                    break
                model.zero_grad(set_to_none=True)
                loss, _ = loss_fn(model(images), targets)
                loss.backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    if taylor.batches == 0:
        raise ValueError("Taylor calibration saw no batch: the training set is empty")
    return taylor


def make_importance(name: str, model: Darknet, train: DetectionDataset, batches: int, batch_size: int,
                    resize: str, seed: int, progress: bool = True) -> Importance:
    """The criterion `name` (taylor, l1, bn, random) for `model` as it is now."""
    if name not in CRITERIA:
        raise ValueError(f"unknown criterion {name!r} (one of {', '.join(CRITERIA)})")
    if name == "taylor":
        return taylor_importance(model, train, batches, batch_size, resize, progress)
    if name == "random":
        return CRITERIA[name](model, seed=seed)
    return CRITERIA[name](model)
