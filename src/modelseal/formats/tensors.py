"""Tensor descriptions: what every weight reader returns.

A :class:`TensorInfo` says where a tensor's bytes live (file and byte range),
never holds the values. :func:`tensor_array` maps those bytes lazily with
``numpy.memmap``; nothing here reads a whole weight file into memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelseal.errors import FormatError

if TYPE_CHECKING:
    import numpy as np

    from modelseal.formats.inventory import Entry

__all__ = [
    "DTYPE_SIZES",
    "NUMPY_KINDS",
    "TensorInfo",
    "describe_tensors",
    "tensor_array",
]

#: Bytes per element of the dtypes modelseal names (canonical lowercase names).
DTYPE_SIZES: dict[str, int] = {
    "bool": 1,
    "uint8": 1,
    "int8": 1,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "int16": 2,
    "uint16": 2,
    "float16": 2,
    "bfloat16": 2,
    "int32": 4,
    "uint32": 4,
    "float32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "complex64": 8,
    "complex128": 16,
}

#: numpy (kind, itemsize) -> canonical dtype name, for readers of numpy-typed headers.
NUMPY_KINDS: dict[tuple[str, int], str] = {
    ("b", 1): "bool",
    ("u", 1): "uint8",
    ("i", 1): "int8",
    ("u", 2): "uint16",
    ("i", 2): "int16",
    ("f", 2): "float16",
    ("u", 4): "uint32",
    ("i", 4): "int32",
    ("f", 4): "float32",
    ("u", 8): "uint64",
    ("i", 8): "int64",
    ("f", 8): "float64",
    ("c", 8): "complex64",
    ("c", 16): "complex128",
}

# How numpy can view each dtype's raw bytes (bfloat16 and fp8 as unsigned ints).
_NUMPY_VIEW = {
    "bool": "|b1",
    "uint8": "|u1",
    "int8": "|i1",
    "float8_e4m3fn": "|u1",
    "float8_e5m2": "|u1",
    "int16": "<i2",
    "uint16": "<u2",
    "float16": "<f2",
    "bfloat16": "<u2",
    "int32": "<i4",
    "uint32": "<u4",
    "float32": "<f4",
    "int64": "<i8",
    "uint64": "<u8",
    "float64": "<f8",
    "complex64": "<c8",
    "complex128": "<c16",
}


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor's bytes live, and how to read them."""

    name: str
    #: Canonical lowercase dtype (``float32``, ``bfloat16``...) or a GGML type (``q4_0``).
    dtype: str
    shape: tuple[int, ...]
    #: The file on disk holding the bytes.
    file: Path
    #: Absolute byte offset of the first element in ``file``.
    offset: int
    #: Number of bytes the tensor occupies.
    nbytes: int
    #: Display path of the entry the tensor belongs to.
    source: str

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


def tensor_array(info: TensorInfo) -> np.ndarray:
    """Memory-map a tensor's bytes as a numpy array shaped like the tensor.

    bfloat16 and fp8 come back as unsigned integers of the same width (numpy has
    no such float types); GGML quantized types as raw ``uint8`` blocks.
    """
    import numpy as np

    view = _NUMPY_VIEW.get(info.dtype)
    if view is None:
        return np.memmap(
            info.file, dtype=np.uint8, mode="r", offset=info.offset, shape=(info.nbytes,)
        )
    if info.nbytes == 0:
        return np.zeros(info.shape, dtype=view)
    return np.memmap(info.file, dtype=view, mode="r", offset=info.offset, shape=info.shape)


def describe_tensors(entry: Entry) -> Sequence[TensorInfo]:
    """The tensors stored in ``entry``, from its headers only.

    Raises :class:`FormatError` if the entry's format has no tensor reader or its
    headers are invalid.
    """
    from modelseal.formats.readers import reader_for

    reader = reader_for(entry.format)
    if reader is None:
        raise FormatError(f"{entry.path}: no tensor reader for format {entry.format.value}")
    return reader.tensors(entry)
