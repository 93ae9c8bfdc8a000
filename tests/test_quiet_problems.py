"""Issue 25 item 7, the quieter problems: honest messages on random bytes and raw pickles (no torch
warning), absurd --tile-size and --max-megapixels inf refused by name."""
from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from translate import Translator
from translate.errors import TranslatorError
from translate.nets import ResnetSpec, build_net


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "translate", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_random_bytes_and_raw_pickles_are_called_unreadable_without_torch_warnings(tmp_path):
    noise = tmp_path / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    raw = tmp_path / "raw.pth"
    raw.write_bytes(pickle.dumps({"a": [1, 2, 3]}, protocol=4))
    for path in (noise, raw):
        done = _cli("info", path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "not a readable checkpoint" in done.stderr and "could run code" not in done.stderr
        assert "Warning" not in done.stderr


def test_absurd_tile_size_is_refused_by_name():
    spec = ResnetSpec(base_channels=4, n_blocks=1)
    with pytest.raises(TranslatorError) as err:
        Translator.from_net(build_net(spec), spec, device="cpu", tile_size=10**23)
    assert "tile_size" in str(err.value) and "99999" not in str(err.value) and len(str(err.value)) < 200


@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_max_megapixels_must_be_finite(tmp_path, value):
    spec = ResnetSpec(base_channels=4, n_blocks=1)
    torch.save(build_net(spec).state_dict(), tmp_path / "g.pth")
    (tmp_path / "in").mkdir()
    done = _cli("convert", tmp_path / "g.pth", tmp_path / "in", tmp_path / "out", "--max-megapixels", value)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2 and len(errors) == 1 and "--max-megapixels" in errors[0], done.stderr


def test_model_endpoint_has_no_null_direction_beside_directions():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from translate.serving.app import create_app

    spec = ResnetSpec(base_channels=4, n_blocks=1)
    app = create_app(Translator.from_net(build_net(spec), spec, device="cpu", precision="fp32"))
    model = TestClient(app, base_url="http://127.0.0.1:8000").get("/model").json()
    assert model["directions"] and "direction" not in model


def test_folder_conversion_converts_large_inputs_after_small_ones(tmp_path, photo):
    from translate.data.images import write_image
    from translate.inference.folder import convert_folder

    spec = ResnetSpec(base_channels=4, n_blocks=1)
    translator = Translator.from_net(build_net(spec), spec, device="cpu", precision="fp32",
                                     memory_budget_bytes=8 << 20)  # 512 px runs tiled, 64 px whole
    assert translator.runs_tiled(512, 512) and not translator.runs_tiled(64, 64)
    write_image(tmp_path / "in" / "a_big.png", photo("astronaut", 512))
    for name in ("b", "c"):
        write_image(tmp_path / "in" / f"{name}_small.png", photo("coffee", 64))
    order: list[str] = []
    convert_folder(translator, tmp_path / "in", tmp_path / "out", progress=lambda event: order.append(event.path.name))
    assert order == ["b_small.png", "c_small.png", "a_big.png"]


def test_a_tiled_image_logs_its_progress(photo, caplog, monkeypatch):
    from translate.inference import row_progress

    monkeypatch.setattr(row_progress, "QUIET_S", 0.0)  # the test image is done in well under the quiet time
    spec = ResnetSpec(base_channels=4, n_blocks=1)
    translator = Translator.from_net(build_net(spec), spec, device="cpu", precision="fp32", tile_size=128)
    with caplog.at_level("INFO", logger="translate.inference"):
        translator(photo("astronaut", 512))
    percents = [r.getMessage().split("%")[0].split()[-1] for r in caplog.records if r.getMessage().startswith("image:")]
    assert len(percents) >= 3 and percents[-1] == "100" and percents == sorted(percents, key=int)
