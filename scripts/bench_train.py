"""Seconds per training iteration, fp32 eager vs the fast paths, side by side in one run.

pix2pix: unet_256 + 70x70 PatchGAN; CycleGAN, CUT and FastCUT: their paper defaults (resnet_9blocks
+ instance-norm 70x70 PatchGAN; anti-aliased for CUT and FastCUT, with PatchNCE on 5 layers x 256
patches); 256x256, batch 1, on real photos (skimage.data). Each variant is timed in a fresh
subprocess so none inherits another's caches or allocator state; its peak memory is reported beside
it (on CPU the process's peak resident set, and its growth from just before the trainer was built;
on CUDA the peak allocated memory), and every unpaired method as a ratio of CycleGAN's s/iter.
Also prints a short learning-parity check (fp32 vs bf16).

    python scripts/bench_train.py                 # every method, default variants
    python scripts/bench_train.py --method pix2pix --iters 10
    python scripts/bench_train.py --method unpaired --parity-steps 0   # CycleGAN, CUT, FastCUT
    python scripts/bench_train.py --method unpaired --device cuda --parity-steps 0
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "fp32 eager": {"amp": "off", "channels_last": False},
    "bf16 autocast": {"amp": "bf16", "channels_last": False},
    "bf16 + channels_last": {"amp": "bf16", "channels_last": True},
}
# (generator, discriminator) presets; None keeps the method's own defaults.
NETS = {"pix2pix": ("unet_256", "patchgan_70"), "cyclegan": None, "cut": None, "fastcut": None}
GROUPS = {"all": list(NETS), "unpaired": ["cyclegan", "cut", "fastcut"]}


def _make_data(root: Path, method: str, size: int, n: int = 4) -> None:
    import cv2
    import numpy as np
    import skimage.data

    from translate.data.images import write_image

    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field"]
    photos = [cv2.resize(getattr(skimage.data, name)(), (size, size), interpolation=cv2.INTER_AREA) for name in names]
    for i in range(n):
        a = photos[i % len(photos)]
        b = np.ascontiguousarray(255 - a[:, :, ::-1])  # a learnable mapping: channel swap + negative
        if method == "pix2pix":
            write_image(root / "train" / f"{i}.png", np.concatenate([a, b], axis=1))
        else:
            write_image(root / "trainA" / f"{i}.png", a)
            write_image(root / "trainB" / f"{i}.png", photos[(i + 1) % len(photos)])  # unpaired


def _time_variant(method: str, variant: str, iters: int, size: int, device: str) -> dict:
    """Runs in a subprocess: build the real Trainer and time its train_step."""
    import torch

    from translate.recipes import resolve_config
    from translate.training.loop import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        _make_data(root, method, size)
        runtime = {**VARIANTS[variant], "device": device}
        nets = dict(zip(("generator", "discriminator"), NETS[method] or ()))
        config = resolve_config(method, overrides={
            **nets, "data": {"root": str(root), "crop_size": size, "load_size": size}, "runtime": runtime})
        start_mib = _rss_mib()
        trainer = Trainer(config, Path(tmp) / "run")
        batch = trainer._to_device(next(iter(trainer._loader())))
        cuda = trainer.device.type == "cuda"
        for _ in range(2):  # warm-up: allocator, oneDNN primitive caches
            trainer.train_step(batch)
        times = []
        for _ in range(iters):
            if cuda:  # time the kernels, not their queueing
                torch.cuda.synchronize(trainer.device)
            start = time.perf_counter()
            trainer.train_step(batch)
            if cuda:
                torch.cuda.synchronize(trainer.device)
            times.append(time.perf_counter() - start)
        times.sort()
        peak = torch.cuda.max_memory_allocated(trainer.device) / 2**20 if cuda else _peak_rss_mib()
        # The arithmetic of a step, after the timing: it bounds the s/iter ratios a compute-bound
        # device can reach. FastCUT's varies with its flip coin, so two steps are averaged.
        gflop = _gflop_per_step(trainer, batch) if variant == "fp32 eager" else None
    return {"median_s": times[len(times) // 2], "min_s": times[0], "threads": torch.get_num_threads(),
            "device": str(trainer.device), "peak_mib": peak, "growth_mib": None if cuda else peak - start_mib,
            "gflop": gflop}


def _gflop_per_step(trainer, batch, steps: int = 2) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        for _ in range(steps):
            trainer.train_step(batch)
    return counter.get_total_flops() / steps / 1e9


def _rss_mib() -> float:
    """This process's resident set now (Linux /proc; 0 where there is none)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)


def _peak_rss_mib() -> float:
    """This (fresh) process's peak resident set: imports, data and training together."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _learning_parity(steps: int) -> dict:
    """Same seed, same data, small pix2pix: final validation L1 with fp32 vs bf16 autocast."""
    from translate.recipes import resolve_config
    from translate.training.loop import train

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        _make_data(root, "pix2pix", 64, n=6)
        (root / "val").mkdir()
        for p in sorted((root / "train").glob("*.png"))[-2:]:
            p.rename(root / "val" / p.name)
        for amp in ("off", "bf16"):
            config = resolve_config("pix2pix", overrides={
                "generator": "unet_128",
                "generator.num_downs": 6, "generator.base_channels": 16, "generator.norm": "instance",
                "generator.dropout": 0.0, "discriminator.base_channels": 16,
                "data": {"root": str(root), "crop_size": 64, "load_size": 64},
                "optim": {"epochs": steps // 4, "epochs_decay": 0, "lr_g": 5e-4, "lr_d": 5e-4},
                "runtime": {"amp": amp, "device": "cpu", "log_every_steps": 1000}})
            result = train(config=config, run_dir=Path(tmp) / f"run_{amp}")
            out[amp] = {"first_val_l1": result.val_history[0]["l1"], "final_val_l1": result.val_history[-1]["l1"],
                        "final_val_psnr": result.val_history[-1]["psnr"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=[*NETS, *GROUPS], default="all")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--parity-steps", type=int, default=120, help="0 skips the learning-parity check")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1 ...")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        print(json.dumps(_time_variant(args._child[0], args._child[1], args.iters, args.size, args.device)))
        return
    results = {}
    methods = GROUPS.get(args.method, [args.method])
    for method in methods:
        for variant in VARIANTS:
            cmd = [sys.executable, __file__, "--iters", str(args.iters), "--size", str(args.size),
                   "--device", args.device, "--_child", method, variant]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{method} / {variant}: failed\n{proc.stderr[-2000:]}")
                continue
            results.setdefault(method, {})[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{method} / {variant}: {results[method][variant]['median_s']:.3f} s/iter", flush=True)
    first = next(iter(next(iter(results.values())).values())) if results else {}
    print(f"\nseconds per training iteration, {args.size}x{args.size}, batch 1, {first.get('device', args.device)} "
          f"({first.get('threads')} threads), median of {args.iters}; peak memory "
          + ("allocated on the GPU" if args.device.startswith("cuda") else "resident (growth: from before the trainer)"))
    print(f"{'method':10s} {'variant':24s} {'s/iter':>8s} {'speed-up':>9s} {'x CycleGAN':>10s} {'peak MiB':>9s} "
          f"{'growth':>7s}")
    for method, rows in results.items():
        base = rows.get("fp32 eager", {}).get("median_s")
        for variant, row in rows.items():
            speedup = f"{base / row['median_s']:.2f}x" if base else "-"
            cyclegan = results.get("cyclegan", {}).get(variant, {}).get("median_s")
            ratio = f"{row['median_s'] / cyclegan:.2f}" if cyclegan else "-"
            growth = "-" if row["growth_mib"] is None else f"{row['growth_mib']:.0f}"
            print(f"{method:10s} {variant:24s} {row['median_s']:8.3f} {speedup:>9s} {ratio:>10s} "
                  f"{row['peak_mib']:9.0f} {growth:>7s}")
    gflop = {method: rows.get("fp32 eager", {}).get("gflop") for method, rows in results.items()}
    if gflop.get("cyclegan") and len(gflop) > 1:
        print("arithmetic per step (torch's FLOP counter, fp32): " + ", ".join(
            f"{method} {value:.0f} GFLOP ({value / gflop['cyclegan']:.2f}x CycleGAN)"
            for method, value in gflop.items() if value))
    if args.parity_steps:
        parity = _learning_parity(args.parity_steps)
        results["learning_parity"] = parity
        print(f"\nlearning parity (small pix2pix, {args.parity_steps} steps, same seed and data):")
        for amp, row in parity.items():
            print(f"  amp={amp:4s} val L1 {row['first_val_l1']:.4f} -> {row['final_val_l1']:.4f}, "
                  f"PSNR {row['final_val_psnr']:.2f} dB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
