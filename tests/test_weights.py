"""Weights resolution: explicit path, weights folder, library cache; never a download."""
from __future__ import annotations

import dataclasses
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from translate import weights
from translate.errors import WeightsError
from translate.integrity import pins



@pytest.fixture(autouse=True)
def stand_ins_allowed(monkeypatch):
    """These tests put b"x" stand-ins under pinned names; verification is tested in test_weights_integrity."""
    monkeypatch.setitem(pins._allow, "unverified", True)

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


def test_library_copies_count_and_pytorch_fids_name_is_the_same_inception(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    alias = tmp_path / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's cache name
    alias.parent.mkdir(parents=True); alias.write_bytes(b"x")
    assert weights.locate("inception", weights_dir=tmp_path / "w") == alias
    # The LPIPS layers ship inside the lpips package, so they are found there without a fetch.
    assert weights.locate("lpips_alex", weights_dir=tmp_path / "w").parts[-3:] == ("weights", "v0.1", "alex.pth")


def test_the_lpips_package_ships_the_pinned_layers(tmp_path):
    for net in ("alex", "vgg"):
        (copy,) = weights.library_copies(f"lpips_{net}")
        assert weights.sha256_of(copy) == weights.FEATURE_WEIGHTS[f"lpips_{net}"].sha256


def _serve(monkeypatch, name: str, source: Path, sha256: str | None = None) -> None:
    """Point a known feature network at a local file:// URL (tests never reach the network)."""
    entry = weights.FEATURE_WEIGHTS[name]
    monkeypatch.setitem(weights.FEATURE_WEIGHTS, name, dataclasses.replace(
        entry, url=source.as_uri(), sha256=sha256 if sha256 is not None else entry.sha256))


def test_fetch_feature_checks_the_sha256_before_the_file_appears(tmp_path, monkeypatch):
    source = tmp_path / "served.pth"
    torch.save({"features.0.weight": torch.zeros(2)}, source)
    digest = weights.sha256_of(source)
    _serve(monkeypatch, "alexnet", source, sha256="0" * 8)  # torchvision style: an 8-digit prefix that differs
    with pytest.raises(WeightsError, match=f"sha256 {digest}, expected 00000000...; not saved"):
        weights.fetch_feature("alexnet", tmp_path / "w")
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())
    _serve(monkeypatch, "alexnet", source, sha256=digest[:8])
    dest = weights.fetch_feature("alexnet", tmp_path / "w")
    assert dest.name == "alexnet-owt-7be5be79.pth" and dest.read_bytes() == source.read_bytes()
    _serve(monkeypatch, "inception", source, sha256=digest)  # a full digest must match in full
    assert weights.fetch_feature("inception", tmp_path / "w").is_file()
    _serve(monkeypatch, "lpips_vgg", source, sha256=digest[:-1] + "x")
    with pytest.raises(WeightsError, match="not saved"):
        weights.fetch_feature("lpips_vgg", tmp_path / "w")


def test_fetch_downloads_atomically_and_fails_in_one_line_offline(tmp_path, monkeypatch):
    from translate.nets import ResnetSpec, build_net

    source = tmp_path / "served.pth"
    torch.save(build_net(ResnetSpec(base_channels=4, n_blocks=1)).state_dict(), source)
    model = weights.PUBLISHED["style_monet"]
    monkeypatch.setitem(weights.PUBLISHED, "style_monet",
                        weights.PublishedModel(model.name, source.as_uri(), model.method, model.description))
    dest = weights.fetch("style_monet", tmp_path / "w")  # file:// URL: no network in tests
    assert dest == tmp_path / "w" / "style_monet.pth" and dest.read_bytes() == source.read_bytes()

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(weights.WeightsError, match="download from http.*failed") as info:
        weights.fetch("horse2zebra", tmp_path / "w")
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [".verified.json", "style_monet.pth"]  # no partial file
    with pytest.raises(weights.WeightsError, match="unknown published model"):
        weights.fetch("nope", tmp_path / "w")


def test_weights_command_lists_and_fetches(tmp_path, monkeypatch, capsys):
    from translate.cli import main

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    source = tmp_path / "served.pth"
    torch.save({"w": torch.ones(3)}, source)
    _serve(monkeypatch, "vgg16", source, sha256=weights.sha256_of(source)[:8])
    model = weights.PUBLISHED["horse2zebra"]
    monkeypatch.setitem(weights.PUBLISHED, "horse2zebra",
                        weights.PublishedModel(model.name, source.as_uri(), model.method, model.description))
    assert main(["weights", "fetch", "vgg16", "horse2zebra", "--dest", str(tmp_path / "w")]) == 0
    assert (tmp_path / "w" / "vgg16-397923af.pth").is_file() and (tmp_path / "w" / "horse2zebra.pth").is_file()
    capsys.readouterr()
    assert main(["weights", "list", "--weights-dir", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "w" / "vgg16-397923af.pth") in out
    assert "inception" in out and "missing" in out
    assert any(line.split()[:3] == ["horse2zebra", "cyclegan", "verified"] for line in out.splitlines())
    assert main(["weights", "fetch", "nope"]) == 2
    assert "nope: unknown weights" in capsys.readouterr().err
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("offline")))
    assert main(["weights", "fetch", "alexnet", "--dest", str(tmp_path / "w")]) == 1
    assert "alexnet: download from https://download.pytorch.org/models/alexnet-owt-7be5be79.pth failed (offline)" \
        in capsys.readouterr().err


def test_every_known_weight_comes_over_https():
    from translate.weights import FEATURE_WEIGHTS, PUBLISHED

    urls = [m.url for m in PUBLISHED.values()] + [w.url for w in FEATURE_WEIGHTS.values()]
    assert urls and [u for u in urls if not u.startswith("https://")] == []
