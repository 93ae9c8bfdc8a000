"""Learned metrics: Fréchet distance and KID maths on synthetic features, LPIPS and Inception features
with stand-in weights (random parameters, published layouts), protocols and their records."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from translate.errors import WeightsError
from translate.metrics import PROTOCOLS, MetricWeights
from translate.metrics.distribution import (
    InceptionNet,
    fid_kid,
    frechet_distance,
    kernel_inception_distance,
    pool3,
    scores_from_features,
)
from translate.metrics.perceptual import LpipsNet, lpips_distances
from translate.weights import FEATURE_WEIGHTS


# --- Fréchet distance ---------------------------------------------------------------------------------
def frechet_restated(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch-fid's calculate_frechet_distance: |mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))."""
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("n_a, n_b, dims", [(300, 200, 6), (40, 25, 6)])  # more samples than dims, and fewer
def test_frechet_distance_is_the_published_equation(n_a, n_b, dims):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n_a, dims)) @ rng.normal(size=(dims, dims))
    b = rng.normal(0.5, 2.0, size=(n_b, dims))
    assert frechet_distance(a, b) == pytest.approx(frechet_restated(a, b), rel=1e-8)


def test_frechet_distance_with_fewer_samples_than_dimensions_is_exact():
    # The singular-covariance case of every small test set (N < 2048): the closed form via eigenvalues of
    # S1^1/2 S2 S1^1/2, computed here in the d x d space the low-rank shortcut avoids.
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(12, 30)), rng.normal(1.0, 1.5, size=(9, 30))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()
    diff = a.mean(0) - b.mean(0)
    expected = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-7)  # sqrt of its ~1e-15 zero eigenvalues


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    # Two Gaussians with diagonal covariances: d^2 = |mu1 - mu2|^2 + sum_i (sigma1_i - sigma2_i)^2.
    rng = np.random.default_rng(2)
    mu1, mu2 = np.array([0.0, 1.0, -1.0, 2.0]), np.array([0.5, 1.0, 0.0, 1.0])
    sigma1, sigma2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([2.0, 1.0, 0.5, 3.0])
    a = mu1 + sigma1 * rng.normal(size=(40000, 4))
    b = mu2 + sigma2 * rng.normal(size=(40000, 4))
    closed_form = float(((mu1 - mu2) ** 2).sum() + ((sigma1 - sigma2) ** 2).sum())
    assert frechet_distance(a, b) == pytest.approx(closed_form, rel=0.02)


def test_fid_of_a_set_with_itself_is_zero():
    features = np.random.default_rng(3).normal(size=(20, 64)) * 10
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(features, features + 1.0) == pytest.approx(64.0, rel=1e-9)  # a shifted mean only


# --- KID -----------------------------------------------------------------------------------------------
def test_kid_matches_a_hand_computation():
    # Binkowski et al.: unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3. Subsets as large as the sets are the
    # sets themselves (reordered), so every subset gives the full-set value and the std is 0.
    a = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 2.0, 0.0], [1.0, 1.0, 1.0]])
    b = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 1.0], [2.0, 1.0, 2.0], [1.0, 3.0, 1.0]])
    m, d = 4, 3

    def k(x, y):
        return (x @ y / d + 1) ** 3

    within = sum(k(a[i], a[j]) + k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(k(a[i], b[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = kernel_inception_distance(a, b, subsets=5, subset_size=4, seed=0)
    assert mean == pytest.approx(within - 2 * across, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)
    mean, std = kernel_inception_distance(np.vstack([a, b]), np.vstack([b, a]), subsets=20, subset_size=3, seed=0)
    assert std > 0  # real subsets of 3 out of 8 differ


def test_scores_skip_below_the_protocol_counts_and_say_why():
    rng = np.random.default_rng(4)
    protocol = replace(PROTOCOLS["torch-fidelity"], min_images_fid=10, min_images_kid=4)
    result = scores_from_features(rng.normal(size=(6, 8)), rng.normal(size=(7, 8)), protocol, inception=None)
    assert result["fid"] is None and result["kid"] is not None and result["kid_std"] is not None
    assert result["skipped"] == {"fid": "FID needs at least 10 generated and 10 real images under this protocol; "
                                        "there are 6 and 7"}
    record = result["protocol"]
    assert (record["name"], record["images_generated"], record["images_real"], record["kid_subset_size_used"],
            record["seed"]) == ("torch-fidelity", 6, 7, 6, 2020)
    assert record["versions"]["torch-fidelity"] != "not installed"


# --- LPIPS ----------------------------------------------------------------------------------------------
_TAPS = {"alex": ("alexnet", (1, 4, 7, 9, 11)), "vgg": ("vgg16", (3, 8, 15, 22, 29))}  # the ReLUs LPIPS reads


def lpips_restated(folder, net: str, a: np.ndarray, b: np.ndarray) -> float:
    """Zhang et al. 2018 eq. 1: sum over layers l of mean_hw |w_l * (unit-normalised f_l(a) - f_l(b))|^2,
    on torchvision's backbone after LPIPS's input scaling layer."""
    import torchvision

    backbone, taps = _TAPS[net]
    features = (torchvision.models.alexnet().features if net == "alex"  # vgg16's: without its 100M-weight head
                else torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])).eval()
    state = torch.load(folder / FEATURE_WEIGHTS[backbone].file, weights_only=True)
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    layers = torch.load(folder / FEATURE_WEIGHTS[f"lpips_{net}"].file, weights_only=True)
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def normalised_taps(image):
        x = (torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1 - shift) / scale
        out = []
        for index, layer in enumerate(features[: taps[-1] + 1]):
            x = layer(x)
            if index in taps:
                out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    with torch.no_grad():
        total = sum(((fa - fb) ** 2 * layers[f"lin{i}.model.1.weight"]).sum(dim=1).mean()
                    for i, (fa, fb) in enumerate(zip(normalised_taps(a), normalised_taps(b))))
    return float(total)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_is_zero_for_equal_images_and_grows_with_noise(net, metric_weights, photo):
    model = LpipsNet.load(net, MetricWeights(weights_dir=str(metric_weights)))
    image = photo("astronaut", 32)
    rng = np.random.default_rng(0)
    noisy = [np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8) for sigma in (4, 16, 48)]
    distances = model.distances([image, *noisy], [image] * 4)
    assert distances[0] == 0.0
    assert distances[1] < distances[2] < distances[3]
    assert distances[2] == pytest.approx(lpips_restated(metric_weights, net, noisy[1], image), rel=1e-4)


def test_lpips_records_its_weights_and_refuses_wrong_files(metric_weights, photo, tmp_path):
    weights = MetricWeights(weights_dir=str(metric_weights))
    model = LpipsNet.load("alex", weights)
    assert model.weights["backbone"]["file"] == "alexnet-owt-7be5be79.pth"
    assert model.weights["backbone"]["published"] is False  # a stand-in: its numbers are not comparable
    small = photo("coffee", 24)
    assert math.isnan(lpips_distances([small], [small], model=model)[0])  # below AlexNet's smallest input
    with pytest.raises(WeightsError, match="not torchvision alex"):
        LpipsNet.load("alex", replace(weights, lpips_backbone=str(metric_weights / FEATURE_WEIGHTS["vgg16"].file)))
    with pytest.raises(WeightsError, match="not LPIPS v0.1 alex linear layers"):
        LpipsNet.load("alex", replace(weights, lpips_layers=str(metric_weights / FEATURE_WEIGHTS["lpips_vgg"].file)))
    garbage = tmp_path / "x.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="x.pth") as info:
        LpipsNet.load("alex", replace(weights, lpips_layers=str(garbage)))
    assert "\n" not in str(info.value)


# --- Inception features, FID / KID end to end ----------------------------------------------------------
@pytest.fixture(scope="module")
def inception(metric_weights):
    return InceptionNet.load(MetricWeights(weights_dir=str(metric_weights)))


def test_pool3_is_torch_fidelitys_forward(inception, photo):
    # At 299x299 the TF1 resize is the identity, so the library's forward is pool3 of (x - 128) / 128.
    batch = torch.from_numpy(photo("chelsea", 299).copy()).permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = inception.net(batch)[0]
        assert torch.allclose(pool3(inception.net, (batch.float() - 128) / 128), expected, atol=1e-5)


def test_pytorch_fid_protocol_is_its_preprocessing(inception, photos):
    # pytorch-fid on the CUT/CycleGAN test images: PIL bicubic to 256x256, ToTensor, bilinear to 299, 2x - 1.
    from PIL import Image

    images = photos(2, 40)
    resized = [np.asarray(Image.fromarray(im).resize((256, 256), Image.Resampling.BICUBIC)) for im in images]
    x = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float() / 255
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    with torch.no_grad():
        expected = pool3(inception.net, x).double().numpy()
    assert np.allclose(inception.features(images, PROTOCOLS["pytorch-fid"]), expected, atol=1e-5)


def test_fid_kid_end_to_end(inception, photos):
    protocol = replace(PROTOCOLS["torch-fidelity"], min_images_fid=3, min_images_kid=3)
    images = photos(6, 32)
    other = fid_kid(images[:3], images[3:], protocol=protocol, net=inception)
    assert other["fid"] > 0 and other["kid_std"] >= 0
    features = inception.features(images[:3], protocol)
    same = scores_from_features(features, features.copy(), protocol, inception=inception.weights)
    # The unbiased KID of a set against itself is not 0 (its cross term keeps the diagonal), but it is
    # below that of a different set; the hand computation above checks the formula itself.
    assert same["fid"] == pytest.approx(0.0, abs=1e-6) and same["kid"] < other["kid"]
    assert other["protocol"]["inception_weights"]["file"] == FEATURE_WEIGHTS["inception"].file
    assert len(other["protocol"]["inception_weights"]["sha256"]) == 64


def test_fid_kid_skip_without_loading_anything(tmp_path, photos):
    result = fid_kid(photos(2, 32), photos(2, 32), weights=MetricWeights(weights_dir=str(tmp_path)))
    assert result["fid"] is None and set(result["skipped"]) == {"fid", "kid"}


def test_inception_refuses_other_weights(metric_weights):
    with pytest.raises(WeightsError, match="not InceptionV3 FID weights") as info:
        InceptionNet(metric_weights / FEATURE_WEIGHTS["alexnet"].file)
    assert "\n" not in str(info.value)


def test_metric_libraries_load_only_when_a_learned_metric_runs():
    import subprocess
    import sys

    code = ("import sys; from translate.cli import build_parser; build_parser(); import translate.evaluation; "
            "from translate.metrics import psnr, PROTOCOLS, why_unavailable, MetricWeights; "
            "why_unavailable('lpips', MetricWeights()); "
            "print([m for m in sys.modules if m.split('.')[0] in ('lpips', 'torch_fidelity')])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_missing_library_is_one_line_saying_how_to_install(monkeypatch, metric_weights):
    import sys

    from translate.errors import ConfigError
    from translate.metrics import why_unavailable

    monkeypatch.setitem(sys.modules, "lpips", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"lpips: needs the lpips package \(pip install 'translate\[metrics\]'\)"):
        LpipsNet.load("alex", MetricWeights(weights_dir=str(metric_weights)))
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "torch_fidelity" else object())
    assert why_unavailable("kid", MetricWeights()) == \
        "the torch-fidelity package is not installed (pip install 'translate[metrics]')"


def test_colourfulness_is_hasler_and_suesstrunks_equation():
    from translate.metrics import colourfulness

    # Two pixels: pure red (255, 0, 0) and grey (100, 100, 100).
    image = np.array([[[255, 0, 0], [100, 100, 100]]], np.uint8)
    rg, yb = [255.0, 0.0], [127.5, 0.0]  # R - G; (R + G) / 2 - B
    std = lambda v: math.sqrt(sum((x - sum(v) / 2) ** 2 for x in v) / 2)  # noqa: E731  population std
    expected = math.sqrt(std(rg) ** 2 + std(yb) ** 2) + 0.3 * math.sqrt((sum(rg) / 2) ** 2 + (sum(yb) / 2) ** 2)
    assert colourfulness(image) == pytest.approx(expected)
    assert colourfulness(image.astype(np.uint16) * 257) == pytest.approx(expected)  # same 0-255 scale
    assert colourfulness(image / 255.0) == pytest.approx(expected)
    assert colourfulness(np.full((8, 8, 3), 77, np.uint8)) == 0.0


def test_colourfulness_orders_a_photo_above_its_washed_out_copy(photo):
    from translate.metrics import colourfulness

    image = photo("coffee", 48).astype(np.float64)
    grey = image.mean(axis=2, keepdims=True)
    washed = (grey + 0.3 * (image - grey)).round().astype(np.uint8)
    assert colourfulness(image.astype(np.uint8)) > colourfulness(washed) > 0
