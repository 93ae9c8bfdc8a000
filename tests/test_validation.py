"""Evaluation during training: the metric registry, checkpoints/best.pt chosen by the metric, and
the best-so-far record across --resume."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from translate import validation
from translate.checkpoint import checkpoint_dir, load_checkpoint, load_file, numbered_path
from translate.cli import main
from translate.config import resolve_config
from translate.errors import WeightsError
from translate.training import train
from translate.validation import BestRecord, ValMetric, choose_metric

# 32 px photos, U-Net of 5 levels and width 4 (pix2pix); 1-block ResNet of width 4 (CycleGAN).
# Every epoch writes a numbered checkpoint and none is pruned, so best.pt can be compared with them.
COMMON = {"generator.base_channels": 4, "discriminator": "patchgan_34", "discriminator.base_channels": 4,
          "data.crop_size": 32, "data.load_size": 32, "runtime.log_every_steps": 1, "runtime.sample_every_steps": 0,
          "runtime.checkpoint_every_epochs": 1, "runtime.keep_checkpoints": 0, "optim.epochs_decay": 0}
P2P = {"generator": "unet_128", "generator.num_downs": 5, **COMMON}
CYC = {"generator": "resnet_6blocks", "generator.n_blocks": 1, "cyclegan.pool_size": 2, **COMMON}


def config(method: str, data: Path, **overrides):
    return resolve_config(method, overrides={**(P2P if method == "pix2pix" else CYC), "data.root": str(data),
                                             **overrides})


def generator_weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = load_file(path)
    return {f"{net}.{k}": v for net, sd in ckpt["nets"].items() if net.startswith("g") for k, v in sd.items()}


def assert_best_is_that_epochs_generators(run: Path, step: int) -> None:
    folder = checkpoint_dir(run)
    best, numbered = generator_weights(folder / "best.pt"), generator_weights(numbered_path(folder, step))
    assert best.keys() == numbered.keys()
    for k in best:
        torch.testing.assert_close(best[k], numbered[k], rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_best_pt_holds_the_epoch_with_the_best_recorded_figure(tmp_path, write_paired, write_unpaired, method):
    if method == "pix2pix":  # L1, lower is better; the selection figure is the val.csv column "l1"
        data = write_paired("aligned", splits={"train": 3, "val": 2}, size=32)
        cfg = config(method, data, **{"optim.epochs": 4, "optim.lr_g": 5e-3, "runtime.val_metric": "l1"})
        pick, column = min, "l1"
    else:  # auto: no KID here, so PSNR of the cycle reconstructions, higher is better
        data = write_unpaired("split", n_a=3, n_b=3, n_test=2, size=32)
        cfg = config(method, data, **{"optim.epochs": 3, "optim.lr_g": 5e-3})
        pick, column = max, "cycle_psnr"
    run = tmp_path / "run"
    result = train(config=cfg, run_dir=run)
    history = result.val_history
    assert len(history) == cfg.optim.epochs and all(column in row for row in history)
    if method == "cyclegan":  # the selection figure is the mean of both directions' figures
        assert history[0][column] == pytest.approx((history[0]["cycle_A_psnr"] + history[0]["cycle_B_psnr"]) / 2)
    winner = pick(history, key=lambda row: row[column])  # first of equals: ties keep the earlier one
    best = load_file(checkpoint_dir(run) / "best.pt")["best"]
    assert result.best == best
    assert (best["column"], best["epoch"], best["step"]) == (column, winner["epoch"], winner["step"])
    assert best["value"] == pytest.approx(winner[column])
    assert_best_is_that_epochs_generators(run, winner["step"])
    assert load_checkpoint(run)["best"] == best  # latest.pt carries the record for --resume


@pytest.fixture
def scripted(monkeypatch):
    """A metric (higher is better) that reports the given figures in turn: a run whose best epoch
    is known beforehand, plugged in the way KID and LPIPS plug into the registry."""
    figures: list[float] = []
    metric = ValMetric("scripted", True, True, lambda config, device: lambda outs, refs: figures.pop(0))
    monkeypatch.setitem(validation.VAL_METRICS, "scripted", metric)
    return figures


def test_resume_keeps_the_best_so_far_record(tmp_path, write_paired, scripted):
    data = write_paired("aligned", splits={"train": 2, "val": 1}, size=32)
    run = tmp_path / "run"
    scripted[:] = [5.0, 1.0]
    cfg = config("pix2pix", data, **{"optim.epochs": 4, "runtime.val_metric": "scripted", "runtime.max_steps": 4})
    first = train(config=cfg, run_dir=run)
    assert (first.epoch, first.best["epoch"], first.best["value"]) == (2, 1, 5.0)
    scripted[:] = [3.0, 4.0]  # better than epoch 2, worse than epoch 1: a forgotten record would move best.pt
    resumed = train(run_dir=run, resume=True, overrides={"runtime.max_steps": 0})
    assert resumed.epoch == 4 and not scripted
    assert [row["scripted"] for row in resumed.val_history] == [5.0, 1.0, 3.0, 4.0]
    assert (resumed.best["epoch"], resumed.best["step"], resumed.best["value"]) == (1, 2, 5.0)
    assert load_file(checkpoint_dir(run) / "best.pt")["best"]["epoch"] == 1
    assert_best_is_that_epochs_generators(run, 2)


def test_evaluation_every_n_epochs(tmp_path, write_paired, scripted):
    data = write_paired("aligned", splits={"train": 2, "val": 1}, size=32)
    scripted[:] = [1.0, 2.0, 0.5]
    cfg = config("pix2pix", data, **{"optim.epochs": 5, "runtime.val_metric": "scripted",
                                     "runtime.val_every_epochs": 2})
    result = train(config=cfg, run_dir=tmp_path / "run")
    assert [row["epoch"] for row in result.val_history] == [2, 4, 5]  # and always the last epoch
    assert result.best["epoch"] == 4


def test_auto_prefers_the_learned_metric_when_it_can_run(monkeypatch):
    cfg = resolve_config("pix2pix")
    cpu = torch.device("cpu")
    assert choose_metric("auto", paired=True, config=cfg, device=cpu).name == "psnr"
    assert choose_metric("auto", paired=False, config=cfg, device=cpu).name == "psnr"

    def missing(config, device):
        raise WeightsError("inception: no weights")

    monkeypatch.setitem(validation.VAL_METRICS, "kid", ValMetric("kid", False, False, missing))
    assert choose_metric("auto", paired=False, config=cfg, device=cpu).name == "psnr"
    with pytest.raises(WeightsError, match="inception"):  # asked for by name: its reason, not a fallback
        choose_metric("kid", paired=False, config=cfg, device=cpu)
    monkeypatch.setitem(validation.VAL_METRICS, "kid", ValMetric("kid", False, False, lambda c, d: lambda o, r: 0.0))
    assert choose_metric("auto", paired=False, config=cfg, device=cpu).name == "kid"
    assert choose_metric("auto", paired=True, config=cfg, device=cpu).name == "psnr"
    # A resumed run keeps measuring what it measured (when that can still run).
    assert choose_metric("auto", paired=False, config=cfg, device=cpu, previous="ssim").name == "ssim"


def test_record_improves_strictly_and_never_on_nan():
    higher = BestRecord("psnr", True)
    assert higher.improves(3.0) and not higher.improves(math.nan)
    higher.value = 3.0
    assert higher.improves(3.5) and not higher.improves(3.0) and not higher.improves(2.0)
    lower = BestRecord("l1", False, value=0.2)
    assert lower.improves(0.1) and not lower.improves(0.2) and not lower.improves(0.3)
    assert BestRecord.from_dict(lower.to_dict()) == lower


def test_an_unknown_metric_is_one_line(tmp_path, write_paired, capsys):
    data = write_paired("aligned", splits={"train": 2, "val": 1}, size=32)
    args = [a for k, v in P2P.items() for a in ("--set", f"{k}={v}")]
    code = main(["train", "pix2pix", "--data", str(data), "--out", str(tmp_path / "run"), *args,
                 "--val-metric", "fidelity", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "runtime.val_metric: 'fidelity' is not a metric" in err and "psnr" in err
