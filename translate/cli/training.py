"""`translate train / prepare / demo / report`: training models and showing runs."""
from __future__ import annotations

import argparse
from pathlib import Path


# ---------------------------------------------------------------- train
class _TrainParser(argparse.ArgumentParser):
    """`train`'s parser: the method choices, their help and the methods' named flags come from the
    registries, read only when `train` itself is parsed (so other commands do not import torch)."""

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        if not getattr(self, "_registry_read", False):
            self._registry_read = True
            _add_registry_arguments(self)
        return super().parse_known_args(args, namespace)


def _add_registry_arguments(p: argparse.ArgumentParser) -> None:
    """Method choices and descriptions, tasks, recipes and each method's named flags, from the registries."""
    from translate.methods import METHODS
    from translate.recipes import recipe_names
    from translate.tasks import TASKS

    for action in p._actions:
        if action.dest == "method":
            action.choices = list(METHODS)
            action.help = "training method (omit with --resume, or with a --task / --recipe that names one): " + \
                "; ".join(f"{name}: {entry.description}" for name, entry in METHODS.items())
        elif action.dest == "task":
            action.help = "what the model does (default: custom, your own pairs): " + \
                "; ".join(f"{name}: {task.description}" for name, task in TASKS.items())
        elif action.dest == "recipe":
            action.help = f"named settings for a task and method: {', '.join(recipe_names())} " \
                          "(default: the recipe named after --task, when there is one)"
    flags = {name: flag for entry in METHODS.values() for name, flag in entry.flags.items()}
    for name, flag in flags.items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=f"method_flag_{name}", type=flag.type, help=flag.help,
                       metavar=name.upper())


def _add_train(sub: argparse._SubParsersAction) -> None:
    parser_class, sub._parser_class = sub._parser_class, _TrainParser
    try:
        p = sub.add_parser("train", help="train a model (pix2pix, CycleGAN, CUT, ... see `train --help`) or resume a run",
                           description="Train a model. `translate train pix2pix --data D --out runs/x`; "
                                       "`translate train --task superres --recipe esrgan --data D --out runs/y`; "
                                       "`translate train --resume runs/x` continues exactly where it stopped.")
    finally:
        sub._parser_class = parser_class
    p.add_argument("method", nargs="?", help="training method")
    p.add_argument("--data", help="dataset root (layouts: see `translate info layouts`)")
    p.add_argument("--out", help="run directory for config, logs, samples and checkpoints")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its latest checkpoint (only runtime flags such as "
                        "--max-steps, --device may change)")
    p.add_argument("--task", help="what the model does")
    p.add_argument("--recipe", help="named settings for a task and method")
    p.add_argument("--config", help="YAML file of config overrides")
    p.add_argument("--init-from", metavar="RUN",
                   help="start the generator from this run's (or checkpoint's, or published file's) weights, e.g. "
                        "a fidelity run before --recipe esrgan; the architectures must match")
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
    p.add_argument("--direction", choices=["a_to_b", "b_to_a"])
    p.add_argument("--val-fraction", type=float, help="validation share when the data has no split folders")
    p.add_argument("--max-steps", type=int, help="stop after N optimisation steps (0: no limit)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--amp", choices=["off", "bf16", "fp16"], help="mixed precision (bf16 works on CPU too)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile the nets")
    p.add_argument("--workers", type=int, help="data-loader worker processes")
    p.add_argument("--seed", type=int)
    p.add_argument("--val-every-epochs", type=int, help="validate (and update best.pt) every N epochs (1)")
    p.add_argument("--val-metric", help="validation figure that picks checkpoints/best.pt: auto (KID for unpaired "
                                        "methods, LPIPS for paired, when installed; else PSNR), psnr, ssim, l1, ...")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field by dotted path, e.g. --set generator.n_blocks=6")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from translate.config import NAMED_SETTINGS, named_overrides
    from translate.errors import ConfigError
    from translate.training.loop import train

    named = {name: getattr(args, name) for name in NAMED_SETTINGS}
    if args.resume:
        given = [flag for flag, value in (("method", args.method), ("--data", args.data), ("--out", args.out),
                                          ("--task", args.task), ("--recipe", args.recipe), ("--config", args.config),
                                          ("--init-from", args.init_from)) if value]
        given += [f"--{name.replace('_', '-')}" for name, _ in _method_flags(args)]
        if given:
            raise ConfigError(f"{given[0]}: cannot change on resume; the run continues with its own method, "
                              f"data and config (only runtime flags such as --max-steps, --device, --amp may)")
        # Runtime flags may change; resume_config refuses the rest (architecture, data, schedule) by name.
        result = train(run_dir=Path(args.resume), resume=True, overrides=named_overrides(**named),
                       assignments=args.set)
    else:
        result = train(config=_new_config(args, named_overrides(**named)), run_dir=Path(args.out))
    _print_result(result)
    return 0


def _method_flags(args: argparse.Namespace) -> list[tuple[str, object]]:
    """The methods' named flags given on the command line, as (name, value)."""
    prefix = "method_flag_"
    return [(key[len(prefix):], value) for key, value in vars(args).items()
            if key.startswith(prefix) and value is not None]


def _new_config(args: argparse.Namespace, overrides: dict[str, object]):  # -> TrainConfig
    """A new run's config from the command line (a 0.2 task name such as esrgan becomes its recipe)."""
    import sys

    from translate.errors import ConfigError
    from translate.recipes import PLUGINS, recipe_layer, resolve_config
    from translate.tasks import RENAMED_TASKS

    if not args.data or not args.out:
        raise ConfigError("train: --data DATASET_ROOT and --out RUN_DIR are required")
    task, recipe = args.task, args.recipe
    if task in RENAMED_TASKS and recipe is None:
        task, recipe = RENAMED_TASKS[task], task
        print(f"note: --task {recipe} is now --task {task} --recipe {recipe}", file=sys.stderr)
    method = args.method or recipe_layer(task, recipe).get("method")
    if not method:
        raise ConfigError(f"train: name a method ({', '.join(PLUGINS.methods)}), or use --resume RUN_DIR")
    flags = PLUGINS.method(method).flags
    for name, value in _method_flags(args):
        if name not in flags:
            offered = ", ".join(f"--{n.replace('_', '-')}" for n in flags) or "no named flags"
            raise ConfigError(f"--{name.replace('_', '-')}: not a {method} setting ({method} takes "
                              f"{offered}; any field: --set)")
        overrides |= {path: value for path in flags[name].paths}
    overrides["data.root"] = str(Path(args.data).resolve())
    if args.init_from and Path(args.init_from).exists():  # a bare NAME means published weights
        overrides["init_from"] = str(Path(args.init_from).resolve())
    return resolve_config(method, task=task, recipe=recipe, config_file=args.config,
                          overrides=overrides, assignments=args.set)


def _print_result(result) -> None:  # result: translate.training.loop.TrainResult
    from translate.checkpoint import BEST, figures_text, plus_minus
    from translate.training.run_page import PAGE

    print(f"trained {result.step} steps ({result.epoch} epochs); checkpoint: {result.checkpoint}")
    if result.val_metrics:
        print("validation (final): " + figures_text(result.val_metrics))
    if result.best:
        b = result.best
        print(f"best {b['column']}={plus_minus(b['value'], b.get('se'))} at epoch {b['epoch']} (step {b['step']}): "
              f"{result.checkpoint.parent / BEST}")
    page = result.checkpoint.parent.parent / PAGE
    if page.is_file():
        print(f"run page: {page}")


# ---------------------------------------------------------------- prepare / demo
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
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="the task's settings, e.g. inpaint.hole_area_max=0.3")
    p.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args: argparse.Namespace) -> int:
    from translate.data.prepare import prepare
    from translate.recipes import resolve_config
    from translate.tasks import get_task

    task = get_task(args.task, from_photos=True)  # before the recipe: custom has none to prepare
    scale = {f"{args.task}.scale": args.scale, "generator.upscale": args.scale} if args.scale else {}
    config = resolve_config(task=args.task, overrides=scale, assignments=args.set)
    report = prepare(task, args.src, args.out, settings=config.task_settings, seed=args.seed,
                     val_fraction=args.val_fraction, test_fraction=args.test_fraction, max_side=args.max_side,
                     overwrite=args.overwrite)
    print(report.summary())
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}")
    return 1 if report.skipped else 0


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
    if result.model_lpips is not None:
        print(f"held-out LPIPS (lower is better): model {result.model_lpips:.4f} vs bicubic {result.baseline_lpips:.4f}")
    for metric, reason in (result.skipped_metrics or {}).items():
        print(f"{metric} not computed: {reason}")
    print(f"open {result.eval_page.resolve()}")
    return 0


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="(re)write a run's page RUN/index.html: curves, samples, checkpoints, config",
                       description="Training writes RUN/index.html at every validation; this writes it for any "
                                   "run, older ones included. It opens from the file system, offline.")
    p.add_argument("run", help="run directory")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from translate.training.run_page import report

    print(f"page: {report(Path(args.run)).resolve()}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    for add in (_add_demo, _add_train, _add_prepare, _add_report):
        add(sub)
