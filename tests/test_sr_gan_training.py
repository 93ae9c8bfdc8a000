"""The SR GAN recipes through the one trainer: --init-from a fidelity run, weight averaging saved and
restored (exact resume), the VGG19 file's sha256 recorded, conversion with the averaged weights, and
the CLI end to end. Tiny nets (RRDBNet width 8, 1 block), 32 px crops (128 px where the VGG-style
discriminator needs it, with shallow VGG19 layers there), random VGG19 weights."""
from __future__ import annotations

import pytest
import torch

from translate.checkpoint import CheckpointError, load_checkpoint
from translate.cli import main
from translate.recipes import resolve_config
from translate.data.images import read_image
from translate.inference.loading import load_model
from translate.training.loop import Trainer, train
from translate.weights import sha256_of

TINY_RRDB = {"generator": "rrdbnet_x4", "generator.base_channels": 8, "generator.n_blocks": 1,
             "generator.grow_channels": 4}
TINY_ARGS = ["--generator", "rrdbnet_x4", "--set", "generator.base_channels=8", "--set", "generator.n_blocks=1",
             "--set", "generator.grow_channels=4"]


@pytest.fixture
def sr_data(tmp_path, write_photos):
    """A prepared superres folder (train / val / test) of real photos, 128 x 160 px."""
    photos = write_photos(6, size=(128, 160))
    data = tmp_path / "data"
    assert main(["prepare", "superres", str(photos), str(data), "--val-fraction", "0.2", "--test-fraction", "0.2"]) == 0
    return data


def _fidelity_run(data, run, generator=None, **overrides):
    """Stage 1: RRDBNet (or `generator`) on L1 alone (the superres recipe without its GAN term), 2 steps."""
    config = resolve_config("pix2pix", task="superres", overrides={
        **(generator or TINY_RRDB), "data.root": str(data), "pix2pix.lambda_gan": 0, "data.crop_size": 32, "data.load_size": 32,
        "optim.epochs": 0, "optim.epochs_decay": 0, "runtime.max_steps": 2, **overrides})
    train(config=config, run_dir=run)
    return run


def _gan_config(task, data, init_from, vgg, **overrides):
    crop = 128 if task in ("srgan", "esrgan") else 32  # the VGG-style discriminator takes 128 px only
    generator = {"generator": "srresnet_x4", "generator.base_channels": 8, "generator.n_blocks": 1} \
        if task == "srgan" else TINY_RRDB
    # At 128 px the recipes' deep VGG19 layers cost seconds a step on a busy CPU: compare shallow ones.
    shallow = {"perceptual.layers.conv5_4": 0, "perceptual.layers.relu5_4": 0, "perceptual.layers.relu1_1": 1} \
        if crop == 128 else {}
    return resolve_config("pix2pix", recipe=task, overrides={
        **generator, **shallow, "discriminator.base_channels": 8, "data.root": str(data), "data.crop_size": crop,
        "data.load_size": crop, "optim.batch_size": 1, "perceptual.weights": str(vgg), "init_from": str(init_from),
        "runtime.log_every_steps": 1, **overrides})


def test_init_from_takes_the_fidelity_generator_and_refuses_another(tmp_path, sr_data, vgg19_weights):
    fidelity = _fidelity_run(sr_data, tmp_path / "psnr")
    trainer = Trainer(_gan_config("realesrgan", sr_data, fidelity, vgg19_weights, **{"runtime.max_steps": 1}),
                      tmp_path / "gan")
    start = load_checkpoint(fidelity)["nets"]["g_ab"]
    for key, value in trainer.method.nets["g_ab"].state_dict().items():
        torch.testing.assert_close(value, start[key], rtol=0, atol=0, msg=key)
    assert trainer.ema is not None  # the averages start at the fidelity weights too
    torch.testing.assert_close(trainer.ema.nets["g_ab"].state_dict(), start, rtol=0, atol=0)
    other = _gan_config("realesrgan", sr_data, fidelity, vgg19_weights, **{"generator.n_blocks": 2})
    with pytest.raises(CheckpointError, match=r"^init_from .*psnr: its g_ab \(a_to_b\) differs from this run's g_ab "
                                              r"in 1 setting \(n_blocks: 1 there, 2 here\); give this run the same"):
        Trainer(other, tmp_path / "gan2")
    missing = _gan_config("realesrgan", sr_data, tmp_path / "nowhere", vgg19_weights)
    with pytest.raises(CheckpointError, match="^init_from: .*nowhere: no such run directory"):
        Trainer(missing, tmp_path / "gan3")


def _state(run):
    ckpt = load_checkpoint(run)
    return {f"{group}.{n}.{k}": v for group in ("nets", "ema") for n, sd in ckpt[group].items() for k, v in sd.items()}


def test_resume_is_exact_with_weight_averages(tmp_path, sr_data, vgg19_weights):
    """Train 4 steps straight, or 1 then resume to 4: nets, discriminator and averages all equal."""
    fidelity = _fidelity_run(sr_data, tmp_path / "psnr")
    schedule = {"optim.epochs": 1, "optim.epochs_decay": 1, "data.samples_per_epoch": 2}
    straight = train(config=_gan_config("realesrgan", sr_data, fidelity, vgg19_weights, **schedule),
                     run_dir=tmp_path / "straight")
    assert straight.step == 4 and straight.val_metrics
    stopped = _gan_config("realesrgan", sr_data, fidelity, vgg19_weights, **schedule, **{"runtime.max_steps": 1})
    assert train(config=stopped, run_dir=tmp_path / "resumed").step == 1  # mid-epoch
    assert train(run_dir=tmp_path / "resumed", resume=True, overrides={"runtime.max_steps": 0}).step == 4
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "resumed")
    assert a.keys() == b.keys() and any(k.startswith("ema.g_ab.") for k in a) and "nets.d.conv1.weight_orig" in a
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    ckpt = load_checkpoint(tmp_path / "straight")
    assert ckpt["method_state"]["feature_weights"]["vgg19"] == sha256_of(vgg19_weights)
    # The averages move more slowly than the nets: after 4 steps they differ from both ends.
    start = load_checkpoint(fidelity)["nets"]["g_ab"]["conv_first.weight"]
    ema, live = ckpt["ema"]["g_ab"]["conv_first.weight"], ckpt["nets"]["g_ab"]["conv_first.weight"]
    assert not torch.equal(ema, live) and not torch.equal(ema, start)
    assert (ema - start).abs().sum() < (live - start).abs().sum()


def test_validation_and_conversion_use_the_averaged_weights(tmp_path, sr_data, vgg19_weights):
    fidelity = _fidelity_run(sr_data, tmp_path / "psnr")
    run = tmp_path / "gan"
    train(config=_gan_config("realesrgan", sr_data, fidelity, vgg19_weights, **{"optim.epochs": 0,
          "optim.epochs_decay": 0, "runtime.max_steps": 3, "optim.ema_decay": 0.5,
          "runtime.checkpoint_every_steps": 3}), run_dir=run)
    ckpt = load_checkpoint(run)
    model = load_model(run)  # what convert, export and serve load
    for key, value in model.net.state_dict().items():
        torch.testing.assert_close(value, ckpt["ema"]["g_ab"][key], rtol=0, atol=0, msg=key)
    numbered = sorted((run / "checkpoints").glob("step_*.pt"))
    assert numbered and set(load_checkpoint(numbered[-1])["ema"]) == {"g_ab"}
    trainer = Trainer(_gan_config("realesrgan", sr_data, fidelity, vgg19_weights, **{"optim.epochs": 0,
                      "optim.epochs_decay": 0, "runtime.max_steps": 3, "optim.ema_decay": 0.5}), run, ckpt)
    with_average = trainer.validate()
    trainer.ema = None
    live = trainer.validate()
    trainer.method.nets["g_ab"].load_state_dict(ckpt["ema"]["g_ab"])
    assert trainer.validate() == with_average != live


@pytest.mark.parametrize("task", ["srgan", "esrgan"])
def test_every_sr_gan_recipe_trains_a_step(tmp_path, sr_data, vgg19_weights, task):
    generator = {"generator": "srresnet_x4", "generator.base_channels": 8, "generator.n_blocks": 1} \
        if task == "srgan" else {}
    fidelity = _fidelity_run(sr_data, tmp_path / "psnr", generator)
    result = train(config=_gan_config(task, sr_data, fidelity, vgg19_weights, **{"optim.epochs": 0,
                   "optim.epochs_decay": 0, "runtime.max_steps": 1}), run_dir=tmp_path / "gan")
    log = (tmp_path / "gan" / "log.csv").read_text().splitlines()
    assert result.step == 1 and all(term in log[0] for term in ("G_perceptual", "G_gan", "D"))


def test_cli_fidelity_then_gan_stage_then_resume_then_convert(tmp_path, sr_data, vgg19_weights, capsys):
    psnr, gan, out = tmp_path / "psnr", tmp_path / "gan", tmp_path / "out"
    tiny = [*TINY_ARGS, "--crop-size", "32", "--load-size", "32", "--max-steps", "2", "--epochs", "0",
            "--epochs-decay", "0"]
    # No method: a --task recipe trains pix2pix.
    assert main(["train", "--task", "superres", "--data", str(sr_data), "--out", str(psnr), *tiny,
                 "--set", "pix2pix.lambda_gan=0"]) == 0
    assert main(["train", "--task", "superres", "--recipe", "realesrgan", "--init-from", str(psnr), "--data", str(sr_data), "--out", str(gan),
                 *tiny, "--batch-size", "1", "--set", "discriminator.base_channels=8",
                 "--set", f"perceptual.weights={vgg19_weights}"]) == 0
    assert main(["train", "--resume", str(gan), "--max-steps", "3"]) == 0
    ckpt = load_checkpoint(gan)
    assert ckpt["step"] == 3 and set(ckpt["ema"]) == {"g_ab"} and ckpt["config"]["init_from"] == str(psnr)
    assert ckpt["method_state"]["feature_weights"]["vgg19"] == sha256_of(vgg19_weights)
    assert main(["convert", str(gan), str(sr_data / "test" / "A"), str(out)]) == 0
    for path in sorted((sr_data / "test" / "A").glob("*.png")):
        small, big = read_image(path), read_image(out / path.name)
        assert big.shape[:2] == (4 * small.shape[0], 4 * small.shape[1])
    capsys.readouterr()
    assert main(["train", "--resume", str(gan), "--init-from", str(psnr)]) == 2
    assert "--init-from: cannot change on resume" in capsys.readouterr().err


def test_cli_without_vgg19_weights_says_how_to_get_them(tmp_path, sr_data, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--task", "esrgan", "--data", str(sr_data), "--out", str(tmp_path / "gan"),
                 *TINY_ARGS, "--max-steps", "1"]) == 2
    note, err = capsys.readouterr().err.strip().split("\n")  # 0.2's task name still works, with a note
    assert note == "note: --task esrgan is now --task superres --recipe esrgan"
    assert err.startswith("error: vgg19: weights not found") and "translate weights fetch vgg19" in err
