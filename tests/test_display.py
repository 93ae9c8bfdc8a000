"""How tasks show their results: sample grids (colorize as the colour photo, inpaint with its holes
outlined, super-resolution at one scale) and evaluation's page (a means table with the better value
marked, zoomed crops where the model and the baseline differ)."""
from __future__ import annotations

import re

import cv2
import numpy as np
import torch

from translate.data.images import image_to_tensor, read_image, write_image
from translate.evaluation import EvalReport, evaluate
from translate.evaluation.details import differing_windows
from translate.evaluation.page import BETTER_MARK, write_report
from translate.methods.pix2pix import Pix2Pix
from translate.recipes import resolve_config
from translate.tasks import get_task
from translate.tasks.colorize import lab_split
from translate.tasks.inpaint import masked_input
from translate.tasks.superres import bicubic_upscale, superres_pair
from translate.training.log import sample_grid


def _batch(image: np.ndarray) -> torch.Tensor:
    return image_to_tensor(np.ascontiguousarray(image))[None]


def test_colorize_sample_grid_shows_the_colour_photo(photo):
    """Given the target's own chroma as the output, the output panel is the target panel, and that is
    the photo in colour, not the raw chroma planes."""
    picture = np.ascontiguousarray(photo("astronaut", 64))
    lightness, chroma = lab_split(picture)
    config = resolve_config("pix2pix", task="colorize", assignments=[
        "generator.base_channels=4", "discriminator.base_channels=4", "generator.num_downs=5"])
    method = Pix2Pix(config)
    rows = method.sample_rows({"real_a": _batch(lightness), "fake_b": _batch(chroma), "real_b": _batch(chroma)})
    grid = sample_grid(rows)
    assert grid.shape == (64, 3 * 64, 3)
    shown_input, shown_output, shown_target = grid[:, :64], grid[:, 64:128], grid[:, 128:]
    assert np.array_equal(shown_output, shown_target)
    assert np.abs(shown_output.astype(int) - picture).mean() < 2  # the photo, up to 8-bit Lab rounding
    assert np.array_equal(shown_input[:, :, 0], shown_input[:, :, 2])  # grey: the L the net sees
    assert np.array_equal(shown_input[:, :, 0], lightness[:, :, 0])
    # A different chroma gives a different output panel: the panel follows the prediction.
    grey = np.full_like(chroma, 128)
    rows = method.sample_rows({"real_a": _batch(lightness), "fake_b": _batch(grey), "real_b": _batch(chroma)})
    assert not np.array_equal(rows[0][1], rows[0][2])


def test_inpaint_panels_outline_the_holes(photo):
    picture = np.ascontiguousarray(photo("coffee", 64))
    hole = np.zeros((64, 64), bool)
    hole[20:40, 10:30] = True
    net_input = masked_input(picture, hole)
    shown_input, shown_output, _ = get_task("inpaint").display(net_input, picture, picture)
    border = cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~hole
    assert np.all(np.any(shown_output[border] != picture[border], axis=1))  # every border pixel is marked
    assert np.array_equal(shown_output[~border], picture[~border])  # inside and away: the filled photo
    assert np.all(shown_input[hole] == 128) and np.array_equal(shown_input[~hole], picture[~hole])


def test_superres_panels_are_at_the_target_size_and_the_first_is_bicubic(photo):
    small, target = superres_pair(photo("rocket", 64), np.random.default_rng(0), scale=4)
    output = np.ascontiguousarray(target[::-1])
    panels = get_task("superres").display(small, output, target)
    assert [p.shape for p in panels] == [target.shape] * 3
    assert np.array_equal(panels[0], bicubic_upscale(small, 4))
    assert np.array_equal(panels[1], output) and np.array_equal(panels[2], target)


def test_differing_windows_are_the_largest_differences_and_do_not_overlap():
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, (60, 80, 3)).astype(np.uint8)
    other = one.copy()
    other[30:40, 50:60] ^= 0xFF  # the big difference
    other[2:6, 3:7] ^= 0x0F  # a small one far away
    windows = differing_windows(one, other, 10)
    assert windows[0] == (30, 50) and len(windows) == 2  # identical elsewhere: no third window
    top, left = windows[1]
    assert top <= 2 and top + 10 >= 6 and left <= 3 and left + 10 >= 7
    assert differing_windows(one, one, 10) == []


def test_eval_page_crops_where_the_model_differs_from_the_baseline(tmp_path, photo):
    small, target = superres_pair(photo("chelsea", 128), np.random.default_rng(0), scale=4)
    write_image(tmp_path / "A" / "cat.png", small)
    write_image(tmp_path / "B" / "cat.png", target)

    def model(image):  # bicubic, except for a square planted at a known place
        out = bicubic_upscale(image, 4)
        out[70:90, 20:40] = 255 - out[70:90, 20:40]
        return out

    report = evaluate(model, [(tmp_path / "A" / "cat.png", tmp_path / "B" / "cat.png")], tmp_path / "eval",
                      task="superres")
    crops = report.rows[0]["detail_crops"]
    assert len(crops) == 1  # the model equals bicubic everywhere else
    crop = crops[0]
    assert crop["size"] == 32 and crop["panels"] == ["input", "output", "target"]  # input shown bicubic = baseline
    assert crop["top"] <= 70 and crop["top"] + 32 >= 90 and crop["left"] <= 20 and crop["left"] + 32 >= 40
    strip = read_image(tmp_path / "eval" / crop["image"])
    zoom = strip.shape[0] // 32
    assert zoom >= 2 and strip.shape == (32 * zoom, 3 * 32 * zoom + 2 * 4, 3)
    shown_output = strip[:, 32 * zoom + 4 : 64 * zoom + 4][::zoom, ::zoom]
    assert np.array_equal(shown_output, model(small)[crop["top"] : crop["top"] + 32, crop["left"] : crop["left"] + 32])
    page = (tmp_path / "eval" / "index.html").read_text()
    assert crop["image"] in page
    assert read_image(tmp_path / "eval" / report.rows[0]["panels"]["input"]).shape == target.shape


def _mean_cells(page: str, label: str) -> list[str]:
    row = re.search(rf"<tr><td>{re.escape(label)} .*?</tr>", page)
    assert row, label
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))[1:]


def test_eval_page_means_table_marks_the_better_value(tmp_path):
    report = EvalReport(task="superres")
    report.rows = [{"name": "x", "model_psnr": 30.0, "baseline_psnr": 28.0, "model_lpips": 0.3, "baseline_lpips": 0.2,
                    "model_colourfulness": 20.0, "baseline_colourfulness": 10.0, "target_colourfulness": 25.0}]
    report.distribution = {"model": {"fid": 40.0, "kid": 0.01, "kid_std": 0.002},
                           "baseline": {"fid": 50.0, "kid": 0.02, "kid_std": 0.003}}
    write_report(report, tmp_path, "t", "bicubic")
    page = (tmp_path / "index.html").read_text()
    assert "Mean over" not in page  # no run-on line of key: value pairs
    psnr = _mean_cells(page, "PSNR (dB)")
    assert BETTER_MARK in psnr[0] and "30" in psnr[0] and BETTER_MARK not in psnr[1]  # higher is better
    lpips = _mean_cells(page, "LPIPS")
    assert BETTER_MARK not in lpips[0] and BETTER_MARK in lpips[1]  # lower is better
    colour = _mean_cells(page, "colourfulness")
    assert not any(BETTER_MARK in c for c in colour) and "25" in colour[2]  # no better; the targets' for reference
    fid, kid = _mean_cells(page, "FID"), _mean_cells(page, "KID")
    assert BETTER_MARK in fid[0] and BETTER_MARK in kid[0] and "± 0.002" in kid[0]


def test_eval_page_takes_rows_without_target_or_baseline(tmp_path, photo):
    """An unpaired report: rows with an output image only and FID / KID of the model alone."""
    write_image(tmp_path / "images" / "x_output.png", np.ascontiguousarray(photo("coffee", 32)))
    report = EvalReport(task="custom", rows=[{"name": "x", "images": {"output": "images/x_output.png"}}])
    report.distribution = {"model": {"fid": 12.0, "kid": 0.1, "kid_std": None}}
    write_report(report, tmp_path, "unpaired", None)
    page = (tmp_path / "index.html").read_text()
    assert "images/x_output.png" in page and BETTER_MARK not in _mean_cells(page, "FID")[0]
