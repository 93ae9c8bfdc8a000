"""The service for editors: several models (GET /models, model=), the job API (progress in net
passes, cancel before the next pass, unknown ids, results dropped after a time and over a memory
bound), 16-bit and alpha exact through it; `serve --models-dir`; `translate plugin install krita`."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from test_serve import INPAINT, RESNET, assert_error, decode, encode, local_client, write_checkpoint  # noqa: E402
from translate import Translator  # noqa: E402
from translate.data.images import decode_image, encode_image  # noqa: E402
from translate.errors import TranslateError  # noqa: E402
from translate.inference.options import InferenceOptions  # noqa: E402
from translate.serving.app import create_app  # noqa: E402
from translate.serving.jobs import POLL_S, JobStore  # noqa: E402
from translate.serving.models import load_served, sources_in  # noqa: E402

OPTIONS = InferenceOptions(device="cpu", precision="fp32")


class Gated(Translator):
    """A Translator whose every net pass waits for `gate.release()`: the test sets the pace."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        forward = self.runner.forward

        def gated(x, exact):
            if not self.gate.acquire(timeout=60):
                raise RuntimeError("the test never released this net pass")
            return forward(x, exact)

        self.runner.forward = gated


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("jobs")
    return {"restyle": write_checkpoint(root / "restyle.pt", {"g_ab": RESNET}),
            "fill": write_checkpoint(root / "fill.pt", {"g_ab": INPAINT}, task="inpaint")}


@pytest.fixture(scope="module")
def served(models):
    return load_served([models["restyle"], models["fill"]], OPTIONS)


@pytest.fixture
def serving():
    """serving(app) -> a client whose event loop lives until the test ends (jobs run on it)."""
    contexts = []

    def start(app):
        contexts.append(local_client(app))
        return contexts[-1].__enter__()

    yield start
    for context in contexts:
        context.__exit__(None, None, None)


def submit(client, image: np.ndarray, **fields) -> dict:
    files = {"image": ("photo.png", encode_image(image, ".png", name="photo"), "image/png")}  # RGB(A) order kept
    if "mask" in fields:
        files["mask"] = ("mask.png", encode(fields.pop("mask")), "image/png")
    response = client.post("/jobs", files=files, data=fields)
    assert response.status_code == 202, response.text
    return response.json()


def wait_state(client, job_id: str, states: tuple[str, ...], timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get(f"/jobs/{job_id}").json()
        if status["state"] in states or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


def test_models_lists_each_contract_and_translate_takes_a_model(served, photo, serving):
    client = serving(create_app(served))
    listing = client.get("/models").json()
    assert [m["name"] for m in listing["models"]] == ["restyle", "fill"] and listing["default"] == "restyle"
    restyle, fill = listing["models"]
    assert (restyle["task"], restyle["takes_mask"], restyle["scale"], restyle["in_channels"]) == ("custom", False, 1, 3)
    assert (fill["task"], fill["takes_mask"], fill["in_channels"], fill["directions"]) == ("inpaint", True, 4, ["a_to_b"])
    assert "source" not in restyle and str(served["restyle"]["a_to_b"].model.source) not in client.get("/models").text
    image = photo("astronaut", (64, 64))
    hole = np.zeros((64, 64), np.uint8)
    hole[16:40, 20:44] = 255
    files = {"image": ("a.png", encode(image), "image/png"), "mask": ("m.png", encode(hole), "image/png")}
    response = client.post("/translate", files=files, data={"model": "fill"})
    rgba = np.concatenate([image, np.where(hole[:, :, None] > 0, 0, 255).astype(np.uint8)], axis=2)
    expected = served["fill"]["a_to_b"](rgba)
    np.testing.assert_array_equal(decode(response.content), expected)
    default = client.post("/translate", files={"image": ("a.png", encode(image), "image/png")})
    np.testing.assert_array_equal(decode(default.content), served["restyle"]["a_to_b"](image))
    assert client.get("/model").json()["task"] == "custom"  # GET /model: the default, as before
    assert_error(client.post("/translate", files={"image": ("a.png", encode(image), "image/png")},
                             data={"model": "nope"}), 422, "model", "restyle, fill")


def test_a_job_reports_progress_pass_by_pass_and_answers_exactly(models, photo, serving):
    gated = Gated.load(models["restyle"], OPTIONS.replace(tile_size=32))
    gated.gate = threading.Semaphore(0)
    client = serving(create_app(gated))
    # 16 bits with alpha: both come back exact through the job path.
    image = np.concatenate([photo("coffee", (80, 72)).astype(np.uint16) * 257,
                            np.linspace(0, 65535, 80 * 72).reshape(80, 72, 1).astype(np.uint16)], axis=2)
    job = submit(client, image)
    seen = []
    for _ in range(40):
        gated.gate.release()  # one more net pass may run
        previous = seen[-1] if seen else 0
        deadline = time.monotonic() + 10
        status = client.get(f"/jobs/{job['id']}").json()
        while status["state"] != "done" and status["progress"]["done"] <= previous and time.monotonic() < deadline:
            time.sleep(0.01)
            status = client.get(f"/jobs/{job['id']}").json()
        if status["state"] == "done":
            break
        seen.append(status["progress"]["done"])
    total = status["progress"]["total"]
    assert status["state"] == "done" and total > 4 and status["progress"]["done"] == total
    assert seen == list(range(1, total))  # one net pass at a time, counted up
    result = client.get(f"/jobs/{job['id']}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    gated.gate = threading.Semaphore(10_000)
    np.testing.assert_array_equal(decode_image(result.content, name="result"), gated(image))


def test_delete_cancels_before_the_next_net_pass(models, photo, serving):
    gated = Gated.load(models["restyle"], OPTIONS.replace(tile_size=32))
    gated.gate = threading.Semaphore(0)
    client = serving(create_app(gated))
    job = submit(client, photo("astronaut", (128, 128)))
    gated.gate.release()
    gated.gate.release()
    assert wait_state(client, job["id"], ("running",))["state"] == "running"
    while client.get(f"/jobs/{job['id']}").json()["progress"]["done"] < 2:
        time.sleep(0.01)
    assert client.delete(f"/jobs/{job['id']}").json()["deleted"] is False
    time.sleep(5 * POLL_S)  # the queue's watcher sees the DELETE within one poll and sets the cancel event
    gated.gate.release()  # the third pass, waiting at the gate, may finish; none after it starts
    status = wait_state(client, job["id"], ("cancelled", "done", "failed"))
    assert status["state"] == "cancelled" and status["progress"]["done"] <= 3 < status["progress"]["total"]
    assert client.get("/health").json()["queue"] == {"waiting": 0, "running": 0, "max_concurrent": 2}
    assert_error(client.get(f"/jobs/{job['id']}/result"), 409, "cancelled")
    assert client.delete(f"/jobs/{job['id']}").json()["deleted"] is True
    assert_error(client.get(f"/jobs/{job['id']}"), 404, "unknown")


def test_unknown_jobs_and_refused_images(served, photo, serving):
    client = serving(create_app(served))
    for method, path in (("get", "/jobs/nope"), ("get", "/jobs/nope/result"), ("delete", "/jobs/nope")):
        assert_error(getattr(client, method)(path), 404, "unknown")
    response = client.post("/jobs", files={"image": ("a.png", b"not an image", "image/png")})
    assert_error(response, 422, "image")
    assert_error(client.post("/jobs", files={"image": ("a.png", encode(photo("coffee", 32)), "image/png")},
                             data={"model": "nope"}), 422, "model")


def test_finished_results_are_dropped_over_the_memory_bound(served, photo, serving):
    client = serving(create_app(served, max_result_bytes=1))
    first = submit(client, photo("astronaut", 48))
    assert wait_state(client, first["id"], ("done",))["state"] == "done"
    second = submit(client, photo("coffee", 48))
    assert wait_state(client, second["id"], ("done",))["state"] == "done"
    assert_error(client.get(f"/jobs/{first['id']}/result"), 404, "unknown")  # the older one went
    assert client.get(f"/jobs/{second['id']}/result").status_code == 200  # the newest always stays


def test_finished_jobs_expire_after_their_time():
    now = [0.0]
    store = JobStore(ttl_s=60, max_result_bytes=1 << 20, max_jobs=2, clock=lambda: now[0])
    done, running = store.add("m"), store.add("m")
    assert store.add("m") is None  # two unfinished already
    store.finish(done, "done", result=b"png")
    now[0] = 59.0
    assert store.get(done.id) is done
    now[0] = 61.0
    assert store.get(done.id) is None and store.get(running.id) is running  # running jobs never expire


def test_models_dir_names_models_after_their_files(models, tmp_path):
    assert [p.name for p in sources_in(models["restyle"].parent)] == ["fill.pt", "restyle.pt"]
    with pytest.raises(TranslateError, match="already served"):
        load_served([models["restyle"], models["restyle"]], OPTIONS)
    with pytest.raises(TranslateError, match="no run directory"):
        sources_in(tmp_path)


def test_plugin_install_updates_in_place_enables_and_uninstalls(tmp_path, capsys):
    from translate.cli import main

    folder, kritarc = tmp_path / "krita", tmp_path / "kritarc"
    kritarc.write_text("[General]\nfoo=1\n\n[python]\nenable_other=true\n")
    args = ["--dir", str(folder), "--kritarc", str(kritarc)]
    assert main(["plugin", "install", "krita", *args]) == 0
    installed = folder / "pykrita" / "translate_krita"
    assert (folder / "pykrita" / "translate_krita.desktop").is_file() and (installed / "client.py").is_file()
    (installed / "client.py").write_text("stale")
    (installed / "leftover.py").write_text("old")
    assert main(["plugin", "install", "krita", *args]) == 0
    assert "PluginError" in (installed / "client.py").read_text() and not (installed / "leftover.py").exists()
    text = kritarc.read_text()
    assert text.count("enable_translate_krita=true") == 1 and "foo=1" in text and "enable_other=true" in text
    assert main(["plugin", "uninstall", "krita", *args]) == 0
    assert not installed.exists() and "enable_translate_krita" not in kritarc.read_text()
    assert "foo=1" in kritarc.read_text()
