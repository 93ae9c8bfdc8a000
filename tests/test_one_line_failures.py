"""Every traceback of issue 25 item 6 becomes one line: `report` on a damaged run writes the page and
names what it skipped; mixed image sizes with preprocess=none; a full disk while latest.pt is written
says "No space left" and keeps the previous checkpoint (a real full file system: a 1 MiB tmpfs)."""
from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from translate.checkpoint import load_checkpoint, save_checkpoint
from translate.data.images import write_image

TINY = {"generator": "unet_128", "generator.num_downs": 5, "generator.base_channels": 4,
        "discriminator.base_channels": 4, "data.crop_size": 64, "data.load_size": 64}
TINY_ARGS = [arg for path, value in TINY.items() for arg in ("--set", f"{path}={value}")]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "translate", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    return errors[0]


def test_report_on_a_damaged_run_writes_the_page_and_names_what_it_skipped(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("method: pix2pix\noptim: {epochs: [unclosed\n")
    (run / "log.csv").write_bytes(b"step,epoch,loss_g\n1,0,0.5\n2,0,\xff\xfe broken\n3,0,0.25\n")
    done = _cli("report", run)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "log.csv: skipped 1 line" in done.stderr and "config.yaml: skipped: not valid YAML" in done.stderr
    page = (run / "index.html").read_text()
    assert "loss_g" in page and "[unclosed" in page  # the readable rows charted, the config text shown


def test_mixed_sizes_with_preprocess_none_is_one_line(tmp_path, photo):
    data = tmp_path / "data"
    for i, size in enumerate([64, 96]):
        a = photo("astronaut", size)
        write_image(data / "train" / f"{i:03d}.png", np.concatenate([a, 255 - a], axis=1))
    done = _cli("train", "pix2pix", "--data", data, "--out", tmp_path / "run", *TINY_ARGS, "--set",
                "data.preprocess=none", "--batch-size", "2", "--max-steps", "1")
    line = _one_error_line(done)
    assert "differ in size" in line and "000.png is 64x64" in line and "001.png is 96x96" in line


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (root only); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_while_saving_says_so_and_keeps_the_previous_checkpoint(tiny_disk):
    latest = tiny_disk / "checkpoints" / "latest.pt"
    save_checkpoint(latest, {"config": {}, "specs": {}, "nets": {"w": torch.ones(1000)}, "step": 1})
    with pytest.raises(OSError) as err:
        save_checkpoint(latest, {"config": {}, "specs": {}, "nets": {"w": torch.ones(1_000_000)}, "step": 2})
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(latest)
    assert "No space left on device" in str(err.value)
    assert load_checkpoint(latest)["step"] == 1  # the previous one, intact
    assert [p.name for p in latest.parent.iterdir()] == ["latest.pt"]  # no temporary file left


def test_resume_keeps_an_edited_config_and_says_which_it_used(tmp_path, photo):
    data = tmp_path / "data"
    for i in range(2):
        a = photo("astronaut", 64)
        write_image(data / "train" / f"{i:03d}.png", np.concatenate([a, 255 - a], axis=1))
    run = tmp_path / "run"
    first = _cli("train", "pix2pix", "--data", data, "--out", run, *TINY_ARGS, "--max-steps", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    edited = (run / "config.yaml").read_text().replace("base_channels: 4", "base_channels: 16", 1)
    (run / "config.yaml").write_text(edited)
    resumed = _cli("train", "--resume", run, "--max-steps", "2")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (run / "config.edited.yaml").read_text() == edited
    assert "base_channels: 4" in (run / "config.yaml").read_text()
    assert "kept as config.edited.yaml" in resumed.stderr and "continues with the config saved" in resumed.stderr
