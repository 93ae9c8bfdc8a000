"""CycleGAN: image pool, identity rule, unaligned sampling, learning and exact resume."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from translate.checkpoint import load_checkpoint
from translate.config import merge
from translate.data.images import write_image
from translate.methods.cyclegan import CycleGAN, identity_loss_applies
from translate.methods.image_pool import ImagePool
from translate.recipes import config_from_dict, resolve_config
from translate.training.loop import train

TINY = {"generator.n_blocks": 1, "generator.base_channels": 8, "discriminator.base_channels": 8,
        "data.crop_size": 64, "data.load_size": 64, "runtime.log_every_steps": 1}


def tiny(data: Path, overrides: dict | None = None) -> TrainConfig:
    return resolve_config("cyclegan", overrides={**TINY, "data.root": str(data), **(overrides or {})})


def images(n: int, value: float) -> torch.Tensor:
    return torch.full((n, 3, 4, 4), value)


def test_pool_fills_then_swaps_about_half():
    pool = ImagePool(4, seed=0)
    first = pool.query(torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 4, 4))
    assert torch.equal(first[:, 0, 0, 0], torch.arange(4.0))  # filling: images pass through
    swapped = 0
    for step in range(400):
        out = pool.query(images(1, 100.0 + step))
        swapped += int(out[0, 0, 0, 0] != 100.0 + step)
    assert 160 < swapped < 240  # the 50 % rule
    assert len(pool.images) == 4


def test_pool_size_zero_passes_through():
    pool = ImagePool(0)
    x = torch.randn(3, 3, 4, 4)
    assert pool.query(x) is x and pool.images == []


def test_pool_survives_save_and_load():
    pool = ImagePool(3, seed=5)
    for i in range(5):
        pool.query(images(1, float(i)))
    state = pool.state_dict()
    restored = ImagePool(3, seed=99)
    restored.load_state_dict(state)
    for i in range(20):
        x = images(1, 50.0 + i)
        assert torch.equal(pool.query(x), restored.query(x))


def test_identity_loss_needs_equal_channels():
    config = resolve_config("cyclegan")
    assert identity_loss_applies(config)
    gray_to_rgb = config_from_dict(merge(config.to_dict(), {"generator": {"in_channels": 1}}))
    assert not identity_loss_applies(gray_to_rgb)
    small = config_from_dict(merge(gray_to_rgb.to_dict(), {"generator": {"n_blocks": 1, "base_channels": 4}}))
    method = CycleGAN(small)
    out = method({"a": torch.zeros(1, 1, 32, 32), "b": torch.zeros(1, 3, 32, 32)})
    losses = method.generator_losses(out)
    assert "idt_A" not in losses and {"G_AB", "G_BA", "cycle_A", "cycle_B"} <= set(losses)
    assert method.specs["g_ba"].in_channels == 3 and method.specs["d_a"].in_channels == 1


def posterised(image: np.ndarray) -> np.ndarray:
    return (image // 64 * 64 + 32).astype(np.uint8)[:, :, ::-1].copy()  # posterise + swap R/B


@pytest.fixture
def two_domains(tmp_path, photos) -> Path:
    root = tmp_path / "domains"
    for i, image in enumerate(photos(6)):
        write_image(root / "trainA" / f"a{i}.png", image)
    for i, image in enumerate(photos(10)[6:]):  # different photos: the domains are unpaired
        write_image(root / "trainB" / f"b{i}.png", posterised(image))
    for i, image in enumerate(photos(12)[10:]):
        write_image(root / "testA" / f"t{i}.png", image)
        write_image(root / "testB" / f"t{i}.png", posterised(image))
    return root


def test_cyclegan_cycle_loss_falls_and_writes_grids(tmp_path, two_domains):
    config = tiny(two_domains, {"optim": {"epochs": 25, "epochs_decay": 0, "lr_g": 1e-3, "lr_d": 1e-3}})
    result = train(config=config, run_dir=tmp_path / "run")
    assert result.step == 6 * 25  # epoch length is max(|A|, |B|)
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    cycle = [float(r.split(",")[header.index("cycle_A")]) for r in rows[1:]]
    assert np.mean(cycle[-6:]) < 0.75 * np.mean(cycle[:6]), cycle
    for term in ("D_A", "D_B", "G_AB", "G_BA", "cycle_B", "idt_A", "idt_B"):
        assert term in header
    assert "cycle_A_psnr" in result.val_metrics and "cycle_B_l1" in result.val_metrics
    grids = sorted((tmp_path / "run" / "samples").glob("*.png"))
    assert grids
    from translate.data.images import read_image

    grid = read_image(grids[-1])
    assert grid.shape == (128, 192, 3)  # two rows (A and B) of three 64 px tiles


def test_cyclegan_resume_keeps_pool_and_schedule(tmp_path, two_domains):
    schedule = {"optim.epochs": 1, "optim.epochs_decay": 2, "cyclegan.pool_size": 3}
    straight = train(config=tiny(two_domains, schedule), run_dir=tmp_path / "straight")
    train(config=tiny(two_domains, {**schedule, "runtime.max_steps": 8}), run_dir=tmp_path / "resumed")
    pool = load_checkpoint(tmp_path / "resumed")["method_state"]["pool_a"]
    assert pool["images"].shape[0] == 3
    resumed = train(run_dir=tmp_path / "resumed", resume=True, overrides={"runtime.max_steps": 0})
    assert resumed.step == straight.step == 18
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    for net in a["nets"]:
        for key, value in a["nets"][net].items():
            torch.testing.assert_close(value, b["nets"][net][key], rtol=0, atol=0, msg=f"{net}.{key}")
    assert torch.equal(a["method_state"]["pool_b"]["images"], b["method_state"]["pool_b"]["images"])


def test_cyclegan_sigkill_then_resume(tmp_path, two_domains, train_then_kill):
    run = tmp_path / "run"
    args = ["cyclegan", "--data", str(two_domains), "--out", str(run), "--set", "generator.n_blocks=1",
            "--base-channels", "8", "--set", "discriminator.base_channels=8", "--crop-size", "64",
            "--load-size", "64", "--pool-size", "4", "--epochs", "1000"]
    step_at_kill = train_then_kill(args, run, min_step=5)
    saved = load_checkpoint(run)["method_state"]["pool_a"]["images"]
    assert saved.shape[0] == 4
    result = train(run_dir=run, resume=True, overrides={"runtime.max_steps": step_at_kill + 2})
    assert result.step == step_at_kill + 2 and result.epoch == (step_at_kill + 2) // 6
    assert not list(run.glob("**/*.tmp"))
