"""The Krita plug-in's round trip vs Translator in-process, on a 2048x2048 photo through a U-Net.

In-process: `Translator(image)` on the RGB photo. Plug-in: what the docker does after reading the
layer, run by the system python3 (the Python Krita embeds: standard library and PyQt5) with the
plug-in's own functions: Krita's BGRA bytes -> PNG (pixels.encode_png) -> POST /jobs, poll,
GET the result (client.run_job) -> decode (pixels.decode_png) -> Krita's bytes again, against a real
`translate serve` of the same checkpoint on loopback with the same engine options. Prints the
median of --repeats runs of each, the plug-in's overhead, and the goal (<= 25 % or <= 1 s).

    PYTHONPATH=$PWD .venv/bin/python scripts/bench_plugin.py [--size 2048] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch

from translate.serving.launch import start_local_service

ROOT = Path(__file__).resolve().parents[1]
# Runs under /usr/bin/python3: times the plug-in's functions on Krita-layout bytes.
PLUGIN_SIDE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from translate_krita import client, pixels
server, raw, width, height, repeats = sys.argv[2], open(sys.argv[3], "rb").read(), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
listing = client.list_models(server)
model, limit = listing["models"][0]["name"], listing["limits"]["max_upload_bytes"]
runs = []
for _ in range(repeats):
    t0 = time.perf_counter()
    image = pixels.from_krita(raw, width, height, "RGBA", "U8")
    png = pixels.encode_png(image, limit)
    t1 = time.perf_counter()
    answer = client.run_job(server, model, png)
    t2 = time.perf_counter()
    back = pixels.to_krita(pixels.decode_png(answer, 8, image.alpha), "RGBA")
    t3 = time.perf_counter()
    assert len(back) == len(raw)
    runs.append({"total": t3 - t0, "encode": t1 - t0, "service": t2 - t1, "decode": t3 - t2, "png_mb": len(png) / 1e6})
print(json.dumps(runs))
"""


def write_unet(path: Path) -> Path:
    from translate.checkpoint import save_checkpoint
    from translate.nets import build_net, preset, spec_to_dict

    spec = preset("unet_256", base_channels=16)
    torch.manual_seed(0)
    save_checkpoint(path, {"config": {"method": "pix2pix", "task": "custom", "direction": "a_to_b"},
                           "specs": {"g_ab": spec_to_dict(spec)}, "nets": {"g_ab": build_net(spec).state_dict()},
                           "step": 0, "epoch": 0})
    return path


def start_service(checkpoint: Path) -> tuple[subprocess.Popen, str]:
    return start_local_service([str(checkpoint), "--device", "cpu", "--precision", "fp32"], timeout_s=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python", default="/usr/bin/python3", help="Krita's Python (standard library + PyQt5)")
    args = parser.parse_args()
    from translate import Translator

    photo = cv2.resize(skimage.data.astronaut(), (args.size, args.size), interpolation=cv2.INTER_CUBIC)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = write_unet(Path(tmp) / "unet.pt")
        translator = Translator.load(checkpoint, device="cpu", precision="fp32")
        translator(photo)  # warm-up
        in_process = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            translator(photo)
            in_process.append(time.perf_counter() - t0)
        del translator
        raw = Path(tmp) / "layer.raw"  # the layer as Krita hands it over: B G R A bytes
        raw.write_bytes(np.concatenate([photo[:, :, ::-1], np.full((*photo.shape[:2], 1), 255, np.uint8)], 2).tobytes())
        service, url = start_service(checkpoint)
        try:
            command = [args.python, "-c", PLUGIN_SIDE, str(ROOT / "plugins" / "krita"), url, str(raw),
                       str(args.size), str(args.size)]
            subprocess.run(command + ["1"], check=True, capture_output=True)  # warm-up
            runs = json.loads(subprocess.run(command + [str(args.repeats)], check=True, capture_output=True,
                                             text=True).stdout)
        finally:
            service.terminate()
            service.wait(30)
    report(args.size, statistics.median(in_process), runs)


def report(size: int, in_process: float, runs: list[dict]) -> None:
    plugin = statistics.median(r["total"] for r in runs)
    parts = {k: statistics.median(r[k] for r in runs) for k in ("encode", "service", "decode", "png_mb")}
    overhead = plugin - in_process
    print(f"{size}x{size} astronaut through unet_256 (base 16), CPU fp32, median of {len(runs)}:")
    print(f"  Translator in-process : {in_process:6.2f} s")
    print(f"  plug-in round trip    : {plugin:6.2f} s  (encode {parts['encode']:.2f} s, {parts['png_mb']:.1f} MB PNG; "
          f"job API {parts['service']:.2f} s; decode {parts['decode']:.2f} s)")
    print(f"  overhead              : {overhead:+6.2f} s ({100 * overhead / in_process:+.0f} %); goal <= 25 % or <= 1 s: "
          f"{'met' if overhead <= max(1.0, 0.25 * in_process) else 'missed'}")


if __name__ == "__main__":
    main()
