"""When a run writes checkpoints and which: latest.pt, numbered step_NNNNNNN.pt (pruned), best.pt."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from translate.checkpoint import (
    BEST, LATEST, checkpoint_dir, disk_usage, inference_state, numbered_path, prune_checkpoints, save_checkpoint,
)
from translate.config import TrainConfig
from translate.files import remove_stale_temp_files

log = logging.getLogger(__name__)


def megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


class Checkpointer:
    """Writes one run's checkpoints on rank 0 at the cadence of `runtime.checkpoint_every_*`."""

    def __init__(self, config: TrainConfig, run_dir: Path, *, rank: int, inference_names: tuple[str, ...]) -> None:
        self.runtime, self.rank, self.inference_names = config.runtime, rank, inference_names
        self.folder = checkpoint_dir(run_dir)
        self.last_numbered = time.monotonic()

    def start(self) -> None:
        """Make the folder and clear temporary files that an interrupted write left behind."""
        if self.rank == 0:
            self.folder.mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(self.folder)

    def numbered_due(self, *, step: int, epoch: int, epoch_end: bool = False) -> bool:
        """Whether a numbered checkpoint is due after `step` (or at the end of `epoch`)."""
        rt = self.runtime
        return bool((epoch_end and rt.checkpoint_every_epochs and epoch % rt.checkpoint_every_epochs == 0)
                    or (rt.checkpoint_every_steps and step % rt.checkpoint_every_steps == 0)
                    or (rt.checkpoint_every_minutes
                        and time.monotonic() - self.last_numbered >= 60 * rt.checkpoint_every_minutes))

    def save(self, make_state: Callable[[], dict[str, Any]], *, numbered: bool = False) -> Path:
        """latest.pt, the full training state; with `numbered`, also step_NNNNNNN.pt holding what
        inference needs, keeping the newest runtime.keep_checkpoints of those. Rank 0 writes (and
        alone pays for `make_state`)."""
        latest = self.folder / LATEST
        if self.rank != 0:
            return latest
        state = make_state()
        save_checkpoint(latest, state)
        if numbered:
            self.last_numbered = time.monotonic()
            step = state["step"]
            save_checkpoint(numbered_path(self.folder, step), inference_state(state, nets=self.inference_names))
            prune_checkpoints(self.folder, keep=self.runtime.keep_checkpoints)
            log.info("checkpoint at step %d; the run's checkpoints use %s", step, megabytes(disk_usage(self.folder)))
        return latest

    def save_best(self, state: dict[str, Any], val_metrics: dict[str, float]) -> None:
        """best.pt holds the generators as numbered checkpoints do; latest.pt the new record for resume."""
        save_checkpoint(self.folder / BEST, {**inference_state(state, nets=self.inference_names),
                                             "best": state["best"], "val_metrics": val_metrics})
        save_checkpoint(self.folder / LATEST, state)

    def log_usage(self) -> None:
        log.info("checkpoints in %s use %s", self.folder, megabytes(disk_usage(self.folder)))
