"""Evaluation during training: the metrics that may choose `best.pt`, the pass over the validation
set, and the best-so-far record that a checkpoint keeps across `--resume`.

A metric scores a whole validation pass at once, from lists of (C, H, W) tensors in [-1, 1]:
*paired* metrics (PSNR, SSIM, L1, LPIPS) compare each output with its own aligned reference (the
method's `validation_pairs`); *unpaired* ones (KID) compare the set of generated images with real
images of the target domain (the method's `translation_pairs`). A new metric is one VAL_METRICS entry.

A validation set holds several fixed draws of each photo (data.val_draws), so a figure is the mean
over (photo, draw) scores with its standard error, written beside it as the `<column>_se` column;
best.pt moves only on a gain larger than the standard error of that gain (BestRecord.improves).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from translate.checkpoint import SE_SUFFIX, plus_minus
from translate.config import TrainConfig
from translate.errors import ConfigError, TranslateError, WeightsError
from translate.inference.device import autocast
from translate.methods.base import image_metrics

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Figure:
    """A validation figure and its standard error (NaN: the metric gives none), with the per-item
    scores it is the mean of (in validation-set order, NaN kept; empty for a set-level metric)."""
    value: float
    se: float = math.nan
    items: tuple[float, ...] = ()

    @classmethod
    def of(cls, scores: Sequence[float]) -> Figure:
        """The mean of per-item scores and its standard error, std / sqrt(n) (NaN scores left out;
        NaN with fewer than two)."""
        kept = np.asarray([x for x in scores if not math.isnan(x)], dtype=np.float64)
        if not len(kept):
            return cls(math.nan)
        return cls(float(kept.mean()), _standard_error(kept), tuple(float(x) for x in scores))

    @classmethod
    def mean_of(cls, figures: Sequence[Figure]) -> Figure:
        """The mean of independent figures (both CycleGAN directions): errors add in quadrature."""
        return cls(float(np.mean([f.value for f in figures])), _error_of_mean([f.se for f in figures]))


def _standard_error(values: np.ndarray) -> float:
    """std / sqrt(n) of finite values; NaN with fewer than two."""
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan


def _error_of_mean(errors: Sequence[float]) -> float:
    """The standard error of the mean of independent figures with these errors (in quadrature)."""
    return math.sqrt(sum(e ** 2 for e in errors)) / len(errors)


def paired_error(new: Mapping[str, Sequence[float]], old: Mapping[str, Sequence[float]]) -> float:
    """The standard error of the gain from `old` to `new` figures measured on the same fixed items:
    per-item differences for each pair prefix (std / sqrt(n)), combined as for the mean of
    independent figures. NaN when the two passes did not score the same items."""
    if not new or set(new) != set(old) or any(len(new[k]) != len(old[k]) for k in new):
        return math.nan
    errors = []
    for key in new:
        differences = np.asarray(new[key], dtype=np.float64) - np.asarray(old[key], dtype=np.float64)
        errors.append(_standard_error(differences[np.isfinite(differences)]))
    return _error_of_mean(errors)


# outputs, references -> one figure; a bare float is a figure without a standard error.
Scorer = Callable[[Sequence[Tensor], Sequence[Tensor]], "Figure | float"]


@dataclass(frozen=True)
class ValMetric:
    """One entry of VAL_METRICS. `make(config, device, n_images)` returns the scorer for passes over
    `n_images` validation items, loading what it needs once (feature-network weights); it raises a
    TranslateError saying why it cannot run here."""
    name: str
    higher_is_better: bool
    paired: bool
    make: Callable[[TrainConfig, torch.device, int], Scorer]


def _per_image(key: str) -> Callable[[TrainConfig, torch.device, int], Scorer]:
    """A paired metric that is the mean of a per-image figure of the methods' image_metrics."""
    def figure(output: Tensor, reference: Tensor) -> float:
        return image_metrics(output, reference).get(key, math.nan)

    def make(config: TrainConfig, device: torch.device, n_images: int) -> Scorer:
        return lambda outputs, references: Figure.of([figure(o, r) for o, r in zip(outputs, references)])
    return make


def _rgb8(image: Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> HxWx3 uint8, what the learned metrics take: grey replicated, alpha dropped."""
    rgb = image.expand(3, -1, -1) if image.shape[0] == 1 else image[:3]
    return ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _learned_weights(name: str, config: TrainConfig) -> Any:
    """The MetricWeights of a learned metric that can run on this run's images; else why not."""
    from translate.metrics import MetricWeights, why_unavailable

    g = config.generator
    if 2 in (g.in_channels, g.out_channels):
        raise ConfigError(f"runtime.val_metric: {name} judges colour or grey images; this run's have 2 channels")
    weights = MetricWeights(weights_dir=config.runtime.weights_dir)
    reason = why_unavailable(name, weights)
    if reason:
        raise WeightsError(f"{name}: {reason}")
    return weights


def make_lpips(config: TrainConfig, device: torch.device, n_images: int) -> Scorer:
    """LPIPS (AlexNet) of each output against its target, averaged; lower is better."""
    from translate.metrics import LpipsNet
    from translate.metrics.perceptual import LPIPS_MIN_SIDE

    if config.data.crop_size < LPIPS_MIN_SIDE["alex"]:
        raise ConfigError(f"runtime.val_metric: lpips needs images of at least {LPIPS_MIN_SIDE['alex']} px; "
                          f"data.crop_size is {config.data.crop_size}")
    net = LpipsNet.load("alex", _learned_weights("lpips", config), device=device)
    return lambda outputs, references: Figure.of(list(net.distances([_rgb8(o) for o in outputs],
                                                                     [_rgb8(r) for r in references])))


def make_kid(config: TrainConfig, device: torch.device, n_images: int) -> Scorer:
    """KID of the generated images against the real target-domain images (default protocol, its
    subset draws and seed); lower is better. The real images' features are kept between passes."""
    from translate.metrics import DEFAULT_PROTOCOL, InceptionNet, get_protocol, scores_from_features

    protocol = get_protocol(DEFAULT_PROTOCOL)
    if n_images < protocol.min_images_kid:
        raise ConfigError(f"runtime.val_metric: kid needs at least {protocol.min_images_kid} validation images, "
                          f"there are {n_images} (add some, or raise data.max_val_images)")
    net = InceptionNet.load(_learned_weights("kid", config), device=device)
    real_features: dict[str, np.ndarray] = {}

    def score(outputs: Sequence[Tensor], references: Sequence[Tensor]) -> Figure:
        real = [_rgb8(r) for r in references]
        key = hashlib.sha256(b"".join(image.tobytes() for image in real)).hexdigest()
        if key not in real_features:
            real_features[key] = net.features(real, protocol)
        result = scores_from_features(net.features([_rgb8(o) for o in outputs], protocol), real_features[key],
                                      protocol, inception=net.weights, metrics=("kid",))
        if result["kid"] is None:
            return Figure(math.nan)
        # KID is a set-level figure with no per-image scores: the spread of its estimates over the
        # protocol's subsets stands in for its standard error (larger than the full set's: cautious).
        return Figure(float(result["kid"]), math.nan if result["kid_std"] is None else float(result["kid_std"]))
    return score


VAL_METRICS: dict[str, ValMetric] = {
    "psnr": ValMetric("psnr", True, True, _per_image("psnr")),
    "ssim": ValMetric("ssim", True, True, _per_image("ssim")),
    "l1": ValMetric("l1", False, True, _per_image("l1")),
    # The learned metrics (translate.metrics: the `[metrics]` extra plus located feature weights).
    "lpips": ValMetric("lpips", False, True, make_lpips),
    "kid": ValMetric("kid", False, False, make_kid),
}

# runtime.val_metric "auto": the first of these that can run. KID judges unpaired translation
# (CycleGAN-style methods) and LPIPS paired outputs, as the papers do; PSNR needs no weights and
# is always there (for unpaired methods it scores the cycle reconstructions).
AUTO_ORDER: dict[bool, tuple[str, ...]] = {True: ("lpips", "psnr"), False: ("kid", "psnr")}


@dataclass
class ActiveMetric:
    """The metric a run selects best.pt by, ready to score."""
    spec: ValMetric
    scorer: Scorer

    @property
    def name(self) -> str:
        return self.spec.name


def _make(name: str, config: TrainConfig, device: torch.device, n_images: int) -> ActiveMetric:
    spec = VAL_METRICS.get(name)
    if spec is None:
        raise ConfigError(f"runtime.val_metric: {name!r} is not a metric here (choose auto, {', '.join(VAL_METRICS)})")
    return ActiveMetric(spec, spec.make(config, device, n_images))


def choose_metric(name: str, *, paired: bool, config: TrainConfig, device: torch.device, n_images: int,
                  previous: str | None = None) -> ActiveMetric:
    """The metric named by runtime.val_metric; "auto" keeps a resumed run's `previous` metric,
    else takes the first of AUTO_ORDER that can run here, saying in the log why others cannot."""
    if name != "auto":
        return _make(name, config, device, n_images)
    for candidate in ([previous] if previous else []) + list(AUTO_ORDER[paired]):
        if candidate not in VAL_METRICS:
            continue
        try:
            return _make(candidate, config, device, n_images)
        except TranslateError as e:
            log.info("validation metric %s unavailable (%s); trying the next", candidate, e)
    raise ConfigError("runtime.val_metric: no metric available")  # unreachable while psnr is registered


@dataclass
class BestRecord:
    """The best validation figure so far; checkpoints keep it (to_dict) so --resume continues it.
    A record saved before figures carried an error loads with `se` None."""
    metric: str
    higher_is_better: bool
    column: str = ""  # the val.csv column it is read from, e.g. "psnr", "cycle_psnr", "kid"
    value: float | None = None
    epoch: int = 0
    step: int = 0
    se: float | None = None  # the standard error of `value`; None: not measured
    # The per-item scores behind `value`, by pair prefix column ("psnr", "cycle_A_psnr"): what the
    # next figure's gain is paired with. None: a set-level metric (KID), or a record from before.
    items: dict[str, list[float]] | None = None

    def improves(self, value: float, se: float | None = None,
                 items: Mapping[str, Sequence[float]] | None = None) -> bool:
        """Better than the record by more than the standard error of the gain (ties, and gains
        within the error, keep the earlier checkpoint); NaN never is.

        Both figures are measured on the same fixed draws, so the gain's error is that of the
        per-item differences (paired_error): the photo-to-photo spread, which is in each figure's
        own error but the same in both, cancels. Compared with the new figure's own error, that
        rule kept the superres recipe's epoch-1 best.pt through a steady gain of +0.5 dB (each
        figure ± 1.1 dB), and those step-100 weights lost to bicubic on two of the test shrinks.
        Without per-item scores on both sides (a set-level metric, or a record saved before) the
        new figure's own error serves; without any error a strict gain counts."""
        if math.isnan(value):
            return False
        if self.value is None:
            return True
        margin = self.gain_error(se, items)
        return value > self.value + margin if self.higher_is_better else value < self.value - margin

    def gain_error(self, se: float | None = None, items: Mapping[str, Sequence[float]] | None = None) -> float:
        """The error a gain over the record must exceed (see improves); 0 when nothing measures it."""
        paired = paired_error(items or {}, self.items or {})
        if math.isfinite(paired):
            return paired
        return se if se is not None and math.isfinite(se) else 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BestRecord:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def record_for(metric: ActiveMetric, saved: dict[str, Any] | None) -> BestRecord:
    """A resumed run's record when it measured the same metric; otherwise a fresh one."""
    if saved and saved.get("metric") == metric.name:
        return BestRecord.from_dict(saved)
    if saved:
        log.warning("validation metric changed from %s to %s: the best-so-far record (and best.pt) start afresh",
                    saved.get("metric"), metric.name)
    return BestRecord(metric.name, metric.spec.higher_is_better)


Collected = dict[str, tuple[list[Tensor], list[Tensor]]]  # pair prefix -> (outputs, references)


def _as_figure(result: Figure | float) -> Figure:
    return result if isinstance(result, Figure) else Figure(float(result))


@dataclass(frozen=True)
class PassResult:
    """A validation pass: the column best.pt is chosen by, the row of figures (for val.csv), and the
    per-item scores of the selection metric by pair prefix column (empty for a set-level metric)."""
    column: str
    row: dict[str, float]
    items: dict[str, tuple[float, ...]]


def scores(metric: ActiveMetric, collected: Collected) -> PassResult:
    """The metric per pair prefix ("cycle_A_psnr"), and its mean over prefixes under their common
    prefix ("cycle_psnr"; "psnr" for one unprefixed pair), each with its standard error as the
    column + SE_SUFFIX (NaN where the metric gives none)."""
    figures = {f"{prefix}{metric.name}": _as_figure(metric.scorer(outs, refs))
               for prefix, (outs, refs) in collected.items()}
    items = {name: f.items for name, f in figures.items() if f.items}
    column = f"{os.path.commonprefix(list(collected))}{metric.name}"
    if collected:
        figures[column] = Figure.mean_of(list(figures.values()))
    row = {k: v for name, f in figures.items() for k, v in ((name, f.value), (name + SE_SUFFIX, f.se))}
    return PassResult(column, row, items if len(items) == len(collected) else {})


def _digest(tensors: Mapping[str, Tensor]) -> str:
    """What identifies an item's content: the hash of its tensors' bytes."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def validation_pass(method: Any, dataset: Any, *, to_device: Callable[[dict], dict], device: torch.device,
                    amp: str, metric: ActiveMetric,
                    substitutes: Mapping[str, nn.Module] | None = None) -> PassResult:
    """The method's per-image metrics averaged over `dataset` (every fixed draw of every photo),
    plus `metric` over the whole pass. In eval mode, through the bare nets or `substitutes` for some
    (weight averages; see GanMethod.unwrapped): call it on one rank alone. A draw identical to one
    already scored (nothing random in it) is scored once, so it cannot shrink the standard error."""
    sums: dict[str, list[float]] = {}
    collected: Collected = {}
    seen: set[str] = set()
    method.eval()
    try:
        with method.unwrapped(substitutes):
            for i in range(len(dataset)):
                tensors = {k: v for k, v in dataset[i].items() if isinstance(v, Tensor)}
                if (key := _digest(tensors)) in seen:
                    continue
                seen.add(key)
                item = to_device({k: v[None] for k, v in tensors.items()})
                with autocast(device, amp):
                    out = method(item)
                for k, v in method.validation_metrics(out).items():
                    sums.setdefault(k, []).append(v)
                pairs = method.validation_pairs(out) if metric.spec.paired else method.translation_pairs(out)
                for prefix, (output, reference) in pairs.items():
                    outs, refs = collected.setdefault(prefix, ([], []))
                    outs.append(output[0].detach().float().cpu())
                    refs.append(reference[0].detach().float().cpu())
    finally:
        method.train()
    result = scores(metric, collected)
    return dataclasses.replace(result, row={**{k: float(np.mean(v)) for k, v in sums.items()}, **result.row})


class Evaluator:
    """Rank 0's evaluation during training: the selection metric and its best-so-far record
    (`saved`: the record a resumed run's checkpoint holds)."""

    def __init__(self, config: TrainConfig, *, paired: bool, device: torch.device, n_images: int,
                 saved: dict[str, Any] | None = None) -> None:
        self.device, self.amp = device, config.runtime.amp
        self.metric = choose_metric(config.runtime.val_metric, paired=paired, config=config, device=device,
                                    n_images=n_images, previous=(saved or {}).get("metric"))
        self.best = record_for(self.metric, saved)
        self.items: dict[str, tuple[float, ...]] = {}  # the last pass's per-item scores

    def run(self, method: Any, dataset: Any, *, to_device: Callable[[dict], dict],
            substitutes: Mapping[str, nn.Module] | None = None) -> dict[str, float]:
        """One validation pass (see validation_pass): its figures, the selection column among them."""
        result = validation_pass(method, dataset, to_device=to_device, device=self.device, amp=self.amp,
                                 metric=self.metric, substitutes=substitutes)
        self.best.column, self.items = result.column, result.items
        return result.row

    def improves(self, row: dict[str, float], *, epoch: int, step: int) -> bool:
        """Whether `row` (the last pass's) beats the record by more than the standard error of the
        gain (BestRecord.improves); it then becomes the record. The log says which way it went."""
        best, value = self.best, row.get(self.best.column, math.nan)
        se = row.get(self.best.column + SE_SUFFIX, math.nan)
        if not best.improves(value, se, self.items):
            if best.value is not None:
                log.info("best %s stays %s (epoch %d); now %s, a change of %+.4g within its error %.2g",
                         best.column, plus_minus(best.value, best.se), best.epoch, plus_minus(value, se),
                         value - best.value, best.gain_error(se, self.items))
            return False
        best.value, best.se, best.epoch, best.step = value, (se if math.isfinite(se) else None), epoch, step
        best.items = {k: list(v) for k, v in self.items.items()} or None
        log.info("best %s so far: %s (epoch %d) -> checkpoints/best.pt", best.column, plus_minus(value, se), epoch)
        return True

    def result(self, last: dict[str, float]) -> dict[str, Any] | None:
        """The end of a run: the final (`last` row's) and the best figure in the log; the record, once
        it holds a figure."""
        best = self.best
        if best.value is None:
            return None
        if last:
            log.info("final %s %s (epoch %d); best %s (epoch %d): checkpoints/best.pt", best.column,
                     plus_minus(last.get(best.column, math.nan), last.get(best.column + SE_SUFFIX)), last["epoch"],
                     plus_minus(best.value, best.se), best.epoch)
        return best.to_dict()
