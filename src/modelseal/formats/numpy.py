"""NumPy ``.npy`` and ``.npz`` tensors, described from their headers.

The ``.npy`` header is a Python dict literal; it is parsed with
:func:`ast.literal_eval` (literals only, nothing is executed) and validated. Object
arrays are pickles, not tensors, and are refused (the pickle scanner reports them).
``.npz`` members are read where the archive stores them uncompressed
(``np.savez``); compressed members (``np.savez_compressed``) cannot be memory-mapped
and are refused with a clear error.
"""

from __future__ import annotations

import ast
import math
import struct
from collections.abc import Sequence
from typing import Any

from modelseal.errors import FormatError
from modelseal.formats.format import Format
from modelseal.formats.interface import TensorReader
from modelseal.formats.inventory import Entry, Limits, expand
from modelseal.formats.tensors import DTYPE_SIZES, NUMPY_KINDS, TensorInfo

__all__ = ["NumpyReader", "parse_npy_header"]

_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 1 << 20


def parse_npy_header(head: bytes, *, path: str) -> tuple[str, tuple[int, ...], bool, int]:
    """``(dtype, shape, fortran_order, data start)`` from the first bytes of a ``.npy``."""
    if not head.startswith(_MAGIC) or len(head) < 10:
        raise FormatError(f"{path}: not a .npy file (bad magic)")
    major = head[6]
    if major == 1:
        (length,) = struct.unpack("<H", head[8:10])
        start = 10
    elif major in (2, 3):
        if len(head) < 12:
            raise FormatError(f"{path}: truncated .npy header")
        (length,) = struct.unpack("<I", head[8:12])
        start = 12
    else:
        raise FormatError(f"{path}: unsupported .npy version {major}")
    if length > _MAX_HEADER or start + length > len(head):
        raise FormatError(f"{path}: .npy header of {length:,} bytes is truncated or too large")
    text = head[start : start + length].decode("latin-1" if major < 3 else "utf-8", "replace")
    try:
        header: Any = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise FormatError(f"{path}: .npy header is not a literal dict ({exc})") from exc
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise FormatError(f"{path}: .npy header must hold exactly descr, fortran_order, shape")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str):
        raise FormatError(f"{path}: structured dtype {descr!r} is not a tensor")
    if not isinstance(fortran, bool):
        raise FormatError(f"{path}: fortran_order must be a boolean")
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise FormatError(f"{path}: invalid shape {shape!r}")
    return _dtype(descr, path), tuple(shape), fortran, start + length


def _dtype(descr: str, path: str) -> str:
    if len(descr) < 2 or descr[0] not in "<>|=":
        raise FormatError(f"{path}: unsupported dtype {descr!r}")
    order, kind, size_text = descr[0], descr[1], descr[2:]
    if kind == "O":
        raise FormatError(
            f"{path}: object array (a pickle, not a tensor)",
            advice="object arrays run code when loaded with allow_pickle=True: "
            "see `modelseal scan`",
        )
    if not size_text.isdigit() or (kind, int(size_text)) not in NUMPY_KINDS:
        raise FormatError(f"{path}: unsupported dtype {descr!r}")
    size = int(size_text)
    if order == ">" and size > 1:
        raise FormatError(f"{path}: big-endian arrays ({descr!r}) are not supported")
    return NUMPY_KINDS[(kind, size)]


class NumpyReader(TensorReader):
    """Tensor reader for ``.npy`` files and uncompressed ``.npz`` archives."""

    formats = frozenset({Format.NUMPY, Format.NUMPY_NPZ})

    def tensors(self, entry: Entry) -> Sequence[TensorInfo]:
        """One tensor per ``.npy`` (named after the file or the npz member)."""
        if entry.format == Format.NUMPY_NPZ:
            return self._npz(entry)
        return [self._npy(entry, entry.name.removesuffix(".npy"))]

    def _npy(self, entry: Entry, name: str) -> TensorInfo:
        if entry.fs_path is None or entry.data_offset is None:
            raise FormatError(
                f"{entry.path}: array is stored compressed and cannot be memory-mapped",
                advice="save with np.savez (not np.savez_compressed) to have its values checked",
            )
        head = entry.head(4096)
        if len(head) >= 12 and head[6] in (2, 3):
            (length,) = struct.unpack("<I", head[8:12])
            if 12 + length > len(head) and length <= _MAX_HEADER:
                head = entry.head(12 + length)
        dtype, shape, fortran, start = parse_npy_header(head, path=entry.path)
        nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
        if start + nbytes > entry.size:
            raise FormatError(
                f"{entry.path}: header declares {nbytes:,} data bytes but the file holds "
                f"{max(entry.size - start, 0):,}"
            )
        # Fortran-ordered data is the C-ordered transpose: describe it that way.
        return TensorInfo(
            name=name,
            dtype=dtype,
            shape=tuple(reversed(shape)) if fortran else shape,
            file=entry.fs_path,
            offset=entry.data_offset + start,
            nbytes=nbytes,
            source=entry.path,
        )

    def _npz(self, entry: Entry) -> list[TensorInfo]:
        tensors = []
        limits = Limits(max_depth=entry.depth + 1)
        for member in expand(entry, limits):
            if member.depth != entry.depth + 1:
                continue
            if member.problem is not None:
                raise FormatError(f"{member.path}: {member.problem}")
            if member.format != Format.NUMPY:
                continue
            tensors.append(self._npy(member, member.inner_path.removesuffix(".npy")))
        return tensors
