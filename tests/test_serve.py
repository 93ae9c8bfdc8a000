"""HTTP service: results equal Translator's, limits (413), type and decode checks (415/422),
masks, concurrency without mixed-up results, /health, /model, /docs and the editor page."""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from translate import Translator  # noqa: E402
from translate.checkpoint import save_checkpoint  # noqa: E402
from translate.nets import build_net, preset, spec_to_dict  # noqa: E402
from translate.inference.translator import InferenceOptions  # noqa: E402
from translate.serve import create_app, load_translators  # noqa: E402

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
    with TestClient(app) as c:
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
    client = TestClient(create_app(Translator.load(path, device="cpu", precision="fp32"), max_pixels=100 * 100))
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
    client = TestClient(create_app(translator))
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
    assert client.get("/health").json() == {"status": "ok", "directions": ["a_to_b"]}
    model = client.get("/model").json()
    assert (model["task"], model["size_multiple"], model["scale"], model["mode"]) == ("custom", 4, 1, "eval")
    assert model["input"]["channels"] == 3 and model["input"]["range"] == [-1.0, 1.0]
    assert model["limits"] == {"max_upload_bytes": 300_000, "max_pixels": 160_000}
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
    client = TestClient(create_app(translators))
    image = photo("coffee", (48, 48))
    for direction, translator in translators.items():
        response = post(client, encode(image), direction=direction)
        assert response.headers["x-translate-direction"] == direction
        np.testing.assert_array_equal(decode(response.content), translator(image))
    assert client.get("/model").json()["directions"] == ["a_to_b", "b_to_a"]
    assert list(load_translators(path, InferenceOptions(device="cpu"), direction="b_to_a")) == ["b_to_a"]
