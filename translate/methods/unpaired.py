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
        """trainA/trainB (unaligned); testA/testB, when present, for validation: data.val_draws
        fixed crops of each pair of files where the preprocessing crops (datasets.validation_draws)."""
        from translate.data import datasets, layouts

        d, seed = self.config.data, self.config.runtime.seed
        channels_a, channels_b = self.data_channels(self.config)
        test = layouts.find_unpaired(d.root, "test") if layouts.has_split(d.root, "test", unpaired=True) else None
        n_val = max(len(test[0][: d.max_val_images]), len(test[1][: d.max_val_images])) if test else 0
        draws = datasets.validation_draws(d.val_draws, random=d.preprocess != "none", n_files=n_val,
                                          max_items=d.max_val_images)
        train_tf, val_tf = self.transforms(val_draws=draws)

        def make(paths: tuple[list[Path], list[Path]], tf: object, *, serial: bool, limit: int | None = None,
                 draws: int = 0) -> Dataset:
            return datasets.UnpairedDataset(paths[0][:limit], paths[1][:limit], channels_a=channels_a,
                                            channels_b=channels_b, transform_a=tf, transform_b=tf,
                                            serial=serial, seed=seed, draws=draws)

        return (make(layouts.find_unpaired(d.root, "train"), train_tf, serial=d.serial),
                make(test, val_tf, serial=True, limit=d.max_val_images, draws=draws) if test else None)

    def data_files(self, dataset: Dataset) -> list[Path]:
        return [*dataset.paths_a, *dataset.paths_b]
