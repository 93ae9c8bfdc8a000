"""Evaluation during training: the metric registry, checkpoints/best.pt chosen by the metric, and
the best-so-far record across --resume."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from translate.training import validation
from translate.checkpoint import checkpoint_dir, load_checkpoint, load_file, numbered_path
from translate.cli import main
from translate.recipes import resolve_config
from translate.errors import ConfigError, WeightsError
from translate.training.loop import train
from translate.training.validation import BestRecord, ValMetric, choose_metric

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


def selected(history: list[dict], column: str, *, higher: bool, items: list[dict] | None = None) -> dict:
    """The row best.pt should hold: each figure replaces the record only when it beats it by more
    than the standard error of the gain; ties and gains within the error keep the earlier one.
    With `items` (each pass's per-item scores by pair prefix, in history order) that error is of
    the per-item differences, std(d, ddof=1) / sqrt(n), the prefixes' combined as for a mean of
    independent figures; without, the new figure's own error (the column + "_se")."""
    best = 0
    for i in range(1, len(history)):
        gain = history[i][column] - history[best][column]
        gain = gain if higher else -gain
        if items:
            errors = [np.std(np.subtract(items[i][k], items[best][k]), ddof=1) / np.sqrt(len(items[i][k]))
                      for k in items[i]]
            error = np.sqrt(np.sum(np.square(errors))) / len(errors)
        else:
            error = history[i][f"{column}_se"]
        if gain > error:
            best = i
    return history[best]


@pytest.fixture
def pass_items(monkeypatch) -> list[dict]:
    """Each validation pass's per-item scores of the selection metric, as the real pass returns them."""
    seen: list[dict] = []
    real = validation.validation_pass

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        seen.append(result.items)
        return result
    monkeypatch.setattr(validation, "validation_pass", spy)
    return seen


@pytest.fixture
def no_metric_weights(tmp_path, monkeypatch) -> str:
    """A weights folder with nothing in it, and an empty torch.hub cache: no learned metric can run."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "no_weights").mkdir()
    return str(tmp_path / "no_weights")


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_best_pt_holds_the_epoch_with_the_best_recorded_figure(tmp_path, write_paired, write_unpaired, method,
                                                                 no_metric_weights, pass_items):
    if method == "pix2pix":  # L1, lower is better; the selection figure is the val.csv column "l1"
        data = write_paired("aligned", splits={"train": 3, "val": 2}, size=32)
        cfg = config(method, data, **{"optim.epochs": 4, "optim.lr_g": 5e-3, "runtime.val_metric": "l1"})
        higher, column = False, "l1"
    else:  # auto: no KID here, so PSNR of the cycle reconstructions, higher is better
        data = write_unpaired("split", n_a=3, n_b=3, n_test=2, size=32)
        cfg = config(method, data, **{"optim.epochs": 3, "optim.lr_g": 5e-3, "runtime.weights_dir": no_metric_weights})
        higher, column = True, "cycle_psnr"
    run = tmp_path / "run"
    result = train(config=cfg, run_dir=run)
    history = result.val_history
    assert len(history) == cfg.optim.epochs and all(column in row for row in history)
    if method == "cyclegan":  # the selection figure is the mean of both directions' figures
        assert history[0][column] == pytest.approx((history[0]["cycle_A_psnr"] + history[0]["cycle_B_psnr"]) / 2)
    assert all(row[f"{column}_se"] > 0 for row in history)  # two photos x fixed draws: a spread
    assert [len(items) for items in pass_items] == [2 if method == "cyclegan" else 1] * len(history)
    winner = selected(history, column, higher=higher, items=pass_items)
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
    metric = ValMetric("scripted", True, True, lambda config, device, n_images: lambda outs, refs: figures.pop(0))
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


def test_evaluation_every_n_epochs_reports_final_and_best(tmp_path, write_paired, scripted, capsys, caplog):
    data = write_paired("aligned", splits={"train": 2, "val": 1}, size=32)
    scripted[:] = [1.0, 2.0, 0.5]
    args = [a for k, v in P2P.items() if k != "optim.epochs_decay" for a in ("--set", f"{k}={v}")]
    run = tmp_path / "run"
    with caplog.at_level("INFO", logger="translate"):
        code = main(["train", "pix2pix", "--data", str(data), "--out", str(run), *args, "--epochs", "5",
                     "--epochs-decay", "0", "--val-every-epochs", "2", "--val-metric", "scripted"])
    assert code == 0
    history = load_checkpoint(run)["val_history"]
    assert [row["epoch"] for row in history] == [2, 4, 5]  # every 2nd epoch, and always the last
    out = capsys.readouterr().out
    assert "scripted=0.5" in out.split("validation (final): ")[1].splitlines()[0]
    assert f"best scripted=2 at epoch 4 (step 8): {checkpoint_dir(run) / 'best.pt'}" in out
    assert f"run page: {run / 'index.html'}" in out
    assert "final scripted 0.5 (epoch 5); best 2 (epoch 4)" in caplog.text


def test_cut_scores_translations_against_domain_b_and_keeps_the_generator_alone(tmp_path, write_unpaired,
                                                                                 monkeypatch):
    from translate.data.images import read_image

    data = write_unpaired("split", n_a=2, n_b=2, n_test=2, size=32)
    seen = []

    def make(config, device, n_images):
        def score(outputs, references):
            seen.append((outputs, references))
            return float(len(seen))
        return score

    monkeypatch.setitem(validation.VAL_METRICS, "set_level", ValMetric("set_level", True, False, make))
    cfg = resolve_config("cut", overrides={**COMMON, "generator.n_blocks": 1, "cut.num_patches": 16,
                                           "cut.nce_layers": "input,down1,down2,block1", "data.root": str(data),
                                           "optim.epochs": 1, "runtime.val_metric": "set_level"})
    result = train(config=cfg, run_dir=tmp_path / "run")
    assert result.best["column"] == "set_level" and len(seen) == 1
    outputs, references = seen[0]
    test_b = sorted((data / "testB").iterdir())
    assert len(references) == len(outputs) == 2
    for reference, path in zip(references, test_b):  # real B images, not the inputs
        np.testing.assert_array_equal(validation._rgb8(reference), read_image(path))
    assert set(load_file(checkpoint_dir(tmp_path / "run") / "best.pt")["nets"]) == {"g_ab"}


def test_auto_takes_the_learned_metric_when_it_can_run(no_metric_weights, metric_weights):
    cpu = torch.device("cpu")

    def choose(name, *, paired, weights_dir, n_images=10, **overrides):
        cfg = resolve_config("pix2pix", overrides={"runtime.weights_dir": weights_dir, **overrides})
        return choose_metric(name, paired=paired, config=cfg, device=cpu, n_images=n_images).name

    assert choose("auto", paired=True, weights_dir=no_metric_weights) == "psnr"
    assert choose("auto", paired=False, weights_dir=no_metric_weights) == "psnr"
    with pytest.raises(WeightsError, match="inception"):  # asked for by name: its reason, not a fallback
        choose("kid", paired=False, weights_dir=no_metric_weights)
    # With (stand-in) weights: LPIPS for paired methods, KID for unpaired ones given enough images.
    weights = str(metric_weights)
    assert choose("auto", paired=True, weights_dir=weights) == "lpips"
    assert choose("auto", paired=False, weights_dir=weights) == "kid"
    assert choose("auto", paired=False, weights_dir=weights, n_images=9) == "psnr"
    assert choose("auto", paired=True, weights_dir=weights, **{"generator.out_channels": 2}) == "psnr"
    with pytest.raises(ConfigError, match="kid needs at least 10 validation images, there are 9"):
        choose("kid", paired=False, weights_dir=weights, n_images=9)
    # A resumed run keeps measuring what it measured (when that can still run).
    cfg = resolve_config("pix2pix", overrides={"runtime.weights_dir": weights})
    assert choose_metric("auto", paired=True, config=cfg, device=cpu, n_images=10, previous="ssim").name == "ssim"


def test_cyclegan_keeps_best_pt_by_kid_and_pix2pix_by_lpips(tmp_path, write_paired, write_unpaired, metric_weights,
                                                           pass_items):
    """The learned metrics choose best.pt end to end, with stand-in weights (random parameters)."""
    weights = str(metric_weights)
    unpaired = write_unpaired("split", n_a=2, n_b=2, n_test=10, size=32)
    result = train(config=config("cyclegan", unpaired, **{"optim.epochs": 2, "runtime.weights_dir": weights}),
                   run_dir=tmp_path / "cyclegan")
    assert result.best["metric"] == "kid" and result.best["column"] == "kid" and not result.best["higher_is_better"]
    history = result.val_history
    assert all(row["kid"] == pytest.approx((row["A_to_B_kid"] + row["B_to_A_kid"]) / 2) for row in history)
    assert pass_items == [{}] * len(history)  # KID is set-level: its own error decides
    winner = selected(history, "kid", higher=False)
    assert (result.best["epoch"], result.best["value"]) == (winner["epoch"], pytest.approx(winner["kid"]))
    assert_best_is_that_epochs_generators(tmp_path / "cyclegan", winner["step"])

    paired = write_paired("aligned", splits={"train": 2, "val": 2}, size=32)
    result = train(config=config("pix2pix", paired, **{"optim.epochs": 2, "runtime.weights_dir": weights}),
                   run_dir=tmp_path / "pix2pix")
    winner = selected(result.val_history, "lpips", higher=False, items=pass_items[len(history):])
    assert result.best["metric"] == "lpips" and result.best["epoch"] == winner["epoch"]
    assert all(0 < row["lpips"] < math.inf for row in result.val_history)
    assert_best_is_that_epochs_generators(tmp_path / "pix2pix", winner["step"])


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
