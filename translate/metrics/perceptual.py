"""LPIPS (Zhang et al. 2018): learned perceptual distance between an output and its target.

The network is the authors' own `lpips` package (v0.1 linear layers on AlexNet or VGG16 features),
built with no weights and then loaded here from located files, so nothing downloads: the backbone is
torchvision's ImageNet file, the linear layers ship inside the lpips package (or come from a file).
torchmetrics' LPIPS copies the same code but fetches its backbone through torchvision.
Images are HxWx3 uint8 RGB arrays; an output and its target have the same shape.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from translate.errors import CheckpointError, WeightsError, first_line
from translate.metrics.protocol import LPIPS_BACKBONES, MetricWeights, import_library, weights_record
from translate.weights import sha256_of

LpipsNetName = Literal["alex", "vgg"]
# Smallest side each backbone's deepest LPIPS layer accepts (AlexNet's strides and pools; VGG's four pools).
LPIPS_MIN_SIDE = {"alex": 31, "vgg": 16}


def _load_state(name: str, path: Path) -> dict[str, torch.Tensor]:
    from translate.checkpoint import load_file

    try:
        state = load_file(path)
    except CheckpointError as e:
        raise WeightsError(f"{name}: {e}") from e
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: not a state dict of {name} weights")
    return state


class LpipsNet:
    """An LPIPS network ("alex" or "vgg") with its backbone and linear layers loaded from files."""

    def __init__(self, net: LpipsNetName, backbone: str | Path, layers: str | Path, *,
                 device: str | torch.device = "cpu"):
        lpips = import_library("lpips")
        if net not in LPIPS_BACKBONES:
            raise WeightsError(f"LPIPS net {net!r}: unknown (known: {', '.join(LPIPS_BACKBONES)})")
        with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=False`
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
        backbone, layers = Path(backbone), Path(layers)
        _load_backbone(model, _load_state(LPIPS_BACKBONES[net], backbone), backbone)
        _load_layers(model, _load_state(f"lpips_{net}", layers), layers)
        self.model = model.eval().requires_grad_(False).to(device)
        self.device = torch.device(device)
        self.net = net
        self.weights = {"backbone": weights_record(LPIPS_BACKBONES[net], backbone, sha256_of(backbone)),
                        "layers": weights_record(f"lpips_{net}", layers, sha256_of(layers))}

    @classmethod
    def load(cls, net: LpipsNetName = "alex", weights: MetricWeights | None = None, *,
             device: str | torch.device = "cpu") -> LpipsNet:
        """The network from `weights` (explicit files, weights folder, then torch.hub's cache / the lpips package)."""
        weights = weights or MetricWeights()
        if net not in LPIPS_BACKBONES:
            raise WeightsError(f"LPIPS net {net!r}: unknown (known: {', '.join(LPIPS_BACKBONES)})")
        return cls(net, weights.locate(LPIPS_BACKBONES[net]), weights.locate(f"lpips_{net}"), device=device)

    @torch.no_grad()
    def distances(self, outputs: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> list[float]:
        """LPIPS of each output against its target (0 = identical); NaN where a side is below LPIPS_MIN_SIDE."""
        if len(outputs) != len(targets):
            raise ValueError(f"LPIPS: {len(outputs)} outputs but {len(targets)} targets")
        return [self._distance(output, target) for output, target in zip(outputs, targets)]

    def _distance(self, output: np.ndarray, target: np.ndarray) -> float:
        if output.shape != target.shape or output.ndim != 3 or output.shape[2] != 3 or output.dtype != np.uint8:
            raise ValueError(f"LPIPS images must be HxWx3 uint8 RGB of one shape, got {output.shape} {output.dtype} "
                             f"and {target.shape} {target.dtype}")
        if min(output.shape[:2]) < LPIPS_MIN_SIDE[self.net]:
            return float("nan")
        pair = torch.from_numpy(np.stack([output, target])).permute(0, 3, 1, 2).to(self.device)
        pair = pair.float() / 127.5 - 1  # LPIPS takes [-1, 1]
        return float(self.model(pair[:1], pair[1:]).item())


def _load_backbone(model: Any, state: dict[str, torch.Tensor], path: Path) -> None:
    """torchvision's `features.N.*` tensors into LPIPS's slices, which keep the same layer numbers N."""
    wanted = {}
    for slice_name, layers in model.net.named_children():
        for index, layer in layers.named_children():
            for param, _ in layer.named_parameters(recurse=False):
                wanted[f"{slice_name}.{index}.{param}"] = f"features.{index}.{param}"
    missing = [key for key in wanted.values() if key not in state]
    if missing:
        raise WeightsError(f"{path}: not torchvision {model.pnet_type} weights (no {missing[0]})")
    try:
        model.net.load_state_dict({ours: state[theirs] for ours, theirs in wanted.items()})
    except RuntimeError as e:
        raise WeightsError(f"{path}: not torchvision {model.pnet_type} weights ({first_line(e)})") from e


def _load_layers(model: Any, state: dict[str, torch.Tensor], path: Path) -> None:
    """The LPIPS linear layers (`linK.model.1.weight`), all of them and nothing else."""
    expected = {key for key in model.state_dict() if key.startswith("lin") and not key.startswith("lins.")}
    if set(state) != expected:
        raise WeightsError(f"{path}: not LPIPS v0.1 {model.pnet_type} linear layers "
                           f"(keys {sorted(set(state))[:3]}..., expected {sorted(expected)[:3]}...)")
    try:
        model.load_state_dict(state, strict=False)  # strict=False: the backbone is not in this file
    except RuntimeError as e:
        raise WeightsError(f"{path}: not LPIPS v0.1 {model.pnet_type} linear layers ({first_line(e)})") from e


def lpips_distances(outputs: Sequence[np.ndarray], targets: Sequence[np.ndarray], *, net: LpipsNetName = "alex",
                    weights: MetricWeights | None = None, model: LpipsNet | None = None,
                    device: str | torch.device = "cpu") -> list[float]:
    """LPIPS of each HxWx3 uint8 output against its target; `model` reuses a loaded LpipsNet."""
    model = model or LpipsNet.load(net, weights, device=device)
    return model.distances(outputs, targets)
