"""Shared fixtures: small real photos from skimage.data and dataset folders built from them.

Fixtures (factories; folders go under a fresh tmp_path folder unless `root` is given):
  photo(name, size=64)          -> one photo, HxWx3 uint8 RGB (HxWx1 for GREY_PHOTOS, HxWx4 for "logo")
  photos(n, size=64)            -> n distinct colour photos (COLOUR_PHOTOS, then flipped variants)
  write_photos(n=6, ...)        -> folder of photos, half of them in a subfolder (for recipe tests)
  write_paired(layout, ...)     -> "aligned" | "paired_folders" | "paired_nosplit" dataset, B = b_of(A)
  write_unpaired(layout, ...)   -> "split" (trainA/trainB/testA/testB) | "flat" (A/B) dataset
  vgg19_weights                 -> path of a random torchvision-layout VGG19 state dict (session)
`size` is an int (square) or (height, width). Photos are resized with INTER_AREA and cached.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from translate.data.images import write_image

COLOUR_PHOTOS = (  # distinct pictures: skimage.data.cat() is chelsea() again, so it is not here
    "astronaut", "coffee", "chelsea", "rocket", "motorcycle",
    "immunohistochemistry", "hubble_deep_field", "retina", "colorwheel",
)
GREY_PHOTOS = ("camera", "coins", "moon", "page", "text", "clock", "grass", "brick", "gravel")
Size = int | tuple[int, int]


@functools.lru_cache(maxsize=None)
def _full_photo(name: str) -> np.ndarray:
    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


@functools.lru_cache(maxsize=None)
def _photo(name: str, size: Size) -> np.ndarray:
    height, width = (size, size) if isinstance(size, int) else size
    image = cv2.resize(_full_photo(name), (width, height), interpolation=cv2.INTER_AREA)
    image = image if image.ndim == 3 else image[:, :, None]
    image.setflags(write=False)  # shared through the cache: tests must copy before editing
    return image


def _photos(n: int, size: Size = 64) -> list[np.ndarray]:
    flips = (lambda x: x, np.fliplr, np.flipud, lambda x: x[::-1, ::-1])
    if n > len(COLOUR_PHOTOS) * len(flips):
        raise ValueError(f"photos: at most {len(COLOUR_PHOTOS) * len(flips)} distinct photos, asked for {n}")
    k = len(COLOUR_PHOTOS)
    return [np.ascontiguousarray(flips[i // k](_photo(COLOUR_PHOTOS[i % k], size))) for i in range(n)]


def negative(image: np.ndarray) -> np.ndarray:
    """Default B for paired sets: a pixelwise function of A, so tests can check A and B stay aligned."""
    return np.iinfo(image.dtype).max - image


@pytest.fixture
def photo() -> Callable[..., np.ndarray]:
    """photo(name, size=64): a read-only skimage.data photo resized small."""
    return lambda name, size=64: _photo(name, size)


@pytest.fixture
def photos() -> Callable[..., list[np.ndarray]]:
    """photos(n, size=64): n distinct colour photos (HxWx3 uint8)."""
    return _photos


@pytest.fixture
def write_photos(tmp_path: Path) -> Callable[..., Path]:
    """write_photos(n=6, *, root=None, size=64, suffix=".jpg", nested=True) -> root of a photo folder."""

    def write(n: int = 6, *, root: Path | None = None, size: Size = 64, suffix: str = ".jpg",
              nested: bool = True) -> Path:
        root = Path(root or tmp_path / "photos")
        for i, image in enumerate(_photos(n, size)):
            folder = root / "sub" if nested and i % 2 else root
            write_image(folder / f"{i:03d}_{COLOUR_PHOTOS[i % len(COLOUR_PHOTOS)]}{suffix}", image)
        return root

    return write


@pytest.fixture
def write_paired(tmp_path: Path) -> Callable[..., Path]:
    """write_paired(layout="aligned", *, root=None, splits={"train": 4, "val": 2}, size=64,
    suffix=".png", suffix_b=None, b_of=negative) -> root.

    "aligned": ROOT/{split}/NNN_name{suffix}, A|B side by side; "paired_folders":
    ROOT/{split}/A/NNN_name{suffix} + ROOT/{split}/B/NNN_name{suffix_b or suffix}; "paired_nosplit":
    ROOT/A + ROOT/B holding sum(splits.values()) pairs. Lossless suffixes keep B == b_of(A) exact.
    """

    def write(layout: str = "aligned", *, root: Path | None = None, splits: dict[str, int] | None = None,
              size: Size = 64, suffix: str = ".png", suffix_b: str | None = None,
              b_of: Callable[[np.ndarray], np.ndarray] = negative) -> Path:
        root = Path(root or tmp_path / layout)
        splits = {"train": 4, "val": 2} if splits is None else splits
        if layout == "paired_nosplit":
            splits = {"": sum(splits.values())}
        elif layout not in ("aligned", "paired_folders"):
            raise ValueError(f"write_paired: unknown layout {layout!r}")
        start = 0
        for split, n in splits.items():
            for i, a in enumerate(_photos(start + n, size)[start:], start):
                stem = f"{i:03d}_{COLOUR_PHOTOS[i % len(COLOUR_PHOTOS)]}"
                if layout == "aligned":
                    write_image(root / split / f"{stem}{suffix}", np.concatenate([a, b_of(a)], axis=1))
                else:
                    write_image(root / split / "A" / f"{stem}{suffix}", a)
                    write_image(root / split / "B" / f"{stem}{suffix_b or suffix}", b_of(a))
            start += n
        return root

    return write


@pytest.fixture
def write_unpaired(tmp_path: Path) -> Callable[..., Path]:
    """write_unpaired(layout="split", *, root=None, n_a=5, n_b=3, n_test=2, size=64, suffix=".png") -> root.

    Domain A holds colour photos, domain B negatives of other photos. "split" writes trainA/trainB
    (n_a, n_b) and testA/testB (n_test each); "flat" writes A/B (n_a, n_b).
    """

    def write(layout: str = "split", *, root: Path | None = None, n_a: int = 5, n_b: int = 3,
              n_test: int = 2, size: Size = 64, suffix: str = ".png") -> Path:
        root = Path(root or tmp_path / f"unpaired_{layout}")
        if layout not in ("split", "flat"):
            raise ValueError(f"write_unpaired: unknown layout {layout!r}")
        counts = {"trainA": n_a, "trainB": n_b, "testA": n_test, "testB": n_test}
        if layout == "flat":
            counts = {"A": n_a, "B": n_b}
        images = _photos(sum(counts.values()), size)
        for folder, n in counts.items():
            for i in range(n):
                image = images.pop(0)
                image = negative(image) if folder.endswith("B") else image
                write_image(root / folder / f"{folder}_{i:03d}{suffix}", image)
        return root

    return write


def _train_then_kill(args: list[str], run: Path, *, min_step: int) -> int:
    """Run `python -m translate train ARGS` (checkpointing every step), SIGKILL it once its latest
    checkpoint has reached `min_step`, and return the step of the checkpoint it left behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from translate.checkpoint import CheckpointError, load_checkpoint

    cmd = [sys.executable, "-m", "translate", "train", *args, "--set", "runtime.checkpoint_every_steps=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = run / "checkpoints" / "latest.pt"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if latest.exists():
                try:
                    if load_checkpoint(run)["step"] >= min_step:
                        break
                except CheckpointError:
                    pass  # would be a torn write; the caller's load below then fails loudly
            time.sleep(0.05)
        assert proc.poll() is None, f"training exited early: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    return load_checkpoint(run)["step"]


@pytest.fixture
def train_then_kill() -> Callable[..., int]:
    """train_then_kill(args, run_dir, min_step=N) -> step of the checkpoint left after SIGKILL."""
    return _train_then_kill


@pytest.fixture(scope="session")
def metric_weights(tmp_path_factory) -> Path:
    """A weights folder of stand-ins for every metric network, with random parameters under the published
    files' names and layouts (InceptionV3 for FID/KID, AlexNet/VGG16 features and LPIPS layers), so the
    real loading code runs offline. Pass it as `MetricWeights(weights_dir=str(folder))`.

    The Inception stand-in's batch-norm statistics are calibrated on real photos: left at their
    initial values, its pool3 features are ~1e-8 for every image, every FID/KID is ~0, and a test
    fed the wrong image set could not fail."""
    import torch
    import torchvision

    from translate.integrity import pins
    from translate.weights import FEATURE_WEIGHTS

    pins.allow_unverified(True)  # random stand-ins under the pinned names: exactly what verification refuses
    folder = tmp_path_factory.mktemp("metric_weights")
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    inception = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    for module in inception.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running statistics = the calibration batch's own
    with torch.no_grad():
        inception.train()(torch.from_numpy(np.stack(_photos(8, 299))).permute(0, 3, 1, 2).float() / 128 - 1)
    torch.save(inception.state_dict(), folder / FEATURE_WEIGHTS["inception"].file)
    vgg16_features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])  # no 100M-weight head
    for name, net, channels in (("alex", torchvision.models.alexnet().features, (64, 192, 384, 256, 256)),
                                ("vgg", vgg16_features, (64, 128, 256, 512, 512))):
        backbone = "alexnet" if name == "alex" else "vgg16"
        features = {f"features.{k}": v for k, v in net.state_dict().items()}
        torch.save(features, folder / FEATURE_WEIGHTS[backbone].file)
        # The published layers are non-negative (clamped in training), which makes LPIPS a distance.
        layers = {f"lin{i}.model.1.weight": torch.rand((1, c, 1, 1), generator=generator) for i, c in enumerate(channels)}
        torch.save(layers, folder / FEATURE_WEIGHTS[f"lpips_{name}"].file)
    return folder


@pytest.fixture(scope="session")
def vgg19_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for torchvision's VGG19 ImageNet file: torchvision's own `features` layout (built by
    torchvision) with random values, plus a classifier key the perceptual loss must ignore. Written
    once per session, so the real loading code runs offline."""
    import torch
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in make_layers(cfgs["E"]).state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path_factory.mktemp("weights") / "vgg19-random.pth"
    torch.save(state, path)
    return path
