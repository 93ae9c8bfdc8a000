"""Super-resolution scored per shrink: the low-resolution inputs are made from the target photos with
each named kernel of `translate.tasks.superres.SHRINK_KERNELS` (anti-aliased bicubic, OpenCV's
INTER_CUBIC, ...), and each set is scored by `evaluate` against bicubic upscaling of the same inputs.

Layout under OUT: shrinks/targets/ (each photo cropped to a multiple of the scale), shrinks/NAME/inputs/
and shrinks/NAME/{eval.json,index.html} (evaluate's page for that kernel), plus OUT/eval.json and
OUT/index.html: the summary table, one row per kernel."""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from translate.data.images import read_image, to_channels, to_uint8, write_image
from translate.errors import ConfigError, ImageError, TranslateError
from translate.evaluation.paired import EvalReport, LearnedMetrics, evaluate
from translate.files import atomic_write
from translate.tasks.superres import SHRINK_KERNELS, apply_shrink


@dataclass
class ShrinkRow:
    """One kernel's means over the photos: model and bicubic PSNR (dB) / SSIM, and the PSNR gain."""

    shrink: str
    description: str
    images: int
    model_psnr: float
    baseline_psnr: float
    model_ssim: float
    baseline_ssim: float
    page: str

    @property
    def gain(self) -> float:
        return self.model_psnr - self.baseline_psnr

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "gain_db": self.gain}


def parse_shrinks(text: str) -> list[str]:
    """`all` or a comma list of SHRINK_KERNELS names -> the names; ConfigError names an unknown one."""
    names = list(SHRINK_KERNELS) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SHRINK_KERNELS]
    if unknown or not names:
        raise ConfigError(f"--shrinks {text}: unknown shrink {unknown[0] if unknown else '(empty)'!r} "
                          f"(choose all or from {', '.join(SHRINK_KERNELS)})")
    return names


def evaluate_shrinks(translate_image: Callable[[np.ndarray], np.ndarray], targets: list[Path], out_dir: Path, *,
                     shrinks: list[str], scale: int, title: str = "translate eval",
                     learned: LearnedMetrics | None = None) -> tuple[list[ShrinkRow], dict[str, EvalReport]]:
    """Shrink each target photo by `scale` with each kernel, super-resolve it and score model and bicubic
    against the photo (see module doc). Unreadable targets are skipped and listed on each kernel's page."""
    cropped, unreadable = _cropped_targets(targets, out_dir / "shrinks" / "targets", scale)
    rows, reports = [], {}
    for name in shrinks:
        folder = out_dir / "shrinks" / name
        pairs = [(_write_input(target, folder / "inputs", name, scale), target) for target in cropped]
        report = evaluate(translate_image, pairs, folder, task="superres", title=f"{title} ({name} shrink)",
                          learned=learned)
        report.skipped.extend(unreadable)
        reports[name] = report
        if report.rows:
            means = report.means()
            rows.append(ShrinkRow(name, SHRINK_KERNELS[name].describe(), len(report.rows), means["model_psnr"],
                                  means["baseline_psnr"], means["model_ssim"], means["baseline_ssim"],
                                  f"shrinks/{name}/index.html"))
    _write_summary(rows, reports, out_dir, title, scale)
    return rows, reports


def _cropped_targets(targets: list[Path], folder: Path, scale: int) -> tuple[list[Path], list[tuple[str, str]]]:
    """Each target as 8-bit RGB cropped (top-left) to a multiple of `scale`, written to `folder`; and the
    (path, reason) of each that could not be read or is smaller than the scale."""
    cropped, skipped = [], []
    for path in targets:
        try:
            photo = to_channels(to_uint8(_with_channels(read_image(path))), 3, path=path)
            height, width = photo.shape[0] // scale * scale, photo.shape[1] // scale * scale
            if height == 0 or width == 0:
                raise ImageError(f"{path}: {photo.shape[1]}x{photo.shape[0]} is smaller than the scale {scale}")
        except (TranslateError, OSError) as e:
            skipped.append((str(path), str(e)))
            continue
        out = folder / f"{path.stem}.png"
        write_image(out, np.ascontiguousarray(photo[:height, :width]))
        cropped.append(out)
    return cropped, skipped


def _with_channels(image: np.ndarray) -> np.ndarray:
    return image[:, :, None] if image.ndim == 2 else image


def _write_input(target: Path, folder: Path, name: str, scale: int) -> Path:
    """The low-resolution input made from `target` with kernel `name` (fixed strengths), written as PNG."""
    photo = read_image(target)
    small = apply_shrink(photo, photo.shape[0] // scale, photo.shape[1] // scale, SHRINK_KERNELS[name])
    out = folder / target.name
    write_image(out, small)
    return out


def format_table(rows: list[ShrinkRow]) -> str:
    """The per-shrink table as terminal text: PSNR ours vs bicubic and the gain, per kernel."""
    lines = [f"{'shrink':<11}{'images':>7}{'ours dB':>9}{'bicubic dB':>12}{'gain dB':>9}{'ours SSIM':>11}"
             f"{'bicubic SSIM':>14}"]
    lines += [f"{r.shrink:<11}{r.images:>7}{r.model_psnr:>9.2f}{r.baseline_psnr:>12.2f}{r.gain:>+9.2f}"
              f"{r.model_ssim:>11.4f}{r.baseline_ssim:>14.4f}" for r in rows]
    return "\n".join(lines)


def _write_summary(rows: list[ShrinkRow], reports: dict[str, EvalReport], out_dir: Path, title: str,
                   scale: int) -> None:
    summary = {"task": "superres", "scale": scale, "baseline": "bicubic upscaling of the same low-resolution input",
               "shrinks": [r.to_dict() for r in rows],
               "skipped": {name: report.skipped for name, report in reports.items() if report.skipped}}
    atomic_write(out_dir / "eval.json", json.dumps(summary, indent=2).encode())
    atomic_write(out_dir / "index.html", _summary_html(rows, title, scale).encode())


def _summary_html(rows: list[ShrinkRow], title: str, scale: int) -> str:
    def better(ours: float, theirs: float, text: str) -> str:
        return f"<b>{text}</b>" if ours > theirs else text

    body = "".join(
        f"<tr><td><a href=\"{html.escape(r.page)}\">{html.escape(r.shrink)}</a></td><td>{html.escape(r.description)}"
        f"</td><td>{r.images}</td><td>{better(r.model_psnr, r.baseline_psnr, f'{r.model_psnr:.2f}')}</td>"
        f"<td>{better(r.baseline_psnr, r.model_psnr, f'{r.baseline_psnr:.2f}')}</td><td>{r.gain:+.2f}</td>"
        f"<td>{better(r.model_ssim, r.baseline_ssim, f'{r.model_ssim:.4f}')}</td>"
        f"<td>{better(r.baseline_ssim, r.model_ssim, f'{r.baseline_ssim:.4f}')}</td></tr>" for r in rows)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}td,th{{padding:4px 8px;text-align:left}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Super-resolution x{scale} per shrink: the low-resolution inputs are made from the target photos with each
kernel, and the model is compared with bicubic upscaling of the same inputs (the better one in bold).
Each kernel's name links to its page of images.</p>
<table><tr><th>shrink</th><th>how the small photo is made</th><th>images</th><th>ours PSNR dB</th>
<th>bicubic PSNR dB</th><th>gain dB</th><th>ours SSIM</th><th>bicubic SSIM</th></tr>{body}</table></body></html>
"""
