"""Translator: a trained generator as a function on images of any size.

Data contract: images are HxW or HxWxC (C = 1, 3 or 4) uint8/uint16 numpy arrays, RGB(A) order;
results have the input's dtype and height/width times the net's `scale`. Inside, nets see
(N, C, H, W) float tensors in [-1, 1]; a net of another value range (published SR nets read
and write [0, 1]) runs wrapped so it does too (`translate.nets.layers.signed_range_net`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from translate.data.images import fit_to_format, image_to_tensor, read_image, write_image
from translate.errors import Cancelled, TranslatorError
from translate.inference import normstats, tiling
from translate.inference.device import (
    activation_bytes_per_px, auto_memory_budget, autocast, available_memory_bytes, resolve_device, resolve_precision,
)
from translate.inference.loading import LoadedModel, load_model
from translate.inference.options import InferenceOptions
from translate.inference.spandrel_bridge import net_name
from translate.tasks import Prepared, TaskAdapter, get_task

log = logging.getLogger(__name__)

_MAX_BATCH = {"cpu": 8, "cuda": 32}
# Smallest padded side: a ResNet's residual blocks reflect-pad their 1/4-size maps by one pixel,
# which needs those maps to be at least 2 wide; 16 leaves room for any generator we build.
_MIN_SIDE = 16


def reflect_pad(x: torch.Tensor, pad: tiling.Padding) -> torch.Tensor:
    """Reflect-pad (N, C, H, W) by `pad` as `tiling.padded_index` says (pads larger than the
    image reflect again; a 1-pixel side is replicated)."""
    rows = torch.from_numpy(tiling.padded_index(x.shape[-2], pad.top, pad.bottom)).to(x.device)
    cols = torch.from_numpy(tiling.padded_index(x.shape[-1], pad.left, pad.right)).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


# ---------------------------------------------------------------- the Translator
# progress(done, total): net passes done of the image's total, reported after each pass.
Progress = Callable[[int, int], None]


def _stop_if_cancelled(cancel: threading.Event | None) -> None:
    """Raise Cancelled once `cancel` is set; called before each net pass, the unit of work."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("translation cancelled before its next net pass")


class Translator:
    """A generator as a function on images of any size; thread-safe.

    `t(image)` maps an HxW or HxWxC uint8/uint16 image to the translated image of the same dtype
    and size (times `scale` for super-resolution nets). Images are reflect-padded to the net's
    size multiple and cropped back; images too big for memory run as overlapping tiles blended
    with a smooth window, with instance-norm statistics taken once from the whole image.
    """

    def __init__(self, model: LoadedModel, options: InferenceOptions | None = None) -> None:
        """Take ownership of `model.net` and set it up for inference as `options` say."""
        from translate.nets.layers import signed_range_net

        options = options or InferenceOptions()
        # From here on the net maps [-1, 1] to [-1, 1] whatever its own range: tiling, 16-bit,
        # alpha, gray, the service and export then treat every model alike.
        net, spec = signed_range_net(model.net, model.value_range), model.spec
        self.model = model
        self.options = options
        self.spec = spec
        self.task = model.task
        self.mode = options.mode
        self.device = resolve_device(options.device)
        self.precision = resolve_precision(options.precision, self.device, supported=getattr(spec, "precisions", None),
                                           model=f"{net_name(spec)} model")
        self.auto_precision = options.precision == "auto"
        self.scale = int(getattr(spec, "scale", 1))
        self.size_multiple = int(spec.size_multiple)
        self.min_side = tiling.round_up(max(_MIN_SIDE, int(getattr(spec, "min_side", 0))), self.size_multiple)
        # Models that see the whole image at once (spandrel's hints): "discouraged" runs whole unless
        # tile_size asks for tiles, "internal" (the model tiles itself) never tiles.
        self.tiling = str(getattr(spec, "tiling", "supported"))
        try:
            self.adapter: TaskAdapter = get_task(model.task).adapter(spec)
        except ValueError as e:
            raise TranslatorError(f"{model.source or 'net'}: {e}") from None
        tile_size = options.tile_size
        if tile_size is not None and (tile_size < self.size_multiple or tile_size % self.size_multiple):
            suggestion = max(self.size_multiple, tile_size // self.size_multiple * self.size_multiple)
            raise TranslatorError(f"tile_size: {tile_size} must be a multiple of {self.size_multiple} for "
                                  f"this {spec.kind} generator; use e.g. {suggestion}")
        if tile_size is not None and self.tiling == "internal":
            raise TranslatorError(f"tile_size: this {net_name(spec)} model tiles "
                                  "internally and must see whole images; drop --tile-size")
        if tile_size is not None and tile_size < self.min_side:
            raise TranslatorError(f"tile_size: {tile_size} is below this model's minimum side {self.min_side}")
        self.tile_size = tile_size
        self.overlap_px = options.overlap_px
        self.memory_budget_bytes = int(options.memory_budget_bytes or auto_memory_budget(self.device))
        # A model that discourages tiling runs whole while it fits half the free memory (unless a budget
        # was given): its hint outweighs our speed-minded budget, but not running out of memory.
        self.whole_image_bytes = self.memory_budget_bytes if options.memory_budget_bytes else \
            max(self.memory_budget_bytes, available_memory_bytes(self.device) // 2)
        self.net = self._set_up(net, options.channels_last)

    def _set_up(self, net: nn.Module, channels_last: bool | None) -> nn.Module:
        """Eval mode, no gradients, stats-aware norms, paper-mode dropout, device and layout."""
        mode = self.mode
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        # Layers that normalise with their input's statistics get whole-image stats when tiling.
        self._norm_context = normstats.install_stat_norms(net, batch_stats=mode == "paper")
        if mode == "paper":
            # The pix2pix paper (section 3.1, and its code's default test) keeps dropout on at
            # test time as the generator's noise source. Set once here, never per call.
            for module in net.modules():
                if isinstance(module, nn.Dropout):
                    module.train()
        if channels_last is None:
            # channels_last speeds convs up, but CPU instance norm on it is 4-40x slower (layout
            # round trips): measured a net loss for resnet_9blocks, a 40% gain for unet_256.
            has_instance_norm = any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())
            channels_last = self.device.type == "cuda" or (self.device.type == "cpu" and not has_instance_norm)
        self.channels_last = channels_last
        self.param_bytes = sum(p.numel() * p.element_size() for p in net.parameters())
        self.bytes_per_px = activation_bytes_per_px(net.to("cpu"), self.spec)
        net = net.to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        return net

    # ------------------------------------------------------------ construction
    @classmethod
    def load(
        cls,
        source: str | os.PathLike,
        options: InferenceOptions | None = None,
        *,
        direction: str | None = None,
        arch: str | None = None,
        weights_dir: str | os.PathLike = "weights",
        trust_torchscript: bool = False,
        extra_arches: bool = False,
        **changes: Any,
    ) -> Translator:
        """Load a run directory, checkpoint, published weights file (ours or spandrel's) or published
        NAME (see `loading.load_models`). `changes` are InferenceOptions fields applied to `options`,
        e.g. `Translator.load(path, device="cpu")`."""
        options = (options or InferenceOptions()).replace(**changes)
        model = load_model(source, direction=direction, arch=arch, weights_dir=weights_dir,
                           trust_torchscript=trust_torchscript, extra_arches=extra_arches)
        translator = cls(model, options)
        log.info("loaded %s", translator.describe())
        return translator

    @classmethod
    def from_net(cls, net: nn.Module, spec: Any, options: InferenceOptions | None = None, *,
                 task: str = "custom", **changes: Any) -> Translator:
        """A Translator for a net built from `spec` (e.g. by `translate.nets.build_net`)."""
        return cls(LoadedModel(net, spec, task=task), (options or InferenceOptions()).replace(**changes))

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
        return self.auto_precision and self.precision != "fp32" and prepared.dtype == np.uint16

    def translate_file(self, src: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Read `src`, translate, write `dst` atomically (format from its suffix; 16-bit kept where
        the format stores it). An existing `dst` is an error unless `overwrite`."""
        dst = Path(dst)
        if dst.exists() and not overwrite:
            raise TranslatorError(f"{dst}: already exists; pass overwrite=True to replace it")
        write_image(dst, fit_to_format(self(read_image(src)), dst.suffix), in_place=True)  # the image is ours
        return dst

    # ------------------------------------------------------------ tensors
    def max_batch(self, height: int, width: int) -> int:
        """How many height x width images one forward call should hold: what fits the memory
        budget and, on CPU, what pays off (see below), at most 8 on CPU and 32 on GPU."""
        pad = tiling.padding_for(height, width, self.size_multiple, minimum=self.min_side)
        per_image = (height + pad.top + pad.bottom) * (width + pad.left + pad.right) * self.bytes_per_px
        limit = min(int(self.memory_budget_bytes // max(per_image, 1.0)), _MAX_BATCH.get(self.device.type, 8))
        if self.device.type == "cpu":
            # Batching pays on CPU when the weights outweigh one image's activations (unet_256 at
            # 256 px: 2.5x faster at 8 than at 1, its deep 1x1..8x8 levels are weight-bound) and
            # costs when activations fall out of cache (resnet_9blocks at 256 px: 1 is fastest).
            limit = min(limit, int(self.param_bytes // max(per_image, 1.0)))
        return max(1, limit)

    def _forward(self, x: torch.Tensor, exact: bool) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, "fp32" if exact else self.precision):
            return self.net(x).float()

    def _activation_budget(self, reserve_bytes: int) -> int:
        """Bytes activations may take while `reserve_bytes` of image buffers are held: on CPU both
        share the memory the budget was made for (at least a quarter of it stays for tiles)."""
        if self.device.type != "cpu":
            return self.memory_budget_bytes
        return max(self.memory_budget_bytes - reserve_bytes, self.memory_budget_bytes // 4)

    def _band_bytes_per_row(self, width: int) -> int:
        """Host bytes per input row of a tile for its output band (`tiling.RowBands`), for a padded
        `width`: the float band, and as much again while finished rows become the output dtype
        (a clamped float chunk, the integer rows, alpha). Charged to the budget on CPU only, where
        it shares memory with the activations."""
        return 2 * 4 * self.spec.out_channels * self.scale**2 * width if self.device.type == "cpu" else 0

    def _tile_plan(self, height: int, width: int, batch: int, *,
                   whole_reserve_bytes: int = 0) -> tuple[int, int] | None:
        """(tile height, tile width) for a padded height x width image, or None to run it whole:
        whole while its activations fit the budget beside `whole_reserve_bytes` (its whole float
        output, when that is held too); tiles and their output band fit the budget together."""
        if self.tiling == "internal":
            return None
        if self.tiling == "discouraged" and self.tile_size is None:
            if batch * height * width * self.bytes_per_px <= self.whole_image_bytes:
                return None
            log.info("%dx%d does not fit memory whole; tiling although this model discourages it", width, height)
        if self.tile_size is not None:
            if max(height, width) <= self.tile_size:
                return None
            return min(self.tile_size, height), min(self.tile_size, width)
        if batch * height * width * self.bytes_per_px <= self._activation_budget(whole_reserve_bytes):
            return None
        max_pixels = self.memory_budget_bytes / self.bytes_per_px
        overlap = self.overlap_px if self.overlap_px is not None else tiling.default_overlap(int(max_pixels**0.5))
        tile = tiling.plan_tiles(height, width, max_pixels=max_pixels, overlap_px=overlap, multiple=self.size_multiple,
                                 row_cost=self._band_bytes_per_row(width) / self.bytes_per_px)
        return None if tile == (height, width) else tile

    def run_net(self, x: torch.Tensor, *, exact: bool = False,
                cancel: threading.Event | None = None) -> torch.Tensor:
        """(N, C_in, H, W) float in [-1, 1], any H and W -> (N, C_out, s*H, s*W) float32 on the CPU.

        `exact` runs in fp32 whatever the precision setting; `cancel` as in `__call__`. Thread-safe.
        """
        n, _, height, width = x.shape
        pad = tiling.padding_for(height, width, self.size_multiple, minimum=self.min_side)
        s = self.scale
        with torch.inference_mode():
            padded = reflect_pad(x.to(self.device, torch.float32, non_blocking=True), pad)
            tile = self._tile_plan(padded.shape[-2], padded.shape[-1], n)
            if tile is None:
                _stop_if_cancelled(cancel)
                y = self._forward(padded, exact)
                y = y[:, :, pad.top * s : (pad.top + height) * s, pad.left * s : (pad.left + width) * s]
                return y.to("cpu", torch.float32)
            out = torch.empty(n, self.spec.out_channels, height * s, width * s, dtype=torch.float32)
            for i in range(n):
                image = padded[i : i + 1]
                for top, band in self._tiled_bands(lambda r0, r1, c0, c1: image[:, :, r0:r1, c0:c1],
                                                   lambda _: image, pad, (height, width), tile, exact, cancel):
                    out[i, :, top : top + band.shape[1]] = band
            return out

    def runs_tiled(self, height: int, width: int) -> bool:
        """Whether a height x width input runs as tiles (from its integer pixels, see `translate_prepared`)."""
        return self._image_tile_plan(height, width) is not None

    def _image_tile_plan(self, height: int, width: int) -> tuple[int, int] | None:
        """`_tile_plan` for one image of height x width: a whole run holds its float output too."""
        pad = tiling.padding_for(height, width, self.size_multiple, minimum=self.min_side)
        padded = (height + pad.top + pad.bottom, width + pad.left + pad.right)
        output_bytes = 4 * self.spec.out_channels * height * width * self.scale**2
        return self._tile_plan(*padded, 1, whole_reserve_bytes=output_bytes)

    def translate_prepared(self, prepared: Prepared, *, cancel: threading.Event | None = None,
                           progress: Progress | None = None) -> np.ndarray:
        """The finished image for one prepared input (`cancel`, `progress` as in `__call__`). A large input
        runs tile by tile from its integer pixels: each tile becomes floats only while it runs,
        tiles blend into a float band of output rows, and finished rows go straight into the
        output image, the one full-size buffer (see `tiling.RowBands`)."""
        exact = self.wants_exact(prepared)
        pixels = prepared.pixels
        height, width = pixels.shape[:2]
        tile = self._image_tile_plan(height, width)
        if tile is None:
            output = self.run_net(prepared.tensor[None], exact=exact, cancel=cancel)[0]
            if progress is not None:
                progress(1, 1)
            return self.finish(output, prepared)
        pad = tiling.padding_for(height, width, self.size_multiple, minimum=self.min_side)
        rows = tiling.padded_index(height, pad.top, pad.bottom)
        cols = tiling.padded_index(width, pad.left, pad.right)

        def read(r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
            return image_to_tensor(pixels[np.ix_(rows[r0:r1], cols[c0:c1])])[None].to(self.device)

        def downscaled(max_pixels: float) -> torch.Tensor:
            return self._downscaled_input(pixels, (len(rows), len(cols)), max_pixels, read)

        image: np.ndarray | None = None
        with torch.inference_mode():
            for top, band in self._tiled_bands(read, downscaled, pad, (height, width), tile, exact, cancel,
                                               progress):
                finished = self.finish(band, prepared, top=top)
                if image is None:
                    image = np.empty((height * self.scale, *finished.shape[1:]), finished.dtype)
                image[top : top + len(finished)] = finished
        return image

    def _downscaled_input(self, pixels: np.ndarray, padded: tuple[int, int], max_pixels: float,
                          read: Callable[..., torch.Tensor]) -> torch.Tensor:
        """The padded image area-downscaled to at most `max_pixels` (for the statistics pass)."""
        size = normstats.downscaled_size(*padded, max_pixels=max_pixels, multiple=self.size_multiple)
        if size == padded:
            return read(0, padded[0], 0, padded[1])
        height, width = pixels.shape[:2]
        small_h = max(1, min(size[0], round(height * size[0] / padded[0])))
        small_w = max(1, min(size[1], round(width * size[1] / padded[1])))
        small = cv2.resize(pixels, (small_w, small_h), interpolation=cv2.INTER_AREA)
        small = small.reshape(small_h, small_w, pixels.shape[2])
        top, left = (size[0] - small_h) // 2, (size[1] - small_w) // 2
        pad = tiling.Padding(top, size[0] - small_h - top, left, size[1] - small_w - left)
        return reflect_pad(image_to_tensor(small)[None], pad).to(self.device)

    def _stats_scope(self, downscaled: Callable[[float], torch.Tensor], exact: bool,
                     cancel: threading.Event | None) -> contextlib.AbstractContextManager:
        """Where tiles normalise with whole-image statistics: one pass over the whole image
        (downscaled to fit the budget; no output buffer is held yet) measures every instance-norm
        layer, so all tiles normalise alike and no tile-to-tile colour shift appears."""
        if self._norm_context is None:
            return contextlib.nullcontext()
        _stop_if_cancelled(cancel)
        max_pixels = self.memory_budget_bytes / self.bytes_per_px
        stats = normstats.record_stats(lambda z: self._forward(z, exact), self._norm_context,
                                       downscaled(max_pixels), max_pixels=max_pixels, multiple=self.size_multiple)
        return self._norm_context.frozen(stats)

    def _tiled_bands(self, read: Callable[[int, int, int, int], torch.Tensor],
                     downscaled: Callable[[float], torch.Tensor], pad: tiling.Padding,
                     size: tuple[int, int], tile: tuple[int, int], exact: bool,
                     cancel: threading.Event | None = None,
                     progress: Progress | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """One image of `size` (H, W) as overlapping tiles of its padded self, whose windows
        `read(top, bottom, left, right)` gives as (1, C, h, w) floats; `downscaled(max_pixels)` is
        the padded image for the statistics pass. Yields (first output row, finished output rows
        (C_out, n, s*W) float32 on the CPU, valid until the next item) from the top down."""
        height, width = size[0] + pad.top + pad.bottom, size[1] + pad.left + pad.right
        tile_h, tile_w = tile
        overlap = self.overlap_px if self.overlap_px is not None else tiling.default_overlap(max(tile))
        # Aligned starts give every tile the stride-2 sampling grid of the whole image, so tiles
        # agree with a whole-image pass away from their borders.
        m = self.size_multiple
        tops = tiling.tile_starts(height, tile_h, tiling.clamp_overlap(overlap, tile_h, m), align=m)
        lefts = tiling.tile_starts(width, tile_w, tiling.clamp_overlap(overlap, tile_w, m), align=m)
        bands = tiling.RowBands(tops, lefts, tile, pad, size, channels=self.spec.out_channels, scale=self.scale)
        log.debug("tiling %dx%d with %d tiles of %dx%d (overlap >= %d px)",
                  height, width, len(tops) * len(lefts), tile_h, tile_w, overlap)
        done = int(self._norm_context is not None)  # the statistics pass is one net pass
        total = done + len(tops) * len(lefts)
        with self._stats_scope(downscaled, exact, cancel):
            if progress is not None and done:
                progress(done, total)
            for row, top in enumerate(tops):
                for col, left in enumerate(lefts):
                    _stop_if_cancelled(cancel)
                    y = self._forward(read(top, top + tile_h, left, left + tile_w), exact).to("cpu", torch.float32)
                    bands.add(row, col, y[0].numpy())
                    done += 1
                    if progress is not None:
                        progress(done, total)
                first, finished = bands.finish_row(row)
                if finished.shape[1]:
                    yield first, torch.from_numpy(finished)

    def describe(self) -> str:
        """One line: source, net, device, precision, mode."""
        model = self.model
        return (f"{model.source or 'net'} [{model.method} {model.net_name} {net_name(self.spec)}] "
                f"on {self.device}, {self.precision}, {self.mode} mode")


