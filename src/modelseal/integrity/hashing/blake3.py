"""BLAKE3 (optional dependency ``blake3``): hashes one large buffer on all cores."""

from __future__ import annotations

from modelseal.errors import UsageError
from modelseal.integrity.hashing.interface import HashEngine, Hasher

__all__ = ["Blake3"]


class Blake3(HashEngine):
    """BLAKE3-256; each large update is hashed on several threads by the library."""

    name = "blake3"
    digest_size = 32
    internally_parallel = True

    def new(self) -> Hasher:
        """A fresh hasher (raises :class:`UsageError` if ``blake3`` is not installed)."""
        try:
            import blake3
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise UsageError(
                "the blake3 hash needs the 'blake3' package",
                advice="pip install blake3, or use --hash sha256",
            ) from exc
        hasher: Hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        return hasher
