"""eval.json and the HTML page of an evaluation report: a means table (ours vs baseline per metric,
the better one marked), the task's display of every image, and zoomed crops where model and baseline differ."""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from translate.files import atomic_write

if TYPE_CHECKING:
    from translate.evaluation.paired import EvalReport


def write_report(report: EvalReport, out_dir: Path, title: str, baseline: str | None) -> None:
    """out_dir/eval.json and out_dir/index.html. Rows may lack a target or a baseline (unpaired
    reports); a row's "images" and "panels" (what the page shows) stay out of eval.json."""
    per_image = [{k: v for k, v in r.items() if k not in ("images", "panels")} for r in report.rows]
    summary = {"task": report.task, "baseline": baseline, "images": len(report.rows),
               "mean": report.means(), "per_image": per_image,
               "skipped": report.skipped, "notes": report.notes,
               "learned": {"distribution": report.distribution, "skipped": report.skipped_metrics, **report.learned}}
    atomic_write(out_dir / "eval.json", json.dumps(summary, indent=2).encode())
    atomic_write(out_dir / "index.html", _html(report, title, baseline or "none for this task").encode())



# Metric -> (label, True: higher is better, False: lower is better, None: neither, e.g. how colourful).
METRICS: dict[str, tuple[str, bool | None]] = {
    "psnr": ("PSNR (dB)", True), "ssim": ("SSIM", True), "lpips": ("LPIPS", False),
    "colourfulness": ("colourfulness", None), "fid": ("FID", False), "kid": ("KID", False),
}
COLUMNS = ("model", "baseline", "target")  # ours, the task's baseline, the targets themselves
BETTER_MARK = "\u2713"  # a check mark beside the better of ours and the baseline


@dataclass
class MeanRow:
    """One metric of the means table: its value per column (model, baseline, target), a text shown
    after a value (KID's ± std), and which of model and baseline is better (None: neither or no rule)."""

    metric: str
    label: str
    higher_is_better: bool | None
    values: dict[str, float] = field(default_factory=dict)
    suffix: dict[str, str] = field(default_factory=dict)

    @property
    def better(self) -> str | None:
        ours, theirs = self.values.get("model"), self.values.get("baseline")
        if self.higher_is_better is None or ours is None or theirs is None or ours == theirs:
            return None
        if math.isnan(ours) or math.isnan(theirs):
            return None
        return "model" if (ours > theirs) == self.higher_is_better else "baseline"


def mean_rows(report: EvalReport) -> list[MeanRow]:
    """The means table: one row per metric (known ones first, in METRICS order), from the per-image
    means (keys model_X, baseline_X, target_X; any other key counts as ours) and FID / KID."""
    rows: dict[str, MeanRow] = {}

    def cell(metric: str, column: str, value: float) -> MeanRow:
        label, higher = METRICS.get(metric, (metric, None))
        row = rows.setdefault(metric, MeanRow(metric, label, higher))
        row.values[column] = value
        return row

    for key, value in report.means().items():
        column, _, metric = key.partition("_")
        if column not in COLUMNS or not metric:
            column, metric = "model", key
        cell(metric, column, value)
    for kind, scores in report.distribution.items():
        column, named = (kind, "") if kind in COLUMNS else ("model", f" ({kind})")
        for metric in ("fid", "kid"):
            if scores.get(metric) is not None:
                row = cell(metric + named, column, float(scores[metric]))
                row.label, row.higher_is_better = METRICS[metric][0] + named, False
                if metric == "kid" and scores.get("kid_std") is not None:
                    row.suffix[column] = f" ± {_number(scores['kid_std'])}"
    order = list(METRICS)
    return sorted(rows.values(), key=lambda r: order.index(r.metric) if r.metric in order else len(order))


def _means_html(report: EvalReport) -> str:
    rows = mean_rows(report)
    if not rows:
        return ""
    columns = [c for c in COLUMNS if any(c in row.values for row in rows)]
    names = {"model": "ours", "baseline": "baseline", "target": "targets"}
    head = "".join(f"<th>{names[c]}</th>" for c in columns)
    lines = []
    for row in rows:
        rule = {True: "higher is better", False: "lower is better", None: "no better or worse"}[row.higher_is_better]
        cells = "".join(_mean_cell(row, c) for c in columns)
        lines.append(f"<tr><td>{html.escape(row.label)} <small>({rule})</small></td>{cells}</tr>")
    return (f"<h2>Means over {len(report.rows)} images</h2><table class='means'><tr><th>metric</th>{head}</tr>"
            f"{''.join(lines)}</table><p><small>{BETTER_MARK} marks the better of ours and the baseline.</small></p>")


def _mean_cell(row: MeanRow, column: str) -> str:
    if column not in row.values:
        return "<td>—</td>"
    text = html.escape(_number(row.values[column]) + row.suffix.get(column, ""))
    if row.better == column:
        return f"<td class='better'><b>{text}</b> {BETTER_MARK}</td>"
    return f"<td>{text}</td>"


def _html(report: EvalReport, title: str, baseline: str) -> str:
    columns = ["input", "baseline", "output", "target"]
    head = "".join(f"<th>{c}</th>" for c in columns)
    lines = []
    for row in report.rows:
        images, panels = row.get("images", {}), row.get("panels", row.get("images", {}))
        cells = "".join(f'<td><a href="{images.get(c, panels[c])}"><img src="{panels[c]}"></a></td>' if c in panels
                        else "<td></td>" for c in columns)
        scores = ", ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float))
        lines.append(f"<tr><td>{html.escape(row['name'])}<br><small>{html.escape(scores)}</small></td>{cells}</tr>")
        lines.append(_crops_html(row.get("detail_crops") or [], len(columns)))
    skipped = "".join(f"<li>{html.escape(p)}: {html.escape(r)}</li>" for p, r in report.skipped)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}img{{max-width:256px;image-rendering:pixelated}}
img.detail{{max-width:none}}td,th{{padding:4px;vertical-align:top;text-align:left}}
table.means td,table.means th{{padding:4px 12px;border-bottom:1px solid #ddd}}td.better{{background:#e6f4e6}}</style>
</head><body>
<h1>{html.escape(title)}</h1><p>Task: <b>{html.escape(report.task)}</b>. Baseline: {html.escape(baseline)}.</p>
{_means_html(report)}
{_directions_html(report)}{_learned_html(report)}
<h2>Images</h2><p><small>Each picture links to the image its scores were taken on. Under each row: zoomed
crops (nearest neighbour) where the model and the baseline differ most.</small></p>
<table><tr><th>image</th>{head}</tr>{''.join(lines)}</table>
{f'<h2>Skipped</h2><ul>{skipped}</ul>' if skipped else ''}<ul>{notes}</ul></body></html>
"""


def _crops_html(crops: list[dict], span: int) -> str:
    """One table row of detail strips, each captioned with its panels and window."""
    if not crops:
        return ""
    figures = "".join(
        f"<figure><img class='detail' src='{html.escape(c['image'], quote=True)}' alt='detail crop'><figcaption><small>"
        f"{html.escape(' | '.join(c['panels']))}: {c['size']}×{c['size']} px at row {c['top']}, column {c['left']}"
        f"</small></figcaption></figure>" for c in crops)
    return f"<tr><td></td><td colspan='{span}'>{figures}</td></tr>"


def _directions_html(report: EvalReport) -> str:
    """An unpaired report's directions: what each translated, and which real domain its FID / KID compare with."""
    directions = report.learned.get("directions") or {}
    rows = "".join(f"<tr><td>{html.escape(d['label'])} ({d['generator']})</td><td>{d['translated']} of "
                   f"{d['input_images']} in {html.escape(d['inputs'])}</td><td>{d['target_images']} in "
                   f"{html.escape(d['target_domain'])}</td></tr>" for d in directions.values())
    return ("<h2>Unpaired: no target per image</h2><p>Each direction's translations (model) and its untranslated "
            "inputs (baseline) are compared by FID / KID with the real images of the target domain.</p><table>"
            f"<tr><th>direction</th><th>translated</th><th>real target domain</th></tr>{rows}</table>\n"
            if rows else "")


def _learned_html(report: EvalReport) -> str:
    """The protocol FID / KID (in the means table) were measured under, and each learned metric
    skipped, with why."""
    parts = []
    if report.distribution:
        protocol = report.learned.get("protocol", {})
        weights = protocol.get("inception_weights") or {}
        parts.append(f"<h2>Distribution metrics (outputs vs targets)</h2><p>FID and KID (mean ± std over "
                     "subsets) are in the means table above.</p>"
                     f"<p><small>Protocol <b>{html.escape(str(protocol.get('name')))}</b>: "
                     f"{html.escape(str(protocol.get('description')))}. {_image_counts(protocol)}"
                     f"seed {protocol.get('seed')}. Inception weights sha256 {html.escape(str(weights.get('sha256')))}"
                     f"{'' if weights.get('published') else ' (not the published file: not comparable with papers)'}. "
                     f"FID is biased at small N; KID is the number to compare on small test sets.</small></p>")
    if report.skipped_metrics:
        items = "".join(f"<li><b>{html.escape(m.upper())}</b>: {html.escape(r)}</li>"
                        for m, r in report.skipped_metrics.items())
        parts.append(f"<h2>Metrics not computed</h2><ul>{items}</ul>")
    return "\n".join(parts)


def _image_counts(protocol: dict[str, Any]) -> str:
    """The protocol record's image counts; an unpaired report leaves them to its directions table."""
    if protocol.get("images_generated") is None:
        return "Image counts per direction in the table above; "
    return (f"{protocol['images_generated']} generated vs {protocol.get('images_real')} real images; "
            f"KID subsets of {protocol.get('kid_subset_size_used')}, ")


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"
