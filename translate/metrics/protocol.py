"""How the learned metrics are measured, written down and stored with every result.

A `Protocol` is the choice (resizing, Inception input handling, KID subsets, seed, minimum image
counts); `record` adds what was actually used (image counts, the weights file's sha256, library
versions) so a reader can tell whether two numbers are comparable. `MetricWeights` says where the
feature networks' weights come from (explicit files, the weights folder, the libraries' own copies).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from translate import weights as feature_weights
from translate.errors import WeightsError

LearnedMetric = Literal["lpips", "fid", "kid"]
LEARNED_METRICS: tuple[LearnedMetric, ...] = ("lpips", "fid", "kid")
# The optional extra that brings the libraries, in the words a user types.
INSTALL_HINT = "pip install 'translate[metrics]'"
_LIBRARY = {"lpips": "lpips", "fid": "torch_fidelity", "kid": "torch_fidelity"}


@dataclass(frozen=True)
class Protocol:
    """How FID and KID are measured. Images are HxWx3 uint8 RGB (what a saved PNG holds)."""

    name: str
    description: str
    image_size: int | None  # every image resized to this square first (PIL bicubic); None: native size
    inception_input: Literal["tf1-bilinear", "torch-bilinear"]  # how images reach Inception's 299x299 input
    kid_subsets: int = 100  # KID's mean and std are over this many random subsets (Binkowski et al. 2018)
    kid_subset_size: int = 1000  # capped at the smaller image set
    seed: int = 2020  # of the KID subset draws (torch-fidelity's default, so its numbers can be matched)
    # Below these counts the metric is skipped, with the reason: FID's covariance estimate is biased
    # upward at small N (it is only comparable at equal N), while KID is unbiased and the better choice
    # for small test sets.
    min_images_fid: int = 50
    min_images_kid: int = 10


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in [
    Protocol("torch-fidelity",
             "images at their own size; Inception's input resized to 299x299 with TensorFlow 1.x's bilinear "
             "resize and scaled (x-128)/128, bit-exact with the original TF FID code (torch-fidelity, "
             "torchmetrics, StyleGAN papers)", image_size=None, inception_input="tf1-bilinear"),
    Protocol("pytorch-fid",
             "the CycleGAN/CUT papers' convention: every image resized to 256x256 (PIL bicubic, as their test "
             "scripts save them), then pytorch-fid's preprocessing: [0,1] floats, torch bilinear resize to "
             "299x299 (align_corners=False), 2x-1", image_size=256, inception_input="torch-bilinear"),
]}
DEFAULT_PROTOCOL = "torch-fidelity"


def get_protocol(name: str) -> Protocol:
    """The named protocol; a ConfigError lists the known ones."""
    from translate.errors import ConfigError

    if name not in PROTOCOLS:
        raise ConfigError(f"--protocol {name}: unknown (known: {', '.join(PROTOCOLS)})")
    return PROTOCOLS[name]


@dataclass(frozen=True)
class MetricWeights:
    """Where the metrics' feature weights come from: an explicit file, else weights_dir, else the library's copy."""

    weights_dir: str = str(feature_weights.DEFAULT_DIR)
    inception: str | None = None  # InceptionV3 for FID / KID
    lpips_backbone: str | None = None  # torchvision AlexNet or VGG16 file, for the chosen LPIPS net
    lpips_layers: str | None = None  # LPIPS v0.1 linear layers for the chosen net

    def locate(self, name: str) -> Path:
        """The file for FEATURE_WEIGHTS entry `name` (inception, alexnet, vgg16, lpips_alex, lpips_vgg)."""
        explicit = {"inception": self.inception, "alexnet": self.lpips_backbone, "vgg16": self.lpips_backbone,
                    "lpips_alex": self.lpips_layers, "lpips_vgg": self.lpips_layers}.get(name)
        return feature_weights.locate(name, explicit, self.weights_dir)


LPIPS_BACKBONES = {"alex": "alexnet", "vgg": "vgg16"}


def weights_needed(metric: LearnedMetric, lpips_net: str = "alex") -> tuple[str, ...]:
    """The FEATURE_WEIGHTS names a metric loads."""
    return ("inception",) if metric in ("fid", "kid") else (LPIPS_BACKBONES[lpips_net], f"lpips_{lpips_net}")


def why_unavailable(metric: LearnedMetric, weights: MetricWeights, *, lpips_net: str = "alex") -> str | None:
    """None when `metric` can run here; else the one-line reason (library missing, weights missing)."""
    if importlib.util.find_spec(_LIBRARY[metric]) is None:
        return f"the {_LIBRARY[metric].replace('_', '-')} package is not installed ({INSTALL_HINT})"
    try:
        for name in weights_needed(metric, lpips_net):
            weights.locate(name)
    except WeightsError as e:
        return str(e)
    return None


def import_library(metric: LearnedMetric):
    """The module behind `metric`; a ConfigError saying how to install it when it is missing."""
    import importlib

    from translate.errors import ConfigError

    try:
        return importlib.import_module(_LIBRARY[metric])
    except ImportError as e:
        raise ConfigError(f"{metric}: needs the {_LIBRARY[metric].replace('_', '-')} package ({INSTALL_HINT})") from e


def library_versions() -> dict[str, str]:
    """Versions of the libraries a learned-metric number depends on."""
    versions = {}
    for package in ("torch", "torchvision", "torch-fidelity", "lpips", "pillow", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def weights_record(name: str, path: Path, sha256: str) -> dict[str, Any]:
    """What a result says about a weights file: which, its sha256, and whether it is the published one."""
    return {"name": name, "file": path.name, "sha256": sha256,
            "published": feature_weights.matches_published(name, sha256)}


def record(protocol: Protocol, **measured: Any) -> dict[str, Any]:
    """The protocol as stored beside a result: its settings plus what was measured with it."""
    return {**asdict(protocol), **measured, "versions": library_versions()}
