"""BLAKE2b-512, as model-signing names it (``blake2b``)."""

from __future__ import annotations

import hashlib

from modelseal.integrity.hashing.interface import HashEngine, Hasher

__all__ = ["Blake2b"]


class Blake2b(HashEngine):
    """BLAKE2b with its default 64-byte digest."""

    name = "blake2b"
    digest_size = 64

    def new(self) -> Hasher:
        """A fresh hasher."""
        return hashlib.blake2b()
