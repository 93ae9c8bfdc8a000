"""`translate demo`, the README's first command, end to end through the CLI with few steps: the
bundled photos, prepare, train, convert and the eval page, and no overwriting of a user's folder."""
from __future__ import annotations

import re

import pytest

from translate.cli import main
from translate.data.images import read_image


@pytest.mark.slow
def test_demo_runs_the_whole_workflow_and_reports_the_held_out_gain(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "10", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "demo: trained 10 steps, converted 2 held-out photo(s)" in printed
    model, bicubic, gain = map(float, re.search(
        r"held-out PSNR: model ([\d.]+) dB vs bicubic ([\d.]+) dB \(([+-][\d.]+) dB\)", printed).groups())
    assert gain == pytest.approx(model - bicubic, abs=0.011) and 20 < bicubic < 45
    # Each converted photo is its held-out input at twice the size.
    inputs = sorted((out / "data" / "test" / "A").glob("*.png"))
    assert [p.name for p in sorted((out / "converted").iterdir())] == [p.name for p in inputs]
    for path in inputs:
        height, width = read_image(path).shape[:2]
        assert read_image(out / "converted" / path.name).shape[:2] == (2 * height, 2 * width)
    assert (out / "eval" / "index.html").is_file() and (out / "run" / "checkpoints" / "latest.pt").is_file()

    # A second run into the same folder is refused in one line; the first run's files stay.
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main(["demo", "--out", str(out), "--steps", "10"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "already exists and is not empty" in error
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
