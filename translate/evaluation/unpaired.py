"""Score an unpaired run (CycleGAN, CUT) on an unpaired layout (DATA/{split}A + DATA/{split}B).

There is no target per image. Each direction the run holds translates its source domain, and FID / KID
compare the translations ("model") and the untranslated inputs ("baseline": identity) with the real
images of the target domain, so the report says how far translation moved the images toward it. Each
row is an input with its translation. Written as the paired report is: eval.json and index.html.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from translate.data.images import read_image, write_image
from translate.data.layouts import find_unpaired
from translate.direction import DIRECTIONS, Direction, generator_name
from translate.errors import ConfigError, TranslateError
from translate.evaluation.learned import unavailable_metrics
from translate.evaluation.page import write_report
from translate.evaluation.paired import EvalReport, LearnedMetrics, as_rgb8

if TYPE_CHECKING:
    from translate.inference.translator import Translator

log = logging.getLogger(__name__)

IDENTITY_BASELINE = ("identity: the untranslated inputs, scored by FID/KID against the same real target domain "
                     "(translation should bring its inputs closer to it)")
ENDS: dict[Direction, tuple[str, str]] = {"a_to_b": ("A", "B"), "b_to_a": ("B", "A")}  # (source, target) domain
ARROWS: dict[Direction, str] = {"a_to_b": "A→B", "b_to_a": "B→A"}
NO_TARGETS = "needs a target image per input; an unpaired layout has none (FID/KID score it against the target domain)"
# An image in, its translation out: HxW[xC] uint8/uint16 arrays (a Translator).
TranslateImage = Callable[[np.ndarray], np.ndarray]


def evaluate_run(translator: Translator, root: str | os.PathLike, split: str, out_dir: Path, *,
                 title: str = "translate eval", learned: LearnedMetrics | None = None) -> EvalReport:
    """Every direction `translator`'s source holds, on ROOT/{split}A and ROOT/{split}B (see `evaluate_unpaired`)."""
    images_a, images_b = find_unpaired(root, split)
    return evaluate_unpaired(translators_by_direction(translator), {"A": images_a, "B": images_b}, out_dir,
                             task=translator.task, title=title, learned=learned)


def translators_by_direction(translator: Translator) -> dict[Direction, Translator]:
    """A Translator per generator of `translator`'s source, a_to_b first: a CycleGAN run's two, a CUT or
    pix2pix run's one (its contract's `directions`); published weights hold one generator, read as A→B."""
    from translate.inference.translator import Translator

    contract = translator.contract
    if not contract.directions:
        return {"a_to_b": translator}
    return {direction: translator if direction == contract.direction
            else Translator.load(translator.model.source, translator.options, direction=direction)
            for direction in DIRECTIONS if direction in contract.directions}


def evaluate_unpaired(translators: Mapping[Direction, TranslateImage], domains: Mapping[str, Sequence[Path]],
                      out_dir: Path, *, task: str, title: str = "translate eval",
                      learned: LearnedMetrics | None = None) -> EvalReport:
    """Translate each image of each direction's source domain (`domains`: "A" and "B" image files) and
    score the translations and the untranslated inputs by FID / KID against the target domain's real
    images. Writes out_dir/eval.json, out_dir/index.html and the images it shows; unreadable or
    untranslatable files are skipped and listed."""
    report = EvalReport(task=task)
    scorer = DomainScorer(learned or LearnedMetrics(), list(translators), {k: len(v) for k, v in domains.items()},
                          report)
    translated_from = {ENDS[direction][0]: direction for direction in translators}
    for domain, paths in domains.items():
        direction = translated_from.get(domain)
        if direction is None and scorer.inception is None:
            continue  # a target domain only: read for its features alone
        for path in paths:
            try:
                image = read_image(path)
                real = as_rgb8(image, path)
                output = None if direction is None else as_rgb8(translators[direction](image))
            except (TranslateError, OSError) as e:
                report.skipped.append((str(path), str(e)))
                log.warning("skipped %s: %s", path, e)
                continue
            scorer.add(domain, real, direction, output)
            if direction is not None and output is not None:
                report.rows.append(_row(direction, Path(path), real, output, out_dir, len(report.rows)))
    scorer.finish()
    report.learned["directions"] = {direction: _direction_facts(direction, domains, report)
                                    for direction in translators}
    write_report(report, out_dir, title, IDENTITY_BASELINE)
    return report


def _direction_facts(direction: Direction, domains: Mapping[str, Sequence[Path]], report: EvalReport) -> dict[str, Any]:
    """What one direction translated and what its FID / KID compared with, for the JSON and the page."""
    source, target = (domains[end] for end in ENDS[direction])
    return {"label": ARROWS[direction], "generator": generator_name(direction),
            "inputs": str(Path(source[0]).parent) if source else "", "input_images": len(source),
            "translated": sum(row["direction"] == direction for row in report.rows),
            "target_domain": str(Path(target[0]).parent) if target else "", "target_images": len(target)}


def _row(direction: Direction, path: Path, real: np.ndarray, output: np.ndarray, out_dir: Path,
         index: int) -> dict[str, Any]:
    """One report row: an input and its translation (HxWx3 uint8), written for the page."""
    stem = f"{index:03d}_{direction}_{path.stem}"
    images = {}
    for kind, image in (("input", real), ("output", output)):
        write_image(out_dir / "images" / f"{stem}_{kind}.png", image)
        images[kind] = f"images/{stem}_{kind}.png"
    return {"name": f"{ARROWS[direction]} {path.stem}", "direction": direction, "source": str(path), "images": images}


PER_DIRECTION = ("images_generated", "images_real", "kid_subset_size_used")


class DomainScorer:
    """Inception features of each domain's real images and of each direction's translations as they
    arrive; FID / KID per direction at the end, for the model and for the identity baseline."""

    def __init__(self, options: LearnedMetrics, directions: Sequence[Direction], counts: Mapping[str, int],
                 report: EvalReport):
        from translate.metrics.distribution import too_few_images

        self.options, self.directions, self.report = options, list(directions), report
        if "lpips" in options.metrics:
            if options.required:
                raise ConfigError(f"--metrics lpips: {NO_TARGETS}")
            report.skipped_metrics["lpips"] = NO_TARGETS
        wanted = [m for m in ("fid", "kid") if m in options.metrics]
        too_few = {d: too_few_images(counts[ENDS[d][0]], counts[ENDS[d][1]], options.protocol, wanted)
                   for d in self.directions}
        # A metric too few images leave out of one direction still runs for the other (finish says why).
        everywhere = {m: _by_direction({d: reasons[m] for d, reasons in too_few.items()})
                      for m in wanted if all(m in reasons for reasons in too_few.values())}
        report.skipped_metrics.update(unavailable_metrics(options, wanted, everywhere))
        self.active = [m for m in wanted if m not in report.skipped_metrics]
        self.inception = None
        if self.active:
            from translate.metrics.distribution import InceptionNet

            self.inception = InceptionNet.load(options.weights, device=options.device)
        self.real: dict[str, list[np.ndarray]] = {"A": [], "B": []}
        self.translated: dict[str, list[np.ndarray]] = {d: [] for d in self.directions}

    def add(self, domain: str, real: np.ndarray, direction: Direction | None, output: np.ndarray | None) -> None:
        """One real HxWx3 uint8 image of `domain` and, when it was translated, its translation."""
        if self.inception is None:
            return
        self.real[domain].append(self.inception.features([real], self.options.protocol))
        if direction is not None and output is not None:
            self.translated[direction].append(self.inception.features([output], self.options.protocol))

    def finish(self) -> None:
        """FID / KID of each direction's translations and untranslated inputs against the real target domain."""
        if self.inception is None:
            return
        from translate.metrics.distribution import scores_from_features

        for direction in self.directions:
            source, target = ENDS[direction]
            for kind, generated in (("model", self.translated[direction]), ("baseline", self.real[source])):
                scores = scores_from_features(_stacked(generated), _stacked(self.real[target]), self.options.protocol,
                                              inception=self.inception.weights, metrics=self.active)
                self.report.distribution[f"{direction} {kind}"] = {k: scores[k] for k in ("fid", "kid", "kid_std")}
                for metric, reason in scores["skipped"].items():
                    self._skip(metric, f"{ARROWS[direction]} {kind}: {reason}")
                # The image counts differ by direction (the directions table gives each): the shared
                # record keeps only what all directions share.
                self.report.learned["protocol"] = {**scores["protocol"], **dict.fromkeys(PER_DIRECTION)}

    def _skip(self, metric: str, reason: str) -> None:
        known = self.report.skipped_metrics.get(metric)
        self.report.skipped_metrics[metric] = f"{known}; {reason}" if known else reason


def _by_direction(reasons: Mapping[Direction, str]) -> str:
    """"A→B, B→A: why" once when the directions agree, else each direction's reason."""
    grouped: dict[str, list[str]] = {}
    for direction, reason in reasons.items():
        grouped.setdefault(reason, []).append(ARROWS[direction])
    return "; ".join(f"{', '.join(arrows)}: {reason}" for reason, arrows in grouped.items())


def _stacked(features: list[np.ndarray]) -> np.ndarray:
    from translate.metrics.distribution import FEATURE_DIMS

    return np.concatenate(features) if features else np.zeros((0, FEATURE_DIMS))
