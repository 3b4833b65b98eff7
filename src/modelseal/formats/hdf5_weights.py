"""Keras ``.weights.h5`` and other HDF5 weight files, through ``h5py`` (metadata only).

Datasets stored contiguously and uncompressed have a fixed byte offset in the file
(``dataset.id.get_offset()``) and are memory-mapped from there like any tensor.
Chunked or compressed datasets cannot be mapped; they are refused with a clear error
rather than silently skipped (a file whose values cannot be checked is never clean).
HDF5 files inside archives (a ``.keras`` zip) are read where the archive stores them
uncompressed. ``h5py`` is imported only when an HDF5 file is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelseal.errors import FormatError
from modelseal.formats.format import Format
from modelseal.formats.interface import TensorReader
from modelseal.formats.inventory import Entry
from modelseal.formats.tensors import DTYPE_SIZES, NUMPY_KINDS, TensorInfo

__all__ = ["Hdf5WeightsReader"]

_MAX_DATASETS = 100_000


class Hdf5WeightsReader(TensorReader):
    """Tensor reader for HDF5 weight files (Keras ``.weights.h5``, legacy ``.h5``)."""

    formats = frozenset({Format.HDF5})

    def tensors(self, entry: Entry) -> Sequence[TensorInfo]:
        """Every numeric dataset, named by its HDF5 path."""
        try:
            import h5py
        except ImportError as exc:  # pragma: no cover - h5py is an optional extra
            raise FormatError(
                f"{entry.path}: reading HDF5 weights needs h5py",
                advice="pip install 'modelseal[keras]'",
            ) from exc
        if entry.fs_path is None or entry.data_offset is None:
            raise FormatError(f"{entry.path}: HDF5 data is not stored uncompressed on disk")
        found: list[TensorInfo] = []
        problems: list[str] = []
        try:
            with entry.open() as stream, h5py.File(stream, "r") as handle:

                def visit(name: str, obj: Any) -> None:
                    if len(found) + len(problems) > _MAX_DATASETS:
                        raise FormatError(f"{entry.path}: more than {_MAX_DATASETS} datasets")
                    if isinstance(obj, h5py.Dataset):
                        info = self._dataset(entry, name, obj, problems)
                        if info is not None:
                            found.append(info)

                handle.visititems(visit)
        except FormatError:
            raise
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise FormatError(f"{entry.path}: cannot read HDF5 structure ({exc})") from exc
        if problems:
            raise FormatError(
                f"{entry.path}: {len(problems)} dataset(s) cannot be memory-mapped: "
                + ", ".join(problems[:5]),
                advice="save weights uncompressed and unchunked to have their values checked",
            )
        return found

    def _dataset(
        self, entry: Entry, name: str, dataset: Any, problems: list[str]
    ) -> TensorInfo | None:
        assert entry.fs_path is not None and entry.data_offset is not None
        dtype = dataset.dtype
        if dtype.kind not in "biuf" or (dtype.kind, dtype.itemsize) not in NUMPY_KINDS:
            return None  # strings, references and compound types are metadata, not weights
        if dtype.byteorder == ">" and dtype.itemsize > 1:
            problems.append(f"{name} (big-endian)")
            return None
        canonical = NUMPY_KINDS[(dtype.kind, dtype.itemsize)]
        shape = tuple(int(d) for d in dataset.shape)
        nbytes = int(dataset.size) * DTYPE_SIZES[canonical]
        if nbytes == 0:
            return TensorInfo(
                name, canonical, shape, entry.fs_path, entry.data_offset, 0, entry.path
            )
        if dataset.chunks is not None or dataset.compression is not None:
            problems.append(f"{name} (chunked or compressed)")
            return None
        offset = dataset.id.get_offset()
        if offset is None:
            problems.append(f"{name} (no storage allocated)")
            return None
        if offset + nbytes > entry.size:
            raise FormatError(f"{entry.path}: dataset {name!r} extends past the end of the file")
        return TensorInfo(
            name, canonical, shape, entry.fs_path, entry.data_offset + offset, nbytes, entry.path
        )
