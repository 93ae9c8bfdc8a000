"""Weights resolution: explicit path, weights folder, library cache; never a download."""
from __future__ import annotations

import pytest
import torch

from translate import weights
from translate.errors import WeightsError


def test_locate_order(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsError, match="translate weights fetch vgg19"):
        weights.locate("vgg19", weights_dir=tmp_path / "w")
    cached = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True); cached.write_bytes(b"x")
    assert weights.locate("vgg19", weights_dir=tmp_path / "w") == cached
    local = tmp_path / "w" / "vgg19-dcbb9e9d.pth"
    local.parent.mkdir(); local.write_bytes(b"x")
    assert weights.locate("vgg19", weights_dir=tmp_path / "w") == local
    explicit = tmp_path / "mine.pth"; explicit.write_bytes(b"x")
    assert weights.locate("vgg19", explicit, weights_dir=tmp_path / "w") == explicit
    with pytest.raises(WeightsError, match="no such weights file"):
        weights.locate("vgg19", tmp_path / "missing.pth")
