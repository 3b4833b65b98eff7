"""The blob store plug point: immutable files addressed by their SHA-256.

A store never decides whether bytes are right: the server checks the digest of a
staged file *before* handing it to :meth:`BlobStore.put_file`, and the client checks
it again on download.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from modelseal.errors import ConfigError

__all__ = ["BlobStore", "is_digest", "open_store"]


def is_digest(name: str) -> bool:
    """Whether ``name`` is a lowercase hex SHA-256 (how blobs are named)."""
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


class BlobStore(ABC):
    """Where blob bytes live. Implementations: ``local.LocalBlobStore``, ``s3.S3BlobStore``."""

    @abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""

    @abstractmethod
    def put_file(self, digest: str, path: Path) -> None:
        """Store the (already verified) file at ``path`` as ``digest``; ``path`` is consumed.

        Atomic: readers see either no blob or the whole blob.
        """

    @abstractmethod
    def put_bytes(self, digest: str, data: bytes) -> None:
        """Store small, already verified bytes (signature bundles, SBOMs)."""

    @abstractmethod
    def iter_bytes(self, digest: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """Stream a blob's bytes (raises FileNotFoundError when absent)."""

    @abstractmethod
    def size(self, digest: str) -> int:
        """The stored size of a blob (raises FileNotFoundError when absent)."""

    @abstractmethod
    def delete(self, digest: str) -> None:
        """Remove a blob (no error when absent)."""

    @abstractmethod
    def iter_digests(self) -> Iterator[tuple[str, int]]:
        """Every stored ``(digest, size)``; objects not named by a digest (temporary
        files of an interrupted write) are skipped."""

    def local_path(self, digest: str) -> Path | None:
        """A path on this machine holding the blob, when the backend has one."""
        return None

    def download_url(self, digest: str, *, filename: str | None = None) -> str | None:
        """A URL the client may fetch the blob from directly (presigned), or ``None``."""
        return None

    def read_bytes(self, digest: str) -> bytes:
        """A small blob's bytes."""
        return b"".join(self.iter_bytes(digest))


def open_store(
    location: str, *, endpoint_url: str | None = None, presign_seconds: int = 300
) -> BlobStore:
    """The store for ``location``: a directory path, or ``s3://bucket[/prefix]``."""
    if location.startswith("s3://"):
        from modelseal.registry.storage.s3 import S3BlobStore

        bucket, _, prefix = location[len("s3://") :].partition("/")
        if not bucket:
            raise ConfigError(
                f"invalid blob location {location!r}", advice="use s3://BUCKET/PREFIX"
            )
        return S3BlobStore(
            bucket, prefix.strip("/"), endpoint_url=endpoint_url, presign_seconds=presign_seconds
        )
    if "://" in location:
        raise ConfigError(
            f"unsupported blob location {location!r}",
            advice="use a directory or s3://BUCKET/PREFIX",
        )
    from modelseal.registry.storage.local import LocalBlobStore

    return LocalBlobStore(Path(location))
