"""The shared training loop: learning, schedule, exact resume (also after SIGKILL), run-dir safety."""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import torch

from translate.checkpoint import CheckpointError, load_checkpoint
from translate.cli import main
from translate.config import TrainConfig, named_overrides
from translate.recipes import resolve_config
from translate.training.sampler import EpochSampler
from translate.training.loop import lr_factor, train

# A tiny pix2pix: 5-level U-Net of width 8, PatchGAN of width 8, 64 px crops.
TINY = {"generator": "unet_128", "generator.num_downs": 5, "generator.base_channels": 8,
        "discriminator.base_channels": 8, "data.crop_size": 64, "data.load_size": 64, "runtime.log_every_steps": 1}
TINY_ARGS = [arg for path, value in TINY.items() for arg in ("--set", f"{path}={value}")]


def tiny_config(data: Path, overrides: dict | None = None, **named) -> TrainConfig:
    """TINY on `data`, then named settings (epochs=2, lr=1e-3, ...), then dotted `overrides`."""
    return resolve_config("pix2pix", overrides={**TINY, "data.root": str(data), **named_overrides(**named),
                                                **(overrides or {})})


def test_lr_schedule_is_constant_then_linear_to_zero():
    factors = [lr_factor(e, epochs=3, epochs_decay=3) for e in range(6)]
    assert factors == pytest.approx([1, 1, 1, 0.75, 0.5, 0.25])


def test_epoch_sampler_resumes_mid_epoch_and_splits_ranks():
    full = EpochSampler(10, seed=3, epoch=2).indices()
    assert sorted(full) == list(range(10))
    assert EpochSampler(10, seed=3, epoch=2, start=4).indices() == full[4:]
    assert EpochSampler(10, seed=3, epoch=3).indices() != full
    longer = EpochSampler(4, seed=3, epoch=0, length=10).indices()
    assert len(longer) == 10 and sorted(longer[:4]) == [0, 1, 2, 3] and sorted(longer[4:8]) == [4, 5, 6, 7]
    ranks = [EpochSampler(10, seed=3, epoch=2, rank=r, world_size=3).indices() for r in range(3)]
    assert len({len(r) for r in ranks}) == 1  # every rank steps equally often
    assert set().union(*ranks) == set(range(10))


def test_pix2pix_learns_on_real_photos(tmp_path, write_paired):
    data = write_paired("aligned", splits={"train": 4, "val": 2})
    config = tiny_config(data, {"generator.dropout": 0}, epochs=12, epochs_decay=0, lr=1e-3, norm="instance")
    result = train(config=config, run_dir=tmp_path / "run")
    l1 = [row["l1"] for row in result.val_history]
    assert len(l1) == 12
    assert l1[-1] < 0.75 * l1[0], l1
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file() and (run / "log.csv").is_file() and (run / "val.csv").is_file()
    assert list((run / "samples").glob("*.png"))
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == 48 and ckpt["epoch"] == 12 and set(ckpt["nets"]) == {"g_ab", "d"}


def _params(run: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(run)
    return {f"{n}.{k}": v for n, sd in ckpt["nets"].items() for k, v in sd.items()}


def test_resume_mid_epoch_matches_an_uninterrupted_run(tmp_path, write_paired):
    data = write_paired("aligned", splits={"train": 5})
    config = tiny_config(data, epochs=2, epochs_decay=2, batch_size=2)
    straight = train(config=config, run_dir=tmp_path / "straight")
    assert straight.step == 12  # 3 batches x 4 epochs
    stopped = train(config=tiny_config(data, epochs=2, epochs_decay=2, batch_size=2, max_steps=5),
                    run_dir=tmp_path / "resumed")
    assert (stopped.step, stopped.epoch) == (5, 1)
    resumed = train(run_dir=tmp_path / "resumed", resume=True, overrides={"runtime.max_steps": 0})
    assert (resumed.step, resumed.epoch) == (12, 4)
    a, b = _params(tmp_path / "straight"), _params(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_existing_run_is_never_overwritten(tmp_path, write_paired):
    data = write_paired("aligned", splits={"train": 2})
    config = tiny_config(data, max_steps=1)
    train(config=config, run_dir=tmp_path / "run")
    before = (tmp_path / "run" / "checkpoints" / "latest.pt").read_bytes()
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(config=config, run_dir=tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "latest.pt").read_bytes() == before


@pytest.mark.parametrize("gan_loss,discriminator", [("lsgan", "pixelgan"), ("wgangp", "patchgan_70"),
                                                     ("hinge", "multiscale_patchgan")])
def test_every_gan_objective_and_discriminator_trains(tmp_path, write_paired, gan_loss, discriminator):
    data = write_paired("aligned", splits={"train": 2}, size=96)
    overrides = {"discriminator.base_channels": 4, **({"discriminator.norm": "none"} if gan_loss == "wgangp" else {})}
    config = tiny_config(data, overrides, gan_loss=gan_loss, discriminator=discriminator, max_steps=2,
                         crop_size=96, load_size=96)
    result = train(config=config, run_dir=tmp_path / "run")
    assert result.step == 2
    # Each term reaches the log (their values against a hand computation: test_pix2pix.py).
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    expected = {"G_gan", "G_L1", "D"} | ({"D_gp"} if gan_loss == "wgangp" else set())
    assert expected <= {name for name, value in rows[-1].items() if value}
    spec = load_checkpoint(tmp_path / "run")["specs"]["d"]
    assert spec["kind"] == ("multiscale" if discriminator == "multiscale_patchgan" else "patchgan")
    assert spec["n_layers"] == (0 if discriminator == "pixelgan" else 3)


def test_cli_train_then_resume(tmp_path, write_paired, capsys):
    data = write_paired("paired_folders", splits={"train": 3, "val": 1})
    run = tmp_path / "run"
    assert main(["train", "pix2pix", "--data", str(data), "--out", str(run), *TINY_ARGS, "--max-steps", "2"]) == 0
    assert main(["train", "--resume", str(run), "--max-steps", "4"]) == 0
    assert load_checkpoint(run)["step"] == 4
    assert "trained 4 steps" in capsys.readouterr().out
    # wrong usage is one line on stderr and exit code 2
    missing = tmp_path / "missing"
    assert main(["train", "pix2pix", "--data", str(missing), "--out", str(tmp_path / "r2"), *TINY_ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "missing" in err and "\n" not in err


def test_sigkill_mid_run_then_resume(tmp_path, write_paired, train_then_kill):
    """Kill -9 a training process, then resume: it continues from the last checkpoint, and no
    half-written checkpoint is left behind."""
    data = write_paired("aligned", splits={"train": 4})
    run = tmp_path / "run"
    step_at_kill = train_then_kill(["pix2pix", "--data", str(data), "--out", str(run), *TINY_ARGS, "--epochs", "1000"],
                                   run, min_step=6)
    assert step_at_kill >= 6
    result = train(run_dir=run, resume=True, overrides={"runtime.max_steps": step_at_kill + 3})
    assert result.step == step_at_kill + 3
    assert not list(run.glob("**/*.tmp"))
    steps = [int(line.split(",")[0]) for line in (run / "log.csv").read_text().splitlines()[1:]]
    assert steps[-3:] == [step_at_kill + 1, step_at_kill + 2, step_at_kill + 3]


def test_l1_only_pix2pix_has_no_discriminator(tmp_path, write_paired):
    data = write_paired("aligned", splits={"train": 2})
    result = train(config=tiny_config(data, {"pix2pix.lambda_gan": 0}, max_steps=2), run_dir=tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run")
    assert result.step == 2 and set(ckpt["nets"]) == {"g_ab"} and set(ckpt["optimizers"]) == {"g"}
    header = (tmp_path / "run" / "log.csv").read_text().splitlines()[0].split(",")
    assert "G_L1" in header and "G_gan" not in header and "D" not in header
    assert train(run_dir=tmp_path / "run", resume=True, overrides={"runtime.max_steps": 3}).step == 3


def test_long_epochs_draw_fresh_crops_of_the_same_files(write_photos):
    """samples_per_epoch > len: a second pass over a file must not repeat the first pass's crop."""
    from translate.data.datasets import PairedDataset
    from translate.data.layouts import Sample, find_photos
    from translate.data.transforms import paired_transform

    photos = [Sample(p) for p in find_photos(write_photos(2, size=96))]
    dataset = PairedDataset(photos, in_channels=3, out_channels=3, make_pair=lambda p, rng: (p, p),
                            transform=paired_transform(load_size=96, crop_size=32, flip=False, train=True,
                                                       preprocess="crop"))
    first, again = dataset[0], dataset[2]  # the same file, first and second pass
    assert first["path"] == again["path"] and not torch.equal(first["b"], again["b"])


def test_until_max_steps_trains_at_a_constant_rate_with_one_bar(tmp_path, write_paired, capsys, caplog):
    data = write_paired("aligned", splits={"train": 3})
    caplog.set_level("INFO", logger="translate")  # the bar shows at INFO, as on the command line
    result = train(config=tiny_config(data, epochs=0, epochs_decay=0, max_steps=7), run_dir=tmp_path / "run")
    assert (result.step, result.epoch) == (7, 2)  # epochs of 3 steps: two whole ones and one step
    rates = {line.split(",")[2] for line in (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]}
    assert rates == {"0.0002"}
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and "7/7" in err and "/1000000" not in err  # overall progress to the last step


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with no pixel data worth the name."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_bad_files_are_named_before_the_first_step(tmp_path, write_paired, capsys):
    from translate.data.layouts import DatasetError

    data = write_paired("aligned", splits={"train": 3, "val": 1})
    (data / "train" / "zz_bomb.png").write_bytes(_png_header(60000, 60000))
    run = tmp_path / "run"
    assert main(["train", "pix2pix", "--data", str(data), "--out", str(run), *TINY_ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "zz_bomb.png" in err and "megapixels" in err and "\n" not in err
    assert not (run / "checkpoints" / "latest.pt").exists() and not (run / "log.csv").exists()
    (data / "train" / "zz_bomb.png").unlink()
    val_file = next((data / "val").iterdir())
    val_file.write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=f"{val_file.name}: not a readable image"):
        train(config=tiny_config(data), run_dir=run)
    with pytest.raises(DatasetError, match=r"pixels is more than data.max_megapixels \(0.001\)"):
        train(config=tiny_config(data, {"data.max_megapixels": 0.001}), run_dir=run)


def test_a_validation_failure_keeps_the_epochs_steps(tmp_path, write_paired):
    """Issue: validation ran before the epoch's checkpoint, so a file that fails there lost the epoch."""
    from translate.errors import ImageError

    data = write_paired("aligned", splits={"train": 3, "val": 1})
    val_file = next((data / "val").iterdir())
    val_file.write_bytes(val_file.read_bytes()[:120])  # intact header, truncated pixels
    run = tmp_path / "run"
    with pytest.raises(ImageError, match=val_file.name):
        train(config=tiny_config(data, epochs=2, epochs_decay=0), run_dir=run)
    assert load_checkpoint(run)["step"] == 3  # the first epoch's three steps survive


def test_a_file_failing_mid_epoch_keeps_the_steps_before_it(tmp_path, write_paired):
    from translate.errors import ImageError

    data = write_paired("aligned", splits={"train": 3})
    good = (data / "train" / "000_astronaut.png").read_bytes()
    (data / "train" / "zz_bad.png").write_bytes(good[:120])  # passes the header check, fails to decode
    run = tmp_path / "run"
    with pytest.raises(ImageError, match="zz_bad.png"):
        train(config=tiny_config(data), run_dir=run)  # seed 0 draws it third
    assert load_checkpoint(run)["step"] == 2


def test_resume_refuses_architecture_and_data_flags(tmp_path, write_paired, capsys):
    data = write_paired("aligned", splits={"train": 2})
    run = tmp_path / "run"
    assert main(["train", "pix2pix", "--data", str(data), "--out", str(run), *TINY_ARGS, "--max-steps", "-1"]) == 2
    assert "runtime.max_steps: must be 0 or more" in capsys.readouterr().err
    assert main(["train", "pix2pix", "--data", str(data), "--out", str(run), *TINY_ARGS, "--max-steps", "1"]) == 0
    for flags, named in [(["--generator", "unet_256"], "generator"), (["--norm", "instance"], "generator.norm"),
                         (["--set", "data.crop_size=32"], "data.crop_size"), (["--task", "colorize"], "--task")]:
        capsys.readouterr()
        assert main(["train", "--resume", str(run), "--max-steps", "2", *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {named}") and "cannot" in err and "resume" in err and "\n" not in err
    assert load_checkpoint(run)["step"] == 1


def test_methods_choose_the_update_order(tmp_path, write_paired, monkeypatch):
    """A method that updates D before G (as CUT does) gets that order from the loop."""
    from translate.methods import METHODS
    from translate.methods.pix2pix import Pix2Pix

    calls = []

    class DiscriminatorFirst(Pix2Pix):
        update_order = ("discriminator", "generator")

        def generator_losses(self, out):
            calls.append("G")
            return super().generator_losses(out)

        def discriminator_losses(self, out):
            calls.append("D")
            return super().discriminator_losses(out)

    monkeypatch.setitem(METHODS, "pix2pix", dataclasses.replace(METHODS["pix2pix"], build=DiscriminatorFirst))
    data = write_paired("aligned", splits={"train": 2})
    assert train(config=tiny_config(data, max_steps=2), run_dir=tmp_path / "run").step == 2
    assert calls == ["D", "G", "D", "G"]
