"""Weights a user fetches on purpose: published generators and the feature networks losses and metrics use.

Nothing downloads implicitly. Published generators (the reference pix2pix/CycleGAN project) live as
weights/NAME.pth; feature networks (VGG19 for perceptual losses, ...) are found by `locate`:
an explicit path, then the weights folder, then the library cache where torchvision keeps them.

Each file is a reference `latest_net_G.pth` state dict (one generator); `translate convert NAME`
finds it as `weights/NAME.pth`, and the loader detects its architecture from the state dict.
Downloads go through urllib to a temporary file beside the target, are checked to load as a
weights-only state dict, and only then renamed into place.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from translate.errors import WeightsError
from translate.files import atomic_write

DEFAULT_DIR = Path("weights")
_PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{file}.pth"
_CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{file}.pth"


@dataclass(frozen=True)
class FeatureWeights:
    """A pretrained feature network's weights file, as its library names and caches it."""

    name: str
    file: str  # the library's file name (torchvision's ends in the first hex digits of its sha256)
    url: str
    description: str


# Feature networks behind losses and metrics; each under its library's own cache name.
FEATURE_WEIGHTS: dict[str, FeatureWeights] = {w.name: w for w in [
    FeatureWeights("vgg19", "vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
                   "torchvision ImageNet VGG19 (perceptual loss of SRGAN / ESRGAN / Real-ESRGAN)"),
]}


def library_cache() -> Path:
    """torch.hub's checkpoint folder, where torchvision keeps the weights it downloads."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def locate(name: str, explicit: str | Path | None = None, weights_dir: str | Path = DEFAULT_DIR) -> Path:
    """Feature-network weights `name`: the explicit path, else weights_dir/FILE, else the library cache.

    Never downloads; a WeightsError says how to get the file."""
    if name not in FEATURE_WEIGHTS:
        raise WeightsError(f"{name}: unknown feature weights (known: {', '.join(FEATURE_WEIGHTS)})")
    if explicit:
        if not Path(explicit).is_file():
            raise WeightsError(f"{explicit}: no such weights file for {name}")
        return Path(explicit)
    file = FEATURE_WEIGHTS[name].file
    for folder in (Path(weights_dir), library_cache()):
        if (folder / file).is_file():
            return folder / file
    raise WeightsError(f"{name}: weights not found (looked for {file} in {weights_dir}/ and {library_cache()}/); "
                       f"get them with `translate weights fetch {name}`, or give the file's path")


@dataclass(frozen=True)
class PublishedModel:
    """One released generator: where it comes from and what it does."""

    name: str
    url: str
    method: Literal["pix2pix", "cyclegan"]  # pix2pix: U-Net 256 + batch norm; CycleGAN: ResNet 9 blocks
    description: str


def _pix2pix(file: str, description: str) -> PublishedModel:
    return PublishedModel(file, _PIX2PIX_URL.format(file=file), "pix2pix", description)


def _cyclegan(file: str, description: str, name: str | None = None) -> PublishedModel:
    return PublishedModel(name or file, _CYCLEGAN_URL.format(file=file), "cyclegan", description)


# From the reference project's scripts/download_pix2pix_model.sh and download_cyclegan_model.sh.
# Three CycleGAN models share a pix2pix model's name; they get a "cyclegan_" prefix here.
PUBLISHED: dict[str, PublishedModel] = {m.name: m for m in [
    _pix2pix("facades_label2photo", "facade label map -> photo (CMP Facades)"),
    _pix2pix("sat2map", "aerial photo -> map (Google Maps)"),
    _pix2pix("map2sat", "map -> aerial photo (Google Maps)"),
    _pix2pix("edges2shoes", "edge sketch -> shoe photo (UT Zappos50K)"),
    _pix2pix("day2night", "daytime -> night scene (Transient Attributes)"),
    _cyclegan("horse2zebra", "horse -> zebra"),
    _cyclegan("zebra2horse", "zebra -> horse"),
    _cyclegan("apple2orange", "apple -> orange"),
    _cyclegan("orange2apple", "orange -> apple"),
    _cyclegan("summer2winter_yosemite", "Yosemite summer -> winter"),
    _cyclegan("winter2summer_yosemite", "Yosemite winter -> summer"),
    _cyclegan("monet2photo", "Monet painting -> photo"),
    _cyclegan("style_monet", "photo -> Monet-style painting"),
    _cyclegan("style_cezanne", "photo -> Cezanne-style painting"),
    _cyclegan("style_ukiyoe", "photo -> Ukiyo-e-style print"),
    _cyclegan("style_vangogh", "photo -> Van Gogh-style painting"),
    _cyclegan("iphone2dslr_flower", "iPhone flower photo -> DSLR shallow depth of field"),
    _cyclegan("cityscapes_photo2label", "street photo -> label map (Cityscapes)"),
    _cyclegan("cityscapes_label2photo", "label map -> street photo (Cityscapes)"),
    _cyclegan("facades_photo2label", "facade photo -> label map"),
    _cyclegan("facades_label2photo", "facade label map -> photo", name="cyclegan_facades_label2photo"),
    _cyclegan("sat2map", "aerial photo -> map", name="cyclegan_sat2map"),
    _cyclegan("map2sat", "map -> aerial photo", name="cyclegan_map2sat"),
]}


def local_path(name: str, weights_dir: str | Path = DEFAULT_DIR) -> Path:
    """Where `fetch` stores published model `name`: weights_dir/NAME.pth."""
    return Path(weights_dir) / f"{name}.pth"


def _known() -> str:
    return ", ".join(PUBLISHED)


def resolve(name: str, weights_dir: str | Path = DEFAULT_DIR) -> Path:
    """The downloaded file of published model `name`; a WeightsError says how to get it."""
    path = local_path(name, weights_dir)
    if path.is_file():
        return path
    if name in PUBLISHED:
        raise WeightsError(
            f"{name}: published model not downloaded yet (expected {path}); "
            f"fetch it with `python scripts/fetch_weights.py {name}`"
        )
    raise WeightsError(f"{name}: no such file, run directory or published model (published: {_known()})")


def fetch(name: str, dest_dir: str | Path = DEFAULT_DIR, *, overwrite: bool = False,
          timeout_s: float = 60.0) -> Path:
    """Download published model `name` to dest_dir/NAME.pth (kept as is when already there).

    The file appears only complete and loadable (temporary file, check, rename); any failure
    (offline, HTTP error, truncated or non-weights file) raises a one-line WeightsError.
    """
    if name not in PUBLISHED:
        raise WeightsError(f"{name}: unknown published model (published: {_known()})")
    model = PUBLISHED[name]
    dest = local_path(name, dest_dir)
    if dest.is_file() and not overwrite:
        return dest

    def download(out: BinaryIO) -> None:
        try:
            with urllib.request.urlopen(model.url, timeout=timeout_s) as response:
                expected = response.headers.get("Content-Length")
                size = 0
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    size += len(chunk)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", None) or e
            raise WeightsError(
                f"{name}: download from {model.url} failed ({reason}); check the network, "
                f"or download the file by hand and save it as {dest}"
            ) from e
        if expected is not None and size != int(expected):
            raise WeightsError(f"{name}: download from {model.url} truncated ({size} of {expected} bytes); try again")

    atomic_write(dest, download, check=lambda tmp: _check_state_dict(tmp, name))
    return dest


def _check_state_dict(path: Path, name: str) -> None:
    from translate.checkpoint import CheckpointError, load_file

    try:
        obj = load_file(path)
    except CheckpointError as e:
        raise WeightsError(f"{name}: downloaded file is not loadable weights ({e})") from e
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{name}: downloaded file is not a generator state dict")
