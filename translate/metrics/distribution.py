"""FID and KID: how far the Inception features of generated images are from those of real ones.

Images are HxWx3 uint8 RGB arrays (what a saved PNG holds: every FID convention scores 8-bit files).
The Inception network and the KID estimator are torch-fidelity's: its network is the bit-exact port of
the original TF FID graph (torchmetrics wraps the same one), and using it directly lets one feature pass
serve both FID and KID and a training run keep the real images' features between evaluations. The
Fréchet distance is computed here: torch-fidelity takes tr sqrt(S_a S_b) from the eigenvalues of a
non-symmetric 2048x2048 product (35 s on our 2-core CPU, and noisy when N < 2048 makes the covariances
singular), while the identity below gives the same number exactly in well under a second.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from translate.errors import CheckpointError, WeightsError, first_line
from translate.metrics.protocol import (
    DEFAULT_PROTOCOL,
    MetricWeights,
    Protocol,
    get_protocol,
    import_library,
    record,
    weights_record,
)
from translate.weights import sha256_of

FEATURE_DIMS = 2048  # Inception pool3, the features of FID and KID
# torch-fidelity's InceptionV3 from its input convolution to pool3, in forward order (the module names
# are those of the weights file, so they are fixed by it).
_TO_POOL3 = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
             "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
             "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool")


class InceptionNet:
    """InceptionV3 pool3 features under a protocol, from a located weights file (never downloaded)."""

    def __init__(self, path: str | Path, *, device: str | torch.device = "cpu"):
        from translate.checkpoint import load_file

        import_library("fid")
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = Path(path)
        try:  # our weights-only read first: torch-fidelity's own read would unpickle arbitrary objects
            load_file(path)
        except CheckpointError as e:
            raise WeightsError(f"inception: {e}") from e
        try:
            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
        except RuntimeError as e:  # a state dict of another network: missing / unexpected keys, shapes
            raise WeightsError(f"{path}: not InceptionV3 FID weights ({first_line(e)})") from e
        self.net = net.to(device)
        self.device = torch.device(device)
        self.weights = weights_record("inception", path, sha256_of(path))

    @classmethod
    def load(cls, weights: MetricWeights | None = None, *, device: str | torch.device = "cpu") -> InceptionNet:
        """The network from `weights` (explicit file, weights folder, then torch.hub's cache)."""
        return cls((weights or MetricWeights()).locate("inception"), device=device)

    @torch.no_grad()
    def features(self, images: Sequence[np.ndarray], protocol: Protocol, *, batch_size: int = 16) -> np.ndarray:
        """(N, 2048) float64 pool3 features of HxWx3 uint8 RGB images, prepared as `protocol` says."""
        if protocol.image_size:
            images = [_resize_square(image, protocol.image_size) for image in images]
        out = [self._pool3(torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).to(self.device), protocol)
               for batch in _same_size_batches(images, batch_size)]
        return torch.cat(out).double().cpu().numpy() if out else np.zeros((0, FEATURE_DIMS))

    def _pool3(self, batch: torch.Tensor, protocol: Protocol) -> torch.Tensor:
        if protocol.inception_input == "tf1-bilinear":
            return self.net(batch)[0]  # torch-fidelity's own path: TF1 bilinear resize, (x - 128) / 128
        # pytorch-fid's InceptionV3.forward (resize_input, normalize_input) on ToTensor()'s [0, 1] floats.
        x = torch.nn.functional.interpolate(batch.float() / 255, size=(299, 299), mode="bilinear", align_corners=False)
        return pool3(self.net, 2 * x - 1)


def pool3(extractor: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, 2048) pool3 features of torch-fidelity's InceptionV3 for (N, 3, 299, 299) inputs already scaled to [-1, 1]."""
    for name in _TO_POOL3:
        x = getattr(extractor, name)(x)
    return torch.flatten(x, 1)


def _check_images(images: Sequence[np.ndarray]) -> None:
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"FID/KID images must be HxWx3 uint8 RGB, got {image.shape} {image.dtype}")


def _same_size_batches(images: Sequence[np.ndarray], batch_size: int) -> Iterator[list[np.ndarray]]:
    """Consecutive images of one shape, at most batch_size at a time, in order."""
    _check_images(images)
    batch: list[np.ndarray] = []
    for image in images:
        if batch and (len(batch) == batch_size or image.shape != batch[0].shape):
            yield batch
            batch = []
        batch.append(image)
    if batch:
        yield batch


def _resize_square(image: np.ndarray, side: int) -> np.ndarray:
    """PIL bicubic resize to side x side: torchvision's Resize on PIL images, which the papers' test scripts use."""
    from PIL import Image

    if image.shape[:2] == (side, side):
        return image
    return np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance of Gaussians fitted to two (N, D) feature sets (Heusel et al. 2017, eq. 6):
    |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)), with unbiased (N-1) covariances."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Fréchet distance needs at least 2 feature vectors per set, got {len(a)} and {len(b)}")
    centred_a, centred_b = a - a.mean(axis=0), b - b.mean(axis=0)
    if min(len(a), len(b)) <= a.shape[1]:
        # S_a S_b = A'A B'B / ((n_a-1)(n_b-1)) has the non-zero eigenvalues of (AB')(AB')' / ((n_a-1)(n_b-1)),
        # so tr (S_a S_b)^(1/2) is the sum of the singular values of AB' / sqrt((n_a-1)(n_b-1)).
        cross = centred_a @ centred_b.T / math.sqrt((len(a) - 1) * (len(b) - 1))
        trace_sqrt = float(np.linalg.svd(cross, compute_uv=False).sum())
    else:  # S_a^(1/2) S_b S_a^(1/2) is symmetric, with the eigenvalues of S_a S_b
        eigenvalues, vectors = np.linalg.eigh(np.cov(a, rowvar=False))
        root_a = (vectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T
        product = root_a @ np.cov(b, rowvar=False) @ root_a
        trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh(product), 0, None)).sum())
    mean_diff = a.mean(axis=0) - b.mean(axis=0)
    trace_a = float((centred_a**2).sum()) / (len(a) - 1)
    trace_b = float((centred_b**2).sum()) / (len(b) - 1)
    # Rounding leaves about -1e-12 for identical sets; a distance is never negative.
    return max(0.0, float(mean_diff @ mean_diff) + trace_a + trace_b - 2 * trace_sqrt)


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray, *, subsets: int, subset_size: int,
                              seed: int) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): mean and std over random subsets of the unbiased MMD^2 with the
    cubic polynomial kernel k(x, y) = (x.y / D + 1)^3 — torch-fidelity's estimator and subset draws."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    result = kid_features_to_metric(torch.as_tensor(features_a, dtype=torch.float64),
                                    torch.as_tensor(features_b, dtype=torch.float64), kid_subsets=subsets,
                                    kid_subset_size=subset_size, rng_seed=seed, verbose=False)
    return result[KEY_METRIC_KID_MEAN], result[KEY_METRIC_KID_STD]


def too_few_images(n_generated: int, n_real: int, protocol: Protocol, metrics: Sequence[str]) -> dict[str, str]:
    """{metric: reason} for each of `metrics` that has fewer images than the protocol asks for."""
    needed = {"fid": protocol.min_images_fid, "kid": protocol.min_images_kid}
    return {m: f"{m.upper()} needs at least {needed[m]} generated and {needed[m]} real images under this "
               f"protocol; there are {n_generated} and {n_real}"
            for m in metrics if min(n_generated, n_real) < needed[m]}


def scores_from_features(generated: np.ndarray, real: np.ndarray, protocol: Protocol, *,
                         inception: dict[str, Any] | None, metrics: Sequence[str] = ("fid", "kid")) -> dict[str, Any]:
    """FID / KID from pool3 features, each skipped (with the reason) below the protocol's image counts.

    Returns {"fid", "kid", "kid_std": float or None, "skipped": {metric: reason}, "protocol": record}."""
    n_generated, n_real = len(generated), len(real)
    subset_size = min(protocol.kid_subset_size, n_generated, n_real)
    result: dict[str, Any] = {"fid": None, "kid": None, "kid_std": None,
                              "skipped": too_few_images(n_generated, n_real, protocol, metrics)}
    if "fid" in metrics and "fid" not in result["skipped"]:
        result["fid"] = frechet_distance(generated, real)
    if "kid" in metrics and "kid" not in result["skipped"]:
        result["kid"], result["kid_std"] = kernel_inception_distance(
            generated, real, subsets=protocol.kid_subsets, subset_size=subset_size, seed=protocol.seed)
    result["protocol"] = record(protocol, images_generated=n_generated, images_real=n_real,
                                kid_subset_size_used=subset_size, extractor="InceptionV3 pool3 (2048-d), torch-fidelity",
                                inception_weights=inception)
    return result


def fid_kid(generated: Sequence[np.ndarray], real: Sequence[np.ndarray], *, protocol: Protocol | str = DEFAULT_PROTOCOL,
            weights: MetricWeights | None = None, net: InceptionNet | None = None, device: str | torch.device = "cpu",
            metrics: Sequence[str] = ("fid", "kid")) -> dict[str, Any]:
    """FID and KID of generated vs real HxWx3 uint8 RGB images (see `scores_from_features` for the result).

    `net` reuses a loaded InceptionNet; otherwise one loads from `weights` (a WeightsError when absent)."""
    protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
    if len(too_few_images(len(generated), len(real), protocol, metrics)) == len(metrics):
        # Nothing to measure: no network to load; the (N, 0) stand-ins carry the counts.
        return scores_from_features(np.zeros((len(generated), 0)), np.zeros((len(real), 0)), protocol,
                                    inception=None, metrics=metrics)
    net = net or InceptionNet.load(weights, device=device)
    return scores_from_features(net.features(generated, protocol), net.features(real, protocol), protocol,
                                inception=net.weights, metrics=metrics)
