"""ONNX initializers, located by walking the protobuf wire format (no ``onnx`` import).

``ModelProto.graph`` (field 7) holds ``GraphProto.initializer`` (field 5) tensors. A
``TensorProto`` stores its values either in ``raw_data`` (field 9: little-endian
bytes, mapped in place), in a packed ``float_data``/``double_data`` field (also
mapped in place), or in an external file (``data_location`` EXTERNAL with
``location``/``offset``/``length``). The walker records byte offsets only and skips
over tensor data with seeks, so a large model is never read into memory. Initializers
stored as varints (``int32_data``/``int64_data``) cannot be mapped and are skipped.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelseal.errors import FormatError
from modelseal.formats.format import Format
from modelseal.formats.interface import TensorReader
from modelseal.formats.inventory import Entry
from modelseal.formats.tensors import DTYPE_SIZES, TensorInfo

__all__ = ["OnnxReader"]

# TensorProto.DataType -> canonical dtype names
_DATA_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    14: "complex64",
    15: "complex128",
    16: "bfloat16",
    17: "float8_e4m3fn",
    19: "float8_e5m2",
}
_MAX_DIMS = 64


class _Wire:
    """Bounds-checked protobuf wire reading over a memory map."""

    def __init__(self, data: mmap.mmap | bytes, path: str) -> None:
        self.data = data
        self.path = path

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        value = 0
        for shift in range(0, 70, 7):
            if pos >= end:
                raise FormatError(f"{self.path}: truncated protobuf varint")
            byte = self.data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, pos
        raise FormatError(f"{self.path}: protobuf varint longer than 10 bytes")

    def fields(self, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        """``(number, wire type, value or payload start, payload end)`` for each field."""
        pos = start
        while pos < end:
            key, pos = self.varint(pos, end)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = self.varint(pos, end)
                yield number, wire, value, pos
            elif wire == 2:
                length, pos = self.varint(pos, end)
                if length > end - pos:
                    raise FormatError(f"{self.path}: protobuf field {number} overruns its message")
                yield number, wire, pos, pos + length
                pos += length
            elif wire in (1, 5):
                size = 8 if wire == 1 else 4
                if pos + size > end:
                    raise FormatError(f"{self.path}: truncated protobuf fixed field")
                yield number, wire, pos, pos + size
                pos += size
            else:
                raise FormatError(f"{self.path}: unsupported protobuf wire type {wire}")


@dataclass
class _Tensor:
    dims: list[int] = field(default_factory=list)
    data_type: int = 0
    name: str = ""
    data: tuple[int, int] | None = None
    external: dict[str, str] = field(default_factory=dict)
    location: int = 0


def _tensor(wire: _Wire, start: int, end: int) -> _Tensor:
    tensor = _Tensor()
    for number, kind, a, b in wire.fields(start, end):
        if number == 1 and kind == 0:
            tensor.dims.append(a)
        elif number == 1 and kind == 2:
            pos = a
            while pos < b:
                value, pos = wire.varint(pos, b)
                tensor.dims.append(value)
        elif number == 2 and kind == 0:
            tensor.data_type = a
        elif number == 8 and kind == 2:
            tensor.name = bytes(wire.data[a:b]).decode("utf-8", "replace")
        elif number in (9, 4, 10) and kind == 2:  # raw_data, packed float_data/double_data
            if number == 9 or b > a:
                tensor.data = (a, b)
        elif number == 13 and kind == 2:
            key = value_text = ""
            for sub, sub_kind, c, d in wire.fields(a, b):
                if sub_kind == 2 and sub in (1, 2):
                    text = bytes(wire.data[c:d]).decode("utf-8", "replace")
                    key, value_text = (text, value_text) if sub == 1 else (key, text)
            tensor.external[key] = value_text
        elif number == 14 and kind == 0:
            tensor.location = a
        if len(tensor.dims) > _MAX_DIMS:
            raise FormatError(f"{wire.path}: tensor with more than {_MAX_DIMS} dimensions")
    return tensor


class OnnxReader(TensorReader):
    """Tensor reader for ONNX models (graph initializers)."""

    formats = frozenset({Format.ONNX})

    def tensors(self, entry: Entry) -> Sequence[TensorInfo]:
        """Every mappable initializer of the main graph."""
        if entry.fs_path is None or entry.data_offset is None:
            raise FormatError(f"{entry.path}: ONNX data is not stored uncompressed on disk")
        if entry.size == 0:
            raise FormatError(f"{entry.path}: empty ONNX file")
        with (
            open(entry.fs_path, "rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
        ):
            return self._read(entry, _Wire(data, entry.path))

    def _read(self, entry: Entry, wire: _Wire) -> list[TensorInfo]:
        assert entry.fs_path is not None and entry.data_offset is not None
        base = entry.data_offset
        end = base + entry.size
        if end > len(wire.data):
            raise FormatError(f"{entry.path}: entry extends past the end of its file")
        tensors: list[TensorInfo] = []
        for number, kind, a, b in wire.fields(base, end):
            if number != 7 or kind != 2:
                continue
            for sub, sub_kind, c, d in wire.fields(a, b):
                if sub == 5 and sub_kind == 2:
                    info = self._info(entry, _tensor(wire, c, d), base)
                    if info is not None:
                        tensors.append(info)
        return tensors

    def _info(self, entry: Entry, tensor: _Tensor, base: int) -> TensorInfo | None:
        assert entry.fs_path is not None
        dtype = _DATA_TYPES.get(tensor.data_type)
        if dtype is None:
            raise FormatError(
                f"{entry.path}: initializer {tensor.name!r} has unknown data type "
                f"{tensor.data_type}"
            )
        numel = 1
        for dim in tensor.dims:
            numel *= dim
        nbytes = numel * DTYPE_SIZES[dtype]
        shape = tuple(tensor.dims)
        if tensor.location == 1:
            return self._external(entry, tensor, dtype, shape, nbytes)
        if tensor.data is None:
            return None  # values stored as varints: not mappable
        start, stop = tensor.data
        if stop - start != nbytes:
            raise FormatError(
                f"{entry.path}: initializer {tensor.name!r} holds {stop - start:,} bytes but "
                f"{dtype}{list(shape)} needs {nbytes:,}"
            )
        return TensorInfo(tensor.name, dtype, shape, entry.fs_path, start, nbytes, entry.path)

    def _external(
        self, entry: Entry, tensor: _Tensor, dtype: str, shape: tuple[int, ...], nbytes: int
    ) -> TensorInfo:
        assert entry.fs_path is not None
        location = tensor.external.get("location", "")
        if entry.depth > 0:
            raise FormatError(f"{entry.path}: external data of an archived ONNX model")
        if not location or os.path.isabs(location) or ".." in Path(location).parts:
            raise FormatError(
                f"{entry.path}: initializer {tensor.name!r} points to external data "
                f"{location!r} outside the model directory",
                advice="external data must be a relative path next to the model",
            )
        target = entry.fs_path.parent / location
        try:
            offset = int(tensor.external.get("offset", "0"))
            length = int(tensor.external.get("length", str(nbytes)))
            size = target.stat().st_size
        except ValueError as exc:
            raise FormatError(f"{entry.path}: invalid external data offset/length") from exc
        except OSError as exc:
            raise FormatError(
                f"{entry.path}: external data file {location!r} is missing ({exc.strerror})"
            ) from exc
        if length != nbytes or offset < 0 or offset + length > size:
            raise FormatError(
                f"{entry.path}: external data of {tensor.name!r} does not fit {location!r}"
            )
        return TensorInfo(tensor.name, dtype, shape, target, offset, nbytes, entry.path)
