"""Benchmark `translate convert` on CPU: prints numbers, asserts nothing.

1. Folder throughput, side by side in one process: a plain per-image eager fp32 loop (read,
   to tensor, net, to image, write: what the classic test script does) against `convert_folder`
   (bf16 autocast where the CPU has it, channels_last where it pays, same-size batching, decode
   and encode on worker threads), on a folder of 256x256 real photos (skimage.data), for
   unet_256 and resnet_9blocks at full width, randomly initialised.
2. Large images, one subprocess per measurement so peak RSS (VmHWM) is separate: wall time and
   peak RSS converting one NxN photo file to a PNG, and seconds per megapixel.
3. Accuracy: PSNR of bf16 against fp32 output on a real photo.
4. Start-up: whole-process wall time of `python -m translate convert` on one 256x256 photo
   (resnet_9blocks), best and median of three runs (target: 3 s on a 2-core laptop).
5. Published SR model: one NxN photo (4096 by default) through a random-weight x4 ESRGAN-family
   model file (RRDBNet in the published {"params_ema": ...} layout, loaded by detection, [0, 1]
   range) with `translate convert` in its own process: wall time, peak RSS and the tile plan, next to
   the output image's size and that of the full-size float32 output tiled conversions used to hold.
   Full size (23 blocks, 64 features) is hours on a 2-core CPU and seconds on a GPU; --sr-blocks
   and --sr-feat shrink the net, --sr-size the photo.
6. Safety: a folder holding a 20000x20000 PNG decompression bomb (about 1 MB) and ten photos (the
   bomb is refused by its header, the rest convert), and one real 100-megapixel photo, each
   through the CLI in its own process: wall time and peak RSS.

Usage: python scripts/bench_convert.py [--images 24] [--sizes 512,1024,2048] [--full]
       [--skip folder,accuracy,large,startup,published,safety] [--sr-size 4096] [--device auto]
(--full adds 4096x4096 for resnet_9blocks, several minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch

from translate.data.images import image_to_tensor, read_image, tensor_to_image, write_image
from translate.inference.folder import convert_folder
from translate.inference.translator import Translator
from translate.checkpoint import save_checkpoint
from translate.nets import PRESETS, ResnetSpec, build_net, spec_to_dict

NETS = ("unet_256", "resnet_9blocks")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
          "retina", "colorwheel")


def peak_rss_bytes() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def make_net(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_net(PRESETS[name]).eval()


def photo(name: str, size: int) -> np.ndarray:
    image = getattr(skimage.data, name)()
    image = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
    image = image[:, :, :3]
    side = min(image.shape[:2])  # centre square crop, then resize: a real photo at any size
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    image = image[top : top + side, left : left + side]
    interpolation = cv2.INTER_AREA if size <= side else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def eager_loop(net: torch.nn.Module, files: list[Path], out: Path) -> float:
    """The classic way: one image at a time, fp32, no threads. Returns images/s."""
    start = time.perf_counter()
    for path in files:
        x = image_to_tensor(read_image(path))[None]
        with torch.no_grad():
            y = net(x)
        write_image(out / path.name, tensor_to_image(y[0]))
    return len(files) / (time.perf_counter() - start)


def forward_only(net: torch.nn.Module, size: int, seconds: float = 5.0) -> float:
    """Forward passes of one random image, fp32, batch 1 (how the reference figures were taken)."""
    x = torch.rand(1, 3, size, size) * 2 - 1
    with torch.no_grad():
        net(x)
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            net(x)
            n += 1
    return n / (time.perf_counter() - start)


def folder_benchmark(n_images: int, rounds: int, tmp: Path) -> None:
    src = tmp / "photos256"
    for i in range(n_images):
        image = photo(PHOTOS[i % len(PHOTOS)], 256)
        image = image if i < len(PHOTOS) else np.ascontiguousarray(image[:, ::-1] if i % 2 else image[::-1])
        write_image(src / f"{i:03d}.jpg", image)
    files = sorted(src.iterdir())
    print(f"\n## Folder of {n_images} real 256x256 JPEG photos, end to end (decode, net, encode); "
          f"best of {rounds} interleaved rounds, images/s")
    print("   classic code, forward only, fp32, batch 1 (from the brief): resnet_9blocks 1.66, unet_256 8.8")
    print(f"{'net':16s} {'fwd fp32 b1':>11s} {'eager loop':>10s} {'ours fp32':>9s} {'ours auto':>9s} "
          f"{'vs eager':>8s} {'vs classic':>10s}")
    classic = {"resnet_9blocks": 1.66, "unet_256": 8.8}
    for name in NETS:
        net = make_net(name)
        translators = {precision: Translator.from_net(make_net(name), PRESETS[name], device="cpu", precision=precision)
                       for precision in ("fp32", "auto")}
        for translator in translators.values():
            convert_folder(translator, src, tmp / f"warm_{name}", overwrite=True)  # warm-up
        best = {"fwd": 0.0, "eager": 0.0, "fp32": 0.0, "auto": 0.0}
        for _ in range(rounds):
            best["fwd"] = max(best["fwd"], forward_only(net, 256))
            best["eager"] = max(best["eager"], eager_loop(net, files, tmp / f"eager_{name}"))
            for precision, translator in translators.items():
                report = convert_folder(translator, src, tmp / f"{precision}_{name}", overwrite=True)
                best[precision] = max(best[precision], report.images_per_s)
        auto = translators["auto"]
        print(f"{name:16s} {best['fwd']:11.2f} {best['eager']:10.2f} {best['fp32']:9.2f} {best['auto']:9.2f} "
              f"{best['auto'] / best['eager']:7.2f}x {best['auto'] / classic[name]:9.2f}x   "
              f"(auto = {auto.precision}, channels_last={auto.runner.channels_last}, batch<={auto.max_batch(256, 256)})",
              flush=True)


def accuracy(tmp: Path) -> None:
    print("\n## bf16 vs fp32 output (same net, same photo), 8-bit PSNR")
    for name in NETS:
        for size in (256, 1024):
            image = photo("coffee", size)
            fp32 = Translator.from_net(make_net(name), PRESETS[name], device="cpu", precision="fp32")(image)
            bf16 = Translator.from_net(make_net(name), PRESETS[name], device="cpu", precision="bf16")(image)
            print(f"{name:16s} {size:5d}px  PSNR {psnr(bf16, fp32):6.2f} dB  "
                  f"max |diff| {np.abs(bf16.astype(int) - fp32.astype(int)).max()} levels")


def child(name: str, size: int, tmp: Path, precision: str, budget: int | None) -> None:
    """One measurement in a fresh process: convert an NxN photo file; print a JSON line."""
    src = tmp / f"photo_{size}.jpg"
    translator = Translator.from_net(make_net(name), PRESETS[name], device="cpu", precision=precision,
                            memory_budget_bytes=budget)
    translator(photo("coffee", 64))  # warm-up: first-call allocations are not per-megapixel costs
    dst = tmp / f"out_{name}_{size}_{precision}.png"
    start = time.perf_counter()
    translator.translate_file(src, dst, overwrite=True)
    seconds = time.perf_counter() - start
    tiles = translator.runner.image_tile_plan(size, size)
    print(json.dumps({"seconds": seconds, "peak_rss": peak_rss_bytes(), "tiles": tiles}))


def run_child(name: str, size: int, tmp: Path, precision: str = "auto", budget: int | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", name, str(size), str(tmp), precision, str(budget or 0)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"child {name} {size} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def large_benchmark(sizes: list[int], full: bool, tmp: Path) -> None:
    print("\n## One large photo file -> PNG, each in its own process (auto precision)")
    print(f"{'net':16s} {'size':>9s} {'wall s':>8s} {'s/MP':>7s} {'peak RSS':>9s}  tiles")
    for size in sorted(set(sizes) | ({4096} if full else set())):
        write_image(tmp / f"photo_{size}.jpg", photo("astronaut", size))
    for name in NETS:
        for size in sorted(set(sizes) | ({4096} if full else set())):
            if size == 4096 and name == "resnet_9blocks" and not full:
                continue
            r = run_child(name, size, tmp)
            mp = size * size / 1e6
            tiles = "x".join(map(str, r["tiles"])) + " px tiles" if r["tiles"] else "whole"
            print(f"{name:16s} {size:4d}x{size:<4d} {r['seconds']:8.1f} {r['seconds'] / mp:7.2f} "
                  f"{r['peak_rss'] / 2**30:7.2f} GB  {tiles}", flush=True)


def write_checkpoint(path: Path, spec) -> Path:
    torch.manual_seed(0)
    save_checkpoint(path, {"config": {"method": "pix2pix", "task": "custom"}, "specs": {"g_ab": spec_to_dict(spec)},
                           "nets": {"g_ab": build_net(spec).state_dict()}, "step": 0, "epoch": 0})
    return path


def write_png_bomb(path: Path, width: int, height: int) -> None:
    """A real width x height RGB PNG of zeros, compressed row by row (never held in memory)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, row, parts = zlib.compressobj(9), bytes(1 + 3 * width), []
    for _ in range(height):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts))
                     + chunk(b"IEND", b""))


def convert_child(args: list[str]) -> None:
    """`translate convert ARGS` in this fresh process; prints a JSON line with rc and peak RSS."""
    from translate.cli import main as cli_main

    start = time.perf_counter()
    rc = cli_main(["convert", *args])
    print(json.dumps({"rc": rc, "seconds": time.perf_counter() - start, "peak_rss": peak_rss_bytes()}))


def run_convert(*args: str) -> dict:
    cmd = [sys.executable, __file__, "--convert-child", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        raise SystemExit(f"convert {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return {**json.loads(lines[-1]), "stdout": "\n".join(lines[:-1]), "stderr": result.stderr}


def startup_benchmark(tmp: Path) -> None:
    print("\n## Start-up: `python -m translate convert RUN photo.png OUT`, whole process, one 256x256 photo")
    run = write_checkpoint(tmp / "startup_run" / "checkpoints" / "latest.pt", PRESETS["resnet_9blocks"]).parents[1]
    write_image(tmp / "startup.png", photo("astronaut", 256))
    times = []
    for i in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "translate", "convert", str(run), str(tmp / "startup.png"),
                        str(tmp / f"startup_out_{i}.png")], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    print(f"resnet_9blocks, auto precision: best {min(times):.2f} s, median {statistics.median(times):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in times)})", flush=True)


def published_sr_benchmark(tmp: Path, *, size: int, blocks: int, feat: int, device: str) -> None:
    from translate.nets import RrdbnetSpec

    spec = RrdbnetSpec(base_channels=feat, n_blocks=blocks)
    torch.manual_seed(0)
    weights = tmp / "RealESRGAN_x4plus_random.pth"
    torch.save({"params_ema": build_net(spec).state_dict()}, weights)  # Real-ESRGAN's file layout
    src = tmp / f"sr_photo_{size}.png"
    write_image(src, photo("astronaut", size))
    probe = Translator.load(weights, device=device)  # the plan the converter will make, for the report
    tiles = probe.runner.image_tile_plan(size, size)
    out_side = probe.scale * size
    image_bytes, float_bytes = 3 * out_side**2, 4 * 3 * out_side**2  # uint8 output; a float32 output buffer
    band = f", float row band {4 * 3 * probe.scale**2 * tiles[0] * size / 2**20:.0f} MB" if tiles else ""
    print(f"\n## Published x4 RRDBNet ({blocks} blocks, {feat} features, random weights) on one {size}x{size} "
          f"photo -> {out_side}x{out_side} PNG through the CLI, device {probe.device}, {probe.precision}")
    print(f"activation estimate {probe.runner.bytes_per_px:.0f} B/input px, budget {probe.runner.memory_budget_bytes / 2**30:.2f} GB,"
          f" {'x'.join(map(str, tiles)) + ' px tiles' if tiles else 'whole'}{band}")
    del probe
    megapixels = str(16 * size * size / 1e6 + 1)
    r = run_convert(str(weights), str(src), str(tmp / "sr_out.png"), "--device", device, "--max-megapixels", megapixels)
    print(f"rc {r['rc']}, {r['seconds']:.1f} s ({r['seconds'] / (size * size / 1e6):.2f} s per input MP), "
          f"peak RSS {r['peak_rss'] / 2**30:.2f} GB; output image (uint8) {image_bytes / 2**30:.2f} GB; "
          f"a full-size float32 output (tiled conversions held one before row bands) "
          f"{float_bytes / 2**30:.2f} GB", flush=True)
    if r["rc"]:
        print(r["stderr"][-2000:])


def safety_benchmark(tmp: Path) -> None:
    # A small net: these measure the pipeline's memory and refusals, not the net's speed.
    run = write_checkpoint(tmp / "small_run" / "checkpoints" / "latest.pt", ResnetSpec(base_channels=8, n_blocks=2))
    folder = tmp / "bomb_folder"
    folder.mkdir()
    start = time.perf_counter()
    write_png_bomb(folder / "bomb.png", 20000, 20000)
    made = time.perf_counter() - start
    for i in range(10):
        write_image(folder / f"photo_{i}.jpg", photo(PHOTOS[i % len(PHOTOS)], 256 + 32 * i))
    print(f"\n## Folder: 20000x20000 PNG bomb ({(folder / 'bomb.png').stat().st_size / 2**20:.2f} MB, made in "
          f"{made:.1f} s) + ten photos, resnet base_channels=8 n_blocks=2, through the CLI")
    r = run_convert(str(run), str(folder), str(tmp / "bomb_out"))
    reported = [line for line in r["stderr"].splitlines() if line.startswith("failed:")]
    print(f"rc {r['rc']}, {r['seconds']:.1f} s, peak RSS {r['peak_rss'] / 2**30:.2f} GB; {r['stdout'].strip()}")
    for line in reported:
        print(f"  {line}")
    side = 10000
    big = cv2.resize(skimage.data.astronaut(), (side, side), interpolation=cv2.INTER_CUBIC)
    write_image(tmp / "photo_100mp.png", big)
    del big
    print(f"\n## One real {side}x{side} ({side * side / 1e6:.0f} MP) photo -> PNG, same net, through the CLI")
    r = run_convert(str(run), str(tmp / "photo_100mp.png"), str(tmp / "out_100mp.png"))
    print(f"rc {r['rc']}, {r['seconds']:.1f} s, peak RSS {r['peak_rss'] / 2**30:.2f} GB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2, help="folder rounds; the best counts (noisy machines)")
    parser.add_argument("--sizes", default="512,1024,2048,4096",
                        help="large-image sizes (4096 for unet_256 only unless --full)")
    parser.add_argument("--full", action="store_true", help="also resnet_9blocks at 4096x4096")
    parser.add_argument("--skip", default="",
                        help="comma list of parts to skip: folder,accuracy,large,startup,published,safety")
    parser.add_argument("--sr-size", type=int, default=4096, help="published SR part: photo side (4096)")
    parser.add_argument("--sr-blocks", type=int, default=23, help="published SR part: RRDB blocks (23)")
    parser.add_argument("--sr-feat", type=int, default=64, help="published SR part: features (64)")
    parser.add_argument("--device", default="auto", help="published SR part: device (auto)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--convert-child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.convert_child:
        convert_child(args.convert_child)
        return
    if args.child:
        name, size, tmp, precision, budget = args.child
        child(name, int(size), Path(tmp), precision, int(budget) or None)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, load average {os.getloadavg()[0]:.2f}")
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp_name:
        tmp = Path(tmp_name)
        if "folder" not in skip:
            folder_benchmark(args.images, args.rounds, tmp)
        if "accuracy" not in skip:
            accuracy(tmp)
        if "large" not in skip:
            large_benchmark([int(s) for s in args.sizes.split(",")], args.full, tmp)
        if "startup" not in skip:
            startup_benchmark(tmp)
        if "published" not in skip:
            published_sr_benchmark(tmp, size=args.sr_size, blocks=args.sr_blocks, feat=args.sr_feat,
                                   device=args.device)
        if "safety" not in skip:
            safety_benchmark(tmp)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f} (other processes skew timings)")


if __name__ == "__main__":
    main()
