"""Tests for the network zoo: every preset builds, runs and round-trips through plain dicts."""
from __future__ import annotations

import dataclasses
import io
import json

import pytest
import torch
from torch import nn

from translate.errors import ConfigError
from translate.nets import (
    DISCRIMINATORS,
    GENERATORS,
    INIT_SCHEMES,
    PRESETS,
    MultiscaleSpec,
    PatchGanSpec,
    ResnetSpec,
    UnetSpec,
    build_net,
    init_weights,
    is_generator,
    preset,
    spec_from_dict,
    spec_to_dict,
)

GENERATOR_PRESETS = [name for name, spec in PRESETS.items() if is_generator(spec)]
DISCRIMINATOR_PRESETS = [name for name, spec in PRESETS.items() if not is_generator(spec)]
CHANNEL_PAIRS = [(1, 2), (3, 3), (4, 1), (2, 4)]
# Nets that add their upsampled input to the output, so in_channels must equal out_channels.
SAME_CHANNELS = {"msrresnet_x4", "srvgg_general_x4v3", "srvgg_animevideo_v3"}
VALUE_RANGES = {"minus_one_one": (-1.0, 1.0), "zero_one": (0.0, 1.0)}


def tiny(name: str, **overrides):
    """The preset at tiny width; RRDBNet's dense growth is a second width to shrink."""
    widths = {"grow_channels": 4} if PRESETS[name].kind == "rrdbnet" else {}
    return preset(name, base_channels=4, **widths, **overrides)


def generator_size(spec) -> int:
    return max(32, spec.size_multiple)  # unet_256 needs its full 256 px; cheap at base 4


def discriminator_size(spec) -> int:
    return max(32, spec.min_size)


def test_registries_cover_presets():
    assert {spec.kind for spec in PRESETS.values()} == set(GENERATORS) | set(DISCRIMINATORS)
    assert set(GENERATOR_PRESETS) == {
        "unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks", "resnet_9blocks_antialias",
        "srresnet_x4", "msrresnet_x4",
        "rrdbnet_x4", "rrdbnet_x4_anime", "rrdbnet_x2", "srvgg_general_x4v3", "srvgg_animevideo_v3",
        "deepfill_v2_coarse",
    }
    for name, spec in PRESETS.items():
        registry = GENERATORS if is_generator(spec) else DISCRIMINATORS
        spec_class, module_class = registry[spec.kind]
        assert isinstance(spec, spec_class), name
        assert type(build_net(tiny(name))) is module_class, name


@pytest.mark.parametrize("in_channels,out_channels", CHANNEL_PAIRS)
@pytest.mark.parametrize("name", GENERATOR_PRESETS)
def test_generator_shape_and_range(name, in_channels, out_channels):
    if in_channels != out_channels and name in SAME_CHANNELS:
        with pytest.raises(ConfigError, match="in_channels"):
            tiny(name, in_channels=in_channels, out_channels=out_channels)
        return
    spec = tiny(name, in_channels=in_channels, out_channels=out_channels)
    torch.manual_seed(0)
    net = build_net(spec)
    size = generator_size(spec)
    low, high = VALUE_RANGES[spec.value_range]
    x = torch.rand(2, in_channels, size, size) * (high - low) + low
    y = net(x)
    assert y.shape == (2, out_channels, size * spec.scale, size * spec.scale)
    assert torch.isfinite(y).all()
    if spec.value_range == "minus_one_one":
        assert y.abs().max() <= 1.0  # tanh; the [0, 1] nets are unbounded and clamped at inference
    assert y.std() > 0  # not a constant image


@pytest.mark.parametrize("in_channels", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("name", DISCRIMINATOR_PRESETS)
def test_discriminator_returns_one_map_per_scale(name, in_channels):
    spec = preset(name, base_channels=4, in_channels=in_channels)
    torch.manual_seed(0)
    size = discriminator_size(spec)
    out = build_net(spec)(torch.randn(2, in_channels, size, size))
    assert isinstance(out, list)
    assert len(out) == getattr(spec, "n_scales", 1)
    for logits in out:
        assert logits.shape[:2] == (2, 1) and min(logits.shape[2:]) >= 1
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", DISCRIMINATOR_PRESETS)
def test_min_size_is_tight(name):
    norm = {"norm": "none"} if "norm" in {f.name for f in dataclasses.fields(PRESETS[name])} else {}
    spec = preset(name, base_channels=4, in_channels=6, **norm)
    net = build_net(spec)
    out = net(torch.randn(1, 6, spec.min_size, spec.min_size))[-1]
    # Patch discriminators give one logit at their smallest input; the U-Net one gives one per pixel.
    per_pixel = spec.kind == "unet_discriminator"
    assert out.shape[2:] == ((spec.min_size, spec.min_size) if per_pixel else (1, 1))
    if spec.min_size > 1:
        with pytest.raises((RuntimeError, ValueError)):  # the fixed-size nets say so in a ValueError
            net(torch.randn(1, 6, spec.min_size - 1, spec.min_size - 1))


def test_patchgan_70_gives_30x30_on_256px():
    # The pix2pix paper's 70x70 PatchGAN maps a 256x256 pair to a 30x30 grid of logits.
    net = build_net(preset("patchgan_70", base_channels=4))
    assert net(torch.randn(1, 6, 256, 256))[0].shape == (1, 1, 30, 30)


@pytest.mark.parametrize("n_layers,field", [(0, 1), (1, 16), (2, 34), (3, 70)])
def test_receptive_field_matches_gradient_support(n_layers, field):
    spec = PatchGanSpec(in_channels=1, base_channels=4, n_layers=n_layers, norm="none")
    assert spec.receptive_field == field
    torch.manual_seed(0)
    net = build_net(spec)
    x = torch.randn(1, 1, 160, 160, requires_grad=True)
    logits = net(x)[0]
    h, w = logits.shape[2:]
    logits[0, 0, h // 2, w // 2].backward()
    rows = x.grad[0, 0].abs().sum(dim=1).nonzero()
    assert rows.max() - rows.min() + 1 == field


def test_multiscale_scales_see_pooled_inputs():
    spec = MultiscaleSpec(in_channels=2, base_channels=4, n_layers=2, norm="none", n_scales=3)
    torch.manual_seed(0)
    net = build_net(spec)
    x = torch.randn(1, 2, 64, 64)
    out = net(x)
    pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
    assert [o.shape[-1] for o in out] == [14, 6, 2]  # finest first
    torch.testing.assert_close(out[2], net.scales[2](pool(pool(x)))[0])


@pytest.mark.parametrize("upscale", [1, 2, 4])
@pytest.mark.parametrize("padding", ["reflect", "replicate", "zeros"])
def test_resnet_upscale_and_padding(upscale, padding):
    spec = ResnetSpec(in_channels=1, out_channels=3, base_channels=4, n_blocks=1, upscale=upscale,
                      padding=padding, dropout=0.5)
    assert spec.scale == upscale
    y = build_net(spec).eval()(torch.randn(2, 1, 20, 24))
    assert y.shape == (2, 3, 20 * upscale, 24 * upscale)
    assert torch.isfinite(y).all() and y.abs().max() <= 1.0


@pytest.mark.parametrize("num_downs", [1, 2, 3, 6])
def test_unet_depths(num_downs):
    spec = UnetSpec(in_channels=2, out_channels=1, base_channels=4, num_downs=num_downs)
    assert spec.size_multiple == 2**num_downs
    size = 2 * spec.size_multiple
    net = build_net(spec)
    assert net(torch.randn(2, 2, size, size)).shape == (2, 1, size, size)
    # Dropout only in the middle levels with 8x channels on both sides, as in the reference.
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == max(0, num_downs - 5)


@pytest.mark.parametrize("spec, layers", [(UnetSpec(num_downs=7, base_channels=2, dropout=0.3), 2),
                                          (ResnetSpec(n_blocks=3, base_channels=2, dropout=0.3), 3)])
def test_spec_dropout_is_the_rate_of_every_dropout_layer(spec, layers):
    """U-Net: one layer per middle level (num_downs - 5); ResNet: one per block; dropout=0 builds none."""
    rates = [m.p for m in build_net(spec).modules() if isinstance(m, nn.Dropout)]
    assert rates == [0.3] * layers
    assert not any(isinstance(m, nn.Dropout) for m in build_net(dataclasses.replace(spec, dropout=0.0)).modules())


@pytest.mark.parametrize("name", GENERATOR_PRESETS)
def test_state_dict_round_trip_gives_same_output(name):
    spec = tiny(name, in_channels=1, out_channels=1)
    torch.manual_seed(0)
    net = build_net(spec).eval()
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    other = build_net(spec_from_dict(spec_to_dict(spec))).eval()
    other.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(1, 1, generator_size(spec), generator_size(spec))
    torch.testing.assert_close(other(x), net(x))


@pytest.mark.parametrize("name", list(PRESETS))
def test_spec_dict_round_trip(name):
    spec = PRESETS[name]
    d = spec_to_dict(spec)
    assert d["kind"] == spec.kind
    assert json.loads(json.dumps(d)) == d  # plain primitives only
    assert spec_from_dict(d) == spec
    assert spec_from_dict(name) == spec
    channels = {"out_channels": 1} if is_generator(spec) else {}  # some SR nets need in == out
    changed = preset(name, base_channels=8, in_channels=1, **channels)
    assert spec_from_dict(spec_to_dict(changed)) == changed != spec


def test_spec_from_dict_fills_defaults():
    assert spec_from_dict({"kind": "resnet", "n_blocks": 6}) == PRESETS["resnet_6blocks"]


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda: preset("unet_512"), ["unet_512", "unet_256", "pixelgan"]),
        (lambda: spec_from_dict("resnet_12blocks"), ["resnet_12blocks", "resnet_9blocks"]),
        (lambda: spec_from_dict({"kind": "vit"}), ["vit", "unet", "multiscale"]),
        (lambda: spec_from_dict({"n_blocks": 3}), ["kind", "resnet"]),
        (lambda: spec_from_dict({"kind": "unet", "ngf": 64}), ["ngf", "base_channels"]),
        (lambda: preset("patchgan_70", n_scales=2), ["n_scales", "n_layers"]),
        (lambda: preset("unet_256", kind="resnet"), ["kind"]),
        (lambda: preset("resnet_9blocks", norm="group"), ["norm", "group", "instance"]),
        (lambda: preset("resnet_9blocks", padding="circular"), ["padding", "circular"]),
        (lambda: preset("resnet_9blocks", upscale=3), ["upscale", "3"]),
        (lambda: preset("rrdbnet_x4", upscale=3), ["upscale", "3"]),
        (lambda: preset("srresnet_x4", upscale=1), ["upscale", "1"]),
        (lambda: preset("srresnet_x4", variant="edsr"), ["variant", "edsr", "msrresnet"]),
        (lambda: preset("srvgg_general_x4v3", activation="gelu"), ["activation", "prelu"]),
        (lambda: preset("srvgg_general_x4v3", num_feat=32), ["num_feat", "base_channels"]),
        (lambda: preset("rrdbnet_x4", grow_channels=0), ["grow_channels"]),
        (lambda: preset("unet_256", dropout=1.0), ["dropout"]),
        (lambda: preset("unet_256", in_channels=0), ["in_channels"]),
        (lambda: preset("multiscale_patchgan", n_scales=0), ["n_scales"]),
        (lambda: build_net(object()), ["kind"]),
    ],
)
def test_errors_name_the_problem(call, words):
    with pytest.raises(ConfigError) as info:
        call()
    for word in words:
        assert word in str(info.value)


def weights(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_torch_init_keeps_pytorch_defaults():
    torch.manual_seed(0)
    net = build_net(preset("unet_128", base_channels=4))
    before = weights(net)
    init_weights(net, scheme="torch")
    assert all(torch.equal(before[k], v) for k, v in weights(net).items())


@pytest.mark.parametrize("scheme", [s for s in INIT_SCHEMES if s != "torch"])
def test_init_is_deterministic_and_changes_weights(scheme):
    spec = preset("unet_128", base_channels=4)
    torch.manual_seed(0)
    net = build_net(spec)
    default = weights(net)
    init_weights(net, scheme=scheme, gain=0.02)
    first = weights(net)
    torch.manual_seed(0)
    again = build_net(spec)
    init_weights(again, scheme=scheme, gain=0.02)
    assert all(torch.equal(first[k], v) for k, v in weights(again).items())
    assert not torch.equal(first["model.model.0.weight"], default["model.model.0.weight"])
    assert torch.equal(first["model.model.3.bias"], torch.zeros(3))
    bn = net.model.model[1].model[2]
    assert isinstance(bn, nn.BatchNorm2d)
    assert torch.equal(bn.bias, torch.zeros_like(bn.bias))
    assert (bn.weight - 1).abs().max() < 0.2
    assert not torch.equal(bn.weight, torch.ones_like(bn.weight))


def test_init_scheme_statistics():
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 32, 3)
    init_weights(conv, scheme="normal", gain=0.02)
    assert abs(conv.weight.std().item() - 0.02) < 0.002
    init_weights(conv, scheme="orthogonal", gain=0.5)
    w = conv.weight.flatten(1)
    torch.testing.assert_close(w @ w.T, 0.25 * torch.eye(32), atol=1e-5, rtol=0)
    init_weights(conv, scheme="kaiming")
    assert abs(conv.weight.std().item() - (2 / (64 * 9)) ** 0.5) < 0.01


def test_init_unknown_scheme_raises():
    with pytest.raises(ConfigError, match="uniform.*normal"):
        init_weights(nn.Conv2d(1, 1, 1), scheme="uniform")


def test_spectral_norm_bounds_weights():
    spec = PatchGanSpec(in_channels=3, base_channels=4, n_layers=2, norm="none", spectral_norm=True)
    torch.manual_seed(0)
    net = build_net(spec)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    before = convs[0].parametrizations.weight.original.clone()
    init_weights(net, scheme="normal", gain=0.5)  # must reach the underlying weight
    assert not torch.equal(before, convs[0].parametrizations.weight.original)
    x = torch.randn(2, 3, 48, 48)
    for _ in range(30):  # power iteration runs once per training-mode forward
        out = net(x)
    assert len(out) == 1 and torch.isfinite(out[0]).all()
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert abs(sigma.item() - 1.0) < 0.05
