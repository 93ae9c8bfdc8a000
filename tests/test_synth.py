"""Recipe synthesis on real photos: shapes and channel layouts, seeded randomness, mask coverage,
full-resolution lightness for colorize, sparse sketch lines, the super-resolution and restoration
degradations."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from translate.errors import TranslateError
from translate.config import ConfigError, TrainConfig
from translate.data import synth
from translate.data.images import to_uint8
from translate.nets import PRESETS, spec_to_dict
from translate.recipes import config_from_dict, load_recipe
from translate.tasks import TASKS, get_task, recipe_tasks
from translate.tasks.colorize import ColorizeSettings
from translate.tasks.inpaint import InpaintSettings
from translate.tasks.restore import RestoreSettings
from translate.tasks.sketch import SketchSettings
from translate.tasks.superres import SuperresSettings
from translate.tasks.colorize import lab_split, lab_to_rgb
from translate.tasks.inpaint import HOLE_FILL, mask_from_alpha, masked_input, random_mask
from translate.tasks.restore import restore_pair
from translate.tasks.sketch import canny_lines, sketch_pair, xdog_lines
from translate.tasks.superres import DOWNSCALES, bicubic_upscale, superres_pair

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
# Every degradation switched on, so superres and restore pairs depend on all of their options.
SR_OPTIONS = dict(scale=4, blur_sigma_max=1.5, noise_std_max=5.0, jpeg_quality_min=60)
SETTINGS = {
    "superres": SuperresSettings(**SR_OPTIONS), "colorize": ColorizeSettings(), "sketch": SketchSettings(),
    "restore": RestoreSettings(blur_sigma_max=1.5, noise_std_max=5.0, jpeg_quality_min=60, shot_noise_max=1.0),
    "inpaint": InpaintSettings(),
}
RECIPE_TASKS = recipe_tasks()


def _make(task, image, seed, rng=None):
    return TASKS[task].pair_maker(SETTINGS[task])(image, rng or np.random.default_rng(seed))


@pytest.mark.parametrize("task, input_channels, target_channels", [
    ("colorize", 1, 2), ("sketch", 1, 3), ("inpaint", 4, 3), ("superres", 3, 3), ("restore", 3, 3),
])
def test_pair_shapes_and_layout(photo, task, input_channels, target_channels):
    image = photo("astronaut", (72, 96))
    net_input, target = _make(task, image, 0)
    assert net_input.dtype == target.dtype == np.uint8
    assert net_input.ndim == target.ndim == 3
    assert net_input.shape[2] == input_channels and target.shape[2] == target_channels
    if task == "superres":
        assert net_input.shape[:2] == (18, 24) and target.shape[:2] == (72, 96)
    else:
        assert net_input.shape[:2] == target.shape[:2] == (72, 96)


@pytest.mark.parametrize("task", RECIPE_TASKS)
def test_pairs_are_seeded_and_vary(photo, task):
    image = photo("coffee", 64)
    first, again = _make(task, image, 7), _make(task, image, 7)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    if task == "colorize":
        return  # deterministic by design: the same photo has one lightness and one chroma
    inputs = {_make(task, image, seed)[0].tobytes() for seed in range(6)}
    assert len(inputs) == 6
    rng = np.random.default_rng(3)  # one generator, two calls: fresh randomness each time
    assert not np.array_equal(_make(task, image, 0, rng)[0], _make(task, image, 0, rng)[0])


@pytest.mark.parametrize("task", RECIPE_TASKS)
def test_uint16_photos_match_their_8_bit_version(photo, task):
    image = photo("chelsea", 48)
    wide = image.astype(np.uint16) * 257  # exact 8 -> 16 bit scaling
    for got, want in zip(_make(task, wide, 1), _make(task, image, 1)):
        assert got.dtype == np.uint8 and np.array_equal(got, want)
    assert np.array_equal(to_uint8(np.array([0, 128, 32767, 32768, 65535], np.uint16)), [0, 0, 127, 128, 255])


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3))])
@pytest.mark.parametrize("task", RECIPE_TASKS)
def test_pair_makers_reject_non_rgb(task, bad):
    with pytest.raises(TranslateError, match="photo: expected HxWx3"):
        _make(task, bad, 0)


# --- colorize ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PHOTOS)
def test_lab_round_trip_reproduces_the_photo(photo, name):
    image = photo(name, 96)
    lightness, ab = lab_split(image)
    assert lightness.shape == (96, 96, 1) and ab.shape == (96, 96, 2)
    assert np.array_equal(lightness[:, :, 0], cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[:, :, 0])
    error = np.abs(lab_to_rgb(lightness, ab).astype(int) - image)
    assert error.max() <= 6 and error.mean() < 1.0  # 8-bit Lab quantisation only


@pytest.mark.parametrize("name", PHOTOS)
def test_lab_to_rgb_keeps_full_resolution_lightness(photo, name):
    image = photo(name, 128)
    lightness, ab = lab_split(image)
    small_ab = cv2.resize(ab, (32, 32), interpolation=cv2.INTER_AREA)  # a net run at 1/4 size
    out = lab_to_rgb(lightness, small_ab)
    assert out.shape == image.shape and out.dtype == np.uint8
    # ab is upsampled bicubically; L is used as given, never resampled.
    upsampled = cv2.resize(small_ab, (128, 128), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out, lab_to_rgb(lightness[:, :, 0], upsampled))
    out_l = cv2.cvtColor(out, cv2.COLOR_RGB2LAB)[:, :, 0].astype(int)
    detail_error = np.abs(out_l - lightness[:, :, 0]).mean()
    # Compare with lightness that went through the low resolution as well: its detail is gone.
    blurred = cv2.resize(cv2.resize(lightness, (32, 32), interpolation=cv2.INTER_AREA), (128, 128),
                         interpolation=cv2.INTER_CUBIC).astype(int)
    assert detail_error < 0.5
    assert np.abs(blurred - lightness[:, :, 0]).mean() > 1.0 > 4 * detail_error
    assert np.median(np.abs(out_l - lightness[:, :, 0])) == 0


def test_grey_photo_has_neutral_chroma_and_lab_l(photo):
    grey = np.repeat(photo("camera", 48), 3, axis=2)
    lightness, ab = lab_split(grey)
    assert np.all(ab == 128)
    assert not np.array_equal(lightness, grey[:, :, :1])  # L is not the grey value: convert grey inputs
    assert np.abs(lab_to_rgb(lightness, ab).astype(int) - grey).max() <= 3


def test_lab_to_rgb_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="lab_to_rgb"):
        lab_to_rgb(np.zeros((8, 8, 1), np.uint8), np.zeros((8, 8, 3), np.uint8))


# --- sketch -----------------------------------------------------------------------------------

@pytest.mark.parametrize("render", [canny_lines, xdog_lines])
@pytest.mark.parametrize("name", PHOTOS)
def test_sketches_are_sparse_dark_lines_on_white(photo, render, name):
    sketch = render(photo(name, 128))
    assert sketch.shape == (128, 128, 1) and sketch.dtype == np.uint8
    white, dark = (sketch > 200).mean(), (sketch < 100).mean()
    assert white > 0.7  # mostly paper
    assert 0.005 < dark < 0.25  # but with lines
    thick = render(photo(name, 128), line_thickness=3)
    assert (thick < 100).mean() > 1.5 * dark  # thicker lines cover more
    assert np.all(thick <= sketch)  # and only darken


def test_mixed_style_draws_both_renderers(photo):
    image = photo("astronaut", 64)
    # Canny lines are pure black and white; XDoG strokes are anti-aliased (grey values too).
    binary = [set(np.unique(sketch_pair(image, np.random.default_rng(s))[0])) <= {0, 255} for s in range(20)]
    assert 0 < sum(binary) < 20
    for style, expect_binary in (("canny", True), ("xdog", False)):
        sketch = sketch_pair(image, np.random.default_rng(0), style=style)[0]
        assert (set(np.unique(sketch)) <= {0, 255}) == expect_binary
    with pytest.raises(TranslateError, match="sketch_style"):
        sketch_pair(image, np.random.default_rng(0), style="pencil")
    with pytest.raises(TranslateError, match="line_thickness"):
        canny_lines(image, line_thickness=0)


# --- inpaint ----------------------------------------------------------------------------------

@pytest.mark.parametrize("size, area", [
    ((64, 64), (0.05, 0.4)), ((48, 80), (0.3, 0.31)), ((33, 17), (0.0, 0.02)), ((64, 64), (0.85, 1.0)),
])
def test_mask_coverage_stays_in_range(size, area):
    height, width = size
    coverage = []
    for seed in range(150):
        mask = random_mask(height, width, np.random.default_rng(seed), area_min=area[0], area_max=area[1])
        assert mask.shape == size and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}
        coverage.append((mask > 0).mean())
    assert area[0] <= min(coverage) and max(coverage) <= area[1]
    assert len(set(coverage)) >= 8  # a range, not one value (33x17 at <= 2% allows only 12)


def test_mask_is_seeded_and_made_of_strokes_and_boxes():
    masks = [random_mask(64, 64, np.random.default_rng(s)) for s in range(8)]
    assert np.array_equal(masks[0], random_mask(64, 64, np.random.default_rng(0)))
    assert len({m.tobytes() for m in masks}) == 8
    # Strokes and boxes are blobs, not salt-and-pepper noise: few connected components.
    assert all(cv2.connectedComponents(m)[0] - 1 <= 20 for m in masks)


@pytest.mark.parametrize("area", [(0.5, 0.2), (-0.1, 0.2), (0.2, 1.5)])
def test_mask_rejects_bad_ranges(area):
    with pytest.raises(TranslateError, match="hole_area"):
        random_mask(32, 32, np.random.default_rng(0), area_min=area[0], area_max=area[1])
    with pytest.raises(TranslateError, match="no whole pixel count"):
        random_mask(4, 4, np.random.default_rng(0), area_min=0.3, area_max=0.31)


def test_inpaint_input_fills_holes_and_carries_alpha(photo):
    image = photo("rocket", 64)
    net_input, target = _make("inpaint", image, 5)
    hole = net_input[:, :, 3] == 0
    assert np.array_equal(target, image)
    assert set(np.unique(net_input[:, :, 3])) == {0, 255}
    assert 0.05 <= hole.mean() <= 0.4
    assert np.all(net_input[hole][:, :3] == HOLE_FILL)
    assert np.array_equal(net_input[~hole][:, :3], image[~hole])
    # The input is an RGBA image whose transparent pixels are the holes.
    assert np.array_equal(mask_from_alpha(net_input) > 0, hole)


def test_mask_from_alpha_and_masked_input(photo):
    rgba = np.zeros((4, 64, 4), np.uint8)
    rgba[:, :, 3] = np.arange(0, 256, 4)
    mask = mask_from_alpha(rgba)
    assert mask.shape == (4, 64) and mask.dtype == np.uint8
    assert np.array_equal(mask[0] == 255, np.arange(0, 256, 4) < 128)
    wide = rgba.astype(np.uint16) * 257
    assert np.array_equal(mask_from_alpha(wide), mask)
    with pytest.raises(TranslateError, match="RGBA"):
        mask_from_alpha(rgba[:, :, :3])
    image = photo("coffee", 64)
    user_mask = np.zeros((64, 64), np.uint8)
    user_mask[10:30, 20:40] = 1  # any nonzero value is a hole
    net_input = masked_input(image, user_mask[:, :, None])
    assert np.array_equal(mask_from_alpha(net_input) > 0, user_mask > 0)
    with pytest.raises(TranslateError, match="mask: size"):
        masked_input(image, user_mask[:32])


# --- superres ---------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 3, 4])
def test_superres_input_is_one_scale_th_of_the_cropped_target(photo, scale):
    image = photo("astronaut", (67, 70))
    small, target = superres_pair(image, np.random.default_rng(0), scale=scale)
    assert target.shape == (67 // scale * scale, 70 // scale * scale, 3)
    assert small.shape == (67 // scale, 70 // scale, 3)
    assert np.array_equal(target, image[: target.shape[0], : target.shape[1]])  # top-left: pixels stay aligned
    # Without degradations the input is exactly the area-downscaled target.
    expected = cv2.resize(target, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.array_equal(small, expected)


def test_superres_degradations_stay_close_to_the_clean_input(photo):
    image = photo("chelsea", 128)
    clean, _ = superres_pair(image, np.random.default_rng(0), scale=4)
    degraded = [superres_pair(image, np.random.default_rng(s), **SR_OPTIONS)[0] for s in range(5)]
    for small in degraded:
        assert small.shape == clean.shape
        assert 0 < np.abs(small.astype(int) - clean).mean() < 12


def test_superres_shrinks_anti_alias_except_cv2_cubic():
    """Stripes of a 3 px period are detail far above the x4 input's Nyquist frequency (8 px): the
    anti-aliased bicubic shrink all but removes them, the box average leaves some, and cv2 INTER_CUBIC
    (its 4-tap kernel not widened for shrinking) folds them into a strong false pattern."""
    stripes = np.rint(127.5 + 127.5 * np.cos(2 * np.pi * np.arange(96) / 3)).astype(np.uint8)
    image = np.ascontiguousarray(np.broadcast_to(stripes[None, :, None], (96, 96, 3)))
    spread = {mode: superres_pair(image, np.random.default_rng(0), downscale=mode)[0].std() for mode in DOWNSCALES}
    assert spread["bicubic"] < 5 < spread["area"] < 40 < spread["cv2_cubic"]


def test_superres_rejects_bad_options(photo):
    image = photo("coffee", 32)
    rng = np.random.default_rng(0)
    with pytest.raises(TranslateError, match="jpeg_quality_min"):
        superres_pair(image, rng, jpeg_quality_min=99)
    with pytest.raises(TranslateError, match="scale"):
        superres_pair(image, rng, scale=5)
    with pytest.raises(TranslateError, match="smaller than the scale"):
        superres_pair(image[:3], rng, scale=4)
    with pytest.raises(TranslateError, match="downscale"):
        superres_pair(image, rng, downscale="lanczos")


def test_bicubic_upscale_is_the_baseline(photo):
    image = photo("rocket", 64)
    small, target = superres_pair(image, np.random.default_rng(0), scale=4)
    big = bicubic_upscale(small, 4)
    assert big.shape == target.shape and big.dtype == np.uint8
    assert np.abs(big.astype(int) - target).mean() < np.abs(128 - target.astype(int)).mean() / 2
    assert bicubic_upscale(small[:, :, :1], 2).shape == (32, 32, 1)


# --- registry ---------------------------------------------------------------------------------

def _config(task, **options):
    """A config for `task` with those of `options` that are its settings."""
    generator = PRESETS["unet_256"]
    if task == "superres":
        generator = dataclasses.replace(PRESETS["resnet_6blocks"], upscale=4)
    fields = {f.name for f in dataclasses.fields(TASKS[task].settings)}
    return config_from_dict({"task": task, "generator": spec_to_dict(generator), "data": {"crop_size": 256},
                             task: {k: v for k, v in options.items() if k in fields}})


@pytest.mark.parametrize("task", RECIPE_TASKS)
def test_pair_maker_binds_the_config(photo, task):
    config = _config(task, sketch_style="canny", line_thickness=2, hole_area_min=0.3, hole_area_max=0.35,
                     scale=4, jpeg_quality_min=50, noise_std_max=0.0)
    make = get_task(task).pair_maker(config.task_settings)
    image = photo("astronaut", 64)
    net_input, _ = make(image, np.random.default_rng(0))
    if task == "sketch":
        expected = sketch_pair(image, np.random.default_rng(0), style="canny", line_thickness=2)[0]
        assert np.array_equal(net_input, expected)
    if task == "inpaint":
        assert 0.3 <= (net_input[:, :, 3] == 0).mean() <= 0.35
    if task == "superres":
        assert net_input.shape == (16, 16, 3)
    if task == "restore":  # only the JPEG step is on: exactly what restore_pair makes of these options
        expected = restore_pair(image, np.random.default_rng(0), blur_sigma_max=0, shot_noise_max=0,
                                noise_std_max=0, jpeg_quality_min=50)[0]
        assert np.array_equal(net_input, expected) and not np.array_equal(net_input, image)


def test_custom_has_no_pair_maker_and_config_rejects_mismatched_superres():
    assert get_task("custom").pair_maker(None) is None
    with pytest.raises(ConfigError, match="superres.scale: 2 must equal the generator's upscale"):
        _config("superres", scale=2)
    generator = dataclasses.replace(PRESETS["resnet_6blocks"], upscale=4)
    with pytest.raises(ConfigError, match="data.crop_size: 136 is not a multiple of 16"):
        # a multiple of 4 (generator), not of 16 (scale x size multiple)
        TrainConfig(task="superres", generator=generator, data=dataclasses.replace(TrainConfig().data, crop_size=136))


# --- restore ----------------------------------------------------------------------------------

def test_restore_without_degradations_is_the_photo(photo):
    image = photo("coffee", 48)
    degraded, target = restore_pair(image, np.random.default_rng(0), blur_sigma_max=0, shot_noise_max=0,
                                    noise_std_max=0, jpeg_quality_min=0)
    assert np.array_equal(degraded, image) and np.array_equal(target, image)


@pytest.mark.parametrize("name", PHOTOS)
def test_restore_damage_stays_in_range_over_seeds(photo, name):
    """The recipe's degradation over many seeds: always some damage, never more than a photo survives."""
    image = photo(name, 96)
    options = load_recipe("restore")["restore"]
    scores = []
    for seed in range(12):
        degraded, target = restore_pair(image, np.random.default_rng(seed), **options)
        assert degraded.shape == target.shape == image.shape and degraded.dtype == np.uint8
        assert np.array_equal(target, image)
        mse = np.mean((degraded.astype(float) - image) ** 2)
        scores.append(10 * np.log10(255**2 / mse))
    assert 18 < min(scores) and max(scores) < 40, scores  # in dB
    assert max(scores) - min(scores) > 2  # strengths are drawn per call, not fixed


def test_shot_noise_grows_with_brightness():
    flat = np.concatenate([np.full((64, 64, 3), 30, np.uint8), np.full((64, 64, 3), 220, np.uint8)], axis=1)
    noisy = synth.random_shot_noise(flat, np.random.default_rng(0), 4.0).astype(float)
    dark, bright = noisy[:, :64].std(), noisy[:, 64:].std()
    assert 0 < dark < bright  # Poisson: std ~ sqrt(s * value)
    assert abs(noisy[:, 64:].mean() - 220) < 2  # unbiased


def test_restore_rejects_bad_options(photo):
    image = photo("coffee", 32)
    with pytest.raises(TranslateError, match="shot_noise_max"):
        restore_pair(image, np.random.default_rng(0), shot_noise_max=-1)
    with pytest.raises(TranslateError, match="jpeg_quality_min"):
        restore_pair(image, np.random.default_rng(0), jpeg_quality_min=99)
