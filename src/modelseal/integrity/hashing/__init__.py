"""Hash engines, looked up by the name written in manifests."""

from __future__ import annotations

import importlib

from modelseal.errors import UsageError
from modelseal.integrity.hashing.interface import Digest, HashEngine, Hasher

__all__ = ["ALGORITHMS", "Digest", "HashEngine", "Hasher", "engine_for"]

# name -> "module:class"; "blake2" is model-signing's CLI spelling of blake2b.
_ENGINES: dict[str, str] = {
    "sha256": "modelseal.integrity.hashing.sha256:Sha256",
    "blake2b": "modelseal.integrity.hashing.blake2b:Blake2b",
    "blake2": "modelseal.integrity.hashing.blake2b:Blake2b",
    "blake3": "modelseal.integrity.hashing.blake3:Blake3",
}

#: The algorithm names users may choose.
ALGORITHMS: tuple[str, ...] = ("sha256", "blake2b", "blake3")


def engine_for(name: str) -> HashEngine:
    """The engine for algorithm ``name`` (raises :class:`UsageError` if unknown)."""
    target = _ENGINES.get(name)
    if target is None:
        raise UsageError(
            f"unknown hash algorithm {name!r}", advice=f"choose one of {', '.join(ALGORITHMS)}"
        )
    module_name, _, class_name = target.partition(":")
    engine: HashEngine = getattr(importlib.import_module(module_name), class_name)()
    return engine
