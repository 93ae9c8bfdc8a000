"""Super-resolution generators: published parameter names, reference forward, weight detection."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from translate.errors import CheckpointError
from translate.nets import (
    RrdbnetSpec,
    SrresnetSpec,
    SrvggCompactSpec,
    build_net,
    preset,
)
from translate.nets.reference import (
    detect_reference_generator,
    load_reference_generator,
    unwrap_published,
)

BN = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
WB = ["weight", "bias"]

# Written out from BasicSR's module layouts (rrdbnet_arch.py, srvgg_arch.py, srresnet_arch.py).
RRDBNET_KEYS = [
    *(f"conv_first.{p}" for p in WB),
    *(f"body.{n}.rdb{k}.conv{j}.{p}" for n in (0, 1) for k in (1, 2, 3) for j in range(1, 6)
      for p in WB),
    *(f"{name}.{p}" for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last")
      for p in WB),
]
# body: conv, PReLU, 2 x (conv, PReLU), conv; only convs have biases.
SRVGG_KEYS = [
    "body.0.weight", "body.0.bias", "body.1.weight",
    "body.2.weight", "body.2.bias", "body.3.weight",
    "body.4.weight", "body.4.bias", "body.5.weight",
    "body.6.weight", "body.6.bias",
]
MSRRESNET_KEYS = [
    "conv_first.weight", "conv_first.bias",
    *(f"body.{n}.{c}.{p}" for n in (0, 1) for c in ("conv1", "conv2") for p in WB),
    *(f"{name}.{p}" for name in ("upconv1", "upconv2", "conv_hr", "conv_last") for p in WB),
]
SRGAN_KEYS = [
    "conv_first.weight", "conv_first.bias", "prelu_first.weight",
    *(key for n in (0, 1) for key in (
        f"body.{n}.conv1.weight", *(f"body.{n}.bn1.{p}" for p in BN), f"body.{n}.prelu.weight",
        f"body.{n}.conv2.weight", *(f"body.{n}.bn2.{p}" for p in BN),
    )),
    "conv_body.weight", *(f"bn_body.{p}" for p in BN),
    "upconv1.weight", "upconv1.bias", "prelu_up1.weight",
    "upconv2.weight", "upconv2.bias", "prelu_up2.weight",
    "conv_last.weight", "conv_last.bias",
]

TINY_RRDBNET = RrdbnetSpec(base_channels=8, n_blocks=2, grow_channels=4)
TINY_SRVGG = SrvggCompactSpec(base_channels=8, n_convs=2)
TINY_MSRRESNET = SrresnetSpec(base_channels=8, n_blocks=2, variant="msrresnet")
TINY_SRGAN = SrresnetSpec(base_channels=8, n_blocks=2)


@pytest.mark.parametrize(
    "spec,expected",
    [(TINY_RRDBNET, RRDBNET_KEYS), (TINY_SRVGG, SRVGG_KEYS), (TINY_MSRRESNET, MSRRESNET_KEYS),
     (TINY_SRGAN, SRGAN_KEYS)],
    ids=["rrdbnet", "srvgg_compact", "msrresnet", "srgan"],
)
def test_state_dict_keys_are_the_published_names(spec, expected):
    assert list(build_net(spec).state_dict()) == expected


def test_full_size_parameter_counts():
    # Parameter counts the papers and model zoos quote: ESRGAN 16.7 M, MSRResNet 1.52 M,
    # realesr-general-x4v3 1.21 M, realesr-animevideov3 0.62 M.
    expected = {"rrdbnet_x4": 16.70, "msrresnet_x4": 1.52, "srvgg_general_x4v3": 1.21,
                "srvgg_animevideo_v3": 0.62, "rrdbnet_x4_anime": 4.47, "rrdbnet_x2": 16.70}
    for name, millions in expected.items():
        with torch.device("meta"):
            net = build_net(preset(name))
        assert round(sum(p.numel() for p in net.parameters()) / 1e6, 2) == millions, name


def random_state(spec, seed: int = 0) -> dict[str, torch.Tensor]:
    """The net's state dict filled with random values (positive variances), as a file would be."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in build_net(spec).state_dict().items():
        if not value.is_floating_point():
            state[key] = value
        elif key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(value.shape, generator=gen) * 0.1
    return state


# Forward passes re-stated from the papers and BasicSR's modules, reading the weights by name.
def conv(sd, name, x):
    weight = sd[f"{name}.weight"]
    return F.conv2d(x, weight, sd.get(f"{name}.bias"), padding=weight.shape[-1] // 2)


def unshuffle(x, factor):
    """Pixel-unshuffle as BasicSR writes it: (c, h*f, w*f) -> (c*f*f, h, w)."""
    n, c, h, w = x.shape
    x = x.view(n, c, h // factor, factor, w // factor, factor)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(n, c * factor * factor, h // factor, w // factor)


def reference_rrdbnet(sd, x, n_blocks, upscale):
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731

    def rdb(p, h):  # ESRGAN: x + 0.2 * conv5(cat(x, x1, x2, x3, x4))
        xs = [h]
        for j in range(1, 5):
            xs.append(lrelu(conv(sd, f"{p}.conv{j}", torch.cat(xs, 1))))
        return h + 0.2 * conv(sd, f"{p}.conv5", torch.cat(xs, 1))

    if upscale < 4:
        x = unshuffle(x, 4 // upscale)
    feat = conv(sd, "conv_first", x)
    h = feat
    for n in range(n_blocks):  # RRDB: x + 0.2 * rdb3(rdb2(rdb1(x)))
        h = h + 0.2 * rdb(f"body.{n}.rdb3", rdb(f"body.{n}.rdb2", rdb(f"body.{n}.rdb1", h)))
    feat = feat + conv(sd, "conv_body", h)
    for name in ("conv_up1", "conv_up2"):
        feat = lrelu(conv(sd, name, F.interpolate(feat, scale_factor=2, mode="nearest")))
    return conv(sd, "conv_last", lrelu(conv(sd, "conv_hr", feat)))


def reference_srvgg(sd, x, n_convs, upscale):
    h = x
    for i in range(0, 2 * n_convs + 2, 2):
        h = F.prelu(conv(sd, f"body.{i}", h), sd[f"body.{i + 1}.weight"])
    h = F.pixel_shuffle(conv(sd, f"body.{2 * n_convs + 2}", h), upscale)
    return h + F.interpolate(x, scale_factor=upscale, mode="nearest")


def reference_msrresnet(sd, x, n_blocks, upscale):
    lrelu = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
    h = lrelu(conv(sd, "conv_first", x))
    for n in range(n_blocks):
        h = h + conv(sd, f"body.{n}.conv2", F.relu(conv(sd, f"body.{n}.conv1", h)))
    for i, factor in enumerate([2, 2] if upscale == 4 else [upscale], start=1):
        h = lrelu(F.pixel_shuffle(conv(sd, f"upconv{i}", h), factor))
    h = conv(sd, "conv_last", lrelu(conv(sd, "conv_hr", h)))
    return h + F.interpolate(x, scale_factor=upscale, mode="bilinear", align_corners=False)


def reference_srgan(sd, x, n_blocks, upscale):
    def bn(name, t):  # inference-mode batch norm with the stored statistics
        return F.batch_norm(t, sd[f"{name}.running_mean"], sd[f"{name}.running_var"],
                            sd[f"{name}.weight"], sd[f"{name}.bias"])

    feat = F.prelu(conv(sd, "conv_first", x), sd["prelu_first.weight"])
    h = feat
    for n in range(n_blocks):  # conv, BN, PReLU, conv, BN, + skip (SRGAN fig. 4)
        p = f"body.{n}"
        r = F.prelu(bn(f"{p}.bn1", conv(sd, f"{p}.conv1", h)), sd[f"{p}.prelu.weight"])
        h = h + bn(f"{p}.bn2", conv(sd, f"{p}.conv2", r))
    h = feat + bn("bn_body", conv(sd, "conv_body", h))
    for i, factor in enumerate([2, 2] if upscale == 4 else [upscale], start=1):
        h = F.prelu(F.pixel_shuffle(conv(sd, f"upconv{i}", h), factor), sd[f"prelu_up{i}.weight"])
    return conv(sd, "conv_last", h)


def reference_forward(spec, sd, x):
    if spec.kind == "rrdbnet":
        return reference_rrdbnet(sd, x, spec.n_blocks, spec.upscale)
    if spec.kind == "srvgg_compact":
        return reference_srvgg(sd, x, spec.n_convs, spec.upscale)
    if spec.variant == "msrresnet":
        return reference_msrresnet(sd, x, spec.n_blocks, spec.upscale)
    return reference_srgan(sd, x, spec.n_blocks, spec.upscale)


CASES = {
    "rrdbnet_x4": TINY_RRDBNET,
    "rrdbnet_x2": RrdbnetSpec(base_channels=8, n_blocks=2, grow_channels=4, upscale=2),
    "rrdbnet_x1_grey": RrdbnetSpec(in_channels=1, out_channels=1, base_channels=8, n_blocks=1,
                                   grow_channels=4, upscale=1),
    "srvgg_x4": TINY_SRVGG,
    "srvgg_x2": SrvggCompactSpec(base_channels=8, n_convs=3, upscale=2),
    "msrresnet_x4": TINY_MSRRESNET,
    "msrresnet_x3": SrresnetSpec(base_channels=8, n_blocks=1, upscale=3, variant="msrresnet"),
    "srgan_x4": TINY_SRGAN,
    "srgan_x2": SrresnetSpec(in_channels=1, base_channels=8, n_blocks=1, upscale=2),
}


@pytest.mark.parametrize("spec", CASES.values(), ids=CASES.keys())
def test_forward_matches_reference(spec):
    sd = random_state(spec)
    net = build_net(spec).eval()
    net.load_state_dict(sd, strict=True)
    x = torch.rand(2, spec.in_channels, 32, 32)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (2, spec.out_channels, 32 * spec.scale, 32 * spec.scale)
    assert spec.value_range == "zero_one"
    torch.testing.assert_close(out, reference_forward(spec, sd, x), atol=1e-5, rtol=1e-5)


def esrgan_2018(sd):
    """BasicSR RRDBNet names -> the 2018 ESRGAN repository's (RRDBNet_arch.py)."""
    out = {}
    for key, value in sd.items():
        parts = key.split(".")
        if parts[0] == "body":
            key = f"RRDB_trunk.{parts[1]}.RDB{parts[2][-1]}.{parts[3]}.{parts[4]}"
        else:
            names = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2",
                     "conv_hr": "HRconv"}
            key = f"{names.get(parts[0], parts[0])}.{parts[1]}"
        out[key] = value
    return out


def esrgan_sequential(sd, n_blocks):
    """BasicSR RRDBNet names -> the first RRDB_ESRGAN_x4.pth's sequential ones."""
    index = {"conv_first": "model.0", "conv_body": f"model.1.sub.{n_blocks}",
             "conv_up1": "model.3", "conv_up2": "model.6", "conv_hr": "model.8",
             "conv_last": "model.10"}
    out = {}
    for key, value in sd.items():
        parts = key.split(".")
        if parts[0] == "body":
            key = f"model.1.sub.{parts[1]}.RDB{parts[2][-1]}.{parts[3]}.0.{parts[4]}"
        else:
            key = f"{index[parts[0]]}.{parts[1]}"
        out[key] = value
    return out


def mmsr(sd):
    """BasicSR MSRResNet names -> mmsr's (recon_trunk, HRconv)."""
    return {k.replace("body.", "recon_trunk.").replace("conv_hr.", "HRconv."): v
            for k, v in sd.items()}


WRAPPERS = {
    "bare": lambda sd, spec: sd,
    "params": lambda sd, spec: {"params": sd},
    "params_ema": lambda sd, spec: {"params_ema": sd},
    # Both present: the EMA weights win; the others are made garbage so a mix-up shows.
    "both": lambda sd, spec: {"params": {k: v + 1 for k, v in sd.items()}, "params_ema": sd},
    "module_prefix": lambda sd, spec: {"params_ema": {f"module.{k}": v for k, v in sd.items()}},
}
DETECT_CASES = [(name, wrapper) for name in CASES for wrapper in WRAPPERS] + [
    ("rrdbnet_x4", "esrgan_2018"),
    ("rrdbnet_x4", "esrgan_sequential"),
    ("msrresnet_x4", "mmsr"),
]


@pytest.mark.parametrize("name,layout", DETECT_CASES)
def test_detection_and_strict_load(name, layout):
    spec = CASES[name]
    sd = random_state(spec, seed=1)
    if layout == "esrgan_2018":
        published = esrgan_2018(sd)
    elif layout == "esrgan_sequential":
        published = esrgan_sequential(sd, spec.n_blocks)
    elif layout == "mmsr":
        published = mmsr(sd)
    else:
        published = WRAPPERS[layout](sd, spec)
    assert detect_reference_generator(published) == spec
    net = load_reference_generator(published)
    x = torch.rand(1, spec.in_channels, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference_forward(spec, sd, x), atol=1e-5, rtol=1e-5)


def test_unwrap_prefers_ema_and_leaves_others():
    ema, plain = {"a": torch.zeros(1)}, {"a": torch.ones(1)}
    assert unwrap_published({"params": plain, "params_ema": ema}) is ema
    assert unwrap_published({"params": plain}) is plain
    assert unwrap_published(plain) is plain


def test_unrecognised_and_broken_sr_weights_fail_in_one_line():
    with pytest.raises(CheckpointError, match="not a recognisable reference generator"):
        detect_reference_generator({"params_ema": {"head.weight": torch.zeros(4, 3, 3, 3)}})
    sd = random_state(TINY_RRDBNET)
    odd = {**sd, "conv_first.weight": torch.zeros(8, 5, 3, 3)}  # not 3 x 1, 4 or 16 channels
    with pytest.raises(CheckpointError, match="conv_first reads 5 channels"):
        detect_reference_generator(odd)
    truncated = {k: v for k, v in sd.items() if not k.startswith("body.1.rdb3.conv5")}
    with pytest.raises(CheckpointError, match="missing"):
        load_reference_generator({"params_ema": truncated})
    no_prelu = {k: v for k, v in random_state(TINY_SRVGG).items() if k != "body.1.weight"}
    with pytest.raises(CheckpointError, match="PReLU"):
        detect_reference_generator(no_prelu)
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_reference_generator(sd, RrdbnetSpec(base_channels=8, n_blocks=2, grow_channels=8))
