"""The model contract: one set of facts made at load for every source, shown alike by
`translate info`, export metadata and `describe_model`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from translate import Translator
from translate.checkpoint import save_checkpoint
from translate.cli import main
from translate.errors import TranslatorError
from translate.export.write import model_contract
from translate.inference.contract import ModelContract, ModelSource
from translate.inference.loading import describe_model, load_model, load_models
from translate.nets import ResnetSpec, SrvggCompactSpec, UnetSpec, build_net, spec_to_dict
from translate.tasks import get_task

RESNET = ResnetSpec(base_channels=4, n_blocks=1)
INPAINT_UNET = UnetSpec(in_channels=4, out_channels=3, base_channels=4, num_downs=5)
SRVGG = SrvggCompactSpec(base_channels=4, n_convs=2, upscale=4)


def save_run(path: Path, specs: dict, config: dict) -> Path:
    torch.manual_seed(0)
    save_checkpoint(path, {"config": config, "specs": {n: spec_to_dict(s) for n, s in specs.items()},
                           "nets": {n: build_net(s).state_dict() for n, s in specs.items()}, "step": 3, "epoch": 1})
    return path


def facts(contract: ModelContract) -> tuple:
    return (contract.architecture, contract.task, contract.method, contract.direction, contract.directions,
            contract.in_channels, contract.out_channels, contract.scale, contract.size_multiple, contract.min_side,
            contract.square, contract.value_range, contract.tiling, contract.precisions, contract.takes_mask)


ALL_PRECISIONS = ("fp32", "bf16", "fp16")


def test_cyclegan_checkpoint_holds_both_directions(tmp_path):
    path = save_run(tmp_path / "cyclegan.pt", {"g_ab": RESNET, "g_ba": RESNET}, {"method": "cyclegan", "task": "custom"})
    ab, ba = load_models(path)
    custom = get_task("custom")
    # min_side: our floor of 16 px, already a multiple of the ResNet's 4.
    common = ("resnet", custom, "cyclegan")
    rest = (("a_to_b", "b_to_a"), 3, 3, 1, 4, 16, False, "minus_one_one", "supported", ALL_PRECISIONS, False)
    assert facts(ab.contract) == (*common, "a_to_b", *rest)
    assert facts(ba.contract) == (*common, "b_to_a", *rest)
    assert ab.contract.spec == RESNET and ab.net_name == "g_ab" and ba.net_name == "g_ba"
    only_ba = load_model(ModelSource(path, direction="b_to_a"))
    assert only_ba.contract.direction == "b_to_a" and only_ba.contract.directions == ("a_to_b", "b_to_a")


def test_pix2pix_inpaint_checkpoint_takes_masks(tmp_path):
    path = save_run(tmp_path / "p2p.pt", {"g_ab": INPAINT_UNET}, {"method": "pix2pix", "task": "inpaint"})
    contract = load_model(path).contract
    assert facts(contract) == ("unet", get_task("inpaint"), "pix2pix", "a_to_b", ("a_to_b",), 4, 3, 1, 32, 32,
                               False, "minus_one_one", "supported", ALL_PRECISIONS, True)


def test_published_reference_weights(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "realesr-tiny.pth"
    torch.save({"params": build_net(SRVGG).state_dict()}, path)  # BasicSR's wrapper
    contract = load_model(path).contract
    # An enlarging net is super-resolution whatever trained it; published SR nets read [0, 1].
    assert facts(contract) == ("srvgg_compact", get_task("superres"), "reference", None, (), 3, 3, 4, 1, 16,
                               False, "zero_one", "supported", ALL_PRECISIONS, False)
    assert contract.spec == SRVGG


def test_spandrel_model_keeps_its_own_rules(tmp_path):
    spandrel = pytest.importorskip("spandrel")
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    net = SwinIR(embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=2, upsampler="pixelshuffle",
                 img_size=16)
    torch.save(net.state_dict(), tmp_path / "swinir.pth")
    contract = load_model(tmp_path / "swinir.pth").contract
    told = spandrel.ModelLoader().load_from_state_dict(net.state_dict())  # what spandrel says of it
    rules = told.size_requirements
    precisions = ("fp32",) + (("bf16",) if told.supports_bfloat16 else ()) + (("fp16",) if told.supports_half else ())
    assert facts(contract) == ("SwinIR", get_task("superres"), "spandrel", None, (), 3, 3, 2, rules.multiple_of,
                               max(16, rules.minimum), rules.square, "zero_one", "discouraged", precisions, False)
    assert told.tiling.name.lower() == "discouraged" and told.scale == 2


def test_info_export_metadata_and_describe_show_one_contract(tmp_path, capsys):
    path = save_run(tmp_path / "run.pt", {"g_ab": RESNET, "g_ba": RESNET}, {"method": "cyclegan", "task": "custom"})
    described = [describe_model(model) for model in load_models(path)]
    assert main(["info", str(path)]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    assert printed[0]["step"] == 3  # the checkpoint's progress, then each generator's contract
    assert printed[1:] == described
    json.dumps(described)  # JSON-ready
    translator = Translator.load(path, direction="b_to_a", device="cpu", precision="fp32")
    exported = model_contract(translator)
    contract = translator.contract.to_dict()
    assert {key: exported[key] for key in contract} == contract == {
        key: value for key, value in described[1].items() if key not in ("source", "loaded_as")}
    assert (contract["task"], contract["direction"], contract["directions"]) == ("custom", "b_to_a", ["a_to_b", "b_to_a"])


def test_model_source_names_how_to_read_a_file(tmp_path):
    with pytest.raises(TranslatorError, match="direction: 'sideways'"):
        ModelSource("run", direction="sideways")
    source = ModelSource.of("run", arch="resnet_9blocks")
    assert ModelSource.of(source, weights_dir="w") == ModelSource("run", arch="resnet_9blocks", weights_dir="w")
    path = save_run(tmp_path / "run.pt", {"g_ab": RESNET, "g_ba": RESNET}, {"method": "cyclegan"})
    t = Translator.load(ModelSource(path, direction="b_to_a"), device="cpu")
    assert t.contract.direction == "b_to_a" and t.device == torch.device("cpu")
