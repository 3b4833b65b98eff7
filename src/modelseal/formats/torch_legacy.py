"""Legacy (pre-1.6, non-zip) PyTorch checkpoints: list tensors without unpickling.

``torch.save(..., _use_new_zipfile_serialization=False)`` writes five pickles back to
back (magic number, protocol version, system info, the object graph, the list of
storage keys) and then each storage, in key order, as an 8-byte little-endian element
count followed by its raw bytes. The pickles are walked symbolically
(:mod:`modelseal.scan.pickle.walker`), so the storages' offsets come from the opcode
walk alone; tensors are described exactly as in the zip format (:mod:`.torch`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from modelseal.errors import FormatError, ModelsealError
from modelseal.formats.format import Format
from modelseal.formats.interface import TensorReader
from modelseal.formats.inventory import Entry
from modelseal.formats.tensors import TensorInfo
from modelseal.formats.torch import _tensor_info, _walk_tensors

__all__ = ["TorchLegacyReader"]


class TorchLegacyReader(TensorReader):
    """Lists the tensors of a legacy ``torch.save`` stream from its pickles alone."""

    formats = frozenset({Format.PYTORCH_LEGACY})

    def tensors(self, entry: Entry) -> Sequence[TensorInfo]:
        """Describe every contiguous tensor; raise FormatError for a broken checkpoint."""
        from modelseal.scan.pickle.streams import TORCH_LEGACY_MAGIC, storage_element_size
        from modelseal.scan.pickle.walker import Persistent, Walker

        if entry.fs_path is None or entry.data_offset is None:
            raise FormatError(
                f"{entry.path}: the checkpoint is not stored uncompressed on disk",
                advice="extract it from its container first",
            )
        try:
            with entry.open() as raw:
                walker = Walker(raw)
                if walker.walk_pickle() != TORCH_LEGACY_MAGIC:
                    raise FormatError(f"{entry.path}: not a legacy PyTorch checkpoint")
                walker.walk_pickle()  # protocol version
                walker.walk_pickle()  # system info
                root = walker.walk_pickle()
                keys = walker.walk_pickle()
                found = list(_walk_tensors(root, "", 0, set()))
                sizes: dict[Any, int | None] = {}
                for _, args, _ in found:
                    if args and isinstance(args[0], Persistent):
                        pid = args[0].pid
                        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
                            sizes[pid[2]] = storage_element_size(pid[1])
                storages = _LegacyStorages(entry, walker, keys, sizes)
                result = []
                for name, args, dtype_override in found:
                    info = _tensor_info(entry, storages, name, args, dtype_override)  # type: ignore[arg-type]
                    if info is not None:
                        result.append(info)
                return result
        except ModelsealError as exc:
            raise FormatError(f"{entry.path}: cannot read the checkpoint ({exc.message})") from exc
        except (OSError, EOFError, ValueError, struct.error) as exc:
            raise FormatError(f"{entry.path}: cannot read the checkpoint ({exc})") from exc


class _LegacyStorages:
    """Where each storage's bytes start: counted by walking the headers in key order."""

    def __init__(self, entry: Entry, walker: Any, keys: Any, sizes: dict[Any, int | None]) -> None:
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise FormatError(f"{entry.path}: the storage key list is malformed")
        self._located: dict[str, tuple[int, int]] = {}
        base = entry.data_offset or 0
        for key in keys:
            element = sizes.get(key)
            if element is None:
                raise FormatError(f"{entry.path}: storage {key!r} has an unknown type")
            (numel,) = struct.unpack("<q", walker.read(8, "storage size"))
            if numel < 0:
                raise FormatError(f"{entry.path}: storage {key!r} has a negative size")
            start = walker.src.pos
            self._located[key] = (base + start, numel * element)
            walker.skip(numel * element, "storage data")
        self._entry = entry

    def locate(self, key: Any) -> tuple[int, int]:
        """(absolute offset in ``entry.fs_path``, size) of storage ``key``."""
        found = self._located.get(key)
        if found is None:
            raise FormatError(f"{self._entry.path}: storage {key!r} is missing")
        return found
