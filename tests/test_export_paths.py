"""Clean exports (issue 25 item 5): no absolute path of this machine anywhere in an ONNX or .pt2
file; the whole file's bytes (zip members and protobuf alike) are scanned."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from translate import Translator
from translate.checkpoint import save_checkpoint
from translate.export.scrub import relativise
from translate.export.write import export_model
from translate.nets import ResnetSpec, UnetSpec, build_net, spec_to_dict

ROOT = Path(__file__).resolve().parent.parent


def _machine_paths(*extra: Path) -> list[str]:
    paths = {str(ROOT), sys.prefix, os.path.realpath(sys.prefix), os.path.expanduser("~"), str(Path(torch.__file__).parent),
             *map(str, extra)}
    return sorted(p for p in paths if len(p) > 1)


@pytest.mark.parametrize("spec", [ResnetSpec(base_channels=4, n_blocks=1), UnetSpec(base_channels=4, num_downs=5)],
                         ids=["resnet", "unet"])
@pytest.mark.parametrize("suffix", [".onnx", ".pt2"])
def test_no_absolute_path_in_the_exported_file(tmp_path, spec, suffix):
    torch.manual_seed(0)
    checkpoint = tmp_path / "run.pt"
    save_checkpoint(checkpoint, {"config": {"method": "pix2pix", "data": {"root": str(tmp_path / "data")}},
                                 "specs": {"g_ab": spec_to_dict(spec)}, "nets": {"g_ab": build_net(spec).state_dict()},
                                 "step": 0, "epoch": 0})
    translator = Translator.load(checkpoint, device="cpu", precision="fp32")
    path = export_model(translator, tmp_path / f"model{suffix}", check=False).path
    data = Path(path).read_bytes()
    leaked = [p for p in _machine_paths(tmp_path) if p.encode() in data]
    assert not leaked, f"{path.name} holds {leaked}"
    assert b"site-packages" not in data and b".py\", line" not in data  # no stack trace survives


def test_relativise_keeps_file_names_only():
    text = 'File "/home/me/src/translate/nets/resnet.py", line 3, in forward; kind image/png; C:\\Users\\me\\x.py'
    assert relativise(text) == 'File "resnet.py", line 3, in forward; kind image/png; x.py'
