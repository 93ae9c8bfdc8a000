"""The Krita plug-in inside real Krita (kritarunner, offscreen) against a real `translate serve` on
loopback: a layer equals Translator's result and its source stays unchanged; a selection sends its
bounding box only; inpainting keeps known pixels byte-identical; super-resolution opens a document
twice the size; 16-bit and greyscale round-trip, float gets a message; Cancel ends the job and the
service's queue empties; a service stopped mid-job gives the message.

kritarunner imports its -s MODULE from $XDG_DATA_HOME/kritarunner (or PYTHONPATH and Krita's
own pykrita folders), so each run copies the plug-in and tests/krita/krita_checks.py there.
One Krita start runs every case; each test judges its own case. Skipped without Krita."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import _photo
from test_serve import INPAINT, RESNET, write_checkpoint
from translate.serving.launch import start_local_service

KRITARUNNER = shutil.which("kritarunner")
pytestmark = [pytest.mark.skipif(KRITARUNNER is None, reason="Krita is not installed (scripts/ci_krita_deps.sh)"),
              pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
TILE = 64  # the service tiles at 64 px, so a job has many net passes (progress, cancel)
SIZE = (72, 96)  # (height, width) of the documents
BOX = (16, 8, 40, 32)  # x, y, width, height of the selection


def start_service(models: list[Path], tmp: Path) -> tuple[subprocess.Popen, str]:
    """A real `translate serve` on a free loopback port, once it answers /health."""
    log_path = tmp / f"serve-{len(list(tmp.glob('serve-*.log')))}.log"
    with open(log_path, "w") as log:
        try:
            return start_local_service([*map(str, models), "--device", "cpu", "--precision", "fp32",
                                        "--tile-size", str(TILE)], log=log, cwd=ROOT)
        except RuntimeError as error:
            raise RuntimeError(f"{error}: {log_path.read_text()[-2000:]}") from None


def wait_for_empty_queue(url: str, timeout_s: float = 30.0) -> dict:
    """The service's queue once nothing waits or runs (or as it is after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        queue = json.loads(urllib.request.urlopen(url + "/health", timeout=5).read())["queue"]
        if (queue["waiting"] == 0 and queue["running"] == 0) or time.monotonic() > deadline:
            return queue
        time.sleep(0.1)


def krita_layout(image: np.ndarray, color_model: str) -> bytes:
    """HxWx3 RGB or HxWx4 RGBA (uint8/uint16) -> Krita's pixel data: B G R A, or gray A."""
    alpha = image[:, :, 3:] if image.shape[2] == 4 else np.full(image.shape[:2] + (1,), np.iinfo(image.dtype).max,
                                                                 image.dtype)
    if color_model == "GRAYA":
        return np.concatenate([image[:, :, :1], alpha], axis=2).tobytes()
    return np.concatenate([image[:, :, 2::-1], alpha], axis=2).tobytes()


def from_krita(data: bytes, shape: tuple[int, int], dtype, color_model: str) -> np.ndarray:
    """Krita's pixel data -> HxWx4 RGBA (or HxWx2 gray A)."""
    pixels = np.frombuffer(data, dtype).reshape(*shape, 2 if color_model == "GRAYA" else 4)
    return pixels if color_model == "GRAYA" else pixels[:, :, [2, 1, 0, 3]]


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


@pytest.fixture(scope="module")
def krita_run(tmp_path_factory):
    """Start the services, run every case in one Krita, answer (results, inputs, model files)."""
    from translate.nets import preset

    tmp = tmp_path_factory.mktemp("krita")
    models = {"restyle": write_checkpoint(tmp / "restyle.pt", {"g_ab": RESNET}),
              "fill": write_checkpoint(tmp / "fill.pt", {"g_ab": INPAINT}, task="inpaint"),
              "enlarge": write_checkpoint(tmp / "enlarge.pt", {"g_ab": preset(
                  "resnet_6blocks", n_blocks=1, base_channels=4, upscale=2)}, task="superres")}
    service, url = start_service(list(models.values()), tmp)
    doomed, doomed_url = start_service([models["restyle"]], tmp)
    photo8 = np.ascontiguousarray(_photo("astronaut", SIZE))
    # 16 bits whose low byte carries information, so a pass through 8 bits would show.
    photo16 = photo8.astype(np.uint16) * 256 + np.arange(photo8.size).reshape(photo8.shape).astype(np.uint16) % 256
    big = np.ascontiguousarray(_photo("coffee", (512, 512)))
    translucent = np.concatenate([photo8, np.linspace(0, 255, photo8[:, :, :1].size).reshape(*SIZE, 1).astype(np.uint8)],
                                 axis=2)
    inputs = {"rgba8": (photo8, "RGBA", "U8"), "translucent": (translucent, "RGBA", "U8"), "rgba16": (photo16, "RGBA", "U16"),
              "gray8": (photo8[:, :, 1:2], "GRAYA", "U8"), "big": (big, "RGBA", "U8")}
    files = {}
    for key, (image, model, depth) in inputs.items():
        files[key] = tmp / f"{key}.raw"
        files[key].write_bytes(krita_layout(image, model))

    def case(source, model, **extra):
        image, color_model, depth = inputs[source]
        return {"input": str(files[source]), "width": image.shape[1], "height": image.shape[0],
                "color_model": color_model, "depth": depth, "model": model, **extra}

    cases = {
        "layer": case("rgba8", "restyle"),
        "selection": case("rgba8", "restyle", selection=list(BOX)),
        "translucent": case("translucent", "restyle"),
        "inpaint": case("rgba8", "fill", selection=list(BOX)),
        "superres": case("rgba8", "enlarge"),
        "sixteen": case("rgba16", "restyle"),
        "gray": case("gray8", "restyle"),
        "float": {**case("rgba8", "restyle"), "depth": "F32", "input": str(tmp / "none.raw")},
        "cancel": case("big", "restyle", mode="cancel"),
        "stopped": case("big", "restyle", mode="kill", pid=doomed.pid, server=doomed_url),
    }
    (tmp / "none.raw").write_bytes(b"")
    out = tmp / "out"
    out.mkdir()
    data_home = tmp / "xdg"
    shutil.copytree(ROOT / "plugins" / "krita" / "translate_krita", data_home / "kritarunner" / "translate_krita")
    shutil.copy(ROOT / "tests" / "krita" / "krita_checks.py", data_home / "kritarunner")
    params = tmp / "params.json"
    params.write_text(json.dumps({"server": url, "out": str(out), "cases": cases}))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # Krita's Python sees no translate
    env.update(QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(data_home), XDG_CONFIG_HOME=str(tmp / "config"),
               XDG_RUNTIME_DIR=str(tmp))
    try:
        run = subprocess.run([KRITARUNNER, "-s", "krita_checks", "-f", "run_cases", str(params)], env=env,
                             capture_output=True, text=True, timeout=300)
        results_file = out / "results.json"
        assert results_file.exists(), f"Krita wrote no results:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        results = json.loads(results_file.read_text())
        queue = wait_for_empty_queue(url)
        yield {"results": results, "inputs": inputs, "models": models, "queue_after": queue}
    finally:
        for process in (service, doomed):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)


def result_of(krita_run, name: str) -> dict:
    result = krita_run["results"][name]
    assert "crash" not in result, result["crash"]
    return result


def translator(path: Path):
    from translate import Translator

    return Translator.load(path, device="cpu", precision="fp32", tile_size=TILE)


def read(result: dict, key: str, shape, dtype, color_model: str = "RGBA") -> np.ndarray:
    return from_krita(Path(result[key]).read_bytes(), shape, dtype, color_model)


def test_a_layer_equals_translator_and_its_source_is_unchanged(krita_run):
    result = result_of(krita_run, "layer")
    assert result["error"] is None and result["result_depth"] == "U8"
    assert len(result["layers"]) == 2 and "restyle" in result["layers"][1]  # the new layer is above
    image = krita_run["inputs"]["rgba8"][0]
    layer = read(result, "result", SIZE, np.uint8)
    expected = translator(krita_run["models"]["restyle"])(image)
    assert psnr(layer[:, :, :3], expected, 255) >= 50
    assert (layer[:, :, 3] == 255).all()
    np.testing.assert_array_equal(read(result, "source", SIZE, np.uint8)[:, :, :3], image)
    progress = result["progress"]
    assert progress and progress[-1][0] == progress[-1][1] and [p[0] for p in progress] == sorted(p[0] for p in progress)


def test_alpha_comes_back_exact(krita_run):
    result = result_of(krita_run, "translucent")
    assert result["error"] is None
    image = krita_run["inputs"]["translucent"][0]
    layer = read(result, "result", SIZE, np.uint8)
    np.testing.assert_array_equal(layer[:, :, 3], image[:, :, 3])
    expected = translator(krita_run["models"]["restyle"])(image)
    assert psnr(layer[:, :, :3], expected[:, :, :3], 255) >= 50


def test_a_selection_sends_its_bounding_box_only(krita_run):
    result = result_of(krita_run, "selection")
    assert result["error"] is None
    image = krita_run["inputs"]["rgba8"][0]
    layer = read(result, "result", SIZE, np.uint8)
    x, y, w, h = BOX
    inside = np.zeros(SIZE, bool)
    inside[y:y + h, x:x + w] = True
    np.testing.assert_array_equal(layer[~inside][:, :3], image[~inside])
    expected = translator(krita_run["models"]["restyle"])(np.ascontiguousarray(image[y:y + h, x:x + w]))
    assert psnr(layer[y:y + h, x:x + w, :3], expected, 255) >= 50


def test_inpainting_fills_the_selection_and_keeps_known_pixels(krita_run):
    result = result_of(krita_run, "inpaint")
    assert result["error"] is None
    image = krita_run["inputs"]["rgba8"][0]
    layer = read(result, "result", SIZE, np.uint8)
    x, y, w, h = BOX
    hole = np.zeros(SIZE, bool)
    hole[y:y + h, x:x + w] = True
    np.testing.assert_array_equal(layer[~hole][:, :3], image[~hole])
    assert (layer[hole][:, :3] != image[hole]).any(axis=1).mean() > 0.5


def test_super_resolution_opens_a_document_twice_the_size(krita_run):
    result = result_of(krita_run, "superres")
    assert result["error"] is None and result["doc_size"] == [2 * SIZE[1], 2 * SIZE[0]]
    assert result["layers"] == result["layers"][:1]  # the source document gained no layer
    layer = read(result, "result", (2 * SIZE[0], 2 * SIZE[1]), np.uint8)
    expected = translator(krita_run["models"]["enlarge"])(krita_run["inputs"]["rgba8"][0])
    assert psnr(layer[:, :, :3], expected, 255) >= 50


def test_sixteen_bits_round_trip_at_sixteen_bits(krita_run):
    result = result_of(krita_run, "sixteen")
    assert result["error"] is None and result["result_depth"] == "U16"
    image = krita_run["inputs"]["rgba16"][0]
    layer = read(result, "result", SIZE, np.uint16)
    expected = translator(krita_run["models"]["restyle"])(image)
    assert psnr(layer[:, :, :3], expected, 65535) >= 50
    assert not (layer[:, :, :3] % 257 == 0).all()  # not squeezed through 8 bits
    np.testing.assert_array_equal(read(result, "source", SIZE, np.uint16)[:, :, :3], image)


def test_greyscale_documents_work_and_float_ones_get_the_message(krita_run):
    gray = result_of(krita_run, "gray")
    assert gray["error"] is None and gray["result_model"] == "GRAYA"
    layer = read(gray, "result", SIZE, np.uint8, "GRAYA")
    source = read(gray, "source", SIZE, np.uint8, "GRAYA")
    assert (layer[:, :, 1] == 255).all() and (layer[:, :, 0] != source[:, :, 0]).mean() > 0.5
    floating = result_of(krita_run, "float")
    assert "16-bit integer" in floating["error"] and len(floating["layers"]) == 1


def test_cancel_ends_the_job_and_leaves_the_document(krita_run):
    result = result_of(krita_run, "cancel")
    assert result["error_type"] == "JobCancelled" and len(result["layers"]) == 1
    assert krita_run["queue_after"]["waiting"] == 0 and krita_run["queue_after"]["running"] == 0
    np.testing.assert_array_equal(read(result, "source", (512, 512), np.uint8)[:, :, :3], krita_run["inputs"]["big"][0])


def test_a_service_stopped_mid_job_gives_the_message(krita_run):
    result = result_of(krita_run, "stopped")
    assert result["error_type"] == "PluginError" and "translate serve" in result["error"]
    assert len(result["layers"]) == 1
