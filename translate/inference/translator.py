"""Translator: a trained generator as a function on images of any size, and folder conversion.

Data contract: images are HxW or HxWxC (C = 1, 3 or 4) uint8/uint16 numpy arrays, RGB(A) order;
results have the input's dtype and height/width times the net's `scale`. Inside, nets see
(N, C, H, W) float tensors in [-1, 1].
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import glob
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from translate.checkpoint import CheckpointError, is_translate_checkpoint, load_checkpoint, load_file
from translate.data.images import IMAGE_SUFFIXES, fit_to_format, read_image, write_image
from translate.errors import Cancelled, TranslatorError
from translate.inference import normstats, tiling
from translate.inference.device import (
    PRECISIONS, auto_memory_budget, cpu_has_native_bf16, resolve_device, resolve_precision,
)
from translate.inference.tasks import Prepared, TaskAdapter, adapter_for, with_mask

log = logging.getLogger(__name__)

Mode = Literal["eval", "paper"]
MODES: tuple[str, ...] = ("eval", "paper")
# Peak activation memory of a forward pass over the largest activation it makes: measured peak
# RSS over (largest leaf-module output in fp32 bytes) was 2.1 (unet_256) to 3.4 (resnet_9blocks,
# contiguous fp32) on CPU; 3.5 keeps the estimate on the safe side.
_PEAK_OVER_LARGEST = 3.5
_MAX_BATCH = {"cpu": 8, "cuda": 32}
# Smallest padded side: a ResNet's residual blocks reflect-pad their 1/4-size maps by one pixel,
# which needs those maps to be at least 2 wide; 16 leaves room for any generator we build.
_MIN_SIDE = 16


# ---------------------------------------------------------------- loading generators
@dataclass(frozen=True)
class LoadedGenerator:
    """A generator rebuilt from a checkpoint or weights file, with what inference needs to know."""

    net: nn.Module
    spec: Any  # GeneratorSpec
    task: str
    method: str  # "pix2pix", "cyclegan" or "reference"
    net_name: str  # "g_ab", "g_ba", or "G" for reference weights
    source: Path


def resolve_source(source: str | os.PathLike, weights_dir: str | os.PathLike = "weights") -> Path:
    """A run directory, checkpoint or weights file as given; a bare NAME means weights_dir/NAME.pth."""
    path = Path(source)
    if path.exists():
        return path
    text = str(source)
    if os.sep not in text and "/" not in text and not path.suffix:
        from translate import weights

        try:
            return weights.resolve(text, weights_dir)
        except weights.WeightsError as e:
            raise TranslatorError(str(e)) from None
    raise TranslatorError(f"{source}: no such run directory, checkpoint or weights file")


def _pick_generator(nets: Mapping[str, Any], method: str, direction: str | None, path: Path) -> str:
    present = [name for name in ("g_ab", "g_ba") if name in nets]
    if not present:
        raise CheckpointError(f"{path}: checkpoint holds no generator (nets: {', '.join(nets) or 'none'})")
    if direction is not None:
        name = {"a_to_b": "g_ab", "b_to_a": "g_ba"}[direction]
        if name not in present:
            holds = ", ".join(f"{n} ({'a_to_b' if n == 'g_ab' else 'b_to_a'})" for n in present)
            raise TranslatorError(
                f"{path}: no {direction} generator in this {method} checkpoint (it holds {holds}); "
                f"drop --direction or pass the other one"
            )
        return name
    return present[0]  # CycleGAN: a_to_b by default; pix2pix: the one it trained


def load_generator(
    source: str | os.PathLike,
    *,
    direction: str | None = None,
    arch: str | None = None,
    weights_dir: str | os.PathLike = "weights",
) -> LoadedGenerator:
    """Rebuild a generator from a run directory, a translate checkpoint, a reference
    `*_net_G.pth` state dict (architecture detected, or `arch` preset), or a published NAME."""
    from translate.nets import build_net, is_generator, spec_from_dict

    if direction is not None and direction not in ("a_to_b", "b_to_a"):
        raise TranslatorError(f"direction: {direction!r} must be a_to_b or b_to_a")
    path = resolve_source(source, weights_dir)
    obj = None if path.is_dir() else load_file(path)
    if path.is_dir() or is_translate_checkpoint(obj):
        if arch is not None:
            raise TranslatorError(f"{path}: --arch is only for reference weights; a translate "
                                  "checkpoint carries its own architecture")
        ckpt = load_checkpoint(path)
        config = ckpt.get("config") or {}
        method = str(config.get("method", "pix2pix"))
        task = str(config.get("task", "custom"))
        name = _pick_generator(ckpt["nets"], method, direction, path)
        try:
            spec = spec_from_dict(ckpt["specs"][name])
            net = build_net(spec)
            net.load_state_dict(ckpt["nets"][name], strict=True)
        except KeyError:
            raise CheckpointError(f"{path}: checkpoint has weights for {name} but no spec") from None
        except (ValueError, RuntimeError) as e:
            raise CheckpointError(f"{path}: cannot rebuild {name}: {str(e).splitlines()[0]}") from e
        return LoadedGenerator(net.eval(), spec, task, method, name, path)
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise TranslatorError(f"{path}: neither a translate checkpoint nor a generator state dict")
    if direction is not None:
        raise TranslatorError(f"{path}: reference weights hold one generator; drop --direction")
    from translate.nets.reference import detect_reference_generator, load_reference_generator

    try:
        spec = spec_from_dict(arch) if arch is not None else detect_reference_generator(obj)
        if not is_generator(spec):
            raise ValueError(f"--arch {arch}: a discriminator, not a generator")
        net = load_reference_generator(obj, spec)
    except ValueError as e:
        hint = "" if arch else "; name the architecture with --arch PRESET (see `translate info presets`)"
        raise TranslatorError(f"{path}: {e}{hint}") from e
    return LoadedGenerator(net.eval(), spec, "custom", "reference", "G", path)


def activation_bytes_per_px(spec: Any) -> float:
    """Estimated peak activation bytes per input pixel of one forward pass of `spec`'s net.

    Shapes come from a pass on the meta device (no memory, no compute): the largest leaf-module
    output per input pixel, in fp32, times `_PEAK_OVER_LARGEST`.
    """
    from translate.nets import build_net

    side = tiling.round_up(64, spec.size_multiple)
    largest = 0

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.numel())

    with torch.device("meta"):
        net = build_net(spec)
    for module in net.modules():
        if not any(True for _ in module.children()):
            module.register_forward_hook(hook)
    with torch.inference_mode():
        net(torch.empty(1, spec.in_channels, side, side, device="meta"))
    return _PEAK_OVER_LARGEST * 4.0 * largest / (side * side)


def reflect_pad(x: torch.Tensor, pad: tiling.Padding) -> torch.Tensor:
    """Reflect-pad (N, C, H, W) by `pad`, repeating the reflection when a pad exceeds the image
    (reflect alone allows at most size - 1); a 1-pixel side can only be replicated."""
    top, bottom, left, right = pad.top, pad.bottom, pad.left, pad.right
    while top or bottom or left or right:
        height, width = x.shape[-2:]
        if height == 1 or width == 1:
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        t, b = min(top, height - 1), min(bottom, height - 1)
        l, r = min(left, width - 1), min(right, width - 1)
        x = F.pad(x, (l, r, t, b), mode="reflect")
        top, bottom, left, right = top - t, bottom - b, left - l, right - r
    return x


# ---------------------------------------------------------------- the Translator
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

    def __init__(
        self,
        net: nn.Module,
        spec: Any,
        *,
        task: str = "custom",
        device: str | torch.device = "auto",
        tile_size: int | None = None,
        overlap_px: int | None = None,
        precision: str = "auto",
        mode: str = "eval",
        channels_last: bool | None = None,
        memory_budget_bytes: int | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        """Take ownership of `net` (built from `spec`) and set it up for inference on `device`."""
        if mode not in MODES:
            raise TranslatorError(f"mode: {mode!r} must be one of {', '.join(MODES)}")
        self.spec = spec
        self.task = task
        self.mode = mode
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.auto_precision = precision == "auto"
        self.scale = int(getattr(spec, "scale", 1))
        self.size_multiple = int(spec.size_multiple)
        self.info = dict(info or {})
        try:
            self.adapter: TaskAdapter = adapter_for(task, spec)
        except ValueError as e:
            raise TranslatorError(f"{self.info.get('source', 'net')}: {e}") from None
        if tile_size is not None:
            if tile_size < self.size_multiple or tile_size % self.size_multiple:
                suggestion = max(self.size_multiple, tile_size // self.size_multiple * self.size_multiple)
                raise TranslatorError(
                    f"tile_size: {tile_size} must be a multiple of {self.size_multiple} for this "
                    f"{spec.kind} generator; use e.g. {suggestion}"
                )
        self.tile_size = tile_size
        self.overlap_px = overlap_px
        if overlap_px is not None and overlap_px < 0:
            raise TranslatorError(f"overlap_px: must be >= 0, got {overlap_px}")
        self.memory_budget_bytes = int(memory_budget_bytes or auto_memory_budget(self.device))
        self.bytes_per_px = activation_bytes_per_px(spec)

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
        net = net.to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net

    # ------------------------------------------------------------ construction
    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        device: str | torch.device = "auto",
        direction: str | None = None,
        tile_size: int | None = None,
        overlap_px: int | None = None,
        precision: str = "auto",
        arch: str | None = None,
        mode: str = "eval",
        weights_dir: str | os.PathLike = "weights",
        memory_budget_bytes: int | None = None,
    ) -> Translator:
        """Load a run directory, checkpoint, reference `*_net_G.pth` or published NAME (see
        `load_generator`); the other arguments are runtime choices (see the class)."""
        loaded = load_generator(path, direction=direction, arch=arch, weights_dir=weights_dir)
        info = {"source": str(loaded.source), "method": loaded.method, "net": loaded.net_name}
        translator = cls(
            loaded.net, loaded.spec, task=loaded.task, device=device, tile_size=tile_size,
            overlap_px=overlap_px, precision=precision, mode=mode,
            memory_budget_bytes=memory_budget_bytes, info=info,
        )
        log.info("loaded %s (%s %s, %s) on %s, precision %s, mode %s", loaded.source, loaded.method,
                 loaded.net_name, loaded.spec.kind, translator.device, translator.precision, mode)
        return translator

    from_checkpoint = load

    # ------------------------------------------------------------ images
    def __call__(self, image: np.ndarray, *, cancel: threading.Event | None = None) -> np.ndarray:
        """Translate one HxW / HxWxC uint8/uint16 image; same dtype, size times `scale`.

        Once `cancel` is set, the next net pass (each tile, when tiling) raises `Cancelled`.
        """
        prepared = self.prepare(image)
        output = self.run_net(prepared.tensor[None], exact=self.wants_exact(prepared), cancel=cancel)[0]
        return self.finish(output, prepared)

    def prepare(self, image: np.ndarray) -> Prepared:
        """The task adapter's net input for `image` (thread-safe, CPU only)."""
        return self.adapter.prepare(image)

    def finish(self, output: torch.Tensor, prepared: Prepared) -> np.ndarray:
        """The task adapter's image for one net output (C, s*H, s*W) in [-1, 1]."""
        return self.adapter.finish(output, prepared)

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
        image = self(read_image(src))
        write_image(dst, fit_to_format(image, dst.suffix))
        return dst

    # ------------------------------------------------------------ tensors
    def max_batch(self, height: int, width: int) -> int:
        """How many height x width images one forward call should hold: what fits the memory
        budget and, on CPU, what pays off (see below), at most 8 on CPU and 32 on GPU."""
        pad = tiling.padding_for(height, width, self.size_multiple, minimum=_MIN_SIDE)
        per_image = (height + pad.top + pad.bottom) * (width + pad.left + pad.right) * self.bytes_per_px
        limit = min(int(self.memory_budget_bytes // max(per_image, 1.0)), _MAX_BATCH.get(self.device.type, 8))
        if self.device.type == "cpu":
            # Batching pays on CPU when the weights outweigh one image's activations (unet_256 at
            # 256 px: 2.5x faster at 8 than at 1, its deep 1x1..8x8 levels are weight-bound) and
            # costs when activations fall out of cache (resnet_9blocks at 256 px: 1 is fastest).
            limit = min(limit, int(self.param_bytes // max(per_image, 1.0)))
        return max(1, limit)

    def _autocast(self, exact: bool) -> contextlib.AbstractContextManager:
        if exact or self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _forward(self, x: torch.Tensor, exact: bool) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast(exact):
            return self.net(x).float()

    def _tile_plan(self, height: int, width: int, batch: int) -> tuple[int, int] | None:
        """(tile height, tile width) for a padded height x width image, or None to run it whole."""
        if self.tile_size is not None:
            if max(height, width) <= self.tile_size:
                return None
            return min(self.tile_size, height), min(self.tile_size, width)
        if batch * height * width * self.bytes_per_px <= self.memory_budget_bytes:
            return None
        max_pixels = self.memory_budget_bytes / self.bytes_per_px
        overlap = self.overlap_px if self.overlap_px is not None else tiling.default_overlap(int(max_pixels**0.5))
        tile = tiling.plan_tiles(height, width, max_pixels=max_pixels, overlap_px=overlap,
                                 multiple=self.size_multiple)
        return None if tile == (height, width) else tile

    def run_net(self, x: torch.Tensor, *, exact: bool = False,
                cancel: threading.Event | None = None) -> torch.Tensor:
        """(N, C_in, H, W) float in [-1, 1], any H and W -> (N, C_out, s*H, s*W) float32 on the CPU.

        `exact` runs in fp32 whatever the precision setting; `cancel` as in `__call__`. Thread-safe.
        """
        n, _, height, width = x.shape
        pad = tiling.padding_for(height, width, self.size_multiple, minimum=_MIN_SIDE)
        s = self.scale
        with torch.inference_mode():
            padded = reflect_pad(x.to(self.device, torch.float32, non_blocking=True), pad)
            tile = self._tile_plan(padded.shape[-2], padded.shape[-1], n)
            if tile is None:
                _stop_if_cancelled(cancel)
                y = self._forward(padded, exact)
            else:
                y = torch.cat([self._run_tiled(padded[i : i + 1], tile, exact, cancel) for i in range(n)])
            y = y[:, :, pad.top * s : (pad.top + height) * s, pad.left * s : (pad.left + width) * s]
            return y.to("cpu", torch.float32)

    def _run_tiled(self, x: torch.Tensor, tile: tuple[int, int], exact: bool,
                   cancel: threading.Event | None = None) -> torch.Tensor:
        """One padded image (1, C, Hp, Wp) as overlapping tiles; returns (1, C_out, s*Hp, s*Wp) on CPU."""
        _, _, height, width = x.shape
        tile_h, tile_w = tile
        overlap = self.overlap_px if self.overlap_px is not None else tiling.default_overlap(max(tile))
        # Aligned starts give every tile the stride-2 sampling grid of the whole image, so tiles
        # agree with a whole-image pass away from their borders.
        m, s = self.size_multiple, self.scale
        tops = tiling.tile_starts(height, tile_h, tiling.clamp_overlap(overlap, tile_h, m), align=m)
        lefts = tiling.tile_starts(width, tile_w, tiling.clamp_overlap(overlap, tile_w, m), align=m)
        row_weights = [torch.from_numpy(w) for w in tiling.axis_weights(tops, tile_h, scale=s)]
        col_weights = [torch.from_numpy(w) for w in tiling.axis_weights(lefts, tile_w, scale=s)]
        stats_scope: contextlib.AbstractContextManager = contextlib.nullcontext()
        if self._norm_context is not None:
            _stop_if_cancelled(cancel)
            # One pass over the whole image (downscaled to fit the budget) measures every
            # instance-norm layer; all tiles then normalise alike, so no tile-to-tile colour shift.
            stats = normstats.record_stats(
                lambda z: self._forward(z, exact), self._norm_context, x,
                max_pixels=self.memory_budget_bytes / self.bytes_per_px, multiple=self.size_multiple,
            )
            stats_scope = self._norm_context.frozen(stats)
        log.debug("tiling %dx%d with %d tiles of %dx%d (overlap >= %d px)",
                  height, width, len(tops) * len(lefts), tile_h, tile_w, overlap)
        out = torch.zeros(1, self.spec.out_channels, height * s, width * s, dtype=torch.float32)
        with stats_scope:
            for top, wy in zip(tops, row_weights):
                for left, wx in zip(lefts, col_weights):
                    _stop_if_cancelled(cancel)
                    y = self._forward(x[:, :, top : top + tile_h, left : left + tile_w], exact)
                    y = y.to("cpu", torch.float32)
                    y *= wy[:, None] * wx[None, :]
                    out[:, :, top * s : (top + tile_h) * s, left * s : (left + tile_w) * s] += y
        return out

    def describe(self) -> str:
        """One line: source, net, device, precision, mode."""
        source = self.info.get("source", "net")
        return (f"{source} [{self.info.get('method', '?')} {self.info.get('net', '')} {self.spec.kind}] "
                f"on {self.device}, {self.precision}, {self.mode} mode")


# ---------------------------------------------------------------- folders
@dataclass
class ConvertReport:
    """What `convert_folder` did; inputs are listed by their source path."""

    converted: list[Path] = field(default_factory=list)
    skipped_existing: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing failed (already-converted files count as done)."""
        return not self.failed

    @property
    def images_per_s(self) -> float:
        return len(self.converted) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ConvertEvent:
    """One finished input, for progress callbacks. status: converted, skipped_existing or failed."""

    path: Path
    status: str
    reason: str
    done: int
    total: int


@dataclass(frozen=True)
class ConvertJob:
    src: Path
    dst: Path
    mask: Path | None = None  # inpainting: hole mask (white = hole) for this input


def parse_shard(text: str) -> tuple[int, int]:
    """"i/N" -> (i, N), with 0 <= i < N: this process converts the i-th of every N inputs."""
    index, sep, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = None
    if not sep or shard is None or shard[1] < 1 or not 0 <= shard[0] < shard[1]:
        raise TranslatorError(f"--shard {text!r}: expected i/N with 0 <= i < N, e.g. 0/4")
    return shard


def shard_from_env(environ: Mapping[str, str]) -> tuple[int, int] | None:
    """(RANK, WORLD_SIZE) as set by torchrun, or None when unset or a single process."""
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    return parse_shard(f"{environ['RANK']}/{environ['WORLD_SIZE']}") if int(environ["WORLD_SIZE"]) > 1 else None


def shard_items(items: Sequence[Any], shard: tuple[int, int] | None) -> list[Any]:
    """The i-th of every N items (items in a fixed order, e.g. sorted relative paths)."""
    if shard is None:
        return list(items)
    index, count = shard
    return list(items[index::count])


def _output_suffix(format: str | None) -> str | None:
    if format is None:
        return None
    suffix = "." + format.lower().lstrip(".")
    if suffix not in IMAGE_SUFFIXES:
        raise TranslatorError(f"format: {format!r} is not one of {', '.join(sorted(s[1:] for s in IMAGE_SUFFIXES))}")
    return suffix


def _walk(root: Path, skip: Path | None) -> Iterator[Path]:
    """Files under `root`, hidden ones (and `skip`, an output folder inside it) left out."""
    for folder, dirs, files in os.walk(root):
        folder_path = Path(folder)
        dirs[:] = [d for d in dirs if not d.startswith(".")
                   and (skip is None or (folder_path / d).resolve() != skip)]
        for name in files:
            if not name.startswith("."):
                yield folder_path / name


def plan_conversion(
    src: str | os.PathLike, dst: str | os.PathLike, *, format: str | None = None,
    shard: tuple[int, int] | None = None,
) -> tuple[list[ConvertJob], list[tuple[Path, str]]]:
    """(jobs, failures) for converting `src` (a file, or a folder walked recursively) into `dst`.

    The output tree mirrors the input tree and keeps file names (suffix replaced by `format`).
    Inputs are sorted by relative path before sharding, so shards are disjoint and stable.
    Files that are not images, and second inputs mapping to an output already taken, fail.
    """
    src, dst = Path(src), Path(dst)
    suffix = _output_suffix(format)
    if not src.exists():
        raise TranslatorError(f"{src}: no such file or folder")
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise TranslatorError(f"{dst}: is a file; the output of a folder must be a folder")
        resolved_dst = dst.resolve()
        skip = resolved_dst if resolved_dst != src.resolve() else None
        files = sorted(_walk(src, skip), key=lambda p: p.relative_to(src).as_posix())
        pairs = [(f, dst / f.relative_to(src)) for f in files]
    else:
        if dst.suffix.lower() in IMAGE_SUFFIXES and not dst.is_dir():
            if suffix is not None and dst.suffix.lower() != suffix:
                raise TranslatorError(f"{dst}: output suffix contradicts format {format!r}")
            pairs = [(src, dst)]
            suffix = None
        else:
            pairs = [(src, dst / src.name)]
    jobs: list[ConvertJob] = []
    failures: list[tuple[Path, str]] = []
    taken: dict[Path, Path] = {}
    for source, target in shard_items(pairs, shard):
        if source.suffix.lower() not in IMAGE_SUFFIXES:
            failures.append((source, f"not an image (suffix {source.suffix or '(none)'!r})"))
            continue
        if suffix is not None:
            target = target.with_suffix(suffix)
        key = Path(os.path.normcase(target.resolve()))
        if key in taken:
            failures.append((source, f"output {target} would also be written from {taken[key]}"))
            continue
        taken[key] = source
        jobs.append(ConvertJob(source, target))
    return jobs, failures


def _reason(error: BaseException, path: Path) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _read(translator: Translator, job: ConvertJob) -> Prepared:
    image = read_image(job.src)
    if job.mask is not None:
        image = with_mask(image, read_image(job.mask))
    return translator.prepare(image)


def _find_mask(mask_dir: Path, relative: Path) -> Path | None:
    """The mask for an input: same relative path below `mask_dir`, any image suffix."""
    folder = mask_dir / relative.parent
    for candidate in sorted(folder.glob(f"{glob.escape(relative.stem)}.*")) if folder.is_dir() else []:
        if candidate.suffix.lower() in IMAGE_SUFFIXES:
            return candidate
    return None


def _write(translator: Translator, job: ConvertJob, output: torch.Tensor, prepared: Prepared,
           overwrite: bool) -> str:
    if job.dst.exists() and not overwrite:  # another process got there first
        return "skipped_existing"
    image = translator.finish(output, prepared)
    write_image(job.dst, fit_to_format(image, job.dst.suffix))
    return "converted"


def convert_folder(
    translator: Translator,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    overwrite: bool = False,
    format: str | None = None,
    shard: tuple[int, int] | None = None,
    progress: Callable[[ConvertEvent], None] | None = None,
    workers: int = 2,
    max_batch: int | None = None,
    mask_dir: str | os.PathLike | None = None,
) -> ConvertReport:
    """Convert an image file or a folder tree into `dst`, carrying on past bad files.

    Every file in the tree is an input; hidden files and folders (names starting with ".",
    such as our own temporary files) are left out, and so is `dst` when it lies inside `src`.
    Files that are not images (by suffix), unreadable or corrupt fail with a reason and the rest
    carry on. Existing outputs are kept (and count as done) unless `overwrite`, so a re-run resumes.
    Outputs are written atomically. `format` (png, jpg, ...) replaces the input's format;
    `shard=(i, N)` converts only the i-th of every N inputs. `workers` threads decode and encode
    while the net runs; same-size images are batched (at most `max_batch`, default from the
    memory budget). `progress` is called in this thread once per input. `mask_dir` (inpainting)
    holds a hole mask per input under the same relative path and name (any image suffix).
    """
    start = time.perf_counter()
    jobs, failures = plan_conversion(src, dst, format=format, shard=shard)
    report = ConvertReport()
    total = len(jobs) + len(failures)

    def record(path: Path, status: str, reason: str = "") -> None:
        if status == "converted":
            report.converted.append(path)
        elif status == "skipped_existing":
            report.skipped_existing.append(path)
        else:
            report.failed.append((path, reason))
            log.warning("%s: %s", path, reason)
        if progress is not None:
            done = len(report.converted) + len(report.skipped_existing) + len(report.failed)
            progress(ConvertEvent(path, status, reason, done, total))

    for path, reason in failures:
        record(path, "failed", reason)
    todo = []
    src_root = Path(src) if Path(src).is_dir() else Path(src).parent
    for job in jobs:
        if job.dst.exists() and not overwrite:
            record(job.src, "skipped_existing")
            continue
        if mask_dir is not None:
            job = dataclasses.replace(job, mask=_find_mask(Path(mask_dir), job.src.relative_to(src_root)))
            if job.mask is None:
                record(job.src, "failed", f"no mask for it in {mask_dir}")
                continue
        todo.append(job)
    if todo:
        _run_jobs(translator, todo, record, overwrite=overwrite, workers=max(1, workers), max_batch=max_batch)
    report.seconds = time.perf_counter() - start
    return report


def _run_jobs(translator: Translator, jobs: list[ConvertJob], record: Callable[..., None], *,
              overwrite: bool, workers: int, max_batch: int | None) -> None:
    """Decode ahead on worker threads, batch same-size inputs through the net, encode behind."""
    lookahead = workers + 2 * (max_batch or 4)
    queue = iter(jobs)
    reads: collections.deque[tuple[ConvertJob, Future]] = collections.deque()
    writes: collections.deque[tuple[ConvertJob, Future]] = collections.deque()

    def collect_writes(block: bool) -> None:
        while writes and (block or writes[0][1].done()):
            job, future = writes.popleft()
            try:
                record(job.src, future.result())
            except Exception as e:  # carry on: report this file, convert the rest
                log.debug("writing %s failed", job.dst, exc_info=True)
                record(job.src, "failed", _reason(e, job.dst))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="translate-io") as pool:

        def fill() -> None:
            while len(reads) < lookahead:
                job = next(queue, None)
                if job is None:
                    return
                reads.append((job, pool.submit(_read, translator, job)))

        def flush(batch: list[tuple[ConvertJob, Prepared]], exact: bool) -> None:
            try:
                outputs = translator.run_net(torch.stack([p.tensor for _, p in batch]), exact=exact)
            except Exception as e:
                log.debug("translating a batch failed", exc_info=True)
                for job, _ in batch:
                    record(job.src, "failed", f"translation failed: {_reason(e, job.src)}")
                return
            for (job, prepared), output in zip(batch, outputs):
                writes.append((job, pool.submit(_write, translator, job, output, prepared, overwrite)))
            if len(writes) > lookahead:
                collect_writes(block=True)

        batch: list[tuple[ConvertJob, Prepared]] = []
        batch_key: tuple = ()
        fill()
        while reads:
            job, future = reads.popleft()
            try:
                prepared = future.result()
            except Exception as e:
                log.debug("reading %s failed", job.src, exc_info=True)
                record(job.src, "failed", _reason(e, job.src))
                fill()
                continue
            fill()
            exact = translator.wants_exact(prepared)
            key = (tuple(prepared.tensor.shape), exact)
            height, width = prepared.tensor.shape[-2:]
            limit = max_batch or translator.max_batch(height, width)
            if batch and (key != batch_key or len(batch) >= limit):
                flush(batch, batch_key[1])
                batch = []
            batch, batch_key = batch + [(job, prepared)], key
            collect_writes(block=False)
        if batch:
            flush(batch, batch_key[1])
        collect_writes(block=True)
