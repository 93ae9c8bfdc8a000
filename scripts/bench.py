"""One benchmark suite: runs the training and conversion benchmarks, writes one JSON and prints a table.

    python scripts/bench.py [--out bench.json] [--quick]

Each part runs in its own process (so peaks and caches stay separate) and prints its own table as
it goes; the combined results land in one JSON file, with the machine described (CPU count, torch
version, GPU name and peak GPU memory where one is present).
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> dict:
    import os

    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench.json")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run, not for reporting)")
    args = parser.parse_args()
    results = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        parts = {
            "train": [sys.executable, str(HERE / "bench_train.py"), "--json", f"{tmp}/train.json",
                      *(["--iters", "2", "--parity-steps", "0"] if args.quick else [])],
            "convert": [sys.executable, str(HERE / "bench_convert.py"),
                        *(["--images", "8", "--rounds", "1", "--sizes", "512,1024"] if args.quick else [])],
        }
        for name, cmd in parts.items():
            print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
            print(proc.stdout, flush=True)
            path = Path(tmp) / f"{name}.json"
            # bench_convert prints tables only: keep its report as text beside the parsed train numbers.
            results[name] = {"exit_code": proc.returncode, "report": proc.stdout.splitlines()}
            if path.exists():
                results[name]["results"] = json.loads(path.read_text())
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
