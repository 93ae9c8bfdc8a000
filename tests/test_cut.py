"""CUT / FastCUT: anti-aliased resampling, encoder taps, patch sampling, PatchNCE, CUT weights."""
from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from translate.errors import TranslateError
from translate import Translator
from translate.checkpoint import load_checkpoint
from translate.cli import main
from translate.config import ConfigError, TrainConfig
from translate.recipes import config_from_dict, resolve_config
from translate.export.write import export_model, read_contract
from translate.inference.loading import load_model
from translate.losses import patch_nce_loss
from translate.methods.cut import CUT
from translate.metrics import ssim
from translate.nets import PRESETS, PatchGanSpec, ResnetSpec, build_net, init_weights
from translate.nets.antialias import BlurDownsample, BlurUpsample
from translate.nets.patch_sample import PatchSampler
from translate.nets.reference import detect_reference_generator, load_reference_generator
from translate.training.loop import Trainer, train

BLUR_DOWN = torch.tensor([1.0, 2.0, 1.0]) / 4  # per axis; written out, not taken from the code
BLUR_UP = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 4


# --- anti-aliased resampling ----------------------------------------------------------------

def test_downsample_impulses():
    down = BlurDownsample(2)
    x = torch.zeros(1, 2, 8, 8)
    x[0, 0, 4, 4] = 1.0  # an even pixel is the centre of output (2, 2)
    x[0, 1, 3, 5] = 1.0  # an odd pixel is shared by the four outputs around it
    y = down(x)
    expected = torch.zeros(2, 4, 4)
    expected[0, 2, 2] = BLUR_DOWN[1] ** 2
    expected[1, 1:3, 2:4] = BLUR_DOWN[0] * BLUR_DOWN[2]
    torch.testing.assert_close(y[0], expected)


def test_upsample_impulse():
    up = BlurUpsample(1)
    x = torch.zeros(1, 1, 6, 6)
    x[0, 0, 2, 3] = 1.0
    y = up(x)[0, 0]
    expected = torch.zeros(12, 12)
    expected[3:7, 5:9] = BLUR_UP[:, None] * BLUR_UP[None, :]  # outputs 2i-1 .. 2i+2
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("height,width", [(8, 8), (7, 10), (5, 3)])
def test_constant_images_stay_constant(height, width):
    x = torch.full((2, 3, height, width), 0.7)
    down, up = BlurDownsample(3)(x), BlurUpsample(3)(x)
    assert down.shape == (2, 3, math.ceil(height / 2), math.ceil(width / 2))
    assert up.shape == (2, 3, 2 * height, 2 * width)
    torch.testing.assert_close(down, torch.full_like(down, 0.7))
    torch.testing.assert_close(up, torch.full_like(up, 0.7))


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_antialiased_patchgan_min_size_and_field(n_layers):
    spec = PatchGanSpec(in_channels=1, base_channels=4, n_layers=n_layers, norm="none",
                        antialias=True)
    torch.manual_seed(0)
    net = build_net(spec)
    assert net(torch.randn(1, 1, spec.min_size, spec.min_size))[0].shape[2:] == (1, 1)
    with pytest.raises(RuntimeError):
        net(torch.randn(1, 1, spec.min_size - 1, spec.min_size - 1))
    x = torch.randn(1, 1, 200, 200, requires_grad=True)
    logits = net(x)[0]
    logits[0, 0, logits.shape[2] // 2, logits.shape[3] // 2].backward()
    rows = x.grad[0, 0].abs().sum(dim=1).nonzero()
    assert rows.max() - rows.min() + 1 == spec.receptive_field


def test_antialiased_patchgan_keys_match_cut():
    # CUT's NLayerDiscriminator: conv, lrelu, Downsample, then (conv, norm, lrelu, Downsample) x2,
    # conv, norm, lrelu, conv.
    spec = PatchGanSpec(in_channels=3, base_channels=4, norm="instance", antialias=True)
    assert list(build_net(spec).state_dict()) == [
        "model.0.weight", "model.0.bias", "model.2.filt", "model.3.weight", "model.3.bias",
        "model.6.filt", "model.7.weight", "model.7.bias", "model.10.filt",
        "model.11.weight", "model.11.bias", "model.14.weight", "model.14.bias",
    ]
    with pytest.raises(TranslateError, match="antialias"):
        PatchGanSpec(n_layers=0, antialias=True)


# --- encoder taps ---------------------------------------------------------------------------

@pytest.mark.parametrize("antialias", [False, True])
def test_tap_shapes(antialias):
    spec = ResnetSpec(base_channels=4, n_blocks=5, antialias=antialias)
    net = build_net(spec)
    x = torch.randn(2, 3, 32, 32)
    taps = ("input", "down1", "down2", "block1", "block5")
    feats = net.encode(x, taps)
    # A stride-2 conv halves at once; the anti-aliased conv keeps the size and the blur after it
    # (outside the tap) halves.
    down1, down2 = (32, 16) if antialias else (16, 8)
    sides = {"input": 38, "down1": down1, "down2": down2, "block1": 8, "block5": 8}
    for name, feat in zip(taps, feats):
        assert feat.shape == (2, spec.tap_channels(name), sides[name], sides[name]), name
    assert net.encode(x, ["block1", "input"])[1].shape == feats[0].shape  # the order asked for


def test_taps_are_cuts_nce_layers_and_share_the_forward_modules():
    spec = ResnetSpec(base_channels=4, n_blocks=9, antialias=True)
    net = build_net(spec).eval()
    taps = ("input", "down1", "down2", "block1", "block5")
    assert [net.tap_index[name] for name in taps] == [0, 4, 8, 12, 16]  # CUT's 0,4,8,12,16
    x = torch.randn(1, 3, 32, 32)
    (block9,) = net.encode(x, ["block9"])
    rest = net.model[net.tap_index["block9"] + 1:]
    torch.testing.assert_close(rest(block9), net(x))


def test_unknown_tap_is_rejected():
    net = build_net(ResnetSpec(base_channels=4, n_blocks=2))
    with pytest.raises(ValueError, match="block3"):
        net.encode(torch.randn(1, 3, 16, 16), ["block3"])


# --- PatchNCE -------------------------------------------------------------------------------

def test_patch_nce_by_hand():
    # One image, two patches, 2-d unit features. q0 = k0 (dot 1), q1 . k1 = 0.6, q0 . k1 = 0,
    # q1 . k0 = 0.8.
    q = torch.tensor([[[1.0, 0.0], [0.8, 0.6]]])
    k = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    t = 0.5
    # Row i: logits [q_i.k_i, (q_i.k_0 or -10), (q_i.k_1 or -10)] / t, target index 0.
    row0 = -1.0 / t + math.log(math.exp(1.0 / t) + math.exp(-10.0 / t) + math.exp(0.0 / t))
    row1 = -0.6 / t + math.log(math.exp(0.6 / t) + math.exp(0.8 / t) + math.exp(-10.0 / t))
    loss = patch_nce_loss([q], [k], temperature=t, weight=3.0)
    assert loss.item() == pytest.approx(3.0 * (row0 + row1) / 2, rel=1e-6)
    # Averaged over layers: a second layer with q = k (orthogonal patches) loses, per patch,
    # -log(e^(1/t) / (e^(1/t) + e^(-10/t) + e^(0/t))).
    second = math.log(1.0 + math.exp(-11.0 / t) + math.exp(-1.0 / t))
    two = patch_nce_loss([q, k], [k, k], temperature=t)
    assert two.item() == pytest.approx(((row0 + row1) / 2 + second) / 2, rel=1e-6)


def test_patch_nce_negatives_come_from_the_same_image_and_keys_are_detached():
    torch.manual_seed(0)
    q = F.normalize(torch.randn(2, 5, 8), dim=-1).requires_grad_(True)
    k = F.normalize(torch.randn(2, 5, 8), dim=-1).requires_grad_(True)
    both = patch_nce_loss([q], [k])
    apart = (patch_nce_loss([q[:1]], [k[:1]]) + patch_nce_loss([q[1:]], [k[1:]])) / 2
    torch.testing.assert_close(both, apart)
    both.backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert k.grad is None


# --- patch sampler --------------------------------------------------------------------------

def feature_maps(seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, 10, 10, generator=gen), torch.randn(2, 8, 4, 4, generator=gen)]


def test_patch_sampler_shapes_and_unit_norm():
    sampler = PatchSampler([3, 8], mlp_channels=16, seed=1)
    feats = feature_maps()
    where = sampler.sample_locations(feats, num_patches=20)
    assert [len(w) for w in where] == [20, 16]  # capped at H*W = 16
    assert all(len(set(w.tolist())) == len(w) for w in where)
    out = sampler(feats, where)
    assert [o.shape for o in out] == [(2, 20, 16), (2, 16, 16)]
    torch.testing.assert_close(out[0].norm(dim=-1), torch.ones(2, 20))
    # Row p of image n is the MLP of the feature at location where[p] of that image.
    location = where[0][3].item()
    patch = feats[0][1, :, location // 10, location % 10]
    torch.testing.assert_close(out[0][1, 3], F.normalize(sampler.mlps[0](patch), dim=0))


def test_patch_sampler_is_seeded_and_its_rng_restores():
    feats = feature_maps()
    a, b = PatchSampler([3, 8], seed=7), PatchSampler([3, 8], seed=7)
    draws = [w.tolist() for w in a.sample_locations(feats, 6)]
    assert draws == [w.tolist() for w in b.sample_locations(feats, 6)]
    assert draws != [w.tolist() for w in PatchSampler([3, 8], seed=8).sample_locations(feats, 6)]
    saved = a.state_dict()
    following = [w.tolist() for w in a.sample_locations(feats, 6)]
    assert following != draws  # the stream moves on
    restored = PatchSampler([3, 8], seed=0)
    restored.load_state_dict(saved)
    assert [w.tolist() for w in restored.sample_locations(feats, 6)] == following
    torch.testing.assert_close(restored.mlps[1][2].weight, a.mlps[1][2].weight)


# --- CUT's released generator weights -------------------------------------------------------

# CUT's ResnetGenerator, n_blocks=2, anti-aliased: pad, conv7, norm, relu, 2 x (conv, norm, relu,
# Downsample), blocks at 12 and 13, 2 x (Upsample, conv, norm, relu), pad, conv7, tanh.
CUT_RESNET2_KEYS = [
    "model.1.weight", "model.1.bias", "model.4.weight", "model.4.bias", "model.7.filt",
    "model.8.weight", "model.8.bias", "model.11.filt",
    *(f"model.{b}.conv_block.{i}.{p}" for b in (12, 13) for i in (1, 5) for p in ("weight", "bias")),
    "model.14.filt", "model.15.weight", "model.15.bias",
    "model.18.filt", "model.19.weight", "model.19.bias",
    "model.23.weight", "model.23.bias",
]


def test_cut_generator_keys_and_size_match_the_release():
    assert list(build_net(ResnetSpec(n_blocks=2, base_channels=4, antialias=True)).state_dict()) \
        == CUT_RESNET2_KEYS
    with torch.device("meta"):
        net = build_net(ResnetSpec(n_blocks=9, antialias=True))
    sd = net.state_dict()
    assert tuple(sd["model.30.weight"].shape) == (3, 64, 7, 7)
    assert tuple(sd["model.25.filt"].shape) == (128, 1, 4, 4)
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 3) == 11.378  # as CUT prints


def blur_down(h):
    kernel = (BLUR_DOWN[:, None] * BLUR_DOWN[None, :]).expand(h.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(h, [1] * 4, mode="reflect"), kernel, stride=2, groups=h.shape[1])


def blur_up(h):
    kernel = (BLUR_UP[:, None] * BLUR_UP[None, :]).expand(h.shape[1], 1, 4, 4)
    out = F.conv_transpose2d(F.pad(h, [1] * 4, mode="replicate"), kernel, stride=2, padding=2,
                             groups=h.shape[1])
    return out[:, :, 1:, 1:][:, :, :-1, :-1]  # the reference's two crops for an even filter


def reference_cut_resnet(sd, x, n_blocks):
    """CUT's anti-aliased ResnetGenerator re-stated as functions of the state dict."""
    def conv(h, i, **kw):
        return F.conv2d(h, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], **kw)

    def pad(h, amount):
        return F.pad(h, [amount] * 4, mode="reflect")

    def inorm_relu(h):
        return F.relu(F.instance_norm(h))

    h = inorm_relu(conv(pad(x, 3), 1))
    h = blur_down(inorm_relu(conv(h, 4, padding=1)))
    h = blur_down(inorm_relu(conv(h, 8, padding=1)))
    for b in range(12, 12 + n_blocks):
        r = inorm_relu(conv(pad(h, 1), f"{b}.conv_block.1"))
        h = h + F.instance_norm(conv(pad(r, 1), f"{b}.conv_block.5"))
    i = 12 + n_blocks
    h = inorm_relu(conv(blur_up(h), i + 1, padding=1))
    h = inorm_relu(conv(blur_up(h), i + 5, padding=1))
    return torch.tanh(conv(pad(h, 3), i + 9))


def test_cut_generator_computes_the_reference_function():
    torch.manual_seed(0)
    net = build_net(ResnetSpec(n_blocks=2, base_channels=2, antialias=True)).eval()
    init_weights(net, scheme="normal", gain=0.3)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(net(x), reference_cut_resnet(net.state_dict(), x, 2))


@pytest.mark.parametrize("spec", [
    ResnetSpec(n_blocks=2, base_channels=4, antialias=True),
    ResnetSpec(n_blocks=3, base_channels=4, in_channels=1, norm="batch", antialias=True),
], ids=str)
def test_cut_weights_are_detected_and_load(spec):
    torch.manual_seed(0)
    net = build_net(spec).eval()
    saved = {f"module.{k}": v for k, v in net.state_dict().items()}  # as DataParallel saves
    assert detect_reference_generator(saved) == spec
    x = torch.randn(1, spec.in_channels, 16, 16)
    torch.testing.assert_close(load_reference_generator(saved)(x), net(x))


def test_half_anti_aliased_weights_are_rejected():
    # CUT's --no_antialias_up alone gives blur downsampling with transposed-conv upsampling,
    # a layout the spec cannot express: it must fail by name, not load wrongly.
    plain = build_net(ResnetSpec(n_blocks=1, base_channels=4)).state_dict()
    mixed = {**plain, "model.7.filt": torch.zeros(8, 1, 3, 3)}
    with pytest.raises(TranslateError, match="do not match"):
        load_reference_generator(mixed)


# --- the method -----------------------------------------------------------------------------

# Grey-level SSIM of output to input (either polarity) after the 40-step run below: an untrained
# generator gives about 0.08 on this photo, the trained one 0.26.
SSIM_BOUND = 0.18
TINY_CUT = {"generator.n_blocks": 1, "generator.base_channels": 8, "discriminator.base_channels": 8,
            "cut.nce_layers": "input,down1,down2,block1", "cut.num_patches": 64,
            "data.crop_size": 64, "data.load_size": 64, "runtime.log_every_steps": 1}


def tiny_cut(method: str, data, **overrides):
    return resolve_config(method, overrides={**TINY_CUT, "data.root": str(data), **overrides})


def test_presets_follow_the_paper():
    cut, fast = resolve_config("cut"), resolve_config("fastcut")
    assert cut.generator == PRESETS["resnet_9blocks_antialias"] and cut.gan.loss == "lsgan"
    assert cut.discriminator.antialias and cut.discriminator.norm == "instance"
    assert (cut.method_settings.nce_idt, cut.method_settings.lambda_nce, cut.method_settings.flip_equivariance) == (True, 1.0, False)
    assert (fast.method_settings.nce_idt, fast.method_settings.lambda_nce, fast.method_settings.flip_equivariance) == (False, 10.0, True)
    assert (fast.optim.epochs, fast.optim.epochs_decay) == (150, 50)
    assert cut.method_settings.nce_layers == "input,down1,down2,block1,block5" and cut.method_settings.num_patches == 256
    assert config_from_dict(yaml.safe_load(fast.to_yaml())) == fast


@pytest.mark.parametrize("overrides,words", [
    ({"cut.nce_layers": "input,block12"}, "cut.nce_layers: 'block12'"),
    ({"generator": "unet_128"}, "generator: cut compares ResNet"),
    ({"generator.in_channels": 1}, "cut.nce_idt"),
    ({"direction": "b_to_a"}, "direction"),
    ({"cut.nce_t": 0}, "cut.nce_t: must be a finite number > 0"),
    ({"cut.num_patches": 0}, "cut.num_patches: must be at least 1"),
])
def test_bad_cut_settings_are_named(tmp_path, overrides, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        CUT(resolve_config("cut", overrides={"data.root": str(tmp_path), **overrides}))


def test_one_generator_pass_serves_both_nce_terms():
    torch.manual_seed(0)
    method = CUT(tiny_cut("cut", "unused"))
    assert method.update_order == ("discriminator", "generator")
    assert "patch_sampler" in method.generator_names  # so in G's optimiser
    assert method.inference_names == ("g_ab",)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    out = method({"a": a, "b": b})
    assert out["fake"].shape[0] == 4 and out["idt_b"].shape[0] == 2
    assert len(out["real_taps"]) == len(method.taps)  # the keys come from this pass, not a second
    g, sampler = method.nets["g_ab"], method.nets["patch_sampler"]
    before = sampler.rng.get_state()
    losses = method.generator_losses(out)
    assert set(losses) == {"G_GAN", "NCE"}
    # (NCE_X + NCE_Y) / 2 with the same patch locations: re-run the two halves on their own.
    sampler.rng.set_state(before)  # rewind the location RNG

    def nce(real, fake):
        keys = g(real, taps=method.taps)
        where = sampler.sample_locations(keys, 64)
        return where, sampler(keys, where), sampler(g(fake, taps=method.taps), where)

    where, keys, queries = nce(out["real"], out["fake"])
    halves = [patch_nce_loss([q[s] for q in queries], [k[s] for k in keys])
              for s in (slice(0, 2), slice(2, 4))]
    torch.testing.assert_close(losses["NCE"], sum(halves) / 2)
    losses["NCE"].backward()
    assert all(p.grad is not None for p in sampler.parameters())
    assert method.nets["g_ab"].model[1].weight.grad is not None


def test_cut_learns_on_real_photos_and_converts_with_the_generator_alone(tmp_path, write_unpaired, photo):
    data = write_unpaired("split", n_a=4, n_b=4, n_test=1)
    config = tiny_cut("cut", data, **{"optim.epochs": 0, "optim.epochs_decay": 0, "runtime.max_steps": 40,
                                      "optim.lr_g": 1e-3, "optim.lr_d": 1e-3})
    result = train(config=config, run_dir=tmp_path / "run")
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert {"D", "G_GAN", "NCE"} <= set(header)
    nce = [float(r.split(",")[header.index("NCE")]) for r in rows[1:]]
    assert np.mean(nce[-5:]) < 0.8 * np.mean(nce[:5]), nce
    assert "vs_input_ssim" in result.val_metrics
    loaded = load_model(tmp_path / "run")
    assert loaded.net_name == "g_ab" and loaded.method == "cut" and loaded.spec.antialias
    numbered = sorted((tmp_path / "run" / "checkpoints").glob("step_*.pt"))
    assert numbered and set(load_checkpoint(numbered[-1])["nets"]) == {"g_ab"}
    # B is A's negative: the structure must survive in either polarity.
    image = torch.from_numpy(photo("astronaut").copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        out = loaded.net(image)[0]
    grey_in, grey_out = (((t + 1) / 2).mean(0, keepdim=True).permute(1, 2, 0).numpy()
                         for t in (image[0], out.clamp(-1, 1)))
    kept = max(ssim(grey_out, grey_in, data_range=1.0), ssim(grey_out, 1 - grey_in, data_range=1.0))
    assert kept >= SSIM_BOUND, kept


@pytest.mark.parametrize("method", ["cut", "fastcut"])
def test_resume_is_exact_including_the_patch_and_flip_rngs(tmp_path, write_unpaired, method):
    data = write_unpaired("split", n_a=3, n_b=2, n_test=0)
    schedule = {"optim.epochs": 1, "optim.epochs_decay": 1}
    straight = train(config=tiny_cut(method, data, **schedule), run_dir=tmp_path / "straight")
    train(config=tiny_cut(method, data, **schedule, **{"runtime.max_steps": 4}), run_dir=tmp_path / "resumed")
    resumed = train(run_dir=tmp_path / "resumed", resume=True, overrides={"runtime.max_steps": 0})
    assert resumed.step == straight.step == 6
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert set(a["nets"]) == {"g_ab", "d_b", "patch_sampler"}
    for net in a["nets"]:
        for key, value in a["nets"][net].items():
            torch.testing.assert_close(value, b["nets"][net][key], rtol=0, atol=0, msg=f"{net}.{key}")


def test_two_torchrun_ranks_keep_identical_replicas(tmp_path, write_unpaired):
    data = write_unpaired("split", n_a=4, n_b=3, n_test=0)
    run = tmp_path / "run"
    tiny = [arg for key, value in TINY_CUT.items() for arg in ("--set", f"{key}={value}")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
           "-m", "translate", "train", "cut", "--data", str(data), "--out", str(run), *tiny,
           "--max-steps", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(run)
    sums = ckpt["replica_checksums"]
    assert ckpt["step"] == 3 and len(sums) == 2 and sums[0] == sums[1]


def test_fastcut_trains_from_the_cli_on_the_flat_layout_and_exports_the_generator_alone(tmp_path, write_unpaired):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    data = write_unpaired("flat", n_a=3, n_b=3)  # ROOT/A + ROOT/B, as CycleGAN reads it
    run = tmp_path / "run"
    tiny = [arg for key, value in TINY_CUT.items() for arg in ("--set", f"{key}={value}")]
    assert main(["train", "fastcut", "--data", str(data), "--out", str(run), *tiny, "--max-steps", "2"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["method"] == "fastcut" and saved["cut"]["flip_equivariance"] and not saved["cut"]["nce_idt"]
    nets = load_checkpoint(run)["nets"]  # latest.pt: the whole training state, F included
    assert set(nets) == {"g_ab", "d_b", "patch_sampler"}
    report = export_model(Translator.load(run, device="cpu", precision="fp32"), tmp_path / "fastcut.onnx")
    assert report.max_abs_diff is not None and read_contract(report.path)["method"] == "fastcut"
    # The export is G's forward alone (plus a few ONNX shape constants): F's weights are not in it.
    exported = sum(int(np.prod(t.dims)) for t in onnx.load(str(report.path)).graph.initializer)
    generator = sum(t.numel() for t in nets["g_ab"].values() if t.is_floating_point())
    sampler = sum(t.numel() for t in nets["patch_sampler"].values() if t.is_floating_point())
    assert exported < generator + sampler, (exported, generator, sampler)


def test_init_from_and_weight_averages_take_the_generator_not_the_patch_sampler(tmp_path, write_unpaired):
    data = write_unpaired("split", n_a=2, n_b=2, n_test=0)
    first = train(config=tiny_cut("cut", data, **{"runtime.max_steps": 1}), run_dir=tmp_path / "first")
    config = tiny_cut("cut", data, **{"init_from": str(first.checkpoint), "optim.ema_decay": 0.9,
                                      "runtime.seed": 1})
    trainer = Trainer(config, tmp_path / "second")
    saved = load_checkpoint(first.checkpoint)["nets"]
    for key, value in trainer.method.nets["g_ab"].state_dict().items():
        torch.testing.assert_close(value, saved["g_ab"][key], rtol=0, atol=0, msg=key)
    assert set(trainer.ema.nets) == {"g_ab"}
