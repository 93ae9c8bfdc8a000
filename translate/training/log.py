"""What a training run reports: loss and validation CSVs, TensorBoard, one progress bar, sample grids."""
from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from translate.checkpoint import figures_text
from translate.data.images import tensor_to_image, write_image

log = logging.getLogger(__name__)


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


class TrainingLog:
    """One run's reports. Losses are averaged over `log_every_steps`; the bar counts steps over the
    whole run (ETA to the last step). Only the writing rank (`enabled`) touches files."""

    def __init__(self, run_dir: Path, *, enabled: bool, log_every_steps: int, step: int, total_steps: int) -> None:
        from tqdm import tqdm

        self.run_dir, self.enabled, self.every = run_dir, enabled, log_every_steps
        self.losses = CsvLog(run_dir / "log.csv")
        self.val = CsvLog(run_dir / "val.csv")
        self.tb = _tensorboard(run_dir) if enabled else None
        self.window: dict[str, list[float]] = {}
        self.started = time.perf_counter()
        self.bar = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True,
                        disable=not enabled or not log.isEnabledFor(logging.INFO))

    def epoch(self, epoch: int, total: int) -> None:
        """`epoch` is 1-based."""
        self.bar.set_description(f"epoch {epoch}/{total}")

    def step(self, step: int, *, epoch: int, lr: float, losses: dict[str, float]) -> None:
        self.bar.update(1)
        for k, v in losses.items():
            self.window.setdefault(k, []).append(v)
        if step % self.every and step != 1:
            return
        means = {k: float(np.mean(v)) for k, v in self.window.items()}
        self.window = {}
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()})
        if self.enabled:
            self.losses.write({"step": step, "epoch": epoch, "lr_g": lr,
                               "seconds": round(time.perf_counter() - self.started, 3),
                               **{k: round(v, 6) for k, v in means.items()}})
            self._scalars("loss", means, step)

    def validation(self, row: dict[str, float]) -> None:
        """`row`: epoch, step and the metrics."""
        metrics = {k: v for k, v in row.items() if k not in ("epoch", "step")}
        log.info("epoch %d validation: %s", row["epoch"], figures_text(metrics))
        if self.enabled:
            self.val.write(row)
            self._scalars("val", metrics, int(row["step"]))

    def samples(self, step: int, rows: list[list[Tensor]]) -> None:
        if self.enabled:
            write_image(self.run_dir / "samples" / f"step_{step:07d}.png", sample_grid(rows))

    def close(self) -> None:
        self.bar.close()
        if self.tb is not None:
            self.tb.close()

    def _scalars(self, group: str, values: dict[str, float], step: int) -> None:
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"{group}/{k}", v, step)
