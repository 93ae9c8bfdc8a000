"""LPIPS per image and FID / KID over the set, for `evaluate`'s report."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from translate.errors import WeightsError
from translate.metrics import why_unavailable

if TYPE_CHECKING:
    from translate.evaluation.paired import EvalReport, LearnedMetrics


def unavailable_metrics(options: LearnedMetrics, wanted: Sequence[str], known: Mapping[str, str]) -> dict[str, str]:
    """{metric: why} for each of `wanted` that cannot run: a `known` reason (too few images) first, then a
    missing library or weights file. A WeightsError instead when the user named the metric (`required`)."""
    skipped = {}
    for metric in wanted:
        reason = known.get(metric) or why_unavailable(metric, options.weights, lpips_net=options.lpips_net)
        if reason and options.required:
            raise WeightsError(f"--metrics {metric}: cannot be computed: {reason}")
        if reason:
            skipped[metric] = reason
    return skipped


class LearnedScorer:
    """LPIPS per row and Inception features per image as rows arrive; FID / KID at the end."""

    def __init__(self, options: LearnedMetrics, n_pairs: int, report: EvalReport):
        from translate.metrics.distribution import too_few_images

        self.options, self.report = options, report
        wanted = [m for m in options.metrics if m in ("lpips", "fid", "kid")]
        too_few = too_few_images(n_pairs, n_pairs, options.protocol, [m for m in wanted if m != "lpips"])
        report.skipped_metrics.update(unavailable_metrics(options, wanted, too_few))
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
