"""Weights a user fetches on purpose: published generators and the feature networks losses and metrics use.

Nothing downloads implicitly. Published generators (the reference pix2pix/CycleGAN project) live as
weights/NAME.pth; feature networks (VGG19 for perceptual losses, Inception for FID/KID, AlexNet/VGG16 and
the LPIPS layers for LPIPS) are found by `locate`: an explicit path, then the weights folder, then the
place their library keeps them. `translate weights list | fetch NAME` is the command line.

Each published file is a reference `latest_net_G.pth` state dict (one generator); `translate convert NAME`
finds it as `weights/NAME.pth`, and the loader detects its architecture from the state dict.
Downloads go through urllib to a temporary file beside the target, are checked (sha256 where pinned,
loadable as a weights-only state dict), and only then renamed into place.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Literal

from translate.errors import WeightsError
from translate.files import atomic_write
from translate.integrity.download import DownloadLimits
from translate.integrity.pins import pin_at_download, require_verified, sha256_of

DEFAULT_DIR = Path("weights")
# The reference project's scripts still say http://; the same host serves the same paths over https.
_PIX2PIX_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{file}.pth"
_CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{file}.pth"
_TORCHVISION_URL = "https://download.pytorch.org/models/{file}"
_LPIPS_URL = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/{net}.pth"
DOWNLOAD_LIMITS = DownloadLimits()  # whole-download deadline, per-read time-out, minimum rate


@dataclass(frozen=True)
class FeatureWeights:
    """A pretrained feature network's weights file, as its library names and keeps it."""

    name: str
    file: str  # name in the weights folder and torch.hub's cache (torch.hub style: ends in a sha256 prefix)
    url: str
    sha256: str  # the full hex digest, or only the prefix the file name carries (torchvision's files)
    description: str
    # Where the owning library keeps its copy: torch.hub's cache under `file` (and these other names),
    # or for LPIPS's layers the lpips package folder, which ships them (weights/v0.1/NET.pth).
    aliases: tuple[str, ...] = ()
    lpips_net: str | None = None


def _torchvision(name: str, file: str, description: str) -> FeatureWeights:
    # torchvision publishes only the first 8 hex digits of each file's sha256, in its name; torch.hub
    # checks that prefix (check_hash=True), and so do we.
    return FeatureWeights(name, file, _TORCHVISION_URL.format(file=file), file.rsplit("-", 1)[1].split(".")[0],
                          description)


def _lpips(net: str, sha256: str, description: str) -> FeatureWeights:
    return FeatureWeights(f"lpips_{net}", f"LPIPS_v0.1_{net}-{sha256[:8]}.pth", _LPIPS_URL.format(net=net), sha256,
                          description, lpips_net=net)


# Feature networks behind losses and metrics; each under its library's own cache name.
FEATURE_WEIGHTS: dict[str, FeatureWeights] = {w.name: w for w in [
    _torchvision("vgg19", "vgg19-dcbb9e9d.pth",
                 "torchvision ImageNet VGG19 (perceptual loss of SRGAN / ESRGAN / Real-ESRGAN)"),
    # The TF 2015-12-05 Inception graph of the original FID code, as torch-fidelity converted it; pytorch-fid
    # publishes the same bytes as pt_inception-2015-12-05-6726825d.pth (same sha256), so either cache counts.
    FeatureWeights("inception", "weights-inception-2015-12-05-6726825d.pth",
                   "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                   "weights-inception-2015-12-05-6726825d.pth",
                   "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
                   "InceptionV3 of the original TF FID code (FID / KID, torch-fidelity and pytorch-fid)",
                   aliases=("pt_inception-2015-12-05-6726825d.pth",)),
    _torchvision("alexnet", "alexnet-owt-7be5be79.pth", "torchvision ImageNet AlexNet (LPIPS alex backbone)"),
    _torchvision("vgg16", "vgg16-397923af.pth", "torchvision ImageNet VGG16 (LPIPS vgg backbone)"),
    _lpips("alex", "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
           "LPIPS v0.1 linear layers on AlexNet (ships with the lpips package)"),
    _lpips("vgg", "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
           "LPIPS v0.1 linear layers on VGG16 (ships with the lpips package)"),
]}


def library_cache() -> Path:
    """torch.hub's checkpoint folder, where torchvision keeps the weights it downloads."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def library_copies(name: str) -> list[Path]:
    """Where the library that owns feature weights `name` keeps them (present or not)."""
    weights = FEATURE_WEIGHTS[name]
    if weights.lpips_net:
        spec = importlib.util.find_spec("lpips")  # its folder, without importing it (and torchvision)
        if spec is None or spec.origin is None:
            return []
        return [Path(spec.origin).parent / "weights" / "v0.1" / f"{weights.lpips_net}.pth"]
    return [library_cache() / file for file in (weights.file, *weights.aliases)]


def locate(name: str, explicit: str | Path | None = None, weights_dir: str | Path = DEFAULT_DIR) -> Path:
    """Feature-network weights `name`: the explicit path, else weights_dir/FILE, else the library's copy.

    Never downloads; a WeightsError says how to get the file."""
    if name not in FEATURE_WEIGHTS:
        raise WeightsError(f"{name}: unknown feature weights (known: {', '.join(FEATURE_WEIGHTS)})")
    if explicit:
        if not Path(explicit).is_file():
            raise WeightsError(f"{explicit}: no such weights file for {name}")
        return Path(explicit)
    file = FEATURE_WEIGHTS[name].file
    candidates = [Path(weights_dir) / file, *library_copies(name)]
    for path in candidates:
        if path.is_file():
            return require_verified(path, name, FEATURE_WEIGHTS[name].sha256)  # hashed once, then remembered
    raise WeightsError(f"{name}: weights not found (looked for {', '.join(map(str, candidates))}); "
                       f"get them with `translate weights fetch {name}`, or give the file's path")


def matches_published(name: str, sha256: str) -> bool:
    """Whether a file with this sha256 is the published `name` (a prefix check for torchvision's files)."""
    return sha256.startswith(FEATURE_WEIGHTS[name].sha256)


def fetch_feature(name: str, dest_dir: str | Path = DEFAULT_DIR, *, overwrite: bool = False,
                  timeout_s: float = 60.0) -> Path:
    """Download feature weights `name` to dest_dir/FILE, checked against the pinned sha256 before it appears."""
    if name not in FEATURE_WEIGHTS:
        raise WeightsError(f"{name}: unknown feature weights (known: {', '.join(FEATURE_WEIGHTS)})")
    weights = FEATURE_WEIGHTS[name]
    dest = Path(dest_dir) / weights.file
    if dest.is_file() and not overwrite:
        return require_verified(dest, name, weights.sha256)

    def check(tmp: Path) -> None:
        digest = sha256_of(tmp)
        if not matches_published(name, digest):
            raise WeightsError(f"{name}: downloaded file has sha256 {digest}, expected "
                               f"{weights.sha256}{'...' if len(weights.sha256) < 64 else ''}; not saved")
        _check_state_dict(tmp, name)

    atomic_write(dest, _downloader(name, weights.url, dest, timeout_s), check=check)
    return dest


def _downloader(name: str, url: str, dest: Path, timeout_s: float) -> Callable[[BinaryIO], None]:
    """A writer for atomic_write that streams `url` within DownloadLimits; failures are one-line WeightsErrors."""
    from translate.integrity.download import stream

    limits = dataclasses.replace(DOWNLOAD_LIMITS, read_timeout_s=min(timeout_s, DOWNLOAD_LIMITS.read_timeout_s))

    def download(out: BinaryIO) -> None:
        size, expected = stream(url, out, limits, name=name)
        if expected is not None and size != int(expected):
            raise WeightsError(f"{name}: download from {url} truncated ({size} of {expected} bytes); try again")

    return download


@dataclass(frozen=True)
class PublishedModel:
    """One released generator: where it comes from and what it does."""

    name: str
    url: str
    method: Literal["pix2pix", "cyclegan"]  # pix2pix: U-Net 256 + batch norm; CycleGAN: ResNet 9 blocks
    description: str
    sha256: str | None = None  # none published by the reference project; pinned at download (integrity.pins)


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
        return require_verified(path, name, PUBLISHED[name].sha256 if name in PUBLISHED else None)
    if name in PUBLISHED:
        raise WeightsError(
            f"{name}: published model not downloaded yet (expected {path}); "
            f"fetch it with `translate weights fetch {name}`"
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
        return require_verified(dest, name, model.sha256)
    atomic_write(dest, _downloader(name, model.url, dest, timeout_s), check=lambda tmp: _check_state_dict(tmp, name))
    pin_at_download(dest)  # no published hash: the one seen at download pins the name from now on
    return dest


def _check_state_dict(path: Path, name: str) -> None:
    from translate.checkpoint import CheckpointError, load_file

    try:
        obj = load_file(path)
    except CheckpointError as e:
        raise WeightsError(f"{name}: downloaded file is not loadable weights ({e})") from e
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{name}: downloaded file is not a state dict")
