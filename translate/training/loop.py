"""The training loop shared by every method: device, seed, AMP, LR schedule, resume, checkpoints."""
from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from translate import distributed
from translate.checkpoint import (
    BEST, LATEST, checkpoint_dir, disk_usage, inference_state, load_checkpoint, numbered_path, prune_checkpoints,
    save_checkpoint,
)
from translate.config import TrainConfig, resume_config
from translate.data.images import read_header
from translate.training import readable
from translate.training.ema import WeightAverage
from translate.data.collate import collate_samples
from translate.errors import CheckpointError, ConfigError, DatasetError, ImageError, TranslateError
from translate.files import remove_stale_temp_files
from translate.inference.device import autocast, resolve_device
from translate.methods import METHODS
from translate.methods.base import GanMethod
from translate.training.run_page import RunStatus, refresh_run_page
from translate.training.sampler import EpochSampler, batches_per_epoch
from translate.training.log import TrainingLog
from translate.training.validation import Evaluator

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    step: int
    epoch: int
    checkpoint: Path
    val_metrics: dict[str, float] = field(default_factory=dict)
    val_history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, Any] | None = None  # BestRecord.to_dict(): the figure behind checkpoints/best.pt


def lr_factor(epoch: int, *, epochs: int, epochs_decay: int) -> float:
    """Constant for `epochs`, then linear decay towards 0 over `epochs_decay` (pix2pix/CycleGAN code).
    `epoch` is 0-based; the last decay epoch still trains at a small positive rate."""
    return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)


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


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


class Trainer:
    """Owns the method, optimizers, data and bookkeeping of one run."""

    def __init__(self, config: TrainConfig, run_dir: Path, checkpoint: dict[str, Any] | None = None) -> None:
        self.config, self.run_dir = config, run_dir
        self._setup_process()
        self.method: GanMethod = METHODS[config.method](config)
        self.train_set, self.val_set = self.method.datasets()
        self._place_nets()
        files = [f for ds in (self.train_set, self.val_set) if ds is not None for f in self.method.data_files(ds)]
        if self.dist.enabled:
            self._check_ranks_agree(files)
        check_data_files(files, max_megapixels=config.data.max_megapixels)
        self._build_optimizers()
        self.step = self.epoch = self.batch_in_epoch = 0
        self.val_history: list[dict[str, float]] = []
        self.replica_checksums: list[float] = []
        if config.init_from and checkpoint is None:
            self._init_generators(config.init_from)
        self.ema = None  # generator weight averages, made from the starting weights
        if config.optim.ema_decay > 0:
            generators = {name: self.method.nets[name] for name in self.method.inference_names}
            self.ema = WeightAverage(generators, decay=config.optim.ema_decay)
        if checkpoint is not None:
            self._restore(checkpoint)
        self.evaluator = None if self.val_set is None or self.rank != 0 else Evaluator(  # only rank 0 validates
            config, paired=self.method.paired, device=self.device, n_images=len(self.val_set),
            saved=(checkpoint or {}).get("best"))
        if self.dist.enabled:  # after restoring, so every rank starts from the checkpoint's weights
            self.method.replicas = {name: distributed.wrap(net, self.device)
                                    for name, net in self.method.nets.items()}
        if config.runtime.compile:
            self._compile()
        rt, o = config.runtime, config.optim
        self.batches_per_epoch = batches_per_epoch(
            config.data.samples_per_epoch or len(self.train_set), batch_size=o.batch_size, world_size=self.world_size)
        # "Until max_steps" (epochs 0) becomes however many epochs those steps take, at a constant rate.
        self.total_epochs = config.total_epochs or math.ceil(rt.max_steps / self.batches_per_epoch)
        self.total_steps = min(rt.max_steps or math.inf, self.total_epochs * self.batches_per_epoch)
        self.last_numbered = time.monotonic()

    # ------------------------------------------------------------ set-up
    def _setup_process(self) -> None:
        rt = self.config.runtime
        self.dist = distributed.context_from_env()
        self.rank, self.world_size = self.dist.rank, self.dist.world_size
        self.device = resolve_device(distributed.rank_device(rt.device, self.dist), field="runtime.device")
        if rt.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("runtime.amp: fp16 needs CUDA; use --amp bf16 on CPU")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        distributed.init(self.dist, self.device)
        # Every rank seeds differently (dropout, pools) but reproducibly; initial weights are
        # broadcast from rank 0 by DistributedDataParallel.
        torch.manual_seed(rt.seed + self.rank)

    def _place_nets(self) -> None:
        rt = self.config.runtime
        if self.dist.enabled and rt.sync_batchnorm:
            for name in list(self.method.nets):
                self.method.nets[name] = nn.SyncBatchNorm.convert_sync_batchnorm(self.method.nets[name])
        self.method.to(self.device)
        if rt.channels_last:
            self.method.to(memory_format=torch.channels_last)

    def _build_optimizers(self) -> None:
        o, fp16 = self.config.optim, self.config.runtime.amp == "fp16"
        params = lambda names: [p for n in names for p in self.method.nets[n].parameters()]  # noqa: E731
        # fused Adam: one kernel over all parameters; on CPU it cuts the optimizer step ~4x.
        adam = lambda names, lr: torch.optim.Adam(params(names), lr=lr, betas=(o.beta1, o.beta2), fused=True)  # noqa: E731
        self.opt_g = adam(self.method.generator_names, o.lr_g)
        self.opt_d = adam(self.method.discriminator_names, o.lr_d) if self.method.discriminator_names else None
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=fp16) for k in ("g", "d")}

    def _init_generators(self, source: str) -> None:
        """Generator weights (averaged ones when saved) from a run, checkpoint or published weights:
        the fidelity stage that SRGAN / ESRGAN / Real-ESRGAN's GAN stage starts from."""
        from translate.inference.loading import load_models
        from translate.nets import spec_to_dict

        try:
            models = load_models(source)
        except TranslateError as e:
            raise CheckpointError(f"init_from: {e}") from None
        for name in self.method.inference_names:  # image generators (not CUT's patch sampler)
            found = models if len(models) == 1 else [m for m in models if m.net_name == name]
            if not found:
                raise CheckpointError(f"init_from {source}: holds no {name} generator "
                                      f"(it holds {', '.join(m.net_name for m in models)})")
            want, got = spec_to_dict(self.method.specs[name]), spec_to_dict(found[0].spec)
            taken = f"its {found[0].net_name} ({found[0].direction})" if found[0].direction else "its generator"
            if want != got:
                keys = [k for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)]
                diffs = "; ".join(f"{k}: {got.get(k)!r} there, {want.get(k)!r} here" for k in keys[:3])
                raise CheckpointError(f"init_from {source}: {taken} differs from this run's {name} in {len(keys)} "
                                      f"setting{'s' * (len(keys) > 1)} ({diffs}{'; ...' * (len(keys) > 3)}); give "
                                      "this run the same generator (--generator, --set generator.FIELD=...)")
            self.method.nets[name].load_state_dict(found[0].net.state_dict())
            log.info("%s starts from %s of %s", name, taken, source)

    def _check_ranks_agree(self, files: list[Path]) -> None:
        """Same config (bar per-machine paths and devices) and the same data files on every rank."""
        config = self.config.to_dict()
        config["data"] = {k: v for k, v in config["data"].items() if k != "root"}
        config["runtime"] = {k: v for k, v in config["runtime"].items() if k != "device"}
        distributed.check_agreement("config", config)
        distributed.check_agreement("training data", relative_names(files, self.config.data.root))

    def _compile(self) -> None:
        """torch.compile each net in place; without a compiler, one warning and eager mode."""
        if shutil.which(os.environ.get("CXX", "g++")) is None and self.device.type == "cpu":
            log.warning("torch.compile needs a C++ compiler on CPU and none was found; running eagerly")
            return
        try:
            for net in self.method.nets.values():
                net.compile()
        except Exception as e:  # noqa: BLE001 - any compiler failure falls back to eager
            log.warning("torch.compile unavailable (%s); running eagerly", str(e).splitlines()[0][:120])

    # ------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "config": self.config.to_dict(),
            "specs": self.method.spec_dicts(),
            "nets": {name: net.state_dict() for name, net in self.method.nets.items()},
            "optimizers": {"g": self.opt_g.state_dict(), **({"d": self.opt_d.state_dict()} if self.opt_d else {})},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "method_state": self.method.extra_state(),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "val_history": self.val_history, "rng": rng, "replica_checksums": self.replica_checksums,
            "best": self.evaluator and self.evaluator.best.to_dict(),
        }

    def _restore(self, ckpt: dict[str, Any]) -> None:
        for name, net in self.method.nets.items():
            net.load_state_dict(ckpt["nets"][name])
        self.opt_g.load_state_dict(ckpt["optimizers"]["g"])
        if self.opt_d is not None:
            self.opt_d.load_state_dict(ckpt["optimizers"]["d"])
        for k, s in self.scalers.items():
            if ckpt.get("scalers", {}).get(k):
                s.load_state_dict(ckpt["scalers"][k])
        self.method.load_extra_state(ckpt.get("method_state", {}))
        if self.ema is not None:
            if "ema" not in ckpt:
                raise CheckpointError("checkpoint: this run averages generator weights (optim.ema_decay) but its "
                                      "checkpoint holds no averages")
            self.ema.load_state_dict(ckpt["ema"])
        self.step, self.epoch, self.batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt.get("batch_in_epoch", 0)
        self.val_history = list(ckpt.get("val_history", []))
        torch.set_rng_state(ckpt["rng"]["torch"])
        if "cuda" in ckpt["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], self.device)

    def save(self, *, numbered: bool = False) -> Path:
        """latest.pt, the full training state; with `numbered`, also step_NNNNNNN.pt holding what
        inference needs, keeping the newest runtime.keep_checkpoints of those. Rank 0 writes."""
        folder = checkpoint_dir(self.run_dir)
        latest = folder / LATEST
        if self.rank != 0:
            return latest
        state = self.state()
        save_checkpoint(latest, state)
        if numbered:
            self.last_numbered = time.monotonic()
            save_checkpoint(numbered_path(folder, self.step), inference_state(state, nets=self.method.inference_names))
            prune_checkpoints(folder, keep=self.config.runtime.keep_checkpoints)
            log.info("checkpoint at step %d; the run's checkpoints use %s", self.step, _megabytes(disk_usage(folder)))
        return latest

    def _numbered_due(self, *, epoch_end: bool = False) -> bool:
        rt = self.config.runtime
        return bool((epoch_end and rt.checkpoint_every_epochs and self.epoch % rt.checkpoint_every_epochs == 0)
                    or (rt.checkpoint_every_steps and self.step % rt.checkpoint_every_steps == 0)
                    or (rt.checkpoint_every_minutes
                        and time.monotonic() - self.last_numbered >= 60 * rt.checkpoint_every_minutes))

    # ------------------------------------------------------------ pieces
    def _loader(self) -> DataLoader:
        sampler = EpochSampler(len(self.train_set), seed=self.config.runtime.seed, epoch=self.epoch,
                               start=self.batch_in_epoch * self.config.optim.batch_size,
                               rank=self.rank, world_size=self.world_size,
                               length=self.config.data.samples_per_epoch)
        return DataLoader(self.train_set, batch_size=self.config.optim.batch_size, sampler=sampler,
                          num_workers=self.config.data.workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=False, collate_fn=collate_samples)  # mixed sizes: one line

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        fmt = torch.channels_last if self.config.runtime.channels_last else torch.contiguous_format
        return {k: v.to(self.device, non_blocking=True, memory_format=fmt)
                for k, v in batch.items() if isinstance(v, Tensor)}

    def _set_requires_grad(self, names: tuple[str, ...], flag: bool) -> None:
        for name in names:
            for p in self.method.nets[name].parameters():
                p.requires_grad_(flag)

    def _optimise(self, losses: dict[str, Tensor], opt: torch.optim.Optimizer, scaler: Any,
                  names: tuple[str, ...]) -> None:
        opt.zero_grad(set_to_none=True)
        scaler.scale(sum(losses.values())).backward()
        if self.config.optim.grad_clip > 0:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_([p for n in names for p in self.method.nets[n].parameters()],
                                     self.config.optim.grad_clip)
        scaler.step(opt)
        scaler.update()

    def _update_generators(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        m = self.method
        # D is frozen during the G step so no D weight gradients are computed for nothing.
        self._set_requires_grad(m.discriminator_names, False)
        with autocast(self.device, self.config.runtime.amp):
            losses = m.generator_losses(out)
        self._optimise(losses, self.opt_g, self.scalers["g"], m.generator_names)
        self._set_requires_grad(m.discriminator_names, True)
        return losses

    def _update_discriminators(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.opt_d is None:
            return {}
        with autocast(self.device, self.config.runtime.amp):
            losses = self.method.discriminator_losses(out)
        self._optimise(losses, self.opt_d, self.scalers["d"], self.method.discriminator_names)
        return losses

    def train_step(self, batch: dict[str, Tensor]) -> tuple[dict[str, float], dict[str, Tensor]]:
        """One forward pass, then the method's updates in its `update_order`, all on these outputs."""
        self.method.step, self.method.total_steps = self.step, self.total_steps  # for scheduled loss terms
        with autocast(self.device, self.config.runtime.amp):
            out = self.method(batch)
        updates = {"generator": self._update_generators, "discriminator": self._update_discriminators}
        losses: dict[str, Tensor] = {}
        for role in self.method.update_order:
            losses.update(updates[role](out))
        if self.ema is not None:
            self.ema.update(self.method.nets)
        return {k: float(v.detach()) for k, v in losses.items()}, out

    def validate(self) -> dict[str, float]:
        """Rank 0's validation figures (validation.Evaluator), through the bare nets or their weight
        averages (optim.ema_decay): the other ranks never wait on a collective that it does not join."""
        if self.evaluator is None:
            return {}
        return self.evaluator.run(self.method, self.val_set, to_device=self._to_device,
                                  substitutes=self.ema.nets if self.ema is not None else None)

    # ------------------------------------------------------------ loop
    def _start_run(self) -> TrainingLog:
        cfg = self.config
        if self.rank == 0:
            checkpoint_dir(self.run_dir).mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(checkpoint_dir(self.run_dir))
            readable.write_run_config(self.run_dir, cfg.to_yaml(), cfg.to_dict())  # keeps a user's edit
        log.info("run %s: %s, %d training items, device %s, step %d of %d, epoch %d of %d", self.run_dir,
                 cfg.method, len(self.train_set), self.device, self.step, self.total_steps, self.epoch + 1,
                 self.total_epochs)
        log.debug("config:\n%s", cfg.to_yaml())
        return TrainingLog(self.run_dir, enabled=self.rank == 0, log_every_steps=cfg.runtime.log_every_steps,
                           step=self.step, total_steps=self.total_steps)

    def _start_epoch(self, report: TrainingLog) -> None:
        o = self.config.optim
        epochs = o.epochs if not self.config.until_max_steps else self.total_epochs
        factor = lr_factor(self.epoch, epochs=epochs, epochs_decay=o.epochs_decay)
        for opt, base in ((self.opt_g, o.lr_g), (self.opt_d, o.lr_d)):
            for group in opt.param_groups if opt is not None else []:
                group["lr"] = base * factor
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(self.epoch)
        report.epoch(self.epoch + 1, self.total_epochs)

    def _end_epoch(self, report: TrainingLog, out: dict[str, Tensor]) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        # Checkpoint first: a failure while validating (a bad file, no memory) keeps the epoch's steps.
        self.save(numbered=self._numbered_due(epoch_end=True))
        evaluate = self.epoch % self.config.runtime.val_every_epochs == 0 or self.epoch == self.total_epochs
        metrics = self.validate() if evaluate else {}
        if metrics:
            self.val_history.append(row := {"epoch": self.epoch, "step": self.step, **metrics})
            report.validation(row)
            if self.evaluator.improves(row, epoch=self.epoch, step=self.step):
                # best.pt holds the generators as numbered checkpoints do; latest.pt the new record for resume.
                state, folder = self.state(), checkpoint_dir(self.run_dir)
                save_checkpoint(folder / BEST, {**inference_state(state, nets=self.method.inference_names),
                                                "best": state["best"], "val_metrics": row})
                save_checkpoint(folder / LATEST, state)
        if out:
            report.samples(self.step, self.method.sample_rows(out))
        if evaluate and self.rank == 0:
            self._write_page()

    def _write_page(self, *, finished: bool = False) -> None:
        """RUN/index.html, by rank 0 (a page that cannot be written is logged, never stops training)."""
        refresh_run_page(self.run_dir, RunStatus(self.step, self.epoch, self.total_steps, self.total_epochs,
                                                 best=self.evaluator and self.evaluator.best.to_dict(),
                                                 finished=finished))

    def _finished(self) -> bool:
        return self.epoch >= self.total_epochs or self.step >= self.total_steps

    def run(self) -> TrainResult:
        rt = self.config.runtime
        report = self._start_run()
        out: dict[str, Tensor] = {}
        try:
            while not self._finished():
                self._start_epoch(report)
                for batch in self._loader():
                    losses, out = self.train_step(self._to_device(batch))
                    self.step += 1
                    self.batch_in_epoch += 1
                    report.step(self.step, epoch=self.epoch + 1, lr=self.opt_g.param_groups[0]["lr"], losses=losses)
                    if rt.sample_every_steps and self.step % rt.sample_every_steps == 0:
                        report.samples(self.step, self.method.sample_rows(out))
                    if self._numbered_due():
                        self.save(numbered=True)
                    if self.step >= self.total_steps:
                        break
                if self.batch_in_epoch >= self.batches_per_epoch:
                    self._end_epoch(report, out)
        except TranslateError:
            self.save()  # a bad file met mid-epoch: keep the steps trained so far (state is between steps)
            raise
        finally:
            report.close()
        if self.dist.enabled:
            self.replica_checksums = distributed.parameter_checksums(dict(self.method.nets))
            if len(set(self.replica_checksums)) != 1:
                log.error("replicas out of sync: parameter sums per rank %s", self.replica_checksums)
        checkpoint = self.save()
        if self.rank == 0:
            log.info("checkpoints in %s use %s", checkpoint.parent, _megabytes(disk_usage(checkpoint.parent)))
            self._write_page(finished=True)
        last = self.val_history[-1] if self.val_history else {}
        return TrainResult(step=self.step, epoch=self.epoch, checkpoint=checkpoint,
                           val_metrics={k: v for k, v in last.items() if k not in ("epoch", "step")},
                           val_history=self.val_history, best=self.evaluator and self.evaluator.result(last))


def train(*, run_dir: Path, config: TrainConfig | None = None, resume: bool = False,
          overrides: Mapping[str, Any] | None = None, assignments: Sequence[str] = ()) -> TrainResult:
    """Start a run in `run_dir` from `config`, or (resume=True) continue the run saved there.
    On resume, `overrides` ({"runtime.max_steps": 10}) and `assignments` ("KEY=VALUE") may change
    runtime settings only (config.RESUMABLE); anything else is a ConfigError."""
    run_dir = Path(run_dir)
    latest = checkpoint_dir(run_dir) / LATEST
    ckpt = None
    if resume:
        ckpt = load_checkpoint(run_dir)
        config = resume_config(ckpt["config"], overrides=overrides, assignments=assignments)
    elif config is None:
        raise ConfigError("train: a config is needed unless resuming")
    elif overrides or assignments:
        raise ConfigError("train: overrides apply when resuming; put them in the config of a new run")
    elif latest.exists():
        raise CheckpointError(f"{run_dir}: already holds a run ({latest}); continue it with "
                              f"`translate train --resume {run_dir}` or choose another --out")
    try:
        result = Trainer(config, run_dir, ckpt).run()
    except BaseException:
        distributed.shutdown(wait_for_all=False)
        raise
    distributed.shutdown()
    return result
