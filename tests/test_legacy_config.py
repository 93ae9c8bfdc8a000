"""Run configs written by translate 0.2 (every method's section, a flat `synth`, `task: esrgan`) are
upgraded where users meet them: checkpoints, `train --resume` of an old run, `--init-from` one."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from translate.cli import main
from translate.config import upgrade_v02
from translate.recipes import PLUGINS, config_from_dict, resolve_config

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"
OLD_SECTIONS = {"pix2pix", "cyclegan", "cut", "inpaint", "synth"}


def _saved(run: str) -> dict:
    return torch.load(FIXTURES / f"{run}.pt", weights_only=True)


@pytest.mark.parametrize("run, method_section, task, task_section", [
    ("pix2pix", "pix2pix", "custom", None), ("cyclegan", "cyclegan", "custom", None),
    ("esrgan", "pix2pix", "superres", "superres")])
def test_a_02_config_upgrades_to_todays_shape(run, method_section, task, task_section):
    old = _saved(run)["config"]
    new = upgrade_v02(old, PLUGINS)
    assert new["task"] == task and new["method"] == old["method"]
    assert new[method_section] == old[method_section]  # the method's own settings, untouched
    assert set(new) & OLD_SECTIONS == {method_section} | ({task_section} & OLD_SECTIONS)
    for common in ("generator", "discriminator", "gan", "perceptual", "data", "optim", "runtime", "direction"):
        assert new[common] == old[common]
    if task_section:  # superres keeps the synth values it reads, drops the other tasks' knobs
        assert new[task_section] == {k: old["synth"][k] for k in ("scale", "blur_sigma_max", "noise_std_max",
                                                                     "jpeg_quality_min", "downscale", "degradation",
                                                                     "usm_target")}
    config = config_from_dict(old)
    assert config.to_dict() == config_from_dict(config.to_dict()).to_dict()
    assert upgrade_v02(config.to_dict(), PLUGINS) == config.to_dict()  # today's dicts pass through as they are


def test_a_02_config_file_is_read_as_a_layer(tmp_path):
    (tmp_path / "old.yaml").write_text("synth: {scale: 2, hole_area_max: 0.3}\ninpaint: {mask_discriminator: false}\n"
                                       "pix2pix: {lambda_l1: 7}\ncyclegan: {pool_size: 3}\n")
    config = resolve_config(task="superres", config_file=tmp_path / "old.yaml",
                            assignments=["generator.upscale=2"])
    assert config.task_settings.scale == 2 and config.method_settings.lambda_l1 == 7


@pytest.mark.parametrize("run", ["pix2pix", "esrgan"])
def test_train_resume_continues_a_02_run(tmp_path, write_paired, write_photos, run):
    saved = _saved(run)
    root = write_paired("paired_folders", size=128) if run == "pix2pix" else write_photos(4, size=128)
    saved["config"]["data"]["root"] = str(root)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    torch.save(saved, tmp_path / "run" / "checkpoints" / "latest.pt")
    assert main(["train", "--resume", str(tmp_path / "run"), "--max-steps", "3", "--device", "cpu"]) == 0
    resumed = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=True)
    assert resumed["step"] == 3
    assert "synth" not in resumed["config"] and resumed["config"]["task"] == config_from_dict(saved["config"]).task


def test_init_from_a_02_run(tmp_path, write_paired):
    root = write_paired("paired_folders", size=128)
    code = main(["train", "pix2pix", "--data", str(root), "--out", str(tmp_path / "run"), "--device", "cpu",
                 "--init-from", str(FIXTURES / "pix2pix.pt"), "--generator", "unet_128", "--base-channels", "4",
                 "--crop-size", "128", "--load-size", "128", "--max-steps", "1",
                 "--set", "discriminator.base_channels=4"])
    assert code == 0
