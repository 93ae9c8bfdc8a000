"""Self-describing checkpoints: format, atomic save, safe load (never unpickles arbitrary objects)."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from translate.errors import CheckpointError
from translate.files import atomic_write

FORMAT = "translate-checkpoint"
FORMAT_VERSION = 1
LATEST = "latest.pt"


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


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
    atomic_write(path, lambda f: torch.save(stamped, f))


def load_file(path: str | Path) -> Any:
    """torch.load with weights_only=True; unreadable files raise CheckpointError naming `path`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated, corrupt or unsafe): {reason[:200]}") from e


def is_translate_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate one of our checkpoints (a run directory means its latest)."""
    path = resolve_checkpoint(path)
    obj = load_file(path)
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
