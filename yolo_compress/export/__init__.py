"""ONNX export of fused Darknet models (offline, torch)."""
