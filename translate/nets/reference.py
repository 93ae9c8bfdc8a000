"""Detect and load generator weights released with the reference pix2pix/CycleGAN code."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from translate.nets import GeneratorSpec, build_net, is_generator
from translate.nets.resnet import ResnetSpec
from translate.nets.unet import UnetSpec

_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


def clean_reference_state_dict(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of `state_dict` without a DataParallel "module." prefix or stale instance-norm stats.

    Models saved before PyTorch 0.4 carry running stats for InstanceNorm layers, which no longer
    have them (the reference code deletes them on load too). They are recognised as norm stats
    of a module with no affine weight; a BatchNorm layer always has one. Nothing else changes.
    """
    if not isinstance(state_dict, Mapping) or not all(isinstance(k, str) for k in state_dict):
        raise ValueError("reference weights: expected a state dict mapping names to tensors")
    cleaned = {key.removeprefix("module."): value for key, value in state_dict.items()}

    def stale(key: str) -> bool:
        module, _, name = key.rpartition(".")
        return name in _NORM_STATS and f"{module}.weight" not in cleaned

    return {key: value for key, value in cleaned.items() if not stale(key)}


def _clean_tensors(state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    sd = clean_reference_state_dict(state_dict)
    if not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError("reference weights: expected a state dict mapping names to tensors")
    return sd


def _int_indices(pattern: str, keys: Any) -> list[int]:
    """Sorted distinct integers captured by `pattern` (fully matched) over `keys`."""
    return sorted({int(m.group(1)) for key in keys if (m := re.fullmatch(pattern, key))})


def _detect_unet(sd: dict[str, torch.Tensor]) -> UnetSpec:
    base, in_channels = sd["model.model.0.weight"].shape[:2]
    # Level k > 0 lives at model.model.1.model(.3.model)*(k-1): the outermost block holds its
    # submodule at index 1, the others at index 3 (after leaky ReLU, down conv and norm).
    num_downs, prefix = 1, "model.model.1.model"
    while f"{prefix}.1.weight" in sd:
        num_downs += 1
        prefix += ".3.model"
    up_conv = "model.model.3.weight" if num_downs > 1 else "model.model.2.weight"
    if up_conv not in sd:
        raise ValueError(f"reference weights: U-Net without its outermost up conv {up_conv!r}")
    # Instance norm and no norm both leave no entries; instance is what the reference trains.
    norm = "batch" if any(key.endswith(".running_mean") for key in sd) else "instance"
    # Dropout leaves no trace in a U-Net state dict (it sits last in its block) and is off in
    # eval(); the spec keeps the pix2pix default.
    return UnetSpec(
        in_channels=in_channels,
        out_channels=sd[up_conv].shape[1],  # ConvTranspose2d weights are (in, out, kH, kW)
        base_channels=base,
        num_downs=num_downs,
        norm=norm,
    )


def _detect_resnet(sd: dict[str, torch.Tensor]) -> ResnetSpec:
    base, in_channels = sd["model.1.weight"].shape[:2]
    blocks = _int_indices(r"model\.(\d+)\.conv_block\..+", sd)
    padding, dropout = "reflect", 0.0
    if blocks:
        convs = _int_indices(rf"model\.{blocks[0]}\.conv_block\.(\d+)\.weight", sd)
        convs = [i for i in convs if sd[f"model.{blocks[0]}.conv_block.{i}.weight"].ndim == 4]
        if len(convs) != 2:
            raise ValueError("reference weights: ResNet block without exactly two convs")
        # A pad module comes first unless padding is zeros ("reflect" and "replicate" look alike);
        # a dropout layer between the two convs pushes the second one back by one index.
        padding = "zeros" if convs[0] == 0 else "reflect"
        plain_gap = 3 if padding == "zeros" else 4  # conv, norm, ReLU, [pad], conv
        dropout = 0.5 if convs[1] - convs[0] == plain_gap + 1 else 0.0
    last = _int_indices(r"model\.(\d+)\.weight", sd)[-1]
    return ResnetSpec(
        in_channels=in_channels,
        out_channels=sd[f"model.{last}.weight"].shape[0],
        base_channels=base,
        n_blocks=len(blocks),
        norm="batch" if "model.2.running_mean" in sd else "instance",
        dropout=dropout,
        padding=padding,
    )


def _check_matches(spec: GeneratorSpec, sd: dict[str, torch.Tensor]) -> None:
    """Raise a one-line ValueError unless `sd` has exactly the names and shapes of spec's net."""
    with torch.device("meta"):  # shapes only: no memory, no init cost
        expected = {k: tuple(v.shape) for k, v in build_net(spec).state_dict().items()}
    # Pre-0.4 BatchNorm entries lack the counter; load_state_dict fills it in.
    missing = [k for k in expected if k not in sd and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in sd if k not in expected]
    reshaped = [
        f"{k} {tuple(sd[k].shape)} != {expected[k]}"
        for k in expected
        if k in sd and tuple(sd[k].shape) != expected[k]
    ]
    found = {"missing": missing, "unexpected": unexpected, "wrong shape": reshaped}
    problems = [f"{len(keys)} {what} (first: {keys[0]})" for what, keys in found.items() if keys]
    if problems:
        raise ValueError(f"reference weights do not match {spec}: {'; '.join(problems)}")


def detect_reference_generator(state_dict: Mapping[str, Any]) -> GeneratorSpec:
    """Infer the spec of a reference `*_net_G.pth` state dict from its names and shapes."""
    sd = _clean_tensors(state_dict)
    unet_key, resnet_key = "model.model.0.weight", "model.1.weight"
    if unet_key in sd and sd[unet_key].ndim == 4:
        detect = _detect_unet
    elif resnet_key in sd and sd[resnet_key].ndim == 4 and sd[resnet_key].shape[-1] == 7:
        detect = _detect_resnet
    else:
        raise ValueError(
            f"not a recognisable reference generator: expected {unet_key!r} (U-Net) "
            f"or a 7x7 conv {resnet_key!r} (ResNet)"
        )
    try:
        spec: GeneratorSpec = detect(sd)
    except (KeyError, IndexError) as err:  # names or shapes from some other layout
        raise ValueError(f"not a recognisable reference generator: {err!r}") from err
    _check_matches(spec, sd)
    return spec


def load_reference_generator(
    state_dict: Mapping[str, Any], spec: GeneratorSpec | None = None
) -> nn.Module:
    """Build the generator for a reference state dict (detected unless `spec` is given), in eval().

    Load files with `torch.load(path, map_location="cpu", weights_only=True)`.
    """
    sd = _clean_tensors(state_dict)
    if spec is None:
        spec = detect_reference_generator(sd)
    elif not is_generator(spec):
        raise ValueError(f"reference weights: {spec.kind!r} is not a generator spec")
    else:
        _check_matches(spec, sd)
    net = build_net(spec)
    net.load_state_dict(sd, strict=True)
    return net.eval()
