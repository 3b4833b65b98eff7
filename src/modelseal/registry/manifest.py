"""File lists of model versions: walking a model directory, hashing, the version digest.

A version is identified by the SHA-256 of its canonical file list (``version_digest``):
a JSON array of ``{"path", "digest", "size"}`` sorted by path, compact separators,
UTF-8. The server computes it at commit; the client recomputes it before trusting
anything a pull returns, so ``NS/MODEL@sha256:DIGEST`` pins exact bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelseal.registry.errors import BadRequestError
from modelseal.registry.names import check_digest, check_file_path, path_key

__all__ = ["FileEntry", "check_file_list", "hash_file", "version_digest", "walk_model"]

_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class FileEntry:
    """One file of a model version."""

    path: str
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        """The wire form."""
        return {"path": self.path, "digest": self.digest, "size": self.size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileEntry:
        """Parse and validate the wire form."""
        try:
            path, digest, size = data["path"], data["digest"], data["size"]
        except (KeyError, TypeError) as exc:
            raise BadRequestError("a file entry needs path, digest and size") from exc
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequestError(f"invalid size for {path!r}")
        return cls(check_file_path(path), check_digest(digest), size)


def version_digest(files: Iterable[FileEntry]) -> str:
    """SHA-256 of the canonical file list."""
    canonical = json.dumps(
        [f.to_dict() for f in sorted(files, key=lambda f: f.path)],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def check_file_list(files: Sequence[FileEntry], *, max_files: int, max_file_bytes: int) -> None:
    """Refuse duplicate paths, a path that is also a directory, too many or too large files."""
    if not files:
        raise BadRequestError("a version needs at least one file")
    if len(files) > max_files:
        raise BadRequestError(f"too many files ({len(files)} > {max_files})")
    paths = {f.path for f in files}
    if len(paths) != len(files):
        raise BadRequestError("duplicate file paths in the file list")
    folded = {path_key(p) for p in paths}
    if len(folded) != len(paths):
        raise BadRequestError(
            "file paths differ only by case or Unicode normalisation (NFC/NFD)",
            advice="they would collide on macOS and Windows",
        )
    for f in files:
        parts = f.path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in paths:
                raise BadRequestError(f"{'/'.join(parts[:depth])!r} is both a file and a directory")
        if f.size > max_file_bytes:
            from modelseal.registry.errors import TooLargeError

            raise TooLargeError(
                f"{f.path!r} is {f.size} bytes, over the server's limit of {max_file_bytes}",
                advice="ask the registry admin to raise the limit",
            )


def hash_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """Hex SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            if progress is not None:
                progress(count)
    view.release()
    return digest.hexdigest()


def walk_model(
    root: Path, *, workers: int | None = None, progress: Callable[[int], None] | None = None
) -> list[FileEntry]:
    """Every regular file under ``root`` with its digest (hashed in parallel).

    Symlinks are refused (a push must not pick up files from elsewhere on the machine),
    as are paths the registry would refuse.
    """
    root = Path(root)
    if not root.is_dir():
        raise BadRequestError(f"{root} is not a directory", advice="push a model directory")
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                raise BadRequestError(
                    f"{rel} is a symlink", advice="copy the file into the model directory instead"
                )
            if not full.is_file():
                continue
            found.append((check_file_path(rel), full))
    if not found:
        raise BadRequestError(f"{root} contains no files")
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2))) as pool:
        digests = list(pool.map(lambda item: hash_file(item[1], progress), found))
    return [
        FileEntry(rel, digest, full.stat().st_size)
        for (rel, full), digest in zip(found, digests, strict=True)
    ]
