"""Colorization as classification over quantised chroma (Zhang, Isola & Efros 2016, "Colorful Image
Colorization"): the ab plane is cut into bins of 10 units, kept where sRGB colours fall; a pixel's
target is a soft encoding over the 5 bin centres nearest its true ab (Gaussian weights, sigma 5);
the loss is the cross-entropy -v(Z) sum_q Z_q log Zhat_q (their eq. 2), where the optional class
rebalancing v(Z) = w_q* of the target's likeliest bin q*, w proportional to ((1 - lambda) p + lambda / Q)^-1
with E_p[w] = 1 and p the training set's bin distribution smoothed by a Gaussian of sigma 5, makes
rare colours count more; and a predicted distribution Zhat becomes one ab by the annealed mean
H(Z) = E[f_T(Z)], f_T(z) = exp(log z / T) / sum_q exp(log z_q / T), T = 0.38.

Why it suits "unsure is grey" for few photos: faint chroma (|ab| under half a bin) is encoded as the
grey bin itself, so a dark sky or a white wall is learned as grey, not as a slight tint.

ab here is in the nets' [-1, 1] units of OpenCV's 8-bit Lab: a* = 127.5 (x + 1) - 128.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable

import cv2
import numpy as np
import torch

GRID = 10.0  # bin width in a*, b* units
NEIGHBOURS, SIGMA = 5, 5.0  # soft encoding
ANNEALED_T = 0.38
SAMPLED_PIXELS = 2048  # positions per batch where the loss is evaluated (classification_loss)


@functools.cache
def _bin_centres() -> np.ndarray:
    # Every 8-bit sRGB colour in OpenCV's Lab: the bins the sRGB gamut reaches, Q = 262 (the paper
    # kept 313 bins, found in its ImageNet training photos' Lab values).
    levels = np.arange(256, dtype=np.uint8)
    rgb = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    ab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).reshape(-1, 3)[:, 1:].astype(np.int64) - 128
    bins = np.floor(ab / GRID + 0.5).astype(np.int64)  # nearest centre, in -13..13
    codes = np.unique((bins[:, 0] + 32) * 64 + bins[:, 1] + 32)  # 1-D unique is far faster than rows
    return np.stack([codes // 64 - 32, codes % 64 - 32], axis=1) * GRID


def bin_centres() -> torch.Tensor:
    """(Q, 2) float a*, b* of the in-gamut bin centres."""
    return torch.from_numpy(_bin_centres()).float()


def to_ab(x: torch.Tensor) -> torch.Tensor:
    """Net units [-1, 1] -> a*, b*."""
    return (x + 1) * 127.5 - 128


def from_ab(ab: torch.Tensor) -> torch.Tensor:
    """a*, b* -> net units."""
    return (ab + 128) / 127.5 - 1


def soft_encode(target: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W) ab in net units -> (N, Q, H, W): Gaussian weights on the 5 nearest bins, summing to 1."""
    ab = to_ab(target.float())
    # |ab - c|^2 = |ab|^2 - 2 ab.c + |c|^2, without an (N, 2, Q, H, W) intermediate
    dist2 = ((ab**2).sum(1, keepdim=True) - 2 * torch.einsum("nchw,qc->nqhw", ab, centres)
             + (centres**2).sum(1)[None, :, None, None]).clamp_min(0)
    near, index = dist2.topk(NEIGHBOURS, dim=1, largest=False)
    weights = torch.softmax(-near / (2 * SIGMA**2), dim=1)  # exp(-d^2 / 2 sigma^2), normalised
    return torch.zeros_like(dist2).scatter_(1, index, weights)


def annealed_mean(logits: torch.Tensor, centres: torch.Tensor, temperature: float = ANNEALED_T) -> torch.Tensor:
    """(N, Q, H, W) logits -> (N, 2, H, W) ab in net units. f_T of softmax(logits) is softmax(logits / T)."""
    probabilities = torch.softmax(logits.float() / temperature, dim=1)
    return from_ab(torch.einsum("nqhw,qc->nchw", probabilities, centres))


def bin_prior(ab_maps: Iterable[torch.Tensor], centres: torch.Tensor) -> torch.Tensor:
    """(Q,) the bins' share of the pixels of (2, H, W) ab maps in net units (nearest bin), smoothed
    by a Gaussian of sigma 5 over the bin centres: the paper's p~."""
    counts = torch.zeros(len(centres), dtype=torch.float64)
    for ab in ab_maps:
        pixels = to_ab(ab.float()).reshape(2, -1).T
        counts += torch.bincount(torch.cdist(pixels, centres).argmin(1), minlength=len(centres)).double()
    kernel = torch.exp(-torch.cdist(centres, centres).double() ** 2 / (2 * SIGMA**2))
    smoothed = kernel @ (counts / counts.sum())
    return (smoothed / smoothed.sum()).float()


def rebalancing_weights(prior: torch.Tensor, mix: float) -> torch.Tensor:
    """(Q,) w proportional to ((1 - mix) p + mix / Q)^-1, scaled so that sum_q p_q w_q = 1 (the paper: mix 0.5)."""
    weights = 1.0 / ((1 - mix) * prior + mix / len(prior))
    return weights / (prior * weights).sum()


def classification_loss(logits: torch.Tensor, target: torch.Tensor, centres: torch.Tensor, *,
                        pixels: int | None = SAMPLED_PIXELS, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the predicted distribution against the soft-encoded target ab, mean over
    pixels: over `pixels` positions drawn at random (the same in each image of the batch; an
    unbiased estimate of the mean over all at a fraction of the cost of Q-channel maps, as the paper
    scores a 4x smaller map) or, with None, over all. A target larger than the logits is compared
    at their size (its area means). `weights` (Q,): each pixel's term times the weight of its
    target's likeliest bin (class rebalancing)."""
    if target.shape[-2:] != logits.shape[-2:]:  # logits at a lower resolution: the target's area means
        target = torch.nn.functional.interpolate(target.float(), size=logits.shape[-2:], mode="area")
    n, q = logits.shape[:2]
    logits, target = logits.reshape(n, q, 1, -1), target.reshape(n, 2, 1, -1)
    if pixels is not None and pixels < logits.shape[-1]:
        index = torch.randint(logits.shape[-1], (pixels,), device=logits.device)
        logits, target = logits[..., index], target[..., index]
    encoded = soft_encode(target, centres)
    cross_entropy = -(encoded * torch.log_softmax(logits.float(), dim=1)).sum(1)
    if weights is not None:
        cross_entropy = cross_entropy * weights[encoded.argmax(1)]
    return cross_entropy.mean()
