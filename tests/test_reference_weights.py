"""Reference pix2pix/CycleGAN compatibility: state-dict names, detection, loading, semantics."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from translate.errors import TranslateError
from translate.nets import PatchGanSpec, ResnetSpec, UnetSpec, build_net, init_weights, preset
from translate.nets.reference import (
    clean_reference_state_dict,
    detect_reference_generator,
    load_reference_generator,
)

# Written out by hand from the reference module layout (UnetSkipConnectionBlock: outermost
# [conv, sub, relu, convT, tanh]; middle [lrelu, conv, norm, sub, relu, convT, norm];
# innermost [lrelu, conv, relu, convT, norm]), for num_downs=5 with instance norm.
L1 = "model.model.1.model"
L2 = L1 + ".3.model"
L3 = L2 + ".3.model"
L4 = L3 + ".3.model"
UNET5_INSTANCE_KEYS = [
    "model.model.0.weight", "model.model.0.bias",
    f"{L1}.1.weight", f"{L1}.1.bias",
    f"{L2}.1.weight", f"{L2}.1.bias",
    f"{L3}.1.weight", f"{L3}.1.bias",
    f"{L4}.1.weight", f"{L4}.1.bias", f"{L4}.3.weight", f"{L4}.3.bias",
    f"{L3}.5.weight", f"{L3}.5.bias",
    f"{L2}.5.weight", f"{L2}.5.bias",
    f"{L1}.5.weight", f"{L1}.5.bias",
    "model.model.3.weight", "model.model.3.bias",
]
BN = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
UNET5_BATCH_FIRST = ["model.model.0.weight", f"{L1}.1.weight", *(f"{L1}.2.{n}" for n in BN)]
UNET5_BATCH_LAST = [*(f"{L1}.6.{n}" for n in BN), "model.model.3.weight", "model.model.3.bias"]
# ResnetGenerator, n_blocks=2: pad, conv7, norm, relu, 2 x (conv, norm, relu), blocks at 10 and
# 11 (pad, conv, norm, relu, pad, conv, norm), 2 x (convT, norm, relu), pad, conv7, tanh.
RESNET2_INSTANCE_KEYS = [
    f"model.{i}.{p}"
    for i in ("1", "4", "7", "10.conv_block.1", "10.conv_block.5", "11.conv_block.1",
              "11.conv_block.5", "12", "15", "19")
    for p in ("weight", "bias")
]
RESNET2_BATCH_FIRST = ["model.1.weight", *(f"model.2.{n}" for n in BN), "model.4.weight"]
RESNET2_BATCH_LAST = [
    "model.15.weight", *(f"model.16.{n}" for n in BN), "model.19.weight", "model.19.bias"
]


def keys(spec) -> list[str]:
    return list(build_net(spec).state_dict())


def test_unet_keys_match_reference():
    assert keys(UnetSpec(num_downs=5, base_channels=4, norm="instance")) == UNET5_INSTANCE_KEYS
    batch = keys(UnetSpec(num_downs=5, base_channels=4, norm="batch"))
    assert batch[: len(UNET5_BATCH_FIRST)] == UNET5_BATCH_FIRST
    assert batch[-len(UNET5_BATCH_LAST) :] == UNET5_BATCH_LAST
    assert len(batch) == 3 + 3 * 12 + 7  # outer (down w, up w + b), 3 middle levels, innermost


def test_resnet_keys_match_reference():
    assert keys(ResnetSpec(n_blocks=2, base_channels=4, norm="instance")) == RESNET2_INSTANCE_KEYS
    batch = keys(ResnetSpec(n_blocks=2, base_channels=4, norm="batch"))
    assert batch[: len(RESNET2_BATCH_FIRST)] == RESNET2_BATCH_FIRST
    assert batch[-len(RESNET2_BATCH_LAST) :] == RESNET2_BATCH_LAST
    # The reference's use_dropout puts Dropout(0.5) after the first ReLU of each block.
    dropout = keys(ResnetSpec(n_blocks=2, base_channels=4, dropout=0.5))
    assert "model.10.conv_block.6.weight" in dropout
    assert "model.10.conv_block.5.weight" not in dropout


def test_full_size_nets_match_released_models():
    # Names and parameter counts printed by the reference code for its released models.
    with torch.device("meta"):
        unet = build_net(preset("unet_256"))
        resnet = build_net(preset("resnet_9blocks"))
        patchgan = build_net(preset("patchgan_70"))
    shapes = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    assert shapes[L1 + ".3.model" * 6 + ".1.weight"] == (512, 512, 4, 4)  # innermost down conv
    assert shapes["model.model.3.weight"] == (128, 3, 4, 4)
    assert tuple(resnet.state_dict()["model.26.weight"].shape) == (3, 64, 7, 7)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert round(count(unet) / 1e6, 3) == 54.414
    assert round(count(resnet) / 1e6, 3) == 11.378
    assert round(count(patchgan) / 1e6, 3) == 2.769
    assert [k for k in patchgan.state_dict() if k.endswith("weight")][:3] == [
        "model.0.weight", "model.2.weight", "model.3.weight"
    ]


DETECTABLE = [
    UnetSpec(num_downs=5, base_channels=4),
    UnetSpec(num_downs=7, base_channels=2, in_channels=1, out_channels=2, norm="instance"),
    UnetSpec(num_downs=8, base_channels=2, in_channels=4, out_channels=3),
    ResnetSpec(n_blocks=2, base_channels=4),
    ResnetSpec(n_blocks=3, base_channels=4, in_channels=1, out_channels=4, norm="batch"),
    ResnetSpec(n_blocks=2, base_channels=4, dropout=0.5),
    ResnetSpec(n_blocks=1, base_channels=4, dropout=0.5, padding="zeros", norm="batch"),
    ResnetSpec(n_blocks=0, base_channels=8, in_channels=2),
]


@pytest.mark.parametrize("spec", DETECTABLE, ids=str)
def test_detection_round_trip(spec):
    assert detect_reference_generator(build_net(spec).state_dict()) == spec


def with_stale_instance_stats(state_dict: dict, norm_modules: list[str]) -> dict:
    """What pre-0.4 PyTorch saved: running stats for affine-free InstanceNorm layers."""
    stale = dict(state_dict)
    for module in norm_modules:
        stale[f"{module}.running_mean"] = torch.zeros(4)
        stale[f"{module}.running_var"] = torch.ones(4)
        stale[f"{module}.num_batches_tracked"] = torch.tensor(0)
    return stale


def test_stale_instance_stats_and_module_prefix_are_tolerated():
    spec = ResnetSpec(n_blocks=2, base_channels=4)
    torch.manual_seed(0)
    net = build_net(spec).eval()
    stale = with_stale_instance_stats(net.state_dict(), ["model.2", "model.10.conv_block.2"])
    wrapped = {f"module.{k}": v for k, v in stale.items()}  # saved from nn.DataParallel
    assert clean_reference_state_dict(wrapped).keys() == net.state_dict().keys()
    loaded = load_reference_generator(wrapped)
    assert not loaded.training
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded(x), net(x))


def test_clean_keeps_batch_norm_stats():
    state = build_net(UnetSpec(num_downs=5, base_channels=4)).state_dict()
    assert clean_reference_state_dict(state) == dict(state)


@pytest.mark.parametrize(
    "garbage",
    [
        {},
        {"foo.weight": torch.zeros(3, 3, 3, 3)},
        {"model.1.weight": torch.zeros(64, 3, 3, 3)},  # not the 7x7 stem of a ResNet
        {"model.model.0.weight": "not a tensor"},
        {  # a U-Net prefix whose outermost up conv has the wrong rank
            "model.model.0.weight": torch.zeros(4, 3, 4, 4),
            "model.model.1.model.1.weight": torch.zeros(8, 4, 4, 4),
            "model.model.3.weight": torch.zeros(3),
        },
        [("model.1.weight", torch.zeros(1))],
    ],
)
def test_garbage_is_rejected(garbage):
    with pytest.raises(TranslateError):
        detect_reference_generator(garbage)


def test_discriminator_weights_are_not_a_generator():
    state = build_net(PatchGanSpec(base_channels=4)).state_dict()
    with pytest.raises(TranslateError, match="not a recognisable reference generator"):
        detect_reference_generator(state)
    with pytest.raises(ValueError, match="not a generator"):
        load_reference_generator(state, PatchGanSpec(base_channels=4))


@pytest.mark.parametrize("spec", [DETECTABLE[0], DETECTABLE[3]], ids=str)
def test_truncated_state_dict_fails(spec):
    state = dict(build_net(spec).state_dict())
    truncated = dict(list(state.items())[:-1])
    with pytest.raises(TranslateError, match="missing"):
        load_reference_generator(truncated)
    with pytest.raises(TranslateError, match="missing"):
        load_reference_generator(truncated, spec)
    key = "model.1.weight" if spec.kind == "resnet" else "model.model.3.bias"
    reshaped = {**state, key: torch.zeros(1)}
    with pytest.raises(TranslateError, match="wrong shape"):
        load_reference_generator(reshaped, spec)


# Functional forward passes written from the reference semantics, reading the state dict by
# name. They pin down what names alone cannot: kernel sizes, strides, padding, skip order.
# (The reference's in-place leaky ReLU makes a U-Net skip carry lrelu(x); so does this one.
# Ours carries x, which must give the same output since the skip only feeds a ReLU.)
def inorm(x):
    return F.instance_norm(x)


def reference_unet(sd, x, num_downs, level=0):
    p = "model.model" + (".1.model" if level else "") + ".3.model" * max(0, level - 1)

    def conv(h, i):
        return F.conv2d(h, sd[f"{p}.{i}.weight"], sd[f"{p}.{i}.bias"], stride=2, padding=1)

    def up(h, i):
        return F.conv_transpose2d(h, sd[f"{p}.{i}.weight"], sd[f"{p}.{i}.bias"], 2, 1)

    if level == 0:
        inner = reference_unet(sd, conv(x, 0), num_downs, 1)
        return torch.tanh(up(F.relu(inner), 3))
    x = F.leaky_relu(x, 0.2)
    if level == num_downs - 1:
        return torch.cat([x, inorm(up(F.relu(conv(x, 1)), 3))], 1)
    inner = reference_unet(sd, inorm(conv(x, 1)), num_downs, level + 1)
    return torch.cat([x, inorm(up(F.relu(inner), 5))], 1)


def reference_resnet(sd, x, n_blocks):
    def conv(h, i, **kw):
        return F.conv2d(h, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], **kw)

    def pad(h, amount):
        return F.pad(h, [amount] * 4, mode="reflect")

    h = F.relu(inorm(conv(pad(x, 3), 1)))
    h = F.relu(inorm(conv(h, 4, stride=2, padding=1)))
    h = F.relu(inorm(conv(h, 7, stride=2, padding=1)))
    for b in range(10, 10 + n_blocks):
        r = F.relu(inorm(conv(pad(h, 1), f"{b}.conv_block.1")))
        h = h + inorm(conv(pad(r, 1), f"{b}.conv_block.5"))
    i = 10 + n_blocks
    for j in (i, i + 3):
        w, bias = sd[f"model.{j}.weight"], sd[f"model.{j}.bias"]
        h = F.relu(inorm(F.conv_transpose2d(h, w, bias, stride=2, padding=1, output_padding=1)))
    return torch.tanh(conv(pad(h, 3), i + 7))


def test_unet_computes_the_reference_function():
    torch.manual_seed(0)
    net = build_net(UnetSpec(num_downs=5, base_channels=2, norm="instance")).eval()
    init_weights(net, scheme="normal", gain=0.3)  # large enough that every path matters
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(net(x), reference_unet(net.state_dict(), x, 5))


def test_resnet_computes_the_reference_function():
    torch.manual_seed(0)
    net = build_net(ResnetSpec(n_blocks=2, base_channels=2, norm="instance")).eval()
    init_weights(net, scheme="normal", gain=0.3)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(net(x), reference_resnet(net.state_dict(), x, 2))
