"""A tiny, bounded reader of the protobuf wire format (no schema, no generated code).

Model formats built on protobuf (TensorFlow's ``saved_model.pb``) are read here by field
number, without TensorFlow or ``protobuf`` installed. Only what a scanner needs is
supported: varints, fixed 32/64-bit values and length-delimited fields, which callers
descend into as nested messages or decode as strings. Every read is bounds-checked;
hostile input raises :class:`ProtobufError`, never ``IndexError`` or a hang, and
nesting is limited by :data:`MAX_DEPTH` (enforced by callers through :func:`message`).

>>> [(f.number, f.wire_type) for f in iter_fields(b"\\x08\\x96\\x01\\x12\\x02hi")]
[(1, 0), (2, 2)]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from modelseal.errors import FormatError

__all__ = [
    "MAX_DEPTH",
    "Field",
    "ProtobufError",
    "WireType",
    "field_bytes",
    "field_string",
    "iter_fields",
    "message",
    "read_varint",
]

#: Deepest nesting of messages a caller may descend into.
MAX_DEPTH = 100


class ProtobufError(FormatError):
    """Bytes that are not a well-formed protobuf message."""


class WireType:
    """Protobuf wire types (the low three bits of a field key)."""

    VARINT = 0
    FIXED64 = 1
    LENGTH_DELIMITED = 2
    START_GROUP = 3
    END_GROUP = 4
    FIXED32 = 5


@dataclass(frozen=True)
class Field:
    """One field of a message: its number, wire type and raw value.

    ``value`` is an ``int`` for varint and fixed fields and a ``memoryview`` (no copy)
    of the payload for length-delimited fields.
    """

    number: int
    wire_type: int
    value: int | memoryview

    @property
    def data(self) -> memoryview:
        """The payload of a length-delimited field (raises for other wire types)."""
        if not isinstance(self.value, memoryview):
            raise ProtobufError(f"field {self.number} is not length-delimited")
        return self.value


def read_varint(data: memoryview | bytes, pos: int) -> tuple[int, int]:
    """Decode a varint at ``pos``; return ``(value, next position)``."""
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise ProtobufError("varint longer than 10 bytes")


def iter_fields(data: memoryview | bytes) -> Iterator[Field]:
    """Yield the fields of one message, in wire order."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    pos, end = 0, len(view)
    while pos < end:
        key, pos = read_varint(view, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0 is invalid")
        if wire == WireType.VARINT:
            value, pos = read_varint(view, pos)
            yield Field(number, wire, value)
        elif wire == WireType.LENGTH_DELIMITED:
            length, pos = read_varint(view, pos)
            if length > end - pos:
                raise ProtobufError(
                    f"field {number} declares {length:,} bytes but only {end - pos:,} remain"
                )
            yield Field(number, wire, view[pos : pos + length])
            pos += length
        elif wire == WireType.FIXED64:
            if pos + 8 > end:
                raise ProtobufError("truncated fixed64 field")
            yield Field(number, wire, int.from_bytes(view[pos : pos + 8], "little"))
            pos += 8
        elif wire == WireType.FIXED32:
            if pos + 4 > end:
                raise ProtobufError("truncated fixed32 field")
            yield Field(number, wire, int.from_bytes(view[pos : pos + 4], "little"))
            pos += 4
        else:
            # Groups are deprecated and unused by every model format we read.
            raise ProtobufError(f"unsupported wire type {wire} in field {number}")


def message(data: memoryview | bytes, depth: int) -> Iterator[Field]:
    """:func:`iter_fields` for a message nested ``depth`` levels deep (bounded)."""
    if depth > MAX_DEPTH:
        raise ProtobufError(f"messages nested deeper than {MAX_DEPTH} levels")
    return iter_fields(data)


def field_bytes(field: Field) -> bytes:
    """The payload of a length-delimited field as bytes."""
    return bytes(field.data)


def field_string(field: Field, *, limit: int = 4096) -> str:
    """A ``string`` field decoded as UTF-8 (invalid bytes replaced), cut at ``limit`` chars."""
    data = field.data
    return bytes(data[: limit * 4]).decode("utf-8", errors="replace")[:limit]
