"""What every method shares: its nets, their specs, the discriminator objective, and the contract
the training loop relies on (datasets, file listing, losses, validation pairs, sample rows)."""
from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from translate import metrics
from translate.config import TrainConfig
from translate.losses import gradient_penalty
from translate.losses.terms import GanTerm, Outputs, gan_term
from translate.data.images import tensor_to_image
from translate.nets import build_net, init_weights, spec_to_dict
from translate.losses.schedules import anneal
from translate.tasks.base import display_rgb


def image_metrics(fake: Tensor, real: Tensor) -> dict[str, float]:
    """L1 (on [0, 1]), PSNR (dB) and SSIM of two (C, H, W) images in [-1, 1]."""
    x = ((fake.float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
    y = ((real.float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
    out = {"l1": float(np.abs(x - y).mean()), "psnr": metrics.psnr(x, y, data_range=1.0)}
    if min(x.shape[:2]) >= metrics.SSIM_MIN_SIDE:
        out["ssim"] = metrics.ssim(x, y, data_range=1.0)
    return out


def first_images(*batches: Tensor) -> list[np.ndarray]:
    """The first item of each (N, C, H, W) batch in [-1, 1] as an HxWxC uint8 image."""
    return [tensor_to_image(batch[0]) for batch in batches]


def shown_as_is(*batches: Tensor) -> list[np.ndarray]:
    """Sample panels of images with no task display (unpaired methods): the first items, as RGB."""
    return [display_rgb(image) for image in first_images(*batches)]


class GanMethod(nn.Module, abc.ABC):
    """Base: `nets` (ModuleDict by role name: g_ab, g_ba, d_a, d_b ...) and their `specs`.

    The training loop calls `forward(batch) -> outputs`, then, in `update_order`,
    `generator_losses(outputs)` and `discriminator_losses(outputs)`; both return named losses that
    the loop sums. It never asks which method it runs: data, validation and samples come from here."""

    generator_names: tuple[str, ...] = ()
    discriminator_names: tuple[str, ...] = ()
    # The two optimiser updates of a step, in order. pix2pix and CycleGAN update G, then D on the
    # same (detached) fakes, as the papers' code does; a method such as CUT updates D first.
    update_order: tuple[str, ...] = ("generator", "discriminator")
    # Trained on aligned pairs: outputs have their own targets (paired metrics such as LPIPS judge
    # them). Unpaired methods are judged by comparing image sets (KID) instead.
    paired: bool = True
    # Where the run is, for loss terms on a schedule (translate.losses.schedules); the loop sets both.
    step: int = 0
    total_steps: int = 0

    def __init__(self, config: TrainConfig, specs: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.specs = specs
        self.nets = nn.ModuleDict({name: build_net(spec) for name, spec in specs.items()})
        for net in self.nets.values():
            init_weights(net, scheme=config.init, gain=config.init_gain)
        # Under torchrun the loop puts DistributedDataParallel wrappers here; calls that train a net
        # go through `self.replica(name)` so its gradients are averaged across ranks.
        self.replicas: dict[str, nn.Module] = {}
        # How the discriminators' predictions are scored, chosen once from gan.loss (ragan: relativistic).
        self.gan_term: GanTerm = gan_term(config.gan.loss, config.gan.label_smoothing)

    # ------------------------------------------------------------ data
    @staticmethod
    @abc.abstractmethod
    def data_channels(config: TrainConfig) -> tuple[int, int]:
        """Channels to read for the A and B images."""

    @abc.abstractmethod
    def datasets(self) -> tuple[Dataset, Dataset | None]:
        """The training set and, when the data has one, the validation set (items: dicts of
        (C, H, W) float32 tensors in [-1, 1] plus paths)."""

    @abc.abstractmethod
    def data_files(self, dataset: Dataset) -> list[Path]:
        """Every file `dataset` reads, in order (header checks, rank agreement)."""

    def transforms(self, *, val_draws: int = 1) -> tuple[A.Compose, A.Compose]:
        """Training (random crop and flip) and validation transforms: for one validation draw the
        deterministic view (resized whole, or the centre crop); for several, seeded crops at the
        training geometry, never flipped, so the draws see different parts of each photo."""
        from translate.data import transforms

        d = self.config.data
        kw = dict(load_size=d.load_size, crop_size=d.crop_size, preprocess=d.preprocess)
        # paired_transform applies one random crop/flip to A and B; it serves single images too.
        return (transforms.paired_transform(**kw, flip=d.flip, train=True),
                transforms.paired_transform(**kw, flip=False, train=val_draws > 1))

    # ------------------------------------------------------------ training
    @abc.abstractmethod
    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """A batch of (N, C, H, W) tensors in [-1, 1] -> named outputs (real_a, fake_b, ...)."""

    @abc.abstractmethod
    def generator_losses(self, out: dict[str, Tensor]) -> dict[str, Tensor]: ...

    @abc.abstractmethod
    def discriminator_losses(self, out: dict[str, Tensor]) -> dict[str, Tensor]: ...

    @abc.abstractmethod
    def sample_rows(self, out: dict[str, Tensor]) -> list[list[np.ndarray]]:
        """Rows of the sample grid for the batch's first item, each a list of HxWx3 uint8 RGB panels
        (a paired method's row is the task's `display`: what the task's result looks like)."""

    @abc.abstractmethod
    def validation_pairs(self, out: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Metric-name prefix -> (output, reference), (N, C, H, W) tensors in [-1, 1]."""

    def translation_pairs(self, out: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Metric-name prefix -> (generated, real images of the target domain), (N, C, H, W) in
        [-1, 1], for set-level metrics (KID). Paired methods: their validation pairs."""
        return self.validation_pairs(out)

    def validation_metrics(self, out: dict[str, Tensor]) -> dict[str, float]:
        """Metrics of the first item of a validation batch's outputs, e.g. l1, psnr, ssim."""
        return {f"{prefix}{k}": v for prefix, (fake, real) in self.validation_pairs(out).items()
                for k, v in image_metrics(fake[0], real[0]).items()}

    @contextlib.contextmanager
    def unwrapped(self, substitutes: Mapping[str, nn.Module] | None = None) -> Iterator[None]:
        """Forward passes through the bare nets, or `substitutes` for some (averaged weights, say): a
        DistributedDataParallel forward issues collectives (buffer broadcasts) that would wait
        forever for ranks that are not validating."""
        replicas, self.replicas = self.replicas, dict(substitutes or {})
        try:
            yield
        finally:
            self.replicas = replicas

    def replica(self, name: str) -> nn.Module:
        return self.replicas.get(name, self.nets[name])

    def generate(self, name: str, x: Tensor, **options: Any) -> Any:
        """Generator `name` on (N, C, H, W) input in [-1, 1], output in [-1, 1] (s times the size):
        nets that work on [0, 1] (spec.value_range "zero_one", the SR nets) get their range mapped.
        `options` go to the net's forward (e.g. with_logits)."""
        net = self.replica(name)
        if self.specs[name].value_range == "zero_one":
            return net((x + 1) / 2) * 2 - 1
        return net(x, **options)

    @property
    def inference_names(self) -> tuple[str, ...]:
        """Nets a numbered (inference) checkpoint keeps: the generators built from a spec (CUT's
        patch sampler trains with them but is no image generator)."""
        return tuple(name for name in self.generator_names if name in self.specs)

    def spec_dicts(self) -> dict[str, dict]:
        return {name: spec_to_dict(spec) for name, spec in self.specs.items()}

    def extra_state(self) -> dict[str, Any]:
        """Method state beyond the nets that a checkpoint must keep (e.g. image pools)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def discriminator_input(self, x: Tensor) -> Tensor:
        """What a discriminator is shown of image batch `x`, in both players' steps: `x` plus the
        annealed instance noise of gan.instance_noise (see GanConfig), drawn afresh per call."""
        std = self.instance_noise_std()
        return x + std * torch.randn_like(x) if std > 0 else x

    def instance_noise_std(self) -> float:
        """gan.instance_noise annealed linearly to 0 over gan.instance_noise_steps (0: the whole run)."""
        gan = self.config.gan
        if gan.instance_noise <= 0:
            return 0.0
        return gan.instance_noise * anneal(self.step, gan.instance_noise_steps or self.total_steps)

    def _discriminator_loss(self, name: str, real: Tensor, fake: Tensor, *, label: str,
                            out: Outputs | None = None) -> dict[str, Tensor]:
        """D's loss from `gan_term` on D(real) and D(fake) (`out`: the forward outputs a variant such as
        hole_masked reads), plus the gradient penalty for WGAN-GP."""
        d = self.replica(name)
        real, fake = self.discriminator_input(real), self.discriminator_input(fake.detach())
        losses = {label: self.gan_term.discriminator(d(real), d(fake), out or {})}
        if self.config.gan.loss == "wgangp":
            # The bare net: DDP does not support double backward; the penalty's gradients still
            # reach the same parameters within this backward, so they are averaged with the rest.
            losses[f"{label}_gp"] = gradient_penalty(
                self.nets[name], real, fake, weight=self.config.gan.gp_weight)
        return losses
