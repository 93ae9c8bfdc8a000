"""The training loop shared by every method: device, seed, AMP, LR schedule, resume, checkpoints."""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from translate import distributed
from translate.checkpoint import LATEST, checkpoint_dir, load_checkpoint
from translate.config import TrainConfig
from translate.recipes import resume_config
from translate.data.collate import collate_samples
from translate.errors import CheckpointError, ConfigError, TranslateError
from translate.inference.device import autocast
from translate.methods import METHODS
from translate.methods.base import GanMethod
from translate.training import readable
from translate.training.checkpoints import Checkpointer
from translate.training.ema import WeightAverage
from translate.training.log import TrainingLog
from translate.training.optimisation import Optimisers, lr_factor  # noqa: F401 - lr_factor: public here too
from translate.training.run_page import RunStatus, refresh_run_page
from translate.training.sampler import EpochSampler, batches_per_epoch
from translate.training.startup import (
    check_data_files, check_ranks_agree, compile_nets, init_generators, place_nets, setup_process,
)
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


class Trainer:
    """One run: the method stepped over its data epoch by epoch. Its helpers each do one job:
    `Optimisers` (updates, LR schedule), `Checkpointer` (what is saved when), `Evaluator`
    (validation figures, best record), `TrainingLog` (loss log, samples)."""

    def __init__(self, config: TrainConfig, run_dir: Path, checkpoint: dict[str, Any] | None = None) -> None:
        self.config, self.run_dir = config, run_dir
        self.dist, self.device = setup_process(config)
        self.rank, self.world_size = self.dist.rank, self.dist.world_size
        self.method: GanMethod = METHODS[config.method](config)
        self.train_set, self.val_set = self.method.datasets()
        place_nets(self.method, config, self.dist, self.device)
        files = [f for ds in (self.train_set, self.val_set) if ds is not None for f in self.method.data_files(ds)]
        if self.dist.enabled:
            check_ranks_agree(config, files)
        check_data_files(files, max_megapixels=config.data.max_megapixels)
        self.optimisers = Optimisers(self.method, config, self.device)
        self.checkpoints = Checkpointer(config, run_dir, rank=self.rank, inference_names=self.method.inference_names)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.val_history: list[dict[str, float]] = []
        self.replica_checksums: list[float] = []
        if config.init_from and checkpoint is None:
            init_generators(self.method, config.init_from)
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
            compile_nets(self.method, self.device)
        rt, o = config.runtime, config.optim
        self.batches_per_epoch = batches_per_epoch(
            config.data.samples_per_epoch or len(self.train_set), batch_size=o.batch_size, world_size=self.world_size)
        # "Until max_steps" (epochs 0) becomes however many epochs those steps take, at a constant rate.
        self.total_epochs = config.total_epochs or math.ceil(rt.max_steps / self.batches_per_epoch)
        self.total_steps = min(rt.max_steps or math.inf, self.total_epochs * self.batches_per_epoch)

    # ------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "config": self.config.to_dict(),
            "specs": self.method.spec_dicts(),
            "nets": {name: net.state_dict() for name, net in self.method.nets.items()},
            **self.optimisers.state_dict(),
            "method_state": self.method.extra_state(),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "val_history": self.val_history, "rng": rng, "replica_checksums": self.replica_checksums,
            "best": self.evaluator and self.evaluator.best.to_dict(),
        }

    def _restore(self, ckpt: dict[str, Any]) -> None:
        for name, net in self.method.nets.items():
            net.load_state_dict(ckpt["nets"][name])
        self.optimisers.load_state_dict(ckpt)
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
        """latest.pt, and with `numbered` a step_NNNNNNN.pt too (see `Checkpointer.save`)."""
        return self.checkpoints.save(self.state, numbered=numbered)

    def _numbered_due(self, *, epoch_end: bool = False) -> bool:
        return self.checkpoints.numbered_due(step=self.step, epoch=self.epoch, epoch_end=epoch_end)

    # ------------------------------------------------------------ one step
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

    def train_step(self, batch: dict[str, Tensor]) -> tuple[dict[str, float], dict[str, Tensor]]:
        """One forward pass, then the method's updates in its `update_order`, all on these outputs."""
        self.method.step, self.method.total_steps = self.step, self.total_steps  # for scheduled loss terms
        with autocast(self.device, self.config.runtime.amp):
            out = self.method(batch)
        updates = {"generator": self.optimisers.update_generators,
                   "discriminator": self.optimisers.update_discriminators}
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
        self.checkpoints.start()
        if self.rank == 0:
            readable.write_run_config(self.run_dir, cfg.to_yaml(), cfg.to_dict())  # keeps a user's edit
        log.info("run %s: %s, %d training items, device %s, step %d of %d, epoch %d of %d", self.run_dir,
                 cfg.method, len(self.train_set), self.device, self.step, self.total_steps, self.epoch + 1,
                 self.total_epochs)
        log.debug("config:\n%s", cfg.to_yaml())
        return TrainingLog(self.run_dir, enabled=self.rank == 0, log_every_steps=cfg.runtime.log_every_steps,
                           step=self.step, total_steps=self.total_steps)

    def _start_epoch(self, report: TrainingLog) -> None:
        epochs = self.config.optim.epochs if not self.config.until_max_steps else self.total_epochs
        self.optimisers.set_epoch(self.epoch, epochs=epochs)
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
                self.checkpoints.save_best(self.state(), row)
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

    def _run_epoch(self, report: TrainingLog) -> dict[str, Tensor]:
        """Steps until the epoch (or the run) ends; the last step's outputs, for sample grids."""
        rt, out = self.config.runtime, {}
        self._start_epoch(report)
        for batch in self._loader():
            losses, out = self.train_step(self._to_device(batch))
            self.step += 1
            self.batch_in_epoch += 1
            report.step(self.step, epoch=self.epoch + 1, lr=self.optimisers.lr, losses=losses)
            if rt.sample_every_steps and self.step % rt.sample_every_steps == 0:
                report.samples(self.step, self.method.sample_rows(out))
            if self._numbered_due():
                self.save(numbered=True)
            if self.step >= self.total_steps:
                break
        if self.batch_in_epoch >= self.batches_per_epoch:
            self._end_epoch(report, out)
        return out

    def run(self) -> TrainResult:
        report = self._start_run()
        try:
            while not self._finished():
                self._run_epoch(report)
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
            self.checkpoints.log_usage()
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
