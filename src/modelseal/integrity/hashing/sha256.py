"""SHA-256 (the default, and the only algorithm every model-signing verifier knows)."""

from __future__ import annotations

import hashlib

from modelseal.integrity.hashing.interface import HashEngine, Hasher

__all__ = ["Sha256"]


class Sha256(HashEngine):
    """SHA-256 through :mod:`hashlib` (releases the GIL on large updates)."""

    name = "sha256"
    digest_size = 32

    def new(self) -> Hasher:
        """A fresh hasher."""
        return hashlib.sha256()
