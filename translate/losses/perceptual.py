"""Perceptual loss on VGG19 features (Johnson et al. 2016), as SRGAN, ESRGAN and Real-ESRGAN use it.

VGG19 is torchvision's ImageNet model, read from a weights file found by `translate.weights.locate`
(never downloaded here); only its conv trunk up to the deepest layer the loss needs is built. Layer
names follow the papers and BasicSR: `convI_J` is the J-th conv of block I before its ReLU,
`reluI_J` after it (ESRGAN section 3.4 compares features before the activation).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from translate.errors import CheckpointError, WeightsError

if TYPE_CHECKING:
    from translate.config import PerceptualConfig

log = logging.getLogger(__name__)

_BLOCKS = (2, 2, 4, 4, 4)  # convs per block of VGG19 (configuration E)
_WIDTHS = (64, 128, 256, 512, 512)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, convs in enumerate(_BLOCKS, start=1):
        for j in range(1, convs + 1):
            names += [f"conv{block}_{j}", f"relu{block}_{j}"]
        names.append(f"pool{block}")
    return tuple(names)


# Position i is torchvision's `vgg19().features[i]`, so its state-dict keys are features.{i}.weight.
VGG19_LAYERS = _layer_names()
# ImageNet statistics torchvision's VGG19 was trained with, for RGB in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Vgg19Features(nn.Module):
    """VGG19's `features` up to and including `last_layer`, with torchvision's module indices.

    forward: (N, 3, H, W) RGB in [0, 1] -> {layer name: features} for `layers`; ImageNet-normalises
    the input first. ReLUs are not in place, so a conv's output kept for the loss stays pre-activation."""

    def __init__(self, last_layer: str) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        channels = 3
        for name in VGG19_LAYERS[: VGG19_LAYERS.index(last_layer) + 1]:
            if name.startswith("conv"):
                width = _WIDTHS[int(name[4]) - 1]
                modules.append(nn.Conv2d(channels, width, 3, padding=1))
                channels = width
            else:
                modules.append(nn.ReLU() if name.startswith("relu") else nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*modules)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor, layers: set[str]) -> dict[str, Tensor]:
        out = {}
        x = (x - self.mean) / self.std
        for name, module in zip(VGG19_LAYERS, self.features):
            x = module(x)
            if name in layers:
                out[name] = x
        return out


def load_vgg19_features(path: str | Path, *, last_layer: str) -> Vgg19Features:
    """The trunk up to `last_layer` with the weights of torchvision's VGG19 state dict at `path`
    (extra keys such as the classifier are ignored); WeightsError naming the file otherwise."""
    from translate.checkpoint import load_file

    try:
        state = load_file(path)
    except CheckpointError as e:
        raise WeightsError(f"vgg19: {e}") from None
    net = Vgg19Features(last_layer)
    wanted = net.features.state_dict()
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path}: not a VGG19 state dict")
    missing = [f"features.{k}" for k in wanted if f"features.{k}" not in state]
    if missing:
        raise WeightsError(f"{path}: not torchvision VGG19 weights (no {missing[0]!r})")
    for key, tensor in wanted.items():
        found = state[f"features.{key}"]
        if not isinstance(found, Tensor) or found.shape != tensor.shape:
            shape = tuple(found.shape) if isinstance(found, Tensor) else type(found).__name__
            raise WeightsError(f"{path}: features.{key} is {shape}, VGG19 has {tuple(tensor.shape)}; "
                               "not VGG19 weights")
    net.features.load_state_dict({k: state[f"features.{k}"] for k in wanted})
    return net.eval().requires_grad_(False)


class PerceptualLoss(nn.Module):
    """sum_l w_l * crit(phi_l(x), phi_l(y)) over VGG19 layers l (Johnson et al. 2016, eq. 2; ESRGAN eq. 3).

    phi_l is layer l's feature map of the ImageNet-normalised image; crit is the mean absolute
    (l1) or squared (mse) difference over all its elements; the target's features carry no gradient.
    forward: fake, target (N, 3, H, W) in [-1, 1] (the training range), mapped to [0, 1] for VGG.
    VGG stays in eval mode and frozen whatever mode the module holding it is in."""

    def __init__(self, features: Vgg19Features, layer_weights: Mapping[str, float], *, criterion: str = "l1",
                 sha256: str = "") -> None:
        super().__init__()
        self.features = features
        self.layer_weights = {name: float(w) for name, w in layer_weights.items() if w > 0}
        self.criterion = {"l1": F.l1_loss, "mse": F.mse_loss}[criterion]
        self.sha256 = sha256  # of the VGG19 weights file, recorded in checkpoints

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.features.eval()  # VGG has no dropout in `features`, but keep it a fixed function anyway
        return self

    def forward(self, fake: Tensor, target: Tensor) -> Tensor:
        layers = set(self.layer_weights)
        fake_features = self.features((fake + 1) / 2, layers)
        with torch.no_grad():
            target_features = self.features((target.detach() + 1) / 2, layers)
        losses = [w * self.criterion(fake_features[name].float(), target_features[name].float())
                  for name, w in self.layer_weights.items()]
        return torch.stack(losses).sum()


def perceptual_loss(config: PerceptualConfig, *, weights_dir: str | Path = "weights") -> PerceptualLoss:
    """The loss `config` describes, VGG19 found by `weights.locate` (explicit path, weights folder, cache)."""
    from translate import weights

    path = weights.locate("vgg19", config.weights or None, weights_dir)
    layers = {name: w for name, w in config.layers.items() if w > 0}
    last = max(layers, key=VGG19_LAYERS.index)
    features = load_vgg19_features(path, last_layer=last)
    sha256 = weights.sha256_of(path)
    if not weights.matches_published("vgg19", sha256):
        log.warning("perceptual loss: %s is not torchvision's published VGG19 (sha256 %s...)", path, sha256[:12])
    return PerceptualLoss(features, layers, criterion=config.criterion, sha256=sha256)
