"""Pull-push hole filling (Gortler et al. 1996) and the U-Net that refines it for inpainting."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from translate.errors import ConfigError
from translate.metrics import psnr
from translate.nets import build_net, preset
from translate.nets.fill import pull_push_fill
from translate.tasks.inpaint import random_mask


def _known(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(mask == 0).float()[None, None]


def test_known_pixels_are_kept_and_a_constant_image_stays_constant():
    rng = np.random.default_rng(0)
    mask = random_mask(37, 53, rng)  # odd sizes: border blocks overhang at every level
    known = _known(mask)
    image = torch.rand(1, 3, 37, 53) * 2 - 1
    filled = pull_push_fill(image, known)
    assert torch.equal(filled[known.expand_as(image) > 0], image[known.expand_as(image) > 0])
    constant = torch.full((1, 3, 37, 53), 0.3)
    torch.testing.assert_close(pull_push_fill(constant * known, known), constant)


def test_a_hole_takes_the_weighted_means_of_the_pyramid_by_hand():
    # 2x2 image, one hole: level 1 is one block, weight min(1, 3) = 1, value the mean of the three
    # known pixels; pushing back, the hole (weight 0) takes that value, upsampled (a constant).
    image = torch.tensor([[[[0.2, 0.6], [-0.4, 9.0]]]])
    known = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])
    filled = pull_push_fill(image, known)
    assert filled[0, 0, 1, 1].item() == pytest.approx((0.2 + 0.6 - 0.4) / 3)
    # 1x4 row, known at the ends: level 1 blocks [a, hole] and [hole, b] each keep their known
    # pixel (weight min(1, 2 * 0.5) = 1), so the holes take bilinear blends of a and b.
    row = torch.tensor([[[[1.0, 0.0, 0.0, -1.0]]]])
    known = torch.tensor([[[[1.0, 0.0, 0.0, 1.0]]]])
    filled = pull_push_fill(row, known)[0, 0, 0]
    # Bilinear x2 (half-pixel centres) from [1, -1]: 1, 0.5, -0.5, -1.
    torch.testing.assert_close(filled, torch.tensor([1.0, 0.5, -0.5, -1.0]))


def test_an_image_with_no_known_pixel_fills_with_mid_grey():
    filled = pull_push_fill(torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16, 16))
    assert torch.equal(filled, torch.zeros(1, 3, 16, 16))


def test_fill_is_about_as_good_as_telea_inside_holes_of_real_photos(photo):
    ours, telea = [], []
    for seed, name in enumerate(("astronaut", "chelsea", "coffee", "rocket")):
        image = photo(name, 128)
        mask = random_mask(128, 128, np.random.default_rng(seed), area_min=0.1, area_max=0.3)
        hole = mask > 0
        x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        filled = pull_push_fill(x, _known(mask))[0].permute(1, 2, 0).numpy()
        filled = np.clip(np.round((filled + 1) * 127.5), 0, 255).astype(np.uint8)
        ours.append(psnr(filled[hole], image[hole], data_range=255))
        telea.append(psnr(cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA)[hole], image[hole], data_range=255))
    assert np.mean(ours) > np.mean(telea) - 1.0, (ours, telea)


def test_prefill_unet_adds_its_output_to_the_fill():
    spec = preset("unet_128", num_downs=4, base_channels=4, in_channels=4, out_channels=3, prefill=True)
    net = build_net(spec).eval()
    x = torch.rand(1, 4, 32, 32) * 2 - 1
    x[:, 3] = torch.where(torch.rand(32, 32) < 0.3, -1.0, 1.0)  # alpha: -1 hole, 1 known
    fill = pull_push_fill(x[:, :3], (x[:, 3:] > 0).float())
    with torch.no_grad():
        inner = net.model(torch.cat([fill, x[:, 3:]], dim=1))
        torch.testing.assert_close(net(x), (fill + inner).clamp(-1, 1))
        outermost_up = net.model.model[-2]  # the last transposed conv, before tanh
        outermost_up.weight.zero_()
        outermost_up.bias.zero_()
        torch.testing.assert_close(net(x), fill)  # a zero correction gives the fill itself


def test_prefill_needs_an_image_plus_a_known_channel():
    with pytest.raises(ConfigError, match="prefill: needs the image plus a known-pixel channel"):
        preset("unet_128", in_channels=3, out_channels=3, prefill=True)


def test_prefill_inpainting_net_exports_with_parity(tmp_path, photo):
    pytest.importorskip("onnxruntime")
    from test_export import load, write_checkpoint

    from translate.export.write import PARITY_TOLERANCE, check_parity, export_model
    from translate.tasks.inpaint import masked_input

    spec = preset("unet_128", num_downs=5, base_channels=8, in_channels=4, out_channels=3, prefill=True)
    checkpoint = write_checkpoint(tmp_path / "inpaint.pt", spec,
                                  config={"method": "pix2pix", "task": "inpaint", "direction": "a_to_b"})
    translator = load(checkpoint)
    report = export_model(translator, tmp_path / "inpaint.onnx")
    assert report.max_abs_diff is not None and report.max_abs_diff <= PARITY_TOLERANCE
    holed = [masked_input(photo(name, size), random_mask(*size, np.random.default_rng(i)))
             for i, (name, size) in enumerate([("rocket", (150, 97)), ("coffee", (64, 200))])]
    assert check_parity(tmp_path / "inpaint.onnx", translator, holed) <= PARITY_TOLERANCE
