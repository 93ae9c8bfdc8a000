"""Evaluate a trained model on held-out pairs: PSNR/SSIM against the task's classic baseline,
written as JSON plus an HTML page of side-by-sides."""
from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from translate import metrics
from translate.files import atomic_write
from translate.data.images import read_image, to_channels, write_image

log = logging.getLogger(__name__)

# What each task's output is compared with, besides the target (issue: "the task's classic baseline").
BASELINES = {
    "superres": "bicubic upscaling of the same low-resolution input",
    "colorize": "the grey image (input lightness, no colour)",
    "inpaint": "OpenCV Telea inpainting of the same holes",
}


@dataclass
class EvalReport:
    task: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def means(self) -> dict[str, float]:
        keys = [k for k in (self.rows[0] if self.rows else {}) if isinstance(self.rows[0][k], float)]
        return {k: float(np.mean([row[k] for row in self.rows])) for k in keys}


def _baseline(task: str, net_input: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    from translate.data import synth

    if task == "superres":
        return synth.bicubic_upscale(net_input, target.shape[0] // net_input.shape[0])
    if task == "colorize":
        return to_channels(to_channels(target, 1), 3)
    if task == "inpaint":
        hole = synth.mask_from_alpha(net_input)
        return cv2.inpaint(np.ascontiguousarray(target[:, :, :3]), hole, 3, cv2.INPAINT_TELEA)
    return None


def _scores(output: np.ndarray, target: np.ndarray, region: np.ndarray | None = None) -> dict[str, float]:
    """PSNR (dB) and SSIM on 8-bit RGB; with `region` (HxW bool) PSNR counts only those pixels."""
    return {"psnr": metrics.psnr(output, target, data_range=255, region=region),
            "ssim": metrics.ssim(output, target, data_range=255)}


def evaluate(translate_image: Callable[[np.ndarray], np.ndarray], pairs: list[tuple[Path, Path]], out_dir: Path, *,
             task: str, title: str = "translate eval") -> EvalReport:
    """Run the model on each (input, target) file pair and score it, and the task's baseline,
    against the target. Writes out_dir/eval.json, out_dir/index.html and the images it shows.
    Bad pairs are skipped and listed. For colorize the model sees the target photo (it keeps only
    its lightness); for inpaint the scores count only the holes."""
    from translate.data import synth

    report = EvalReport(task=task)
    images_dir = out_dir / "images"
    for index, (input_path, target_path) in enumerate(pairs):
        try:
            target = to_channels(synth.to_uint8(read_image(target_path)), 3, path=target_path)
            net_input = read_image(target_path if task == "colorize" else input_path)
            output = translate_image(net_input)
        except (ValueError, OSError) as e:
            report.skipped.append((str(input_path), str(e)))
            log.warning("skipped %s: %s", input_path, e)
            continue
        output = to_channels(synth.to_uint8(output), 3)[: target.shape[0], : target.shape[1]]
        if output.shape != target.shape:
            report.skipped.append((str(input_path), f"output {output.shape} does not match target {target.shape}"))
            continue
        region = synth.mask_from_alpha(net_input).astype(bool) if task == "inpaint" else None
        row: dict[str, Any] = {"name": input_path.stem}
        row.update({f"model_{k}": v for k, v in _scores(output, target, region).items()})
        baseline = _baseline(task, net_input, target)
        if baseline is not None:
            row.update({f"baseline_{k}": v for k, v in _scores(baseline, target, region).items()})
        stem = f"{index:03d}_{input_path.stem}"
        shown = {"input": net_input, "output": output, "target": target, "baseline": baseline}
        for kind, image in shown.items():
            if image is not None:
                write_image(images_dir / f"{stem}_{kind}.png", synth.to_uint8(image))
        row["images"] = {kind: f"images/{stem}_{kind}.png" for kind, image in shown.items() if image is not None}
        report.rows.append(row)
    report.notes.append("FID/KID/LPIPS not computed: they need pretrained feature weights, which translate never "
                        "downloads; install them locally and compute them on the images in this folder.")
    _write(report, out_dir, title)
    return report


def _write(report: EvalReport, out_dir: Path, title: str) -> None:
    summary = {"task": report.task, "baseline": BASELINES.get(report.task), "images": len(report.rows),
               "mean": report.means(), "per_image": [{k: v for k, v in r.items() if k != "images"} for r in report.rows],
               "skipped": report.skipped, "notes": report.notes}
    atomic_write(out_dir / "eval.json", json.dumps(summary, indent=2).encode())
    atomic_write(out_dir / "index.html", _html(report, title).encode())


def _html(report: EvalReport, title: str) -> str:
    means = report.means()
    columns = ["input", "output", "target", "baseline"]
    head = "".join(f"<th>{c}</th>" for c in columns)
    lines = []
    for row in report.rows:
        cells = "".join(f'<td><a href="{row["images"][c]}"><img src="{row["images"][c]}"></a></td>' if c in row["images"]
                        else "<td></td>" for c in columns)
        scores = ", ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float))
        lines.append(f"<tr><td>{html.escape(row['name'])}<br><small>{html.escape(scores)}</small></td>{cells}</tr>")
    mean_text = ", ".join(f"{k}: {v:.3f}" for k, v in means.items())
    baseline = BASELINES.get(report.task, "none for this task")
    skipped = "".join(f"<li>{html.escape(p)}: {html.escape(r)}</li>" for p, r in report.skipped)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}img{{max-width:256px;image-rendering:pixelated}}
td,th{{padding:4px;vertical-align:top;text-align:left}}</style></head><body>
<h1>{html.escape(title)}</h1><p>Task: <b>{html.escape(report.task)}</b>. Baseline: {html.escape(baseline)}.</p>
<p>Mean over {len(report.rows)} images: {html.escape(mean_text)}</p>
<table><tr><th>image</th>{head}</tr>{''.join(lines)}</table>
{f'<h2>Skipped</h2><ul>{skipped}</ul>' if skipped else ''}<ul>{notes}</ul></body></html>
"""
