"""Command line: demo / train / convert / prepare / eval / export / serve / info. Parses arguments, calls library code; the only code that exits."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("translate")


# ---------------------------------------------------------------- train
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train pix2pix (paired) or CycleGAN (unpaired), or resume a run",
                       description="Train a model. `translate train pix2pix --data D --out runs/x`; "
                                   "`translate train --resume runs/x` continues exactly where it stopped.")
    p.add_argument("method", nargs="?", choices=["pix2pix", "cyclegan"], help="training method (omit with --resume)")
    p.add_argument("--data", help="dataset root (layouts: see `translate info layouts`)")
    p.add_argument("--out", help="run directory for config, logs, samples and checkpoints")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its latest checkpoint (only runtime flags such as "
                        "--max-steps, --device may change)")
    # Task names are checked by translate.tasks.get_task (one `error:` line listing them), not by
    # argparse choices: reading the registry here would import torch for every `--help`.
    p.add_argument("--task", help="task recipe, e.g. superres or restore (default: custom, your own pairs; "
                                  "an unknown name lists the tasks)")
    p.add_argument("--config", help="YAML file of config overrides")
    p.add_argument("--epochs", type=int, help="epochs at the initial learning rate (0 with --epochs-decay 0: "
                                              "train until --max-steps)")
    p.add_argument("--epochs-decay", type=int, help="epochs of linear learning-rate decay to zero")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate of generators and discriminators")
    p.add_argument("--load-size", type=int, help="resize images to this before cropping")
    p.add_argument("--crop-size", type=int, help="training crop size")
    p.add_argument("--generator", help="generator preset, e.g. unet_256, resnet_9blocks")
    p.add_argument("--discriminator", help="discriminator preset, e.g. patchgan_70, pixelgan, multiscale_patchgan")
    p.add_argument("--norm", choices=["batch", "instance", "none"], help="normalisation of the generator")
    p.add_argument("--base-channels", type=int, help="generator width (64 in the papers)")
    p.add_argument("--in-channels", type=int, help="input image channels (1 gray, 3 RGB, 4 RGBA)")
    p.add_argument("--out-channels", type=int, help="output image channels")
    p.add_argument("--gan-loss", choices=["vanilla", "lsgan", "wgangp", "hinge"])
    p.add_argument("--lambda-l1", type=float, help="pix2pix L1 weight (100)")
    p.add_argument("--lambda-cycle", type=float, help="CycleGAN cycle weight for both directions (10)")
    p.add_argument("--lambda-identity", type=float, help="CycleGAN identity weight (0.5; 0 = off)")
    p.add_argument("--pool-size", type=int, help="CycleGAN image history size (50; 0 = off)")
    p.add_argument("--direction", choices=["a_to_b", "b_to_a"])
    p.add_argument("--val-fraction", type=float, help="validation share when the data has no split folders")
    p.add_argument("--max-steps", type=int, help="stop after N optimisation steps (0: no limit)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--amp", choices=["off", "bf16", "fp16"], help="mixed precision (bf16 works on CPU too)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile the nets")
    p.add_argument("--workers", type=int, help="data-loader worker processes")
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field by dotted path, e.g. --set generator.n_blocks=6")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from translate.config import NAMED_SETTINGS, named_overrides, resolve_config
    from translate.errors import ConfigError
    from translate.training import train

    named = {name: getattr(args, name) for name in NAMED_SETTINGS}
    if args.resume:
        given = [flag for flag, value in (("method", args.method), ("--data", args.data), ("--out", args.out),
                                          ("--task", args.task), ("--config", args.config)) if value]
        if given:
            raise ConfigError(f"{given[0]}: cannot change on resume; the run continues with its own method, "
                              f"data and config (only runtime flags such as --max-steps, --device, --amp may)")
        # Runtime flags may change; resume_config refuses the rest (architecture, data, schedule) by name.
        result = train(run_dir=Path(args.resume), resume=True, overrides=named_overrides(**named),
                       assignments=args.set)
    else:
        if not args.method:
            raise ConfigError("train: name a method (pix2pix or cyclegan), or use --resume RUN_DIR")
        if not args.data or not args.out:
            raise ConfigError("train: --data DATASET_ROOT and --out RUN_DIR are required")
        named["data"] = str(Path(args.data).resolve())
        config = resolve_config(args.method, task=args.task, config_file=args.config,
                                overrides=named_overrides(**named), assignments=args.set)
        result = train(config=config, run_dir=Path(args.out))
    print(f"trained {result.step} steps ({result.epoch} epochs); checkpoint: {result.checkpoint}")
    if result.val_metrics:
        print("validation: " + ", ".join(f"{k}={v:.4g}" for k, v in result.val_metrics.items()))
    return 0


# ---------------------------------------------------------------- convert
def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="translate an image or a folder of images with a trained model",
                       description="Convert INPUT (an image, or a folder walked recursively) into OUTPUT, "
                                   "mirroring its tree and file names. Existing outputs are kept, so a re-run "
                                   "resumes. Exit status 1 when any file failed (each is listed).")
    p.add_argument("source", help="run directory, checkpoint, reference *_net_G.pth, or the NAME of a "
                                  "published model downloaded to weights/ (scripts/fetch_weights.py)")
    p.add_argument("input", help="image file, or folder of images")
    p.add_argument("output", help="output folder (or file name, for one input image)")
    p.add_argument("--direction", choices=["a_to_b", "b_to_a"],
                   help="generator to use (default: a_to_b for CycleGAN, the trained one for pix2pix)")
    p.add_argument("--arch", metavar="PRESET",
                   help="architecture of reference weights when detection fails, e.g. resnet_9blocks")
    p.add_argument("--format", help="output format: png, jpg, tif, webp, bmp (default: the input's)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs instead of skipping them")
    p.add_argument("--tile-size", type=int, metavar="PX",
                   help="run larger images as overlapping tiles of PX (default: whole image when it fits in memory)")
    p.add_argument("--overlap", dest="overlap_px", type=int, metavar="PX", help="tile overlap (default: tile/8, at least 32)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32; 16-bit images run fp32")
    p.add_argument("--mode", choices=["eval", "paper"], default="eval",
                   help="eval: deterministic (default); paper: per-image batch-norm statistics and dropout "
                        "on, the pix2pix paper's test-time behaviour")
    p.add_argument("--paper-test-mode", dest="mode", action="store_const", const="paper", help="--mode paper")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--shard", metavar="I/N",
                   help="convert only the I-th of every N inputs, 0 <= I < N (default: torchrun's RANK/WORLD_SIZE)")
    p.add_argument("--batch-size", type=int, help="most same-size images per forward pass (default: from memory)")
    p.add_argument("--workers", type=int, default=2, help="threads decoding and encoding images (2)")
    p.add_argument("--mask-dir", help="inpainting: folder of hole masks (white = hole) named like the inputs; "
                                      "without it, an RGBA input's transparent pixels are the holes")
    p.add_argument("--max-megapixels", type=float, default=200.0,
                   help="refuse inputs whose output would exceed this many megapixels, read from the file "
                        "header before decoding (200; larger photos within it run tiled in bounded memory)")
    p.add_argument("--weights-dir", default="weights", help="folder of published models (weights)")
    p.set_defaults(func=_cmd_convert)


def _inference_options(args: argparse.Namespace, **fixed: object):
    """The engine options a convert / serve / export command line asks for (`fixed` wins)."""
    from translate.inference.translator import InferenceOptions

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
    shard = parse_shard(args.shard) if args.shard else shard_from_env(os.environ)
    translator = Translator.load(args.source, _inference_options(args), direction=args.direction, arch=args.arch,
                                 weights_dir=args.weights_dir)
    with tqdm(unit="img", desc="convert", disable=None) as bar:
        def progress(event) -> None:
            bar.total = event.total
            bar.update(1)

        report = convert_folder(
            translator, args.input, args.output, overwrite=args.overwrite, format=args.format,
            shard=shard, progress=progress, workers=args.workers, max_batch=args.batch_size,
            mask_dir=args.mask_dir, max_megapixels=args.max_megapixels,
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
    p.add_argument("source", help="run directory, checkpoint, reference *_net_G.pth, or the NAME of a "
                                  "published model downloaded to weights/")
    p.add_argument("output", help="model.onnx or model.pt2")
    p.add_argument("--direction", choices=["a_to_b", "b_to_a"],
                   help="generator to export (default: a_to_b for CycleGAN, the trained one for pix2pix)")
    p.add_argument("--arch", metavar="PRESET",
                   help="architecture of reference weights when detection fails, e.g. resnet_9blocks")
    p.add_argument("--mode", choices=["eval", "paper"], default="eval",
                   help="eval: deterministic (default); paper: the pix2pix paper's test-time behaviour baked "
                        "in, per-image batch-norm statistics and dropout on (outputs are random)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (18; 17 or newer)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                   help="compare the export with PyTorch before writing it (default: on; --no-check skips)")
    p.add_argument("--weights-dir", default="weights", help="folder of published models (weights)")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from translate.errors import ExportError
    from translate.inference.translator import Translator

    try:
        from translate.export import PARITY_TOLERANCE, export_model, format_for

        format_for(args.output)  # a wrong suffix or an existing file fails before the model loads
        if Path(args.output).exists() and not args.overwrite:
            raise ExportError(f"{args.output}: already exists; pass --overwrite to replace it")
        options = _inference_options(args, device="cpu", precision="fp32")
        translator = Translator.load(args.source, options, direction=args.direction, arch=args.arch,
                                     weights_dir=args.weights_dir)
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


# ---------------------------------------------------------------- serve
def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run a local HTTP service and web editor for a trained model",
                       description="Serve SOURCE over HTTP: POST /translate (multipart image, optional mask) "
                                   "answers the translated image; GET /model the contract; the editor page is "
                                   "at /, the API docs at /docs. Binds 127.0.0.1 (this machine only) unless "
                                   "--host says otherwise; there is no authentication.")
    p.add_argument("source", help="run directory, checkpoint, reference *_net_G.pth, or the NAME of a "
                                  "published model downloaded to weights/")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (8000)")
    p.add_argument("--direction", choices=["a_to_b", "b_to_a"],
                   help="serve only this generator (default: every one in SOURCE)")
    p.add_argument("--arch", metavar="PRESET",
                   help="architecture of reference weights when detection fails, e.g. resnet_9blocks")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32")
    p.add_argument("--mode", choices=["eval", "paper"], default="eval",
                   help="eval: deterministic (default); paper: per-image batch-norm statistics and dropout on")
    p.add_argument("--tile-size", type=int, metavar="PX", help="run larger images as overlapping tiles of PX")
    p.add_argument("--overlap", dest="overlap_px", type=int, metavar="PX", help="tile overlap (default: tile/8, at least 32)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body in MiB (20)")
    p.add_argument("--max-megapixels", type=float, default=25.0,
                   help="largest image in megapixels, checked from the header before decoding (25)")
    p.add_argument("--max-concurrent", type=int, default=2, help="net passes running at once (2)")
    p.add_argument("--request-timeout-s", type=float, default=120.0,
                   help="answer 504 to a request not translated within this many seconds, waiting included (120)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this host name, e.g. behind a proxy (repeatable; * for any). "
                        "By default only localhost, 127.0.0.1, [::1] and the --host address on --port")
    p.add_argument("--weights-dir", default="weights", help="folder of published models (weights)")
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    from translate.errors import TranslatorError

    if not 0 < args.port < 2**16:
        raise TranslatorError(f"--port: must be a TCP port from 1 to 65535, got {args.port}")
    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-megapixels", args.max_megapixels),
                        ("--max-concurrent", args.max_concurrent), ("--request-timeout-s", args.request_timeout_s)):
        if not value > 0:  # `not >` also refuses nan
            raise TranslatorError(f"{flag}: must be positive, got {value}")
    try:
        from translate.serve import HostPolicy, create_app, is_loopback, load_translators, run_server

        translators = load_translators(args.source, _inference_options(args), direction=args.direction,
                                       arch=args.arch, weights_dir=args.weights_dir)
        app = create_app(translators, max_upload_bytes=int(args.max_upload_mb * 2**20),
                         max_pixels=int(args.max_megapixels * 1e6), max_concurrent=args.max_concurrent,
                         request_timeout_s=args.request_timeout_s,
                         host_policy=HostPolicy.for_bind(args.host, args.port, args.allowed_host))
    except ModuleNotFoundError as e:
        raise TranslatorError(f"serve needs {e.name}: pip install 'translate[serve]'") from None
    for direction, translator in translators.items():
        print(f"{direction}: {translator.describe()}")
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}, reachable from other machines, with no authentication",
              file=sys.stderr)
    print(f"editor: http://{args.host}:{args.port}/   API docs: http://{args.host}:{args.port}/docs   (Ctrl+C stops)")
    run_server(app, host=args.host, port=args.port)
    return 0


# ---------------------------------------------------------------- prepare / eval / demo
def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="synthesise a task's training pairs from a folder of photos",
                       description="Write OUT/{train,val,test}/{A,B}/NAME.png: A = synthesised input, B = photo.")
    p.add_argument("task", help="a recipe task, e.g. superres (an unknown name lists them)")
    p.add_argument("src", help="folder of photos (searched recursively)")
    p.add_argument("out", help="output dataset folder")
    p.add_argument("--scale", type=int, help="superres: 2 or 4 (default: the recipe's)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--max-side", type=int, help="shrink photos so the longer side is at most this")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace pairs written before")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="synth options, e.g. synth.hole_area_max=0.3")
    p.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args: argparse.Namespace) -> int:
    from translate.data.prepare import prepare
    from translate.config import resolve_config
    from translate.tasks import get_task

    get_task(args.task, from_photos=True)  # before the recipe: custom has none to prepare
    scale = {"synth.scale": args.scale, "generator.upscale": args.scale} if args.scale else {}
    config = resolve_config("pix2pix", task=args.task, overrides=scale, assignments=args.set)
    report = prepare(args.task, args.src, args.out, synth=config.synth, seed=args.seed, val_fraction=args.val_fraction,
                     test_fraction=args.test_fraction, max_side=args.max_side, overwrite=args.overwrite)
    print(report.summary())
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}")
    return 1 if report.skipped else 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score a model on held-out pairs against the task's baseline; JSON + HTML",
                       description="Runs the model on DATA/SPLIT/A (paired layout, e.g. from `translate prepare`) "
                                   "and compares with DATA/SPLIT/B and the task's classic baseline.")
    p.add_argument("source", help="run directory or checkpoint")
    p.add_argument("data", help="paired dataset root")
    p.add_argument("--split", default="test")
    p.add_argument("--out", help="folder for eval.json and index.html (default: SOURCE/eval_SPLIT)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from translate.data.layouts import find_paired
    from translate.errors import DatasetError
    from translate.evaluation import evaluate
    from translate.inference.translator import Translator

    translator = Translator.load(args.source, device=args.device)
    samples = find_paired(args.data, args.split)
    pairs = [(s.a, s.b) for s in samples if s.b is not None]
    if not pairs:
        raise DatasetError(f"{args.data}: split {args.split!r} has no A/B file pairs to evaluate")
    source = Path(args.source)
    out = Path(args.out) if args.out else (source if source.is_dir() else source.parent) / f"eval_{args.split}"
    report = evaluate(translator, pairs, out, task=translator.task, title=f"translate eval: {args.source}")
    print(f"evaluated {len(report.rows)} image(s): " + ", ".join(f"{k}={v:.4g}" for k, v in report.means().items()))
    print(f"page: {out / 'index.html'}")
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}")
    return 1 if report.skipped or not report.rows else 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train and evaluate a small x2 super-resolution model on bundled photos",
                       description="No downloads: photos that ship with scikit-image -> prepare -> train -> "
                                   "convert -> eval page. About 3 minutes on a 2-core CPU.")
    p.add_argument("--out", default="demo_out", help="output folder (must not exist or be empty)")
    p.add_argument("--steps", type=int, default=1200, help="training steps")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from translate.demo import run_demo

    result = run_demo(Path(args.out), steps=args.steps, seed=args.seed, device=args.device)
    margin = result.model_psnr - result.baseline_psnr
    print(f"demo: trained {result.steps} steps, converted {result.converted} held-out photo(s)")
    print(f"held-out PSNR: model {result.model_psnr:.2f} dB vs bicubic {result.baseline_psnr:.2f} dB "
          f"({margin:+.2f} dB)")
    print(f"open {result.eval_page.resolve()}")
    return 0


# ---------------------------------------------------------------- info
def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="list presets and dataset layouts, or describe a checkpoint")
    p.add_argument("what", nargs="?", default="presets", help="presets, layouts, or a checkpoint / run directory")
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
        import yaml

        from translate.checkpoint import load_checkpoint

        ckpt = load_checkpoint(args.what)
        print(yaml.safe_dump({k: ckpt[k] for k in ("format_version", "translate_version", "step", "epoch", "specs")
                              if k in ckpt}, sort_keys=False))
    return 0


# ---------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    from translate import __version__

    parser = argparse.ArgumentParser(prog="translate", description="Image-to-image translation with GANs.")
    parser.add_argument("--version", action="version", version=f"translate {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo(sub)
    _add_train(sub)
    _add_convert(sub)
    _add_prepare(sub)
    _add_eval(sub)
    _add_info(sub)
    _add_export(sub)
    _add_serve(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Anything the user can fix prints one `error: ...` line and returns 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from translate.errors import TranslateError

    try:
        code = args.func(args)
        sys.stdout.flush()  # a reader that went away (`translate info RUN | head`) shows up here
        return code
    except TranslateError as e:
        return _fail(str(e))
    except BrokenPipeError:
        _silence_stdout()
        return 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left
    except OSError as e:  # the file system said no: permissions, a full disk, a file where a folder goes
        return _fail(_os_error_line(e))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    print("error: " + " ".join(line.strip() for line in message.splitlines() if line.strip()), file=sys.stderr)
    return 2


def _os_error_line(error: OSError) -> str:
    from translate.errors import first_line

    if error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return first_line(error)


def _silence_stdout() -> None:
    """Point stdout at the null device, so that Python's flush at exit does not hit the closed pipe again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured by a test, say)
        pass


if __name__ == "__main__":
    sys.exit(main())
