"""Exponential moving average of generator weights (Polyak averaging), as ESRGAN and Real-ESRGAN
keep `net_g_ema`: smoother than the last step's weights, so validation, conversion and export use it."""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from translate.errors import ConfigError


class WeightAverage:
    """Averaged copies of some nets: after each step theta_avg <- decay * theta_avg + (1 - decay) * theta.

    The copies start equal to the nets (BasicSR's `model_ema(0)`), stay in eval mode and never take
    gradients. Buffers (batch-norm running statistics) are copied, not averaged: they are statistics
    of the live net's activations, which the average of weights does not have (BasicSR leaves them
    at their initial values, which is wrong for nets with batch norm such as SRGAN's SRResNet)."""

    def __init__(self, nets: Mapping[str, nn.Module], *, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"decay: must be in [0, 1), got {decay!r}")
        self.decay = decay
        self.nets = {name: copy.deepcopy(net).eval().requires_grad_(False) for name, net in nets.items()}

    @torch.no_grad()
    def update(self, nets: Mapping[str, nn.Module]) -> None:
        """One averaging step towards the current weights of `nets` (same names as at construction)."""
        for name, average in self.nets.items():
            live = nets[name]
            params = dict(live.named_parameters())
            for key, param in average.named_parameters():
                param.mul_(self.decay).add_(params[key].detach(), alpha=1.0 - self.decay)
            buffers = dict(live.named_buffers())
            for key, buffer in average.named_buffers():
                buffer.copy_(buffers[key])

    def state_dict(self) -> dict[str, dict[str, Any]]:
        return {name: net.state_dict() for name, net in self.nets.items()}

    def load_state_dict(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        for name, net in self.nets.items():
            net.load_state_dict(state[name])
