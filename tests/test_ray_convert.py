"""`translate convert --engine ray` on a local Ray (2 CPUs) with moto's S3 server on loopback:
byte-identical to local conversion, bad files in the summary, reruns skip, killed workers retried."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from translate.checkpoint import save_checkpoint
from translate.cli import main
from translate.data.images import read_image, write_image
from translate.nets import ResnetSpec, build_net, spec_to_dict

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

FAST = ["--precision", "fp32", "--device", "cpu"]
SIZES = [(48, 64), (64, 48), (40, 40), (56, 72), (33, 47)]


@pytest.fixture(scope="module")
def s3_endpoint() -> str:
    """moto's S3 server on 127.0.0.1, named to pyarrow (and so to Ray's workers) by environment variables."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=f"http://{host}:{port}")
    yield f"http://{host}:{port}"
    for name, value in saved.items():
        os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    server.stop()


@pytest.fixture(scope="module")
def ray_cluster(s3_endpoint):
    """One local Ray for the module (started after the S3 variables are set, so workers see them)."""
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    spec = ResnetSpec(base_channels=4, n_blocks=1)
    run = tmp_path_factory.mktemp("model") / "run"
    save_checkpoint(run / "checkpoints" / "latest.pt",
                    {"config": {"method": "pix2pix", "task": "custom", "direction": "a_to_b"},
                     "specs": {"g_ab": spec_to_dict(spec)}, "nets": {"g_ab": build_net(spec).state_dict()},
                     "step": 0, "epoch": 0})
    return run


def write_collection(root: Path, photo) -> Path:
    """20 files: 16 colour photos of mixed sizes and formats, one 16-bit, one RGBA, one grey (in
    a sub-folder with others), and one corrupt JPEG."""
    names = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle", "immunohistochemistry", "retina", "colorwheel"]
    for i in range(16):
        name = names[i % len(names)]
        folder = root / "sub" if i % 4 == 3 else root
        write_image(folder / f"{name}_{i}{['.jpg', '.png'][i % 2]}", photo(name, SIZES[i % len(SIZES)]))
    write_image(root / "deep16.png", (photo("coffee", (40, 56)).astype(np.uint16) * 256 + 17))
    rgba = np.concatenate([photo("chelsea", (48, 48)), np.tile(np.arange(48, dtype=np.uint8)[:, None, None] * 5,
                                                                (1, 48, 1))], axis=2)
    write_image(root / "alpha.png", rgba)
    write_image(root / "sub" / "grey.png", photo("camera", (40, 52)))
    (root / "broken.jpg").write_bytes((root / "coffee_1.png").read_bytes()[:300])
    return root


def bucket(endpoint: str, name: str):
    """An empty bucket on the moto server, and a pyarrow S3 file system reaching it."""
    from pyarrow import fs

    s3 = fs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True)
    s3.create_dir(name)
    return s3


def upload(s3, root: Path, bucket_name: str) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        with s3.open_output_stream(f"{bucket_name}/{path.relative_to(root).as_posix()}") as stream:
            stream.write(path.read_bytes())


def objects(s3, bucket_name: str) -> dict[str, tuple[bytes, int]]:
    """relative name -> (content, modification time in ns) of every object in the bucket."""
    from pyarrow import fs

    infos = s3.get_file_info(fs.FileSelector(bucket_name, recursive=True))
    return {info.path[len(bucket_name) + 1:]: (s3.open_input_stream(info.path).read(), info.mtime_ns)
            for info in infos if info.type == fs.FileType.File}


def local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_s3_to_s3_matches_local_conversion_reports_the_corrupt_file_and_reruns_as_skips(
        ray_cluster, s3_endpoint, checkpoint, photo, tmp_path, capsys):
    photos = write_collection(tmp_path / "in", photo)
    s3 = bucket(s3_endpoint, "photos-in")
    bucket(s3_endpoint, "photos-out")
    upload(s3, photos, "photos-in")
    assert main(["convert", str(checkpoint), str(photos), str(tmp_path / "local"), *FAST]) == 1
    local_err = capsys.readouterr().err
    models = bucket(s3_endpoint, "models")
    with models.open_output_stream("models/latest.pt") as stream:  # each worker downloads the model
        stream.write((checkpoint / "checkpoints" / "latest.pt").read_bytes())
    assert main(["convert", "s3://models/latest.pt", "s3://photos-in", "s3://photos-out/", *FAST, "--engine", "ray",
                 "--batch-size", "4"]) == 1
    captured = capsys.readouterr()
    assert "converted 19, already done 0, failed 1" in captured.out
    reason = local_err.split("broken.jpg: ")[1].splitlines()[0]
    assert f"failed: s3://photos-in/broken.jpg: {reason}" in captured.err
    expected = local_files(tmp_path / "local")
    first = objects(s3, "photos-out")
    assert len(expected) == 19 and {name: data for name, (data, _) in first.items()} == expected

    assert main(["convert", str(checkpoint), "s3://photos-in", "s3://photos-out", *FAST, "--engine", "ray"]) == 1
    assert "converted 0, already done 19, failed 1" in capsys.readouterr().out
    assert objects(s3, "photos-out") == first  # same bytes, same modification times: nothing rewritten


def test_local_paths_match_local_conversion_and_a_rerun_converts_only_what_is_missing(
        ray_cluster, checkpoint, photo, tmp_path, capsys):
    photos = write_collection(tmp_path / "in", photo)
    assert main(["convert", str(checkpoint), str(photos), str(tmp_path / "local"), *FAST]) == 1
    out = tmp_path / "ray"
    assert main(["convert", str(checkpoint), str(photos), str(out), *FAST, "--engine", "ray", "--workers", "1"]) == 1
    assert local_files(out) == local_files(tmp_path / "local")
    # A driver killed mid-run leaves some outputs whole and others absent: the rerun does the rest.
    removed = sorted(out.rglob("*.png"))[:5]
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p not in removed}
    for path in removed:
        path.unlink()
    capsys.readouterr()
    assert main(["convert", str(checkpoint), str(photos), str(out), *FAST, "--engine", "ray"]) == 1
    assert "converted 5, already done 14, failed 1" in capsys.readouterr().out
    assert local_files(out) == local_files(tmp_path / "local")
    assert {p: p.stat().st_mtime_ns for p in kept} == kept


def test_model_shipped_through_the_object_store_gives_the_same_pixels(ray_cluster, checkpoint, photo, tmp_path):
    from translate.inference.options import InferenceOptions
    from translate.inference.ray_engine import RaySettings, convert_with_ray

    write_image(tmp_path / "in" / "a.png", photo("rocket", (48, 64)))
    assert main(["convert", str(checkpoint), str(tmp_path / "in"), str(tmp_path / "local"), *FAST]) == 0
    report = convert_with_ray(str(checkpoint), str(tmp_path / "in"), f"file://{tmp_path}/ray",
                              options=InferenceOptions(device="cpu", precision="fp32"),
                              settings=RaySettings(workers=1, ship_model=True))
    assert report.ok and len(report.converted) == 1
    assert local_files(tmp_path / "ray") == local_files(tmp_path / "local")


def _kill_one_worker_when(condition) -> dict:
    """Watch from a thread; once `condition()` holds, ray.kill one live ConvertActor (restart allowed)."""
    from ray._private import state
    from ray._raylet import ActorID

    seen: dict = {}

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "killed" not in seen:
            alive = [a for a in state.actors().values()
                     if "ConvertActor" in a["ActorClassName"] and a["State"] == "ALIVE"]
            if alive and condition():
                seen["outputs_at_kill"] = condition()
                worker = ray._private.worker.global_worker
                worker.core_worker.kill_actor(ActorID.from_hex(alive[0]["ActorID"]), False)  # as ray.kill(a)
                seen["killed"] = alive[0]["ActorID"]
            time.sleep(0.02)

    seen["thread"] = threading.Thread(target=watch, daemon=True)
    seen["thread"].start()
    return seen


def test_a_worker_killed_mid_run_is_retried_and_every_output_is_written(ray_cluster, checkpoint, photo, tmp_path):
    from translate.inference.options import InferenceOptions
    from translate.inference.ray_engine import RaySettings, convert_with_ray

    for i in range(32):
        write_image(tmp_path / "in" / f"{i:02d}.png", photo(["coffee", "rocket", "astronaut"][i % 3], (96, 128)))
    out = tmp_path / "out"
    count = lambda: len(list(out.glob("*.png"))) if out.is_dir() else 0  # noqa: E731
    seen = _kill_one_worker_when(lambda: count() if count() >= 2 else 0)
    report = convert_with_ray(str(checkpoint), str(tmp_path / "in"), str(out),
                              options=InferenceOptions(device="cpu", precision="fp32"),
                              settings=RaySettings(workers=2, batch_rows=1))
    seen["thread"].join(timeout=5)
    assert "killed" in seen and seen["outputs_at_kill"] < 32  # the kill landed mid-run
    assert report.ok and len(report.converted) + len(report.skipped_existing) == 32
    assert sorted(p.name for p in out.iterdir()) == [f"{i:02d}.png" for i in range(32)]
    for path in out.iterdir():
        assert read_image(path).shape == (96, 128, 3)
