"""Published super-resolution weights (BasicSR / Real-ESRGAN / 2018 ESRGAN files) through every path:
`translate convert` with no flags, the Python API (16-bit, alpha, gray), the service, ONNX export.

The weights come from small re-statements of the reference modules written below (BasicSR's
rrdbnet_arch.py and Real-ESRGAN's srvgg_arch.py; the 2018 ESRGAN repository's RRDBNet_arch.py), so
their parameter names are the published code's, not ours; their forward is the reference output.
The reference inference (Real-ESRGAN's RealESRGANer) feeds RGB / max in [0, 1] and clamps the
output to [0, 1] before scaling back.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from translate import Translator
from translate.cli import main
from translate.data.images import read_image, write_image
from translate.inference.loading import load_model
from translate.metrics import psnr

FAST = ["--device", "cpu", "--precision", "fp32"]


# ---------------------------------------------------------------- reference modules
class RefDenseBlock(nn.Module):
    """ResidualDenseBlock: x + 0.2 * conv5(cat(x, x1..x4)), xj = lrelu_0.2(convj(cat(x, x1..))."""

    def __init__(self, feat: int, grow: int) -> None:
        super().__init__()
        for j in range(1, 6):
            setattr(self, f"conv{j}", nn.Conv2d(feat + (j - 1) * grow, feat if j == 5 else grow, 3, 1, 1))

    def forward(self, x):
        xs = [x]
        for j in range(1, 5):
            xs.append(F.leaky_relu(getattr(self, f"conv{j}")(torch.cat(xs, 1)), 0.2))
        return self.conv5(torch.cat(xs, 1)) * 0.2 + x


class RefRRDB(nn.Module):
    def __init__(self, feat: int, grow: int, names: tuple[str, str, str]) -> None:
        super().__init__()
        self.names = names
        for name in names:
            setattr(self, name, RefDenseBlock(feat, grow))

    def forward(self, x):
        out = x
        for name in self.names:
            out = getattr(self, name)(out)
        return out * 0.2 + x


# BasicSR's attribute names, and the 2018 ESRGAN repository's for the same layers.
BASICSR = {"first": "conv_first", "body": "body", "rdb": ("rdb1", "rdb2", "rdb3"), "trunk": "conv_body",
           "up1": "conv_up1", "up2": "conv_up2", "hr": "conv_hr", "last": "conv_last"}
ESRGAN_2018 = {"first": "conv_first", "body": "RRDB_trunk", "rdb": ("RDB1", "RDB2", "RDB3"),
               "trunk": "trunk_conv", "up1": "upconv1", "up2": "upconv2", "hr": "HRconv", "last": "conv_last"}


def basicsr_unshuffle(x, factor):
    """BasicSR's pixel_unshuffle: (c, h*f, w*f) -> (c*f*f, h, w) by view and permute."""
    b, c, hh, hw = x.shape
    x = x.view(b, c, hh // factor, factor, hw // factor, factor)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, c * factor * factor, hh // factor, hw // factor)


class RefRRDBNet(nn.Module):
    """RRDBNet(num_in_ch, num_out_ch, scale, num_feat, num_block, num_grow_ch); scale 2 and 1
    pixel-unshuffle the input first (Real-ESRGAN x2plus)."""

    def __init__(self, scale=4, num_feat=8, num_block=2, num_grow_ch=4, names=BASICSR) -> None:
        super().__init__()
        self.scale, self.n = scale, names
        num_in = 3 * {4: 1, 2: 4, 1: 16}[scale]
        setattr(self, names["first"], nn.Conv2d(num_in, num_feat, 3, 1, 1))
        setattr(self, names["body"], nn.Sequential(*(RefRRDB(num_feat, num_grow_ch, names["rdb"])
                                                     for _ in range(num_block))))
        for key in ("trunk", "up1", "up2", "hr"):
            setattr(self, names[key], nn.Conv2d(num_feat, num_feat, 3, 1, 1))
        setattr(self, names["last"], nn.Conv2d(num_feat, 3, 3, 1, 1))

    def forward(self, x):
        layer = lambda key: getattr(self, self.n[key])  # noqa: E731
        if self.scale in (1, 2):
            x = basicsr_unshuffle(x, 4 // self.scale)
        feat = layer("first")(x)
        feat = feat + layer("trunk")(layer("body")(feat))
        feat = F.leaky_relu(layer("up1")(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(layer("up2")(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return layer("last")(F.leaky_relu(layer("hr")(feat), 0.2))


class RefSRVGGNetCompact(nn.Module):
    """SRVGGNetCompact: body = [conv, PReLU, (conv, PReLU) x num_conv, conv], pixel-shuffle, plus the
    nearest-upsampled input."""

    def __init__(self, num_feat=8, num_conv=2, upscale=4) -> None:
        super().__init__()
        self.upscale = upscale
        self.body = nn.ModuleList([nn.Conv2d(3, num_feat, 3, 1, 1), nn.PReLU(num_parameters=num_feat)])
        for _ in range(num_conv):
            self.body.extend([nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_parameters=num_feat)])
        self.body.append(nn.Conv2d(num_feat, 3 * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


def make_reference(kind: str) -> nn.Module:
    """A randomly initialised reference net. RRDBNet's last bias is moved to mid-grey so most outputs
    fall inside (0, 1) rather than on the clamp, where any mistake would hide."""
    torch.manual_seed({"rrdb_x4": 1, "rrdb_x2": 2, "rrdb_2018": 3, "srvgg": 4}[kind])
    if kind == "srvgg":
        return RefSRVGGNetCompact().eval()
    net = RefRRDBNet(scale=2 if kind == "rrdb_x2" else 4, names=ESRGAN_2018 if kind == "rrdb_2018" else BASICSR)
    with torch.no_grad():
        net.get_parameter(f"{net.n['last']}.bias").fill_(0.5)
    return net.eval()


def reference_sr(net: nn.Module, image: np.ndarray) -> np.ndarray:
    """RealESRGANer's inference: HxWx3 uint8/uint16 RGB / max -> net -> clamp [0, 1] -> * max, rounded."""
    top = float(np.iinfo(image.dtype).max)
    x = torch.from_numpy(image.astype(np.float32) / top).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = net(x).clamp_(0, 1)[0].permute(1, 2, 0).numpy()
    return np.round(y * top).astype(image.dtype)


def save_published(net: nn.Module, path: Path, wrapper: str) -> Path:
    sd = net.state_dict()
    torch.save({"params_ema": sd} if wrapper == "params_ema" else sd, path)
    return path


def assert_matches(out: np.ndarray, expected: np.ndarray, *, top: int = 255) -> None:
    assert out.shape == expected.shape and out.dtype == expected.dtype
    inside = np.mean((expected > 0) & (expected < top))
    assert inside > 0.5, f"only {inside:.0%} of the reference output is off the clamp: a weak test"
    assert psnr(out, expected, data_range=top) >= 40.0


# ---------------------------------------------------------------- convert, no flags
CASES = [("rrdb_x4", "params_ema"), ("rrdb_x4", "bare"), ("rrdb_x2", "params_ema"), ("rrdb_x2", "bare"),
         ("srvgg", "params_ema"), ("srvgg", "bare"), ("rrdb_2018", "bare")]


@pytest.mark.parametrize("kind,wrapper", CASES)
def test_convert_detects_and_matches_the_reference_forward(kind, wrapper, tmp_path, photo):
    net = make_reference(kind)
    weights = save_published(net, tmp_path / "RealESRGAN.pth", wrapper)
    image = photo("astronaut", (40, 48))
    write_image(tmp_path / "in" / "a.png", image)
    assert main(["convert", str(weights), str(tmp_path / "in"), str(tmp_path / "out"), *FAST]) == 0
    assert_matches(read_image(tmp_path / "out" / "a.png"), reference_sr(net, image))


@pytest.mark.parametrize("kind", ["rrdb_x4", "rrdb_x2", "srvgg"])
def test_tiled_convert_matches_the_reference_forward(kind, tmp_path, photo):
    net = make_reference(kind)
    weights = save_published(net, tmp_path / "model.pth", "params_ema")
    image = photo("coffee", (64, 80))
    write_image(tmp_path / "in" / "c.png", image)
    tiles = ["--tile-size", "32", "--overlap", "16"]
    assert main(["convert", str(weights), str(tmp_path / "in"), str(tmp_path / "out"), *FAST, *tiles]) == 0
    assert_matches(read_image(tmp_path / "out" / "c.png"), reference_sr(net, image))


def test_loaded_model_records_the_value_range_and_task(tmp_path):
    model = load_model(save_published(make_reference("rrdb_x2"), tmp_path / "x2.pth", "params_ema"))
    contract = model.contract
    assert (contract.value_range, contract.task.name, contract.method, contract.scale) == ("zero_one", "superres", "reference", 2)


# ---------------------------------------------------------------- the Python API
@pytest.fixture(scope="module")
def compact(tmp_path_factory):
    net = make_reference("srvgg")
    path = save_published(net, tmp_path_factory.mktemp("sr") / "realesr-general-x4v3.pth", "params_ema")
    return net, path


def test_api_16_bit_alpha_and_gray(compact, photo):
    net, path = compact
    translator = Translator.load(path, device="cpu", precision="fp32")
    image = photo("chelsea", (24, 32))
    deep = image.astype(np.uint16) * 257 + np.arange(24 * 32 * 3, dtype=np.uint16).reshape(image.shape) % 200
    assert_matches(translator(deep), reference_sr(net, deep), top=65535)

    alpha = np.linspace(0, 255, 24 * 32).astype(np.uint8).reshape(24, 32, 1)
    out = translator(np.concatenate([image, alpha], axis=2))
    assert_matches(out[:, :, :3], reference_sr(net, image))
    np.testing.assert_array_equal(out[:, :, 3], np.repeat(np.repeat(alpha[:, :, 0], 4, 0), 4, 1))

    gray = image[:, :, 1]
    assert_matches(translator(gray), reference_sr(net, np.repeat(gray[:, :, None], 3, axis=2)))


def test_service_answers_what_convert_writes(compact, photo, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    import cv2
    from fastapi.testclient import TestClient

    from translate.serving.app import create_app

    _, path = compact
    image = photo("astronaut", (24, 28))
    write_image(tmp_path / "in" / "a.png", image)
    assert main(["convert", str(path), str(tmp_path / "in"), str(tmp_path / "out"), *FAST]) == 0
    app = create_app(Translator.load(path, device="cpu", precision="fp32"))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        info = client.get("/model").json()
        assert (info["value_range"], info["scale"], info["task"]) == ("zero_one", 4, "superres")
        png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
        answer = client.post("/translate", files={"image": ("a.png", png, "image/png")})
    assert answer.status_code == 200, answer.text
    served = cv2.cvtColor(cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(served, read_image(tmp_path / "out" / "a.png"))


# ---------------------------------------------------------------- export
def test_onnx_export_keeps_the_contract_and_matches_the_reference(tmp_path, photo):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from translate.export.write import read_contract

    net = make_reference("rrdb_x2")
    weights = save_published(net, tmp_path / "RealESRGAN_x2plus.pth", "params_ema")
    assert main(["export", str(weights), str(tmp_path / "x2.onnx")]) == 0  # parity-checked on real photos
    contract = read_contract(tmp_path / "x2.onnx")
    assert (contract["value_range"], contract["input"]["range"], contract["scale"]) == ("zero_one", [-1.0, 1.0], 2)
    image = photo("coffee", (32, 40))
    x = image.astype(np.float32).transpose(2, 0, 1)[None] / 255 * 2 - 1  # the contract: pixel * 2 / max - 1
    session = ort.InferenceSession(str(tmp_path / "x2.onnx"), providers=["CPUExecutionProvider"])
    y = session.run(None, {"input": x})[0][0].transpose(1, 2, 0)
    out = np.round((y + 1) / 2 * 255).astype(np.uint8)
    assert_matches(out, reference_sr(net, image))
