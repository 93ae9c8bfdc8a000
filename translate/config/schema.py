"""The training configuration's schema: nested dataclasses and per-field range checks; methods and tasks
plug their own settings in (translate.config.plugins)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from translate.config.dicts import from_dict, to_dict
from translate.config.plugins import (
    OFF, RATE, UNIT, WEIGHT, WEIGHT_OR_OFF, Plugins, Range, Settings, check_ranges, count, within,
)
from translate.direction import Direction
from translate.errors import ConfigError
from translate.nets import PRESETS, DiscriminatorSpec, GeneratorSpec, is_generator

GanLoss = Literal["vanilla", "lsgan", "wgangp", "hinge", "ragan"]


@dataclass
class DataConfig:
    root: str = ""
    load_size: int = 286  # resize to this, then random-crop crop_size (pix2pix paper's jitter)
    crop_size: int = 256
    preprocess: Literal["resize_and_crop", "crop", "none"] = "resize_and_crop"
    flip: bool = True
    val_fraction: float = 0.0  # only for ROOT/A + ROOT/B without split folders
    serial: bool = False  # CycleGAN: pair A[i] with B[i] instead of a random B
    workers: int = 0  # data-loader processes; 0 = decode in the training process
    max_val_images: int = 16  # validation cost stays bounded on big val splits (files, and files x draws)
    # Fixed draws scored per validation file where anything about an item is random (a synthesised
    # input's holes, noise or shrink; a crop): seeded, the same at every validation, so the figure
    # carries a standard error and best.pt moves only on a gain larger than it. 1 where nothing is
    # random (prepared A/B files with preprocess none); fewer when files x draws > max_val_images.
    val_draws: int = 4
    # Items drawn per epoch (cycling fresh permutations); 0 = the dataset size. Lets a handful of
    # photos make epochs long enough that per-epoch work (checkpoint, validation) stays rare.
    samples_per_epoch: int = 0
    max_megapixels: float = 100.0  # larger training images are refused by name, from their headers


@dataclass
class OptimConfig:
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 1
    # Epochs at constant learning rate, then linearly decayed to zero over epochs_decay. Both 0:
    # train at a constant rate until runtime.max_steps, however many epochs that takes.
    epochs: int = 100
    epochs_decay: int = 100
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    # Exponential moving average of the generator weights (ESRGAN / Real-ESRGAN: 0.999), used for
    # validation, conversion and export; 0 = off.
    ema_decay: float = 0.0


@dataclass
class GanConfig:
    # ragan: relativistic average GAN (ESRGAN), pix2pix only; see translate.losses.relativistic_gan_loss
    loss: GanLoss = "vanilla"
    label_smoothing: float = 0.0  # one-sided: real targets become 1 - label_smoothing
    gp_weight: float = 10.0  # WGAN-GP gradient-penalty weight (Gulrajani et al. 2017)
    # Instance noise (Sonderby et al. 2017, section 3.1; Arjovsky & Bottou 2017): Gaussian noise of this
    # std (image units, [-1, 1] range) added to everything D is shown, real and fake, in both players'
    # steps, annealed linearly to 0 over instance_noise_steps (0 = over the whole run). 0 = off.
    # It blurs the two distributions into overlap, so D cannot separate them perfectly and G's
    # gradients stay informative: it helps when D wins early (D loss near 0, G's GAN loss climbing,
    # samples collapsing), typical of small datasets; it costs nothing once annealed away.
    instance_noise: float = 0.0
    instance_noise_steps: int = 0


@dataclass
class PerceptualConfig:
    """The VGG19 perceptual loss (Johnson et al. 2016): which layers, how much each, how compared."""
    # VGG19 weights file (torchvision's ImageNet state dict); "" = weights/vgg19-dcbb9e9d.pth, then
    # torch's cache. Never downloaded: `translate weights fetch vgg19` does that on purpose.
    weights: str = ""
    # VGG19 layer name -> weight: convI_J before the ReLU, reluI_J after it (ESRGAN: {conv5_4: 1}).
    # YAML maps merge key by key; a weight of 0 drops a layer a recipe set.
    layers: dict[str, float] = field(default_factory=dict)
    criterion: Literal["l1", "mse"] = "l1"


@dataclass
class RuntimeConfig:
    device: str = "auto"  # auto = cuda when present, else cpu
    amp: Literal["off", "bf16", "fp16"] = "off"
    channels_last: bool = False
    compile: bool = False
    sync_batchnorm: bool = False  # under torchrun: batch-norm statistics over all ranks' batches
    seed: int = 0
    max_steps: int = 0  # stop after this many optimisation steps; 0 = run every epoch
    log_every_steps: int = 50
    sample_every_steps: int = 500
    # Numbered checkpoints (generators + specs + config: enough to convert or export) every N epochs,
    # steps or minutes (0 = off), each with `latest.pt` (full training state; also every epoch).
    checkpoint_every_epochs: int = 5
    checkpoint_every_steps: int = 0
    checkpoint_every_minutes: float = 0.0
    keep_checkpoints: int = 3  # newest numbered checkpoints kept, older ones deleted; 0 = keep all
    val_every_epochs: int = 1
    # The validation figure that picks checkpoints/best.pt (translate.training.validation.VAL_METRICS).
    # auto: KID for unpaired methods, LPIPS for paired ones, when installed with their weights;
    # else PSNR (of the cycle reconstructions for unpaired methods).
    val_metric: str = "auto"
    # Where the learned metrics' feature weights are looked for first (then the libraries' own
    # copies); `translate weights fetch NAME` puts them here. Never downloaded during training.
    weights_dir: str = "weights"


@dataclass
class TrainConfig:
    """One run's settings. `method_settings` / `task_settings` are the chosen method's and task's own
    `Settings` objects (YAML keys: their SECTION, e.g. `pix2pix:` and `superres:`); read a config from
    plain data with `from_dict(data, plugins)`, which builds them from the registries handed in."""

    method: str = "pix2pix"  # a name in the method registry (translate.methods.METHODS)
    task: str = "custom"  # a name in the task registry (translate.tasks.TASKS)
    direction: Direction = "a_to_b"
    # in/out channels live in the generator spec; the method derives discriminator in_channels.
    generator: GeneratorSpec = field(default_factory=lambda: PRESETS["unet_256"])
    discriminator: DiscriminatorSpec = field(default_factory=lambda: PRESETS["patchgan_70"])
    init: Literal["normal", "xavier", "kaiming", "orthogonal", "torch"] = "normal"
    init_gain: float = 0.02
    gan: GanConfig = field(default_factory=GanConfig)
    perceptual: PerceptualConfig = field(default_factory=PerceptualConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    # A run (or checkpoint, or published weights file) whose generator weights start this run: the
    # perceptual/GAN stage of SRGAN / ESRGAN / Real-ESRGAN starts from a fidelity (L1) run.
    init_from: str = ""
    method_settings: Settings | None = None
    task_settings: Settings | None = None

    def __post_init__(self) -> None:
        _check_ranges(self)
        if not is_generator(self.generator):
            raise ConfigError(f"generator: {self.generator.kind!r} is a discriminator, not a generator")
        if is_generator(self.discriminator):
            raise ConfigError(f"discriminator: {self.discriminator.kind!r} is a generator")
        for settings in (self.method_settings, self.task_settings):
            if settings is not None:
                check_ranges(settings, settings.RANGES, f"{settings.SECTION}.")
                settings.check(self)
        # The crop is the target; the net's input is crop / scale and must fit its size multiple.
        multiple = self.generator.size_multiple * self.generator.scale
        if self.data.crop_size % multiple:
            raise ConfigError(
                f"data.crop_size: {self.data.crop_size} is not a multiple of {multiple}, which "
                f"generator {self.generator.kind!r} needs; use e.g. --crop-size "
                f"{max(multiple, self.data.crop_size // multiple * multiple)}"
            )
        _check_discriminator_size(self)
        _check_data(self)

    @property
    def total_epochs(self) -> int:
        """Epochs to train; 0 means until runtime.max_steps."""
        return self.optim.epochs + self.optim.epochs_decay

    @property
    def until_max_steps(self) -> bool:
        return self.total_epochs == 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the common fields, then the method's and the task's settings under their SECTIONs."""
        out = {f.name: to_dict(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in _PLUGGED}
        for settings in (self.method_settings, self.task_settings):
            if settings is not None and settings.SECTION:
                out[settings.SECTION] = to_dict(settings)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], plugins: Plugins) -> TrainConfig:
        """A config from plain data; the method's and task's sections become their Settings objects,
        and the task checks it can train with the result (ConfigError naming the field otherwise)."""
        if not isinstance(data, dict):
            raise ConfigError(f"config: expected a mapping, got {data!r}")
        method = plugins.method(data.get("method", "pix2pix"))
        task = plugins.task(data.get("task", "custom"))
        sections, plugged = {}, {}
        for name, plugin in (("method_settings", method), ("task_settings", task)):
            settings = plugin.settings
            if settings is not None and settings.SECTION:
                sections[settings.SECTION] = name
                plugged[name] = from_dict(settings, data.get(settings.SECTION, {}), settings.SECTION)
            else:  # a plugin without settings, or whose settings take no YAML section
                plugged[name] = settings() if settings is not None else None
        common = {k: v for k, v in data.items() if k not in sections}
        config = from_dict(cls, common, "", extra=plugged, extra_keys=tuple(sections))
        plugins.check(config)
        return config

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


_PLUGGED = ("method_settings", "task_settings")  # serialised under their own SECTION keys


def _check_data(c: TrainConfig) -> None:
    """Cross-field rules of crop, discriminator, load size and the schedule."""
    if c.data.crop_size < c.discriminator.min_size:
        raise ConfigError(
            f"data.crop_size: {c.data.crop_size} px is smaller than discriminator "
            f"{c.discriminator.kind!r} needs ({c.discriminator.min_size} px); raise --crop-size "
            f"or use a smaller discriminator (e.g. --discriminator patchgan_34)"
        )
    if c.data.preprocess == "resize_and_crop" and c.data.load_size < c.data.crop_size:
        raise ConfigError(
            f"data.load_size: {c.data.load_size} is smaller than data.crop_size "
            f"{c.data.crop_size}; set --load-size to at least the crop size"
        )
    if c.optim.epochs < 0 or c.optim.epochs_decay < 0:
        raise ConfigError("optim.epochs, optim.epochs_decay: must not be negative")
    if c.until_max_steps and c.runtime.max_steps == 0:
        raise ConfigError("optim.epochs: 0 with optim.epochs_decay 0 trains until runtime.max_steps, "
                          "which is not set; give --max-steps N or train at least one epoch")


def _check_discriminator_size(c: TrainConfig) -> None:
    """The crop is what the discriminator judges: a fixed-size one takes that size only, and a U-Net
    one needs sides its upsampled maps can meet their skips at."""
    d, crop = c.discriminator, c.data.crop_size
    fixed = d.fixed_size
    if fixed is not None and crop != fixed:
        raise ConfigError(f"data.crop_size: {crop} px, but discriminator {d.kind!r} judges exactly {fixed} px "
                          f"images; use --crop-size {fixed}")
    multiple = d.size_multiple
    if crop % multiple:
        raise ConfigError(f"data.crop_size: {crop} is not a multiple of {multiple}, which discriminator "
                          f"{d.kind!r} needs; use e.g. --crop-size {max(multiple, crop // multiple * multiple)}")


def _check_perceptual(c: TrainConfig) -> None:
    """Layer names and weights of the perceptual loss; at least one layer when it is on."""
    from translate.losses.perceptual import VGG19_LAYERS

    for name, weight in c.perceptual.layers.items():
        if name not in VGG19_LAYERS or name.startswith("pool"):
            raise ConfigError(f"perceptual.layers: {name!r} is not a VGG19 conv or relu layer "
                              f"(conv1_1 ... conv5_4, relu1_1 ... relu5_4)")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (math.isfinite(weight) and weight >= 0):
            raise ConfigError(f"perceptual.layers.{name}: must be a finite number >= 0, got {weight!r}")


# Each field on its own, in the order they are checked (the first bad one is named); rules that
# tie fields together are in TrainConfig.__post_init__.
_RANGES: dict[str, Range] = {
    "optim.lr_g": RATE, "optim.lr_d": RATE, "optim.beta1": UNIT, "optim.beta2": UNIT,
    "optim.grad_clip": WEIGHT_OR_OFF,
    "optim.batch_size": count(1, "at least 1"),
    "data.load_size": count(1, "at least 1 px"),
    "data.crop_size": count(1, "at least 1 px"),
    "data.workers": count(0, "0 or more (0 = decode in the training process)"),
    "data.val_fraction": UNIT,
    "data.max_val_images": count(0, "0 or more"),
    "data.val_draws": count(1, "at least 1"),
    "data.samples_per_epoch": count(0, "0 or more (0 = the dataset size)"),
    # 1 grey (sketch, L), 2 (colorize's ab), 3 RGB, 4 RGBA or RGB + mask (inpaint): what images hold.
    "generator.in_channels": (lambda v: 1 <= v <= 4, "1 to 4 (image channels)"),
    "generator.out_channels": (lambda v: 1 <= v <= 4, "1 to 4 (image channels)"),
    "init_gain": RATE,
    "gan.label_smoothing": (within(0, 0.5), "in [0, 0.5)"),
    "gan.instance_noise": WEIGHT_OR_OFF,
    "gan.instance_noise_steps": count(0, "0 or more (0 = the whole run)"),
    "gan.gp_weight": WEIGHT,
    "optim.ema_decay": (within(0, 1), "in [0, 1) (0 = off)"),
    "runtime.seed": count(0, "0 or more"),  # numpy's generators refuse negative seeds
    "runtime.log_every_steps": count(1, "at least 1"),
    "runtime.sample_every_steps": OFF,
    "runtime.val_every_epochs": count(1, "at least 1"),
    "runtime.max_steps": count(0, "0 or more (0 = no limit)"),
    "runtime.checkpoint_every_epochs": OFF, "runtime.checkpoint_every_steps": OFF,
    "runtime.checkpoint_every_minutes": WEIGHT_OR_OFF,
    "runtime.keep_checkpoints": count(0, "0 or more (0 = keep all)"),
    "data.max_megapixels": RATE,
}


def _check_ranges(c: TrainConfig) -> None:
    """Each field of `_RANGES` on its own: ConfigError naming the first bad one."""
    check_ranges(c, _RANGES)
    if not isinstance(c.perceptual.layers, dict):
        raise ConfigError(f"perceptual.layers: expected a mapping of VGG19 layer names to weights, "
                          f"got {c.perceptual.layers!r}")
    _check_perceptual(c)
