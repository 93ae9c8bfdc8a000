"""Evaluate a trained model on held-out pairs: PSNR/SSIM against the task's classic baseline,
written as JSON plus an HTML page of side-by-sides."""
from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from translate import metrics
from translate.data.images import read_image, to_channels, to_uint8, write_image
from translate.files import atomic_write
from translate.tasks import get_task

log = logging.getLogger(__name__)


@dataclass
class EvalReport:
    task: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def means(self) -> dict[str, float]:
        keys = [k for k in (self.rows[0] if self.rows else {}) if isinstance(self.rows[0][k], float)]
        return {k: float(np.mean([row[k] for row in self.rows])) for k in keys}


def _scores(output: np.ndarray, target: np.ndarray, region: np.ndarray | None = None) -> dict[str, float]:
    """PSNR (dB) and SSIM on 8-bit RGB; with `region` (HxW bool) PSNR counts only those pixels."""
    return {"psnr": metrics.psnr(output, target, data_range=255, region=region),
            "ssim": metrics.ssim(output, target, data_range=255)}


def evaluate(translate_image: Callable[[np.ndarray], np.ndarray], pairs: list[tuple[Path, Path]], out_dir: Path, *,
             task: str, title: str = "translate eval") -> EvalReport:
    """Run the model on each (input, target) file pair and score it, and the task's baseline,
    against the target. Writes out_dir/eval.json, out_dir/index.html and the images it shows.
    Bad pairs are skipped and listed. What the model is fed, which pixels PSNR counts and what the
    page shows as the input come from the task (see `translate.tasks.base.Task`)."""
    report = EvalReport(task=task)
    definition = get_task(task)
    for index, (input_path, target_path) in enumerate(pairs):
        try:
            target = _rgb8(read_image(target_path), target_path)
            net_input = read_image(input_path)
            model_input = definition.eval_input(net_input, target)
            output = _rgb8(translate_image(model_input))[: target.shape[0], : target.shape[1]]
            if output.shape != target.shape:
                raise ValueError(f"output {output.shape} does not match target {target.shape}")
            baseline = definition.baseline(net_input, target)
            region = definition.eval_region(net_input)
        except (ValueError, OSError) as e:
            report.skipped.append((str(input_path), str(e)))
            log.warning("skipped %s: %s", input_path, e)
            continue
        shown = {"input": definition.display_input(model_input), "output": output, "target": target,
                 "baseline": None if baseline is None else _rgb8(baseline)}
        report.rows.append(_row(input_path.stem, shown, region, out_dir, index))
    report.notes.append("FID/KID/LPIPS not computed: they need pretrained feature weights, which translate never "
                        "downloads; install them locally and compute them on the images in this folder.")
    _write(report, out_dir, title, definition.baseline_description)
    return report


def _rgb8(image: np.ndarray, path: Path | None = None) -> np.ndarray:
    """Any HxW[xC] uint8/uint16 image as 8-bit RGB, the form every score is taken on."""
    image = image[:, :, None] if image.ndim == 2 else image
    return to_channels(to_uint8(image), 3, path=path)


def _row(name: str, shown: dict[str, np.ndarray | None], region: np.ndarray | None, out_dir: Path,
         index: int) -> dict[str, Any]:
    """One report row: model (and baseline) scores against the target, and the images written for the page."""
    target = shown["target"]
    row: dict[str, Any] = {"name": name}
    for kind in ("model", "baseline"):
        image = shown["output" if kind == "model" else "baseline"]
        if image is not None:
            row.update({f"{kind}_{k}": v for k, v in _scores(image, target, region).items()})
    stem = f"{index:03d}_{name}"
    for kind, image in shown.items():
        if image is not None:
            write_image(out_dir / "images" / f"{stem}_{kind}.png", to_uint8(image))
    row["images"] = {kind: f"images/{stem}_{kind}.png" for kind, image in shown.items() if image is not None}
    return row


def _write(report: EvalReport, out_dir: Path, title: str, baseline: str | None) -> None:
    summary = {"task": report.task, "baseline": baseline, "images": len(report.rows),
               "mean": report.means(), "per_image": [{k: v for k, v in r.items() if k != "images"} for r in report.rows],
               "skipped": report.skipped, "notes": report.notes}
    atomic_write(out_dir / "eval.json", json.dumps(summary, indent=2).encode())
    atomic_write(out_dir / "index.html", _html(report, title, baseline or "none for this task").encode())


def _html(report: EvalReport, title: str, baseline: str) -> str:
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
