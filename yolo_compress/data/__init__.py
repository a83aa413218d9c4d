"""Detection datasets (numpy/cv2 only): YOLO-txt, Pascal VOC and COCO loaders, synthetic scenes, augmentation.

`load_dataset("yolo:DIR", classes=["person"])` is the one entry point (spec grammar in specs.py). The torch
Dataset for training lives in `yolo_compress.data.torch_dataset`, which is the only module here that imports torch.
"""

from yolo_compress.data.dataset import DatasetError, DetectionDataset, Sample, join, to_image_gt
from yolo_compress.data.specs import load_dataset, split_specs
from yolo_compress.data.synthetic import SyntheticConfig, synthetic_dataset, write_synthetic
from yolo_compress.data.yolo_txt import write_yolo

__all__ = [
    "DatasetError",
    "DetectionDataset",
    "Sample",
    "SyntheticConfig",
    "join",
    "load_dataset",
    "split_specs",
    "synthetic_dataset",
    "to_image_gt",
    "write_synthetic",
    "write_yolo",
]
