"""Exported files read back: the contract they embed, and a runner per format (ONNX Runtime for
.onnx, torch.export for .pt2) that the export's parity check runs them with."""
from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from translate.errors import ExportError

METADATA_KEY = "translate.json"  # where an export holds its contract (JSON)


def read_contract(exported: str | os.PathLike | bytes) -> dict[str, Any]:
    """The contract embedded in an exported .onnx or .pt2 file (or its bytes)."""
    data = read_bytes(exported)
    name = exported if not isinstance(exported, bytes) else "export"
    if is_pt2(data):
        files = {METADATA_KEY: ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.export.load(io.BytesIO(data), extra_files=files)
        text = files[METADATA_KEY]
        text = text.decode() if isinstance(text, bytes) else text
    else:
        import onnx

        model = onnx.load_from_string(data)
        text = next((p.value for p in model.metadata_props if p.key == METADATA_KEY), "")
    if not text:
        raise ExportError(f"{name}: no '{METADATA_KEY}' contract; not exported by translate")
    return json.loads(text)


def read_bytes(exported: str | os.PathLike | bytes) -> bytes:
    if isinstance(exported, bytes):
        return exported
    path = Path(exported)
    if not path.is_file():
        raise ExportError(f"{path}: no such exported model file")
    return path.read_bytes()


def is_pt2(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"  # .pt2 archives are zip files; ONNX is a protobuf


class _OnnxRunner:
    """Run an ONNX export with ONNX Runtime on the CPU; `keep_all` forces dropout units kept."""

    def __init__(self, data: bytes, *, keep_all: bool) -> None:
        import onnx
        import onnxruntime as ort

        if keep_all:  # PaperDropout exports as RandomUniformLike >= p: make the noise all ones
            model = onnx.load_from_string(data)
            for node in model.graph.node:
                if node.op_type in ("RandomUniformLike", "RandomUniform"):
                    for attribute in node.attribute:
                        if attribute.name in ("low", "high"):
                            attribute.f = 1.0
            data = model.SerializeToString()
        self.session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"input": x.numpy()})[0])


class _Pt2Runner:
    """Run a .pt2 export with PyTorch on the CPU; `keep_all` forces dropout units kept."""

    def __init__(self, data: bytes, *, keep_all: bool) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.module = torch.export.load(io.BytesIO(data)).module()
        if keep_all:  # PaperDropout traced to rand_like >= p: make the noise all ones
            for node in self.module.graph.nodes:
                if node.target is torch.ops.aten.rand_like.default:
                    node.target = torch.ops.aten.ones_like.default
            self.module.recompile()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(x)


def runner(data: bytes, *, keep_all: bool) -> _OnnxRunner | _Pt2Runner:
    """A CPU callable (N, C, H, W) float32 -> output for the exported `data`, either format."""
    return (_Pt2Runner if is_pt2(data) else _OnnxRunner)(data, keep_all=keep_all)

