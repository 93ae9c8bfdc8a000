"""eval.json and the HTML page of an evaluation report."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from translate.files import atomic_write

if TYPE_CHECKING:
    from translate.evaluation.paired import EvalReport


def write_report(report: EvalReport, out_dir: Path, title: str, baseline: str | None) -> None:
    summary = {"task": report.task, "baseline": baseline, "images": len(report.rows),
               "mean": report.means(), "per_image": [{k: v for k, v in r.items() if k != "images"} for r in report.rows],
               "skipped": report.skipped, "notes": report.notes,
               "learned": {"distribution": report.distribution, "skipped": report.skipped_metrics, **report.learned}}
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
{_directions_html(report)}{_learned_html(report)}
<table><tr><th>image</th>{head}</tr>{''.join(lines)}</table>
{f'<h2>Skipped</h2><ul>{skipped}</ul>' if skipped else ''}<ul>{notes}</ul></body></html>
"""


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
    """FID / KID per kind, the protocol they were measured under, and each learned metric skipped, with why."""
    parts = []
    if report.distribution:
        rows = "".join(f"<tr><td>{kind}</td><td>{_number(d.get('fid'))}</td>"
                       f"<td>{_number(d.get('kid'))} ± {_number(d.get('kid_std'))}</td></tr>"
                       for kind, d in report.distribution.items())
        protocol = report.learned.get("protocol", {})
        weights = protocol.get("inception_weights") or {}
        parts.append(f"<h2>Distribution metrics (outputs vs targets)</h2><table><tr><th></th><th>FID</th>"
                     f"<th>KID (mean ± std over subsets)</th></tr>{rows}</table>"
                     f"<p><small>Protocol <b>{html.escape(str(protocol.get('name')))}</b>: "
                     f"{html.escape(str(protocol.get('description')))}. {protocol.get('images_generated')} generated vs "
                     f"{protocol.get('images_real')} real images; KID subsets of {protocol.get('kid_subset_size_used')}, "
                     f"seed {protocol.get('seed')}. Inception weights sha256 {html.escape(str(weights.get('sha256')))}"
                     f"{'' if weights.get('published') else ' (not the published file: not comparable with papers)'}. "
                     f"FID is biased at small N; KID is the number to compare on small test sets.</small></p>")
    if report.skipped_metrics:
        items = "".join(f"<li><b>{html.escape(m.upper())}</b>: {html.escape(r)}</li>"
                        for m, r in report.skipped_metrics.items())
        parts.append(f"<h2>Metrics not computed</h2><ul>{items}</ul>")
    return "\n".join(parts)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"
