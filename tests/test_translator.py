"""Translator: any-size images, tiling with whole-image norm statistics, alpha, 16 bits, sources, threads."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from translate import Translator
from translate.errors import Cancelled, TranslatorError, TranslateError
from translate.nets import ResnetSpec, UnetSpec, build_net
from translate.tasks import get_task

RESNET = ResnetSpec(base_channels=8, n_blocks=2)  # instance norm, the CycleGAN default
UNET = UnetSpec(base_channels=8, num_downs=5)  # batch norm + dropout, the pix2pix default


def make_net(spec, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_net(spec)


def translator(spec, seed: int = 0, **kwargs) -> Translator:
    kwargs.setdefault("device", "cpu")
    kwargs.setdefault("precision", "fp32")
    return Translator.from_net(make_net(spec, seed), spec, **kwargs)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    peak = float(np.iinfo(a.dtype).max)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


@pytest.mark.parametrize("spec", [RESNET, UNET], ids=["resnet", "unet"])
def test_odd_sizes_come_back_at_exactly_the_input_size(spec, photo):
    t = translator(spec)
    for image in (photo("coffee", (333, 517)), photo("chelsea", (37, 61)), photo("astronaut", (5, 3))):
        out = t(image)
        assert out.shape == image.shape and out.dtype == np.uint8
    gray = photo("camera", (41, 29))[:, :, 0]  # HxW into a 3-channel net: replicated, RGB out
    assert t(gray).shape == (41, 29, 3)
    assert t(np.zeros((1, 1, 3), np.uint8)).shape == (1, 1, 3)


def test_one_channel_net_keeps_hxw_layout(photo):
    spec = ResnetSpec(in_channels=1, out_channels=1, base_channels=4, n_blocks=1)
    t = translator(spec)
    assert t(photo("camera", (33, 35))[:, :, 0]).shape == (33, 35)
    assert t(photo("coffee", (33, 35))).shape == (33, 35, 1)  # RGB in -> luma -> one channel


def test_superres_net_scales_output_and_alpha(photo):
    spec = ResnetSpec(base_channels=4, n_blocks=1, upscale=2)
    t = translator(spec)
    rgba = np.concatenate([photo("coffee", (45, 51)), photo("camera", (45, 51))], axis=2)
    out = t(rgba)
    assert out.shape == (90, 102, 4)
    np.testing.assert_array_equal(out[::2, ::2, 3], rgba[:, :, 3])  # alpha enlarged by repetition


def test_tiled_output_matches_whole_image_for_instance_norm(photo):
    image = photo("coffee", (333, 517))
    whole = translator(RESNET)(image)
    tiled_t = translator(RESNET, tile_size=192, overlap_px=48)  # 2 x 3 tiles
    tiled = tiled_t(image)
    value = psnr(tiled, whole)
    assert value >= 40.0
    # The whole-image statistics are what makes it work: per-tile statistics shift colours.
    context, tiled_t.runner.norm_context = tiled_t.runner.norm_context, None
    try:
        per_tile = psnr(tiled_t(image), whole)
    finally:
        tiled_t.runner.norm_context = context
    assert per_tile < value - 10


def test_tiled_output_matches_whole_image_for_batch_norm_and_superres(photo):
    image = photo("chelsea", (150, 250))
    assert psnr(translator(UNET, tile_size=96, overlap_px=32)(image), translator(UNET)(image)) >= 40.0
    spec = ResnetSpec(base_channels=4, n_blocks=1, upscale=2)
    assert psnr(translator(spec, tile_size=64, overlap_px=32)(image), translator(spec)(image)) >= 40.0


def test_automatic_tiling_kicks_in_under_a_small_memory_budget(photo):
    image = photo("coffee", (200, 300))
    whole = translator(RESNET)(image)
    budget = int(120 * 160 * translator(RESNET).runner.bytes_per_px)  # about a third of the image
    small = translator(RESNET, memory_budget_bytes=budget)
    assert small.runner.tile_plan(200, 300, 1) is not None
    # The statistics now come from a downscaled pass: close to, not equal to, the whole image.
    value = psnr(small(image), whole)
    assert value >= 25.0
    assert translator(RESNET, memory_budget_bytes=budget * 10).runner.tile_plan(200, 300, 1) is None


def test_rgba_alpha_survives_byte_identical(photo):
    rgb = photo("astronaut", (64, 80))
    alpha = np.random.default_rng(0).integers(0, 256, (64, 80, 1), dtype=np.uint8)
    out = translator(RESNET)(np.concatenate([rgb, alpha], axis=2))
    assert out.shape == (64, 80, 4)
    np.testing.assert_array_equal(out[:, :, 3:], alpha)
    gray_alpha = np.concatenate([rgb[:, :, :1], alpha], axis=2)  # gray + alpha -> RGBA
    np.testing.assert_array_equal(translator(RESNET)(gray_alpha)[:, :, 3:], alpha)


def test_16_bit_in_gives_16_bit_out_computed_in_fp32(photo):
    image8 = photo("coffee", (48, 64))
    image16 = image8.astype(np.uint16) * 257
    t = translator(RESNET, precision="bf16")
    t.runner.auto_precision = True  # as if "auto" had picked bf16 on this CPU
    out16 = t(image16)
    assert out16.dtype == np.uint16 and out16.shape == image16.shape
    exact = translator(RESNET)(image16)
    np.testing.assert_array_equal(out16, exact)
    assert len(np.unique(out16)) > 256  # really uses the 16 bits


def test_bf16_output_is_close_to_fp32(photo):
    image = photo("astronaut", (96, 96))
    value = psnr(translator(RESNET, precision="bf16")(image), translator(RESNET)(image))
    assert value > 30.0


def test_translator_is_thread_safe(photo):
    images = [photo(name, (100, 130)) for name in ("coffee", "chelsea", "astronaut", "rocket")]
    spec = ResnetSpec(base_channels=4, n_blocks=1)
    t = translator(spec, tile_size=64, overlap_px=32)  # tiled: exercises the norm-stats context
    expected = [t(image) for image in images]
    results: dict[int, list[np.ndarray]] = {}

    def work(k: int) -> None:
        order = images[k:] + images[:k]  # each thread starts on a different image
        results[k] = [t(image) for image in order]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for k in range(4):
        for got, want in zip(results[k], expected[k:] + expected[:k]):
            np.testing.assert_array_equal(got, want)


def test_paper_mode_uses_each_images_statistics_and_dropout(photo):
    spec = UnetSpec(base_channels=4, num_downs=5, dropout=0.0)
    image = photo("coffee", (64, 64))
    eval_t, paper_t = translator(spec), translator(spec, mode="paper")
    assert not np.array_equal(eval_t(image), paper_t(image))  # batch stats, not running averages
    batch = torch.stack([paper_t.prepare(photo(n, (64, 64))).tensor for n in ("coffee", "chelsea")])
    alone = paper_t.run_net(batch[:1])
    np.testing.assert_allclose(paper_t.run_net(batch)[:1], alone, atol=1e-5)  # independent of batching
    with_dropout = translator(UnetSpec(base_channels=4, num_downs=6), mode="paper")
    assert not np.array_equal(with_dropout(image), with_dropout(image))
    assert not any(m.training for m in eval_t.net.modules())
    with pytest.raises(TranslatorError, match="mode"):
        translator(spec, mode="train")


def test_tile_size_must_suit_the_net():
    with pytest.raises(TranslatorError, match="multiple of 32"):
        translator(UNET, tile_size=100)


def test_cancel_stops_between_tiles(photo):
    t = translator(RESNET, tile_size=32, overlap_px=8)
    passes = []
    cancel = threading.Event()
    forward = t.runner.forward

    def counting_forward(x, exact):
        passes.append(x.shape[-1])
        if len(passes) == 3:  # the statistics pass and two tiles, then the client leaves
            cancel.set()
        return forward(x, exact)

    t.runner.forward = counting_forward
    image = photo("coffee", (96, 96))  # 16 tiles of 32 px
    with pytest.raises(Cancelled, match="cancelled"):
        t(image, cancel=cancel)
    assert len(passes) == 3
    # Set before the call, not even the whole-image pass of a small image runs.
    passes.clear()
    with pytest.raises(Cancelled):
        t(photo("coffee", (24, 24)), cancel=cancel)
    assert passes == []
    assert t(photo("coffee", (24, 24)), cancel=threading.Event()).shape == (24, 24, 3)


def test_unsupported_task_is_a_clear_error():
    with pytest.raises(TranslateError, match="colorize"):
        get_task("colorize").adapter(RESNET)
    with pytest.raises(TranslateError, match="uint8 or uint16"):
        translator(RESNET)(np.zeros((8, 8, 3), np.float32))


def test_inference_stays_light_to_embed():
    import subprocess
    import sys

    code = ("import sys, numpy, translate; translate.Translator; import translate.inference.folder; "
            "from translate.nets import ResnetSpec, build_net; spec = ResnetSpec(base_channels=4, n_blocks=1); "
            "t = translate.Translator.from_net(build_net(spec), spec, device='cpu'); "
            "t(numpy.zeros((40, 40, 3), numpy.uint8)); "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('albumentations', 'sympy') "
            "or m.startswith(('translate.training.loop', 'translate.methods', 'translate.data.transforms', "
            "'torch._dynamo', 'torch._inductor'))]; "
            "print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_tiled_images_become_floats_one_tile_at_a_time(photo):
    t = translator(RESNET, tile_size=64, overlap_px=32)
    image = photo("coffee", (150, 200))
    prepared = t.prepare(image)
    out = t.translate_prepared(prepared)
    assert "tensor" not in vars(prepared)  # the whole input was never converted to floats
    assert out.shape == (150, 200, 3) and out.dtype == np.uint8
    via_tensor = t.run_net(t.prepare(image).tensor[None])[0]  # the same tiles, cut from a float tensor
    assert via_tensor.shape == (3, 150, 200) and via_tensor.dtype == torch.float32
    assert np.abs(out.astype(int) - t.finish(via_tensor, prepared).astype(int)).max() <= 1
