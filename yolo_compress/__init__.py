"""yolo_compress: compressed YOLO detectors for a robot camera (runtime + offline tools)."""
