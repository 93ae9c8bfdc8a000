"""Instance noise on the discriminator's inputs: Gaussian, of the configured std, annealed to zero."""
from __future__ import annotations

import pytest
import torch

from translate.config import ConfigError
from translate.recipes import resolve_config
from translate.methods.pix2pix import Pix2Pix
from translate.training.loop import Trainer

TINY = ["generator.base_channels=4", "generator.num_downs=5", "discriminator.base_channels=4",
        "data.crop_size=32", "data.load_size=32"]


def _method(*sets: str) -> Pix2Pix:
    return Pix2Pix(resolve_config("pix2pix", assignments=[*TINY, *sets]))


def test_noise_std_anneals_linearly_to_zero_over_its_steps_or_the_run():
    method = _method("gan.instance_noise=0.5", "gan.instance_noise_steps=10")
    stds = {}
    for step in (0, 5, 9, 10, 50):
        method.step = step
        stds[step] = method.instance_noise_std()
    assert stds == pytest.approx({0: 0.5, 5: 0.25, 9: 0.05, 10: 0.0, 50: 0.0})
    whole_run = _method("gan.instance_noise=0.2")
    whole_run.step, whole_run.total_steps = 3, 4
    assert whole_run.instance_noise_std() == pytest.approx(0.05)
    assert _method().instance_noise_std() == 0.0  # off by default


def test_discriminator_inputs_carry_gaussian_noise_of_that_std_then_none():
    torch.manual_seed(0)
    method = _method("gan.instance_noise=0.3", "gan.instance_noise_steps=100")
    seen = []
    d = method.nets["d"]
    d.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    batch = {"a": torch.zeros(2, 3, 64, 64), "b": torch.zeros(2, 3, 64, 64)}
    method.step = 50  # half-way: std 0.15
    out = method(batch)
    method.discriminator_losses(out)
    method.generator_losses(out)
    clean_real = torch.cat([out["cond"], out["real_b"]], 1)
    noise = seen[0] - clean_real  # D's real input in its own step
    assert len(seen) == 3 and noise.mean().abs() < 0.01 and noise.std().item() == pytest.approx(0.15, rel=0.02)
    assert not torch.equal(seen[1] - torch.cat([out["cond"], out["fake_b"].detach()], 1), noise)  # fresh draws
    seen.clear()
    method.step = 100
    method.discriminator_losses(out)
    assert torch.equal(seen[0], clean_real)  # annealed away: D sees the images themselves


def test_the_loop_tells_the_method_where_the_run_is(tmp_path, write_paired):
    data = write_paired("aligned", splits={"train": 3})
    config = resolve_config("pix2pix", overrides={"data.root": str(data)},
                            assignments=[*TINY, "optim.epochs=1", "optim.epochs_decay=1", "gan.instance_noise=0.1"])
    trainer = Trainer(config, tmp_path / "run")
    trainer.run()
    assert (trainer.method.step, trainer.method.total_steps) == (5, 6)  # set before the last of 6 steps


def test_negative_noise_is_refused():
    with pytest.raises(ConfigError, match="gan.instance_noise"):
        resolve_config("pix2pix", assignments=["gan.instance_noise=-0.1"])
