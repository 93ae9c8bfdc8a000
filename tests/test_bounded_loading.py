"""Bounded loading (issue 25 item 1): a tiny file cannot declare gigabytes (stride-0 views, an edited
spec), a refusal is one line with the numbers, and peak memory stays low (measured in this process)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from translate.checkpoint import load_file, save_checkpoint
from translate.errors import CheckpointError
from translate.inference.loading import load_models
from translate.integrity import bounds
from translate.nets import ResnetSpec, build_net, spec_to_dict

HUGE = ResnetSpec(base_channels=768)  # ~95M parameters, 5.4 GB when materialised in the report


def _stride0_state_dict(spec: ResnetSpec) -> dict[str, torch.Tensor]:
    """Every tensor of spec's net as a stride-0 view of one element: a few KB on disk."""
    shapes = bounds.meta_state_shapes(build_net, spec)
    return {k: torch.zeros(1).expand(s) if s else torch.zeros(()) for k, s in shapes.items()}


def _peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def _reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark for this process (Linux >= 4.0); returns the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")
    return _peak_rss_bytes()


@pytest.fixture
def stride0_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.pth"
    torch.save(_stride0_state_dict(HUGE), path)
    assert path.stat().st_size < 100_000
    return path


def test_stride0_weights_refused_with_low_peak_memory(stride0_file):
    before = _reset_peak_rss()
    with pytest.raises(CheckpointError) as err:
        load_models(stride0_file)
    grown = _peak_rss_bytes() - before
    message = str(err.value)
    assert "\n" not in message and str(stride0_file) in message and "bytes" in message
    assert grown < 1 << 30, f"peak memory grew by {grown / 2**30:.2f} GiB"


def test_edited_spec_refused_before_the_net_is_built(tmp_path):
    small = ResnetSpec(base_channels=4, n_blocks=2)
    path = tmp_path / "edited.pt"
    save_checkpoint(path, {"config": {"method": "pix2pix"}, "specs": {"g_ab": spec_to_dict(HUGE)},
                           "nets": {"g_ab": build_net(small).state_dict()}, "step": 0, "epoch": 0})
    before = _reset_peak_rss()
    with pytest.raises(CheckpointError) as err:
        load_models(path)
    grown = _peak_rss_bytes() - before
    message = str(err.value)
    assert "\n" not in message and "1,635,280,899 parameters" in message and len(message) < 400
    assert grown < 1 << 30, f"peak memory grew by {grown / 2**30:.2f} GiB"


def test_mismatched_shapes_named_briefly(tmp_path):
    path = tmp_path / "mismatch.pt"
    save_checkpoint(path, {"config": {"method": "pix2pix"}, "specs": {"g_ab": spec_to_dict(ResnetSpec(base_channels=8))},
                           "nets": {"g_ab": build_net(ResnetSpec(base_channels=4)).state_dict()}, "step": 0, "epoch": 0})
    with pytest.raises(CheckpointError, match=r"tensors of another shape \(first: model.1.weight \[4, 3, 7, 7\] there"):
        load_models(path)


def test_parameter_budget_refuses_and_the_flag_raises_it(tmp_path):
    spec = ResnetSpec(base_channels=16, n_blocks=2)
    path = tmp_path / "ok.pt"
    save_checkpoint(path, {"config": {"method": "pix2pix"}, "specs": {"g_ab": spec_to_dict(spec)},
                           "nets": {"g_ab": build_net(spec).state_dict()}, "step": 0, "epoch": 0})
    try:
        bounds.set_max_parameters(1000)
        with pytest.raises(CheckpointError, match="over the limit of 1,000"):
            load_models(path)
        bounds.set_max_parameters(10_000_000)
        assert load_models(path)[0].net is not None
    finally:
        bounds.set_max_parameters(bounds.DEFAULT_MAX_PARAMETERS)


def test_overlapping_views_and_views_past_the_end_refused(tmp_path):
    storage = torch.arange(16.0)
    overlapping = {"a": storage[:12], "b": storage[4:16]}  # 24 elements claimed over 16
    path = tmp_path / "overlap.pth"
    torch.save(overlapping, path)
    with pytest.raises(CheckpointError, match="overlapping"):
        load_file(path)
    honest = {"a": storage[:8], "b": storage[8:], "tied": storage[:8]}
    torch.save(honest, tmp_path / "honest.pth")
    assert set(load_file(tmp_path / "honest.pth")) == {"a", "b", "tied"}


@pytest.mark.parametrize("command", ["convert", "info", "export"])
def test_cli_refuses_in_one_line(stride0_file, tmp_path, command):
    args = {"convert": ["convert", str(stride0_file), str(tmp_path), str(tmp_path / "out")],
            "info": ["info", str(stride0_file)],
            "export": ["export", str(stride0_file), str(tmp_path / "x.onnx")]}[command]
    done = subprocess.run([sys.executable, "-m", "translate", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "storage" in lines[0], done.stderr
