"""What the unpaired methods (CycleGAN, CUT) share: unaligned trainA/trainB data."""
from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from translate.config import ConfigError, TrainConfig
from translate.methods.base import GanMethod


def refuse_relativistic_gan(config: TrainConfig) -> None:
    """The relativistic GAN needs D's verdict on real and fake of the same pair: a paired method's."""
    if config.gan.loss == "ragan":
        raise ConfigError(f"gan.loss: ragan (relativistic average) is for pix2pix; {config.method} "
                          "takes vanilla, lsgan, wgangp or hinge")


class UnpairedMethod(GanMethod):
    """A method trained on unaligned domains A and B (generator in_channels for A, out for B)."""

    paired = False

    @staticmethod
    def data_channels(config: TrainConfig) -> tuple[int, int]:
        return config.generator.in_channels, config.generator.out_channels

    def datasets(self) -> tuple[Dataset, Dataset | None]:
        """trainA/trainB (unaligned); testA/testB, when present, for validation."""
        from translate.data import datasets, layouts

        d, seed = self.config.data, self.config.runtime.seed
        channels_a, channels_b = self.data_channels(self.config)
        train_tf, val_tf = self.transforms()

        def make(split: str, tf: object, *, serial: bool, limit: int | None = None) -> Dataset:
            paths_a, paths_b = layouts.find_unpaired(d.root, split)
            return datasets.UnpairedDataset(paths_a[:limit], paths_b[:limit], channels_a=channels_a,
                                            channels_b=channels_b, transform_a=tf, transform_b=tf,
                                            serial=serial, seed=seed)

        has_val = layouts.has_split(d.root, "test", unpaired=True)
        return (make("train", train_tf, serial=d.serial),
                make("test", val_tf, serial=True, limit=d.max_val_images) if has_val else None)

    def data_files(self, dataset: Dataset) -> list[Path]:
        return [*dataset.paths_a, *dataset.paths_b]
