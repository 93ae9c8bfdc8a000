"""Score a model and the task's baseline on (input, target) file pairs."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from translate import metrics
from translate.data.images import read_image, to_channels, to_uint8, write_image
from translate.errors import ImageError, TranslateError
from translate.metrics import DEFAULT_PROTOCOL, PROTOCOLS, MetricWeights, Protocol
from translate.evaluation.details import detail_crops
from translate.evaluation.learned import LearnedScorer
from translate.evaluation.page import write_report
from translate.tasks import Task, get_task

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
    Bad pairs are skipped and listed. What the model is fed, which pixels PSNR counts and how the
    page shows each image (`Task.display_input` / `display_output`) come from the task (see
    `translate.tasks.base.Task`); the page adds zoomed crops where the model and baseline differ most."""
    report = EvalReport(task=task)
    definition = get_task(task)
    scorer = LearnedScorer(learned or LearnedMetrics(), len(pairs), report)
    for index, (input_path, target_path) in enumerate(pairs):
        try:
            target = as_rgb8(read_image(target_path), target_path)
            net_input = read_image(input_path)
            model_input = definition.eval_input(net_input, target)
            output = as_rgb8(translate_image(model_input))[: target.shape[0], : target.shape[1]]
            if output.shape != target.shape:
                raise ImageError(f"output {output.shape} does not match target {target.shape}")
            baseline = definition.baseline(net_input, target)
            region = definition.eval_region(net_input)
        except (TranslateError, OSError) as e:
            report.skipped.append((str(input_path), str(e)))
            log.warning("skipped %s: %s", input_path, e)
            continue
        scored = {"output": output, "target": target, "baseline": None if baseline is None else as_rgb8(baseline)}
        row = _row(input_path.stem, scored, region)
        _write_images(row, _panels(definition, model_input, scored), scored, out_dir, f"{index:03d}_{input_path.stem}")
        scorer.add(row, scored)
        report.rows.append(row)
    scorer.finish()
    write_report(report, out_dir, title, definition.baseline_description)
    return report


def as_rgb8(image: np.ndarray, path: Path | None = None) -> np.ndarray:
    """Any HxW[xC] uint8/uint16 image as 8-bit RGB, the form every score is taken on."""
    image = image[:, :, None] if image.ndim == 2 else image
    return to_channels(to_uint8(image), 3, path=path)


def _row(name: str, scored: dict[str, np.ndarray | None], region: np.ndarray | None) -> dict[str, Any]:
    """One report row: model (and baseline) scores against the target."""
    target = scored["target"]
    row: dict[str, Any] = {"name": name, "target_colourfulness": metrics.colourfulness(target)}
    for kind in ("model", "baseline"):
        image = scored["output" if kind == "model" else "baseline"]
        if image is not None:
            row.update({f"{kind}_{k}": v for k, v in _scores(image, target, region).items()})
    return row


def _panels(task: Task, model_input: np.ndarray, scored: dict[str, np.ndarray | None]) -> dict[str, np.ndarray | None]:
    """What the page shows of each image: the task's display (colour photos, outlined holes, one scale)."""
    panels: dict[str, np.ndarray | None] = {"input": task.display_input(model_input, scored["target"].shape[:2])}
    for kind, image in scored.items():
        panels[kind] = None if image is None else task.display_output(model_input, image)
    return panels


def _write_images(row: dict[str, Any], panels: dict[str, np.ndarray | None], scored: dict[str, np.ndarray | None],
                  out_dir: Path, stem: str) -> None:
    """images/STEM_KIND.png: the scored output, target and baseline as they are (so their scores can
    be checked), the input as shown; STEM_KIND_shown.png where the task shows an image differently
    (row["panels"]); and the detail crops (row["detail_crops"])."""
    row["images"], row["panels"] = {}, {}
    for kind, panel in panels.items():
        if panel is None:
            continue
        image = scored.get(kind, panel)
        row["images"][kind] = row["panels"][kind] = f"images/{stem}_{kind}.png"
        write_image(out_dir / row["images"][kind], image)
        if not (panel.shape == image.shape and np.array_equal(panel, image)):
            row["panels"][kind] = f"images/{stem}_{kind}_shown.png"
            write_image(out_dir / row["panels"][kind], panel)
    row["detail_crops"] = detail_crops(panels, scored, out_dir, stem)
