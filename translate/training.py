"""The training loop shared by every method: device, seed, AMP, LR schedule, resume, logs, checkpoints."""
from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from translate import distributed, metrics
from translate.checkpoint import LATEST, CheckpointError, checkpoint_dir, load_checkpoint, save_checkpoint
from translate.config import ConfigError, TrainConfig, default_config, load_yaml, merge, parse_set
from translate.data.images import tensor_to_image, write_image
from translate.files import remove_stale_temp_files
from translate.inference.device import autocast, resolve_device
from translate.methods import METHODS
from translate.methods.base import GanMethod

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    step: int
    epoch: int
    checkpoint: Path
    val_metrics: dict[str, float] = field(default_factory=dict)
    val_history: list[dict[str, float]] = field(default_factory=list)


def resolve_config(method: str, *, task: str | None = None, config_file: str | Path | None = None,
                   flags: list[dict] | None = None, assignments: list[str] = ()) -> TrainConfig:
    """Defaults < task recipe < --config file < named flags < --set KEY=VALUE."""
    data = default_config(method).to_dict()  # type: ignore[arg-type]
    if task:
        from translate.tasks import get_task

        data = merge(data, get_task(task).recipe())
    if config_file:
        data = merge(data, load_yaml(config_file))
    for override in flags or []:
        data = merge(data, override)
    data = merge(data, parse_set(list(assignments)))
    return TrainConfig.from_dict(data)


def lr_factor(epoch: int, *, epochs: int, epochs_decay: int) -> float:
    """Constant for `epochs`, then linear decay towards 0 over `epochs_decay` (pix2pix/CycleGAN code).
    `epoch` is 0-based; the last decay epoch still trains at a small positive rate."""
    return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch, split across ranks, that can start mid-epoch, so a resumed
    run sees exactly the samples the interrupted one had not seen yet."""

    def __init__(self, n: int, *, seed: int, epoch: int, start: int = 0, rank: int = 0,
                 world_size: int = 1, shuffle: bool = True, length: int = 0) -> None:
        self.n, self.seed, self.epoch, self.start = n, seed, epoch, start
        self.length = length or n  # items per epoch: several permutations back to back when > n
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle

    def indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order: list[int] = []
        while len(order) < self.length:
            # The k-th pass over the data uses indices k*n + i: datasets read item i % n and seed
            # its augmentation with the full index, so each pass gets fresh crops.
            base = len(order) // self.n * self.n
            perm = torch.randperm(self.n, generator=g).tolist() if self.shuffle else list(range(self.n))
            order += [base + i for i in perm]
        order = order[: self.length]
        per_rank = math.ceil(self.length / self.world_size)
        order += order[: per_rank * self.world_size - self.length]  # pad so every rank steps equally
        return order[self.rank::self.world_size][self.start:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())

    def __len__(self) -> int:
        return len(self.indices())


def to_display(image: Tensor) -> Tensor:
    """(C, H, W) in [-1, 1] -> 3 channels for sample grids: gray replicated, extra channels dropped,
    two channels shown as (c0, c1, mean)."""
    c = image.shape[0]
    if c == 1:
        return image.expand(3, -1, -1)
    if c == 2:
        return torch.cat([image, image.mean(0, keepdim=True)])
    return image[:3]


def sample_grid(rows: list[list[Tensor]]) -> np.ndarray:
    """Rows of (N, C, H, W) tensors -> one HWC uint8 image of their first items, side by side.
    Smaller images (e.g. super-resolution inputs) are upscaled with nearest neighbour to match."""
    height = max(t.shape[-2] for row in rows for t in row)
    lines = []
    for row in rows:
        tiles = []
        for t in row:
            img = to_display(t[0].detach().float().cpu())
            if img.shape[-2] != height:
                img = nn.functional.interpolate(img[None], scale_factor=height / img.shape[-2], mode="nearest")[0]
            tiles.append(img)
        lines.append(torch.cat(tiles, dim=2))
    width = max(line.shape[-1] for line in lines)
    lines = [nn.functional.pad(line, (0, width - line.shape[-1]), value=-1.0) for line in lines]
    return tensor_to_image(torch.cat(lines, dim=1))


class CsvLog:
    """Appends rows to a CSV; columns are fixed by the first row (resume appends to the same file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] | None = None
        if path.is_file() and path.stat().st_size:
            with path.open(newline="") as f:
                self.columns = next(csv.reader(f), None)

    def write(self, row: dict[str, Any]) -> None:
        new = self.columns is None
        if new:
            self.columns = list(row)
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


def _tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def build_datasets(config: TrainConfig, method_cls: type) -> tuple[Dataset, Dataset | None]:
    """The method's training set and, when the data has one, its validation set."""
    from translate.data import datasets, layouts, transforms

    d = config.data
    root = Path(d.root)
    channels_a, channels_b = method_cls.data_channels(config)
    kw = dict(load_size=d.load_size, crop_size=d.crop_size, preprocess=d.preprocess)
    # paired_transform applies one random crop/flip to A and B; it serves single images too.
    train_tf = transforms.paired_transform(**kw, flip=d.flip, train=True)
    val_tf = transforms.paired_transform(**kw, flip=False, train=False)
    seed = config.runtime.seed
    from translate.tasks import get_task

    make_pair = get_task(config.task).pair_maker(config.synth)
    if config.method == "pix2pix":
        if make_pair is not None:
            # Recipes synthesise each input from its target photo with fresh randomness every epoch;
            # in a prepared A/B folder the B photos serve, and the prepared inputs are for eval.
            find = lambda split: [layouts.Sample(p) for p in layouts.find_targets(  # noqa: E731
                root, split, val_fraction=d.val_fraction, seed=seed)]
        else:
            find = lambda split: layouts.find_paired(root, split, val_fraction=d.val_fraction, seed=seed)  # noqa: E731
        train_samples = find("train")
        val_samples = find("val") if layouts.has_split(root, "val", val_fraction=d.val_fraction) else []
        make = lambda samples, tf: datasets.PairedDataset(  # noqa: E731
            samples, in_channels=channels_a, out_channels=channels_b, transform=tf, make_pair=make_pair, seed=seed)
        return make(train_samples, train_tf), (make(val_samples[: d.max_val_images], val_tf) if val_samples else None)
    paths_a, paths_b = layouts.find_unpaired(root, "train")
    train_set = datasets.UnpairedDataset(
        paths_a, paths_b, channels_a=channels_a, channels_b=channels_b, transform_a=train_tf,
        transform_b=train_tf, serial=d.serial, seed=seed)
    val_set = None
    if layouts.has_split(root, "test", unpaired=True):
        test_a, test_b = layouts.find_unpaired(root, "test")
        val_set = datasets.UnpairedDataset(
            test_a[: d.max_val_images], test_b[: d.max_val_images], channels_a=channels_a,
            channels_b=channels_b, transform_a=val_tf, transform_b=val_tf, serial=True, seed=seed)
    return train_set, val_set


def _metrics(fake: Tensor, real: Tensor) -> dict[str, float]:
    """L1 (on [0, 1]), PSNR (dB) and SSIM of two (C, H, W) images in [-1, 1]."""
    x = ((fake.float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
    y = ((real.float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
    out = {"l1": float(np.abs(x - y).mean()), "psnr": metrics.psnr(x, y, data_range=1.0)}
    if min(x.shape[:2]) >= metrics.SSIM_MIN_SIDE:
        out["ssim"] = metrics.ssim(x, y, data_range=1.0)
    return out


class Trainer:
    """Owns the method, optimizers, data and bookkeeping of one run."""

    def __init__(self, config: TrainConfig, run_dir: Path, checkpoint: dict[str, Any] | None = None) -> None:
        self.config = config
        self.run_dir = run_dir
        rt = config.runtime
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

        method_cls = METHODS[config.method]
        self.train_set, self.val_set = build_datasets(config, method_cls)
        self.method: GanMethod = method_cls(config)
        if self.dist.enabled and rt.sync_batchnorm:
            for name in list(self.method.nets):
                self.method.nets[name] = nn.SyncBatchNorm.convert_sync_batchnorm(self.method.nets[name])
        self.method.to(self.device)
        if rt.channels_last:
            self.method.to(memory_format=torch.channels_last)
        if self.dist.enabled:
            self._check_ranks_agree()
        o = config.optim
        params = lambda names: [p for n in names for p in self.method.nets[n].parameters()]  # noqa: E731
        # fused Adam: one kernel over all parameters; on CPU it cuts the optimizer step ~4x.
        adam = lambda names, lr: torch.optim.Adam(params(names), lr=lr, betas=(o.beta1, o.beta2), fused=True)  # noqa: E731
        self.opt_g = adam(self.method.generator_names, o.lr_g)
        self.opt_d = adam(self.method.discriminator_names, o.lr_d) if self.method.discriminator_names else None
        fp16 = rt.amp == "fp16"
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=fp16) for k in ("g", "d")}
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.val_history: list[dict[str, float]] = []
        if checkpoint is not None:
            self._restore(checkpoint)
        if self.dist.enabled:  # after restoring, so every rank starts from the checkpoint's weights
            self.method.replicas = {name: distributed.wrap(net, self.device)
                                    for name, net in self.method.nets.items()}
        if rt.compile:
            self._compile()
        self.replica_checksums: list[float] = []

    def _check_ranks_agree(self) -> None:
        """Same config (bar per-machine paths and devices) and same training files on every rank."""
        config = self.config.to_dict()
        config["data"] = {k: v for k, v in config["data"].items() if k != "root"}
        config["runtime"] = {k: v for k, v in config["runtime"].items() if k != "device"}
        distributed.check_agreement("config", config)
        files = [str(v) for item in getattr(self.train_set, "samples", []) for v in (item.a, item.b) if v]
        distributed.check_agreement("training data", [len(self.train_set), [Path(f).name for f in files]])

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
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "val_history": self.val_history, "rng": rng, "replica_checksums": self.replica_checksums,
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
        self.step, self.epoch, self.batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt.get("batch_in_epoch", 0)
        self.val_history = list(ckpt.get("val_history", []))
        torch.set_rng_state(ckpt["rng"]["torch"])
        if "cuda" in ckpt["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], self.device)

    def save(self, *, numbered: bool = False) -> Path:
        folder = checkpoint_dir(self.run_dir)
        latest = folder / LATEST
        if self.rank != 0:
            return latest
        state = self.state()
        save_checkpoint(latest, state)
        if numbered:
            save_checkpoint(folder / f"epoch_{self.epoch:04d}.pt", state)
        return latest

    # ------------------------------------------------------------ pieces
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

    def _loader(self) -> DataLoader:
        sampler = EpochSampler(len(self.train_set), seed=self.config.runtime.seed, epoch=self.epoch,
                               start=self.batch_in_epoch * self.config.optim.batch_size,
                               rank=self.rank, world_size=self.world_size,
                               length=self.config.data.samples_per_epoch)
        workers = self.config.data.workers
        return DataLoader(self.train_set, batch_size=self.config.optim.batch_size, sampler=sampler,
                          num_workers=workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=False)

    def _batches_per_epoch(self) -> int:
        per_rank = math.ceil((self.config.data.samples_per_epoch or len(self.train_set)) / self.world_size)
        return math.ceil(per_rank / self.config.optim.batch_size)

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

    def train_step(self, batch: dict[str, Tensor]) -> tuple[dict[str, float], dict[str, Tensor]]:
        """One G step then one D step (the D step reuses this step's fakes, detached)."""
        amp = autocast(self.device, self.config.runtime.amp)
        m = self.method
        with amp:
            out = m(batch)
        # D is frozen during the G step so no D weight gradients are computed for nothing.
        self._set_requires_grad(m.discriminator_names, False)
        with amp:
            g_losses = m.generator_losses(out)
        self._optimise(g_losses, self.opt_g, self.scalers["g"], m.generator_names)
        self._set_requires_grad(m.discriminator_names, True)
        d_losses: dict[str, Tensor] = {}
        if self.opt_d is not None:
            with amp:
                d_losses = m.discriminator_losses(out)
            self._optimise(d_losses, self.opt_d, self.scalers["d"], m.discriminator_names)
        losses = {k: v.detach() for k, v in {**g_losses, **d_losses}.items()}
        return {k: float(v) for k, v in losses.items()}, out

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """pix2pix: L1/PSNR/SSIM of G(input) vs target on the val split; CycleGAN: cycle
        reconstruction L1/PSNR on testA/testB. Eval mode; bounded by data.max_val_images."""
        if self.val_set is None or self.rank != 0:
            return {}
        self.method.eval()
        sums: dict[str, list[float]] = {}
        try:
            for i in range(len(self.val_set)):
                item = self._to_device({k: v[None] for k, v in self.val_set[i].items() if isinstance(v, Tensor)})
                with autocast(self.device, self.config.runtime.amp):
                    if self.config.method == "pix2pix":
                        out = self.method(item)
                        pairs = {"": (out["fake_b"][0], out["real_b"][0])}
                    else:
                        out = self.method(item)
                        pairs = {"cycle_A_": (out["rec_a"][0], out["real_a"][0]),
                                 "cycle_B_": (out["rec_b"][0], out["real_b"][0])}
                for prefix, (fake, real) in pairs.items():
                    for k, v in _metrics(fake, real).items():
                        sums.setdefault(f"{prefix}{k}", []).append(v)
        finally:
            self.method.train()
        return {k: float(np.mean(v)) for k, v in sums.items()}

    def _save_samples(self, out: dict[str, Tensor]) -> None:
        if self.rank == 0:
            write_image(self.run_dir / "samples" / f"step_{self.step:07d}.png", sample_grid(self.method.sample_rows(out)))

    # ------------------------------------------------------------ loop
    def run(self) -> TrainResult:
        cfg, rt = self.config, self.config.runtime
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            checkpoint_dir(self.run_dir).mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(checkpoint_dir(self.run_dir))
            (self.run_dir / "config.yaml").write_text(cfg.to_yaml())
        log.info("run %s: %s, %d training items, device %s, step %d, epoch %d",
                 self.run_dir, cfg.method, len(self.train_set), self.device, self.step, self.epoch + 1)
        log.debug("config:\n%s", cfg.to_yaml())
        losses_log = CsvLog(self.run_dir / "log.csv")
        val_log = CsvLog(self.run_dir / "val.csv")
        tb = _tensorboard(self.run_dir) if self.rank == 0 else None
        from tqdm import tqdm

        window: dict[str, list[float]] = {}
        stop = False
        out: dict[str, Tensor] = {}
        started = time.perf_counter()
        while self.epoch < cfg.total_epochs and not stop:
            factor = lr_factor(self.epoch, epochs=cfg.optim.epochs, epochs_decay=cfg.optim.epochs_decay)
            for opt, base in ((self.opt_g, cfg.optim.lr_g), (self.opt_d, cfg.optim.lr_d)):
                for group in opt.param_groups if opt is not None else []:
                    group["lr"] = base * factor
            if hasattr(self.train_set, "set_epoch"):
                self.train_set.set_epoch(self.epoch)
            loader = self._loader()
            bar = tqdm(loader, desc=f"epoch {self.epoch + 1}/{cfg.total_epochs}", leave=False,
                       disable=self.rank != 0 or not log.isEnabledFor(logging.INFO), dynamic_ncols=True)
            for batch in bar:
                losses, out = self.train_step(self._to_device(batch))
                self.step += 1
                self.batch_in_epoch += 1
                for k, v in losses.items():
                    window.setdefault(k, []).append(v)
                if self.step % rt.log_every_steps == 0 or self.step == 1:
                    row = {"step": self.step, "epoch": self.epoch + 1, "lr_g": self.opt_g.param_groups[0]["lr"],
                           "seconds": round(time.perf_counter() - started, 3),
                           **{k: round(float(np.mean(v)), 6) for k, v in window.items()}}
                    if self.rank == 0:
                        losses_log.write(row)
                        if tb is not None:
                            for k, v in window.items():
                                tb.add_scalar(f"loss/{k}", float(np.mean(v)), self.step)
                    bar.set_postfix({k: f"{np.mean(v):.3f}" for k, v in window.items()})
                    window = {}
                if rt.sample_every_steps and self.step % rt.sample_every_steps == 0:
                    self._save_samples(out)
                if rt.checkpoint_every_steps and self.step % rt.checkpoint_every_steps == 0:
                    self.save()
                if rt.max_steps and self.step >= rt.max_steps:
                    stop = True
                    break
            if not stop or self.batch_in_epoch >= self._batches_per_epoch():
                self.epoch += 1
                self.batch_in_epoch = 0
                if (self.epoch % rt.val_every_epochs == 0) or self.epoch == cfg.total_epochs:
                    metrics = self.validate()
                    if metrics:
                        self.val_history.append({"epoch": self.epoch, "step": self.step, **metrics})
                        log.info("epoch %d validation: %s", self.epoch,
                                 ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
                        if self.rank == 0:
                            val_log.write(self.val_history[-1])
                            if tb is not None:
                                for k, v in metrics.items():
                                    tb.add_scalar(f"val/{k}", v, self.step)
                if out:
                    self._save_samples(out)
                numbered = rt.checkpoint_every_epochs > 0 and self.epoch % rt.checkpoint_every_epochs == 0
                self.save(numbered=numbered)
        if self.dist.enabled:
            self.replica_checksums = distributed.parameter_checksums(dict(self.method.nets))
            if len(set(self.replica_checksums)) != 1:
                log.error("replicas out of sync: parameter sums per rank %s", self.replica_checksums)
        checkpoint = self.save()
        if tb is not None:
            tb.close()
        last = self.val_history[-1] if self.val_history else {}
        return TrainResult(step=self.step, epoch=self.epoch, checkpoint=checkpoint,
                           val_metrics={k: v for k, v in last.items() if k not in ("epoch", "step")},
                           val_history=self.val_history)


def train(*, run_dir: Path, config: TrainConfig | None = None, resume: bool = False,
          runtime_overrides: dict[str, Any] | None = None) -> TrainResult:
    """Start a run in `run_dir` from `config`, or (resume=True) continue the run saved there.
    `runtime_overrides` (resume only) changes runtime fields such as max_steps or device."""
    run_dir = Path(run_dir)
    latest = checkpoint_dir(run_dir) / LATEST
    if resume:
        ckpt = load_checkpoint(run_dir)
        data = ckpt["config"]
        if runtime_overrides:
            data = merge(data, {"runtime": runtime_overrides})
        config = TrainConfig.from_dict(data)
    elif config is None:
        raise ConfigError("train: a config is needed unless resuming")
    elif latest.exists():
        raise CheckpointError(f"{run_dir}: already holds a run ({latest}); continue it with "
                              f"`translate train --resume {run_dir}` or choose another --out")
    else:
        ckpt = None
    try:
        result = Trainer(config, run_dir, ckpt).run()
    except BaseException:
        distributed.shutdown(wait_for_all=False)
        raise
    distributed.shutdown()
    return result
