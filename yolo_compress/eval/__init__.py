"""Detection metrics (numpy only): COCO AP, VOC AP, precision/recall/F1, IoU."""
