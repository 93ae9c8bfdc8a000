"""custom: the user's own A/B pairs, any method and direction; no recipe, synthesis or baseline."""
from __future__ import annotations

from typing import TYPE_CHECKING

from translate.tasks.base import Task

if TYPE_CHECKING:
    from translate.config import TrainConfig


class Custom(Task):
    """Pairs (or unpaired domains) read from files: training and conversion need nothing special."""

    name = "custom"
    description = "your own A/B pairs or unpaired domains (no recipe: pix2pix or CycleGAN, either direction)"
    from_photos = False

    def check_config(self, config: TrainConfig) -> None:
        return None
