"""pix2pix (Isola et al. 2017): conditional GAN + L1 on aligned pairs."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from translate.config import TrainConfig
from translate.losses import l1_loss
from translate.methods.base import GanMethod


class Pix2Pix(GanMethod):
    """One generator (g_ab, or g_ba when trained b_to_a) and a conditional discriminator `d` that
    judges (input, output) pairs concatenated on channels, so in_channels = input + output."""

    def __init__(self, config: TrainConfig) -> None:
        g = config.generator
        self.g_name = "g_ab" if config.direction == "a_to_b" else "g_ba"
        d = dataclasses.replace(config.discriminator, in_channels=g.in_channels + g.out_channels)
        adversarial = config.pix2pix.lambda_gan > 0
        super().__init__(config, {self.g_name: g, "d": d} if adversarial else {self.g_name: g})
        self.generator_names = (self.g_name,)
        self.discriminator_names = ("d",) if adversarial else ()

    @staticmethod
    def data_channels(config: TrainConfig) -> tuple[int, int]:
        """Channels to read for the A and B images."""
        g = config.generator
        if config.direction == "a_to_b":
            return g.in_channels, g.out_channels
        return g.out_channels, g.in_channels

    def datasets(self) -> tuple[Dataset, Dataset | None]:
        """Pairs from the data root; with a task recipe, each input is synthesised from its target
        photo with fresh randomness every epoch (a prepared A/B folder's B photos serve then)."""
        from translate.data import datasets, layouts
        from translate.tasks import get_task

        d, seed, root = self.config.data, self.config.runtime.seed, Path(self.config.data.root)
        make_pair = get_task(self.config.task).pair_maker(self.config.synth)
        channels_a, channels_b = self.data_channels(self.config)
        train_tf, val_tf = self.transforms()

        def find(split: str) -> list[layouts.Sample]:
            if make_pair is not None:
                targets = layouts.find_targets(root, split, val_fraction=d.val_fraction, seed=seed)
                return [layouts.Sample(p) for p in targets]
            return layouts.find_paired(root, split, val_fraction=d.val_fraction, seed=seed)

        def make(samples: list[layouts.Sample], tf: object) -> Dataset:
            return datasets.PairedDataset(samples, in_channels=channels_a, out_channels=channels_b, transform=tf,
                                          make_pair=make_pair, seed=seed)

        val = find("val")[: d.max_val_images] if layouts.has_split(root, "val", val_fraction=d.val_fraction) else []
        return make(find("train"), train_tf), (make(val, val_tf) if val else None)

    def data_files(self, dataset: Dataset) -> list[Path]:
        return list(dict.fromkeys(p for s in dataset.samples for p in (s.a, s.b) if p is not None))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        # Below, `a` is the input side: for b_to_a the batch's A and B are swapped here.
        real_a, real_b = batch["a"], batch["b"]
        if self.config.direction == "b_to_a":
            real_a, real_b = real_b, real_a
        fake_b = self.replica(self.g_name)(real_a)
        # D judges (condition, output) pairs; a super-resolution input is smaller than the output,
        # so D sees it bicubically upsampled to the output size.
        cond = real_a
        if cond.shape[-2:] != fake_b.shape[-2:]:
            cond = F.interpolate(real_a, size=fake_b.shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1)
        return {"real_a": real_a, "real_b": real_b, "fake_b": fake_b, "cond": cond}

    def generator_losses(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        losses = {"G_L1": l1_loss(out["fake_b"], out["real_b"], weight=self.config.pix2pix.lambda_l1)}
        if self.discriminator_names:
            # The bare D (not its replica): D is frozen in this step, so it has nothing to synchronise.
            pred_fake = self.nets["d"](torch.cat([out["cond"], out["fake_b"]], 1))
            losses["G_gan"] = self.config.pix2pix.lambda_gan * self._gan(pred_fake, is_real=True, for_discriminator=False)
        return losses

    def discriminator_losses(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.discriminator_names:
            return {}
        real = torch.cat([out["cond"], out["real_b"]], 1)
        fake = torch.cat([out["cond"], out["fake_b"]], 1)
        return self._discriminator_loss("d", real, fake, label="D")

    def sample_rows(self, out: dict[str, Tensor]) -> list[list[Tensor]]:
        """Rows of the sample grid: input | output | target."""
        return [[out["real_a"], out["fake_b"], out["real_b"]]]

    def validation_pairs(self, out: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Output vs target on the val split: l1, psnr, ssim."""
        return {"": (out["fake_b"], out["real_b"])}
