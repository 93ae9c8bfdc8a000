"""The parts of the SR GANs against small re-statements of the reference code (BasicSR, ESRGAN,
Real-ESRGAN): discriminator names and forward, VGG19 layer selection and the perceptual loss, the
relativistic GAN equations, weight averaging; plus the config rules they bring."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from translate.config import ConfigError
from translate.recipes import resolve_config
from translate.training.ema import WeightAverage
from translate.errors import ConfigError, WeightsError
from translate.losses import relativistic_gan_loss
from translate.nets import build_net, init_weights, preset
from translate.losses.perceptual import VGG19_LAYERS, PerceptualLoss, load_vgg19_features, perceptual_loss
from translate.weights import sha256_of


# --- reference re-statements (BasicSR's discriminator_arch.py, written out again) -------------------

class RefVGGStyleDiscriminator(nn.Module):
    """BasicSR VGGStyleDiscriminator: per stage k a 3x3 conv (+BN from stage 1) and a 4x4/2 conv + BN."""

    def __init__(self, num_in_ch, num_feat, input_size=128):
        super().__init__()
        self.stages = 5 if input_size == 128 else 6
        chans = [num_feat, num_feat * 2, num_feat * 4, num_feat * 8, num_feat * 8, num_feat * 8]
        cin = num_in_ch
        for k in range(self.stages):
            setattr(self, f"conv{k}_0", nn.Conv2d(cin, chans[k], 3, 1, 1, bias=k == 0))
            if k:
                setattr(self, f"bn{k}_0", nn.BatchNorm2d(chans[k], affine=True))
            setattr(self, f"conv{k}_1", nn.Conv2d(chans[k], chans[k], 4, 2, 1, bias=False))
            setattr(self, f"bn{k}_1", nn.BatchNorm2d(chans[k], affine=True))
            cin = chans[k]
        self.linear1 = nn.Linear(num_feat * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)

    def forward(self, x):
        lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        feat = lrelu(self.conv0_0(x))
        feat = lrelu(self.bn0_1(self.conv0_1(feat)))
        for k in range(1, self.stages):
            feat = lrelu(getattr(self, f"bn{k}_0")(getattr(self, f"conv{k}_0")(feat)))
            feat = lrelu(getattr(self, f"bn{k}_1")(getattr(self, f"conv{k}_1")(feat)))
        return self.linear2(lrelu(self.linear1(feat.view(feat.size(0), -1))))


class RefUNetDiscriminatorSN(nn.Module):
    """BasicSR / Real-ESRGAN UNetDiscriminatorSN."""

    def __init__(self, num_in_ch, num_feat=64, skip_connection=True):
        super().__init__()
        sn, f = nn.utils.spectral_norm, num_feat
        self.skip = skip_connection
        self.conv0 = nn.Conv2d(num_in_ch, f, 3, 1, 1)
        self.conv1 = sn(nn.Conv2d(f, f * 2, 4, 2, 1, bias=False))
        self.conv2 = sn(nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False))
        self.conv3 = sn(nn.Conv2d(f * 4, f * 8, 4, 2, 1, bias=False))
        self.conv4 = sn(nn.Conv2d(f * 8, f * 4, 3, 1, 1, bias=False))
        self.conv5 = sn(nn.Conv2d(f * 4, f * 2, 3, 1, 1, bias=False))
        self.conv6 = sn(nn.Conv2d(f * 2, f, 3, 1, 1, bias=False))
        self.conv7 = sn(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = sn(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x):
        lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        x0 = lrelu(self.conv0(x))
        x1 = lrelu(self.conv1(x0))
        x2 = lrelu(self.conv2(x1))
        x3 = lrelu(self.conv3(x2))
        x4 = lrelu(self.conv4(up(x3))) + (x2 if self.skip else 0)
        x5 = lrelu(self.conv5(up(x4))) + (x1 if self.skip else 0)
        x6 = lrelu(self.conv6(up(x5))) + (x0 if self.skip else 0)
        return self.conv9(lrelu(self.conv8(lrelu(self.conv7(x6)))))


def _same_names_and_output(ours: nn.Module, reference: nn.Module, x: torch.Tensor, *, train: bool) -> None:
    state = ours.state_dict()
    assert list(state) == list(reference.state_dict())  # the reference's names, in its order
    assert all(state[k].shape == v.shape for k, v in reference.state_dict().items())
    reference.load_state_dict(state)
    ours.train(train), reference.train(train)
    torch.testing.assert_close(ours(x)[0].flatten(), reference(x).flatten(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [128, 256])
def test_vgg_style_discriminator_is_basicsrs(size):
    torch.manual_seed(0)
    ours = build_net(preset(f"vgg_style_{size}", base_channels=4))
    _same_names_and_output(ours, RefVGGStyleDiscriminator(3, 4, size), torch.randn(2, 3, size, size), train=True)
    assert ours(torch.randn(2, 3, size, size))[0].shape == (2, 1, 1, 1)
    with pytest.raises(ValueError, match=f"must be {size}x{size} px, got 64x64"):
        ours(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_unet_discriminator_is_real_esrgans(skip, train):
    torch.manual_seed(0)
    ours = build_net(preset("unet_discriminator_sn", base_channels=4, in_channels=3, skip=skip))
    reference = RefUNetDiscriminatorSN(3, 4, skip)
    x = torch.randn(2, 3, 48, 32)
    _same_names_and_output(ours, reference, x, train=train)  # train: one power iteration each, same u
    assert ours(x)[0].shape == (2, 1, 48, 32)  # one logit per pixel
    with pytest.raises(ValueError, match="multiples of 8"):
        ours(torch.randn(1, 3, 36, 32))


def test_init_reaches_the_weights_under_classic_spectral_norm():
    net = build_net(preset("unet_discriminator_sn", base_channels=4))
    before = net.conv1.weight_orig.clone()
    init_weights(net, scheme="normal", gain=0.5)
    assert not torch.equal(before, net.conv1.weight_orig)
    assert net.conv1.weight_orig.std() > 0.3


def _sr_config(task: str, **overrides):
    return resolve_config("pix2pix", recipe=task, overrides=overrides)


def test_discriminator_sizes_are_checked_against_the_crop():
    with pytest.raises(ConfigError, match=r"^data.crop_size: 64 px, but discriminator 'vgg_style' judges exactly "
                                          r"128 px images; use --crop-size 128$"):
        _sr_config("esrgan", **{"data.crop_size": 64})
    with pytest.raises(ConfigError, match=r"^data.crop_size: 36 is not a multiple of 8, which discriminator "
                                          r"'unet_discriminator' needs"):
        _sr_config("realesrgan", **{"data.crop_size": 36, "data.load_size": 36})
    assert _sr_config("realesrgan", **{"data.crop_size": 64}).data.crop_size == 64


def test_config_rules_of_the_new_settings():
    with pytest.raises(ConfigError, match="^gan.loss: ragan .* is for pix2pix; cyclegan takes"):
        resolve_config("cyclegan", overrides={"gan.loss": "ragan"})
    with pytest.raises(ConfigError, match="^perceptual.layers: 'pool5' is not a VGG19 conv or relu layer"):
        _sr_config("esrgan", **{"perceptual.layers.pool5": 1.0})
    with pytest.raises(ConfigError, match="^perceptual.layers.conv5_4: must be a finite number >= 0, got -1"):
        _sr_config("esrgan", **{"perceptual.layers.conv5_4": -1})
    with pytest.raises(ConfigError, match="^perceptual.layers: pix2pix.lambda_perceptual is on but no layer"):
        _sr_config("esrgan", **{"perceptual.layers.conv5_4": 0})
    with pytest.raises(ConfigError, match=r"^optim.ema_decay: must be in \[0, 1\)"):
        _sr_config("esrgan", **{"optim.ema_decay": 1.0})
    # Maps merge key by key: a layer is added to the recipe's, and 0 drops one.
    config = _sr_config("esrgan", **{"perceptual.layers.relu2_2": 0.5})
    assert config.perceptual.layers == {"conv5_4": 1.0, "relu2_2": 0.5}


# --- VGG19 perceptual loss ----------------------------------------------------------------------------

def _torchvision_vgg19(path) -> nn.Sequential:
    """The reference trunk: torchvision's own VGG19 `features`, loaded from the same file."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["E"])
    state = torch.load(path, weights_only=True)
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")})
    for module in features:
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return features.eval()


_REFERENCE_ORDER = [  # BasicSR's NAMES["vgg19"]
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4", "pool5",
]


def _reference_features(features: nn.Sequential, x01: torch.Tensor, names) -> dict[str, torch.Tensor]:
    """BasicSR's VGGFeatureExtractor: ImageNet-normalise [0, 1] input, keep the named layers' outputs."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x, out = (x01 - mean) / std, {}
    for name, layer in zip(_REFERENCE_ORDER, features):
        x = layer(x)
        if name in names:
            out[name] = x.clone()
    return out


def test_vgg19_layer_names_follow_torchvisions_indices():
    assert VGG19_LAYERS == tuple(_REFERENCE_ORDER)
    assert len(VGG19_LAYERS) == 37 and VGG19_LAYERS.index("conv5_4") == 34 and VGG19_LAYERS.index("relu5_4") == 35
    assert [VGG19_LAYERS.index(n) for n in ("conv1_2", "conv2_2", "conv3_4", "conv4_4")] == [2, 7, 16, 25]


@pytest.mark.parametrize("name", ["conv1_2", "relu2_1", "conv5_4", "relu5_4"])
def test_vgg19_features_before_and_after_relu(vgg19_weights, photo, name):
    reference = _torchvision_vgg19(vgg19_weights)
    ours = load_vgg19_features(vgg19_weights, last_layer=name)
    x01 = torch.from_numpy(photo("astronaut", 32).copy()).permute(2, 0, 1)[None].float() / 255
    got = ours(x01, {name})[name]
    torch.testing.assert_close(got, _reference_features(reference, x01, {name})[name], rtol=1e-4, atol=1e-6)
    assert (got < 0).any() == name.startswith("conv")  # before the ReLU it has negatives
    assert len(ours.features) == VGG19_LAYERS.index(name) + 1  # nothing deeper is built


def test_perceptual_loss_by_hand(vgg19_weights, photo):
    """sum_l w_l * mean|phi_l(fake) - phi_l(target)| on [0, 1] images made from [-1, 1] ones (L1),
    and the mean squared difference (mse); the target gets no gradient."""
    reference = _torchvision_vgg19(vgg19_weights)
    weights = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    target = torch.from_numpy(photo("coffee", 32).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    fake = (target + 0.2 * torch.randn_like(target)).clamp(-1, 1).requires_grad_(True)
    features = load_vgg19_features(vgg19_weights, last_layer="conv5_4")
    want_fake = _reference_features(reference, (fake + 1) / 2, weights)
    want_target = _reference_features(reference, (target + 1) / 2, weights)
    for criterion, distance in (("l1", lambda a, b: (a - b).abs().mean()), ("mse", lambda a, b: ((a - b) ** 2).mean())):
        loss = PerceptualLoss(features, weights, criterion=criterion)
        expected = sum(w * distance(want_fake[n], want_target[n]) for n, w in weights.items())
        got = loss(fake, target)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)
        assert got > 0
    (grad,) = torch.autograd.grad(got, fake)
    assert grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())  # VGG is frozen


def test_perceptual_loss_from_config_records_the_file(vgg19_weights):
    config = _sr_config("realesrgan", **{"perceptual.weights": str(vgg19_weights)}).perceptual
    loss = perceptual_loss(config)
    assert loss.sha256 == sha256_of(vgg19_weights) and len(loss.sha256) == 64
    assert set(loss.layer_weights) == {"conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4"}
    assert len(loss.features.features) == VGG19_LAYERS.index("conv5_4") + 1


def test_vgg19_weights_problems_are_one_line(tmp_path, monkeypatch, vgg19_weights):
    config = _sr_config("esrgan").perceptual
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError, match=r"^vgg19: weights not found .*translate weights fetch vgg19"):
        perceptual_loss(config)
    with pytest.raises(WeightsError, match="no such weights file for vgg19"):
        perceptual_loss(dataclasses.replace(config, weights=str(tmp_path / "missing.pth")))
    other = tmp_path / "other.pth"
    torch.save({**torch.load(vgg19_weights, weights_only=True), "features.0.weight": torch.zeros(8, 3, 3, 3)}, other)
    with pytest.raises(WeightsError, match=r"features.0.weight is \(8, 3, 3, 3\), VGG19 has \(64, 3, 3, 3\)"):
        perceptual_loss(dataclasses.replace(config, weights=str(other)))
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(WeightsError, match="not torchvision VGG19 weights"):
        perceptual_loss(dataclasses.replace(config, weights=str(other)))
    other.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="^vgg19: .*other.pth"):
        perceptual_loss(dataclasses.replace(config, weights=str(other)))


# --- relativistic average GAN ---------------------------------------------------------------------

def _bce(logit: torch.Tensor, label: float) -> torch.Tensor:
    """-[y log s(x) + (1 - y) log(1 - s(x))], averaged, written out."""
    s = torch.sigmoid(logit)
    return -(label * torch.log(s) + (1 - label) * torch.log(1 - s)).mean()


def test_relativistic_gan_equations_by_hand():
    torch.manual_seed(0)
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    d_real, d_fake = torch.sigmoid(real - fake.mean()), torch.sigmoid(fake - real.mean())  # D_Ra(xr, xf), D_Ra(xf, xr)
    # ESRGAN eq. 1 and 2 (halved, as in the reference code)
    l_d = -0.5 * (torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    l_g = -0.5 * (torch.log(1 - d_real).mean() + torch.log(d_fake).mean())
    torch.testing.assert_close(relativistic_gan_loss(real, fake, for_discriminator=True), l_d)
    torch.testing.assert_close(relativistic_gan_loss(real, fake, for_discriminator=False), l_g)
    # BasicSR's form: cri_gan(real - mean(fake), True) etc.
    torch.testing.assert_close(l_d, 0.5 * (_bce(real - fake.mean(), 1) + _bce(fake - real.mean(), 0)))
    # Lists (one map per scale) are averaged over scales.
    both = relativistic_gan_loss([real, 2 * real], [fake, 2 * fake], for_discriminator=True)
    second = relativistic_gan_loss(2 * real, 2 * fake, for_discriminator=True)
    torch.testing.assert_close(both, (l_d + second) / 2)
    # A generator step that makes fakes look more real than reals lowers G's loss.
    assert relativistic_gan_loss(real, fake + 3, for_discriminator=False) < l_g


# --- weight averaging -------------------------------------------------------------------------------

def test_weight_average_by_hand():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    start = {k: v.clone() for k, v in net.state_dict().items()}
    average = WeightAverage({"g": net}, decay=0.9)
    expected = start["0.weight"].clone()
    for step in range(3):
        with torch.no_grad():
            net[0].weight.add_(1.0 + step)  # a "training step"
        net.train()(torch.randn(4, 2, 5, 5))  # moves batch-norm statistics
        average.update({"g": net})
        expected = 0.9 * expected + 0.1 * net[0].weight.detach()
    averaged = average.nets["g"].state_dict()
    torch.testing.assert_close(averaged["0.weight"], expected)
    torch.testing.assert_close(averaged["1.running_mean"], net[1].running_mean)  # copied, not averaged
    assert not torch.equal(averaged["1.running_mean"], start["1.running_mean"])
    assert not any(p.requires_grad for p in average.nets["g"].parameters()) and not average.nets["g"].training
    again = WeightAverage({"g": nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))}, decay=0.9)
    again.load_state_dict(average.state_dict())
    torch.testing.assert_close(again.nets["g"].state_dict()["0.weight"], expected)
    with pytest.raises(ConfigError, match="decay"):
        WeightAverage({"g": net}, decay=1.0)
