"""The run page RUN/index.html and `translate report`: curves per loss term, validation curves with
the best point, sample grids, checkpoints with their figures, the config; offline, in Chromium."""
from __future__ import annotations

import csv
import os
import re
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from translate.training.charts import line_chart, nice_ticks, Series
from translate.cli import main
from translate.recipes import resolve_config
from translate.data.images import write_image
from translate.training.run_page import RunStatus, read_rows, write_run_page
from translate.training.loop import train

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TINY = {"generator": "unet_128", "generator.num_downs": 5, "generator.base_channels": 4,
        "discriminator": "patchgan_34", "discriminator.base_channels": 4, "data.crop_size": 32, "data.load_size": 32,
        "runtime.log_every_steps": 1, "runtime.sample_every_steps": 1, "runtime.checkpoint_every_epochs": 1,
        "optim.epochs": 2, "optim.epochs_decay": 0}


def charts(html: str, kind: str) -> list[str]:
    return re.findall(rf'<svg class="chart" data-kind="{kind}" data-title="([^"]+)"', html)


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def handmade_run(root: Path, photos, *, steps: int = 300) -> tuple[Path, RunStatus]:
    """A run folder as training leaves it (config, logs, sample grids, checkpoints), written by hand:
    noisy falling losses for three terms, a PSNR that peaks at step 200."""
    rng = np.random.default_rng(0)
    (root / "checkpoints").mkdir(parents=True)
    (root / "config.yaml").write_text(resolve_config("pix2pix").to_yaml())
    write_csv(root / "log.csv", [{"step": s, "epoch": 1 + s // 50, "lr_g": 2e-4, "seconds": s * 0.1,
                                  "G_L1": 40 * np.exp(-s / 80) + 5 + rng.normal(), "G_gan": 0.7 + 0.1 * rng.normal(),
                                  "D": 0.69 + 0.05 * rng.normal()} for s in range(1, steps + 1)])
    psnr = {50: 14.0, 100: 17.5, 150: 19.0, 200: 21.25, 250: 20.5, 300: 20.75}
    write_csv(root / "val.csv", [{"epoch": s // 50, "step": s, "l1": 1 / v, "psnr": v} for s, v in psnr.items()])
    for i, image in enumerate(photos(4, 32)):
        write_image(root / "samples" / f"step_{(i + 1) * 75:07d}.png", np.concatenate([image, image[::-1]], 1))
    for name in ("best.pt", "latest.pt", "step_0000250.pt", "step_0000300.pt"):
        (root / "checkpoints" / name).write_bytes(b"\0" * 1024)  # the page only lists them
    best = {"metric": "psnr", "higher_is_better": True, "column": "psnr", "value": 21.25, "epoch": 4, "step": 200}
    return root, RunStatus(step=steps, epoch=6, total_steps=steps, total_epochs=6, best=best, finished=True)


def test_read_rows_keeps_a_resumed_runs_rewrite_of_each_step(tmp_path):
    # Killed after step 3 was logged but before its checkpoint; the resume redid steps 2 and 3.
    (tmp_path / "log.csv").write_text("step,epoch,G_L1\n1,1,5\n2,1,4\n3,1,3\n2,1,4.5\n3,1,3.5\n4,1,\n")
    rows = read_rows(tmp_path / "log.csv")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert [r["G_L1"] for r in rows[:3]] == [5, 4.5, 3.5] and np.isnan(rows[3]["G_L1"])


def _vertices(svg: str, label: str) -> np.ndarray:
    points = re.search(rf'<polyline class="series [a-z]+" data-label="{label}" points="([^"]+)"', svg).group(1)
    return np.array([[float(v) for v in p.split(",")] for p in points.split()])


def test_a_chart_puts_each_value_where_its_axes_say():
    svg = line_chart([Series("psnr", [(0, 10.0), (5, 30.0), (10, 20.0), (15, float("nan"))], "points")],
                     title="psnr", x_label="step", kind="val", highlight=(5, 30.0))
    xy = _vertices(svg, "psnr")
    assert len(xy) == 3  # the NaN is left out
    # Tick labels sit on their grid lines: read two y ticks back and interpolate each value's height.
    y_ticks = re.findall(r'<text class="tick" x="\d+" y="([\d.]+)" text-anchor="end">([^<]+)<', svg)
    ticks = {float(t): float(y) - 3 for y, t in y_ticks}
    (v0, y0), (v1, y1) = sorted(ticks.items())[0], sorted(ticks.items())[-1]
    expected = [y0 + (v - v0) / (v1 - v0) * (y1 - y0) for v in (10.0, 30.0, 20.0)]
    np.testing.assert_allclose(xy[:, 1], expected, atol=0.15)
    assert xy[0, 0] < xy[1, 0] < xy[2, 0]
    ring = re.search(r'<circle class="best" cx="([\d.]+)" cy="([\d.]+)"', svg).groups()
    np.testing.assert_allclose([float(c) for c in ring], xy[1], atol=0.05)


@pytest.mark.parametrize("low, high", [(0, 1), (0.0123, 0.0179), (-3.5, 47), (1, 300), (5, 5), (0, 0), (1e6, 1.7e6),
                                       (1.02e-14, 1.3e-14)])  # a KID of stand-in weights is that small
def test_nice_ticks_cover_the_range_in_round_steps(low, high):
    ticks = nice_ticks(low, high)
    gaps = np.diff(ticks)
    assert ticks[0] <= low + 1e-9 * gaps[0] and ticks[-1] >= high - 1e-9 * gaps[0] and 3 <= len(ticks) <= 11
    np.testing.assert_allclose(gaps, gaps[0], rtol=1e-9)
    mantissa = gaps[0] / 10 ** np.floor(np.log10(gaps[0]))
    assert round(mantissa, 6) in (1, 2, 5)


def test_training_writes_the_page_and_report_rewrites_it(tmp_path, write_paired, capsys):
    data = write_paired("aligned", splits={"train": 2, "val": 1}, size=32)
    run = tmp_path / "run"
    umask = os.umask(0o022)
    try:
        train(config=resolve_config("pix2pix", overrides={**TINY, "data.root": str(data)}), run_dir=run)
    finally:
        os.umask(umask)
    page = run / "index.html"
    html = page.read_text()
    assert stat.S_IMODE(page.stat().st_mode) == 0o644 and not list(run.glob(".*.tmp"))
    header = next(csv.reader((run / "log.csv").open()))
    loss_terms = [k for k in header if k not in ("step", "epoch", "lr_g", "seconds")]
    assert sorted(loss_terms) == ["D", "G_L1", "G_gan"] and sorted(charts(html, "loss")) == sorted(loss_terms)
    assert charts(html, "val")[0] == "psnr" and sorted(charts(html, "val")) == ["l1", "psnr", "ssim"]
    assert html.count('<circle class="best"') == 1
    assert "base_channels: 4" in html and "method: pix2pix" in html  # the resolved config
    for name in ("checkpoints/best.pt", "checkpoints/latest.pt", "checkpoints/step_0000002.pt",
                 "checkpoints/step_0000004.pt"):
        assert f"<code>{name}</code>" in html
    sources = re.findall(r"src='([^']+)'", html)
    assert len(sources) >= 2 and all((run / s).is_file() for s in sources)  # newest grid + grids over time
    assert "<script" not in html and not re.search(r"(src|href)=['\"]?(https?:)?//", html)  # nothing to fetch

    page.unlink()
    assert main(["report", str(run)]) == 0
    assert str(page.resolve()) in capsys.readouterr().out
    again = page.read_text()
    assert sorted(charts(again, "loss")) == sorted(loss_terms) and "best " in again


def test_report_on_an_older_run_and_on_a_folder_that_is_not_one(tmp_path, capsys):
    run = tmp_path / "older"
    run.mkdir()
    (run / "log.csv").write_text("step,epoch,lr_g,seconds,G_L1,D\n1,1,0.0002,0.1,9,0.7\n2,1,0.0002,0.2,8,0.6\n")
    assert main(["report", str(run)]) == 0
    html = (run / "index.html").read_text()
    assert charts(html, "loss") == ["G_L1", "D"] and "No checkpoints yet" in html and "No validation" in html
    capsys.readouterr()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a run directory" in err


def test_the_page_renders_curves_in_chromium_offline(tmp_path, photos):
    """Open RUN/index.html from the file system in headless Chromium: every chart draws its curve,
    the best point is ringed, the newest sample grid loads, nothing is requested from a network."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs `pip install playwright`")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Debian's chromium: bash scripts/ci_browser_deps.sh")
    run, status = handmade_run(tmp_path / "run", photos)
    page_path = write_run_page(run, status)
    requests, problems = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(page_path.resolve().as_uri())
            drawn = page.evaluate("""() => [...document.querySelectorAll('svg.chart')].map(svg => ({
                kind: svg.dataset.kind, title: svg.dataset.title,
                lines: [...svg.querySelectorAll('polyline')].map(l => {
                    const b = l.getBBox(); return {width: b.width, height: b.height, points: l.points.length,
                                                   stroke: getComputedStyle(l).stroke}; }),
                best: svg.querySelectorAll('circle.best').length,
                shown: svg.getBoundingClientRect().width}))""")
            newest = page.evaluate("document.querySelector('.newest img').naturalWidth")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "run_page.png"), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
    assert all(url.startswith("file://") for url in requests), requests
    assert [c["title"] for c in drawn if c["kind"] == "loss"] == ["G_L1", "G_gan", "D"]
    assert [c["title"] for c in drawn if c["kind"] == "val"] == ["psnr", "l1"]
    for chart in drawn:
        assert chart["shown"] > 300, chart  # laid out at a readable size
        for line in chart["lines"]:
            # Each curve spans most of the 350-unit plot width, rises and falls, and is stroked.
            assert line["width"] > 200 and line["height"] > 5 and line["stroke"] not in ("none", ""), chart
    assert {c["title"]: c["best"] for c in drawn} == {"G_L1": 0, "G_gan": 0, "D": 0, "psnr": 1, "l1": 0}
    assert newest == 64  # the newest grid (two 32 px photos side by side) loaded from samples/
