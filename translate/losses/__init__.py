"""Loss functions on tensors and plain arguments (GAN objectives incl. relativistic and hole-masked, L1
and hole-weighted L1, gradient penalty, PatchNCE). The VGG19 perceptual loss, which holds a network, is in `translate.losses.perceptual`."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Preds = Tensor | Sequence[Tensor]  # a discriminator returns one prediction map per scale


def _scales(pred: Preds) -> list[Tensor]:
    return [pred] if isinstance(pred, Tensor) else list(pred)


def gan_loss(pred: Preds, *, is_real: bool, mode: str, for_discriminator: bool = True,
             label_smoothing: float = 0.0) -> Tensor:
    """Adversarial loss of prediction maps `pred` (logits, any shape), averaged over scales.

    vanilla: BCE with logits, -[y log s(x) + (1-y) log(1-s(x))] (Goodfellow et al. 2014; pix2pix §3.1).
    lsgan:   (x - y)^2 (Mao et al. 2017, §3.2; CycleGAN §4 uses it for stability).
    wgangp:  D minimises E[x_fake] - E[x_real]; G minimises -E[x_fake] (Gulrajani et al. 2017, eq. 3).
    hinge:   D: E[max(0, 1 - x_real)] + E[max(0, 1 + x_fake)]; G: -E[x_fake] (Lim & Ye 2017; SAGAN eq. 5).
    label_smoothing: one-sided (Salimans et al. 2016, §3.4): real targets become 1 - s for D only.
    """
    losses = [_gan_loss_one(p, is_real, mode, for_discriminator, label_smoothing) for p in _scales(pred)]
    return torch.stack(losses).mean()


def _gan_loss_one(pred: Tensor, is_real: bool, mode: str, for_discriminator: bool,
                  label_smoothing: float) -> Tensor:
    pred = pred.float()  # losses in fp32 even under autocast
    if mode in ("vanilla", "lsgan"):
        target = 1.0 - label_smoothing if (is_real and for_discriminator) else float(is_real)
        target_map = torch.full_like(pred, target)
        if mode == "vanilla":
            return F.binary_cross_entropy_with_logits(pred, target_map)
        return F.mse_loss(pred, target_map)
    if mode == "wgangp":
        return -pred.mean() if is_real else pred.mean()
    if mode == "hinge":
        if not for_discriminator:
            return -pred.mean() if is_real else pred.mean()
        return F.relu(1.0 - pred).mean() if is_real else F.relu(1.0 + pred).mean()
    raise ValueError(f"gan loss mode {mode!r} is not one of 'vanilla', 'lsgan', 'wgangp', 'hinge'")


def relativistic_gan_loss(pred_real: Preds, pred_fake: Preds, *, for_discriminator: bool) -> Tensor:
    """Relativistic average GAN loss (Jolicoeur-Martineau 2018; ESRGAN §3.2, eq. 1-2), averaged over scales.

    With C the logits and E the mean over the batch (and positions, for per-pixel discriminators):
        D_Ra(x_r, x_f) = sigmoid(C(x_r) - E[C(x_f)]),   D_Ra(x_f, x_r) = sigmoid(C(x_f) - E[C(x_r)])
        D: L = -E[log D_Ra(x_r, x_f)] - E[log(1 - D_Ra(x_f, x_r))]
        G: L = -E[log(1 - D_Ra(x_r, x_f))] - E[log D_Ra(x_f, x_r)]
    each halved, as ESRGAN's BasicSR code does, so the two terms average. G gains from both terms
    through C(x_f); pass the real logits without gradient for G, as the reference detaches them.
    """
    losses = [_relativistic_one(r.float(), f.float(), for_discriminator)
              for r, f in zip(_scales(pred_real), _scales(pred_fake), strict=True)]
    return torch.stack(losses).mean()


def _relativistic_one(real: Tensor, fake: Tensor, for_discriminator: bool) -> Tensor:
    real_vs_fake = real - fake.mean()
    fake_vs_real = fake - real.mean()
    bce = F.binary_cross_entropy_with_logits
    real_target = float(for_discriminator)  # D says real is more real; G says it is less
    return 0.5 * (bce(real_vs_fake, torch.full_like(real_vs_fake, real_target))
                  + bce(fake_vs_real, torch.full_like(fake_vs_real, 1.0 - real_target)))


def l1_loss(fake: Tensor, target: Tensor, *, weight: float = 1.0) -> Tensor:
    """lambda * E[|y - G(x)|] (pix2pix eq. 3; lambda = 100 in the paper)."""
    return weight * F.l1_loss(fake.float(), target.float())


def mse_loss(fake: Tensor, target: Tensor, *, weight: float = 1.0) -> Tensor:
    """lambda * E[(y - G(x))^2]: the pixel loss that maximises PSNR = 10 log10(MAX^2 / MSE) directly
    (SRCNN, VDSR and SRGAN's SRResNet train with it). Its gradient grows with the error, so the
    predictable large errors (edges) dominate; L1's sign gradient weighs every pixel alike and, on
    noisy or textured photos, mostly averages out."""
    return weight * F.mse_loss(fake.float(), target.float())


def hole_weighted_l1(fake: Tensor, target: Tensor, hole: Tensor, *, hole_weight: float,
                     known_weight: float) -> Tensor:
    """E[w |y - G(x)|] with w = hole_weight in the holes, known_weight elsewhere (Liu et al. 2018,
    "Image Inpainting for Irregular Holes Using Partial Convolutions", eq. 1-2: L_hole x 6 + L_valid x 1).

    `hole` is (N, 1, H, W), 1 = hole; the mean runs over every pixel and channel, so with both
    weights 1 this is the plain L1. Weighting the holes makes the few pixels the net must invent
    count for more than the many it only has to pass through.
    """
    weight = hole.float() * hole_weight + (1.0 - hole.float()) * known_weight
    return (weight * (fake.float() - target.float()).abs()).mean()


def hole_share(hole: Tensor, pred: Tensor) -> Tensor:
    """The share of each prediction's patch that is hole: `hole` (N, 1, H, W) area-averaged to the
    prediction map's size (N, 1, h, w), in [0, 1]."""
    return F.adaptive_avg_pool2d(hole.float(), pred.shape[-2:])


def masked_gan_loss(pred: Preds, hole: Tensor, *, mode: str, for_discriminator: bool) -> Tensor:
    """Adversarial loss of a discriminator's predictions on a filled image, as LaMa trains it
    (Suvorov et al. 2022, section 3.3; its `mask_as_fake_target`), averaged over scales.

    With h the hole share of each patch (`hole_share`) and l(x, y) the vanilla (BCE with logits) or
    lsgan ((x - y)^2) loss of logit x against label y:
        D: E[l(x, 1 - h)]                 patches that are hole are fake, known patches are real
        G: E[h l(x, 1)] / E[h]            only the filled region is pushed towards "real"
    so neither player spends effort on the pixels the input already gives (they are copied).
    G's term is 0 for an image without holes.
    """
    if mode not in ("vanilla", "lsgan"):
        raise ValueError(f"masked_gan_loss: mode must be 'vanilla' or 'lsgan', got {mode!r}")
    losses = []
    for p in _scales(pred):
        p = p.float()
        share = hole_share(hole, p).expand_as(p)
        target = 1.0 - share if for_discriminator else torch.ones_like(p)
        if mode == "vanilla":
            loss = F.binary_cross_entropy_with_logits(p, target, reduction="none")
        else:
            loss = (p - target) ** 2
        if for_discriminator:
            losses.append(loss.mean())
        else:
            losses.append((share * loss).sum() / share.sum().clamp_min(1e-8))
    return torch.stack(losses).mean()


def gradient_penalty(discriminator: Callable[[Tensor], Preds], real: Tensor, fake: Tensor, *,
                     weight: float = 10.0) -> Tensor:
    """lambda * E[(||grad_x D(x_hat)||_2 - 1)^2] with x_hat = eps*real + (1-eps)*fake
    (Gulrajani et al. 2017, eq. 3). Needs a discriminator without batch norm to be exact."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    outputs = [p.float().sum() for p in _scales(discriminator(mixed))]
    (grads,) = torch.autograd.grad(sum(outputs), mixed, create_graph=True)
    norms = grads.flatten(1).float().norm(2, dim=1)
    return weight * ((norms - 1.0) ** 2).mean()


def patch_nce_loss(queries: Sequence[Tensor], keys: Sequence[Tensor], *,
                   temperature: float = 0.07, weight: float = 1.0) -> Tensor:
    """PatchNCE (CUT, Park et al. 2020, eq. 2 and 5), averaged over layers and times `weight`.

    Per layer, queries q and keys k are (N, P, C) unit vectors at the same P locations of the
    output and the input image. For patch i of image n:
        l_i = -log( exp(q_i.k_i / t) / (exp(q_i.k_i / t) + sum_{j != i} exp(q_i.k_j / t)) )
    negatives k_j come from the same image only; the keys are detached. As in the reference,
    the j == i entry of the negatives stays in the softmax but is set to -10 (exp(-10/t) ~ 0).
    The loss of a layer is the mean of l_i over all N*P patches.
    """
    if len(queries) != len(keys) or not queries:
        raise ValueError(f"patch_nce_loss: needs as many query as key layers (>= 1), got "
                         f"{len(queries)} and {len(keys)}")
    losses = [_patch_nce_one(q, k, temperature) for q, k in zip(queries, keys)]
    return weight * torch.stack(losses).mean()


def _patch_nce_one(query: Tensor, key: Tensor, temperature: float) -> Tensor:
    query, key = query.float(), key.detach().float()
    positive = (query * key).sum(dim=-1, keepdim=True)  # (N, P, 1)
    negative = torch.bmm(query, key.transpose(1, 2))  # (N, P, P)
    same = torch.eye(negative.shape[-1], dtype=torch.bool, device=negative.device)
    negative = negative.masked_fill(same, -10.0)
    logits = torch.cat([positive, negative], dim=-1) / temperature  # positive at index 0
    target = torch.zeros(logits.shape[:2], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits.flatten(0, 1), target.flatten())
