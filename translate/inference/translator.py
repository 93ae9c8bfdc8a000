"""Translator: a trained generator as a function on images of any size.

Data contract: images are HxW or HxWxC (C = 1, 3 or 4) uint8/uint16 numpy arrays, RGB(A) order;
results have the input's dtype and height/width times the net's `scale`. Inside, nets see
(N, C, H, W) float tensors in [-1, 1]; a net of another value range (published SR nets read
and write [0, 1]) runs wrapped so it does too (`translate.nets.layers.signed_range_net`).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from translate.data.images import fit_to_format, read_image, write_image
from translate.errors import TranslatorError
from translate.inference.cancelling import watching
from translate.inference.contract import ModelContract, ModelSource
from translate.inference.row_progress import RowProgress
from translate.inference.loading import LoadedModel, load_model
from translate.inference.options import InferenceOptions
from translate.inference.runner import Progress, TiledRunner, reflect_pad  # noqa: F401 - reflect_pad: API
from translate.tasks import Prepared, TaskAdapter, get_task

log = logging.getLogger(__name__)
_SOURCE_FIELDS = frozenset(field.name for field in dataclasses.fields(ModelSource)) - {"path"}


class Translator:
    """A generator as a function on images of any size; thread-safe.

    `t(image)` maps an HxW or HxWxC uint8/uint16 image to the translated image of the same dtype
    and size (times `scale` for super-resolution nets). The task's adapter turns images into net
    inputs and back; the `runner` pads, runs whole or tiled, and crops (see `TiledRunner`). The
    model's facts come from `contract`.
    """

    def __init__(self, model: LoadedModel, options: InferenceOptions | None = None) -> None:
        """Take ownership of `model.net` and set it up for inference as `options` say."""
        from translate.nets.layers import signed_range_net

        self.model = model
        self.options = options or InferenceOptions()
        self.contract: ModelContract = model.contract
        try:
            self.adapter: TaskAdapter = self.contract.task.adapter(model.spec)
        except TranslatorError as e:
            raise TranslatorError(f"{model.source or 'net'}: {e}") from None
        # From here on the net maps [-1, 1] to [-1, 1] whatever its own range: tiling, 16-bit,
        # alpha, gray, the service and export then treat every model alike.
        self.runner = TiledRunner(signed_range_net(model.net, self.contract.value_range), self.contract, self.options)

    # ------------------------------------------------------------ construction
    @classmethod
    def load(cls, source: ModelSource | str | os.PathLike, options: InferenceOptions | None = None,
             **changes: Any) -> Translator:
        """Load a run directory, checkpoint, published weights file (ours or spandrel's) or published
        NAME (see `loading.load_models`). `changes` are ModelSource fields (direction, arch,
        weights_dir, trust_torchscript, extra_arches) and InferenceOptions fields applied to
        `options`, e.g. `Translator.load(path, direction="b_to_a", device="cpu")`."""
        source_fields = {name: changes.pop(name) for name in _SOURCE_FIELDS & changes.keys()}
        options = (options or InferenceOptions()).replace(**changes)
        translator = cls(load_model(ModelSource.of(source, **source_fields)), options)
        log.info("loaded %s", translator.describe())
        return translator

    @classmethod
    def from_net(cls, net: nn.Module, spec: Any, options: InferenceOptions | None = None, *,
                 task: str = "custom", **changes: Any) -> Translator:
        """A Translator for a net built from `spec` (e.g. by `translate.nets.build_net`)."""
        contract = ModelContract.for_spec(spec, task=get_task(task), method="custom")
        return cls(LoadedModel(net=net, contract=contract), (options or InferenceOptions()).replace(**changes))

    # ------------------------------------------------------------ the contract and the runner
    @property
    def spec(self) -> Any:
        return self.contract.spec

    @property
    def task(self) -> str:
        """The task's name (the task object is `contract.task`)."""
        return self.contract.task.name

    @property
    def scale(self) -> int:
        return self.contract.scale

    @property
    def size_multiple(self) -> int:
        return self.contract.size_multiple

    @property
    def min_side(self) -> int:
        return self.contract.min_side

    @property
    def mode(self) -> str:
        return self.options.mode

    @property
    def net(self) -> nn.Module:
        """The net as it runs: on its device, in [-1, 1], stats-aware norm layers."""
        return self.runner.net

    @property
    def device(self) -> torch.device:
        return self.runner.device

    @property
    def precision(self) -> str:
        return self.runner.precision

    @property
    def tile_size(self) -> int | None:
        return self.runner.tile_size

    # ------------------------------------------------------------ images
    def __call__(self, image: np.ndarray, *, cancel: threading.Event | None = None,
                 progress: Progress | None = None) -> np.ndarray:
        """Translate one HxW / HxWxC uint8/uint16 image; same dtype, size times `scale`.
        Once `cancel` is set, the next net pass (each tile, when tiling) raises `Cancelled`;
        `progress(done, total)` hears of each net pass (tiles and the statistics pass)."""
        return self.translate_prepared(self.prepare(image), cancel=cancel, progress=progress)

    def prepare(self, image: np.ndarray) -> Prepared:
        """The task adapter's net input for `image` (thread-safe, CPU only)."""
        return self.adapter.prepare(image)

    def finish(self, output: torch.Tensor, prepared: Prepared, *, top: int = 0) -> np.ndarray:
        """The task adapter's image for one net output (C, s*H, s*W) in [-1, 1], or for the band of
        output rows from `top` on (a tiled run finishes its output band by band)."""
        return self.adapter.finish(output, prepared, top=top)

    def wants_exact(self, prepared: Prepared) -> bool:
        """Whether to run this input in fp32 although precision "auto" picked bf16/fp16: 16-bit
        images do, because bf16's 8-bit mantissa would throw away the bits the user kept."""
        return self.runner.auto_precision and self.precision != "fp32" and prepared.dtype == np.uint16

    def translate_file(self, src: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Read `src`, translate, write `dst` atomically (format from its suffix; 16-bit kept where
        the format stores it). An existing `dst` is an error unless `overwrite`."""
        dst = Path(dst)
        if dst.exists() and not overwrite:
            raise TranslatorError(f"{dst}: already exists; pass overwrite=True to replace it")
        write_image(dst, fit_to_format(self(read_image(src)), dst.suffix), in_place=True)  # the image is ours
        return dst

    def translate_prepared(self, prepared: Prepared, *, cancel: threading.Event | None = None,
                           progress: Progress | None = None) -> np.ndarray:
        """The finished image for one prepared input (`cancel`, `progress` as in `__call__`). A large
        input runs tile by tile from its integer pixels: tiles blend into a float band of output
        rows, and finished rows go straight into the output image, the one full-size buffer."""
        exact = self.wants_exact(prepared)
        height, width = prepared.pixels.shape[:2]
        tile = self.runner.image_tile_plan(height, width)
        if tile is None:
            output = self.run_net(prepared.tensor[None], exact=exact, cancel=cancel)[0]
            if progress is not None:
                progress(1, 1)
            return self.finish(output, prepared)
        image: np.ndarray | None = None
        rows = RowProgress(height * self.scale)  # a big image logs its rows, not a silent wait
        with torch.inference_mode(), watching(cancel):
            for top, band in self.runner.pixel_bands(prepared.pixels, tile, exact=exact, cancel=cancel,
                                                     progress=progress):
                finished = self.finish(band, prepared, top=top)
                if image is None:
                    image = np.empty((height * self.scale, *finished.shape[1:]), finished.dtype)
                image[top : top + len(finished)] = finished
                rows.advance(top + len(finished))
        return image

    # ------------------------------------------------------------ tensors
    def run_net(self, x: torch.Tensor, *, exact: bool = False,
                cancel: threading.Event | None = None) -> torch.Tensor:
        """(N, C_in, H, W) float in [-1, 1], any H and W -> (N, C_out, s*H, s*W) float32 on the CPU.

        `exact` runs in fp32 whatever the precision setting; `cancel` as in `__call__`. Thread-safe.
        """
        return self.runner.run(x, exact=exact, cancel=cancel)

    def max_batch(self, height: int, width: int) -> int:
        """How many height x width images one forward call should hold (see `TiledRunner.max_batch`)."""
        return self.runner.max_batch(height, width)

    def runs_tiled(self, height: int, width: int) -> bool:
        """Whether a height x width input runs as tiles (from its integer pixels, see `translate_prepared`)."""
        return self.runner.image_tile_plan(height, width) is not None

    def describe(self) -> str:
        """One line: source, net, device, precision, mode."""
        model = self.model
        return (f"{model.source or 'net'} [{model.method} {model.net_name} {self.contract.architecture}] "
                f"on {self.device}, {self.precision}, {self.mode} mode")
