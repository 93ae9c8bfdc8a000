"""Run a `translate export` ONNX model the way a photo-editor plugin would: ONNX Runtime, numpy
and Pillow only (no torch, no translate). Reads the model's contract from its metadata, converts
the image to the net's channels and [-1, 1], reflect-pads it to the size multiple, runs it whole
or as overlapping tiles blended with a smooth window, crops the padding off and converts back.

    python examples/onnx_plugin.py model.onnx photo.jpg out.png [--tile-size 512] [--overlap 64]

For images that fit in memory this reproduces `translate convert` (to within one grey level).
See examples/README.md for the contract.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

METADATA_KEY = "translate.json"
# Tasks whose net maps image to image. Others (colorize, inpaint) wrap the net in task-specific
# steps that live in translate's task adapters; run those with translate itself.
GENERIC_TASKS = ("custom", "sketch", "superres", "restore")
_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


# ---------------------------------------------------------------- padding and tiling maths
def pad_amounts(length: int, multiple: int, minimum: int) -> tuple[int, int]:
    """(before, after) reflect padding bringing `length` to a multiple of `multiple` (and at least
    `minimum`), split evenly with the odd pixel after, as translate does."""
    total = -(-max(length, minimum) // multiple) * multiple - length
    return total // 2, total - total // 2


def tile_starts(length: int, tile: int, overlap: int, align: int) -> list[int]:
    """Tile offsets covering [0, length): multiples of `align`, evenly spread, overlapping by
    at least `overlap`; the first starts at 0 and the last ends at `length`."""
    if length <= tile:
        return [0]
    max_steps = max(1, (tile - overlap) // align)
    span_steps = (length - tile) // align
    gaps = -(-span_steps // max_steps)
    return [round(k * span_steps / gaps) * align for k in range(gaps + 1)]


def blend_ramp(length: int) -> np.ndarray:
    """Rising sin^2 ramp in (0, 1); a ramp and its mirror sum to 1."""
    i = np.arange(length, dtype=np.float64)
    return (np.sin(0.5 * np.pi * (i + 0.5) / max(length, 1)) ** 2).astype(np.float32)


def axis_weights(starts: list[int], size: int) -> list[np.ndarray]:
    """Per-tile blend weights along one axis, normalised so overlapping tiles sum to 1."""
    windows = []
    for index, start in enumerate(starts):
        w = np.ones(size, dtype=np.float32)
        if index > 0:
            ramp = min(starts[index - 1] + size - start, size // 2)
            if ramp > 0:
                w[:ramp] = blend_ramp(ramp)
        if index < len(starts) - 1:
            ramp = min(start + size - starts[index + 1], size // 2)
            if ramp > 0:
                w[size - ramp:] = blend_ramp(ramp)[::-1]
        windows.append(w)
    total = np.zeros(starts[-1] + size, dtype=np.float64)
    for start, w in zip(starts, windows):
        total[start:start + size] += w
    return [(w / total[s:s + size]).astype(np.float32) for s, w in zip(starts, windows)]


# ---------------------------------------------------------------- the plugin
class OnnxTranslator:
    """An exported translate generator as a function on HxWxC uint8/uint16 RGB(A) arrays."""

    def __init__(self, path: str, *, tile_size: int | None = 1024, overlap_px: int | None = None) -> None:
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        metadata = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in metadata:
            raise ValueError(f"{path}: no '{METADATA_KEY}' metadata; not a translate export")
        self.contract = c = json.loads(metadata[METADATA_KEY])
        if c["task"] not in GENERIC_TASKS:
            raise ValueError(f"{path}: task {c['task']!r} needs translate's own pre/post-processing; "
                             f"this plugin runs {', '.join(GENERIC_TASKS)}")
        self.in_channels, self.out_channels = c["input"]["channels"], c["output"]["channels"]
        self.multiple, self.min_side, self.scale = c["size_multiple"], c["min_side"], c["scale"]
        self.input_name, self.output_name = c["input"]["name"], c["output"]["name"]
        # Tiles must be multiples of the size multiple; overlap as translate's default (tile/8, >= 32).
        self.tile_size = None if tile_size is None else max(self.multiple, tile_size // self.multiple * self.multiple)
        self.overlap_px = overlap_px
        self.instance_norm = c["spec"].get("norm") == "instance"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        squeeze = image.ndim == 2
        if squeeze:
            image = image[:, :, None]
        peak = _MAX[image.dtype]
        alpha = None
        if image.shape[2] in (2, 4) and image.shape[2] != self.in_channels:
            image, alpha = image[:, :, :-1], image[:, :, -1:]  # carried around the net untouched
        x = to_channels(image, self.in_channels).astype(np.float32).transpose(2, 0, 1)
        x = x * np.float32(2.0 / peak) - np.float32(1.0)  # [-1, 1], the net's range
        height, width = x.shape[1:]
        top, bottom = pad_amounts(height, self.multiple, self.min_side)
        left, right = pad_amounts(width, self.multiple, self.min_side)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right)), mode="reflect")[None]
        y = self._run(x)[0]
        s = self.scale
        y = y[:, top * s:(top + height) * s, left * s:(left + width) * s]
        # Back to pixels exactly as translate rounds: clip, scale, round half to even.
        out = np.rint((np.clip(y, -1.0, 1.0) + np.float32(1.0)) * np.float32(peak / 2.0))
        out = out.astype(image.dtype).transpose(1, 2, 0)
        if alpha is not None:
            alpha = np.repeat(np.repeat(alpha, s, axis=0), s, axis=1)
            return np.concatenate([to_channels(out, 3) if out.shape[2] == 1 else out, alpha], axis=2)
        return out[:, :, 0] if squeeze and out.shape[2] == 1 else out

    def _net(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(x)})[0]

    def _run(self, x: np.ndarray) -> np.ndarray:
        """(1, C, Hp, Wp) padded -> (1, C_out, s*Hp, s*Wp); tiled when larger than the tile size."""
        _, _, height, width = x.shape
        tile = self.tile_size
        if tile is None or max(height, width) <= tile:
            return self._net(x)
        if self.instance_norm:
            print("warning: tiling an instance-norm net gives each tile its own statistics (seams "
                  "may show); translate itself measures them once over the whole image", file=sys.stderr)
        overlap = self.overlap_px if self.overlap_px is not None else min(max(32, tile // 8), tile // 2)
        overlap = min(overlap, tile - self.multiple)
        tops = tile_starts(height, tile, overlap, self.multiple)
        lefts = tile_starts(width, tile, overlap, self.multiple)
        tile_h, tile_w, s = min(tile, height), min(tile, width), self.scale
        row_weights = axis_weights([t * s for t in tops], tile_h * s)
        col_weights = axis_weights([l * s for l in lefts], tile_w * s)
        out = np.zeros((1, self.out_channels, height * s, width * s), dtype=np.float32)
        for top, wy in zip(tops, row_weights):
            for left, wx in zip(lefts, col_weights):
                y = self._net(x[:, :, top:top + tile_h, left:left + tile_w])
                out[:, :, top * s:(top + tile_h) * s, left * s:(left + tile_w) * s] += y * (wy[:, None] * wx[None, :])
        return out


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """HxWxC -> HxWx`channels`: gray replicated to RGB, RGB to ITU-R 601 luma, alpha dropped."""
    have = image.shape[2]
    if have == channels:
        return image
    if have == 1 and channels == 3:
        return np.repeat(image, 3, axis=2)
    if have in (3, 4) and channels == 1:
        luma = image[:, :, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.rint(luma)[:, :, None].astype(image.dtype)
    if have == 4 and channels == 3:
        return image[:, :, :3]
    if have == 3 and channels == 4:
        return np.concatenate([image, np.full(image.shape[:2] + (1,), _MAX[image.dtype], image.dtype)], axis=2)
    raise ValueError(f"cannot convert {have} channel(s) to {channels}")


# ---------------------------------------------------------------- file I/O (Pillow)
def read_image(path: str) -> np.ndarray:
    """An image file as HxWxC uint8 (uint16 for 16-bit gray) RGB(A), EXIF orientation applied."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode.startswith("I;16"):
            return np.asarray(im, dtype=np.uint16)[:, :, None]
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif im.mode not in ("L", "LA", "RGB", "RGBA"):
            im = im.convert("RGB")
        array = np.asarray(im)
    return array[:, :, None] if array.ndim == 2 else array


def write_image(path: str, image: np.ndarray) -> None:
    """HxW(xC) uint8/uint16 -> file; 16-bit colour becomes 8-bit (Pillow writes 16-bit gray only)."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype == np.uint16 and image.ndim == 2:
        Image.fromarray(image).save(path)
        return
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    Image.fromarray(image).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="model.onnx from `translate export`")
    parser.add_argument("input", help="image file")
    parser.add_argument("output", help="output image file (format from the suffix)")
    parser.add_argument("--tile-size", type=int, default=1024, help="tile larger images (1024; 0 = never)")
    parser.add_argument("--overlap", type=int, default=None, help="tile overlap in pixels (tile/8, >= 32)")
    args = parser.parse_args(argv)
    plugin = OnnxTranslator(args.model, tile_size=args.tile_size or None, overlap_px=args.overlap)
    c = plugin.contract
    print(f"{args.model}: {c['task']} {c['direction'] or ''} ({c['spec']['kind']}, {c['mode']} mode), "
          f"{c['input']['channels']} -> {c['output']['channels']} channels, x{c['scale']}")
    write_image(args.output, plugin(read_image(args.input)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
