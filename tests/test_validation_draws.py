"""Validation that means something: several fixed draws per validation photo, figures that carry
their standard error, best.pt moved only by a gain larger than that error, error bars on the run
page, and convert / eval naming the checkpoint they used."""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from translate.checkpoint import checkpoint_dir, load_file, numbered_path
from translate.cli import main
from translate.data.images import write_image
from translate.methods.pix2pix import Pix2Pix
from translate.recipes import resolve_config
from translate.training import validation
from translate.training.loop import train
from translate.training.run_page import RunStatus, write_run_page
from translate.training.validation import BestRecord, Evaluator, Figure, ValMetric

TINY = ["generator.base_channels=4", "discriminator.base_channels=4", "generator.num_downs=5",
        "runtime.val_metric=psnr", "runtime.log_every_steps=1", "runtime.sample_every_steps=0"]


def photo_folders(root: Path, photos, *, train: int = 2, val: int = 1, size: int = 64) -> Path:
    """ROOT/train and ROOT/val holding distinct real photos (what task recipes synthesise pairs from)."""
    images = photos(train + val, size)
    for i, image in enumerate(images):
        write_image(root / ("train" if i < train else "val") / f"{i:03d}.png", image)
    return root


def inpaint_config(data: Path, *sets: str):
    """Inpainting synthesises random holes: every draw of a validation photo has its own."""
    return resolve_config("pix2pix", task="inpaint", assignments=[
        *TINY, f"data.root={data}", "data.crop_size=64", "data.load_size=64", *sets])


def test_validation_draws_are_fixed_and_differ_from_each_other(tmp_path, photos):
    data = photo_folders(tmp_path / "photos", photos)
    cfg = inpaint_config(data, "data.val_draws=4")
    torch.manual_seed(0)
    method = Pix2Pix(cfg)
    _, val = method.datasets()
    assert len(val) == 4  # one photo, four draws
    draws = [val[i] for i in range(4)]
    for i in range(4):
        torch.testing.assert_close(draws[i]["b"], draws[0]["b"])  # the same photo...
        for j in range(i):
            assert not torch.equal(draws[i]["a"], draws[j]["a"])  # ...with different holes
    # The same draws whatever the epoch the training set is at, and in a dataset made afresh (--resume).
    val.set_epoch(7)
    _, again = Pix2Pix(cfg).datasets()
    for i in range(4):
        torch.testing.assert_close(val[i]["a"], draws[i]["a"], rtol=0, atol=0)
        torch.testing.assert_close(again[i]["a"], draws[i]["a"], rtol=0, atol=0)
    # Two validation passes over the same weights give the same figure and error.
    evaluator = Evaluator(cfg, paired=True, device=torch.device("cpu"), n_images=len(val))
    first, second = (evaluator.run(method, val, to_device=lambda batch: batch) for _ in range(2))
    assert first["psnr"] == second["psnr"] and first["psnr_se"] == second["psnr_se"]
    assert math.isfinite(first["psnr"]) and first["psnr_se"] > 0


def test_one_draw_where_nothing_is_random_and_never_more_items_than_max_val_images(tmp_path, photos, write_paired):
    # Prepared A/B files, no crop: a second draw would repeat the first.
    prepared = write_paired("paired_folders", splits={"train": 2, "val": 2}, size=32)
    cfg = resolve_config("pix2pix", assignments=[*TINY, f"data.root={prepared}", "data.crop_size=32",
                                                 "data.preprocess=none", "data.val_draws=4"])
    assert len(Pix2Pix(cfg).datasets()[1]) == 2
    # Three synthesised photos, at most 8 items a pass: two draws each.
    data = photo_folders(tmp_path / "photos", photos, val=3)
    _, val = Pix2Pix(inpaint_config(data, "data.val_draws=4", "data.max_val_images=8")).datasets()
    assert len(val) == 6


def test_figure_is_the_mean_and_its_standard_error():
    scores = [20.0, 22.0, 25.0, 21.0, math.nan]  # a NaN score (an empty image) is left out
    figure = Figure.of(scores)
    kept = np.array(scores[:4])
    assert figure.value == pytest.approx(kept.mean())
    assert figure.se == pytest.approx(np.sqrt(((kept - kept.mean()) ** 2).sum() / 3) / 2)
    assert math.isnan(Figure.of([3.0]).se)
    both = Figure.mean_of([Figure(10.0, 0.3), Figure(20.0, 0.4)])  # independent halves: errors in quadrature
    assert (both.value, both.se) == (15.0, pytest.approx(0.25))


def test_noise_inside_the_error_keeps_the_record_and_a_real_gain_moves_it():
    higher = BestRecord("psnr", True, value=20.0, se=0.5)
    assert not higher.improves(20.4, 0.5) and not higher.improves(20.5, 0.5)  # within (or at) the error
    assert higher.improves(20.6, 0.5) and not higher.improves(math.nan, 0.1)
    lower = BestRecord("l1", False, value=0.20, se=0.01)
    assert not lower.improves(0.195, 0.01) and lower.improves(0.185, 0.01)
    # A record written before figures had errors loads, and a figure without one compares as before.
    old = BestRecord.from_dict({"metric": "psnr", "higher_is_better": True, "column": "psnr", "value": 20.0,
                                "epoch": 3, "step": 300})
    assert old.se is None and old.improves(20.01) and old.improves(20.01, math.nan) and not old.improves(20.0)
    assert not old.improves(20.3, 0.5)


def test_a_gain_on_every_draw_counts_even_inside_the_figures_spread():
    """The same draws scored twice: the photo-to-photo spread (each figure's own error, ~2 dB
    here) is in both, so the gain is judged by the spread of the per-draw differences."""
    before = [20.0, 24.0, 28.0, 22.0]
    record = BestRecord("psnr", True, value=float(np.mean(before)), se=Figure.of(before).se,
                        items={"psnr": before})
    steady = [x + 0.5 for x in before]  # every draw better by about 0.5 dB
    steady[0] += 0.1
    assert Figure.of(steady).se > 1.0
    assert record.improves(float(np.mean(steady)), Figure.of(steady).se, {"psnr": steady})
    differences = np.subtract(steady, before)
    assert record.gain_error(items={"psnr": steady}) == pytest.approx(differences.std(ddof=1) / 2)
    mixed = [21.5, 22.5, 29.5, 21.0]  # a larger mean gain (+0.125), but draws going both ways
    assert not record.improves(float(np.mean(mixed)), Figure.of(mixed).se, {"psnr": mixed})
    # Two prefixes (CycleGAN's directions): each one's paired error, combined in quadrature.
    both = BestRecord("psnr", True, value=0.0, items={"A": [0.0, 0.0, 0.0], "B": [1.0, 1.0, 1.0]})
    new = {"A": [1.0, 2.0, 3.0], "B": [1.0, 1.0, 4.0]}
    per_prefix = [np.std([1, 2, 3], ddof=1) / np.sqrt(3), np.std([0, 0, 3], ddof=1) / np.sqrt(3)]
    assert both.gain_error(items=new) == pytest.approx(np.hypot(*per_prefix) / 2)
    # Items that do not pair up (the validation set changed on --resume): the figure's own error.
    assert record.gain_error(0.7, {"psnr": steady[:3]}) == 0.7 and record.gain_error(0.7, {"other": steady}) == 0.7


@pytest.fixture
def scripted(monkeypatch):
    """A metric (higher is better) reporting the given figures, with their errors, in turn."""
    figures: list[Figure] = []
    metric = ValMetric("scripted", True, True, lambda config, device, n_images: lambda outs, refs: figures.pop(0))
    monkeypatch.setitem(validation.VAL_METRICS, "scripted", metric)
    return figures


def test_a_training_run_moves_best_pt_only_on_a_gain_larger_than_the_error(tmp_path, write_paired, scripted):
    data = write_paired("aligned", splits={"train": 2, "val": 1}, size=32)
    cfg = resolve_config("pix2pix", assignments=[
        *TINY, f"data.root={data}", "data.crop_size=32", "data.load_size=32", "runtime.val_metric=scripted",
        "optim.epochs=4", "optim.epochs_decay=0", "runtime.checkpoint_every_epochs=1", "runtime.keep_checkpoints=0"])
    # Epochs 2 and 3 gain less than their error over epoch 1 (noise); epoch 4 gains more than its error.
    scripted[:] = [Figure(10.0, 1.0), Figure(10.9, 1.0), Figure(10.5, 1.0), Figure(12.5, 1.0)]
    run = tmp_path / "run"
    result = train(config=cfg, run_dir=run)
    assert [row["scripted_se"] for row in result.val_history] == [1.0] * 4
    best = load_file(checkpoint_dir(run) / "best.pt")
    assert (best["best"]["epoch"], best["best"]["value"], best["best"]["se"]) == (4, 12.5, 1.0)
    for name, weights in best["nets"]["g_ab"].items():
        torch.testing.assert_close(weights, load_file(numbered_path(checkpoint_dir(run), 8))["nets"]["g_ab"][name])
    with (run / "val.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["scripted_se"]) for r in rows] == [1.0] * 4


def _page_run(root: Path, *, with_errors: bool) -> tuple[Path, RunStatus]:
    root.mkdir(parents=True)
    figures = {100: (17.5, 0.4), 200: (21.25, 0.3), 300: (20.75, 0.5)}
    rows = [{"epoch": s // 100, "step": s, "psnr": v, **({"psnr_se": se} if with_errors else {})}
            for s, (v, se) in figures.items()]
    with (root / "val.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "best.pt").write_bytes(b"\0" * 1024)  # the page only lists it
    best = {"metric": "psnr", "higher_is_better": True, "column": "psnr", "value": 21.25, "epoch": 2, "step": 200,
            **({"se": 0.3} if with_errors else {})}
    return root, RunStatus(step=300, epoch=3, best=best, finished=True)


def test_the_run_page_draws_error_bars_and_still_renders_an_old_val_csv(tmp_path):
    html = write_run_page(*_page_run(tmp_path / "new", with_errors=True)).read_text()
    svg = re.search(r'<svg class="chart" data-kind="val" data-title="psnr".*?</svg>', html).group(0)
    assert 'data-title="psnr_se"' not in html  # the error is drawn on its figure, not charted alone
    bars = re.findall(r'<path class="errorbar" data-x="(\d+)" data-y="([\d.]+)" data-error="([\d.]+)" '
                      r'd="M([\d.]+),([\d.]+)V([\d.]+)', svg)
    assert [(int(x), float(y), float(e)) for x, y, e, *_ in bars] == [(100, 17.5, 0.4), (200, 21.25, 0.3),
                                                                       (300, 20.75, 0.5)]
    # Each bar spans y - error to y + error on the chart's own y axis (read back from two tick labels).
    ticks = {float(t): float(y) - 3 for y, t in re.findall(r'<text class="tick" x="\d+" y="([\d.]+)" '
                                                           r'text-anchor="end">([^<]+)<', svg)}
    (v0, y0), (v1, y1) = sorted(ticks.items())[0], sorted(ticks.items())[-1]
    px_per_unit = (y0 - y1) / (v1 - v0)
    for _, y, error, _, low, high in bars:
        assert float(low) - float(high) == pytest.approx(2 * float(error) * px_per_unit, abs=0.15)
        assert (float(low) + float(high)) / 2 == pytest.approx(y0 - (float(y) - v0) * px_per_unit, abs=0.15)
    assert "21.25 ± 0.3" in html.split('id="checkpoints"')[1]  # the checkpoint table: figure ± error
    assert "best 21.25 ± 0.3" in html

    old = write_run_page(*_page_run(tmp_path / "old", with_errors=False)).read_text()
    assert 'data-title="psnr"' in old and "errorbar" not in old.split("<style>")[1].split("</style>")[1]
    assert "±" not in old and "21.25" in old.split('id="checkpoints"')[1]


def test_convert_and_eval_on_a_run_directory_say_which_checkpoint(tmp_path, write_paired, photos, capsys):
    data = write_paired("aligned", splits={"train": 2, "val": 2}, size=32)
    cfg = resolve_config("pix2pix", assignments=[
        *TINY, f"data.root={data}", "data.crop_size=32", "data.load_size=32", "optim.epochs=2",
        "optim.epochs_decay=0"])
    run = tmp_path / "run"
    result = train(config=cfg, run_dir=run)
    last = result.val_history[-1]
    inputs = tmp_path / "in"
    write_image(inputs / "a.png", photos(1, 32)[0])
    capsys.readouterr()
    assert main(["convert", str(run), str(inputs), str(tmp_path / "out"), "--device", "cpu"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("model: "))
    assert line.startswith(f"model: {checkpoint_dir(run) / 'latest.pt'} (step 4; "
                           f"val psnr {last['psnr']:.4g} ± {last['psnr_se']:.2g}; the run's newest weights")
    best = result.best
    if best["step"] != 4:
        assert f"best.pt: step {best['step']}, val psnr {best['value']:.4g} ± {best['se']:.2g}" in line
    assert main(["convert", str(checkpoint_dir(run) / "best.pt"), str(inputs), str(tmp_path / "out_best"),
                 "--device", "cpu"]) == 0
    assert (f"model: {checkpoint_dir(run) / 'best.pt'} (step {best['step']}; val psnr "
            f"{best['value']:.4g} ± {best['se']:.2g})") in capsys.readouterr().out
    main(["eval", str(run), str(data), "--split", "val", "--metrics", "none", "--device", "cpu",
          "--out", str(tmp_path / "eval")])
    assert line in capsys.readouterr().out
