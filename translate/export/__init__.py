"""Exported models: writing ONNX / .pt2 files with their contract (`write`) and reading them back (`read`)."""
