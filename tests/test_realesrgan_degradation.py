"""Real-ESRGAN's second-order degradations: seeded determinism, output size, the ranges drawn over
many seeds, the blur kernels against re-statements of their equations, noise and USM targets."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from scipy import integrate, special

from translate.config import ConfigError
from translate.recipes import resolve_config
from translate.tasks.superres import SuperresSettings
from translate.data import realesrgan_degradation as realesrgan
from translate.tasks import get_task

RANGES = realesrgan.RealESRGANRanges()
PLANS = [realesrgan.draw_plan(np.random.default_rng(seed)) for seed in range(400)]
STAGES = {"first": [p.first for p in PLANS], "second": [p.second for p in PLANS]}


def _pair(image, seed, **options):
    make_pair = get_task("superres").pair_maker(SuperresSettings(degradation="realesrgan", **options))
    return make_pair(image, np.random.default_rng(seed))


def test_same_seed_same_bytes_and_seeds_differ(photo):
    image = photo("astronaut", 64)
    first, again = _pair(image, 7), _pair(image, 7)
    assert first[0].tobytes() == again[0].tobytes() and first[1].tobytes() == again[1].tobytes()
    inputs = {_pair(image, seed)[0].tobytes() for seed in range(6)}
    assert len(inputs) == 6


@pytest.mark.parametrize("scale, size, expected", [(4, (70, 90), (17, 22)), (2, (64, 48), (32, 24)),
                                                   (1, (40, 36), (40, 36))])
def test_input_is_the_target_divided_by_scale(photo, scale, size, expected):
    for seed in range(4):
        net_input, target = _pair(photo("coffee", size), seed, scale=scale)
        assert net_input.shape == (*expected, 3) and net_input.dtype == np.uint8
        assert target.shape == (expected[0] * scale, expected[1] * scale, 3)


def test_input_is_degraded_but_still_the_photo(photo):
    image = photo("chelsea", 128)
    net_input, target = _pair(image, 3)
    reference = cv2.resize(target, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    error = np.abs(net_input.astype(np.float32) - reference)
    assert 1.0 < error.mean() < 40.0  # changed by blur, noise and JPEG, yet the same picture


def test_jpeg_qualities_and_noise_strengths_stay_in_the_published_ranges():
    for name, stages in STAGES.items():
        ranges = getattr(RANGES, name)
        qualities = [s.jpeg_quality for s in stages]
        assert ranges.jpeg_quality[0] <= min(qualities) < 40 and 85 < max(qualities) <= ranges.jpeg_quality[1]
        assert all(isinstance(q, int) for q in qualities)
        sigmas = [s.noise.strength for s in stages if s.noise.kind == "gaussian"]
        scales = [s.noise.strength for s in stages if s.noise.kind == "poisson"]
        low, high = ranges.noise_sigma
        assert low <= min(sigmas) < low + 2 and high - 2 < max(sigmas) <= high
        low, high = ranges.poisson_scale
        assert low <= min(scales) < low + 0.2 and high - 0.2 < max(scales) <= high
        assert 0.35 < len(sigmas) / len(stages) < 0.65  # gaussian_noise_prob 0.5
        assert 0.25 < np.mean([s.noise.gray for s in stages]) < 0.55  # gray_noise_prob 0.4
    finals = [p.final_jpeg_quality for p in PLANS]
    assert RANGES.second.jpeg_quality[0] <= min(finals) and max(finals) <= RANGES.second.jpeg_quality[1]


def test_resize_factors_and_modes():
    for name, stages in STAGES.items():
        ranges = getattr(RANGES, name)
        factors = np.array([s.resize_factor for s in stages])
        assert ranges.resize_range[0] <= factors.min() and factors.max() <= ranges.resize_range[1]
        shares = [(factors > 1).mean(), (factors < 1).mean(), (factors == 1).mean()]
        assert np.allclose(shares, ranges.resize_probs, atol=0.08)
        assert {s.resize_mode for s in stages} == set(realesrgan.RESIZE_MODES)
    assert {p.sinc_before_jpeg for p in PLANS} == {True, False}


def test_kernels_are_odd_in_size_normalised_and_drawn_as_published():
    for name, stages in STAGES.items():
        kernels = [s.kernel for s in stages if s.kernel is not None]
        blur_share = len(kernels) / len(stages)
        assert abs(blur_share - getattr(RANGES, name).blur_prob) < 0.06
        finals = [p.final_sinc for p in PLANS if p.final_sinc is not None]
        for kernel in kernels + finals:
            assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
            assert 7 <= kernel.shape[0] <= 21
            assert kernel.sum() == pytest.approx(1.0, abs=1e-9)
        assert {k.shape[0] for k in kernels} == set(realesrgan.KERNEL_SIZES)
    assert abs(len(finals) / len(PLANS) - RANGES.final_sinc_prob) < 0.06


def _grid(size):
    offsets = np.arange(size) - size // 2
    xx, yy = np.meshgrid(offsets, offsets)
    return np.stack([xx, yy], axis=-1).astype(np.float64)


def test_anisotropic_gaussian_is_the_rotated_bivariate_normal():
    from scipy.stats import multivariate_normal

    sigma_x, sigma_y, theta = 2.5, 0.8, 0.6
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    covariance = rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T
    expected = multivariate_normal(mean=[0, 0], cov=covariance).pdf(_grid(15))
    expected /= expected.sum()
    np.testing.assert_allclose(realesrgan.gaussian_kernel(15, sigma_x, sigma_y, theta), expected, atol=1e-12)


def test_generalized_gaussian_with_beta_one_is_the_gaussian_and_plateau_follows_its_equation():
    args = (13, 1.7, 1.1, -0.4)
    np.testing.assert_allclose(realesrgan.generalized_gaussian_kernel(*args, beta=1.0),
                               realesrgan.gaussian_kernel(*args), atol=1e-12)
    assert not np.allclose(realesrgan.generalized_gaussian_kernel(*args, beta=3.0), realesrgan.gaussian_kernel(*args))
    # Isotropic plateau: 1 / (1 + (r^2 / sigma^2)^beta).
    sigma, beta = 2.0, 1.5
    radius_sq = (_grid(11) ** 2).sum(-1)
    expected = 1.0 / (1.0 + (radius_sq / sigma**2) ** beta)
    np.testing.assert_allclose(realesrgan.plateau_kernel(11, sigma, sigma, 0.0, beta), expected / expected.sum(),
                               atol=1e-12)


def test_sinc_kernel_is_the_inverse_transform_of_a_disk():
    # An ideal circular low-pass of cutoff w has the impulse response
    # h(r) = 1/(2 pi) * integral_0^w J0(rho r) rho d rho, integrated numerically here.
    cutoff, size = 2.0, 9
    radius = np.hypot(*np.moveaxis(_grid(size), -1, 0))
    response = np.vectorize(lambda r: integrate.quad(lambda rho: special.j0(rho * r) * rho, 0, cutoff)[0])(radius)
    np.testing.assert_allclose(realesrgan.sinc_kernel(size, cutoff), response / response.sum(), atol=1e-9)


def test_gray_noise_is_the_same_on_every_channel_and_gaussian_strength_is_sigma():
    image = np.full((96, 96, 3), 0.5, np.float32)
    rng = np.random.default_rng(0)
    gray = realesrgan.add_noise(image, realesrgan.Noise("gaussian", 10.0, gray=True), rng) - image
    colour = realesrgan.add_noise(image, realesrgan.Noise("gaussian", 10.0, gray=False), rng) - image
    assert np.array_equal(gray[:, :, 0], gray[:, :, 2]) and not np.array_equal(colour[:, :, 0], colour[:, :, 2])
    assert colour.std() * 255 == pytest.approx(10.0, rel=0.05)


def test_poisson_noise_grows_with_brightness_and_strength():
    rng = np.random.default_rng(0)
    ramp = np.repeat(np.linspace(0.05, 0.95, 64, dtype=np.float32)[None, :, None], 64, axis=0).repeat(3, axis=2)

    def spread(value, strength):
        noisy = realesrgan.add_noise(ramp, realesrgan.Noise("poisson", strength, gray=False), rng) - ramp
        column = int(np.argmin(np.abs(ramp[0, :, 0] - value)))
        return noisy[:, column - 2 : column + 3].std()

    assert spread(0.9, 1.0) > 1.5 * spread(0.1, 1.0)
    assert spread(0.5, 2.0) == pytest.approx(2 * spread(0.5, 1.0), rel=0.25)


def test_usm_target_sharpens_edges_and_leaves_flat_areas(photo):
    flat = np.full((64, 64, 3), 120, np.uint8)
    assert np.array_equal(realesrgan.unsharp_mask(flat), flat)
    step = np.zeros((64, 64, 3), np.uint8)
    step[:, 32:] = 200
    step[:, :32] = 40
    sharp = realesrgan.unsharp_mask(step)
    assert sharp[:, 32:36].max() > 200 and sharp[:, 28:32].min() < 40  # overshoot on both sides of the edge
    image = photo("rocket", 64)
    _, plain = _pair(image, 1)
    _, sharpened = _pair(image, 1, usm_target=True)
    assert np.array_equal(plain, image) and not np.array_equal(sharpened, image)


def test_degradation_is_a_config_setting():
    config = resolve_config("pix2pix", task="superres", assignments=["superres.degradation=realesrgan",
                                                                       "superres.usm_target=true"])
    assert config.task_settings.degradation == "realesrgan" and config.task_settings.usm_target
    with pytest.raises(ConfigError, match="superres.degradation"):
        resolve_config("pix2pix", task="superres", assignments=["superres.degradation=bsrgan"])
