"""Loading generators: run directories, checkpoints (read once), directions, reference weights, published names."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from translate import Translator
from translate.checkpoint import save_checkpoint
from translate.errors import TranslatorError
from translate.inference import loading
from translate.inference.loading import load_model, load_models
from translate.nets import ResnetSpec, UnetSpec, build_net, spec_to_dict

RESNET = ResnetSpec(base_channels=8, n_blocks=2)
UNET = UnetSpec(base_channels=8, num_downs=5)


def make_net(spec, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_net(spec)


def save_test_checkpoint(path: Path, nets: dict, *, config: dict | None = None) -> Path:
    """A minimal translate checkpoint holding `nets` {name: (spec, module)}."""
    save_checkpoint(path, {
        "config": {"method": "pix2pix", "task": "custom", "direction": "a_to_b"} if config is None else config,
        "specs": {name: spec_to_dict(spec) for name, (spec, _) in nets.items()},
        "nets": {name: net.state_dict() for name, (_, net) in nets.items()},
        "step": 0,
        "epoch": 0,
    })
    return path


def test_checkpoint_run_dir_and_directions(tmp_path, photo):
    image = photo("chelsea", (40, 56))
    g_ab, g_ba = make_net(RESNET, 1), make_net(RESNET, 2)
    run = tmp_path / "run"
    save_test_checkpoint(run / "checkpoints" / "latest.pt", {"g_ab": (RESNET, g_ab), "g_ba": (RESNET, g_ba)},
                         config={"method": "cyclegan"})  # other keys missing: defaults apply
    want_ab = Translator.from_net(g_ab, RESNET, device="cpu", precision="fp32")(image)
    want_ba = Translator.from_net(g_ba, RESNET, device="cpu", precision="fp32")(image)
    np.testing.assert_array_equal(Translator.load(run, device="cpu", precision="fp32")(image), want_ab)
    t_ba = Translator.load(run / "checkpoints" / "latest.pt", direction="b_to_a", device="cpu", precision="fp32")
    np.testing.assert_array_equal(t_ba(image), want_ba)

    only_ba = save_test_checkpoint(tmp_path / "p2p.pt", {"g_ba": (UNET, make_net(UNET))},
                                   config={"method": "pix2pix", "task": "custom", "direction": "b_to_a"})
    assert load_model(only_ba).net_name == "g_ba"
    with pytest.raises(TranslatorError, match="no a_to_b generator"):
        load_model(only_ba, direction="a_to_b")
    with pytest.raises(TranslatorError, match="--arch is only for reference"):
        load_model(only_ba, arch="unet_256")


def test_reference_state_dict_loads_without_flags(tmp_path, photo):
    image = photo("rocket", (50, 70))
    net = make_net(RESNET, 3)
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    t = Translator.load(tmp_path / "latest_net_G.pth", device="cpu", precision="fp32")
    assert t.spec == RESNET and t.model.method == "reference" and t.model.direction is None
    np.testing.assert_array_equal(t(image), Translator.from_net(net, RESNET, device="cpu", precision="fp32")(image))
    torch.save({"foo.weight": torch.zeros(3, 3)}, tmp_path / "odd_net_G.pth")
    with pytest.raises(TranslatorError, match="--arch PRESET"):
        load_model(tmp_path / "odd_net_G.pth")


def test_published_names_resolve_in_the_weights_folder(tmp_path, photo):
    from translate import weights

    torch.save(make_net(RESNET).state_dict(), weights.local_path("horse2zebra", tmp_path))
    t = Translator.load("horse2zebra", weights_dir=tmp_path, device="cpu", precision="fp32")
    assert t(photo("coffee", (20, 24))).shape == (20, 24, 3)
    with pytest.raises(TranslatorError, match="translate weights fetch zebra2horse"):
        load_model("zebra2horse", weights_dir=tmp_path)
    with pytest.raises(TranslatorError, match="no such file, run directory or published model"):
        load_model("no_such_model", weights_dir=tmp_path)


def test_every_generator_of_a_checkpoint_comes_from_one_read(tmp_path, monkeypatch):
    path = save_test_checkpoint(tmp_path / "cyclegan.pt", {"g_ab": (RESNET, make_net(RESNET, 1)),
                                                           "g_ba": (RESNET, make_net(RESNET, 2))},
                                config={"method": "cyclegan", "task": "custom", "data": {"root": "/data/x"}})
    reads = []
    real = loading.load_file
    monkeypatch.setattr(loading, "load_file", lambda p: reads.append(p) or real(p))
    models = load_models(path)
    assert len(reads) == 1
    assert [(m.direction, m.net_name, m.method) for m in models] == [("a_to_b", "g_ab", "cyclegan"),
                                                                     ("b_to_a", "g_ba", "cyclegan")]
    assert models[0].config["data"] == {"root": "/data/x"} and models[0].source == path
    assert not torch.equal(models[0].net.state_dict()["model.1.weight"], models[1].net.state_dict()["model.1.weight"])
    assert [m.direction for m in load_models(path, direction="b_to_a")] == ["b_to_a"]
    assert len(reads) == 2
