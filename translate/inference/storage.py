"""Files behind a local path or a URI (s3://, gs://, abfs://, file://) through pyarrow's file systems:
resolve, list a tree once, read and write whole objects. Imports pyarrow inside its functions."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from translate.errors import TranslatorError, first_line
from translate.files import atomic_write

URI_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "file", "hdfs")


def is_uri(text: str | os.PathLike) -> bool:
    """Whether `text` names a file system by scheme (s3://bucket/key) rather than a local path."""
    scheme, sep, _ = str(text).partition("://")
    return bool(sep) and scheme.lower() in URI_SCHEMES


@dataclass(frozen=True)
class Location:
    """A place on one file system: `fs` (a pyarrow FileSystem, picklable, so it travels to Ray
    workers) and `path` in that file system's own form (bucket/key for object stores)."""

    fs: Any
    path: str
    text: str  # as the user wrote it, for messages

    @property
    def local(self) -> bool:
        """True when `path` is a path of this machine's file system (os and pathlib can open it)."""
        from pyarrow.fs import LocalFileSystem

        return isinstance(self.fs, LocalFileSystem)

    def child(self, relative: str) -> str:
        """The path of `relative` (a posix relative name) below this location."""
        return f"{self.path.rstrip('/')}/{relative}" if relative else self.path

    def shown(self, path: str) -> str:
        """`path` (of this file system) as the user would write it: a URI for object stores."""
        if self.local:
            return path
        scheme = self.text.partition("://")[0]
        return f"{scheme}://{path}"


def resolve(text: str | os.PathLike) -> Location:
    """The file system and path `text` names. URIs read credentials and endpoints the way pyarrow
    does (for S3: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_ENDPOINT_URL, ~/.aws, instance roles)."""
    from pyarrow import fs as pafs

    text = str(text)
    if not is_uri(text):
        return Location(pafs.LocalFileSystem(), str(Path(text).absolute()), text)
    try:
        filesystem, path = pafs.FileSystem.from_uri(text)
    except (OSError, ValueError) as e:
        raise TranslatorError(f"{text}: cannot open this location ({first_line(e)})") from None
    return Location(filesystem, path.rstrip("/"), text)


def file_type(location: Location) -> str:
    """"file", "dir" or "missing"."""
    from pyarrow.fs import FileType

    try:
        kind = location.fs.get_file_info(location.path).type
    except OSError as e:
        raise TranslatorError(f"{location.text}: cannot read it ({first_line(e)})") from None
    return {FileType.File: "file", FileType.Directory: "dir"}.get(kind, "missing")


def list_tree(location: Location) -> list[str]:
    """Relative posix names of every file below `location`, in one listing (none when it is absent)."""
    from pyarrow.fs import FileSelector, FileType

    try:
        infos = location.fs.get_file_info(FileSelector(location.path, recursive=True, allow_not_found=True))
    except OSError as e:
        raise TranslatorError(f"{location.text}: cannot list it ({first_line(e)})") from None
    root = location.path.rstrip("/") + "/"
    return sorted(info.path[len(root):] for info in infos
                  if info.type == FileType.File and info.path.startswith(root))


def read_bytes(fs: Any, path: str) -> bytes:
    """The whole content of `path` on `fs`."""
    with fs.open_input_stream(path) as stream:
        return stream.read()


def write_whole(fs: Any, path: str, data: bytes) -> None:
    """Write `data` to `path` so that it appears whole or not at all: a temp file renamed on local
    disks; one upload on object stores (an object becomes visible only when its upload completes)."""
    from pyarrow.fs import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        atomic_write(path, data)
        return
    with fs.open_output_stream(path) as stream:
        stream.write(data)
