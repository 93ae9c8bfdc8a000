"""torch.save into a file we write, with the file system's own error kept: torch's zip writer turns
a failed write (a full disk) into "unexpected pos N", which tells a user nothing; the OSError it
swallowed ("No space left on device") is what they need, naming the file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO


class _Recording:
    """A binary file whose first failed write is remembered (torch's writer hides it)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def __getattr__(self, name: str) -> Any:  # flush, tell, seek, fileno: the real file's
        return getattr(self._f, name)


def torch_save(obj: Any, f: BinaryIO, path: str | os.PathLike) -> None:
    """torch.save(obj, f); a write that fails raises the OSError itself, naming `path`."""
    import torch

    recording = _Recording(f)
    try:
        torch.save(obj, recording)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
    except RuntimeError as e:
        if recording.error is None:
            raise
        cause = recording.error
        raise OSError(cause.errno, cause.strerror or str(cause), str(Path(path))) from e
