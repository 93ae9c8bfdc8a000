"""`translate eval`: score a model on held-out data against the task's baseline."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from translate.evaluation import LearnedMetrics
    from translate.inference.translator import Translator


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score a model on held-out pairs against the task's baseline; JSON + HTML",
                       description="Runs the model on DATA/SPLIT/A (paired layout, e.g. from `translate prepare`) "
                                   "and compares with DATA/SPLIT/B and the task's classic baseline.")
    p.add_argument("source", help="run directory or checkpoint (or an input video, with its converted video as DATA)")
    p.add_argument("data", help="paired dataset root (or a converted video: prints its temporal warping error)")
    p.add_argument("--split", default="test")
    p.add_argument("--out", help="folder for eval.json and index.html (default: SOURCE/eval_SPLIT)")
    p.add_argument("--device", default="auto")
    p.add_argument("--shrinks", metavar="NAMES",
                   help="superres: make the low-resolution inputs from the targets (SPLIT/B) with each of these "
                        "shrinks (all, or a list such as bicubic,cv2_cubic) and report the gain over bicubic "
                        "per shrink")
    _add_learned_metric_options(p)
    p.set_defaults(func=_cmd_eval)


def _add_learned_metric_options(p: argparse.ArgumentParser) -> None:
    from translate.metrics import DEFAULT_PROTOCOL, PROTOCOLS

    p.add_argument("--metrics", default="auto",
                   help="learned metrics besides PSNR/SSIM: auto (every one whose library and weights are "
                        "present; the page says why others were skipped), none, or a list such as lpips,kid "
                        "(then a missing one is an error)")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default=DEFAULT_PROTOCOL,
                   help="how FID/KID are measured: torch-fidelity (TF-exact, images at their own size) or "
                        "pytorch-fid (the CycleGAN/CUT papers' numbers: 256x256, pytorch-fid preprocessing)")
    p.add_argument("--lpips-net", choices=["alex", "vgg"], default="alex", help="LPIPS backbone (alex)")
    p.add_argument("--weights-dir", default="weights", help="folder of feature weights (weights)")
    p.add_argument("--inception-weights", metavar="FILE", help="InceptionV3 FID weights file (default: located)")
    p.add_argument("--lpips-backbone", metavar="FILE", help="torchvision AlexNet/VGG16 file (default: located)")
    p.add_argument("--lpips-layers", metavar="FILE", help="LPIPS v0.1 linear layers file (default: located)")


def _learned_metrics(args: argparse.Namespace):
    """The LearnedMetrics an eval command line asks for."""
    from translate.errors import ConfigError
    from translate.evaluation import LearnedMetrics
    from translate.metrics import LEARNED_METRICS, MetricWeights, get_protocol

    weights = MetricWeights(weights_dir=args.weights_dir, inception=args.inception_weights,
                            lpips_backbone=args.lpips_backbone, lpips_layers=args.lpips_layers)
    common = {"lpips_net": args.lpips_net, "protocol": get_protocol(args.protocol), "weights": weights}
    if args.metrics == "auto":
        return LearnedMetrics(**common)
    if args.metrics == "none":
        return LearnedMetrics(metrics=(), **common)
    names = tuple(m.strip().lower() for m in args.metrics.split(",") if m.strip())
    unknown = [m for m in names if m not in LEARNED_METRICS]
    if unknown or not names:
        raise ConfigError(f"--metrics {args.metrics}: unknown metric {unknown[0] if unknown else '(empty)'} "
                          f"(choose from auto, none, {', '.join(LEARNED_METRICS)})")
    return LearnedMetrics(metrics=names, required=True, **common)


def _cmd_eval(args: argparse.Namespace) -> int:
    import dataclasses

    from translate.data.layouts import find_paired, is_unpaired_split
    from translate.errors import DatasetError
    from translate.evaluation import evaluate
    from translate.evaluation.shrinks import parse_shrinks
    from translate.evaluation.unpaired import evaluate_run
    from translate.cli.video import eval_video_pair
    from translate.inference.translator import Translator

    if (code := eval_video_pair(args)) is not None:  # two videos: their temporal warping error
        return code
    learned = _learned_metrics(args)  # a bad --metrics fails before the model loads
    shrinks = parse_shrinks(args.shrinks) if args.shrinks else None
    translator = Translator.load(args.source, device=args.device)
    if translator.model.trained:  # a translate checkpoint: say which one, and its validation figure
        from translate.inference.loading import checkpoint_line

        print(checkpoint_line(translator.model))
    learned = dataclasses.replace(learned, device=str(translator.device))
    if shrinks:
        return _eval_shrinks(args, translator, shrinks, learned)
    out = _out_dir(args)
    title = f"translate eval: {args.source}"
    if is_unpaired_split(args.data, args.split):  # trainA/testA...: FID/KID per direction against the other domain
        report = evaluate_run(translator, args.data, args.split, out, title=title, learned=learned)
    else:
        samples = find_paired(args.data, args.split)
        pairs = [(s.a, s.b) for s in samples if s.b is not None]
        if not pairs:
            raise DatasetError(f"{args.data}: split {args.split!r} has no A/B file pairs to evaluate")
        report = evaluate(translator, pairs, out, task=translator.task, title=title, learned=learned)
    print(f"evaluated {len(report.rows)} image(s): " + ", ".join(f"{k}={v:.4g}" for k, v in report.means().items()))
    for kind, scores in report.distribution.items():
        print(f"{kind}: " + ", ".join(f"{k}={v:.4g}" for k, v in scores.items() if v is not None)
              + f" ({args.protocol} protocol)")
    for metric, reason in report.skipped_metrics.items():
        print(f"  {metric} not computed: {reason}")
    print(f"page: {out / 'index.html'}")
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}")
    return 1 if report.skipped or not report.rows else 0


def _out_dir(args: argparse.Namespace) -> Path:
    source = Path(args.source)
    return Path(args.out) if args.out else (source if source.is_dir() else source.parent) / f"eval_{args.split}"


def _eval_shrinks(args: argparse.Namespace, translator: Translator, shrinks: list[str], learned: LearnedMetrics) -> int:
    """`eval --shrinks`: score a superres model per shrink of the targets; prints the table."""
    from translate.data.layouts import find_photos
    from translate.errors import ConfigError
    from translate.evaluation.shrinks import evaluate_shrinks, format_table

    if translator.task != "superres":
        raise ConfigError(f"--shrinks: {args.source} is a {translator.task} model; per-shrink evaluation is "
                          "for superres models")
    split = Path(args.data) / args.split
    targets = find_photos(split / "B" if (split / "B").is_dir() else split)  # only targets: no A needed
    out = _out_dir(args)
    rows, reports = evaluate_shrinks(translator, targets, out, shrinks=shrinks, scale=translator.scale,
                                     title=f"translate eval: {args.source}", learned=learned)
    print(f"x{translator.scale} super-resolution per shrink of {len(targets)} target photo(s), ours vs bicubic:")
    print(format_table(rows))
    print(f"page: {out / 'index.html'}")
    skipped = {path: reason for report in reports.values() for path, reason in report.skipped}
    for path, reason in skipped.items():
        print(f"  skipped {path}: {reason}")
    return 1 if skipped or len(rows) < len(shrinks) else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    _add_eval(sub)
