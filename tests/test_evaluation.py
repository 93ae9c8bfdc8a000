"""evaluate(): scores computed by hand (inpaint counts holes only), each task's baseline on a real
photo, and the page's input column showing what the model saw."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from translate.data.images import read_image, write_image
from translate.evaluation import evaluate
from translate.tasks import TASKS, get_task
from translate.tasks.colorize import lab_split
from translate.tasks.inpaint import HOLE_FILL, masked_input
from translate.tasks.restore import restore_pair
from translate.tasks.superres import superres_pair


def _psnr(output: np.ndarray, target: np.ndarray, region: np.ndarray) -> float:
    mse = np.mean((output.astype(float)[region] - target.astype(float)[region]) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def _hole(size: int) -> np.ndarray:
    hole = np.zeros((size, size), bool)
    hole[20:44, 12:40] = True
    return hole


def _write_pair(tmp_path, net_input, target, name="x"):
    write_image(tmp_path / "A" / f"{name}.png", net_input)
    write_image(tmp_path / "B" / f"{name}.png", target)
    return [(tmp_path / "A" / f"{name}.png", tmp_path / "B" / f"{name}.png")]


def test_inpaint_psnr_counts_only_the_holes(tmp_path, photo):
    target = np.ascontiguousarray(photo("astronaut", 64))
    hole = _hole(64)
    pairs = _write_pair(tmp_path, masked_input(target, hole), target)

    def fill(value: int, outside: int):
        def model(rgba):
            out = np.full_like(rgba[:, :, :3], outside)  # the known pixels: wrong on purpose
            out[rgba[:, :, 3] == 0] = value
            return out
        return model

    one = evaluate(fill(90, 0), pairs, tmp_path / "one", task="inpaint").rows[0]
    two = evaluate(fill(90, 255), pairs, tmp_path / "two", task="inpaint").rows[0]
    expected = _psnr(np.full_like(target, 90), target, hole)
    assert one["model_psnr"] == pytest.approx(expected) == two["model_psnr"]
    assert one["model_psnr"] > 0 and np.isfinite(one["model_psnr"])


def test_inpaint_baseline_telea_beats_a_grey_fill_inside_the_holes(photo):
    target = np.ascontiguousarray(photo("coffee", 64))
    hole = _hole(64)
    net_input = masked_input(target, hole)
    baseline = get_task("inpaint").baseline(net_input, target)
    assert np.array_equal(baseline[~hole], target[~hole])  # Telea only writes into the holes
    grey = np.full_like(target, HOLE_FILL)
    assert _psnr(baseline, target, hole) > _psnr(grey, target, hole) + 3
    assert np.array_equal(get_task("inpaint").eval_region(net_input), hole)


def test_superres_baseline_is_cv2_bicubic(photo):
    small, target = superres_pair(photo("rocket", 64), np.random.default_rng(0), scale=4)
    baseline = get_task("superres").baseline(small, target)
    assert np.array_equal(baseline, cv2.resize(small, (64, 64), interpolation=cv2.INTER_CUBIC))


def test_colorize_baseline_is_the_grey_photo(photo):
    target = np.ascontiguousarray(photo("chelsea", 48))
    baseline = get_task("colorize").baseline(lab_split(target)[0], target)
    grey = cv2.cvtColor(target, cv2.COLOR_RGB2GRAY)
    assert baseline.shape == target.shape and all(np.array_equal(baseline[:, :, c], grey) for c in range(3))


def test_restore_baseline_denoises_a_real_photo(photo):
    target = np.ascontiguousarray(photo("astronaut", 128))
    noisy, _ = restore_pair(target, np.random.default_rng(0), blur_sigma_max=0, shot_noise_max=0,
                            noise_std_max=20, jpeg_quality_min=0)
    everywhere = np.ones(target.shape[:2], bool)
    baseline = get_task("restore").baseline(noisy, target)
    assert baseline.shape == target.shape and baseline.dtype == np.uint8
    assert _psnr(baseline, target, everywhere) > _psnr(noisy, target, everywhere) + 1


@pytest.mark.parametrize("task", ["sketch", "custom"])
def test_tasks_without_a_baseline(tmp_path, photo, task):
    image = np.ascontiguousarray(photo("coffee", 32))
    assert TASKS[task].baseline(image, image) is None and TASKS[task].baseline_description is None
    report = evaluate(lambda x: x, _write_pair(tmp_path, image, image), tmp_path / "eval", task=task)
    assert "baseline_psnr" not in report.rows[0] and "baseline" not in report.rows[0]["images"]
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["baseline"] is None


def test_colorize_page_shows_the_grey_image_the_model_saw(tmp_path, photo):
    target = np.ascontiguousarray(photo("astronaut", 48))
    pairs = _write_pair(tmp_path, lab_split(target)[0], target)
    seen = []
    report = evaluate(lambda x: seen.append(x) or x, pairs, tmp_path / "eval", task="colorize")
    shown = read_image(tmp_path / "eval" / report.rows[0]["images"]["input"])
    assert np.array_equal(seen[0], target)  # the model gets the photo and keeps only its lightness
    assert shown.shape[2] == 1 and np.array_equal(shown, lab_split(target)[0])


def test_reports_and_images_have_normal_permissions(tmp_path, photo):
    """eval.json, index.html and the page's images are 0644 under umask 022, like any file."""
    import os
    import stat

    image = np.ascontiguousarray(photo("coffee", 32))
    umask = os.umask(0o022)
    try:
        evaluate(lambda x: x, _write_pair(tmp_path, image, image), tmp_path / "eval", task="custom")
    finally:
        os.umask(umask)
    written = [p for p in (tmp_path / "eval").rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"eval.json", "index.html"}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {oct(0o644)}


# --- learned metrics (stand-in weights: random parameters in the published layouts) ----------------------
def test_eval_command_adds_lpips_and_says_why_fid_kid_were_skipped(tmp_path, write_paired, metric_weights, capsys):
    from translate.cli import main

    data, run = write_paired("paired_folders", splits={"train": 2, "test": 3}), tmp_path / "run"
    tiny = {"generator": "unet_128", "generator.num_downs": 5, "generator.base_channels": 4,
            "discriminator.base_channels": 4, "data.crop_size": 64, "data.load_size": 64}
    assert main(["train", "pix2pix", "--data", str(data), "--out", str(run), "--max-steps", "1",
                 *[a for k, v in tiny.items() for a in ("--set", f"{k}={v}")]]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), str(data), "--weights-dir", str(metric_weights)]) == 0
    out = capsys.readouterr().out
    assert "fid not computed: FID needs at least 50 generated and 50 real images" in out
    summary = json.loads((run / "eval_test" / "eval.json").read_text())
    assert len(summary["per_image"]) == 3 and all(row["model_lpips"] > 0 for row in summary["per_image"])
    assert summary["mean"]["model_lpips"] == pytest.approx(np.mean([r["model_lpips"] for r in summary["per_image"]]))
    assert summary["learned"]["lpips"]["weights"]["backbone"]["published"] is False
    assert set(summary["learned"]["skipped"]) == {"fid", "kid"}
    page = (run / "eval_test" / "index.html").read_text()
    assert "Metrics not computed" in page and "KID needs at least 10 generated and 10 real images" in page
    assert "model_lpips" in page
    # Asked for by name, a metric that cannot run stops the command before any image is converted.
    assert main(["eval", str(run), str(data), "--weights-dir", str(metric_weights), "--metrics", "kid",
                 "--out", str(tmp_path / "e2")]) == 2
    assert "--metrics kid: cannot be computed: KID needs at least 10" in capsys.readouterr().err
    assert not (tmp_path / "e2").exists()
    assert main(["eval", str(run), str(data), "--metrics", "lpips,psnr"]) == 2
    assert "--metrics lpips,psnr: unknown metric psnr" in capsys.readouterr().err


def test_evaluate_reports_fid_kid_with_their_protocol(tmp_path, photos, metric_weights):
    from dataclasses import replace

    from translate.evaluation import LearnedMetrics
    from translate.metrics import PROTOCOLS, MetricWeights

    pairs = []
    for i, image in enumerate(photos(3, 32)):
        pairs += _write_pair(tmp_path / "data", image, np.ascontiguousarray(image[::-1]), name=f"p{i}")
    protocol = replace(PROTOCOLS["pytorch-fid"], min_images_fid=3, min_images_kid=3)
    learned = LearnedMetrics(metrics=("fid", "kid"), required=True, protocol=protocol,
                             weights=MetricWeights(weights_dir=str(metric_weights)))
    report = evaluate(lambda x: x, pairs, tmp_path / "eval", task="custom", learned=learned)
    assert report.distribution["model"]["fid"] > 0 and report.distribution["model"]["kid_std"] is not None
    summary = json.loads((tmp_path / "eval" / "eval.json").read_text())
    record = summary["learned"]["protocol"]
    assert (record["name"], record["image_size"], record["images_generated"], record["images_real"]) == \
        ("pytorch-fid", 256, 3, 3)
    assert record["inception_weights"]["sha256"] == weights_sha(metric_weights)
    assert "lpips" not in summary["learned"] and "model_lpips" not in summary["per_image"][0]
    page = (tmp_path / "eval" / "index.html").read_text()
    assert "Distribution metrics" in page and "not the published file" in page


def weights_sha(folder) -> str:
    import hashlib

    from translate.weights import FEATURE_WEIGHTS

    return hashlib.sha256((folder / FEATURE_WEIGHTS["inception"].file).read_bytes()).hexdigest()


def test_learned_metrics_skip_when_weights_are_missing(tmp_path, photo, monkeypatch):
    import torch

    from translate.evaluation import LearnedMetrics
    from translate.metrics import MetricWeights

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # no library cache either
    image = np.ascontiguousarray(photo("coffee", 48))
    learned = LearnedMetrics(weights=MetricWeights(weights_dir=str(tmp_path / "none")))
    report = evaluate(lambda x: x, _write_pair(tmp_path, image, image), tmp_path / "eval", task="custom",
                      learned=learned)
    assert "alexnet: weights not found" in report.skipped_metrics["lpips"]
    assert "translate weights fetch alexnet" in report.skipped_metrics["lpips"]
    assert "model_lpips" not in report.rows[0]


def test_colorize_reports_colourfulness_next_to_psnr_so_grey_cannot_win_unnoticed(tmp_path, photo):
    from translate.metrics import colourfulness

    target = np.ascontiguousarray(photo("coffee", 48))
    pairs = _write_pair(tmp_path, lab_split(target)[0], target)
    report = evaluate(lambda x: x, pairs, tmp_path / "eval", task="colorize")  # a perfect model
    row = report.rows[0]
    assert row["model_colourfulness"] == pytest.approx(colourfulness(target)) == row["target_colourfulness"]
    assert row["baseline_colourfulness"] == 0.0  # the grey photo
    summary = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert summary["mean"]["baseline_colourfulness"] == 0.0 and summary["mean"]["model_colourfulness"] > 10
    assert "model_colourfulness" in (tmp_path / "eval" / "index.html").read_text()
