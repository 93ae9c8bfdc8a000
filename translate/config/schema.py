"""The training configuration's schema: nested dataclasses, per-field range checks, method defaults."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import yaml

from translate.config.dicts import from_dict, to_dict
from translate.direction import Direction
from translate.errors import ConfigError
from translate.nets import PRESETS, DiscriminatorSpec, GeneratorSpec, is_generator
from translate.tasks import get_task

Method = Literal["pix2pix", "cyclegan", "cut", "fastcut"]
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
    max_val_images: int = 16  # validation cost stays bounded on big val splits
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
class Pix2PixConfig:
    lambda_l1: float = 100.0
    # Weight of the adversarial term. 0 trains the generator on L1 alone, with no discriminator:
    # the fidelity-first (PSNR) baseline, and the usual pre-training for super-resolution GANs.
    lambda_gan: float = 1.0
    # Weight of the VGG19 perceptual loss (settings in `perceptual`); 0 = off, VGG19 is not loaded.
    lambda_perceptual: float = 0.0
    # Weight of a pixel MSE term (on [-1, 1] images; 0 = off): PSNR's own loss, which trains a
    # fidelity model far faster than L1 on textured photos (the superres recipe uses it alone).
    lambda_mse: float = 0.0
    # Generators with ab_classes (colorize) train on cross-entropy over quantised ab instead of L1.
    lambda_ce: float = 1.0
    # Their class rebalancing (Zhang et al.'s lambda; the paper uses 0.5): pixels of colours rare in
    # the training photos count more. 0 = off, every pixel alike.
    ce_rebalance: float = 0.0
    # pix2pix's D judges (input, output) pairs; SRGAN / ESRGAN / Real-ESRGAN's judges the output alone.
    conditional: bool = True
    # Steps over which the adversarial weight rises linearly from 0 to lambda_gan (0 = full weight
    # from the start): the pixel loss first settles the content (for colorization: grey where the
    # net is unsure), then the GAN term adds colour and texture to a generator worth judging.
    gan_ramp_steps: int = 0


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
class InpaintConfig:
    """Losses of a task whose net fills holes (inpaint): the pixels the input gives are copied at
    conversion, so training concentrates on the ones the net invents."""
    # Hole-weighted L1 (Liu et al. 2018: L_hole x 6 + L_valid x 1), times pix2pix.lambda_l1.
    hole_l1_weight: float = 6.0
    known_l1_weight: float = 1.0
    # D judges the filled image (known pixels pasted back) with the mask in its condition; its fake
    # label covers the holes only and G's adversarial term counts the holes only (LaMa's
    # mask_as_fake_target). false: the plain pix2pix GAN on the raw output.
    mask_discriminator: bool = True


@dataclass
class CycleGANConfig:
    lambda_a: float = 10.0  # cycle weight for A -> B -> A
    lambda_b: float = 10.0  # cycle weight for B -> A -> B
    lambda_identity: float = 0.5  # relative to lambda_a / lambda_b, as in the paper's code
    pool_size: int = 50  # image history buffer; 0 disables it


@dataclass
class CUTConfig:
    """CUT / FastCUT (Park et al. 2020): one generator, one discriminator, PatchNCE instead of a cycle."""
    lambda_gan: float = 1.0
    lambda_nce: float = 1.0  # FastCUT: 10
    nce_layers: str = "input,down1,down2,block1,block5"  # ResnetSpec.taps; CUT's nce_layers 0,4,8,12,16
    num_patches: int = 256  # locations sampled per layer and image
    mlp_channels: int = 256  # width of the projection MLPs (the reference's netF_nc)
    nce_t: float = 0.07  # temperature
    nce_idt: bool = True  # also NCE(real_B, G(real_B)), A and B through G in one batch (not FastCUT)
    flip_equivariance: bool = False  # FastCUT: random left-right flips of G's input, undone on features


@dataclass
class SynthConfig:
    """How task recipes synthesise inputs from photos (fresh randomness each epoch)."""
    scale: int = 4  # superres: output / input size
    blur_sigma_max: float = 0.0  # superres, restore: Gaussian blur sigma drawn from [0, max] (px)
    noise_std_max: float = 0.0  # superres, restore: Gaussian noise std (0-255 scale) drawn from [0, max]
    shot_noise_max: float = 0.0  # restore: Poisson noise of std sqrt(s * value), s drawn from [0, max]
    jpeg_quality_min: int = 0  # superres, restore: JPEG artefacts at quality in [min, 95]; 0 = none
    # superres classic: how inputs are shrunk (translate.tasks.superres.shrink): "area" box average,
    # "bicubic" anti-aliased bicubic (Pillow/MATLAB, the SR benchmarks'), "cv2_cubic" cv2 INTER_CUBIC
    downscale: Literal["area", "bicubic", "cv2_cubic"] = "area"
    # superres: "classic" = blur, downscale, noise, JPEG with the options above; "realesrgan" = Real-ESRGAN's
    # second-order model with its published ranges (translate.data.realesrgan_degradation; the three
    # options above are not used then).
    degradation: Literal["classic", "realesrgan"] = "classic"
    usm_target: bool = False  # superres: unsharp-masked targets (Real-ESRGAN); inputs are made from them
    sketch_style: Literal["canny", "xdog", "mixed"] = "mixed"
    line_thickness: int = 1  # sketch: line width in pixels
    # colorize, training only: half the draws darken the photo by a factor log-uniform in
    # [exposure_min, 1] (1 = off), so dark pixels are seen with the small chroma they really have
    exposure_min: float = 1.0
    hole_area_min: float = 0.05  # inpaint: share of the image covered by holes
    hole_area_max: float = 0.4

    def without_augmentation(self) -> SynthConfig:
        """These options for validation pairs and `prepare`'s files: training-only augmentation off."""
        return replace(self, exposure_min=1.0)


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
    method: Method = "pix2pix"
    task: str = "custom"  # a name in translate.tasks.TASKS
    direction: Direction = "a_to_b"
    # in/out channels live in the generator spec; the method derives discriminator in_channels.
    generator: GeneratorSpec = field(default_factory=lambda: PRESETS["unet_256"])
    discriminator: DiscriminatorSpec = field(default_factory=lambda: PRESETS["patchgan_70"])
    init: Literal["normal", "xavier", "kaiming", "orthogonal", "torch"] = "normal"
    init_gain: float = 0.02
    gan: GanConfig = field(default_factory=GanConfig)
    pix2pix: Pix2PixConfig = field(default_factory=Pix2PixConfig)
    perceptual: PerceptualConfig = field(default_factory=PerceptualConfig)
    cyclegan: CycleGANConfig = field(default_factory=CycleGANConfig)
    cut: CUTConfig = field(default_factory=CUTConfig)
    inpaint: InpaintConfig = field(default_factory=InpaintConfig)
    data: DataConfig = field(default_factory=DataConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    # A run (or checkpoint, or published weights file) whose generator weights start this run: the
    # perceptual/GAN stage of SRGAN / ESRGAN / Real-ESRGAN starts from a fidelity (L1) run.
    init_from: str = ""

    def __post_init__(self) -> None:
        _check_ranges(self)
        if not is_generator(self.generator):
            raise ConfigError(f"generator: {self.generator.kind!r} is a discriminator, not a generator")
        if is_generator(self.discriminator):
            raise ConfigError(f"discriminator: {self.discriminator.kind!r} is a generator")
        get_task(self.task).check_config(self)
        # The crop is the target; the net's input is crop / scale and must fit its size multiple.
        multiple = self.generator.size_multiple * self.generator.scale
        if self.data.crop_size % multiple:
            raise ConfigError(
                f"data.crop_size: {self.data.crop_size} is not a multiple of {multiple}, which "
                f"generator {self.generator.kind!r} needs; use e.g. --crop-size "
                f"{max(multiple, self.data.crop_size // multiple * multiple)}"
            )
        _check_discriminator_size(self)
        if self.pix2pix.ce_rebalance > 0 and not getattr(self.generator, "ab_classes", False):
            raise ConfigError("pix2pix.ce_rebalance: rebalances the classes of ab_classes generators; "
                              "add --set generator.ab_classes=true (a U-Net colorizer) or leave it at 0")
        if self.gan.loss == "ragan" and self.method != "pix2pix":
            raise ConfigError(f"gan.loss: ragan (relativistic average) is for pix2pix; {self.method} "
                              "takes vanilla, lsgan, wgangp or hinge")
        if self.data.crop_size < self.discriminator.min_size:
            raise ConfigError(
                f"data.crop_size: {self.data.crop_size} px is smaller than discriminator "
                f"{self.discriminator.kind!r} needs ({self.discriminator.min_size} px); raise --crop-size "
                f"or use a smaller discriminator (e.g. --discriminator patchgan_34)"
            )
        if self.data.preprocess == "resize_and_crop" and self.data.load_size < self.data.crop_size:
            raise ConfigError(
                f"data.load_size: {self.data.load_size} is smaller than data.crop_size "
                f"{self.data.crop_size}; set --load-size to at least the crop size"
            )
        if self.optim.epochs < 0 or self.optim.epochs_decay < 0:
            raise ConfigError("optim.epochs, optim.epochs_decay: must not be negative")
        if self.until_max_steps and self.runtime.max_steps == 0:
            raise ConfigError("optim.epochs: 0 with optim.epochs_decay 0 trains until runtime.max_steps, "
                              "which is not set; give --max-steps N or train at least one epoch")

    @property
    def total_epochs(self) -> int:
        """Epochs to train; 0 means until runtime.max_steps."""
        return self.optim.epochs + self.optim.epochs_decay

    @property
    def until_max_steps(self) -> bool:
        return self.total_epochs == 0

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return from_dict(cls, data, "")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _check_discriminator_size(c: TrainConfig) -> None:
    """The crop is what the discriminator judges: a fixed-size one takes that size only, and a U-Net
    one needs sides its upsampled maps can meet their skips at."""
    d, crop = c.discriminator, c.data.crop_size
    fixed = getattr(d, "fixed_size", None)
    if fixed is not None and crop != fixed:
        raise ConfigError(f"data.crop_size: {crop} px, but discriminator {d.kind!r} judges exactly {fixed} px "
                          f"images; use --crop-size {fixed}")
    multiple = getattr(d, "size_multiple", 1)
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
    if c.pix2pix.lambda_perceptual > 0 and not any(w > 0 for w in c.perceptual.layers.values()):
        raise ConfigError("perceptual.layers: pix2pix.lambda_perceptual is on but no layer has a weight; "
                          "set e.g. --set perceptual.layers.conv5_4=1")


def _finite_at_least(low: float, *, strict: bool = False) -> Callable[[Any], bool]:
    return lambda v: math.isfinite(v) and (v > low if strict else v >= low)


def _in(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: low <= v < high


_RATE = (_finite_at_least(0, strict=True), "a finite number > 0")
_WEIGHT = (_finite_at_least(0), "a finite number >= 0")
_WEIGHT_OR_OFF = (_finite_at_least(0), "a finite number >= 0 (0 = off)")
_UNIT = (_in(0, 1), "in [0, 1)")


def _count(minimum: int, want: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v >= minimum), want


_OFF = _count(0, "0 or more (0 = off)")


# Each field on its own, in the order they are checked (the first bad one is named); rules that
# tie fields together are in TrainConfig.__post_init__.
_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "optim.lr_g": _RATE, "optim.lr_d": _RATE, "optim.beta1": _UNIT, "optim.beta2": _UNIT,
    "optim.grad_clip": _WEIGHT_OR_OFF,
    "optim.batch_size": _count(1, "at least 1"),
    "data.load_size": _count(1, "at least 1 px"),
    "data.crop_size": _count(1, "at least 1 px"),
    "data.workers": _count(0, "0 or more (0 = decode in the training process)"),
    "data.val_fraction": _UNIT,
    "data.max_val_images": _count(0, "0 or more"),
    "data.samples_per_epoch": _count(0, "0 or more (0 = the dataset size)"),
    # 1 grey (sketch, L), 2 (colorize's ab), 3 RGB, 4 RGBA or RGB + mask (inpaint): what images hold.
    "generator.in_channels": (lambda v: 1 <= v <= 4, "1 to 4 (image channels)"),
    "generator.out_channels": (lambda v: 1 <= v <= 4, "1 to 4 (image channels)"),
    "init_gain": _RATE,
    "gan.label_smoothing": (_in(0, 0.5), "in [0, 0.5)"),
    "gan.instance_noise": _WEIGHT_OR_OFF,
    "gan.instance_noise_steps": _count(0, "0 or more (0 = the whole run)"),
    "gan.gp_weight": _WEIGHT,
    "pix2pix.lambda_l1": _WEIGHT, "pix2pix.lambda_gan": _WEIGHT, "pix2pix.lambda_mse": _WEIGHT,
    "pix2pix.lambda_ce": _WEIGHT,
    "pix2pix.ce_rebalance": (lambda v: 0 <= v <= 1, "in [0, 1] (0 = off)"),
    "pix2pix.gan_ramp_steps": _count(0, "0 or more (0 = no ramp)"),
    "pix2pix.lambda_perceptual": _WEIGHT,
    "optim.ema_decay": (_in(0, 1), "in [0, 1) (0 = off)"),
    "inpaint.hole_l1_weight": _WEIGHT, "inpaint.known_l1_weight": _WEIGHT,
    "cyclegan.lambda_a": _WEIGHT, "cyclegan.lambda_b": _WEIGHT, "cyclegan.lambda_identity": _WEIGHT,
    "cyclegan.pool_size": _OFF,
    "cut.lambda_gan": _WEIGHT, "cut.lambda_nce": _WEIGHT,
    "cut.num_patches": _count(1, "at least 1"), "cut.mlp_channels": _count(1, "at least 1"),
    "cut.nce_t": _RATE,
    "runtime.seed": _count(0, "0 or more"),  # numpy's generators refuse negative seeds
    "runtime.log_every_steps": _count(1, "at least 1"),
    "runtime.sample_every_steps": _OFF,
    "runtime.val_every_epochs": _count(1, "at least 1"),
    "runtime.max_steps": _count(0, "0 or more (0 = no limit)"),
    "runtime.checkpoint_every_epochs": _OFF, "runtime.checkpoint_every_steps": _OFF,
    "runtime.checkpoint_every_minutes": _WEIGHT_OR_OFF,
    "runtime.keep_checkpoints": _count(0, "0 or more (0 = keep all)"),
    "data.max_megapixels": _RATE,
    "synth.exposure_min": (lambda v: 0 < v <= 1, "in (0, 1] (1 = off)"),
}


def _check_ranges(c: TrainConfig) -> None:
    """Each field of `_RANGES` on its own: ConfigError naming the first bad one."""
    for name, (ok, want) in _RANGES.items():
        value = c
        for part in name.split("."):
            value = getattr(value, part)
        if not ok(value):
            raise ConfigError(f"{name}: must be {want}, got {value!r}")
    if not isinstance(c.perceptual.layers, dict):
        raise ConfigError(f"perceptual.layers: expected a mapping of VGG19 layer names to weights, "
                          f"got {c.perceptual.layers!r}")
    _check_perceptual(c)


def default_config(method: Method) -> TrainConfig:
    """The method's paper defaults: pix2pix = U-Net 256 + batch norm + dropout, vanilla GAN;
    CycleGAN = ResNet 9 blocks + instance norm, LSGAN, instance-norm PatchGAN; CUT and FastCUT =
    the same nets anti-aliased, xavier init, LSGAN, 200 + 200 epochs (FastCUT: lambda_nce 10, no
    nce_idt, flip equivariance, 150 + 50 epochs)."""
    if method == "pix2pix":
        return TrainConfig(method="pix2pix")
    if method in ("cut", "fastcut"):
        fast = method == "fastcut"
        return TrainConfig(
            method=method, generator=PRESETS["resnet_9blocks_antialias"],
            discriminator=dataclasses.replace(PRESETS["patchgan_70_antialias"], norm="instance"),
            init="xavier", gan=GanConfig(loss="lsgan"),
            cut=CUTConfig(lambda_nce=10.0, nce_idt=False, flip_equivariance=True) if fast else CUTConfig(),
            optim=OptimConfig(epochs=150, epochs_decay=50) if fast else OptimConfig(epochs=200, epochs_decay=200))
    return TrainConfig(
        method="cyclegan",
        generator=PRESETS["resnet_9blocks"],
        discriminator=dataclasses.replace(PRESETS["patchgan_70"], norm="instance"),
        gan=GanConfig(loss="lsgan"),
        data=DataConfig(),
    )
