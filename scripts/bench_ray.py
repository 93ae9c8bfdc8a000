"""Benchmark `translate convert --engine ray` against local conversion: prints numbers, asserts nothing.

1. Local: `convert_folder` on N real photos (skimage.data, 256x256 JPEG), model loaded beforehand.
2. Ray start-up: seconds for `ray.init` of a local Ray on this machine's CPUs.
3. Ray, 1 worker (all CPUs) and 2 workers (half each), end to end inside that Ray session:
   planning, actor start and model load per worker, conversion, summary.
4. Object storage: moto's S3 server on loopback (if installed) through pyarrow, upload and
   download MB/s of the photos and outputs (a ceiling of this machine's client, not of S3).
5. A projection of a 100-million-image job on N workers from the measured per-image cost, with
   the per-worker speed replaceable by a GPU's (--worker-images-per-s).

Usage: python scripts/bench_ray.py [--images 48] [--size 256] [--preset resnet_9blocks] [--device auto]
       [--worker-images-per-s X]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch

from translate.checkpoint import save_checkpoint
from translate.data.images import write_image
from translate.inference.folder import convert_folder
from translate.inference.options import InferenceOptions
from translate.inference.translator import Translator
from translate.nets import PRESETS, build_net, spec_to_dict

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
          "retina", "colorwheel")
JOB = 100_000_000


def write_photos(root: Path, n: int, size: int) -> None:
    """n distinct square crops of real photos (flipped and shifted variants of PHOTOS)."""
    for i in range(n):
        image = getattr(skimage.data, PHOTOS[i % len(PHOTOS)])()[:, :, :3]
        side = min(image.shape[:2]) - 8 * (i // len(PHOTOS))
        crop = image[:side, :side]
        crop = crop[:, ::-1] if (i // len(PHOTOS)) % 2 else crop
        write_image(root / f"{i:03d}.jpg", cv2.resize(np.ascontiguousarray(crop), (size, size),
                                                      interpolation=cv2.INTER_AREA))


def make_checkpoint(path: Path, preset: str) -> Path:
    torch.manual_seed(0)
    spec = PRESETS[preset]
    save_checkpoint(path / "checkpoints" / "latest.pt",
                    {"config": {"method": "pix2pix", "task": "custom", "direction": "a_to_b"},
                     "specs": {"g_ab": spec_to_dict(spec)}, "nets": {"g_ab": build_net(spec).state_dict()},
                     "step": 0, "epoch": 0})
    return path


def s3_rates(photos: Path, outputs: Path) -> tuple[float, float] | None:
    """(upload MB/s, download MB/s) of these files through pyarrow to moto's S3 on loopback."""
    try:
        from moto.server import ThreadedMotoServer
        from pyarrow import fs
    except ModuleNotFoundError:
        return None
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    s3 = fs.S3FileSystem(endpoint_override=f"http://{host}:{port}", allow_bucket_creation=True)
    s3.create_dir("bench")
    files = [p for root in (photos, outputs) for p in sorted(root.iterdir())]
    data = [p.read_bytes() for p in files]
    total = sum(len(d) for d in data) / 1e6
    start = time.perf_counter()
    for i, content in enumerate(data):
        with s3.open_output_stream(f"bench/{i}") as stream:
            stream.write(content)
    upload = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(len(data)):
        s3.open_input_stream(f"bench/{i}").read()
    download = time.perf_counter() - start
    server.stop()
    return total / upload, total / download


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--preset", default="resnet_9blocks")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--worker-images-per-s", type=float,
                        help="one worker's speed for the projection, e.g. a GPU's (default: measured here)")
    args = parser.parse_args()
    import ray

    from translate.inference.ray_engine import RaySettings, convert_with_ray

    cpus = os.cpu_count() or 1
    options = InferenceOptions(device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_photos(tmp / "in", args.images, args.size)
        model = make_checkpoint(tmp / "run", args.preset)
        translator = Translator.load(model, options)
        print(f"{args.images} photos {args.size}x{args.size}, {args.preset}, {translator.describe()}, {cpus} CPUs")
        local = convert_folder(translator, tmp / "in", tmp / "local")
        print(f"local convert:      {local.images_per_s:6.2f} images/s ({local.seconds:.1f} s)")
        start = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False)
        print(f"Ray start-up:       {time.perf_counter() - start:6.2f} s (local Ray, {cpus} CPUs)")
        rates = {}
        for workers in (1, 2):
            settings = RaySettings(workers=workers, cpus_per_worker=max(1, cpus // workers))
            report = convert_with_ray(str(model), str(tmp / "in"), str(tmp / f"ray{workers}"), options=options,
                                      settings=settings)
            rates[workers] = report.images_per_s
            print(f"ray, {workers} worker(s):    {report.images_per_s:6.2f} images/s ({report.seconds:.1f} s, "
                  f"{report.images_per_s / local.images_per_s:.2f}x local; actor start and model load included)")
        ray.shutdown()
        io = s3_rates(tmp / "in", tmp / "local")
        per_image_mb = sum(p.stat().st_size for d in ("in", "local") for p in (tmp / d).iterdir()) / args.images / 1e6
        project(args.worker_images_per_s or rates[1], io, per_image_mb)


def project(worker_rate: float, io: tuple[float, float] | None, per_image_mb: float) -> None:
    """Print days for a 100-million-image job on N workers, compute-bound and object-storage-bound."""
    print(f"\nprojection, {JOB:,} images ({per_image_mb * 1000:.0f} KB read + written per image):")
    if io:
        print(f"  object storage (moto on loopback, one client): up {io[0]:.0f} MB/s, down {io[1]:.0f} MB/s; "
              f"{per_image_mb / min(io) * 1000:.1f} ms of I/O per image per worker at that rate")
    for n in (8, 64, 512):
        compute_h = JOB / (worker_rate * n) / 3600
        line = f"  {n:4d} workers at {worker_rate:.1f} images/s each: {compute_h:8.1f} h of compute"
        if io:
            line += f"; needs {per_image_mb * worker_rate * n:.1f} MB/s from the object store in all"
        print(line)
    print("  (the driver lists all inputs and outputs once up front: at 100M objects, list by prefix and run "
          "one job per prefix so the listing and the row table stay in the driver's memory)")


if __name__ == "__main__":
    main()
