"""Blob stores: content-addressed by SHA-256, one module per backend."""

from __future__ import annotations

from modelseal.registry.storage.interface import BlobStore, open_store

__all__ = ["BlobStore", "open_store"]
