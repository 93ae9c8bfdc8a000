"""Self-describing checkpoints: format, atomic save, safe load (never unpickles arbitrary objects)."""
from __future__ import annotations

import math
import pickle
import re
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import torch

from translate.errors import CheckpointError, first_line
from translate.files import atomic_write
from translate.integrity.bounds import check_extents
from translate.integrity.disk import torch_save

FORMAT = "translate-checkpoint"
FORMAT_VERSION = 1
LATEST = "latest.pt"
BEST = "best.pt"  # generators at the best validation figure (translate.training.validation.BestRecord)
_UNREADABLE = "not a readable checkpoint: truncated, corrupt, or not a file saved by PyTorch"
_NUMBERED = re.compile(r"step_(\d+)\.pt")
# What a numbered checkpoint keeps: enough to convert, export or serve, a fraction of the size of
# the full training state (no discriminators, optimiser moments, pools or RNG states). "ema": the
# generators' averaged weights, when the run keeps them; inference prefers them to "nets".
INFERENCE_KEYS = ("config", "specs", "nets", "ema", "step", "epoch")


SE_SUFFIX = "_se"  # val.csv and val_metrics: "psnr_se" is the standard error of the figure "psnr"


def plus_minus(value: float, se: float | None) -> str:
    """How a validation figure is written: "24.1 ± 0.3" (4 significant digits, the error 2), or the
    value alone where it has no finite standard error."""
    if se is None or not math.isfinite(se):
        return f"{value:.4g}"
    return f"{value:.4g} ± {se:.2g}"


def figures_text(row: Mapping[str, float]) -> str:
    """A validation row's figures as "psnr=24.1 ± 0.3, l1=0.11", each with its error (epoch and step left out)."""
    return ", ".join(f"{k}={plus_minus(v, row.get(k + SE_SUFFIX))}" for k, v in row.items()
                     if k not in ("epoch", "step") and not k.endswith(SE_SUFFIX))


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def numbered_path(folder: str | Path, step: int) -> Path:
    return Path(folder) / f"step_{step:07d}.pt"


def numbered_checkpoints(folder: str | Path) -> list[Path]:
    """The numbered checkpoints in `folder`, oldest (lowest step) first."""
    found = [(int(m.group(1)), p) for p in Path(folder).glob("step_*.pt") if (m := _NUMBERED.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def prune_checkpoints(folder: str | Path, *, keep: int, protected: Collection[Path] = ()) -> list[Path]:
    """Delete all but the newest `keep` numbered checkpoints (0 keeps all); `protected` ones (say,
    the best by a validation metric) are never deleted and do not count. Returns what was deleted."""
    candidates = [p for p in numbered_checkpoints(folder) if p not in set(protected)]
    doomed = candidates[: max(0, len(candidates) - keep)] if keep > 0 else []
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def inference_state(state: dict[str, Any], *, nets: Collection[str]) -> dict[str, Any]:
    """The part of a training state that inference needs, holding only the nets named in `nets`."""
    slim = {k: state[k] for k in INFERENCE_KEYS if k in state}
    slim["nets"] = {k: v for k, v in state["nets"].items() if k in nets}
    slim["specs"] = {k: v for k, v in state["specs"].items() if k in nets}
    if "ema" in state:
        slim["ema"] = {k: v for k, v in state["ema"].items() if k in nets}
    return slim


def disk_usage(folder: str | Path) -> int:
    """Bytes held by the checkpoint files in `folder`."""
    return sum(p.stat().st_size for p in Path(folder).glob("*.pt") if p.is_file())


def resolve_checkpoint(path: str | Path) -> Path:
    """A run directory means its latest checkpoint; a file is taken as it is."""
    path = Path(path)
    if path.is_dir():
        latest = checkpoint_dir(path) / LATEST
        if not latest.is_file():
            raise CheckpointError(f"{path}: no checkpoint found (expected {latest})")
        return latest
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or run directory")
    return path


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (primitives and tensors only) with format stamps, atomically."""
    from translate import __version__

    stamped = {"format": FORMAT, "format_version": FORMAT_VERSION, "translate_version": __version__, **state}
    atomic_write(path, lambda f: torch_save(stamped, f, path))  # a full disk says so; the old file stays


def load_file(path: str | Path) -> Any:
    """torch.load with weights_only=True; unreadable files raise CheckpointError naming `path`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():  # torch's advice on pickle protocols is not for our users
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() and not _torch_cause(e).startswith("Unsupported operand"):
            raise CheckpointError(f"{path}: refused: it holds Python objects besides tensors and plain values, "
                                  f"and loading those could run code ({_torch_cause(e)})") from e
        raise CheckpointError(f"{path}: {_UNREADABLE} ({_torch_cause(e)})") from e
    except Exception as e:  # noqa: BLE001 - whatever the bytes make torch's reader raise, the file is at fault
        raise CheckpointError(f"{path}: {_UNREADABLE} ({_torch_cause(e)})") from e
    return check_extents(obj, path)  # before any net is built from it: a tiny file cannot claim gigabytes


def _torch_cause(error: Exception) -> str:
    """torch's reason in a few words: the first sentence of its first line; the rest is advice on
    torch.load flags (such as turning the weights-only safety check off) that is wrong for our users."""
    lines = str(error).splitlines()
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:  # names the object the file would have made torch import
            after = [line.split("WeightsUnpickler error:", 1)[1], *lines[i + 1:]]
            return next((text.strip() for text in after if text.strip()), "").split(". ")[0]
    if isinstance(error, KeyError):  # the legacy reader's opcode lookup: the file is not a pickle at all
        return "not a pickle or zip archive"
    return first_line(error).split(". ")[0]


def is_translate_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate one of our checkpoints (a run directory means its latest)."""
    path = resolve_checkpoint(path)
    return validate_checkpoint(load_file(path), path)


def validate_checkpoint(obj: Any, path: str | Path) -> dict[str, Any]:
    """`obj` as one of our checkpoints, checked (stamp, version, entries); read from `path`."""
    if not is_translate_checkpoint(obj):
        raise CheckpointError(f"{path}: not a translate checkpoint (no '{FORMAT}' format stamp)")
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this translate "
            f"understands ({FORMAT_VERSION}); upgrade translate"
        )
    for key in ("config", "specs", "nets"):
        if key not in obj:
            raise CheckpointError(f"{path}: checkpoint lacks its {key!r} entry")
    return obj
