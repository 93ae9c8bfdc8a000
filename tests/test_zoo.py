"""Community models through the spandrel bridge: random-weight models built with spandrel's own
architecture classes, saved as .pth and .safetensors, run by `translate convert`, the Python API and
the service, compared with calling spandrel's descriptor directly; unsafe files refused."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

spandrel = pytest.importorskip("spandrel")

from translate import Translator  # noqa: E402
from translate.cli import main  # noqa: E402
from translate.data.images import read_image, write_image  # noqa: E402
from translate.errors import ConfigError, TranslatorError  # noqa: E402
from translate.inference.device import resolve_precision  # noqa: E402
from translate.inference.contract import ModelContract  # noqa: E402
from translate.inference.loading import LoadedModel, load_model  # noqa: E402
from translate.inference.translator import InferenceOptions  # noqa: E402
from translate.inference.spandrel_bridge import ForeignNet, ForeignSpec, spandrel_model  # noqa: E402
from translate.metrics import psnr  # noqa: E402
from translate.tasks import get_task  # noqa: E402

FAST = ["--device", "cpu", "--precision", "fp32"]


def esrgan() -> torch.nn.Module:
    from spandrel.architectures.ESRGAN import ESRGAN

    return ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4)


def compact() -> torch.nn.Module:
    from spandrel.architectures.Compact import Compact

    return Compact(num_feat=8, num_conv=2, upscale=2)


def swinir() -> torch.nn.Module:
    from spandrel.architectures.SwinIR import SwinIR

    return SwinIR(embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=2, upsampler="pixelshuffle",
                  img_size=16)


ARCHES = {"ESRGAN": esrgan, "Compact": compact, "SwinIR": swinir}


def save(net: torch.nn.Module, path: Path) -> Path:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    else:
        torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """arch -> (.pth, .safetensors) of one random-weight model built with spandrel's class."""
    root = tmp_path_factory.mktemp("zoo")
    out = {}
    for i, (name, make) in enumerate(ARCHES.items()):
        torch.manual_seed(i)
        net = make().eval()
        out[name] = (save(net, root / f"{name}.pth"), save(net, root / f"{name}.safetensors"))
    return out


def descriptor_output(path: Path, image: np.ndarray) -> np.ndarray:
    """What spandrel's own call gives: RGB / 255 in, clamped [0, 1] out, * 255 rounded."""
    descriptor = spandrel.ModelLoader().load_from_file(path).eval()
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    return (descriptor(x)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@pytest.mark.parametrize("arch", list(ARCHES))
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("tiled", [False, True], ids=["whole", "tiled"])
def test_convert_equals_the_descriptor_call(models, arch, suffix, tiled, tmp_path, photo):
    path = models[arch][suffix == ".safetensors"]
    image = photo("astronaut", (48, 64))
    write_image(tmp_path / "in" / "a.png", image)
    tiles = ["--tile-size", "32", "--overlap", "16"] if tiled else []
    assert main(["convert", str(path), str(tmp_path / "in"), str(tmp_path / "out"), *FAST, *tiles]) == 0
    out, expected = read_image(tmp_path / "out" / "a.png"), descriptor_output(models[arch][0], image)
    assert out.shape == expected.shape
    assert psnr(out, expected, data_range=255) >= 40.0


def test_detection_order_our_formats_then_spandrel(models):
    # spandrel's ESRGAN keeps the 2018 sequential names and Compact BasicSR's: both are our zoo's formats.
    assert load_model(models["ESRGAN"][0]).method == "reference"
    assert load_model(models["Compact"][1]).method == "reference"
    model = load_model(models["SwinIR"][1])
    assert (model.method, model.contract.architecture, model.contract.task.name, model.contract.value_range) == \
        ("spandrel", "SwinIR", "superres", "zero_one")
    assert (model.contract.scale, model.spec.min_side, model.contract.tiling) == (2, 16, "discouraged")
    assert "bf16" in model.spec.precisions and "fp16" not in model.spec.precisions


def test_discouraged_tiling_runs_whole_unless_tiles_are_asked_for(models):
    whole = Translator.load(models["SwinIR"][0], device="cpu", precision="fp32")
    assert not whole.runs_tiled(512, 512)
    tiled = Translator.load(models["SwinIR"][0], device="cpu", precision="fp32", tile_size=64)
    assert tiled.runs_tiled(512, 512)
    # and the memory estimate is measured, so a budget still bounds what one pass may take
    small = Translator.load(models["SwinIR"][0], device="cpu", precision="fp32", memory_budget_bytes=2**22)
    tile = small.runner.tile_plan(512, 512, 1)
    assert tile is not None and tile[0] * tile[1] * small.runner.bytes_per_px <= 2**22


def test_internal_tiling_and_precisions_are_honoured():
    net = ForeignNet(torch.nn.Identity(), lambda model, x: model(x), ForeignSpec(architecture="Stub", tiling="internal"))
    model = LoadedModel(net=net, contract=ModelContract.for_spec(net.spec, task=get_task("restore"), method="spandrel"))
    with pytest.raises(TranslatorError, match="tiles internally"):
        Translator(model, InferenceOptions(device="cpu", tile_size=64))
    assert not Translator(model, InferenceOptions(device="cpu", memory_budget_bytes=1)).runs_tiled(256, 256)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu, supported=("fp32",)) == "fp32"
    with pytest.raises(ConfigError, match="Stub model does not run in it"):
        resolve_precision("bf16", cpu, supported=("fp32",), model="Stub model")


def test_face_models_are_refused_clearly():
    class Face:  # what spandrel describes a GFPGAN / RestoreFormer file as
        purpose = "FaceSR"
        architecture = type("Arch", (), {"id": "GFPGAN"})()

    with pytest.raises(TranslatorError, match="aligned face crops"):
        spandrel_model(Face(), Path("GFPGANv1.4.pth"))


def test_service_returns_what_convert_writes(models, tmp_path, photo):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    import cv2
    from fastapi.testclient import TestClient

    from translate.serving.app import create_app

    path = models["SwinIR"][1]
    image = photo("coffee", (30, 36))
    write_image(tmp_path / "in" / "c.png", image)
    assert main(["convert", str(path), str(tmp_path / "in"), str(tmp_path / "out"), *FAST]) == 0
    with TestClient(create_app(Translator.load(path, device="cpu", precision="fp32")),
                    base_url="http://127.0.0.1:8000") as client:
        info = client.get("/model").json()
        png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
        answer = client.post("/translate", files={"image": ("c.png", png, "image/png")})
    assert (info["method"], info["spec"]["architecture"], info["scale"]) == ("spandrel", "SwinIR", 2)
    assert answer.status_code == 200, answer.text
    assert answer.content == (tmp_path / "out" / "c.png").read_bytes()


def test_info_says_what_was_detected(models, capsys):
    assert main(["info", str(models["SwinIR"][0])]) == 0
    text = capsys.readouterr().out
    assert "architecture: SwinIR" in text and "loaded_as: spandrel architecture" in text and "scale: 2" in text


class _Payload:
    """Pickles to a call of os.system: unpickling it would run a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_malicious_pickle_is_refused_without_running_it(tmp_path, photo, capsys):
    marker = tmp_path / "pwned"
    torch.save({"params_ema": {"conv_first.weight": _Payload(f"touch {marker}")}}, tmp_path / "evil.pth")
    write_image(tmp_path / "in" / "a.png", photo("astronaut", (16, 16)))
    assert main(["convert", str(tmp_path / "evil.pth"), str(tmp_path / "in"), str(tmp_path / "out"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()


def test_torchscript_needs_the_trust_flag(tmp_path, photo, capsys):
    torch.manual_seed(3)
    net = compact().eval()
    torch.jit.save(torch.jit.trace(net, torch.rand(1, 3, 16, 16)), str(tmp_path / "model.pt"))
    image = photo("chelsea", (24, 24))
    write_image(tmp_path / "in" / "c.png", image)
    args = ["convert", str(tmp_path / "model.pt"), str(tmp_path / "in"), str(tmp_path / "out"), *FAST]
    assert main(args) == 2
    assert "--trust-torchscript" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert main([*args, "--trust-torchscript"]) == 0
    expected = descriptor_output(save(net, tmp_path / "same.pth"), image)
    assert psnr(read_image(tmp_path / "out" / "c.png"), expected, data_range=255) >= 40.0


def test_unrecognised_weights_name_both_loaders(tmp_path):
    torch.save({"encoder.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "odd.pth")
    with pytest.raises(TranslatorError, match="nor weights our zoo or spandrel recognises") as info:
        load_model(tmp_path / "odd.pth")
    assert "\n" not in str(info.value)


def test_export_checks_parity_or_refuses_in_one_line(models, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    rc = main(["export", str(models["SwinIR"][0]), str(tmp_path / "swinir.pt2")])
    captured = capsys.readouterr()
    if rc == 0:
        assert "parity vs PyTorch" in captured.out
    else:
        assert rc == 2 and len(captured.err.strip().splitlines()) == 1 and "SwinIR" in captured.err


@pytest.mark.slow
def test_lama_fills_holes_from_the_mask_rule(tmp_path, photo):
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(5)
    path = save(LaMa(in_nc=4, out_nc=3).eval(), tmp_path / "big-lama.pth")
    image = photo("astronaut", (64, 64))
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 16:48] = 255
    write_image(tmp_path / "in" / "a.png", image)
    write_image(tmp_path / "masks" / "a.png", mask)
    assert main(["convert", str(path), str(tmp_path / "in"), str(tmp_path / "out"), *FAST,
                 "--mask-dir", str(tmp_path / "masks")]) == 0
    out = read_image(tmp_path / "out" / "a.png")
    descriptor = spandrel.ModelLoader().load_from_file(path).eval()
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    hole = torch.from_numpy(mask > 0)[None, None].float()
    with torch.no_grad():
        expected = (descriptor(x, hole)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    region = mask > 0
    assert psnr(out, expected, data_range=255, region=region) >= 40.0
    np.testing.assert_array_equal(out[~region], image[~region])  # known pixels come back untouched
