"""Tiled conversion in row bands: the same bytes as a straightforward full-buffer blend, and no
full-size float output (peak memory within the budget plus the output image)."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from translate import Translator
from translate.inference import tiling
from translate.inference.device import _LiveTensorBytes
from translate.inference.runner import reflect_pad
from translate.nets import ResnetSpec, RrdbnetSpec, build_net

X1 = ResnetSpec(base_channels=4, n_blocks=1, norm="batch")  # running statistics: tiles are independent
X4 = RrdbnetSpec(base_channels=8, n_blocks=1, grow_channels=4)  # a published-style x4 net, [0, 1] range
INPAINT = ResnetSpec(in_channels=4, out_channels=3, base_channels=4, n_blocks=1, norm="batch")


def make(spec, task: str = "custom", **options) -> Translator:
    torch.manual_seed(0)
    net = build_net(spec)
    for module in net.modules():  # non-trivial running statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return Translator.from_net(net, spec, task=task, device="cpu", precision="fp32", channels_last=False, **options)


def full_buffer_blend(t: Translator, image: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """The straightforward way: every tile's weighted output added into one float buffer of the
    whole padded output, cropped and finished at the end."""
    prepared = t.prepare(image)
    x = prepared.tensor[None]
    height, width = x.shape[-2:]
    m, s = t.size_multiple, t.scale
    pad = tiling.padding_for(height, width, m, minimum=t.min_side)
    padded = reflect_pad(x, pad)
    tops = tiling.tile_starts(padded.shape[-2], tile, tiling.clamp_overlap(overlap, tile, m), align=m)
    lefts = tiling.tile_starts(padded.shape[-1], tile, tiling.clamp_overlap(overlap, tile, m), align=m)
    out = torch.zeros(1, t.spec.out_channels, padded.shape[-2] * s, padded.shape[-1] * s)
    with torch.inference_mode():
        for top, wy in zip(tops, tiling.axis_weights(tops, tile, scale=s)):
            for left, wx in zip(lefts, tiling.axis_weights(lefts, tile, scale=s)):
                y = t.net(padded[:, :, top : top + tile, left : left + tile])
                out[:, :, top * s : (top + tile) * s, left * s : (left + tile) * s] += \
                    y * torch.from_numpy(wy[:, None] * wx[None, :])
    out = out[:, :, pad.top * s : (pad.top + height) * s, pad.left * s : (pad.left + width) * s]
    return t.finish(out[0], prepared)


def with_alpha(rgb: np.ndarray, alpha_from: np.ndarray) -> np.ndarray:
    return np.concatenate([rgb, alpha_from[:, :, :1]], axis=2)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("net", ["x1", "x4_rgba", "inpaint"])
def test_row_bands_give_the_bytes_of_a_full_buffer_blend(net, bits, photo):
    spec, task, tile, size = {"x1": (X1, "custom", 48, (150, 110)), "x4_rgba": (X4, "custom", 32, (77, 53)),
                              "inpaint": (INPAINT, "inpaint", 48, (150, 110))}[net]
    image = photo("astronaut", size)
    if net != "x1":  # x4: alpha goes around the net; inpaint: transparent pixels are holes
        image = with_alpha(image, photo("camera", size))
    if bits == 16:  # every 16-bit level in use, not just multiples of 257
        noise = np.random.default_rng(0).integers(0, 257, image.shape)
        image = (image.astype(np.int64) * 257 + noise).clip(0, 65535).astype(np.uint16)
    overlap = tile // 2
    t = make(spec, task, tile_size=tile, overlap_px=overlap)
    padded_h = size[0] + sum(tiling.pad_amounts(size[0], t.size_multiple, minimum=t.min_side))
    assert len(tiling.tile_starts(padded_h, tile, overlap, align=t.size_multiple)) >= 3  # several tile rows
    got = t(image)
    expected = full_buffer_blend(t, image, tile, overlap)
    assert got.dtype == image.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_tiled_x4_peak_memory_is_the_budget_plus_the_output_image(photo):
    image = photo("coffee", (96, 160))
    budget = 1_500_000
    t = make(X4, memory_budget_bytes=budget)
    full_float = 4 * 3 * (4 * 96) * (4 * 160)  # what the whole float output would take
    assert full_float > budget and t.runs_tiled(96, 160)
    tensors = _LiveTensorBytes()  # every torch tensor made (tiles, activations), views counted once
    with tensors:
        out = t(image)
    tracemalloc.start()  # every numpy array (the row band, the output image) and Python object made
    try:
        assert np.array_equal(t(image), out)
        numpy_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (384, 640, 3)
    # Torch side (tile inputs, activations, tile outputs, finishing) and numpy side (the row band,
    # finished rows) each stay within the budget; a whole float output alone would not.
    assert tensors.peak <= budget and numpy_peak - out.nbytes <= budget < full_float


@pytest.mark.parametrize("width", [256, 4096, 16384])
def test_planned_tiles_and_their_band_fit_the_budget(width):
    bytes_per_px, budget = 14_000.0, 1.5 * 2**30  # about a full-size x4 RRDBNet on a CPU budget
    row_cost = 4 * 3 * 16 * width / bytes_per_px  # the float band's bytes per tile row, in pixels
    tile_h, tile_w = tiling.plan_tiles(width, width, max_pixels=budget / bytes_per_px, overlap_px=32,
                                       multiple=4, row_cost=row_cost)
    assert tile_h * (tile_w + row_cost) * bytes_per_px <= budget
    assert tile_h * tile_w * bytes_per_px >= budget / 8  # the band does not starve the tiles
