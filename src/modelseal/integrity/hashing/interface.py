"""The hash-engine plug point: one small class per algorithm."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Digest", "HashEngine", "Hasher"]


class Hasher(Protocol):
    """A streaming hash object (the shape of :mod:`hashlib` objects)."""

    def update(self, data: bytes | memoryview | bytearray, /) -> object:
        """Feed more bytes."""

    def digest(self) -> bytes:
        """The digest of everything fed so far."""


@dataclass(frozen=True)
class Digest:
    """A digest value with the name of the algorithm that made it."""

    algorithm: str
    value: bytes

    @property
    def hex(self) -> str:
        """The digest as lowercase hexadecimal."""
        return self.value.hex()


class HashEngine(abc.ABC):
    """A hash algorithm, named as it is written in model-signing manifests."""

    #: The name recorded as ``hash_type`` and resource ``algorithm``.
    name: str
    #: Digest size in bytes.
    digest_size: int
    #: Whether the engine hashes one large buffer on several threads by itself.
    internally_parallel: bool = False

    @abc.abstractmethod
    def new(self) -> Hasher:
        """A fresh streaming hasher."""

    def digest(self, data: bytes) -> Digest:
        """Hash ``data`` in one call."""
        hasher = self.new()
        hasher.update(data)
        return Digest(self.name, hasher.digest())
