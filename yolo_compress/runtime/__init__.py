"""Torch-free runtime: ONNX Runtime session, pre/post-processing, NMS, stage timing."""
