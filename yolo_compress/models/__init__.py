"""Darknet models: cfg parsing, the torch builder, .weights I/O, checkpoints, fusion, complexity (offline, torch)."""
