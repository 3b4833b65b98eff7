"""SafeTensors: a little-endian u64 header length, a JSON header, then raw bytes.

The format is simple enough to read directly, and strictness is the point: two
parsers that disagree about a header (duplicate keys, overlapping ranges, gaps
that hide bytes) are an attack surface, so anything the reference library would
refuse, or that it would accept ambiguously, is a :class:`FormatError` here.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelseal.errors import FormatError, LimitExceededError
from modelseal.formats.format import Format
from modelseal.formats.interface import TensorReader
from modelseal.formats.inventory import Entry
from modelseal.formats.tensors import DTYPE_SIZES, TensorInfo

__all__ = ["MAX_HEADER_BYTES", "SafetensorsHeader", "SafetensorsReader", "read_header"]

#: The reference implementation refuses headers above 100 MB; so do we.
MAX_HEADER_BYTES = 100_000_000

_DTYPES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I16": "int16",
    "U16": "uint16",
    "F16": "float16",
    "BF16": "bfloat16",
    "I32": "int32",
    "U32": "uint32",
    "F32": "float32",
    "I64": "int64",
    "U64": "uint64",
    "F64": "float64",
    "C64": "complex64",
}


@dataclass(frozen=True)
class SafetensorsHeader:
    """A validated safetensors header."""

    #: Tensors in file order.
    tensors: tuple[TensorInfo, ...]
    #: The ``__metadata__`` map (string to string), empty if absent.
    metadata: Mapping[str, str]
    #: Byte length of the JSON header (without the 8-byte length prefix).
    header_length: int


def read_header(entry: Entry) -> SafetensorsHeader:
    """Read and strictly validate the header of a safetensors entry.

    Works for compressed archive members too (the header is streamed); their tensors
    then name no mappable file, so :class:`SafetensorsReader` refuses them.
    """
    with entry.open() as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise FormatError(f"{entry.path}: truncated safetensors file (no header length)")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise LimitExceededError(
                f"{entry.path}: safetensors header claims {length:,} bytes "
                f"(limit {MAX_HEADER_BYTES:,})"
            )
        if length + 8 > entry.size:
            raise FormatError(
                f"{entry.path}: safetensors header length {length:,} exceeds the file size"
            )
        raw = stream.read(length)
    return parse_header(
        raw,
        path=entry.path,
        file=entry.fs_path or Path(entry.path),
        buffer_start=(entry.data_offset or 0) + 8 + length,
        buffer_size=entry.size - 8 - length,
    )


def parse_header(
    raw: bytes, *, path: str, file: Path, buffer_start: int, buffer_size: int
) -> SafetensorsHeader:
    """Validate header bytes ``raw``; ``buffer_start`` is the absolute offset of the data."""
    if not raw.startswith(b"{"):
        raise FormatError(f"{path}: safetensors header does not start with '{{'")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: safetensors header is not UTF-8") from exc
    except ValueError as exc:
        raise FormatError(f"{path}: safetensors header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise FormatError(f"{path}: safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise FormatError(f"{path}: __metadata__ must map strings to strings")
    tensors = [
        _tensor(name, spec, path=path, file=file, buffer_start=buffer_start)
        for name, spec in header.items()
    ]
    tensors.sort(key=lambda t: (t.offset, t.offset + t.nbytes))
    position = buffer_start
    for tensor in tensors:
        if tensor.offset != position:
            problem = "overlaps the previous tensor" if tensor.offset < position else "leaves a gap"
            raise FormatError(f"{path}: tensor {tensor.name!r} {problem} in the data buffer")
        position += tensor.nbytes
    if position - buffer_start != buffer_size:
        raise FormatError(
            f"{path}: tensors cover {position - buffer_start:,} bytes but the data buffer "
            f"holds {buffer_size:,}"
        )
    return SafetensorsHeader(tuple(tensors), dict(metadata), len(raw))


def _tensor(name: str, spec: Any, *, path: str, file: Path, buffer_start: int) -> TensorInfo:
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        raise FormatError(f"{path}: tensor {name!r} needs exactly dtype, shape and data_offsets")
    dtype = _DTYPES.get(spec["dtype"]) if isinstance(spec["dtype"], str) else None
    if dtype is None:
        raise FormatError(f"{path}: tensor {name!r} has unknown dtype {spec['dtype']!r}")
    shape, offsets = spec["shape"], spec["data_offsets"]
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise FormatError(f"{path}: tensor {name!r} has an invalid shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise FormatError(f"{path}: tensor {name!r} has invalid data_offsets {offsets!r}")
    expected = math.prod(shape) * DTYPE_SIZES[dtype]
    if offsets[1] - offsets[0] != expected:
        raise FormatError(
            f"{path}: tensor {name!r} spans {offsets[1] - offsets[0]:,} bytes but "
            f"{spec['dtype']}{shape} needs {expected:,}"
        )
    return TensorInfo(
        name=name,
        dtype=dtype,
        shape=tuple(shape),
        file=file,
        offset=buffer_start + offsets[0],
        nbytes=expected,
        source=path,
    )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


class SafetensorsReader(TensorReader):
    """Tensor reader for ``.safetensors`` files."""

    formats = frozenset({Format.SAFETENSORS})

    def tensors(self, entry: Entry) -> Sequence[TensorInfo]:
        """All tensors, validated (only for bytes stored verbatim on disk: mappable)."""
        if entry.fs_path is None or entry.data_offset is None:
            raise FormatError(
                f"{entry.path}: safetensors data is compressed inside an archive; its "
                "tensors cannot be mapped (extract it to inspect the weights)"
            )
        return read_header(entry).tensors
