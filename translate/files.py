"""Files we write and folders we walk: atomic writes with normal permissions, one folder walk."""
from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"


def temp_path_for(path: Path) -> Path:
    """A hidden, unique sibling of `path`: hidden so folder walks and dataset scans skip it."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")


def atomic_write(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], object], *,
                 check: Callable[[Path], object] | None = None) -> None:
    """Write `content` (bytes, or a function writing to a binary file) to `path` atomically.

    The data goes to a hidden temp file beside `path`, is fsynced, then renamed over `path`, so a
    crash or kill leaves the old file or the new one, never half of one. The temp file is created
    with open() (not mkstemp, which forces 0600), so the result has the usual umask permissions
    (0644 under umask 022). Parent folders are created. `check(temp_path)` may inspect the
    complete file before it replaces `path`; if it raises, `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        with open(tmp, "xb") as f:
            if isinstance(content, (bytes, bytearray, memoryview)):
                f.write(content)
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temp_files(folder: str | os.PathLike, *, names: Iterable[str] | None = None) -> list[Path]:
    """Delete our hidden temp files in `folder` (left by a killed write); returns what was removed.

    `names` limits it to temp files of those file names (`.NAME.*.tmp`), so a process cleans up
    only after writes of its own outputs, never another process's write in progress.
    """
    wanted = None if names is None else set(names)
    removed = []
    folder = Path(folder)
    if folder.is_dir():
        for tmp in folder.glob(f".*{TEMP_SUFFIX}"):
            target = tmp.name[1:].rsplit(".", 2)[0]  # ".NAME.<hex>.tmp" -> "NAME" (see temp_path_for)
            if wanted is None or target in wanted:
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


def walk_files(root: str | os.PathLike, *, skip: Path | None = None) -> Iterator[Path]:
    """Files under `root`, recursively; hidden files and folders (and the folder `skip`, an output
    folder inside the input, say) are left out. Symlinked folders are followed, each real folder
    once (a link back up the tree would loop). Order is os.walk's: sort the result if it matters."""
    root = Path(root)
    skip = skip.resolve() if skip is not None else None
    seen: set[tuple[int, int]] = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        here = Path(folder)
        identity = _identity(here)
        if identity in seen:
            log.info("%s: already walked (a symlink to a folder seen before); not walked twice", here)
            dirs[:] = []
            continue
        seen.add(identity)
        dirs[:] = [d for d in dirs if not d.startswith(".") and (skip is None or (here / d).resolve() != skip)]
        for name in names:
            if not name.startswith("."):
                yield here / name


def _identity(folder: Path) -> tuple[int, int]:
    stat = folder.stat()
    return stat.st_dev, stat.st_ino

