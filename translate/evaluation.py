"""Evaluate a trained model on held-out pairs: PSNR/SSIM and, where their libraries and weights are
present, LPIPS per image and FID/KID over the set, against the task's classic baseline; written as JSON
plus an HTML page of side-by-sides. A learned metric that cannot run is skipped and the page says why."""
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
from translate.errors import ImageError, TranslateError, WeightsError
from translate.metrics import DEFAULT_PROTOCOL, PROTOCOLS, MetricWeights, Protocol, why_unavailable
from translate.files import atomic_write
from translate.tasks import get_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearnedMetrics:
    """Which learned metrics `evaluate` computes and how. `required`: a metric that cannot run is an
    error (the user asked for it by name) rather than a skip with its reason."""

    metrics: tuple[str, ...] = ("lpips", "fid", "kid")
    required: bool = False
    lpips_net: str = "alex"
    protocol: Protocol = PROTOCOLS[DEFAULT_PROTOCOL]
    weights: MetricWeights = field(default_factory=MetricWeights)
    device: str = "cpu"


@dataclass
class EvalReport:
    task: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # FID / KID over the whole set, per kind ("model", "baseline"): {"fid", "kid", "kid_std"}
    distribution: dict[str, dict[str, float | None]] = field(default_factory=dict)
    skipped_metrics: dict[str, str] = field(default_factory=dict)  # learned metric -> why it was not computed
    learned: dict[str, Any] = field(default_factory=dict)  # protocol record, weights used

    def means(self) -> dict[str, float]:
        keys = [k for k in (self.rows[0] if self.rows else {}) if isinstance(self.rows[0][k], float)]
        return {k: float(np.mean([row[k] for row in self.rows])) for k in keys}


def _scores(output: np.ndarray, target: np.ndarray, region: np.ndarray | None = None) -> dict[str, float]:
    """PSNR (dB) and SSIM on 8-bit RGB, with `region` (HxW bool) PSNR counts only those pixels; and
    the output's colourfulness (Hasler & Suesstrunk), so a washed-out answer shows next to its PSNR."""
    return {"psnr": metrics.psnr(output, target, data_range=255, region=region),
            "ssim": metrics.ssim(output, target, data_range=255),
            "colourfulness": metrics.colourfulness(output)}


def evaluate(translate_image: Callable[[np.ndarray], np.ndarray], pairs: list[tuple[Path, Path]], out_dir: Path, *,
             task: str, title: str = "translate eval", learned: LearnedMetrics | None = None) -> EvalReport:
    """Run the model on each (input, target) file pair and score it, and the task's baseline,
    against the target. Writes out_dir/eval.json, out_dir/index.html and the images it shows.
    Bad pairs are skipped and listed. What the model is fed, which pixels PSNR counts and what the
    page shows as the input come from the task (see `translate.tasks.base.Task`)."""
    report = EvalReport(task=task)
    definition = get_task(task)
    scorer = _LearnedScorer(learned or LearnedMetrics(), len(pairs), report)
    for index, (input_path, target_path) in enumerate(pairs):
        try:
            target = _rgb8(read_image(target_path), target_path)
            net_input = read_image(input_path)
            model_input = definition.eval_input(net_input, target)
            output = _rgb8(translate_image(model_input))[: target.shape[0], : target.shape[1]]
            if output.shape != target.shape:
                raise ImageError(f"output {output.shape} does not match target {target.shape}")
            baseline = definition.baseline(net_input, target)
            region = definition.eval_region(net_input)
        except (TranslateError, OSError) as e:
            report.skipped.append((str(input_path), str(e)))
            log.warning("skipped %s: %s", input_path, e)
            continue
        shown = {"input": definition.display_input(model_input), "output": output, "target": target,
                 "baseline": None if baseline is None else _rgb8(baseline)}
        row = _row(input_path.stem, shown, region, out_dir, index)
        scorer.add(row, shown)
        report.rows.append(row)
    scorer.finish()
    _write(report, out_dir, title, definition.baseline_description)
    return report


class _LearnedScorer:
    """LPIPS per row and Inception features per image as rows arrive; FID / KID at the end."""

    def __init__(self, options: LearnedMetrics, n_pairs: int, report: EvalReport):
        from translate.metrics.distribution import too_few_images

        self.options, self.report = options, report
        wanted = [m for m in options.metrics if m in ("lpips", "fid", "kid")]
        for metric, reason in too_few_images(n_pairs, n_pairs, options.protocol,
                                             [m for m in wanted if m != "lpips"]).items():
            report.skipped_metrics[metric] = reason
        for metric in wanted:
            reason = report.skipped_metrics.get(metric) or why_unavailable(metric, options.weights,
                                                                            lpips_net=options.lpips_net)
            if reason and options.required:
                raise WeightsError(f"--metrics {metric}: cannot be computed: {reason}")
            if reason:
                report.skipped_metrics[metric] = reason
        self.active = [m for m in wanted if m not in report.skipped_metrics]
        self.lpips = self.inception = None
        if "lpips" in self.active:
            from translate.metrics.perceptual import LpipsNet

            self.lpips = LpipsNet.load(options.lpips_net, options.weights, device=options.device)
            report.learned["lpips"] = {"net": options.lpips_net, "weights": self.lpips.weights}
        if "fid" in self.active or "kid" in self.active:
            from translate.metrics.distribution import InceptionNet

            self.inception = InceptionNet.load(options.weights, device=options.device)
        self.features: dict[str, list[np.ndarray]] = {"output": [], "target": [], "baseline": []}

    def add(self, row: dict[str, Any], shown: dict[str, np.ndarray | None]) -> None:
        target = shown["target"]
        for kind, key in (("model", "output"), ("baseline", "baseline")):
            if self.lpips is not None and shown[key] is not None:
                row[f"{kind}_lpips"] = self.lpips.distances([shown[key]], [target])[0]
        if self.inception is not None:
            for key, image in shown.items():
                if key in self.features and image is not None:
                    self.features[key].append(self.inception.features([image], self.options.protocol))

    def finish(self) -> None:
        """FID / KID of the outputs (and of the baseline, when every row has one) against the targets."""
        if self.inception is None:
            return
        from translate.metrics.distribution import scores_from_features

        metrics = [m for m in ("fid", "kid") if m in self.active]
        if not self.features["target"]:
            self.report.skipped_metrics.update({m: "no image pair could be scored" for m in metrics})
            return
        real = np.concatenate(self.features["target"])
        for kind, key in (("model", "output"), ("baseline", "baseline")):
            if self.features[key] and len(self.features[key]) == len(self.features["target"]):
                scores = scores_from_features(np.concatenate(self.features[key]), real, self.options.protocol,
                                              inception=self.inception.weights, metrics=metrics)
                self.report.distribution[kind] = {k: scores[k] for k in ("fid", "kid", "kid_std")}
                self.report.skipped_metrics.update(scores["skipped"])  # fewer readable pairs than expected
                self.report.learned["protocol"] = scores["protocol"]


def _rgb8(image: np.ndarray, path: Path | None = None) -> np.ndarray:
    """Any HxW[xC] uint8/uint16 image as 8-bit RGB, the form every score is taken on."""
    image = image[:, :, None] if image.ndim == 2 else image
    return to_channels(to_uint8(image), 3, path=path)


def _row(name: str, shown: dict[str, np.ndarray | None], region: np.ndarray | None, out_dir: Path,
         index: int) -> dict[str, Any]:
    """One report row: model (and baseline) scores against the target, and the images written for the page."""
    target = shown["target"]
    row: dict[str, Any] = {"name": name, "target_colourfulness": metrics.colourfulness(target)}
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
{_learned_html(report)}
<table><tr><th>image</th>{head}</tr>{''.join(lines)}</table>
{f'<h2>Skipped</h2><ul>{skipped}</ul>' if skipped else ''}<ul>{notes}</ul></body></html>
"""


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
