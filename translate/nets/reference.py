"""Detect and load published generator weights: pix2pix/CycleGAN, CUT, BasicSR, (Real-)ESRGAN."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from translate.errors import CheckpointError
from translate.nets import GeneratorSpec, build_net, is_generator
from translate.nets.resnet import ResnetSpec
from translate.nets.rrdbnet import RrdbnetSpec
from translate.nets.srresnet import SRRESNET_UPSCALES, SrresnetSpec
from translate.nets.srvgg_compact import SRVGG_UPSCALES, SrvggCompactSpec
from translate.nets.unet import UnetSpec

class NotReferenceWeights(CheckpointError):
    """Weights in none of the published layouts detected here, or not matching the spec named
    for them; the loader then tries other formats (spandrel) or reports this one line."""


_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")
# BasicSR and Real-ESRGAN save {"params_ema": sd} and/or {"params": sd}; the EMA weights are the
# ones their authors evaluate and release, so they win when a file holds both.
_WRAPPERS = ("params_ema", "params")
# The 2018 ESRGAN repository's RRDBNet names -> BasicSR's (its RRDBNet_arch.py).
_ESRGAN_2018 = [
    (r"RRDB_trunk\.(\d+)\.RDB(\d)\.(.+)", r"body.\1.rdb\2.\3"),
    (r"trunk_conv\.(.+)", r"conv_body.\1"),
    (r"upconv(\d)\.(.+)", r"conv_up\1.\2"),
    (r"HRconv\.(.+)", r"conv_hr.\1"),
]
# The older sequential layout of the first RRDB_ESRGAN_x4.pth / RRDB_PSNR_x4.pth (x4 only): the
# index map of the ESRGAN repository's transer_RRDB_models.py. Convs in the blocks sat in
# Sequential(conv, act), hence the ".0".
_ESRGAN_SEQUENTIAL = [
    (r"model\.0\.(.+)", r"conv_first.\1"),
    (r"model\.1\.sub\.(\d+)\.RDB(\d)\.(conv\d)\.0\.(.+)", r"body.\1.rdb\2.\3.\4"),
    (r"model\.1\.sub\.\d+\.(weight|bias)", r"conv_body.\1"),  # the conv after the last block
    (r"model\.3\.(.+)", r"conv_up1.\1"),
    (r"model\.6\.(.+)", r"conv_up2.\1"),
    (r"model\.8\.(.+)", r"conv_hr.\1"),
    (r"model\.10\.(.+)", r"conv_last.\1"),
]
# BasicSR before 1.0 (mmsr) called MSRResNet's blocks `recon_trunk` and conv_hr `HRconv`.
_MMSR_MSRRESNET = [(r"recon_trunk\.(.+)", r"body.\1"), (r"HRconv\.(.+)", r"conv_hr.\1")]
# (a key every file of the layout has, its renaming rules)
_OLD_LAYOUTS = [
    ("model.1.sub.0.RDB1.conv1.0.weight", _ESRGAN_SEQUENTIAL),
    ("RRDB_trunk.0.RDB1.conv1.weight", _ESRGAN_2018),
    ("recon_trunk.0.conv1.weight", _MMSR_MSRRESNET),
]


def clean_reference_state_dict(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of `state_dict` without a DataParallel "module." prefix or stale instance-norm stats.

    Models saved before PyTorch 0.4 carry running stats for InstanceNorm layers, which no longer
    have them (the reference code deletes them on load too). They are recognised as norm stats
    of a module with no affine weight; a BatchNorm layer always has one. Nothing else changes.
    """
    if not isinstance(state_dict, Mapping) or not all(isinstance(k, str) for k in state_dict):
        raise NotReferenceWeights("reference weights: expected a state dict mapping names to tensors")
    cleaned = {key.removeprefix("module."): value for key, value in state_dict.items()}

    def stale(key: str) -> bool:
        module, _, name = key.rpartition(".")
        return name in _NORM_STATS and f"{module}.weight" not in cleaned

    return {key: value for key, value in cleaned.items() if not stale(key)}


def _clean_tensors(state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    sd = clean_reference_state_dict(state_dict)
    if not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise NotReferenceWeights("reference weights: expected a state dict mapping names to tensors")
    return sd


def unwrap_published(obj: Any) -> Any:
    """The state dict in a {"params_ema": sd} (preferred) or {"params": sd} file; else `obj`."""
    if isinstance(obj, Mapping):
        for key in _WRAPPERS:
            if isinstance(obj.get(key), Mapping):
                return obj[key]
    return obj


def _rename(sd: dict[str, torch.Tensor], rules: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Keys renamed by the first fully matching (pattern, template); unmatched keys kept."""
    renamed = {}
    for key, value in sd.items():
        for pattern, template in rules:
            if m := re.fullmatch(pattern, key):
                key = m.expand(template)
                break
        renamed[key] = value
    return renamed


def published_state_dict(obj: Any) -> dict[str, torch.Tensor]:
    """A published file's tensors: unwrapped, cleaned, old ESRGAN/mmsr keys renamed to BasicSR's."""
    sd = _clean_tensors(unwrap_published(obj))
    for marker, rules in _OLD_LAYOUTS:
        if marker in sd:
            return _rename(sd, rules)
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
        raise NotReferenceWeights(f"reference weights: U-Net without its outermost up conv {up_conv!r}")
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
            raise NotReferenceWeights("reference weights: ResNet block without exactly two convs")
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
        # CUT's anti-aliased layout keeps its fixed blur filters as `filt` buffers.
        antialias=any(key.endswith(".filt") for key in sd),
    )


def _unshuffled_channels(total: int, out_channels: int) -> tuple[int, int]:
    """(in_channels, upscale) of an RRDBNet whose conv_first reads `total` channels.

    Real-ESRGAN pixel-unshuffles x2 inputs by 2 and x1 inputs by 4 before the x4 trunk, so RGB
    gives 3 (x4), 12 (x2) or 48 (x1) channels; in_channels == out_channels is assumed.
    """
    for upscale, factor in ((4, 1), (2, 2), (1, 4)):
        if total == out_channels * factor**2:
            return out_channels, upscale
    raise NotReferenceWeights(
        f"reference weights: RRDBNet conv_first reads {total} channels, not {out_channels} "
        "times 1, 4 or 16 (x4, x2, x1)"
    )


def _detect_rrdbnet(sd: dict[str, torch.Tensor]) -> RrdbnetSpec:
    feat, total = sd["conv_first.weight"].shape[:2]
    out_channels = sd["conv_last.weight"].shape[0]
    in_channels, upscale = _unshuffled_channels(total, out_channels)
    blocks = _int_indices(r"body\.(\d+)\.rdb1\.conv1\.weight", sd)
    grow = sd["body.0.rdb1.conv1.weight"].shape[0] if blocks else RrdbnetSpec.grow_channels
    return RrdbnetSpec(
        in_channels=in_channels,
        out_channels=out_channels,
        base_channels=feat,
        n_blocks=len(blocks),
        grow_channels=grow,
        upscale=upscale,
    )


def _detect_srvgg(sd: dict[str, torch.Tensor]) -> SrvggCompactSpec:
    indices = _int_indices(r"body\.(\d+)\.weight", sd)
    convs = [i for i in indices if _is_conv(sd, f"body.{i}.weight")]
    feat, in_channels = sd["body.0.weight"].shape[:2]
    last = sd[f"body.{convs[-1]}.weight"].shape[0]  # out_channels * upscale**2, out == in
    upscale = round((last / in_channels) ** 0.5)
    if in_channels * upscale**2 != last or upscale not in SRVGG_UPSCALES:
        raise NotReferenceWeights(f"reference weights: SRVGGNetCompact last conv makes {last} channels, "
                         f"not {in_channels} x upscale**2")
    if "body.1.weight" not in sd:  # relu and leaky ReLU leave no parameters to tell them apart
        raise NotReferenceWeights("reference weights: SRVGGNetCompact without PReLU weights; "
                         "its activation cannot be detected")
    return SrvggCompactSpec(
        in_channels=in_channels,
        out_channels=in_channels,
        base_channels=feat,
        n_convs=len(convs) - 2,
        upscale=upscale,
    )


def _detect_srresnet(sd: dict[str, torch.Tensor]) -> SrresnetSpec:
    feat, in_channels = sd["conv_first.weight"].shape[:2]
    if "upconv2.weight" in sd:
        upscale = 4
    else:  # one stage of factor s makes feat * s**2 channels
        upscale = round((sd["upconv1.weight"].shape[0] / feat) ** 0.5)
    if upscale not in SRRESNET_UPSCALES:
        raise NotReferenceWeights(f"reference weights: SRResNet upconv1 gives upscale {upscale}, "
                                  f"not one of {SRRESNET_UPSCALES}")
    return SrresnetSpec(
        in_channels=in_channels,
        out_channels=sd["conv_last.weight"].shape[0],
        base_channels=feat,
        n_blocks=len(_int_indices(r"body\.(\d+)\.conv1\.weight", sd)),
        upscale=upscale,
        variant="srgan" if "bn_body.weight" in sd else "msrresnet",
    )


def _is_conv(sd: dict[str, torch.Tensor], key: str, kernel: int | None = None) -> bool:
    """True when `key` holds a 4-d conv weight (with a `kernel` x `kernel` window if given)."""
    value = sd.get(key)
    return value is not None and value.ndim == 4 and kernel in (None, value.shape[-1])


def _detector(sd: dict[str, torch.Tensor]) -> Any:
    """The detect function for the layout `sd` has, by its tell-tale keys."""
    if _is_conv(sd, "conv_first.weight") and "conv_up1.weight" in sd:
        return _detect_rrdbnet
    if _is_conv(sd, "conv_first.weight") and "upconv1.weight" in sd:
        return _detect_srresnet
    if _is_conv(sd, "body.0.weight"):
        return _detect_srvgg
    if _is_conv(sd, "model.model.0.weight"):
        return _detect_unet
    if _is_conv(sd, "model.1.weight", kernel=7):
        return _detect_resnet
    raise NotReferenceWeights(
        "not a recognisable reference generator: expected the keys of pix2pix/CycleGAN "
        "('model.model.0.weight' U-Net, 7x7 'model.1.weight' ResNet), RRDBNet / ESRGAN "
        "('conv_first', 'conv_up1' or 'RRDB_trunk'), SRResNet ('conv_first', 'upconv1') or "
        "SRVGGNetCompact ('body.0')"
    )


def _check_matches(spec: GeneratorSpec, sd: dict[str, torch.Tensor]) -> None:
    """Raise a one-line NotReferenceWeights unless `sd` has exactly the names and shapes of spec's net."""
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
        raise NotReferenceWeights(f"reference weights do not match {spec}: {'; '.join(problems)}")


def detect_reference_generator(state_dict: Mapping[str, Any]) -> GeneratorSpec:
    """Infer the spec of published generator weights from their names and shapes.

    Takes a pix2pix/CycleGAN or CUT `*_net_G.pth` state dict, a BasicSR / Real-ESRGAN file (bare or
    {"params_ema": ...} / {"params": ...}) or a 2018 ESRGAN file.
    """
    sd = published_state_dict(state_dict)
    detect = _detector(sd)
    try:
        spec: GeneratorSpec = detect(sd)
    except (KeyError, IndexError) as err:  # names or shapes from some other layout
        raise NotReferenceWeights(f"not a recognisable reference generator: {err!r}") from err
    _check_matches(spec, sd)
    return spec


def load_reference_generator(
    state_dict: Mapping[str, Any], spec: GeneratorSpec | None = None
) -> nn.Module:
    """Build the generator for published weights (detected unless `spec` is given), in eval().

    Load files with `torch.load(path, map_location="cpu", weights_only=True)`. Loading is strict:
    every name and shape must match. Check `spec.value_range` for the pixel range it expects.
    """
    sd = published_state_dict(state_dict)
    if spec is None:
        spec = detect_reference_generator(sd)
    elif not is_generator(spec):
        raise ValueError(f"reference weights: {spec.kind!r} is not a generator spec")
    else:
        _check_matches(spec, sd)
    net = build_net(spec)
    net.load_state_dict(sd, strict=True)
    return net.eval()
