"""`translate convert / export / serve / info`: using trained and published models."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


# ---------------------------------------------------------------- convert
def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="translate an image or a folder of images with a trained model",
                       description="Convert INPUT (an image, or a folder walked recursively) into OUTPUT, "
                                   "mirroring its tree and file names. Existing outputs are kept, so a re-run "
                                   "resumes. Exit status 1 when any file failed (each is listed).")
    add_model_source(p)
    p.add_argument("input", help="image or video file, or folder of them (videos: mp4, mov, mkv, webm, avi)")
    p.add_argument("output", help="output folder (or file name, for one input image or video)")
    add_direction(p, "generator to use (default: a_to_b for CycleGAN, the trained one for pix2pix)")
    p.add_argument("--format", help="output format: png, jpg, tif, webp, bmp (default: the input's)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs instead of skipping them")
    add_engine_options(p)
    p.add_argument("--paper-test-mode", dest="mode", action="store_const", const="paper", help="--mode paper")
    p.add_argument("--shard", metavar="I/N",
                   help="convert only the I-th of every N inputs, 0 <= I < N (default: torchrun's RANK/WORLD_SIZE)")
    p.add_argument("--batch-size", type=int, help="most same-size images per forward pass (default: from memory)")
    p.add_argument("--workers", type=int, default=2, help="threads decoding and encoding images (2)")
    p.add_argument("--mask-dir", help="inpainting: folder of hole masks (white = hole) named like the inputs; "
                                      "without it, an RGBA input's transparent pixels are the holes")
    p.add_argument("--max-megapixels", type=float, default=200.0,
                   help="refuse inputs whose output would exceed this many megapixels, read from the file "
                        "header before decoding (200; larger photos within it run tiled in bounded memory)")
    from translate.cli.ray_convert import add_ray_options

    add_ray_options(p)
    p.add_argument("--codec", help="video encoder: h264 (default; vp9 for .webm), hevc, vp9, av1 or an FFmpeg name")
    p.add_argument("--crf", type=int, help="video quality, lower is better (18)")
    p.add_argument("--temporal", type=float, default=0.0, metavar="STRENGTH",
                   help="video flicker reduction from 0 (off, frame by frame; default) to 1, e.g. 0.8")
    p.set_defaults(func=_cmd_convert)


def add_model_source(p: argparse.ArgumentParser) -> None:
    """SOURCE plus the flags that say how to read it (shared by convert, export and serve)."""
    p.add_argument("source", help="run directory, checkpoint, reference *_net_G.pth, or the NAME of a "
                                  "published model downloaded to weights/ (`translate weights fetch NAME`)")
    p.add_argument("--arch", metavar="PRESET",
                   help="architecture of reference weights when detection fails, e.g. resnet_9blocks")
    p.add_argument("--weights-dir", default="weights", help="folder of published models (weights)")
    p.add_argument("--trust-torchscript", action="store_true",
                   help="load a TorchScript .pt file (refused otherwise: loading one runs the code stored in it)")
    p.add_argument("--extra-arches", action="store_true",
                   help="also detect spandrel_extra_arches' architectures (installed separately; some of them "
                        "are licensed for non-commercial use only)")


def source_options(args: argparse.Namespace) -> dict:
    """The ModelSource fields besides the path that a command line gives (how to read SOURCE)."""
    return {"direction": getattr(args, "direction", None), "arch": args.arch,
            "weights_dir": getattr(args, "weights_dir", "weights"), "trust_torchscript": args.trust_torchscript,
            "extra_arches": args.extra_arches}


def _model_source(args: argparse.Namespace, path: str | None = None):
    """The `ModelSource` a command line names (SOURCE, or `path`)."""
    from translate.inference.contract import ModelSource

    return ModelSource(args.source if path is None else path, **source_options(args))


def add_direction(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--direction", choices=["a_to_b", "b_to_a"], help=help)


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """The flags of `InferenceOptions` (convert and serve; export fixes device and precision)."""
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32; 16-bit images run fp32")
    p.add_argument("--mode", choices=["eval", "paper"], default="eval",
                   help="eval: deterministic (default); paper: per-image batch-norm statistics and dropout "
                        "on, the pix2pix paper's test-time behaviour")
    p.add_argument("--tile-size", type=int, metavar="PX",
                   help="run larger images as overlapping tiles of PX (default: whole image when it fits in memory)")
    p.add_argument("--overlap", dest="overlap_px", type=int, metavar="PX", help="tile overlap (default: tile/8, at least 32)")


def inference_options(args: argparse.Namespace, **fixed: object):
    """The engine options a convert / serve / export command line asks for (`fixed` wins)."""
    from translate.inference.options import InferenceOptions

    names = ("device", "precision", "tile_size", "overlap_px", "mode")
    given = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return InferenceOptions(**{**given, **fixed})


def _cmd_convert(args: argparse.Namespace) -> int:
    import os

    from tqdm import tqdm

    from translate.errors import TranslatorError
    from translate.inference.folder import convert_folder, parse_shard, shard_from_env
    from translate.inference.translator import Translator

    for flag, value in (("--batch-size", args.batch_size), ("--workers", args.workers)):
        if value is not None and value < 1:
            raise TranslatorError(f"{flag}: must be at least 1, got {value}")
    if args.engine == "ray":
        from translate.cli.ray_convert import run_ray_convert

        return run_ray_convert(args, inference_options(args), source_options(args))
    shard = parse_shard(args.shard) if args.shard else shard_from_env(os.environ)
    translator = Translator.load(_model_source(args), inference_options(args))
    if translator.model.trained and int(os.environ.get("RANK", 0)) == 0:  # a translate checkpoint: which one
        from translate.inference.loading import checkpoint_line

        print(checkpoint_line(translator.model))
    from translate.cli.video import convert_video_file, video_settings

    video = video_settings(args)
    if (code := convert_video_file(translator, args, video)) is not None:
        return code
    with tqdm(unit="img", desc="convert", disable=None) as bar:
        def progress(event) -> None:
            bar.total = event.total
            bar.update(1)

        report = convert_folder(
            translator, args.input, args.output, overwrite=args.overwrite, format=args.format,
            shard=shard, progress=progress, workers=args.workers, max_batch=args.batch_size,
            mask_dir=args.mask_dir, max_megapixels=args.max_megapixels, video=video,
        )
    from translate.distributed import gather_from_ranks

    # Under torchrun (no --shard) each rank converts its shard; rank 0 reports for all of them.
    mine = (len(report.converted), len(report.skipped_existing), [(str(p), r) for p, r in report.failed],
            report.seconds)
    ranks = gather_from_ranks(mine) if not args.shard else [mine]
    converted, done = sum(r[0] for r in ranks), sum(r[1] for r in ranks)
    failed = [f for r in ranks for f in r[2]]
    seconds = max(r[3] for r in ranks)
    if len(ranks) > 1 and int(os.environ.get("RANK", 0)) != 0:
        return 0 if not failed else 1
    where = f"shard {shard[0]}/{shard[1]}: " if shard and len(ranks) == 1 else (f"{len(ranks)} ranks: " if len(ranks) > 1 else "")
    print(f"{where}converted {converted}, already done {done}, failed {len(failed)} in {seconds:.1f} s "
          f"({converted / seconds if seconds else 0.0:.2f} images/s)")
    for path, reason in failed:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    return 0 if not failed else 1

# ---------------------------------------------------------------- export
def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a generator to ONNX (.onnx) or torch.export (.pt2) for plugins",
                       description="Export the generator of SOURCE to OUTPUT: .onnx (ONNX opset 18, runs in "
                                   "ONNX Runtime without torch) or .pt2 (torch.export, loads with "
                                   "torch.export.load). The file holds the net only, NCHW float32 in [-1, 1]; "
                                   "padding, tiling and cropping stay with the caller (examples/README.md). Its "
                                   "contract (channels, size multiple, scale, task, direction, mode, spec, config) "
                                   "is embedded as JSON metadata 'translate.json'. Before writing, the export is "
                                   "checked against PyTorch on real photos and refused above a max abs diff of 1e-4.")
    add_model_source(p)
    p.add_argument("output", help="model.onnx or model.pt2")
    add_direction(p, "generator to export (default: a_to_b for CycleGAN, the trained one for pix2pix)")
    p.add_argument("--mode", choices=["eval", "paper"], default="eval",
                   help="eval: deterministic (default); paper: the pix2pix paper's test-time behaviour baked "
                        "in, per-image batch-norm statistics and dropout on (outputs are random)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (18; 17 or newer)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                   help="compare the export with PyTorch before writing it (default: on; --no-check skips)")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from translate.errors import ExportError
    from translate.inference.translator import Translator

    try:
        from translate.export.write import PARITY_TOLERANCE, export_model, format_for

        format_for(args.output)  # a wrong suffix or an existing file fails before the model loads
        if Path(args.output).exists() and not args.overwrite:
            raise ExportError(f"{args.output}: already exists; pass --overwrite to replace it")
        options = inference_options(args, device="cpu", precision="fp32")
        translator = Translator.load(_model_source(args), options)
        report = export_model(translator, args.output, overwrite=args.overwrite, check=args.check, opset=args.opset)
    except ModuleNotFoundError as e:
        raise ExportError(f"export needs {e.name}: pip install 'translate[onnx]'") from None
    print(f"exported {translator.describe()} to {report.path} ({report.format}, "
          f"{report.size_bytes / 2**20:.1f} MiB) in {report.seconds:.1f} s")
    if report.max_abs_diff is None:
        print("parity check skipped (--no-check)")
    else:
        print(f"parity vs PyTorch (fp32, real photos): max abs diff {report.max_abs_diff:.2e} "
              f"(limit {PARITY_TOLERANCE:.0e})")
    if report.contract["stochastic"]:
        print("paper mode: dropout stays on, so the exported net's outputs are random")
    return 0

# ---------------------------------------------------------------- info
def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="list presets and dataset layouts, or describe a checkpoint or model file")
    p.add_argument("what", nargs="?", default="presets",
                   help="presets, layouts, a checkpoint / run directory, or a published weights file (says what "
                        "was detected: architecture, task, channels, scale, size rules, range, tiling, precisions)")
    p.add_argument("--arch", metavar="PRESET", help="architecture of reference weights when detection fails")
    p.add_argument("--trust-torchscript", action="store_true", help="as for convert")
    p.add_argument("--extra-arches", action="store_true", help="as for convert")
    p.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    if args.what == "presets":
        from translate.nets import PRESETS, spec_to_dict

        for name, spec in PRESETS.items():
            print(f"{name:22s} {spec_to_dict(spec)}")
    elif args.what == "layouts":
        from translate.data.layouts import LAYOUTS

        for name, text in LAYOUTS.items():
            print(f"{name:16s} {text}")
    else:
        _print_model_info(args)
    return 0


def _print_model_info(args: argparse.Namespace) -> None:
    """What a checkpoint or weights file holds: each generator's contract, as `describe_model`
    gives it (the same facts export metadata and the service show), and a checkpoint's progress."""
    import yaml

    from translate.checkpoint import is_translate_checkpoint, load_checkpoint, resolve_checkpoint
    from translate.inference.loading import describe_model, load_models, read_weights, resolve_source

    path = resolve_checkpoint(resolve_source(args.what))
    documents = []
    if is_translate_checkpoint(read_weights(path, trust_torchscript=args.trust_torchscript)):
        ckpt = load_checkpoint(path)
        documents.append({k: ckpt[k] for k in ("format_version", "translate_version", "step", "epoch") if k in ckpt})
    documents += [describe_model(model) for model in load_models(_model_source(args, args.what))]
    print(yaml.safe_dump_all(documents, sort_keys=False))  # YAML documents, one per generator


def add_commands(sub: argparse._SubParsersAction) -> None:
    for add in (_add_convert, _add_info, _add_export):
        add(sub)
