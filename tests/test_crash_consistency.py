"""Crash consistency (issue 25): training and folder conversion SIGKILLed at 10 seeded moments each
(process start-up, checkpoint writes, output writes: whatever the moment lands in), each time
continued; training ends with exactly the weights of an uninterrupted run, and after every kill each
output file decodes completely or does not exist (its hidden temporary file aside)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from translate.checkpoint import load_checkpoint
from translate.data.images import write_image
from translate.nets import ResnetSpec, build_net

KILLS = 10
STEPS = 12
TINY = {"generator": "unet_128", "generator.num_downs": 5, "generator.base_channels": 4,
        "discriminator.base_channels": 4, "data.crop_size": 32, "data.load_size": 32,
        "runtime.checkpoint_every_steps": 1, "runtime.seed": 3}
TINY_ARGS = [arg for path, value in TINY.items() for arg in ("--set", f"{path}={value}")]
pytestmark = pytest.mark.slow


def _command(*args) -> list[str]:
    return [sys.executable, "-m", "translate", *map(str, args)]


def _killed_after(command: list[str], seconds: float) -> bool:
    """Run `command`, SIGKILL it after `seconds` unless it ended; True when it was killed."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=seconds)
        assert proc.returncode in (0, 1), proc.stderr.read().decode()[-2000:]
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def _until_done(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr[-2000:]


def _paired_data(root: Path, photo) -> Path:
    for i, name in enumerate(["astronaut", "coffee", "chelsea"]):
        a = photo(name, 32)
        write_image(root / "train" / f"{i:03d}.png", np.concatenate([a, 255 - a], axis=1))
    return root


def test_training_killed_ten_times_ends_with_the_uninterrupted_weights(tmp_path, photo):
    data = _paired_data(tmp_path / "data", photo)
    train = lambda run: _command("train", "pix2pix", "--data", data, "--out", run, *TINY_ARGS,  # noqa: E731
                                 "--max-steps", STEPS)
    _until_done(train(tmp_path / "reference"))
    run = tmp_path / "killed"
    rng = random.Random(25)
    started = False
    for _ in range(KILLS):
        command = _command("train", "--resume", run, "--max-steps", STEPS) if started else train(run)
        _killed_after(command, rng.uniform(2.0, 4.5))
        started = (run / "checkpoints" / "latest.pt").is_file()
        if started:
            load_checkpoint(run)  # after every kill: the old checkpoint or the new one, never half
    _until_done(_command("train", "--resume", run, "--max-steps", STEPS) if started else train(run))
    ours, reference = load_checkpoint(run), load_checkpoint(tmp_path / "reference")
    assert ours["step"] == reference["step"] == STEPS
    for net, weights in reference["nets"].items():
        for key, value in weights.items():
            torch.testing.assert_close(ours["nets"][net][key], value, rtol=0, atol=0, msg=f"{net}.{key}")


def _outputs_whole_or_absent(out: Path, expected: dict[str, tuple[int, ...]]) -> None:
    for path in out.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            assert image is not None and image.shape == expected[path.name], f"{path.name} is torn"


def test_folder_conversion_killed_ten_times_leaves_only_whole_outputs(tmp_path, photo):
    torch.manual_seed(0)
    torch.save(build_net(ResnetSpec(base_channels=4, n_blocks=1)).state_dict(), tmp_path / "g.pth")
    src = tmp_path / "in"
    names = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle", "retina"]
    for i in range(24):
        write_image(src / f"{i:03d}.png", photo(names[i % len(names)], 96 + 16 * (i % 4)))
    expected = {f"{i:03d}.png": (96 + 16 * (i % 4), 96 + 16 * (i % 4), 3) for i in range(24)}
    convert = lambda out: _command("convert", tmp_path / "g.pth", src, out, "--device", "cpu",  # noqa: E731
                                   "--precision", "fp32", "--workers", "1")
    _until_done(convert(tmp_path / "reference"))
    out = tmp_path / "killed"
    rng = random.Random(26)
    for _ in range(KILLS):
        _killed_after(convert(out), rng.uniform(1.5, 4.0))
        if out.exists():
            _outputs_whole_or_absent(out, expected)
    _until_done(convert(out))
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)  # every output, no temporary file left
    for name in expected:
        ours = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(ours, cv2.imread(str(tmp_path / "reference" / name), cv2.IMREAD_UNCHANGED)), name
