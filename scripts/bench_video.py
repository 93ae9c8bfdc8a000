"""Video benchmark: flicker with and without --temporal, throughput against still images, peak memory.

A tiny denoiser (ResNet generator, base_channels 16, 2 blocks) is trained here for a few hundred
L1 steps on noisy crops of scikit-image photos (not the clip's photo). The clip is a pan and zoom
over `astronaut` with fresh Gaussian sensor noise in every frame, so frame-by-frame denoising
leaves a different residue in each frame: flicker. Prints the temporal warping error (Lai et al.
2018) of frame-by-frame and stabilised outputs, per-frame PSNR between them, frames/s of the video
pipeline against the same frames converted as PNG stills, and peak memory.

    PYTHONPATH=$PWD python scripts/bench_video.py [--frames 120] [--steps 300] [--strength 0.8]
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from video_clips import pan_zoom, write_clip  # noqa: E402

from translate.data.images import image_to_tensor, read_image, write_image  # noqa: E402
from translate.inference.folder import convert_folder  # noqa: E402
from translate.inference.translator import Translator  # noqa: E402
from translate.inference.video import VideoSettings, convert_video  # noqa: E402
from translate.inference.video_io import decode, open_input  # noqa: E402
from translate.metrics import psnr  # noqa: E402
from translate.metrics.temporal import warping_error  # noqa: E402
from translate.nets import ResnetSpec, build_net  # noqa: E402

NOISE = 12.0  # sensor noise std in 0-255 units, in training and in the clip
TRAIN_PHOTOS = ("chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")


def train_denoiser(steps: int, seed: int = 0) -> tuple[torch.nn.Module, ResnetSpec]:
    """A tiny ResNet generator trained with L1 to remove Gaussian noise from 64x64 photo crops."""
    from skimage import data

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    photos = [getattr(data, name)() for name in TRAIN_PHOTOS]
    spec = ResnetSpec(base_channels=16, n_blocks=2)
    net = build_net(spec)
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    for step in range(steps):
        clean = []
        for _ in range(8):
            photo = photos[rng.integers(len(photos))]
            top, left = rng.integers(photo.shape[0] - 64), rng.integers(photo.shape[1] - 64)
            clean.append(image_to_tensor(np.ascontiguousarray(photo[top : top + 64, left : left + 64])))
        target = torch.stack(clean)
        noisy = (target + torch.randn_like(target) * (2 * NOISE / 255)).clamp(-1, 1)
        loss = F.l1_loss(net(noisy), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"  train step {step}: L1 {loss.item():.4f}")
    return net.eval(), spec


def frames_of(path: Path) -> list[np.ndarray]:
    container = open_input(path)
    try:
        return [item.rgb for item in decode(container, path) if hasattr(item, "rgb")]
    finally:
        container.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--strength", type=float, default=0.8)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: see tests/test_video.py)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"training the denoiser ({args.steps} steps)...")
    start = time.perf_counter()
    net, spec = train_denoiser(args.steps)
    print(f"  {time.perf_counter() - start:.0f} s")
    translator = Translator.from_net(net, spec, device="cpu", precision="fp32")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        clip = root / "noisy.mp4"
        write_clip(clip, pan_zoom(args.frames, args.width, args.height, noise=NOISE), crf=8)
        inputs = frames_of(clip)
        before_mib = peak_rss_mib()
        convert_video(translator, clip, root / "warm.mp4")  # warm-up: first-call costs out of the timings
        plain = convert_video(translator, clip, root / "plain.mp4")
        steady = convert_video(translator, clip, root / "steady.mp4", VideoSettings(temporal=args.strength))
        video_mib = peak_rss_mib()
        stills = root / "stills"
        for i, frame in enumerate(inputs):
            write_image(stills / f"{i:05d}.png", frame)
        report = convert_folder(translator, stills, root / "stills_out")
        plain_frames, steady_frames = frames_of(root / "plain.mp4"), frames_of(root / "steady.mp4")
        still_frames = [read_image(p) for p in sorted((root / "stills_out").glob("*.png"))]
        e_input = warping_error(inputs, inputs)
        e_stills = warping_error(inputs, still_frames)
        e_plain = warping_error(inputs, plain_frames)
        e_steady = warping_error(inputs, steady_frames)
        psnrs = [psnr(a, b, data_range=255) for a, b in zip(steady_frames, plain_frames)]
    print(f"clip: {len(inputs)} frames of {args.width}x{args.height}, sensor noise std {NOISE:g}, H.264 CRF 8")
    print(f"warping error x1e3 (lower is steadier): input {e_input * 1e3:.3f}, stills {e_stills * 1e3:.3f}, "
          f"frame by frame {e_plain * 1e3:.3f}, --temporal {args.strength:g} {e_steady * 1e3:.3f} "
          f"({100 * (1 - e_steady / e_plain):.1f} % lower; goal >= 30 %)")
    print(f"PSNR --temporal vs frame by frame: mean {np.mean(psnrs):.2f} dB, min {np.min(psnrs):.2f} dB (goal >= 30)")
    print(f"frames/s: video {plain.fps:.2f} (--temporal {steady.fps:.2f}), stills {report.images_per_s:.2f} "
          f"-> {plain.fps / report.images_per_s:.2f}x (goal >= 0.9x); 2 shared CPU cores, other jobs running")
    print(f"peak RSS: {before_mib:.0f} MiB after training and decoding the clip for the metric, {video_mib:.0f} MiB "
          f"after the three video conversions (+{video_mib - before_mib:.0f} MiB), {peak_rss_mib():.0f} MiB at the end")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
