"""Weights found under a known name are the file that name stands for: checked against the pinned
sha256 on first use, with the verified size and mtime remembered so each file is hashed once.

The record lives beside the files (`.verified.json`, hidden); a folder we cannot or should not
write to (a read-only cache, an installed package's folder) is simply hashed again next time. A published file without a published
hash is pinned at download: `translate weights fetch` records the sha256 it saw, so a file swapped
in later under that name is caught; a file no fetch recorded is reported "unpinned".
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Literal

from translate.errors import WeightsError
from translate.files import atomic_write

log = logging.getLogger(__name__)

RECORD = ".verified.json"
Status = Literal["verified", "mismatch", "unpinned", "missing"]
_allow = {"unverified": False}


def allow_unverified(allowed: bool) -> None:
    """`--unverified-weights`: a mismatch is logged instead of refused (the user's own file)."""
    _allow["unverified"] = allowed


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _read_record(folder: Path) -> dict[str, dict]:
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_record(folder: Path, record: dict[str, dict]) -> None:
    if _inside_python_install(folder):  # a package's own folder (the lpips layers): never written to
        return
    try:
        atomic_write(folder / RECORD, json.dumps(record, indent=1, sort_keys=True).encode())
    except OSError as e:  # a read-only cache: we hash again next time, nothing is lost
        log.debug("%s: cannot remember verified weights (%s)", folder, e)


def _inside_python_install(folder: Path) -> bool:
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    return any(prefix == folder.resolve() or prefix in folder.resolve().parents for prefix in prefixes)


def _stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def current_sha256(path: Path) -> str:
    """sha256 of `path`, from the record when its size and mtime are those last hashed."""
    entry = _read_record(path.parent).get(path.name)
    if isinstance(entry, dict) and entry.get("sha256") and {k: entry.get(k) for k in ("size", "mtime_ns")} == _stamp(path):
        return str(entry["sha256"])
    digest = sha256_of(path)
    record = _read_record(path.parent)
    record[path.name] = {**record.get(path.name, {}), **_stamp(path), "sha256": digest}
    _write_record(path.parent, record)
    return digest


def pin_at_download(path: Path) -> str:
    """Record the sha256 of a file `weights fetch` just downloaded as the pin for its name."""
    digest = sha256_of(path)
    record = _read_record(path.parent)
    record[path.name] = {**_stamp(path), "sha256": digest, "pinned": digest}
    _write_record(path.parent, record)
    return digest


def _pin_for(path: Path, pinned: str | None) -> str | None:
    """The published pin (full digest or a prefix), else the one recorded at download."""
    if pinned:
        return pinned
    entry = _read_record(path.parent).get(path.name)
    return str(entry["pinned"]) if isinstance(entry, dict) and entry.get("pinned") else None


def status(path: Path, pinned: str | None) -> Status:
    """verified / mismatch / unpinned (no pin published or recorded) / missing."""
    if not path.is_file():
        return "missing"
    pin = _pin_for(path, pinned)
    if pin is None:
        return "unpinned"
    return "verified" if current_sha256(path).startswith(pin) else "mismatch"


def require_verified(path: Path, name: str, pinned: str | None) -> Path:
    """`path` when it matches its pin (or has none); a mismatch is a one-line WeightsError unless
    `--unverified-weights` was given."""
    if status(path, pinned) != "mismatch":
        return path
    pin = _pin_for(path, pinned) or ""
    message = (f"{path}: sha256 {current_sha256(path)[:16]}... is not the pinned {pin[:16]}... of {name}; "
               f"fetch it again (`translate weights fetch {name} --overwrite`) or pass --unverified-weights "
               "to use this file as your own")
    if _allow["unverified"]:
        log.warning("%s (used anyway: --unverified-weights)", message.split("; ")[0])
        return path
    raise WeightsError(message)
