"""What a loaded model is and how to read it: the `ModelContract` made once at load for every
source (our checkpoints, published formats, spandrel models), and the `ModelSource` that names
where to load from. Everything downstream (Translator, folder conversion, the service, export
metadata, `translate info`) reads these facts from the contract, never from the spec."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any

from translate.direction import DIRECTIONS, Direction
from translate.errors import TranslatorError
from translate.inference.tiling import round_up

if TYPE_CHECKING:
    from translate.tasks import Task

# Smallest padded side: a ResNet's residual blocks reflect-pad their 1/4-size maps by one pixel,
# which needs those maps to be at least 2 wide; 16 leaves room for any generator we build.
MIN_SIDE = 16
# How each way of loading is named to people (`translate info`); anything else is one of our runs.
_LOADED_AS = {"reference": "published weights of translate's zoo (detected)", "spandrel": "spandrel architecture"}


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from and how to read it: `path` is a run directory, checkpoint, weights
    file or the NAME of a published model in `weights_dir`; `direction` picks one generator of a
    checkpoint; `arch` names the preset of published weights whose detection fails;
    `trust_torchscript` allows TorchScript files (loading one runs its code); `extra_arches` adds
    spandrel_extra_arches' architectures."""

    path: str | os.PathLike
    _: KW_ONLY
    direction: Direction | None = None
    arch: str | None = None
    weights_dir: str | os.PathLike = "weights"
    trust_torchscript: bool = False
    extra_arches: bool = False

    def __post_init__(self) -> None:
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise TranslatorError(f"direction: {self.direction!r} must be a_to_b or b_to_a")

    @classmethod
    def of(cls, source: ModelSource | str | os.PathLike, **fields: Any) -> ModelSource:
        """`source` as a ModelSource: a path or NAME with `fields`, or a ModelSource with `fields` replaced."""
        if isinstance(source, ModelSource):
            return dataclasses.replace(source, **fields)
        return cls(source, **fields)


@dataclass(frozen=True, kw_only=True)
class ModelContract:
    """A loaded generator's facts: what it reads and writes and how it may be run.

    The net maps (N, in_channels, H, W) to (N, out_channels, scale*H, scale*W) in `value_range`
    ("minus_one_one" or "zero_one"; inference runs every net in [-1, 1]); H and W are padded to
    multiples of `size_multiple`, at least `min_side` (our floor included) and square when
    `square`. `tiling` is "supported", "discouraged" or "internal"; `precisions` what it runs in.
    `method` is the training method, "reference" (published weights of our zoo), "spandrel" or
    "custom"; `direction` this generator's (None without one), `directions` all its source holds.
    """

    architecture: str
    task: Task
    method: str
    direction: Direction | None
    directions: tuple[Direction, ...]
    in_channels: int
    out_channels: int
    scale: int
    size_multiple: int
    min_side: int
    square: bool
    value_range: str
    tiling: str
    precisions: tuple[str, ...]
    spec: Any  # the generator spec (translate.nets, or a spandrel ForeignSpec)

    @classmethod
    def for_spec(cls, spec: Any, *, task: Task, method: str, direction: Direction | None = None,
                 directions: tuple[Direction, ...] = ()) -> ModelContract:
        """The contract of a net built from `spec` (every generator spec carries these facts)."""
        multiple = int(spec.size_multiple)
        return cls(
            architecture=str(spec.architecture), task=task, method=method, direction=direction,
            directions=tuple(directions), in_channels=int(spec.in_channels), out_channels=int(spec.out_channels),
            scale=int(spec.scale), size_multiple=multiple,
            min_side=round_up(max(MIN_SIDE, int(spec.min_side)), multiple), square=bool(spec.square),
            value_range=str(spec.value_range), tiling=str(spec.tiling), precisions=tuple(spec.precisions),
            spec=spec,
        )

    @property
    def takes_mask(self) -> bool:
        """Whether a separate mask image may come with each input (the task's rule)."""
        return self.task.takes_mask

    @property
    def loaded_as(self) -> str:
        """How the model was recognised, for people."""
        return _LOADED_AS.get(self.method, f"translate checkpoint ({self.method})")

    def to_dict(self) -> dict[str, Any]:
        """The contract as JSON-ready values (the task by its name, the spec as a dict)."""
        facts = {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.name != "spec"}
        return {**facts, "task": self.task.name, "directions": list(self.directions),
                "precisions": list(self.precisions), "takes_mask": self.takes_mask, "spec": spec_summary(self.spec)}


def spec_summary(spec: Any) -> dict[str, Any]:
    """A spec as plain JSON-ready values (ours or a ForeignSpec)."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(spec).items()}
