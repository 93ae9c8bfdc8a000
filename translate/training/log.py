"""What a training run reports: loss and validation CSVs, TensorBoard, one progress bar, sample grids."""
from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from translate.checkpoint import figures_text
from translate.data.images import write_image

log = logging.getLogger(__name__)


def sample_grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Rows of HxWx3 uint8 panels (`GanMethod.sample_rows`) -> one HxWx3 uint8 image, panels side by
    side. A panel shorter than its row's tallest is enlarged nearest-neighbour to match; short rows
    are padded with black on the right."""
    lines = []
    for row in rows:
        height = max(panel.shape[0] for panel in row)
        lines.append(np.concatenate([_at_height(panel, height) for panel in row], axis=1))
    width = max(line.shape[1] for line in lines)
    return np.concatenate([np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines], axis=0)


def _at_height(panel: np.ndarray, height: int) -> np.ndarray:
    if panel.shape[0] == height:
        return panel
    width = max(1, round(panel.shape[1] * height / panel.shape[0]))
    return cv2.resize(panel, (width, height), interpolation=cv2.INTER_NEAREST)


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

    def samples(self, step: int, rows: list[list[np.ndarray]]) -> None:
        """samples/step_*.png: the grid of `rows` (HxWx3 uint8 panels, see `sample_grid`)."""
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
