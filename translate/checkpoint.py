"""Self-describing checkpoints: format, atomic save, safe load (never unpickles arbitrary objects)."""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "translate-checkpoint"
FORMAT_VERSION = 1
LATEST = "latest.pt"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, foreign or too new; the message names the file."""


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


def atomic_write_bytes(path: str | Path, write: Any) -> None:
    """Call `write(file)` on a temp file beside `path`, fsync, then rename over `path`, so a
    crash or kill leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (primitives and tensors only) with format stamps, atomically."""
    from translate import __version__

    stamped = {"format": FORMAT, "format_version": FORMAT_VERSION, "translate_version": __version__, **state}
    atomic_write_bytes(path, lambda f: torch.save(stamped, f))


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
