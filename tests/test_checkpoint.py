"""Checkpoint files: every unreadable one is refused in one sentence of ours naming the file; numbered
checkpoints are slim (inference only) and pruned, while latest.pt keeps the full training state."""
from __future__ import annotations

import collections
import logging

import numpy as np
import pytest
import torch

from translate.checkpoint import (
    CheckpointError, load_checkpoint, numbered_checkpoints, numbered_path, prune_checkpoints, save_checkpoint,
)
from translate.recipes import resolve_config
from translate.training.loop import Trainer, train


class Payload:
    """A class a weights-only load must refuse to import."""


def _valid(path):
    save_checkpoint(path, {"config": {}, "specs": {}, "nets": {"g_ab": {"w": torch.zeros(3)}}, "step": 0, "epoch": 0})
    return path


def _truncated(path):
    data = _valid(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _not_a_checkpoint(path):
    path.write_text("hello, this is a text file\n")


def _not_pytorch_zip(path):
    path.write_bytes(b"PK\x03\x04" + b"garbage" * 20)


def _python_objects(path):
    torch.save({"nets": collections.OrderedDict(), "payload": Payload}, path)


@pytest.mark.parametrize("write, problem", [
    (_truncated, "not a readable checkpoint: truncated, corrupt, or not a file saved by PyTorch"),
    (_not_a_checkpoint, "not a readable checkpoint: truncated, corrupt, or not a file saved by PyTorch"),
    (_not_pytorch_zip, "not a readable checkpoint: truncated, corrupt, or not a file saved by PyTorch"),
    (_python_objects, "refused: it holds Python objects besides tensors and plain values"),
], ids=lambda v: getattr(v, "__name__", "")[1:])
def test_unreadable_checkpoint_is_one_sentence_of_ours(tmp_path, write, problem):
    path = tmp_path / "model.pt"
    write(path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {problem}")
    assert "\n" not in message and len(message) < 300
    # torch's advice on its own load flags (turn the weights-only check off) must not reach our users.
    assert "weights_only" not in message and "trust" not in message and "https://" not in message


def test_python_objects_name_what_would_have_been_imported(tmp_path):
    path = tmp_path / "model.pt"
    _python_objects(path)
    with pytest.raises(CheckpointError, match="Payload"):
        load_checkpoint(path)


def test_foreign_and_newer_checkpoints_are_named(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt: not a translate checkpoint"):
        load_checkpoint(foreign)
    newer = tmp_path / "newer.pt"
    save_checkpoint(newer, {"format_version": 99, "config": {}, "specs": {}, "nets": {}})
    with pytest.raises(CheckpointError, match="newer.pt: checkpoint format version 99 is newer"):
        load_checkpoint(newer)


TINY = {"generator": "unet_128", "generator.num_downs": 5, "generator.base_channels": 4,
        "discriminator.base_channels": 4, "data.crop_size": 64, "data.load_size": 64}


def test_prune_keeps_the_newest_and_the_protected(tmp_path):
    for step in (3, 20, 100, 7, 1000):
        numbered_path(tmp_path, step).write_bytes(b"x")
    (tmp_path / "latest.pt").write_bytes(b"x")
    best = numbered_path(tmp_path, 3)
    removed = prune_checkpoints(tmp_path, keep=2, protected={best})
    assert sorted(p.name for p in removed) == ["step_0000007.pt", "step_0000020.pt"]
    assert [p.name for p in numbered_checkpoints(tmp_path)] == ["step_0000003.pt", "step_0000100.pt",
                                                               "step_0001000.pt"]
    assert (tmp_path / "latest.pt").exists()
    assert prune_checkpoints(tmp_path, keep=0) == []  # 0 keeps all


def test_numbered_checkpoints_are_slim_pruned_and_convert(tmp_path, write_paired, photo, caplog):
    from translate.inference.translator import Translator

    data = write_paired("aligned", splits={"train": 3})
    run = tmp_path / "run"
    config = resolve_config("pix2pix", overrides={
        **TINY, "data.root": str(data), "runtime.max_steps": 5, "runtime.checkpoint_every_steps": 1,
        "runtime.checkpoint_every_epochs": 0, "runtime.keep_checkpoints": 2})
    with caplog.at_level(logging.INFO, logger="translate.training"):  # the loop and its Checkpointer
        train(config=config, run_dir=run)
    assert "checkpoints use" in caplog.text
    folder = run / "checkpoints"
    assert [p.name for p in numbered_checkpoints(folder)] == ["step_0000004.pt", "step_0000005.pt"]
    slim, full = load_checkpoint(folder / "step_0000005.pt"), load_checkpoint(run)
    assert set(slim["nets"]) == set(slim["specs"]) == {"g_ab"} and "optimizers" not in slim
    assert {"optimizers", "rng", "method_state"} <= set(full) and set(full["nets"]) == {"g_ab", "d"}
    assert (folder / "step_0000005.pt").stat().st_size < 0.5 * (folder / "latest.pt").stat().st_size
    image = np.ascontiguousarray(photo("astronaut", 64))
    outputs = [Translator.load(source, device="cpu", precision="fp32")(image)
               for source in (folder / "step_0000005.pt", run)]
    assert np.array_equal(outputs[0], outputs[1])  # same weights at step 5


def test_checkpoint_cadence_by_steps_epochs_and_minutes(tmp_path, write_paired, monkeypatch):
    data = write_paired("aligned", splits={"train": 2})
    config = resolve_config("pix2pix", overrides={
        **TINY, "data.root": str(data), "runtime.checkpoint_every_steps": 4, "runtime.checkpoint_every_epochs": 3,
        "runtime.checkpoint_every_minutes": 10})
    cadence = Trainer(config, tmp_path / "run").checkpoints
    clock = [1000.0]
    monkeypatch.setattr("translate.training.checkpoints.time.monotonic", lambda: clock[0])
    cadence.last_numbered = clock[0]
    assert not cadence.numbered_due(step=5, epoch=2) and not cadence.numbered_due(step=5, epoch=2, epoch_end=True)
    assert cadence.numbered_due(step=8, epoch=2)
    assert cadence.numbered_due(step=9, epoch=3, epoch_end=True) and not cadence.numbered_due(step=9, epoch=3)
    clock[0] += 10 * 60
    assert cadence.numbered_due(step=9, epoch=3)


def test_epoch_cadence_writes_numbered_checkpoints(tmp_path, write_paired):
    data = write_paired("aligned", splits={"train": 2})
    config = resolve_config("pix2pix", overrides={
        **TINY, "data.root": str(data), "optim.epochs": 4, "optim.epochs_decay": 0,
        "runtime.checkpoint_every_epochs": 2, "runtime.keep_checkpoints": 1})
    train(config=config, run_dir=tmp_path / "run")
    # epochs of 2 steps: numbered at epochs 2 and 4 (steps 4 and 8), of which the newest is kept
    assert [p.name for p in numbered_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_0000008.pt"]
