"""The superres shrink mixture (each way small photos are made, drawn per pair and seeded) and
`translate eval --shrinks`, which scores a superres model per shrink against bicubic."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from translate import metrics
from translate.cli import main
from translate.data.images import read_image
from translate.tasks.superres import (MIXTURE_WEIGHTS, SHRINK_KERNELS, ShrinkKernel, apply_shrink, bicubic_upscale,
                                      draw_shrink, superres_pair)


def _stripes(period: float, size: int = 96) -> np.ndarray:
    """size x size x 3 vertical cosine stripes of `period` px: detail above a x4 input's Nyquist when period < 8."""
    row = np.rint(127.5 + 127.5 * np.cos(2 * np.pi * np.arange(size) / period)).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(row[None, :, None], (size, size, 3)))


# --- the mixture --------------------------------------------------------------------------------------
def test_every_kernel_is_drawn_and_draws_follow_the_weights():
    rng = np.random.default_rng(0)
    drawn = [draw_shrink(rng) for _ in range(4000)]
    assert set(drawn) == set(SHRINK_KERNELS) == set(MIXTURE_WEIGHTS)
    total = sum(MIXTURE_WEIGHTS.values())
    for name, weight in MIXTURE_WEIGHTS.items():
        assert drawn.count(name) / len(drawn) == pytest.approx(weight / total, abs=0.03)


def test_mixture_pairs_are_seeded(photo):
    image = photo("astronaut", 64)

    def run(seed: int) -> tuple[list[str], list[np.ndarray]]:
        names, pairs = np.random.default_rng(seed), np.random.default_rng(seed)
        kernels = [draw_shrink(names) for _ in range(12)]
        return kernels, [superres_pair(image, pairs, degradation="mixture")[0] for _ in range(12)]

    kernels_a, inputs_a = run(1)
    kernels_b, inputs_b = run(1)
    kernels_c, inputs_c = run(2)
    assert kernels_a == kernels_b and all(np.array_equal(x, y) for x, y in zip(inputs_a, inputs_b))
    assert kernels_a != kernels_c and not all(np.array_equal(x, y) for x, y in zip(inputs_a, inputs_c))
    assert all(x.shape == (16, 16, 3) for x in inputs_a)


def test_mixture_pair_is_the_drawn_kernel_applied_to_the_target(photo):
    """The pair's input is exactly the kernel named by the same draw, applied to the target with the
    blur sigma / JPEG quality drawn next from the same generator."""
    image = photo("chelsea", 64)
    seen = set()
    for seed in range(40):
        small, target = superres_pair(image, np.random.default_rng(seed), degradation="mixture")
        rng = np.random.default_rng(seed)
        name = draw_shrink(rng)
        assert np.array_equal(small, apply_shrink(target, 16, 16, SHRINK_KERNELS[name], rng))
        seen.add(name)
    assert seen == set(SHRINK_KERNELS)


def test_the_recipes_validation_scores_each_photo_once_through_every_kernel(tmp_path, photo):
    """Validation draws are strata, not mixture draws: draw k of a photo is kernel k, so best.pt is
    chosen on every kernel alike (the 4 mixture draws of the recipe's one validation photo were 3 bicubic)."""
    from translate.data.datasets import VALIDATION_STREAM
    from translate.data.images import write_image
    from translate.methods.pix2pix import Pix2Pix
    from translate.recipes import resolve_config

    for split, name in (("train", "astronaut"), ("val", "chelsea")):
        write_image(tmp_path / split / f"{name}.png", photo(name, 64))
    config = resolve_config("pix2pix", task="superres", assignments=[
        f"data.root={tmp_path}", "data.crop_size=64", "data.load_size=64", "generator.base_channels=4"])
    val = Pix2Pix(config).datasets()[1]
    assert len(val) == len(SHRINK_KERNELS) == config.data.val_draws
    target = photo("chelsea", 64)
    for draw, kernel in enumerate(SHRINK_KERNELS.values()):
        # The draw's generator, as the dataset seeds it: one integer for the augmentation, then the shrink.
        rng = np.random.default_rng([config.runtime.seed, VALIDATION_STREAM, 0, draw])
        rng.integers(2**31)
        small = ((val[draw]["a"].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
        assert np.array_equal(small, apply_shrink(target, 16, 16, kernel, rng)), draw


def test_antialiased_shrinks_remove_detail_the_opencv_ones_fold_into_false_patterns():
    """Stripes of a 3 px period cannot be shown at a quarter of the size: an anti-aliased shrink
    (Pillow's, MATLAB's) all but removes them; OpenCV's cubic and linear, their taps not widened for
    shrinking, fold them into a strong false pattern."""
    stripes = _stripes(3)
    spread = {name: apply_shrink(stripes, 24, 24, SHRINK_KERNELS[name]).std()
              for name in ("bicubic", "bilinear", "cv2_cubic", "cv2_linear")}
    assert max(spread["bicubic"], spread["bilinear"]) < 5
    assert min(spread["cv2_cubic"], spread["cv2_linear"]) > 40


def _keys_cubic(d: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (Pillow's and MATLAB's bicubic use a = -0.5)."""
    d = np.abs(d)
    return np.where(d <= 1, (a + 2) * d**3 - (a + 3) * d**2 + 1,
                    np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0))


@pytest.mark.parametrize("mode, kernel, support", [("bilinear", lambda d: np.maximum(0, 1 - np.abs(d)), 1),
                                                   ("bicubic", _keys_cubic, 2)])
def test_antialiased_shrinks_are_the_kernel_widened_by_the_scale(photo, mode, kernel, support):
    """An anti-aliased shrink by 4 (MATLAB imresize's rule) weighs the source pixels with the kernel
    stretched 4x around each output centre: re-stated here for one output pixel away from the border."""
    image = photo("coffee", 64)
    small = apply_shrink(image, 16, 16, SHRINK_KERNELS[mode])
    centre = 4 * 2 + 1.5  # output pixel 2's centre in source pixel coordinates
    taps = np.arange(int(np.ceil(centre - 4 * support)), int(np.floor(centre + 4 * support)) + 1)
    weights = kernel((taps - centre) / 4)
    weights /= weights.sum()
    patch = image[taps[0]: taps[-1] + 1, taps[0]: taps[-1] + 1].astype(float)
    expected = np.einsum("r,c,rck->k", weights, weights, patch)
    assert np.abs(small[2, 2] - expected).max() <= 1.5  # Pillow rounds to 8 bits between its two passes


def _zeroed_high_frequencies(image: np.ndarray, offset: int) -> float:
    """Fraction of near-zero high-frequency DCT coefficients of the luma (JPEG's Y) in the 8x8 blocks
    of a grid shifted by `offset` px: JPEG quantises them to zero on its own grid, not on others."""
    luma = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) - 128
    luma = luma[offset: offset + 48, offset: offset + 48]
    blocks = [cv2.dct(np.ascontiguousarray(luma[r: r + 8, c: c + 8]))[4:, 4:]
              for r in range(0, 48, 8) for c in range(0, 48, 8)]
    return float((np.abs(np.stack(blocks)) < 0.75).mean())


@pytest.mark.parametrize("name", ["astronaut", "chelsea"])
def test_blur_kernel_softens_and_jpeg_kernel_quantises_8px_blocks(photo, name):
    image = photo(name, 256)
    clean = apply_shrink(image, 64, 64, SHRINK_KERNELS["bicubic"])
    blurred = apply_shrink(image, 64, 64, SHRINK_KERNELS["blur"])
    gradient = {kind: np.abs(np.diff(small.astype(float), axis=1)).mean() for kind, small in
                (("clean", clean), ("blurred", blurred))}
    assert gradient["blurred"] < 0.9 * gradient["clean"]
    compressed = apply_shrink(image, 64, 64, SHRINK_KERNELS["jpeg"])
    assert _zeroed_high_frequencies(compressed, 0) > 2 * _zeroed_high_frequencies(compressed, 4)
    assert _zeroed_high_frequencies(clean, 0) < 1.5 * _zeroed_high_frequencies(clean, 4)


def test_fixed_strengths_without_a_generator_and_drawn_ones_with_it(photo):
    image = photo("rocket", 64)
    kernel = SHRINK_KERNELS["blur"]
    assert np.array_equal(apply_shrink(image, 16, 16, kernel), apply_shrink(image, 16, 16, kernel))
    drawn = {apply_shrink(image, 16, 16, kernel, np.random.default_rng(s)).tobytes() for s in range(4)}
    assert len(drawn) == 4


def test_classic_configs_keep_their_meaning(photo):
    """The classic degradation's downscale options are what they were: mixture is a new value, not a new default."""
    image = photo("astronaut", 64)
    small, target = superres_pair(image, np.random.default_rng(0), downscale="cv2_cubic")
    assert np.array_equal(small, cv2.resize(target, (16, 16), interpolation=cv2.INTER_CUBIC))
    small, target = superres_pair(image, np.random.default_rng(0))
    assert np.array_equal(small, cv2.resize(target, (16, 16), interpolation=cv2.INTER_AREA))


# --- translate eval --shrinks --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_superres(tmp_path_factory):
    """A tiny superres run (a few steps of the default recipe, 4 base channels) and its prepared data."""
    from translate.data.images import write_image
    from conftest import _photos

    root = tmp_path_factory.mktemp("sr")
    for i, image in enumerate(_photos(5, size=(64, 66))):
        write_image(root / "photos" / f"p{i}.png", image)
    data, run = root / "data", root / "run"
    assert main(["prepare", "superres", str(root / "photos"), str(data), "--val-fraction", "0.2",
                 "--test-fraction", "0.4"]) == 0
    assert main(["train", "pix2pix", "--task", "superres", "--data", str(data), "--out", str(run),
                 "--base-channels", "4", "--set", "generator.n_blocks=1", "--crop-size", "32", "--load-size", "32",
                 "--max-steps", "2"]) == 0
    return data, run


def test_eval_per_shrink_scores_each_kernel_against_bicubic(tmp_path, tiny_superres, capsys):
    data, run = tiny_superres
    capsys.readouterr()
    out = tmp_path / "eval"
    assert main(["eval", str(run), str(data), "--shrinks", "bicubic,cv2_cubic,jpeg", "--metrics", "none",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "eval.json").read_text())
    assert [row["shrink"] for row in summary["shrinks"]] == ["bicubic", "cv2_cubic", "jpeg"]
    targets = sorted((data / "test" / "B").glob("*.png"))
    for row in summary["shrinks"]:
        name = row["shrink"]
        assert row["images"] == len(targets) == 2
        assert row["gain_db"] == pytest.approx(row["model_psnr"] - row["baseline_psnr"])
        assert f"{name:<11}" in printed and f"{row['gain_db']:+.2f}" in printed
        # The bicubic figure is that of the kernel's own shrink of the target, upscaled by cv2 bicubic.
        baselines = []
        for path in targets:
            photo = read_image(path)
            photo = photo[: photo.shape[0] // 4 * 4, : photo.shape[1] // 4 * 4]
            small = apply_shrink(photo, photo.shape[0] // 4, photo.shape[1] // 4, SHRINK_KERNELS[name])
            assert np.array_equal(read_image(out / "shrinks" / name / "inputs" / path.name), small)
            baselines.append(metrics.psnr(bicubic_upscale(small, 4), photo, data_range=255))
        assert row["baseline_psnr"] == pytest.approx(np.mean(baselines), rel=1e-9)
        assert (out / "shrinks" / name / "index.html").is_file()
    page = (out / "index.html").read_text()
    assert 'href="shrinks/cv2_cubic/index.html"' in page and "gain dB" in page
    assert summary["shrinks"][0]["baseline_psnr"] != summary["shrinks"][1]["baseline_psnr"]


def test_eval_per_shrink_errors_are_one_line(tmp_path, tiny_superres, write_paired, capsys):
    data, run = tiny_superres
    capsys.readouterr()
    assert main(["eval", str(run), str(data), "--shrinks", "bicubic,lanczos", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--shrinks bicubic,lanczos: unknown shrink 'lanczos'" in err and "\n" not in err
    assert not (tmp_path / "e").exists()
    paired, other = write_paired("paired_folders", splits={"train": 2, "test": 1}), tmp_path / "pix"
    assert main(["train", "pix2pix", "--data", str(paired), "--out", str(other), "--max-steps", "1",
                 "--generator", "unet_128", "--set", "generator.num_downs=5", "--base-channels", "4",
                 "--set", "discriminator.base_channels=4", "--crop-size", "64", "--load-size", "64"]) == 0
    capsys.readouterr()
    assert main(["eval", str(other), str(paired), "--shrinks", "all"]) == 2
    err = capsys.readouterr().err.strip()
    assert "per-shrink evaluation is for superres models" in err and "\n" not in err
