"""Export: ONNX and torch.export (.pt2) parity with PyTorch on real photos, dynamic shapes, the embedded
contract, overwrite safety, paper mode, the CLI, and the torch-free ONNX plugin example."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from translate import Translator
from translate.checkpoint import save_checkpoint
from translate.cli import main
from translate.data.images import read_image, write_image
from translate.export.write import (
    DEFAULT_OPSET, METADATA_KEY, MIN_OPSET, PARITY_TOLERANCE, ExportError, check_parity, export_model,
    read_contract,
)
from translate.nets import build_net, preset, spec_to_dict

pytest.importorskip("onnxruntime")
import onnxruntime as ort  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = {
    "unet": preset("unet_128", num_downs=5, base_channels=8),  # batch norm; no dropout at 5 levels
    "resnet": preset("resnet_9blocks", n_blocks=2, base_channels=8),  # instance norm
    "resnet_x2": preset("resnet_6blocks", n_blocks=1, base_channels=4, upscale=2),  # super-resolution
    "resnet_antialias": preset("resnet_9blocks_antialias", n_blocks=1, base_channels=4),  # CUT
}
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2"}
CONFIG = {"method": "pix2pix", "task": "custom", "direction": "a_to_b"}
# Where the trainer kept its data: must not travel inside exported files.
PRIVATE = {"data": {"root": "/home/trainer/private_photos", "load_size": 286},
           "runtime": {"device": "auto", "log_dir": "C:\\Users\\trainer\\logs"}}


def write_checkpoint(path: Path, spec, *, seed: int = 0, config: dict | None = None) -> Path:
    """A minimal pix2pix checkpoint holding one generator g_ab built from `spec`."""
    torch.manual_seed(seed)
    net = build_net(spec)
    if any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()):
        # Non-trivial running statistics, so eval-mode batch norm is really exercised.
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    save_checkpoint(path, {"config": dict(CONFIG if config is None else config),
                           "specs": {"g_ab": spec_to_dict(spec)}, "nets": {"g_ab": net.state_dict()},
                           "step": 0, "epoch": 0})
    return path


def load(path: Path, **kwargs) -> Translator:
    return Translator.load(path, device="cpu", precision="fp32", **kwargs)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(arch, format) -> (path, translator, report): every generator exported once per format."""
    root = tmp_path_factory.mktemp("export")
    out = {}
    umask = os.umask(0o022)  # the usual umask: exports must then be 0644 like any file
    try:
        for arch, spec in SPECS.items():
            checkpoint = write_checkpoint(root / f"{arch}.pt", spec, config={**CONFIG, **PRIVATE})
            translator = load(checkpoint)
            for fmt, suffix in SUFFIXES.items():
                path = root / f"{arch}_model{suffix}"
                out[arch, fmt] = (path, translator, export_model(translator, path))
    finally:
        os.umask(umask)
    return out


CASES = [(arch, fmt) for arch in SPECS for fmt in SUFFIXES]


@pytest.mark.parametrize("arch,fmt", CASES, ids=[f"{a}-{f}" for a, f in CASES])
def test_export_matches_pytorch_on_photos_of_other_sizes(exported, arch, fmt, photo):
    path, translator, report = exported[arch, fmt]
    assert report.max_abs_diff is not None and report.max_abs_diff <= PARITY_TOLERANCE
    # Exported with a 64x64 example; photos at other (odd) sizes prove the dynamic H/W axes.
    images = [photo("rocket", (150, 97)), photo("motorcycle", (64, 200)), photo("camera", (41, 29))]
    diff = check_parity(path, translator, images)
    assert diff <= PARITY_TOLERANCE


@pytest.mark.parametrize("arch", list(SPECS))
def test_onnx_runs_batches_at_any_multiple_of_the_size(exported, arch):
    path, translator, _ = exported[arch, "onnx"]
    x = torch.rand(2, 3, 96, 160, generator=torch.Generator().manual_seed(1)) * 2 - 1
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [d for d in session.get_inputs()[0].shape] == ["batch", 3, "height", "width"]
    got = session.run(None, {"input": x.numpy()})[0]
    with torch.inference_mode():
        expected = translator.net(x).numpy()
    s = translator.scale
    assert got.shape == (2, 3, 96 * s, 160 * s)
    assert np.abs(got - expected).max() <= PARITY_TOLERANCE


@pytest.mark.parametrize("fmt", list(SUFFIXES))
def test_contract_round_trips_through_the_file(exported, fmt):
    path, translator, report = exported["unet", fmt]
    contract = read_contract(path)
    assert contract == json.loads(json.dumps(report.contract))
    assert contract["input"] == {"name": "input", "layout": "NCHW", "dtype": "float32", "channels": 3,
                                 "range": [-1.0, 1.0]}
    assert contract["output"]["channels"] == 3
    assert (contract["size_multiple"], contract["scale"], contract["min_side"]) == (32, 1, 32)
    assert (contract["task"], contract["direction"], contract["mode"]) == ("custom", "a_to_b", "eval")
    assert contract["stochastic"] is False
    assert contract["spec"] == spec_to_dict(SPECS["unet"])
    # The config travels without the trainer's file system (data.root, absolute paths).
    assert contract["config"] == {**CONFIG, "data": {"load_size": 286}, "runtime": {"device": "auto"}}
    assert b"trainer" not in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    from translate import __version__
    assert contract["translate_version"] == __version__
    if fmt == "onnx":  # what a plugin reads, with nothing but onnxruntime
        meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
        assert json.loads(meta.custom_metadata_map[METADATA_KEY]) == contract


def test_export_never_overwrites_unless_asked(exported, tmp_path):
    _, translator, _ = exported["resnet", "onnx"]
    path = tmp_path / "model.pt2"
    path.write_bytes(b"precious")
    with pytest.raises(ExportError, match="already exists"):
        export_model(translator, path, check=False)
    assert path.read_bytes() == b"precious"
    export_model(translator, path, overwrite=True, check=False)
    assert read_contract(path)["spec"]["kind"] == "resnet"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt2"]  # no temp files left
    with pytest.raises(ExportError, match="unknown export format"):
        export_model(translator, tmp_path / "model.tflite")


def test_opset_is_written_as_asked_or_refused(exported, tmp_path):
    import onnx

    _, translator, _ = exported["resnet", "onnx"]
    newest = onnx.defs.onnx_opset_version()
    for opset in (MIN_OPSET - 1, newest + 1, 99):  # torch alone would log a traceback and write 18
        with pytest.raises(ExportError, match=f"opset: {opset} cannot be written; use {MIN_OPSET} to {newest}"):
            export_model(translator, tmp_path / "model.onnx", opset=opset, check=False)
    assert not list(tmp_path.iterdir())
    path = export_model(translator, tmp_path / "model.onnx", opset=DEFAULT_OPSET + 2, check=False).path
    assert {entry.version for entry in onnx.load(path).opset_import if entry.domain in ("", "ai.onnx")} == {
        DEFAULT_OPSET + 2}


def test_write_failure_is_an_export_error_naming_the_file(exported, tmp_path):
    _, translator, _ = exported["resnet", "onnx"]
    (tmp_path / "taken").write_text("a file where the output folder should be")
    path = tmp_path / "taken" / "model.pt2"
    with pytest.raises(ExportError, match=r"model.pt2: cannot write the export \(.*File exists"):
        export_model(translator, path, check=False)


def test_failed_parity_check_writes_nothing(exported, tmp_path, photo):
    _, translator, _ = exported["resnet", "onnx"]
    path = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match="parity check failed"):
        export_model(translator, path, tolerance=0.0)  # fp32 reorderings alone exceed 0
    assert not path.exists() and not list(tmp_path.iterdir())
    # The check sees a real difference: another net's weights against this export.
    other = load(write_checkpoint(tmp_path / "other.pt", SPECS["resnet"], seed=1))
    for fmt in SUFFIXES:
        assert check_parity(exported["resnet", fmt][0], other, [photo("coffee", (40, 56))]) > 1e-2


def test_paper_mode_bakes_in_per_image_batch_norm_and_live_dropout(tmp_path, photo):
    spec = preset("unet_128", num_downs=6, base_channels=8)  # 6 levels: one level has dropout
    checkpoint = write_checkpoint(tmp_path / "unet6.pt", spec)
    paper = load(checkpoint, mode="paper")
    onnx_path, pt2_path = tmp_path / "paper.onnx", tmp_path / "paper.pt2"
    reports = [export_model(paper, onnx_path), export_model(paper, pt2_path)]
    for report in reports:  # checked with every dropout unit kept on both sides
        assert report.max_abs_diff <= PARITY_TOLERANCE
        assert report.contract["mode"] == "paper" and report.contract["stochastic"] is True
    # Default ONNX Runtime options would delete an ONNX Dropout node; ours survives: outputs vary.
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    first, second = session.run(None, {"input": x})[0], session.run(None, {"input": x})[0]
    assert np.abs(first - second).max() > 1e-3
    # ...and differs from eval mode (running averages, no dropout) by more than noise.
    eval_out = load(checkpoint).net(torch.from_numpy(x)).detach().numpy()
    assert np.abs(first - eval_out).mean() > 1e-3


def test_paper_mode_without_dropout_matches_the_translator(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "unet5.pt", SPECS["unet"])
    paper = load(checkpoint, mode="paper")  # per-image batch norm, deterministic
    report = export_model(paper, tmp_path / "paper5.pt2")
    assert report.contract["stochastic"] is False and report.max_abs_diff <= PARITY_TOLERANCE


def test_cli_export_checks_and_refuses_to_overwrite(tmp_path, capsys):
    checkpoint = write_checkpoint(tmp_path / "resnet.pt", SPECS["resnet"])
    out = tmp_path / "model.onnx"
    assert main(["export", str(checkpoint), str(out)]) == 0
    text = capsys.readouterr().out
    assert "parity vs PyTorch" in text and "max abs diff" in text
    assert read_contract(out)["spec"]["kind"] == "resnet"
    assert main(["export", str(checkpoint), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(checkpoint), str(out), "--overwrite", "--no-check", "--mode", "paper"]) == 0
    assert "parity check skipped" in capsys.readouterr().out
    assert read_contract(out)["mode"] == "paper"
    assert main(["export", str(checkpoint), str(tmp_path / "model.zip")]) == 2
    assert "unknown export format" in capsys.readouterr().err


# ---------------------------------------------------------------- examples/onnx_plugin.py
_RUN_PLUGIN = """
import runpy, sys
sys.argv = ["onnx_plugin.py", *sys.argv[1:]]
try:
    runpy.run_path({plugin!r}, run_name="__main__")
except SystemExit as e:
    if e.code not in (0, None):
        raise
assert "torch" not in sys.modules, "the plugin imported torch"
"""


def run_plugin(*args: str) -> str:
    code = _RUN_PLUGIN.format(plugin=str(ROOT / "examples" / "onnx_plugin.py"))
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_onnx_plugin_without_torch_matches_translator(exported, tmp_path, photo):
    path, translator, _ = exported["unet", "onnx"]
    image = photo("astronaut", (83, 101))
    source = tmp_path / "in.png"
    write_image(source, image)
    whole, tiled = tmp_path / "whole.png", tmp_path / "tiled.png"
    assert "custom a_to_b" in run_plugin(str(path), str(source), str(whole))
    run_plugin(str(path), str(source), str(tiled), "--tile-size", "64", "--overlap", "16")
    checkpoint = translator.model.source
    expected = {whole: translator(image), tiled: load(checkpoint, tile_size=64, overlap_px=16)(image)}
    for output, reference in expected.items():
        got = read_image(output)
        assert got.shape == reference.shape and got.dtype == np.uint8
        diff = np.abs(got.astype(int) - reference.astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.01, f"{output.name}: max {diff.max()}, mean {diff.mean():.4f}"
    assert not np.array_equal(read_image(whole), read_image(tiled))  # really tiled
