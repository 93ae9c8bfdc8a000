"""Export a Translator's generator to ONNX or torch.export (.pt2) with its inference contract
embedded, and check the export against eager PyTorch.

The artefact holds the net only: (N, C_in, H, W) float32 in [-1, 1] -> (N, C_out, s*H, s*W)
float32 in [-1, 1], with dynamic N, H and W. H and W must be multiples of `size_multiple` (and at
least `min_side`); the caller reflect-pads, tiles and crops (see examples/README.md). The contract
(`model_contract`) travels inside the file as JSON: ONNX `metadata_props["translate.json"]`,
.pt2 `extra_files["translate.json"]`.

Both formats come from torch.export's tracing (the ONNX exporter runs on it), so Python control
flow on spec fields in a net's forward is fine and no shape is baked in. TorchScript is not
offered: torch.jit is deprecated, and scripting fails on forwards that read the spec dataclass.
Reading an export back (its contract, a runner per format) is `translate/export/read.py`.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from translate.errors import ExportError, first_line
from translate.export.scrub import scrub_onnx, scrub_program
from translate.export.read import METADATA_KEY, read_bytes, read_contract, runner  # noqa: F401 - read_contract: API
from translate.inference import normstats, tiling
from translate.inference.runner import reflect_pad
from translate.inference.translator import Translator

if TYPE_CHECKING:
    from translate.tasks import Task

log = logging.getLogger(__name__)

EXPORT_FORMAT = "translate-export"
EXPORT_FORMAT_VERSION = 1
FORMATS: dict[str, str] = {".onnx": "onnx", ".pt2": "pt2"}  # output suffix -> format
# Opset 18 is what torch's (dynamo-based) ONNX exporter targets natively; ONNX Runtime >= 1.14 runs it.
DEFAULT_OPSET = 18
MIN_OPSET = 17
# fp32 export vs eager fp32: measured max abs diffs are 1e-7 to 2e-6 (reordered convolution sums);
# 1e-4 is far above rounding noise and far below a broken layer.
PARITY_TOLERANCE = 1e-4
# Real photos (bundled with scikit-image) at odd sizes, unlike the export's example input, so the
# check also proves the dynamic height/width axes and the caller-side padding.
# Config entries that locate the trainer's files; left out of exported contracts.
_PRIVATE_KEYS = frozenset({"data.root"})
PARITY_PHOTOS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("astronaut", (83, 61)), ("coffee", (70, 101)), ("chelsea", (45, 77)),
)


@dataclass(frozen=True)
class ExportReport:
    """What `export_model` wrote; `max_abs_diff` is None when the parity check was skipped."""

    path: Path
    format: str  # "onnx" or "pt2"
    contract: dict[str, Any]
    max_abs_diff: float | None
    size_bytes: int
    seconds: float


# ---------------------------------------------------------------- the contract
def model_contract(translator: Translator, *, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The model's contract (`ModelContract.to_dict`) plus what a caller needs to run the bare net:
    tensor layout and range, padding rule, inference mode and the training config (JSON-ready)."""
    from translate import __version__

    contract = translator.contract
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "translate_version": __version__,
        **contract.to_dict(),  # value_range is the net's own; the graph maps [-1, 1] to it and back
        "mode": translator.mode,  # "eval" (deterministic) or "paper" (per-image batch norm + dropout)
        "stochastic": _has_live_dropout(translator),
        "input": {"name": "input", "layout": "NCHW", "dtype": "float32",
                  "channels": contract.in_channels, "range": [-1.0, 1.0]},
        "output": {"name": "output", "layout": "NCHW", "dtype": "float32",
                   "channels": contract.out_channels, "range": [-1.0, 1.0]},
        # H and W must be multiples of size_multiple and >= min_side; pad with reflection, split
        # evenly (the odd pixel after), then crop the output by the padding times `scale`.
        "padding": "reflect",
        "pixel_scale": {"uint8": 255, "uint16": 65535},  # x = pixel * 2 / max - 1
        "config": public_config(translator.model.config if config is None else config),
    }


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The training config without the trainer's file system: no `data.root`, and no value that
    is an absolute path. A contract says what a consumer needs, not where the data lived."""
    def clean(value: Any, prefix: str) -> Any:
        if isinstance(value, Mapping):
            dotted = {k: f"{prefix}{k}" for k in value}
            return {k: clean(v, dotted[k] + ".") for k, v in value.items()
                    if dotted[k] not in _PRIVATE_KEYS and not _is_path(v)}
        if isinstance(value, (list, tuple)):
            return [clean(v, prefix) for v in value if not _is_path(v)]
        return value

    return clean(config, "")


def _is_path(value: Any) -> bool:
    """An absolute path on any system (the checkpoint may come from another one)."""
    return isinstance(value, str) and (value.startswith(("/", "~")) or PureWindowsPath(value).is_absolute())


def _has_live_dropout(translator: Translator) -> bool:
    return translator.mode == "paper" and any(
        isinstance(m, nn.Dropout) and m.p > 0 for m in translator.net.modules())


# ---------------------------------------------------------------- the exported net
class PaperDropout(nn.Module):
    """Dropout that stays on at test time (pix2pix paper, section 3.1).

    Written with `rand_like` because ONNX Runtime's default graph optimisation deletes ONNX
    Dropout nodes even in training mode. `keep_all` keeps every unit (output x / (1 - p)): the
    parity check's deterministic reference, matched in the exports by replacing their noise
    with ones in a copy held in memory.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        self.keep_all = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.ones_like(x) if self.keep_all else torch.rand_like(x)
        return x * (noise >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p))


def export_net(translator: Translator) -> nn.Module:
    """A CPU fp32 copy of the translator's generator as it runs in `translator.mode`, built only
    from exportable layers: eval mode as is; paper mode with per-image batch norm (the plain copy
    of the translator's own) and live dropout."""
    net = normstats.plain_copy(translator.net).to("cpu", torch.float32).to(memory_format=torch.contiguous_format)
    net.eval()
    if translator.mode == "paper":
        for parent in list(net.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Dropout) and child.p > 0:
                    setattr(parent, name, PaperDropout(child.p))
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _example_input(translator: Translator) -> torch.Tensor:
    # Batch 2 and sides of two size multiples or more, so no level of the net sees a size of 1
    # (which torch.export would otherwise specialise on).
    contract = translator.contract
    side = tiling.round_up(max(64, contract.min_side, 2 * contract.size_multiple), contract.size_multiple)
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, contract.in_channels, side, side, generator=generator) * 2 - 1


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Raise the named loggers to WARNING for a while: the ONNX exporter's passes log every step."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _onnx_bytes(net: nn.Module, example: torch.Tensor, contract: Mapping[str, Any], opset: int) -> bytes:
    # torch's dynamo-based exporter (the default since torch 2.9) handles the dynamic N/H/W axes of
    # both generators; the legacy TorchScript-based one is deprecated and slated for removal.
    import onnx

    with warnings.catch_warnings(), _quiet("onnx_ir", "onnxscript", "torch.onnx"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            net, (example,), dynamo=True, opset_version=opset, input_names=["input"],
            output_names=["output"], dynamic_shapes=({0: "batch", 2: "height", 3: "width"},),
            verbose=False,
        )
    model = scrub_onnx(program.model_proto)  # no stack traces: they hold this machine's paths
    model.producer_name = "translate"
    model.producer_version = str(contract["translate_version"])
    model.doc_string = _summary(contract)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(contract, default=str)
    written = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), None)
    if written != opset:  # torch's version conversion failed and it kept its own opset
        raise ExportError(f"opset: asked for {opset} but the exporter wrote {written}; use {DEFAULT_OPSET}")
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _pt2_bytes(net: nn.Module, example: torch.Tensor, contract: Mapping[str, Any]) -> bytes:
    from torch.fx.experimental import _config as fx_config

    dynamic = torch.export.Dim.DYNAMIC
    # backed_size_oblivious, as torch.onnx's exporter sets it: without it, the U-Net's innermost
    # 1x1 level (inputs of exactly size_multiple) gets guarded out or specialised.
    with warnings.catch_warnings(), fx_config.patch(backed_size_oblivious=True):
        warnings.simplefilter("ignore")
        program = torch.export.export(net, (example,), dynamic_shapes=({0: dynamic, 2: dynamic, 3: dynamic},))
        buffer = io.BytesIO()
        torch.export.save(scrub_program(program), buffer, extra_files={METADATA_KEY: json.dumps(contract, default=str)})
    return buffer.getvalue()


def export_bytes(translator: Translator, format: str, *, opset: int = DEFAULT_OPSET,
                 contract: Mapping[str, Any] | None = None) -> bytes:
    """The exported generator ("onnx" or "pt2") as file contents, contract embedded."""
    if format not in FORMATS.values():
        raise ExportError(f"format: {format!r} must be one of {', '.join(FORMATS.values())}")
    if format == "onnx":
        _check_opset(opset)
    contract = model_contract(translator) if contract is None else contract
    net, example = export_net(translator), _example_input(translator)
    try:
        if format == "onnx":
            return _onnx_bytes(net, example, contract, opset)
        return _pt2_bytes(net, example, contract)
    except (ExportError, ModuleNotFoundError):
        raise
    except Exception as e:  # noqa: BLE001 - tracing fails in many ways; the user needs one line
        while e.__cause__ is not None:  # the ONNX exporter wraps torch.export's own reason
            e = e.__cause__
        raise ExportError(f"{translator.contract.architecture} does not export to {format}: {first_line(e)}") from e


def _check_opset(opset: int) -> None:
    """Refuse an opset the installed onnx cannot write: torch would log a traceback and write 18 instead."""
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ExportError(f"opset: {opset} cannot be written; use {MIN_OPSET} to {newest} (default {DEFAULT_OPSET})")


def _summary(contract: Mapping[str, Any]) -> str:
    return (f"translate {contract['method']} generator ({contract['spec'].get('kind')}), task "
            f"{contract['task']}, {contract['direction'] or 'reference'}, {contract['mode']} mode; "
            f"NCHW float32 in [-1, 1], H and W multiples of {contract['size_multiple']}, "
            f"output scale {contract['scale']}; contract JSON in metadata '{METADATA_KEY}'")


def format_for(path: str | os.PathLike) -> str:
    """"onnx" or "pt2" from the file suffix; an ExportError names the accepted ones."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(f"{path}: unknown export format {suffix or '(no suffix)'!r}; "
                          f"use {' or '.join(FORMATS)}")
    return FORMATS[suffix]


def export_model(
    translator: Translator,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    check: bool = True,
    opset: int = DEFAULT_OPSET,
    tolerance: float = PARITY_TOLERANCE,
    images: Sequence[np.ndarray] | None = None,
) -> ExportReport:
    """Export the translator's generator to `path` (.onnx or .pt2) and check it.

    The parity check (unless `check` is False) runs the exported bytes and the translator's net
    on `images` (default `parity_photos()`) before anything is written; a max abs diff above
    `tolerance` raises ExportError and leaves `path` untouched. The file is written atomically
    and an existing one is kept unless `overwrite`.
    """
    from translate.files import atomic_write

    start = time.perf_counter()
    path = Path(path)
    format = format_for(path)
    if path.is_dir():
        raise ExportError(f"{path}: is a folder; give a file name ending in {' or '.join(FORMATS)}")
    if path.exists() and not overwrite:
        raise ExportError(f"{path}: already exists; pass --overwrite to replace it")
    contract = model_contract(translator)
    data = export_bytes(translator, format, opset=opset, contract=contract)
    diff = None
    if check:
        diff = check_parity(data, translator, parity_photos(translator.contract.task) if images is None else images)
        log.info("parity of %s vs eager PyTorch (fp32): max abs diff %.3g", path.name, diff)
        if not diff <= tolerance:
            raise ExportError(f"{path}: parity check failed: max abs diff {diff:.3g} > {tolerance:g} "
                              f"between the {format} export and PyTorch; nothing written")
    try:
        atomic_write(path, data)
    except OSError as e:  # a read-only folder, a full disk, a file where a folder should be
        raise ExportError(f"{path}: cannot write the export ({first_line(e)})") from e
    return ExportReport(path, format, contract, diff, len(data), time.perf_counter() - start)


def parity_photos(task: Task | None = None) -> list[np.ndarray]:
    """The default parity images: `PARITY_PHOTOS` from skimage.data, HxWx3 uint8 RGB, each as an
    input of `task` (inpainting's get seeded holes; None: the photos as they are)."""
    import cv2
    import skimage.data

    from translate.tasks import get_task

    example = (task or get_task("custom")).example_input
    return [example(cv2.resize(getattr(skimage.data, name)(), (width, height), interpolation=cv2.INTER_AREA),
                    np.random.default_rng(seed))
            for seed, (name, (height, width)) in enumerate(PARITY_PHOTOS)]


def check_parity(exported: str | os.PathLike | bytes, translator: Translator,
                 images: Sequence[np.ndarray]) -> float:
    """Max abs difference, over `images`, between the exported net (ONNX Runtime or torch.export,
    CPU fp32) and the translator's own net (eager PyTorch, fp32), both fed the same reflect-padded
    [-1, 1] tensor, as `Translator` prepares it.

    In paper mode with dropout the net is random, so both sides then keep every dropout unit
    (the export's noise is forced in a copy held in memory; the reference is `export_net`).
    """
    data = read_bytes(exported)
    keep_all = _has_live_dropout(translator)
    run_exported = runner(data, keep_all=keep_all)
    if keep_all:
        reference_net = export_net(translator)
        for module in reference_net.modules():
            if isinstance(module, PaperDropout):
                module.keep_all = True
        device = torch.device("cpu")
    else:
        reference_net, device = translator.net, translator.device
    worst = 0.0
    for image in images:
        x = translator.prepare(image).tensor[None]
        x = reflect_pad(x, translator.runner.padding(x.shape[-2], x.shape[-1])).contiguous()
        with torch.inference_mode():
            expected = reference_net(x.to(device)).to("cpu", torch.float32)
        got = run_exported(x).to(torch.float32)
        if got.shape != expected.shape:
            raise ExportError(f"parity: exported net gave shape {tuple(got.shape)} for input "
                              f"{tuple(x.shape)}, PyTorch {tuple(expected.shape)}")
        worst = max(worst, float((got - expected).abs().max()))
    return worst
