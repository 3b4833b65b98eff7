"""Blobs in a local directory: ``ROOT/sha256/ab/abcdef...``, written atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from modelseal._io import atomic_output, atomic_write
from modelseal.registry.names import check_digest
from modelseal.registry.storage.interface import BlobStore, is_digest

__all__ = ["LocalBlobStore"]


class LocalBlobStore(BlobStore):
    """A content-addressed directory; files are read-only once stored."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "sha256").mkdir(parents=True, exist_ok=True)

    def _path(self, digest: str) -> Path:
        digest = check_digest(digest)
        return self.root / "sha256" / digest[:2] / digest

    def exists(self, digest: str) -> bool:
        """Whether the blob file is present."""
        return self._path(digest).is_file()

    def put_file(self, digest: str, path: Path) -> None:
        """Move ``path`` in (a rename on the same file system, else an atomic copy)."""
        target = self._path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o444)
        try:
            os.replace(path, target)
        except OSError:
            with open(path, "rb") as source, atomic_output(target, 0o444) as sink:
                shutil.copyfileobj(source, sink, 4 * 1024 * 1024)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def put_bytes(self, digest: str, data: bytes) -> None:
        """Write small bytes atomically."""
        target = self._path(digest)
        if not target.is_file():
            atomic_write(target, data, 0o444)

    def iter_bytes(self, digest: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """Read the file in chunks."""
        with open(self._path(digest), "rb") as handle:
            while chunk := handle.read(chunk_size):
                yield chunk

    def size(self, digest: str) -> int:
        """The file's size."""
        return self._path(digest).stat().st_size

    def delete(self, digest: str) -> None:
        """Unlink the file."""
        with contextlib.suppress(FileNotFoundError):
            self._path(digest).unlink()

    def iter_digests(self) -> Iterator[tuple[str, int]]:
        """Every blob file (``sha256/<2 hex>/<digest>``) with its size."""
        try:
            shards = sorted(os.scandir(self.root / "sha256"), key=lambda e: e.name)
        except FileNotFoundError:
            return
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False):
                continue
            with os.scandir(shard.path) as entries:
                for entry in entries:
                    if is_digest(entry.name) and entry.name[:2] == shard.name:
                        with contextlib.suppress(FileNotFoundError):
                            yield entry.name, entry.stat(follow_symlinks=False).st_size

    def local_path(self, digest: str) -> Path | None:
        """The blob file itself (served with sendfile by the API)."""
        path = self._path(digest)
        return path if path.is_file() else None
