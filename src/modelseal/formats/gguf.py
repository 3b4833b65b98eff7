"""GGUF: llama.cpp's single-file format (header, typed key/values, tensor infos, data).

The header is parsed here with explicit bounds instead of with ``gguf.GGUFReader``:
that reader memory-maps the whole file and builds numpy views from counts and
lengths taken straight from the file, so a hostile header (a string "length" of
2**63, an array of 2**40 elements, a tensor offset past the end) turns into numpy
errors of many kinds, huge allocations or, as measured with gguf 0.19, a parse that
never ends (a 60-byte file declaring a 2**40-element array); and it cannot read
an archive member.
This parser reads the header through the entry's bounded stream, checks every
count and length against what is left of the file before allocating, and
rejects what llama.cpp itself rejects (duplicate keys or tensor names, unknown
types, misaligned or out-of-file tensor data) with a :class:`FormatError`.

The GGML block-size table is data (:data:`GGML_TYPES`): the ``gguf`` package is not imported.

>>> gf = read_gguf(entry)                       # doctest: +SKIP
>>> gf.metadata["general.architecture"]         # doctest: +SKIP
'llama'
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

from modelseal.errors import FormatError, LimitExceededError
from modelseal.formats.format import Format
from modelseal.formats.interface import TensorReader
from modelseal.formats.inventory import Entry
from modelseal.formats.tensors import TensorInfo

__all__ = [
    "CHAT_TEMPLATE_PREFIX",
    "GGML_TYPES",
    "GgufFile",
    "GgufLimits",
    "GgufReader",
    "GgufTensor",
    "GgufValue",
    "chat_templates",
    "ggml_type_name",
    "read_gguf",
]

#: Every metadata key llama.cpp treats as a chat template starts with this.
CHAT_TEMPLATE_PREFIX = "tokenizer.chat_template"

#: A metadata value: a scalar, a string, or a (possibly nested) array of them.
GgufValue = int | float | bool | str | tuple["GgufValue", ...]

_MAGIC = b"GGUF"
_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_NAME_BYTES = 63  # GGML_MAX_NAME is 64 including the terminating NUL
_CHUNK = 1024 * 1024

# GGUF value types: id -> (name, struct code, byte size); strings and arrays are special.
_STRING, _ARRAY = 8, 9
_SCALARS: dict[int, tuple[str, str, int]] = {
    0: ("uint8", "B", 1),
    1: ("int8", "b", 1),
    2: ("uint16", "H", 2),
    3: ("int16", "h", 2),
    4: ("uint32", "I", 4),
    5: ("int32", "i", 4),
    6: ("float32", "f", 4),
    7: ("bool", "?", 1),
    10: ("uint64", "Q", 8),
    11: ("int64", "q", 8),
    12: ("float64", "d", 8),
}

# GGML types whose elements numpy understands: canonical modelseal dtype names.
_PLAIN_TYPES = {
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F64": "float64",
    "I8": "int8",
    "I16": "int16",
    "I32": "int32",
    "I64": "int64",
}


@dataclass(frozen=True)
class GgufLimits:
    """Bounds applied to untrusted GGUF headers (generous for real models)."""

    #: Most metadata keys (real files have tens to a few hundred).
    max_kv: int = 100_000
    #: Most tensors (the largest published models have a few thousand).
    max_tensors: int = 1_000_000
    #: Longest single string (chat templates are kilobytes; vocab entries bytes).
    max_string_bytes: int = 16 * 1024 * 1024
    #: Most array elements in the whole header (a 256k vocab with scores and types
    #: is under a million).
    max_array_elements: int = 32_000_000
    #: Deepest nesting of arrays in arrays.
    max_array_depth: int = 4


@dataclass(frozen=True)
class GgufTensor:
    """One tensor info record, as stored (GGML order: ``dims[0]`` varies fastest)."""

    name: str
    #: GGML type id and its name (``F32``, ``Q4_K``...).
    type_id: int
    type_name: str
    dims: tuple[int, ...]
    #: Offset relative to the start of the data section.
    relative_offset: int
    #: Bytes the tensor occupies, from the GGML block size of its type.
    nbytes: int

    @property
    def dtype(self) -> str:
        """The modelseal dtype name: ``float32``, ``bfloat16``... or ``q4_0``, ``q4_k``..."""
        return ggml_type_name(self.type_name)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape in numpy order (outermost dimension first)."""
        return tuple(reversed(self.dims))


@dataclass(frozen=True)
class GgufFile:
    """A validated GGUF header."""

    #: 2 or 3.
    version: int
    #: ``<`` for little-endian files (nearly all), ``>`` for big-endian ones.
    byte_order: str
    #: Metadata key -> value, in file order.
    metadata: Mapping[str, GgufValue]
    #: Metadata key -> GGUF type name (``string``, ``uint32``, ``array[string]``...).
    value_types: Mapping[str, str]
    #: Tensor infos in file order.
    tensors: tuple[GgufTensor, ...]
    #: ``general.alignment`` or the default 32.
    alignment: int
    #: Offset of the data section from the start of the GGUF bytes.
    data_offset: int
    #: Total size of the GGUF bytes (``-1`` if the stream did not say).
    size: int
    #: Bytes of the data section that belong to no tensor beyond alignment padding
    #: (hidden data between or after tensors).
    unused_bytes: int = 0
    #: Keys whose string values were not valid UTF-8 (decoded with replacement).
    invalid_utf8_keys: tuple[str, ...] = field(default=())

    @property
    def architecture(self) -> str | None:
        """``general.architecture`` if it is a string."""
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None


def ggml_type_name(type_name: str) -> str:
    """modelseal's dtype for a GGML type name (``F16`` -> ``float16``, ``Q4_K`` -> ``q4_k``)."""
    return _PLAIN_TYPES.get(type_name, type_name.lower())


def chat_templates(gguf: GgufFile) -> dict[str, GgufValue]:
    """Every metadata value whose key is a chat template (``tokenizer.chat_template*``)."""
    return {k: v for k, v in gguf.metadata.items() if k.startswith(CHAT_TEMPLATE_PREFIX)}


#: GGML type id -> (name, elements per block, bytes per block): ``ggml_type`` and the
#: ``type_traits`` table of ggml.c (the same as ``gguf.constants.GGML_QUANT_SIZES``; kept
#: here as data so a scan does not import the ``gguf`` package). Ids 4, 5 (removed
#: Q4_2/Q4_3) and 31-33, 36-38 (removed repacked Q4_0/IQ4_NL variants) are unassigned.
GGML_TYPES: Mapping[int, tuple[str, int, int]] = MappingProxyType(
    {
        0: ("F32", 1, 4),
        1: ("F16", 1, 2),
        2: ("Q4_0", 32, 18),
        3: ("Q4_1", 32, 20),
        6: ("Q5_0", 32, 22),
        7: ("Q5_1", 32, 24),
        8: ("Q8_0", 32, 34),
        9: ("Q8_1", 32, 40),
        10: ("Q2_K", 256, 84),
        11: ("Q3_K", 256, 110),
        12: ("Q4_K", 256, 144),
        13: ("Q5_K", 256, 176),
        14: ("Q6_K", 256, 210),
        15: ("Q8_K", 256, 292),
        16: ("IQ2_XXS", 256, 66),
        17: ("IQ2_XS", 256, 74),
        18: ("IQ3_XXS", 256, 98),
        19: ("IQ1_S", 256, 50),
        20: ("IQ4_NL", 32, 18),
        21: ("IQ3_S", 256, 110),
        22: ("IQ2_S", 256, 82),
        23: ("IQ4_XS", 256, 136),
        24: ("I8", 1, 1),
        25: ("I16", 1, 2),
        26: ("I32", 1, 4),
        27: ("I64", 1, 8),
        28: ("F64", 1, 8),
        29: ("IQ1_M", 256, 56),
        30: ("BF16", 1, 2),
        34: ("TQ1_0", 256, 54),
        35: ("TQ2_0", 256, 66),
        39: ("MXFP4", 32, 17),
        40: ("NVFP4", 64, 36),
        41: ("Q1_0", 128, 18),
    }
)


def read_gguf(entry: Entry, limits: GgufLimits = GgufLimits()) -> GgufFile:
    """Read and validate the header of a GGUF entry (only the header is read).

    Raises :class:`FormatError` (or :class:`LimitExceededError`) for anything
    malformed, truncated or beyond ``limits``.
    """
    with entry.open() as stream:
        return parse_gguf(stream, size=entry.size, path=entry.path, limits=limits)


def parse_gguf(
    stream: BinaryIO, *, size: int, path: str, limits: GgufLimits = GgufLimits()
) -> GgufFile:
    """Parse GGUF bytes from ``stream`` (positioned at the magic); ``size`` may be -1."""
    return _Parser(stream, size, path, limits).parse()


class _Cursor:
    """Buffered, bounded reads from a stream, tracking the absolute position."""

    def __init__(self, stream: BinaryIO, size: int, path: str) -> None:
        self._stream = stream
        self._size = size
        self._path = path
        self._buf = b""
        self._pos = 0  # position in _buf
        self.offset = 0  # absolute position of the next byte to consume

    @property
    def remaining(self) -> int | None:
        """Bytes left in the file, if its size is known."""
        return None if self._size < 0 else self._size - self.offset

    def read(self, n: int) -> bytes:
        remaining = self.remaining
        if remaining is not None and n > remaining:
            raise FormatError(
                f"{self._path}: truncated GGUF header (needs {n:,} bytes at offset "
                f"{self.offset:,}, {remaining:,} left)"
            )
        available = len(self._buf) - self._pos
        if available < n:
            parts = [self._buf[self._pos :]]
            missing = n - available
            while missing > 0:
                chunk = self._stream.read(max(missing, _CHUNK))
                if not chunk:
                    raise FormatError(
                        f"{self._path}: truncated GGUF header (stream ended at offset "
                        f"{self.offset + n - missing:,})"
                    )
                parts.append(chunk)
                missing -= len(chunk)
            self._buf = b"".join(parts)
            self._pos = 0
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        self.offset += n
        return data

    def read_strings(self, count: int, order: str, max_bytes: int) -> list[bytes]:
        """``count`` length-prefixed byte strings (the hot loop of vocabularies)."""
        length_of = struct.Struct(order + "Q").unpack_from
        out: list[bytes] = []
        append = out.append
        for _ in range(count):
            if len(self._buf) - self._pos < 8:
                (length,) = length_of(self.read(8))
            else:
                (length,) = length_of(self._buf, self._pos)
                self._pos += 8
                self.offset += 8
            if length > max_bytes:
                raise LimitExceededError(
                    f"{self._path}: GGUF string of {length:,} bytes at offset {self.offset:,} "
                    f"(limit {max_bytes:,})"
                )
            end = self._pos + length
            if end <= len(self._buf) and (self._size < 0 or self.offset + length <= self._size):
                append(self._buf[self._pos : end])
                self._pos = end
                self.offset += length
            else:
                append(self.read(length))
        return out

    def need(self, count: int, each: int, what: str) -> None:
        """Refuse a count whose minimal encoding cannot fit in the rest of the file."""
        remaining = self.remaining
        if remaining is not None and count * each > remaining:
            raise FormatError(
                f"{self._path}: GGUF {what} count {count:,} cannot fit in the "
                f"{remaining:,} bytes left in the file"
            )


class _Parser:
    def __init__(self, stream: BinaryIO, size: int, path: str, limits: GgufLimits) -> None:
        self.cur = _Cursor(stream, size, path)
        self.size = size
        self.path = path
        self.limits = limits
        self.order = "<"
        self.array_elements = 0
        self.invalid_utf8: list[str] = []
        self._current_key = ""

    def error(self, message: str) -> FormatError:
        return FormatError(f"{self.path}: {message}")

    def unpack(self, code: str, nbytes: int) -> int:
        value: int = struct.unpack(self.order + code, self.cur.read(nbytes))[0]
        return value

    def parse(self) -> GgufFile:
        magic = self.cur.read(4) if self.size < 0 or self.size >= 4 else b""
        if magic != _MAGIC:
            raise self.error("not a GGUF file (bad magic)")
        if self.size >= 0 and self.size < 24:
            raise self.error(f"truncated GGUF file ({self.size} bytes)")
        raw_version = self.cur.read(4)
        version = struct.unpack("<I", raw_version)[0]
        if version not in (2, 3):
            swapped = struct.unpack(">I", raw_version)[0]
            if swapped in (2, 3):
                self.order, version = ">", swapped
            elif version == 1:
                raise FormatError(
                    f"{self.path}: GGUF version 1 is not supported",
                    advice="convert the file with a current llama.cpp (GGUF v3)",
                )
            else:
                raise self.error(f"unsupported GGUF version {version}")
        n_tensors = self.unpack("Q", 8)
        n_kv = self.unpack("Q", 8)
        if n_kv > self.limits.max_kv:
            raise LimitExceededError(
                f"{self.path}: GGUF header declares {n_kv:,} metadata keys "
                f"(limit {self.limits.max_kv:,})"
            )
        if n_tensors > self.limits.max_tensors:
            raise LimitExceededError(
                f"{self.path}: GGUF header declares {n_tensors:,} tensors "
                f"(limit {self.limits.max_tensors:,})"
            )
        # Smallest key/value: 8-byte key length + 4-byte type + 1-byte value.
        self.cur.need(n_kv, 13, "metadata key")
        metadata: dict[str, GgufValue] = {}
        types: dict[str, str] = {}
        for _ in range(n_kv):
            key = self.string(key=True)
            if key in metadata:
                raise self.error(f"duplicate GGUF metadata key {key!r}")
            self._current_key = key
            type_id = self.unpack("I", 4)
            value, type_name = self.value(type_id, depth=0)
            metadata[key] = value
            types[key] = type_name
        alignment = _DEFAULT_ALIGNMENT
        if "general.alignment" in metadata:
            raw_alignment = metadata["general.alignment"]
            if (
                types["general.alignment"] != "uint32"
                or not isinstance(raw_alignment, int)
                or raw_alignment <= 0
                or raw_alignment & (raw_alignment - 1)
            ):
                raise self.error(
                    f"general.alignment must be a power-of-two uint32, got {raw_alignment!r}"
                )
            alignment = raw_alignment
        # Smallest tensor info: 8-byte name length + 4 n_dims + 4 type + 8 offset.
        self.cur.need(n_tensors, 24, "tensor")
        tensors = [self.tensor_info() for _ in range(n_tensors)]
        names = set()
        for tensor in tensors:
            if tensor.name in names:
                raise self.error(f"duplicate GGUF tensor name {tensor.name!r}")
            names.add(tensor.name)
        data_offset = _align(self.cur.offset, alignment)
        unused = self.check_layout(tensors, alignment, data_offset)
        return GgufFile(
            version=version,
            byte_order=self.order,
            metadata=metadata,
            value_types=types,
            tensors=tuple(tensors),
            alignment=alignment,
            data_offset=data_offset,
            size=self.size,
            unused_bytes=unused,
            invalid_utf8_keys=tuple(dict.fromkeys(self.invalid_utf8)),
        )

    def string(self, *, key: bool = False) -> str:
        length = self.unpack("Q", 8)
        if length > self.limits.max_string_bytes:
            raise LimitExceededError(
                f"{self.path}: GGUF string of {length:,} bytes at offset {self.cur.offset:,} "
                f"(limit {self.limits.max_string_bytes:,})"
            )
        raw = self.cur.read(length)
        if key:
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise self.error(
                    f"GGUF metadata key at offset {self.cur.offset - length:,} is not UTF-8"
                ) from None
        return self.decode(raw)

    def decode(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.invalid_utf8.append(self._current_key)
            return raw.decode("utf-8", errors="replace")

    def value(self, type_id: int, *, depth: int) -> tuple[GgufValue, str]:
        if type_id in _SCALARS:
            name, code, nbytes = _SCALARS[type_id]
            scalar: GgufValue = struct.unpack(self.order + code, self.cur.read(nbytes))[0]
            return scalar, name
        if type_id == _STRING:
            return self.string(), "string"
        if type_id == _ARRAY:
            return self.array(depth)
        raise self.error(f"unknown GGUF value type {type_id} for key {self._current_key!r}")

    def array(self, depth: int) -> tuple[GgufValue, str]:
        if depth >= self.limits.max_array_depth:
            raise LimitExceededError(
                f"{self.path}: GGUF arrays nested deeper than {self.limits.max_array_depth}"
            )
        item_type = self.unpack("I", 4)
        count = self.unpack("Q", 8)
        self.array_elements += count
        if self.array_elements > self.limits.max_array_elements:
            raise LimitExceededError(
                f"{self.path}: GGUF metadata arrays hold more than "
                f"{self.limits.max_array_elements:,} elements"
            )
        if item_type in _SCALARS:
            name, code, nbytes = _SCALARS[item_type]
            self.cur.need(count, nbytes, "array element")
            values = struct.unpack(f"{self.order}{count}{code}", self.cur.read(count * nbytes))
            return tuple(values), f"array[{name}]"
        if item_type == _STRING:
            self.cur.need(count, 8, "array element")
            raw = self.cur.read_strings(count, self.order, self.limits.max_string_bytes)
            return tuple(self.decode(item) for item in raw), "array[string]"
        if item_type == _ARRAY:
            self.cur.need(count, 12, "array element")
            items = [self.array(depth + 1) for _ in range(count)]
            inner = items[0][1] if items else "array"
            return tuple(v for v, _ in items), f"array[{inner}]"
        raise self.error(f"unknown GGUF array item type {item_type} for key {self._current_key!r}")

    def tensor_info(self) -> GgufTensor:
        self._current_key = "<tensor name>"
        name = self.string(key=True)
        if len(name.encode("utf-8")) > _MAX_NAME_BYTES:
            raise self.error(f"GGUF tensor name {name[:80]!r}... is longer than 63 bytes")
        n_dims = self.unpack("I", 4)
        if n_dims > _MAX_DIMS:
            raise self.error(f"GGUF tensor {name!r} has {n_dims} dimensions (max {_MAX_DIMS})")
        dims = struct.unpack(f"{self.order}{n_dims}Q", self.cur.read(8 * n_dims))
        type_id = self.unpack("I", 4)
        offset = self.unpack("Q", 8)
        known = GGML_TYPES.get(type_id)
        if known is None:
            raise self.error(f"GGUF tensor {name!r} has unknown GGML type {type_id}")
        type_name, block, block_bytes = known
        numel = 1
        for dim in dims:
            numel *= dim
        if numel >= 2**63:
            raise self.error(f"GGUF tensor {name!r} has an absurd shape {list(dims)}")
        if dims and dims[0] % block:
            raise self.error(
                f"GGUF tensor {name!r}: first dimension {dims[0]} is not a multiple of the "
                f"{type_name} block size {block}"
            )
        return GgufTensor(name, type_id, type_name, dims, offset, numel // block * block_bytes)

    def check_layout(self, tensors: Sequence[GgufTensor], alignment: int, data_offset: int) -> int:
        """Check offsets are aligned, inside the file and disjoint; return unused bytes."""
        for tensor in tensors:
            if tensor.relative_offset % alignment:
                raise self.error(
                    f"GGUF tensor {tensor.name!r} offset {tensor.relative_offset:,} is not "
                    f"aligned to {alignment}"
                )
        ordered = sorted(tensors, key=lambda t: (t.relative_offset, t.nbytes))
        position = 0  # end of the previous tensor, relative to the data section
        unused = 0
        for tensor in ordered:
            if tensor.relative_offset < position:
                raise self.error(f"GGUF tensor {tensor.name!r} overlaps the previous tensor")
            unused += max(0, tensor.relative_offset - _align(position, alignment))
            position = tensor.relative_offset + tensor.nbytes
        if self.size >= 0:
            if tensors and data_offset + position > self.size:
                last = max(ordered, key=lambda t: t.relative_offset + t.nbytes)
                raise self.error(
                    f"GGUF tensor {last.name!r} ends at byte {data_offset + position:,} but the "
                    f"file has {self.size:,} bytes (truncated?)"
                )
            data_size = max(0, self.size - data_offset)
            unused += max(0, data_size - _align(position, alignment))
        return unused


def _align(value: int, alignment: int) -> int:
    return value + (-value % alignment)


class GgufReader(TensorReader):
    """Tensor reader for ``.gguf`` files: absolute offsets and GGML byte sizes."""

    formats = frozenset({Format.GGUF})

    def tensors(self, entry: Entry) -> Sequence[TensorInfo]:
        """All tensors, validated (GGML quantized types keep their names, e.g. ``q4_k``)."""
        if entry.fs_path is None or entry.data_offset is None:
            raise FormatError(f"{entry.path}: GGUF data is not stored uncompressed on disk")
        gguf = read_gguf(entry)
        base = entry.data_offset + gguf.data_offset
        file: Path = entry.fs_path
        return [
            TensorInfo(
                name=t.name,
                dtype=t.dtype,
                shape=t.shape,
                file=file,
                offset=base + t.relative_offset,
                nbytes=t.nbytes,
                source=entry.path,
            )
            for t in gguf.tensors
        ]
