"""BLAKE3 (optional dependency ``blake3``).

One thread per file: BLAKE3 with SIMD already runs at memory-copy speed on one
core, so the engine is hashed like SHA-256 (parallel across files and never
mapped into memory: model-signing's ``update_mmap`` path makes RSS grow with the
model size).
"""

from __future__ import annotations

from modelseal.errors import UsageError
from modelseal.integrity.hashing.interface import HashEngine, Hasher

__all__ = ["Blake3"]


class Blake3(HashEngine):
    """BLAKE3-256, single-threaded per hasher."""

    name = "blake3"
    digest_size = 32

    def new(self) -> Hasher:
        """A fresh hasher (raises :class:`UsageError` if ``blake3`` is not installed)."""
        try:
            import blake3
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise UsageError(
                "the blake3 hash needs the 'blake3' package",
                advice="pip install blake3, or use --hash sha256",
            ) from exc
        hasher: Hasher = blake3.blake3(max_threads=1)
        return hasher
