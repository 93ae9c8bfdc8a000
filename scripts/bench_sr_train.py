"""Seconds per training iteration of the super-resolution GAN stage, fp32 vs bf16 side by side.

Default: the `realesrgan` recipe as it ships: RRDBNet x4 (23 blocks, 64 channels), 128x128 targets,
batch 4, VGG19 perceptual loss on five layers, U-Net discriminator with spectral norm, weight
averaging; `--task esrgan` swaps in ESRGAN's VGG-style discriminator, conv5_4 and the relativistic
loss. VGG19 is a random stand-in unless --vgg names the real file (timing does not depend on the
values). Each variant runs in a fresh subprocess; the step timed is the real Trainer.train_step.

    python scripts/bench_sr_train.py                      # auto device (CUDA when present), 5 iterations
    python scripts/bench_sr_train.py --iters 2 --device cpu
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {"fp32": "off", "bf16 autocast": "bf16"}
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field"]


def _setup(tmp: Path, vgg: str | None) -> tuple[Path, str]:
    import cv2
    import skimage.data
    import torch

    from translate.data.images import write_image

    root = tmp / "data"
    for name in PHOTOS:
        write_image(root / "train" / f"{name}.png", cv2.resize(getattr(skimage.data, name)(), (192, 160),
                                                                interpolation=cv2.INTER_AREA))
    if vgg:
        return root, vgg
    from torchvision.models.vgg import cfgs, make_layers

    path = tmp / "vgg19-random.pth"
    torch.save({f"features.{k}": v for k, v in make_layers(cfgs["E"]).state_dict().items()}, path)
    return root, str(path)


def _time_variant(task: str, amp: str, *, iters: int, device: str, batch_size: int, vgg: str | None) -> dict:
    """Runs in a subprocess: the recipe's Trainer, one fixed batch, warm-up then `iters` timed steps."""
    import torch

    from translate.recipes import resolve_config
    from translate.training.loop import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        root, weights = _setup(Path(tmp), vgg)
        config = resolve_config("pix2pix", recipe=task, overrides={
            "data.root": str(root), "optim.batch_size": batch_size, "perceptual.weights": weights,
            "runtime.amp": amp, "runtime.device": device})
        trainer = Trainer(config, Path(tmp) / "run")
        batch = trainer._to_device(next(iter(trainer._loader())))
        sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
        for _ in range(2):  # warm-up: allocator, cuDNN / oneDNN primitive caches
            trainer.train_step(batch)
        sync()
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            trainer.train_step(batch)
            sync()
            times.append(time.perf_counter() - start)
        memory = torch.cuda.max_memory_allocated() / 2**30 if trainer.device.type == "cuda" else None
        name = torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda" else "cpu"
    times.sort()
    return {"median_s": times[len(times) // 2], "min_s": times[0], "device": name,
            "threads": torch.get_num_threads(), "peak_gib": memory,
            "target_px": config.data.crop_size, "batch": config.optim.batch_size,
            "nets": f"{config.generator.kind} x{config.generator.scale} {config.generator.n_blocks} blocks + "
                    f"{config.discriminator.kind} + vgg19 {','.join(config.perceptual.layers)}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["realesrgan", "esrgan", "srgan"], default="realesrgan")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--vgg", help="the real VGG19 weights file (default: a random stand-in)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        result = _time_variant(args.task, VARIANTS[args._child], iters=args.iters, device=args.device,
                               batch_size=args.batch_size, vgg=args.vgg)
        print(json.dumps(result))
        return
    results = {}
    for variant in VARIANTS:
        cmd = [sys.executable, __file__, "--task", args.task, "--iters", str(args.iters), "--batch-size",
               str(args.batch_size), "--device", args.device, "--_child", variant, *(["--vgg", args.vgg] if args.vgg else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{variant}: failed\n{proc.stderr[-2000:]}")
            continue
        results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
    if not results:
        sys.exit(1)
    first = next(iter(results.values()))
    print(f"\n{args.task} training step: {first['nets']}; {first['target_px']}x{first['target_px']} targets, "
          f"batch {first['batch']}; {first['device']} ({first['threads']} threads), median of {args.iters}")
    print(f"{'variant':16s} {'s/iter':>8s} {'min':>8s} {'speed-up':>9s} {'peak GiB':>9s}")
    base = results.get("fp32", {}).get("median_s")
    for variant, row in results.items():
        speedup = f"{base / row['median_s']:.2f}x" if base else "-"
        peak = f"{row['peak_gib']:.2f}" if row["peak_gib"] is not None else "-"
        print(f"{variant:16s} {row['median_s']:8.3f} {row['min_s']:8.3f} {speedup:>9s} {peak:>9s}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
