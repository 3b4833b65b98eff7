"""File-writing helpers shared by every command: nothing half-written is left behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_output", "atomic_write"]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: int = 0o644) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` only if the block completes.

    The data goes to a temporary file in the same directory, is flushed to disk,
    then renamed over ``path``; on any exception the temporary file is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes | str, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (text is encoded as UTF-8)."""
    with atomic_output(path, mode) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
