"""Checkpoint files: every unreadable one is refused in one sentence of ours naming the file."""
from __future__ import annotations

import collections

import pytest
import torch

from translate.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


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
