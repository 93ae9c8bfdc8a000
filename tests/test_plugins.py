"""Methods and tasks plug in through their registries alone: a method and a task defined in this file
train, convert and show in `translate train --help` with no other file changed; config and data
never import a task or a method."""
from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch

from translate.cli import main
from translate.config import Settings
from translate.methods import METHODS, MethodEntry
from translate.methods.pix2pix import Pix2Pix, Pix2PixConfig
from translate.tasks import TASKS, Task


# ---- a new method: pix2pix with a Charbonnier pixel loss sqrt((x - y)^2 + eps^2) in place of L1
@dataclass
class CharbonnierConfig(Pix2PixConfig):
    SECTION: ClassVar[str] = "charbonnier"
    eps: float = 1e-3


class Charbonnier(Pix2Pix):
    def generator_losses(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        eps = self.config.method_settings.eps
        return {"G_charbonnier": torch.sqrt((out["fake_b"] - out["real_b"]) ** 2 + eps**2).mean()}


CHARBONNIER = MethodEntry(name="charbonnier", description="pix2pix on a Charbonnier pixel loss (test)",
                          build=Charbonnier, settings=CharbonnierConfig, defaults={"charbonnier": {"lambda_gan": 0.0}})


# ---- a new task: a photo's negative -> the photo, the negative's strength a setting of its own
@dataclass
class InvertSettings(Settings):
    SECTION: ClassVar[str] = "invert"
    amount: float = 1.0


def invert_pair(photo: np.ndarray, rng: np.random.Generator, *, amount: float) -> tuple[np.ndarray, np.ndarray]:
    negative = photo.astype(np.float32) * (1 - amount) + (255 - photo.astype(np.float32)) * amount
    return negative.round().astype(np.uint8), photo


class Invert(Task):
    name, description, settings = "invert", "a photo's negative -> the photo (test)", InvertSettings

    def pair_maker(self, settings: InvertSettings):
        return functools.partial(invert_pair, amount=settings.amount)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(METHODS, "charbonnier", CHARBONNIER)
    monkeypatch.setitem(TASKS, "invert", Invert())


def test_a_new_method_and_task_train_convert_and_show_in_help(registered, write_photos, tmp_path, capsys):
    from translate import Translator
    from translate.checkpoint import load_checkpoint

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "charbonnier: pix2pix on a Charbonnier pixel loss (test)" in help_text
    assert "invert: a photo's negative -> the photo (test)" in help_text

    run = tmp_path / "run"
    code = main(["train", "charbonnier", "--task", "invert", "--data", str(write_photos(4, size=48)),
                 "--out", str(run), "--max-steps", "2", "--crop-size", "32", "--load-size", "36",
                 "--device", "cpu", "--set", "generator.num_downs=5", "--set", "generator.base_channels=4",
                 "--set", "charbonnier.eps=0.01", "--set", "invert.amount=0.9"])
    assert code == 0
    saved = load_checkpoint(run)
    assert saved["step"] == 2
    assert saved["config"]["charbonnier"]["eps"] == 0.01 and saved["config"]["invert"] == {"amount": 0.9}
    image = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    result = Translator.load(run, device="cpu")(image)
    assert result.shape == image.shape and result.dtype == np.uint8


def test_a_method_flag_of_another_method_is_refused_by_name(registered, tmp_path, capsys):
    code = main(["train", "charbonnier", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--lambda-cycle", "3"])
    assert code == 2
    assert "--lambda-cycle: not a charbonnier setting" in capsys.readouterr().err


def test_config_and_data_import_no_task_or_method():
    code = ("import sys, translate.config, translate.data, translate.data.prepare, translate.data.synth, "
            "translate.data.realesrgan_degradation, translate.data.datasets, translate.data.layouts\n"
            "print(sorted(m for m in sys.modules if m.startswith(('translate.tasks', 'translate.methods'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
