"""Training configuration: nested dataclasses, dict/YAML round trips, dotted overrides and resolution."""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from translate.direction import Direction
from translate.errors import ConfigError
from translate.nets import PRESETS, DiscriminatorSpec, GeneratorSpec, is_generator, spec_from_dict, spec_to_dict
from translate.tasks import get_task

Method = Literal["pix2pix", "cyclegan"]
GanLoss = Literal["vanilla", "lsgan", "wgangp", "hinge"]
_PRESET_KEYS = ("generator", "discriminator")  # a string there names a preset


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


@dataclass
class GanConfig:
    loss: GanLoss = "vanilla"
    label_smoothing: float = 0.0  # one-sided: real targets become 1 - label_smoothing
    gp_weight: float = 10.0  # WGAN-GP gradient-penalty weight (Gulrajani et al. 2017)


@dataclass
class Pix2PixConfig:
    lambda_l1: float = 100.0
    # Weight of the adversarial term. 0 trains the generator on L1 alone, with no discriminator:
    # the fidelity-first (PSNR) baseline, and the usual pre-training for super-resolution GANs.
    lambda_gan: float = 1.0


@dataclass
class CycleGANConfig:
    lambda_a: float = 10.0  # cycle weight for A -> B -> A
    lambda_b: float = 10.0  # cycle weight for B -> A -> B
    lambda_identity: float = 0.5  # relative to lambda_a / lambda_b, as in the paper's code
    pool_size: int = 50  # image history buffer; 0 disables it


@dataclass
class SynthConfig:
    """How task recipes synthesise inputs from photos (fresh randomness each epoch)."""
    scale: int = 4  # superres: output / input size
    blur_sigma_max: float = 0.0  # superres, restore: Gaussian blur sigma drawn from [0, max] (px)
    noise_std_max: float = 0.0  # superres, restore: Gaussian noise std (0-255 scale) drawn from [0, max]
    shot_noise_max: float = 0.0  # restore: Poisson noise of std sqrt(s * value), s drawn from [0, max]
    jpeg_quality_min: int = 0  # superres, restore: JPEG artefacts at quality in [min, 95]; 0 = none
    sketch_style: Literal["canny", "xdog", "mixed"] = "mixed"
    line_thickness: int = 1  # sketch: line width in pixels
    hole_area_min: float = 0.05  # inpaint: share of the image covered by holes
    hole_area_max: float = 0.4


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
    cyclegan: CycleGANConfig = field(default_factory=CycleGANConfig)
    data: DataConfig = field(default_factory=DataConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

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
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, data, "")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _check_ranges(c: TrainConfig) -> None:
    """Each field on its own (cross-field rules are in __post_init__): ConfigError naming the first bad one."""
    o, d, g, p, cg, rt = c.optim, c.data, c.generator, c.pix2pix, c.cyclegan, c.runtime
    rate, weight, off = "a finite number > 0", "a finite number >= 0", "0 or more (0 = off)"
    checks = [
        ("optim.lr_g", o.lr_g, math.isfinite(o.lr_g) and o.lr_g > 0, rate),
        ("optim.lr_d", o.lr_d, math.isfinite(o.lr_d) and o.lr_d > 0, rate),
        ("optim.beta1", o.beta1, 0 <= o.beta1 < 1, "in [0, 1)"),
        ("optim.beta2", o.beta2, 0 <= o.beta2 < 1, "in [0, 1)"),
        ("optim.grad_clip", o.grad_clip, math.isfinite(o.grad_clip) and o.grad_clip >= 0, f"{weight} (0 = off)"),
        ("optim.batch_size", o.batch_size, o.batch_size >= 1, "at least 1"),
        ("data.load_size", d.load_size, d.load_size >= 1, "at least 1 px"),
        ("data.crop_size", d.crop_size, d.crop_size >= 1, "at least 1 px"),
        ("data.workers", d.workers, d.workers >= 0, "0 or more (0 = decode in the training process)"),
        ("data.val_fraction", d.val_fraction, 0 <= d.val_fraction < 1, "in [0, 1)"),
        ("data.max_val_images", d.max_val_images, d.max_val_images >= 0, "0 or more"),
        ("data.samples_per_epoch", d.samples_per_epoch, d.samples_per_epoch >= 0, "0 or more (0 = the dataset size)"),
        # 1 grey (sketch, L), 2 (colorize's ab), 3 RGB, 4 RGBA or RGB + mask (inpaint): what images hold.
        ("generator.in_channels", g.in_channels, 1 <= g.in_channels <= 4, "1 to 4 (image channels)"),
        ("generator.out_channels", g.out_channels, 1 <= g.out_channels <= 4, "1 to 4 (image channels)"),
        ("init_gain", c.init_gain, math.isfinite(c.init_gain) and c.init_gain > 0, rate),
        ("gan.label_smoothing", c.gan.label_smoothing, 0 <= c.gan.label_smoothing < 0.5, "in [0, 0.5)"),
        ("gan.gp_weight", c.gan.gp_weight, math.isfinite(c.gan.gp_weight) and c.gan.gp_weight >= 0, weight),
        ("pix2pix.lambda_l1", p.lambda_l1, math.isfinite(p.lambda_l1) and p.lambda_l1 >= 0, weight),
        ("pix2pix.lambda_gan", p.lambda_gan, math.isfinite(p.lambda_gan) and p.lambda_gan >= 0, weight),
        ("cyclegan.lambda_a", cg.lambda_a, math.isfinite(cg.lambda_a) and cg.lambda_a >= 0, weight),
        ("cyclegan.lambda_b", cg.lambda_b, math.isfinite(cg.lambda_b) and cg.lambda_b >= 0, weight),
        ("cyclegan.lambda_identity", cg.lambda_identity,
         math.isfinite(cg.lambda_identity) and cg.lambda_identity >= 0, weight),
        ("cyclegan.pool_size", cg.pool_size, cg.pool_size >= 0, "0 or more (0 = off)"),
        ("runtime.seed", rt.seed, rt.seed >= 0, "0 or more"),  # numpy's generators refuse negative seeds
        ("runtime.log_every_steps", rt.log_every_steps, rt.log_every_steps >= 1, "at least 1"),
        ("runtime.sample_every_steps", rt.sample_every_steps, rt.sample_every_steps >= 0, "0 or more (0 = off)"),
        ("runtime.val_every_epochs", rt.val_every_epochs, rt.val_every_epochs >= 1, "at least 1"),
        ("runtime.max_steps", rt.max_steps, rt.max_steps >= 0, "0 or more (0 = no limit)"),
        ("runtime.checkpoint_every_epochs", rt.checkpoint_every_epochs, rt.checkpoint_every_epochs >= 0, off),
        ("runtime.checkpoint_every_steps", rt.checkpoint_every_steps, rt.checkpoint_every_steps >= 0, off),
        ("runtime.checkpoint_every_minutes", rt.checkpoint_every_minutes,
         math.isfinite(rt.checkpoint_every_minutes) and rt.checkpoint_every_minutes >= 0, f"{weight} (0 = off)"),
        ("runtime.keep_checkpoints", rt.keep_checkpoints, rt.keep_checkpoints >= 0, "0 or more (0 = keep all)"),
        ("data.max_megapixels", d.max_megapixels, math.isfinite(d.max_megapixels) and d.max_megapixels > 0, rate),
    ]
    for name, value, ok, want in checks:
        if not ok:
            raise ConfigError(f"{name}: must be {want}, got {value!r}")


def default_config(method: Method) -> TrainConfig:
    """The method's paper defaults: pix2pix = U-Net 256 + batch norm + dropout, vanilla GAN;
    CycleGAN = ResNet 9 blocks + instance norm, LSGAN, instance-norm PatchGAN."""
    if method == "pix2pix":
        return TrainConfig(method="pix2pix")
    return TrainConfig(
        method="cyclegan",
        generator=PRESETS["resnet_9blocks"],
        discriminator=dataclasses.replace(PRESETS["patchgan_70"], norm="instance"),
        gan=GanConfig(loss="lsgan"),
        data=DataConfig(),
    )


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `overrides` into a copy of `base`. A string replacing a net spec picks a preset."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "kind" not in value:
            out[key] = merge(out[key], value)
        elif isinstance(value, str) and key in ("generator", "discriminator"):
            # A preset picks the architecture; channel counts already chosen (by a task recipe,
            # say) stay, since they describe the data rather than the net.
            try:
                spec = spec_to_dict(spec_from_dict(value))
            except ValueError as e:
                raise ConfigError(f"{key}: {e}") from None
            previous = out.get(key)
            if isinstance(previous, dict) and previous.get("kind") != "multiscale":
                spec.update({k: previous[k] for k in ("in_channels", "out_channels") if k in previous and k in spec})
            out[key] = spec
        else:
            out[key] = value
    return out


def parse_set(assignments: list[str]) -> dict[str, Any]:
    """`["optim.lr_g=1e-4", "generator.n_blocks=6"]` -> nested dict. Values are parsed as YAML
    scalars (safe_load) and then checked against each field's type by `from_dict`."""
    out: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. optim.lr_g=1e-4")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _parse_value(item, raw) if raw else ""
    return out


def _parse_value(item: str, raw: str) -> Any:
    """One `--set` value as a YAML scalar or list; tags such as !!python/object are refused, never run."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({_yaml_problem(e)})") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's short description ("could not determine a constructor for the tag ..."), no position dump."""
    problem = getattr(error, "problem", None)
    return problem if isinstance(problem, str) and problem else str(error).splitlines()[0]


# Named settings (the `train` command's flags) -> the config fields each one sets.
NAMED_SETTINGS: dict[str, tuple[str, ...]] = {
    "data": ("data.root",), "epochs": ("optim.epochs",), "epochs_decay": ("optim.epochs_decay",),
    "batch_size": ("optim.batch_size",), "lr": ("optim.lr_g", "optim.lr_d"),
    "load_size": ("data.load_size",), "crop_size": ("data.crop_size",),
    "generator": ("generator",), "discriminator": ("discriminator",), "norm": ("generator.norm",),
    "base_channels": ("generator.base_channels",), "in_channels": ("generator.in_channels",),
    "out_channels": ("generator.out_channels",), "gan_loss": ("gan.loss",),
    "lambda_l1": ("pix2pix.lambda_l1",), "lambda_cycle": ("cyclegan.lambda_a", "cyclegan.lambda_b"),
    "lambda_identity": ("cyclegan.lambda_identity",), "pool_size": ("cyclegan.pool_size",),
    "direction": ("direction",), "val_fraction": ("data.val_fraction",), "max_steps": ("runtime.max_steps",),
    "device": ("runtime.device",), "amp": ("runtime.amp",), "channels_last": ("runtime.channels_last",),
    "compile": ("runtime.compile",), "workers": ("data.workers",), "seed": ("runtime.seed",),
}

# What `train --resume` may change: runtime choices that leave the run's meaning alone. The seed
# and batch-norm synchronisation would make the resumed run differ from an uninterrupted one.
RESUMABLE = frozenset({f"runtime.{f.name}" for f in dataclasses.fields(RuntimeConfig)}
                      - {"runtime.seed", "runtime.sync_batchnorm"} | {"data.workers"})


def named_overrides(**named: Any) -> dict[str, Any]:
    """Named settings -> {dotted field path: value}, None meaning not given (lr sets lr_g and lr_d)."""
    unknown = sorted(set(named) - set(NAMED_SETTINGS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: not a named setting (valid: {', '.join(NAMED_SETTINGS)})")
    return {path: value for name, value in named.items() if value is not None for path in NAMED_SETTINGS[name]}


def resolve_config(method: Method, *, task: str | None = None, config_file: str | Path | None = None,
                   overrides: Mapping[str, Any] | None = None, assignments: Sequence[str] = ()) -> TrainConfig:
    """Defaults < task recipe < config file < `overrides` < `assignments` (--set KEY=VALUE, in order).

    `overrides` maps dotted paths to values, e.g. {"generator": "unet_128", "optim.lr_g": 1e-4};
    presets (a string for generator / discriminator) apply first, so field values refine them."""
    data = default_config(method).to_dict()
    if task:
        data = merge(data, get_task(task).recipe())
    if config_file:
        data = merge(data, load_yaml(config_file))
    for path, value in sorted((overrides or {}).items(), key=lambda item: item[0] not in _PRESET_KEYS):
        data = merge(data, _nested(path, value))
    for item in assignments:
        data = merge(data, parse_set([item]))
    return TrainConfig.from_dict(data)


def resume_config(saved: dict[str, Any], *, overrides: Mapping[str, Any] | None = None,
                  assignments: Sequence[str] = ()) -> TrainConfig:
    """A run's saved config with runtime changes only (RESUMABLE); anything else is a ConfigError."""
    changes = [_nested(path, value) for path, value in (overrides or {}).items()]
    changes += [parse_set([item]) for item in assignments]
    for change in changes:
        for path in _leaf_paths(change):
            if path not in RESUMABLE:
                raise ConfigError(f"{path}: cannot change on resume (the run's checkpoint fixes architecture, "
                                  f"data and training); only runtime settings such as --max-steps, --device may")
        saved = merge(saved, change)
    return TrainConfig.from_dict(saved)


def _nested(path: str, value: Any) -> dict[str, Any]:
    """"optim.lr_g", 1e-4 -> {"optim": {"lr_g": 1e-4}}."""
    for part in reversed(path.split(".")):
        value = {part: value}
    return value


def _leaf_paths(nested: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of a nested override's values (a net spec counts as one value)."""
    return [leaf for key, value in nested.items() for leaf in (_leaf_paths(value, f"{prefix}{key}.")
            if isinstance(value, dict) and "kind" not in value else [f"{prefix}{key}"])]


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {e.start}); save the config as UTF-8 YAML") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({_yaml_problem(e)})") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    return data


def _to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        if hasattr(obj, "kind"):
            return spec_to_dict(obj)
        return {f.name: _to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    return obj


def _from_dict(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{path}.{key}" if path else key
        if key not in names:
            raise ConfigError(f"{dotted}: unknown key (valid: {', '.join(sorted(names))})")
        kwargs[key] = _convert(hints[key], value, dotted)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{path or 'config'}: {e}") from e


def _convert(tp: Any, value: Any, path: str) -> Any:
    if tp in (GeneratorSpec, DiscriminatorSpec):
        try:
            return spec_from_dict(value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{path}: {e}") from e
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, path)
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            choices = ", ".join(repr(c) for c in typing.get_args(tp))
            raise ConfigError(f"{path}: {value!r} is not one of {choices}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(inner, value, path)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" as a string; the field's type decides
            return tp(value)
        except ValueError:
            raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}") from None
    if tp in (int, float, str, bool) and not (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}")
    return value
