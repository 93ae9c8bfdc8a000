"""The net on its device: padding to the contract's size rules, whole or tiled runs within a memory
budget, and whole-image normalisation statistics for tiles.

Data contract: the net maps (N, C_in, H, W) float tensors in [-1, 1] to (N, C_out, s*H, s*W) in
[-1, 1] (nets of another range arrive wrapped, `translate.nets.layers.signed_range_net`); H and W
are anything: inputs are reflect-padded to the size multiple and the output cropped back.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

import cv2
import numpy as np
import torch
from torch import nn

from translate.data.images import image_to_tensor
from translate.errors import Cancelled, TranslatorError
from translate.inference import normstats, tiling
from translate.inference.cancelling import install_cancel_checks, watching
from translate.inference.contract import ModelContract
from translate.inference.limits import check_tile_size
from translate.inference.device import (
    activation_bytes_per_px, auto_memory_budget, autocast, available_memory_bytes, resolve_device, resolve_precision,
)
from translate.inference.options import InferenceOptions

log = logging.getLogger(__name__)

# progress(done, total): net passes done of the image's total, reported after each pass.
Progress = Callable[[int, int], None]

_MAX_BATCH = {"cpu": 8, "cuda": 32}
# (top, bottom, left, right) -> (1, C, bottom - top, right - left) float window of the padded input.
ReadWindow = Callable[[int, int, int, int], torch.Tensor]


def reflect_pad(x: torch.Tensor, pad: tiling.Padding) -> torch.Tensor:
    """Reflect-pad (N, C, H, W) by `pad` as `tiling.padded_index` says (pads larger than the
    image reflect again; a 1-pixel side is replicated)."""
    rows = torch.from_numpy(tiling.padded_index(x.shape[-2], pad.top, pad.bottom)).to(x.device)
    cols = torch.from_numpy(tiling.padded_index(x.shape[-1], pad.left, pad.right)).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def stop_if_cancelled(cancel: threading.Event | None) -> None:
    """Raise Cancelled once `cancel` is set; called before each net pass, the unit of work."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("translation cancelled before its next net pass")


class TiledRunner:
    """Runs one net (built for `contract`) on its device, in its precision, whole or as
    overlapping tiles blended with a smooth window; thread-safe once built.

    Tiles normalise with statistics taken once from the whole image, so they agree with each
    other. `tile_size` forces tiles; otherwise an image tiles when it does not fit the budget.
    """

    def __init__(self, net: nn.Module, contract: ModelContract, options: InferenceOptions) -> None:
        """Take ownership of `net` ([-1, 1] in and out) and set it up as `options` say."""
        self.contract = contract
        self.mode = options.mode
        self.device = resolve_device(options.device)
        self.precision = resolve_precision(options.precision, self.device, supported=contract.precisions,
                                           model=f"{contract.architecture} model")
        self.auto_precision = options.precision == "auto"
        self.tile_size = self._checked_tile_size(options.tile_size)
        self.overlap_px = options.overlap_px
        self.memory_budget_bytes = int(options.memory_budget_bytes or auto_memory_budget(self.device))
        # A model that discourages tiling runs whole while it fits half the free memory (unless a budget
        # was given): its hint outweighs our speed-minded budget, but not running out of memory.
        self.whole_image_bytes = self.memory_budget_bytes if options.memory_budget_bytes else \
            max(self.memory_budget_bytes, available_memory_bytes(self.device) // 2)
        self.net = self._set_up(net, options.channels_last)

    def _checked_tile_size(self, tile_size: int | None) -> int | None:
        contract, multiple = self.contract, self.contract.size_multiple
        if tile_size is None:
            return None
        check_tile_size(tile_size)  # 1e23 is a typo, not a multiple to round to
        if tile_size < multiple or tile_size % multiple:
            suggestion = max(multiple, tile_size // multiple * multiple)
            raise TranslatorError(f"tile_size: {tile_size} must be a multiple of {multiple} for "
                                  f"this {contract.architecture} generator; use e.g. {suggestion}")
        if contract.tiling == "internal":
            raise TranslatorError(f"tile_size: this {contract.architecture} model tiles "
                                  "internally and must see whole images; drop --tile-size")
        if tile_size < contract.min_side:
            raise TranslatorError(f"tile_size: {tile_size} is below this model's minimum side {contract.min_side}")
        return tile_size

    def _set_up(self, net: nn.Module, channels_last: bool | None) -> nn.Module:
        """Eval mode, no gradients, stats-aware norms, paper-mode dropout, device and layout."""
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        # Layers that normalise with their input's statistics get whole-image stats when tiling.
        self.norm_context = normstats.install_stat_norms(net, batch_stats=self.mode == "paper")
        install_cancel_checks(net)  # a whole-image pass stops within a layer of its cancel token
        if self.mode == "paper":
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
        self.bytes_per_px = activation_bytes_per_px(net.to("cpu"), self.contract)
        net = net.to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        return net

    # ------------------------------------------------------------ planning
    def padding(self, height: int, width: int) -> tiling.Padding:
        """The reflect padding that makes a height x width input fit the contract's size rules."""
        return tiling.padding_for(height, width, self.contract.size_multiple, minimum=self.contract.min_side)

    def max_batch(self, height: int, width: int) -> int:
        """How many height x width images one forward call should hold: what fits the memory
        budget and, on CPU, what pays off (see below), at most 8 on CPU and 32 on GPU."""
        pad = self.padding(height, width)
        per_image = (height + pad.top + pad.bottom) * (width + pad.left + pad.right) * self.bytes_per_px
        limit = min(int(self.memory_budget_bytes // max(per_image, 1.0)), _MAX_BATCH.get(self.device.type, 8))
        if self.device.type == "cpu":
            # Batching pays on CPU when the weights outweigh one image's activations (unet_256 at
            # 256 px: 2.5x faster at 8 than at 1, its deep 1x1..8x8 levels are weight-bound) and
            # costs when activations fall out of cache (resnet_9blocks at 256 px: 1 is fastest).
            limit = min(limit, int(self.param_bytes // max(per_image, 1.0)))
        return max(1, limit)

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
        if self.device.type != "cpu":
            return 0
        return 2 * 4 * self.contract.out_channels * self.contract.scale**2 * width

    def tile_plan(self, height: int, width: int, batch: int, *,
                  whole_reserve_bytes: int = 0) -> tuple[int, int] | None:
        """(tile height, tile width) for a padded height x width image, or None to run it whole:
        whole while its activations fit the budget beside `whole_reserve_bytes` (its whole float
        output, when that is held too); tiles and their output band fit the budget together."""
        policy = self.contract.tiling  # spandrel's hints: "internal" never tiles, "discouraged" rarely
        if policy == "internal":
            return None
        whole_bytes = batch * height * width * self.bytes_per_px
        if policy == "discouraged" and self.tile_size is None:
            if whole_bytes <= self.whole_image_bytes:
                return None
            log.info("%dx%d does not fit memory whole; tiling although this model discourages it", width, height)
        if self.tile_size is not None:
            if max(height, width) <= self.tile_size:
                return None
            return min(self.tile_size, height), min(self.tile_size, width)
        if whole_bytes <= self._activation_budget(whole_reserve_bytes):
            return None
        max_pixels = self.memory_budget_bytes / self.bytes_per_px
        overlap = self.overlap_px if self.overlap_px is not None else tiling.default_overlap(int(max_pixels**0.5))
        tile = tiling.plan_tiles(height, width, max_pixels=max_pixels, overlap_px=overlap,
                                 multiple=self.contract.size_multiple,
                                 row_cost=self._band_bytes_per_row(width) / self.bytes_per_px)
        return None if tile == (height, width) else tile

    def image_tile_plan(self, height: int, width: int) -> tuple[int, int] | None:
        """`tile_plan` for one image of height x width: a whole run holds its float output too."""
        pad = self.padding(height, width)
        padded = (height + pad.top + pad.bottom, width + pad.left + pad.right)
        output_bytes = 4 * self.contract.out_channels * height * width * self.contract.scale**2
        return self.tile_plan(*padded, 1, whole_reserve_bytes=output_bytes)

    # ------------------------------------------------------------ running
    def forward(self, x: torch.Tensor, exact: bool) -> torch.Tensor:
        """One net pass on (N, C_in, H, W) on the device (H, W already padded); float32 output."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, "fp32" if exact else self.precision):
            return self.net(x).float()

    def run(self, x: torch.Tensor, *, exact: bool = False, cancel: threading.Event | None = None) -> torch.Tensor:
        """(N, C_in, H, W) float in [-1, 1], any H and W -> (N, C_out, s*H, s*W) float32 on the CPU."""
        n, _, height, width = x.shape
        pad = self.padding(height, width)
        s = self.contract.scale
        with torch.inference_mode(), watching(cancel):
            padded = reflect_pad(x.to(self.device, torch.float32, non_blocking=True), pad)
            tile = self.tile_plan(padded.shape[-2], padded.shape[-1], n)
            if tile is None:
                stop_if_cancelled(cancel)
                y = self.forward(padded, exact)
                y = y[:, :, pad.top * s : (pad.top + height) * s, pad.left * s : (pad.left + width) * s]
                return y.to("cpu", torch.float32)
            out = torch.empty(n, self.contract.out_channels, height * s, width * s, dtype=torch.float32)
            for i in range(n):
                image = padded[i : i + 1]
                for top, band in self._tiled_bands(lambda r0, r1, c0, c1: image[:, :, r0:r1, c0:c1],
                                                   lambda _: image, pad, (height, width), tile, exact, cancel):
                    out[i, :, top : top + band.shape[1]] = band
            return out

    def pixel_bands(self, pixels: np.ndarray, tile: tuple[int, int], *, exact: bool = False,
                    cancel: threading.Event | None = None,
                    progress: Progress | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """A large HxWxC_in integer image run as `tile`-sized tiles straight from its pixels (each
        tile becomes floats only while it runs): yields (first output row, finished output rows
        (C_out, n, s*W) float32 on the CPU, valid until the next item) from the top down. Iterate
        it under torch.inference_mode() (a generator cannot hold that mode for its caller)."""
        height, width = pixels.shape[:2]
        pad = self.padding(height, width)
        rows = tiling.padded_index(height, pad.top, pad.bottom)
        cols = tiling.padded_index(width, pad.left, pad.right)

        def read(r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
            return image_to_tensor(pixels[np.ix_(rows[r0:r1], cols[c0:c1])])[None].to(self.device)

        def downscaled(max_pixels: float) -> torch.Tensor:
            return self._downscaled_input(pixels, (len(rows), len(cols)), max_pixels, read)

        yield from self._tiled_bands(read, downscaled, pad, (height, width), tile, exact, cancel, progress)

    def _downscaled_input(self, pixels: np.ndarray, padded: tuple[int, int], max_pixels: float,
                          read: ReadWindow) -> torch.Tensor:
        """The padded image area-downscaled to at most `max_pixels` (for the statistics pass)."""
        size = normstats.downscaled_size(*padded, max_pixels=max_pixels, multiple=self.contract.size_multiple)
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
        if self.norm_context is None:
            return contextlib.nullcontext()
        stop_if_cancelled(cancel)
        max_pixels = self.memory_budget_bytes / self.bytes_per_px
        stats = normstats.record_stats(lambda z: self.forward(z, exact), self.norm_context, downscaled(max_pixels),
                                       max_pixels=max_pixels, multiple=self.contract.size_multiple)
        return self.norm_context.frozen(stats)

    def _tiled_bands(self, read: ReadWindow, downscaled: Callable[[float], torch.Tensor], pad: tiling.Padding,
                     size: tuple[int, int], tile: tuple[int, int], exact: bool,
                     cancel: threading.Event | None = None,
                     progress: Progress | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """One image of `size` (H, W) as overlapping tiles of its padded self, whose windows
        `read(top, bottom, left, right)` gives as (1, C, h, w) floats; `downscaled(max_pixels)` is
        the padded image for the statistics pass. Yields as `pixel_bands` does."""
        height, width = size[0] + pad.top + pad.bottom, size[1] + pad.left + pad.right
        tile_h, tile_w = tile
        overlap = self.overlap_px if self.overlap_px is not None else tiling.default_overlap(max(tile))
        # Aligned starts give every tile the stride-2 sampling grid of the whole image, so tiles
        # agree with a whole-image pass away from their borders.
        m = self.contract.size_multiple
        tops = tiling.tile_starts(height, tile_h, tiling.clamp_overlap(overlap, tile_h, m), align=m)
        lefts = tiling.tile_starts(width, tile_w, tiling.clamp_overlap(overlap, tile_w, m), align=m)
        bands = tiling.RowBands(tops, lefts, tile, pad, size, channels=self.contract.out_channels,
                                scale=self.contract.scale)
        log.debug("tiling %dx%d with %d tiles of %dx%d (overlap >= %d px)",
                  height, width, len(tops) * len(lefts), tile_h, tile_w, overlap)
        done = int(self.norm_context is not None)  # the statistics pass is one net pass
        total = done + len(tops) * len(lefts)
        with self._stats_scope(downscaled, exact, cancel):
            if progress is not None and done:
                progress(done, total)
            for row, top in enumerate(tops):
                for col, left in enumerate(lefts):
                    stop_if_cancelled(cancel)
                    y = self.forward(read(top, top + tile_h, left, left + tile_w), exact).to("cpu", torch.float32)
                    bands.add(row, col, y[0].numpy())
                    done += 1
                    if progress is not None:
                        progress(done, total)
                first, finished = bands.finish_row(row)
                if finished.shape[1]:
                    yield first, torch.from_numpy(finished)
