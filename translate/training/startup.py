"""What a run does once before its first step: the process (device, seed, ranks), the nets' placement,
starting weights, the data files' check and compilation."""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from translate import distributed
from translate.config import TrainConfig
from translate.data.images import read_header
from translate.errors import CheckpointError, ConfigError, DatasetError, ImageError, TranslateError
from translate.inference.device import resolve_device
from translate.methods.base import GanMethod

log = logging.getLogger(__name__)


def setup_process(config: TrainConfig) -> tuple[distributed.DistContext, torch.device]:
    """This process's rank context and device, its process group joined and its seed set."""
    rt = config.runtime
    dist = distributed.context_from_env()
    device = resolve_device(distributed.rank_device(rt.device, dist), field="runtime.device")
    if rt.amp == "fp16" and device.type != "cuda":
        raise ConfigError("runtime.amp: fp16 needs CUDA; use --amp bf16 on CPU")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    distributed.init(dist, device)
    # Every rank seeds differently (dropout, pools) but reproducibly; initial weights are
    # broadcast from rank 0 by DistributedDataParallel.
    torch.manual_seed(rt.seed + dist.rank)
    return dist, device


def place_nets(method: GanMethod, config: TrainConfig, dist: distributed.DistContext, device: torch.device) -> None:
    rt = config.runtime
    if dist.enabled and rt.sync_batchnorm:
        for name in list(method.nets):
            method.nets[name] = nn.SyncBatchNorm.convert_sync_batchnorm(method.nets[name])
    method.to(device)
    if rt.channels_last:
        method.to(memory_format=torch.channels_last)


def check_data_files(files: Sequence[Path], *, max_megapixels: float) -> None:
    """Read every file's header before the first step, so a corrupt or oversized file stops the run
    at once, by name, rather than mid-epoch (losing the epoch) or by exhausting memory."""
    problems = []
    for path in files:
        try:
            height, width = read_header(path)
        except ImageError as e:
            problems.append(str(e))
            continue
        if height * width > max_megapixels * 1e6:
            problems.append(f"{path}: {width}x{height} pixels is more than data.max_megapixels "
                            f"({max_megapixels:g}); shrink it or raise the limit (--set data.max_megapixels=N)")
    if problems:
        more = f" ({len(problems) - 1} more file(s) fail this check too)" if len(problems) > 1 else ""
        raise DatasetError(f"{problems[0]}{more}")


def relative_names(files: Sequence[Path], root: str | Path) -> list[str]:
    """Paths relative to the data root (bare names outside it): comparable across machines."""
    root = Path(root)
    return [str(p.relative_to(root)) if p.is_relative_to(root) else p.name for p in map(Path, files)]


def check_ranks_agree(config: TrainConfig, files: list[Path]) -> None:
    """Same config (bar per-machine paths and devices) and the same data files on every rank."""
    settings = config.to_dict()
    settings["data"] = {k: v for k, v in settings["data"].items() if k != "root"}
    settings["runtime"] = {k: v for k, v in settings["runtime"].items() if k != "device"}
    distributed.check_agreement("config", settings)
    distributed.check_agreement("training data", relative_names(files, config.data.root))


def init_generators(method: GanMethod, source: str) -> None:
    """Generator weights (averaged ones when saved) from a run, checkpoint or published weights:
    the fidelity stage that SRGAN / ESRGAN / Real-ESRGAN's GAN stage starts from."""
    from translate.inference.loading import load_models
    from translate.nets import spec_to_dict

    try:
        models = load_models(source)
    except TranslateError as e:
        raise CheckpointError(f"init_from: {e}") from None
    for name in method.inference_names:  # image generators (not CUT's patch sampler)
        found = models if len(models) == 1 else [m for m in models if m.net_name == name]
        if not found:
            raise CheckpointError(f"init_from {source}: holds no {name} generator "
                                  f"(it holds {', '.join(m.net_name for m in models)})")
        want, got = spec_to_dict(method.specs[name]), spec_to_dict(found[0].spec)
        taken = f"its {found[0].net_name} ({found[0].direction})" if found[0].direction else "its generator"
        if want != got:
            keys = [k for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)]
            diffs = "; ".join(f"{k}: {got.get(k)!r} there, {want.get(k)!r} here" for k in keys[:3])
            raise CheckpointError(f"init_from {source}: {taken} differs from this run's {name} in {len(keys)} "
                                  f"setting{'s' * (len(keys) > 1)} ({diffs}{'; ...' * (len(keys) > 3)}); give "
                                  "this run the same generator (--generator, --set generator.FIELD=...)")
        method.nets[name].load_state_dict(found[0].net.state_dict())
        log.info("%s starts from %s of %s", name, taken, source)


def compile_nets(method: GanMethod, device: torch.device) -> None:
    """torch.compile each net in place; without a compiler, one warning and eager mode."""
    if shutil.which(os.environ.get("CXX", "g++")) is None and device.type == "cpu":
        log.warning("torch.compile needs a C++ compiler on CPU and none was found; running eagerly")
        return
    try:
        for net in method.nets.values():
            net.compile()
    except Exception as e:  # noqa: BLE001 - any compiler failure falls back to eager
        log.warning("torch.compile unavailable (%s); running eagerly", str(e).splitlines()[0][:120])
