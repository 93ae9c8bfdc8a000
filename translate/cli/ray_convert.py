"""`translate convert --engine ray`: the Ray options of `convert` and their handler."""
from __future__ import annotations

import argparse
import sys


def add_ray_options(p: argparse.ArgumentParser) -> None:
    """--engine and the flags that lay out a Ray run (convert)."""
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process (default); ray: Ray Data, INPUT and OUTPUT may be URIs (s3://, gs://, "
                        "abfs://, file://); --workers then counts Ray workers (one model each) and --batch-size the "
                        "inputs per Ray batch")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster, e.g. auto or ray://head:10001 (default: a local Ray for this run)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per Ray worker, e.g. 1 or 0.5 (0)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0,
                   help="CPUs per Ray worker; torch uses as many threads (1)")


def run_ray_convert(args: argparse.Namespace, options, source_kwargs: dict) -> int:
    """Convert args.input into args.output on Ray; prints the summary, exit status 1 when any failed."""
    from translate.errors import TranslatorError
    from translate.inference.ray_engine import DEFAULT_BATCH_ROWS, RaySettings, convert_with_ray

    for flag, given in (("--shard", args.shard), ("--mask-dir", args.mask_dir)):
        if given:
            raise TranslatorError(f"{flag}: not available with --engine ray (Ray shares the inputs out itself)"
                                  if flag == "--shard" else f"{flag}: not available with --engine ray yet")
    settings = RaySettings(address=args.ray_address, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                           cpus_per_worker=args.cpus_per_worker, batch_rows=args.batch_size or DEFAULT_BATCH_ROWS)
    report = convert_with_ray(args.source, args.input, args.output, options=options, source_kwargs=source_kwargs,
                              settings=settings, overwrite=args.overwrite, format=args.format,
                              max_batch=args.batch_size, max_megapixels=args.max_megapixels)
    print(f"ray, {settings.workers} worker(s): converted {len(report.converted)}, already done "
          f"{len(report.skipped_existing)}, failed {len(report.failed)} in {report.seconds:.1f} s "
          f"({report.images_per_s:.2f} images/s)")
    for path, reason in report.failed:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    return 0 if report.ok else 1
