"""HTTP service: results equal Translator's, limits (413), type and decode checks (415/422),
masks, concurrency without mixed-up results, /health, /model, /docs and the editor page; Host and
Origin checks; abandoned, slow and shut-down work (time limit, disconnects, SIGTERM, queue depth)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from translate import Translator  # noqa: E402
from translate.checkpoint import save_checkpoint  # noqa: E402
from translate.errors import Cancelled  # noqa: E402
from translate.nets import build_net, preset, spec_to_dict  # noqa: E402
from translate.inference.translator import InferenceOptions  # noqa: E402
from translate.serving.app import create_app, load_translators  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESNET = preset("resnet_9blocks", n_blocks=2, base_channels=8)
INPAINT = preset("unet_128", num_downs=5, base_channels=8, in_channels=4, out_channels=3)


def write_checkpoint(path: Path, specs: dict, *, method: str = "pix2pix", task: str = "custom") -> Path:
    """A translate checkpoint with generators {name: spec} (seeded weights)."""
    nets = {}
    for i, (name, spec) in enumerate(specs.items()):
        torch.manual_seed(i)
        nets[name] = build_net(spec).state_dict()
    save_checkpoint(path, {"config": {"method": method, "task": task, "direction": "a_to_b"},
                           "specs": {name: spec_to_dict(s) for name, s in specs.items()},
                           "nets": nets, "step": 0, "epoch": 0})
    return path


def local_client(app) -> TestClient:
    """A client that reaches the app as a local browser or curl would: Host 127.0.0.1."""
    return TestClient(app, base_url="http://127.0.0.1:8000")


def encode(image: np.ndarray, suffix: str = ".png") -> bytes:
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(suffix, image)
    assert ok
    return data.tobytes()


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, "response is not an image"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 and image.shape[2] == 3 else image


@pytest.fixture(scope="module")
def translator(tmp_path_factory) -> Translator:
    path = write_checkpoint(tmp_path_factory.mktemp("serve") / "resnet.pt", {"g_ab": RESNET})
    return Translator.load(path, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def client(translator):
    app = create_app(translator, max_upload_bytes=300_000, max_pixels=400 * 400)
    with local_client(app) as c:
        yield c


def post(client, data: bytes, *, content_type: str = "image/png", mask: bytes | None = None, **fields):
    files = {"image": ("photo.png", data, content_type)}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    return client.post("/translate", files=files, data=fields)


def assert_error(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    for word in words:
        assert word in message, message


def test_translate_returns_exactly_the_translator_output(client, translator, photo):
    image = photo("astronaut", (83, 61))
    response = post(client, encode(image))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    np.testing.assert_array_equal(decode(response.content), translator(image))
    # 16-bit in, 16-bit PNG out, as `translate convert` keeps it.
    image16 = photo("coffee", (40, 52)).astype(np.uint16) * 257
    result = decode(post(client, encode(image16)).content)
    assert result.dtype == np.uint16
    np.testing.assert_array_equal(result, translator(image16))
    for fmt, magic in (("jpeg", b"\xff\xd8"), ("webp", b"RIFF")):
        response = post(client, encode(image), format=fmt)
        assert response.status_code == 200 and response.content.startswith(magic)
        assert decode(response.content).shape == image.shape


def test_oversized_upload_is_refused_while_arriving(client, photo):
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    big = encode(noise)  # incompressible: ~270 kB, over the 300 kB limit with a second copy
    assert_error(post(client, big + big, content_type="application/octet-stream"), 413, "limit")
    # Without a Content-Length header (chunked upload) the body is counted as it arrives.
    boundary = "limit-test"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode()
    chunks = iter([head, big, big, f"\r\n--{boundary}--\r\n".encode()])
    response = client.post("/translate", content=chunks,
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert_error(response, 413, "limit")


def test_too_many_pixels_is_refused_before_decoding(client):
    flat = np.full((2000, 1500, 3), 128, np.uint8)  # 3 MP in a few kilobytes: a small bomb
    data = encode(flat)
    assert len(data) < 50_000
    assert_error(post(client, data), 413, "1500x2000", "megapixels")


def test_pixel_limit_counts_the_output_of_super_resolution_nets(tmp_path, photo):
    path = write_checkpoint(tmp_path / "sr.pt", {"g_ab": preset("resnet_6blocks", n_blocks=1, base_channels=4,
                                                                upscale=2)}, task="superres")
    client = local_client(create_app(Translator.load(path, device="cpu", precision="fp32"), max_pixels=100 * 100))
    assert post(client, encode(photo("coffee", (50, 50)))).status_code == 200  # 100x100 out
    assert_error(post(client, encode(photo("coffee", (60, 50)))), 413, "x2", "100x120")


def test_non_images_are_refused(client, photo):
    assert_error(post(client, b"hello, world", content_type="text/plain"), 415, "text/plain")
    assert_error(post(client, b"%PDF-1.7 not an image", content_type="application/octet-stream"), 415)
    assert_error(post(client, b"\x00" * 1000, content_type="image/png"), 422, "cannot decode")
    assert_error(post(client, b"", content_type="image/png"), 422, "empty")
    gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
    assert_error(post(client, gif, content_type="image/gif"), 415)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_truncated_image_is_422(client, photo, suffix):
    data = encode(photo("chelsea", (120, 150)), suffix)
    assert_error(post(client, data[: len(data) // 2], content_type="application/octet-stream"), 422, "truncated")


def test_bad_options_and_missing_fields_are_422(client, photo):
    data = encode(photo("coffee", (40, 40)))
    assert_error(post(client, data, format="gif"), 422, "format")
    assert_error(post(client, data, direction="b_to_a"), 422, "direction", "a_to_b")
    assert_error(client.post("/translate", data={"format": "png"}), 422, "image")
    mask = encode(np.zeros((40, 40), np.uint8))
    assert_error(post(client, data, mask=mask), 422, "mask", "inpaint")


def test_mask_fills_holes_for_inpainting_and_must_match_the_size(tmp_path, photo):
    path = write_checkpoint(tmp_path / "inpaint.pt", {"g_ab": INPAINT}, task="inpaint")
    translator = Translator.load(path, device="cpu", precision="fp32")
    client = local_client(create_app(translator))
    image = photo("astronaut", (64, 80))
    hole = np.zeros((64, 80), np.uint8)
    hole[20:40, 30:50] = 255
    response = post(client, encode(image), mask=encode(hole))
    assert response.status_code == 200, response.text
    rgba = np.concatenate([image, np.where(hole[:, :, None] > 0, 0, 255).astype(np.uint8)], axis=2)
    np.testing.assert_array_equal(decode(response.content), translator(rgba))
    assert_error(post(client, encode(image), mask=encode(hole[:60])), 422, "mask", "80x60", "80x64")
    assert client.get("/model").json()["task"] == "inpaint" and client.get("/model").json()["takes_mask"] is True


def test_twenty_concurrent_requests_each_get_their_own_result(client, photo):
    images = [photo(name, size) for name, size in (("astronaut", (64, 64)), ("coffee", (48, 72)),
                                                    ("chelsea", (72, 40)), ("rocket", (56, 56)))]
    expected = [decode(post(client, encode(image)).content) for image in images]
    results: dict[int, np.ndarray] = {}
    errors: list[str] = []
    barrier = threading.Barrier(20)

    def worker(i: int) -> None:
        barrier.wait()
        response = post(client, encode(images[i % 4]))
        if response.status_code != 200:
            errors.append(response.text)
        else:
            results[i] = decode(response.content)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 20
    for i, result in results.items():
        np.testing.assert_array_equal(result, expected[i % 4])


def test_health_model_docs_and_editor(client):
    assert client.get("/health").json() == {"status": "ok", "directions": ["a_to_b"],
                                            "queue": {"waiting": 0, "running": 0, "max_concurrent": 2}}
    model = client.get("/model").json()
    assert (model["task"], model["size_multiple"], model["scale"], model["mode"]) == ("custom", 4, 1, "eval")
    assert model["input"]["channels"] == 3 and model["input"]["range"] == [-1.0, 1.0]
    assert model["limits"] == {"max_upload_bytes": 300_000, "max_pixels": 160_000, "request_timeout_s": 120.0}
    assert model["directions"] == ["a_to_b"] and "png" in model["output_formats"]
    assert model["takes_mask"] is False  # the editor hides its mask tools
    assert "/translate" in client.get("/openapi.json").json()["paths"]
    assert "swagger" in client.get("/docs").text.lower()
    page = client.get("/")
    assert page.status_code == 200 and "translate editor" in page.text
    assert_error(client.get("/no/such/page"), 404)


def test_cyclegan_checkpoint_serves_both_directions(tmp_path, photo):
    path = write_checkpoint(tmp_path / "cyclegan.pt", {"g_ab": RESNET, "g_ba": RESNET}, method="cyclegan")
    translators = load_translators(path, InferenceOptions(device="cpu", precision="fp32"))
    assert list(translators) == ["a_to_b", "b_to_a"]
    client = local_client(create_app(translators))
    image = photo("coffee", (48, 48))
    for direction, translator in translators.items():
        response = post(client, encode(image), direction=direction)
        assert response.headers["x-translate-direction"] == direction
        np.testing.assert_array_equal(decode(response.content), translator(image))
    assert client.get("/model").json()["directions"] == ["a_to_b", "b_to_a"]
    assert list(load_translators(path, InferenceOptions(device="cpu"), direction="b_to_a")) == ["b_to_a"]


def test_model_names_no_path_of_the_trainers_file_system(tmp_path):
    run = tmp_path / "trainer-home" / "runs" / "facades"
    (run / "checkpoints").mkdir(parents=True)
    config = {"method": "pix2pix", "task": "custom", "direction": "a_to_b", "out": str(run),
              "data": {"root": str(tmp_path / "trainer-home" / "D64"), "layout": "aligned"}}
    torch.manual_seed(0)
    save_checkpoint(run / "checkpoints" / "latest.pt", {"config": config, "specs": {"g_ab": spec_to_dict(RESNET)},
                                        "nets": {"g_ab": build_net(RESNET).state_dict()}, "step": 0, "epoch": 0})
    client = local_client(create_app(Translator.load(run, device="cpu", precision="fp32")))
    response = client.get("/model")
    assert response.status_code == 200
    assert "trainer-home" not in response.text and "D64" not in response.text
    model = response.json()
    assert (model["method"], model["task"], model["spec"]["kind"]) == ("pix2pix", "custom", "resnet")


# ---------------------------------------------------------------- who may talk to the service
def test_foreign_host_headers_are_refused(client):
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST."):
        assert client.get("/health", headers={"host": host}).status_code == 200, host
    # A DNS-rebinding page sends its own name: it must not read the model or post images.
    for host in ("evil.example:8000", "localhost.evil.example", "127.0.0.1.nip.io", "", "a b"):
        assert_error(client.get("/model", headers={"host": host}), 400, "Host", "--allowed-host")
    assert_error(client.post("/translate", headers={"host": "evil.example"}), 400, "Host")


def test_host_policy_follows_the_bind_address_and_allowed_hosts():
    from translate.serving.guard import HostPolicy

    local = HostPolicy.for_bind("127.0.0.1", 8000)
    assert local.allows("localhost:8000") and local.allows("[::1]:8000")
    assert not local.allows("localhost:8001") and not local.allows("localhost")  # another port
    assert not local.allows("192.168.1.5:8000")
    lan = HostPolicy.for_bind("0.0.0.0", 8000, allowed=["box.lan"])
    assert lan.allows("192.168.1.5:8000") and lan.allows("[fe80::1]:8000") and lan.allows("box.lan")
    assert not lan.allows("evil.example:8000") and not lan.allows("192.168.1.5:9000")
    assert HostPolicy.for_bind("10.0.0.7", 80).allows("10.0.0.7")
    assert not HostPolicy.for_bind("10.0.0.7", 80).allows("10.0.0.8")
    assert HostPolicy.for_bind("127.0.0.1", 8000, allowed=["*"]).allows("anything.example")


def test_cross_origin_posts_are_refused_and_the_editors_accepted(client, photo):
    data = encode(photo("coffee", (40, 40)))
    foreign = [{"origin": "http://evil.example", "sec-fetch-site": "cross-site"},
               {"origin": "http://evil.example"},  # a browser without Fetch Metadata
               {"origin": "null"},  # a sandboxed frame or a file:// page
               {"origin": "http://localhost:3000", "sec-fetch-site": "same-site"},  # another local app
               {"sec-fetch-site": "cross-site"}]
    for headers in foreign:
        response = client.post("/translate", files={"image": ("a.png", data, "image/png")}, headers=headers)
        assert_error(response, 403, "cross-origin")
    for editor in ({"origin": "http://127.0.0.1:8000", "sec-fetch-site": "same-origin"},
                   {"origin": "http://127.0.0.1:8000"},  # a browser without Fetch Metadata
                   {"origin": "https://proxy.example", "sec-fetch-site": "same-origin"}):  # behind a proxy
        response = client.post("/translate", files={"image": ("a.png", data, "image/png")}, headers=editor)
        assert response.status_code == 200, (editor, response.text)
    # Reading is not acting: a GET from any origin is answered (no CORS headers, so a page cannot read it).
    assert client.get("/health", headers={"origin": "http://evil.example"}).status_code == 200


# ---------------------------------------------------------------- abandoned and slow work
class SlowTranslator(Translator):
    """Works in `steps` steps of 20 ms, checking `cancel` before each as the engine does before each
    tile; `gate.set()` finishes the work at once. `done`, `started` and `stopped` report progress."""

    steps = 400  # 8 s when nothing stops it

    def __call__(self, image: np.ndarray, *, cancel: threading.Event | None = None) -> np.ndarray:
        self.started.set()
        try:
            for _ in range(self.steps):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled")
                if self.gate.wait(0.02):
                    break
                self.done += 1
            return image
        finally:
            self.stopped.set()


@pytest.fixture
def slow(translator) -> SlowTranslator:
    """A SlowTranslator sharing the module's tiny net."""
    t = SlowTranslator(translator.model, translator.options)
    t.done, t.started, t.stopped, t.gate = 0, threading.Event(), threading.Event(), threading.Event()
    return t


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_request_time_limit_answers_504_and_stops_the_work(slow, photo):
    client = local_client(create_app(slow, request_timeout_s=0.3))
    assert_error(post(client, encode(photo("coffee", (40, 40)))), 504, "0.3 s")
    assert slow.stopped.wait(10) and slow.done < slow.steps
    assert client.get("/health").json()["queue"] == {"waiting": 0, "running": 0, "max_concurrent": 2}


def test_health_reports_queue_depth(slow, photo):
    client = local_client(create_app(slow, max_concurrent=1))
    data = encode(photo("coffee", (40, 40)))
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(post(client, data).status_code)) for _ in range(2)]
    for t in threads:
        t.start()
    expected = {"waiting": 1, "running": 1, "max_concurrent": 1}
    assert wait_for(lambda: client.get("/health").json()["queue"] == expected), client.get("/health").json()
    slow.gate.set()
    for t in threads:
        t.join(timeout=30)
    assert statuses == [200, 200]
    assert client.get("/health").json()["queue"] == {"waiting": 0, "running": 0, "max_concurrent": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_post(port: int, data: bytes) -> bytes:
    """POST /translate with `data` as the image, as bytes for a socket."""
    body = (b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--b--\r\n")
    head = (f"POST /translate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
    return head.encode() + body


def test_a_client_that_leaves_stops_its_translation(slow, photo):
    uvicorn = pytest.importorskip("uvicorn")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(slow), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started or not thread.is_alive(), 30) and server.started
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(raw_post(port, encode(photo("coffee", (40, 40)))))
            assert slow.started.wait(10)
        # The client is gone: the work stops at its next step instead of running all of them.
        assert slow.stopped.wait(10) and slow.done < slow.steps
        assert not slow.gate.is_set()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


SERVE_SLOWLY = """
import sys, threading
from translate import Translator
from translate.errors import Cancelled
from translate.serving.app import create_app, run_server

class Slow(Translator):
    def __call__(self, image, *, cancel=None):
        for _ in range(3000):  # 60 s unless cancelled
            if cancel is not None and cancel.wait(0.02):
                raise Cancelled("cancelled")
        return image

run_server(create_app(Slow.load(sys.argv[1], device="cpu", precision="fp32")), host="127.0.0.1", port=int(sys.argv[2]))
"""


def test_sigterm_ends_the_service_promptly_with_a_request_in_flight(tmp_path, photo):
    pytest.importorskip("uvicorn")
    script = tmp_path / "serve_slowly.py"
    script.write_text(SERVE_SLOWLY)
    checkpoint = write_checkpoint(tmp_path / "resnet.pt", {"g_ab": RESNET})
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    log_file = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen([sys.executable, str(script), str(checkpoint), str(port)], env=env,
                               stdout=log_file, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    answers: list[httpx.Response] = []
    try:
        assert wait_for(lambda: process.poll() is not None or reachable(base + "/health"), 60), "did not start"
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        files = {"image": ("a.png", encode(photo("coffee", (40, 40))), "image/png")}
        request = threading.Thread(target=lambda: answers.append(httpx.post(base + "/translate", files=files,
                                                                            timeout=30)))
        request.start()
        assert wait_for(lambda: httpx.get(base + "/health").json()["queue"]["running"] == 1)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)  # a TimeoutExpired here is the failure: shutdown waited for the work
        request.join(timeout=10)
        assert_error(answers[0], 503, "shutting down")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log_file.close()


def reachable(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
