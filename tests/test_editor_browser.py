"""The editor page end to end in headless Chromium against a real uvicorn server: open a photo,
paint (and undo) a mask stroke, run, compare, and check the result; saves a screenshot to
test-artifacts/. Needs Debian's chromium (scripts/ci_browser_deps.sh) and `pip install playwright`."""
from __future__ import annotations

import base64
import shutil
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sync_api = pytest.importorskip("playwright.sync_api", reason="needs `pip install playwright`")
uvicorn = pytest.importorskip("uvicorn")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("needs Debian's chromium: bash scripts/ci_browser_deps.sh", allow_module_level=True)

from translate import Translator  # noqa: E402
from translate.checkpoint import save_checkpoint  # noqa: E402
from translate.data.images import write_image  # noqa: E402
from translate.nets import build_net, preset, spec_to_dict  # noqa: E402
from translate.serving.app import create_app  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
INPAINT = preset("unet_128", num_downs=5, base_channels=8, in_channels=4, out_channels=3)
SUPERRES = preset("resnet_6blocks", n_blocks=1, base_channels=4, upscale=2)


class RecordingTranslator(Translator):
    """A Translator that keeps the images it was asked to translate (what the server sent it)."""

    def __call__(self, image: np.ndarray, **kwargs) -> np.ndarray:
        self.seen.append(image.copy())
        return super().__call__(image, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve(tmp_path):
    """serve(spec, task) -> (base URL, RecordingTranslator) of a real uvicorn server on 127.0.0.1
    (a free port, a thread) serving a fresh generator; servers stop when the test ends."""
    servers = []

    def start(spec, task: str):
        torch.manual_seed(0)
        path = tmp_path / f"{task}.pt"
        save_checkpoint(path, {"config": {"method": "pix2pix", "task": task, "direction": "a_to_b"},
                               "specs": {"g_ab": spec_to_dict(spec)}, "nets": {"g_ab": build_net(spec).state_dict()},
                               "step": 0, "epoch": 0})
        translator = RecordingTranslator.load(path, device="cpu", precision="fp32")
        translator.seen = []
        port = free_port()
        config = uvicorn.Config(create_app(translator), host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}", translator

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url: str, problems: list[str]):
    """The editor at `url`, recording page errors and console errors into `problems`."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1000, "height": 720})
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.goto(url + "/")
    return page


RESULT_VS_SOURCE = """() => {
    const img = document.getElementById('result');
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const out = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const src = document.getElementById('source');
    const inp = src.getContext('2d').getImageData(0, 0, src.width, src.height).data;
    // Mean abs difference inside the painted stroke (rows 47-53%, columns 30-70%).
    let diff = 0, count = 0;
    for (let y = Math.round(0.47 * src.height); y < 0.53 * src.height; y++)
        for (let x = Math.round(0.3 * src.width); x < 0.7 * src.width; x++, count += 3) {
            const i = 4 * (y * src.width + x);
            diff += Math.abs(out[i] - inp[i]) + Math.abs(out[i+1] - inp[i+1]) + Math.abs(out[i+2] - inp[i+2]);
        }
    return {width: img.naturalWidth, height: img.naturalHeight, meanDiff: diff / count,
            download: document.getElementById('download').getAttribute('download'),
            href: document.getElementById('download').href};
}"""


def stroke(page, y_fraction: float) -> None:
    """Drag the brush across the middle 60% of the image at `y_fraction` of its height."""
    box = page.locator("#mask").bounding_box()
    y = box["y"] + box["height"] * y_fraction
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (0.2 + 0.06 * i), y)
    page.mouse.up()


def test_editor_inpaints_a_painted_mask(serve, browser, tmp_path, photo):
    url, translator = serve(INPAINT, "inpaint")
    image = photo("astronaut", (160, 200))
    source = tmp_path / "astronaut.png"
    write_image(source, image)
    problems: list[str] = []
    page = open_page(browser, url, problems)
    sync_api.expect(page.locator("#model-info")).to_contain_text("inpaint")
    sync_api.expect(page.locator("#mask-tools")).to_be_visible()

    page.set_input_files("#file", str(source))
    page.wait_for_function("document.getElementById('source').width === 200")
    sync_api.expect(page.locator("#run")).to_be_enabled()
    page.locator("#brush-size").fill("14")

    stroke(page, 0.3)  # painted, then undone: must not reach the server
    sync_api.expect(page.locator("#undo")).to_be_enabled()
    page.click("#undo")
    sync_api.expect(page.locator("#clear-mask")).to_be_disabled()
    stroke(page, 0.5)
    page.click("#run")
    sync_api.expect(page.locator("#status")).to_have_attribute("data-state", "done", timeout=60_000)

    result = page.evaluate(RESULT_VS_SOURCE)
    page.screenshot(path=str(ARTIFACTS / "editor_inpaint.png"))

    assert not problems, problems
    assert (result["width"], result["height"]) == (200, 160)
    assert result["meanDiff"] > 5.0, "the holes came back unchanged"  # filled by an untrained net
    assert result["download"] == "astronaut_translated.png" and result["href"].startswith("blob:")
    # The server got the photo with the painted stroke (only the second one) as transparent holes.
    assert len(translator.seen) == 1
    sent = translator.seen[0]
    assert sent.shape == (160, 200, 4)
    np.testing.assert_array_equal(sent[:, :, :3], image)
    holes = np.argwhere(sent[:, :, 3] == 0)
    assert len(holes) > 0 and set(np.unique(sent[:, :, 3])) == {0, 255}
    rows, cols = holes[:, 0], holes[:, 1]
    assert 60 <= rows.min() and rows.max() <= 100  # around y = 80 (0.5 of 160), not y = 48 (undone)
    assert cols.min() < 60 and cols.max() > 140


def test_editor_runs_a_super_resolution_model_without_mask_tools(serve, browser, tmp_path, photo):
    url, translator = serve(SUPERRES, "superres")
    image = photo("coffee", (90, 120))
    source = tmp_path / "coffee.png"
    write_image(source, image)
    problems: list[str] = []
    page = open_page(browser, url, problems)
    sync_api.expect(page.locator("#model-info")).to_contain_text("superres")
    sync_api.expect(page.locator("#model-info")).to_contain_text("×2")
    page.set_input_files("#file", str(source))
    page.wait_for_function("document.getElementById('source').width === 120")
    sync_api.expect(page.locator("#mask-tools")).to_be_hidden()
    stroke(page, 0.5)  # no mask tools: dragging over the image paints nothing
    page.click("#run")
    sync_api.expect(page.locator("#status")).to_have_attribute("data-state", "done", timeout=60_000)
    page.locator("#compare").fill("30")
    sent_bytes = page.evaluate("""async () => {
        const bytes = new Uint8Array(await (await fetch(document.getElementById('result').src)).arrayBuffer());
        let text = '';
        for (const b of bytes) text += String.fromCharCode(b);
        return btoa(text);
    }""")
    clip = page.evaluate("document.getElementById('result').style.clipPath")
    page.screenshot(path=str(ARTIFACTS / "editor_superres.png"))

    assert not problems, problems
    assert [s.shape for s in translator.seen] == [(90, 120, 3)]  # one request, RGB only: no mask
    result = cv2.cvtColor(cv2.imdecode(np.frombuffer(base64.b64decode(sent_bytes), np.uint8), cv2.IMREAD_COLOR),
                          cv2.COLOR_BGR2RGB)
    assert result.shape == (180, 240, 3)
    np.testing.assert_array_equal(result, translator(image))  # the bytes the server sent, intact
    assert clip == "inset(0px 0px 0px 30%)"
