"""CUT's PatchSampleF: picks feature-map locations and projects them to unit vectors for PatchNCE."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


class PatchSampler(nn.Module):
    """One 2-layer MLP (C_l -> mlp_channels -> mlp_channels) per tapped layer, plus the RNG
    that picks patch locations.

    The MLPs are built here from known channel counts, not on the first batch as the reference
    does, so DDP, fused optimisers and exact resume see every parameter from the start. The
    location RNG's state is part of `state_dict()` (as extra state), so checkpoints keep it.
    """

    def __init__(self, channels: Sequence[int], *, mlp_channels: int = 256, seed: int = 0) -> None:
        super().__init__()
        width = mlp_channels
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, width), nn.ReLU(), nn.Linear(width, width)) for c in channels
        )
        self.rng = torch.Generator().manual_seed(seed)

    def sample_locations(
        self, feats: Sequence[torch.Tensor], num_patches: int
    ) -> list[torch.Tensor]:
        """Per feature map (N, C, H, W): up to `num_patches` distinct flat indices into H*W.

        One draw per layer, shared by every image of the batch (as in the reference); reuse
        the result for the query and the key so both see the same places.
        """
        locations = []
        for feat in feats:
            count = feat.shape[2] * feat.shape[3]
            order = torch.randperm(count, generator=self.rng)
            locations.append(order[: min(num_patches, count)].to(feat.device))
        return locations

    def forward(self, feats: Sequence[torch.Tensor], locations: Sequence[torch.Tensor]
                ) -> list[torch.Tensor]:
        """Feature maps (N, C_l, H, W) -> per layer (N, P, mlp_channels) float32, unit L2 norm."""
        if len(feats) != len(self.mlps) or len(locations) != len(self.mlps):
            raise ValueError(f"patch sampler: built for {len(self.mlps)} layers, got "
                             f"{len(feats)} feature maps and {len(locations)} location sets")
        out = []
        for feat, where, mlp in zip(feats, locations, self.mlps):
            patches = feat.flatten(2).transpose(1, 2)[:, where]  # (N, P, C)
            projected = mlp(patches).float()
            # The reference's Normalize: x / (||x||_2 + 1e-7).
            out.append(projected / (projected.norm(dim=-1, keepdim=True) + 1e-7))
        return out

    def get_extra_state(self) -> Any:
        return self.rng.get_state()

    def set_extra_state(self, state: Any) -> None:
        self.rng.set_state(state)
