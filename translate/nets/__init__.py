"""Network zoo: spec dataclasses, the registries of generators and discriminators, and presets.

`nets/` imports torch and `translate.errors` only (that module imports nothing): a spec that a
config or checkpoint gets wrong raises `ConfigError` where it is detected; published weights that
fit no known layout raise `CheckpointError`. `ValueError` stays for calls inside the package that
break a contract (a forward pass given a size that the config checks already ruled out)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import nn

from translate.errors import ConfigError
from translate.nets.gated import GatedGenerator, GatedSpec
from translate.nets.init import INIT_SCHEMES, init_weights
from translate.nets.multiscale import MultiscaleDiscriminator, MultiscaleSpec
from translate.nets.patchgan import PatchGanDiscriminator, PatchGanSpec
from translate.nets.resnet import ResnetGenerator, ResnetSpec
from translate.nets.rrdbnet import RrdbnetGenerator, RrdbnetSpec
from translate.nets.srresnet import SrresnetGenerator, SrresnetSpec
from translate.nets.srvgg_compact import SrvggCompactGenerator, SrvggCompactSpec
from translate.nets.unet import UnetGenerator, UnetSpec
from translate.nets.unet_discriminator import UnetDiscriminator, UnetDiscriminatorSpec
from translate.nets.vgg_discriminator import VggStyleDiscriminator, VggStyleSpec

__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "INIT_SCHEMES",
    "PRESETS",
    "DiscriminatorSpec",
    "GatedGenerator",
    "GatedSpec",
    "GeneratorSpec",
    "MultiscaleDiscriminator",
    "MultiscaleSpec",
    "PatchGanDiscriminator",
    "PatchGanSpec",
    "ResnetGenerator",
    "ResnetSpec",
    "RrdbnetGenerator",
    "RrdbnetSpec",
    "Spec",
    "SrresnetGenerator",
    "SrresnetSpec",
    "SrvggCompactGenerator",
    "SrvggCompactSpec",
    "UnetDiscriminator",
    "UnetDiscriminatorSpec",
    "UnetGenerator",
    "UnetSpec",
    "VggStyleDiscriminator",
    "VggStyleSpec",
    "build_net",
    "init_weights",
    "is_generator",
    "preset",
    "spec_from_dict",
    "spec_to_dict",
]

GeneratorSpec = UnetSpec | ResnetSpec | SrresnetSpec | RrdbnetSpec | SrvggCompactSpec | GatedSpec
DiscriminatorSpec = PatchGanSpec | MultiscaleSpec | VggStyleSpec | UnetDiscriminatorSpec
Spec = GeneratorSpec | DiscriminatorSpec

# kind -> (spec class, module class). Generators map (N, C, H, W) to (N, C', s*H, s*W) with
# s = spec.scale, in the range spec.value_range names: [-1, 1] for our GAN nets (tanh); the
# super-resolution nets read RGB in [0, 1] and write it unbounded (inference clamps).
# Discriminators map (N, C, H, W) to a list of logit maps, one per scale (one logit per image for
# vgg_style, one per pixel for unet_discriminator).
GENERATORS: dict[str, tuple[type, type]] = {
    "unet": (UnetSpec, UnetGenerator),
    "resnet": (ResnetSpec, ResnetGenerator),
    "srresnet": (SrresnetSpec, SrresnetGenerator),
    "rrdbnet": (RrdbnetSpec, RrdbnetGenerator),
    "srvgg_compact": (SrvggCompactSpec, SrvggCompactGenerator),
    "gated": (GatedSpec, GatedGenerator),
}
DISCRIMINATORS: dict[str, tuple[type, type]] = {
    "patchgan": (PatchGanSpec, PatchGanDiscriminator),
    "multiscale": (MultiscaleSpec, MultiscaleDiscriminator),
    "vgg_style": (VggStyleSpec, VggStyleDiscriminator),
    "unet_discriminator": (UnetDiscriminatorSpec, UnetDiscriminator),
}
_NETS = {**GENERATORS, **DISCRIMINATORS}

# The names users know from the reference pix2pix/CycleGAN code (and pix2pixHD).
PRESETS: dict[str, Spec] = {
    "unet_128": UnetSpec(num_downs=7),
    "unet_256": UnetSpec(num_downs=8),
    "resnet_6blocks": ResnetSpec(n_blocks=6),
    "resnet_9blocks": ResnetSpec(n_blocks=9),
    # CUT / FastCUT's nets (Park et al. 2020): the same layouts with anti-aliased resampling.
    "resnet_9blocks_antialias": ResnetSpec(n_blocks=9, antialias=True),
    "patchgan_70": PatchGanSpec(n_layers=3),
    "patchgan_34": PatchGanSpec(n_layers=2),
    "pixelgan": PatchGanSpec(n_layers=0),
    "patchgan_70_antialias": PatchGanSpec(n_layers=3, antialias=True),
    "multiscale_patchgan": MultiscaleSpec(n_layers=3, n_scales=3),
    # SRGAN / ESRGAN's VGG-style discriminator (BasicSR VGGStyleDiscriminator, one logit per
    # 128 or 256 px image) and Real-ESRGAN's U-Net discriminator (UNetDiscriminatorSN, per pixel).
    "vgg_style_128": VggStyleSpec(input_size=128),
    "vgg_style_256": VggStyleSpec(input_size=256),
    "unet_discriminator_sn": UnetDiscriminatorSpec(),
    # Super-resolution: SRGAN's SRResNet and BasicSR's MSRResNet_x4; ESRGAN / RealESRGAN_x4plus
    # (23 blocks), RealESRGAN_x4plus_anime_6B, RealESRGAN_x2plus; realesr-general-x4v3 and
    # realesr-animevideov3 (SRVGGNetCompact).
    "srresnet_x4": SrresnetSpec(),
    "msrresnet_x4": SrresnetSpec(variant="msrresnet"),
    "rrdbnet_x4": RrdbnetSpec(),
    "rrdbnet_x4_anime": RrdbnetSpec(n_blocks=6),
    "rrdbnet_x2": RrdbnetSpec(upscale=2),
    "srvgg_general_x4v3": SrvggCompactSpec(n_convs=32),
    "srvgg_animevideo_v3": SrvggCompactSpec(n_convs=16),
    # Inpainting: DeepFill v2's coarse network (gated convolutions, dilated middle), one stage.
    "deepfill_v2_coarse": GatedSpec(),
}


def _spec_class(kind: Any) -> type:
    if kind not in _NETS:
        raise ConfigError(f"kind: unknown {kind!r}; choose one of {', '.join(_NETS)}")
    return _NETS[kind][0]


def _check_fields(spec_class: type, names: Any, *, context: str) -> None:
    valid = [f.name for f in dataclasses.fields(spec_class)]
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ConfigError(
            f"{context}: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"valid fields: {', '.join(valid)}"
        )


def build_net(spec: Spec) -> nn.Module:
    """Build the module for `spec` (PyTorch default init; see `init_weights`)."""
    spec_class = _spec_class(getattr(spec, "kind", None))
    if not isinstance(spec, spec_class):
        raise ValueError(
            f"kind {spec.kind!r} needs a {spec_class.__name__}, got {type(spec).__name__}"
        )
    return _NETS[spec.kind][1](spec)


def is_generator(spec: Spec) -> bool:
    """True for generator specs, False for discriminator specs."""
    return _spec_class(getattr(spec, "kind", None)) in {cls for cls, _ in GENERATORS.values()}


def spec_to_dict(spec: Spec) -> dict[str, Any]:
    """The spec as a dict of plain primitives, "kind" included; inverse of `spec_from_dict`."""
    _spec_class(getattr(spec, "kind", None))
    return dataclasses.asdict(spec)


def spec_from_dict(d: Mapping[str, Any] | str) -> Spec:
    """Rebuild a spec from `spec_to_dict` output (missing fields take defaults) or a preset name."""
    if isinstance(d, str):
        return preset(d)
    if not isinstance(d, Mapping):
        raise ConfigError(f"net spec: expected a mapping or a preset name, got {type(d).__name__}")
    spec_class = _spec_class(d.get("kind"))
    _check_fields(spec_class, d, context=f"net spec of kind {d['kind']!r}")
    return spec_class(**d)


def preset(name: str, **overrides: Any) -> Spec:
    """The preset `name` with some fields replaced, e.g. preset("unet_256", in_channels=1)."""
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown {name!r}; choose one of {', '.join(PRESETS)}")
    spec = PRESETS[name]
    if "kind" in overrides:
        raise ConfigError(f"preset {name!r}: 'kind' cannot be overridden; pick another preset")
    _check_fields(type(spec), overrides, context=f"preset {name!r}")
    return dataclasses.replace(spec, **overrides)
