"""The bounded protobuf wire-format reader."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelseal.errors import FormatError
from modelseal.formats.protobuf import (
    MAX_DEPTH,
    ProtobufError,
    WireType,
    field_string,
    iter_fields,
    message,
    read_varint,
)
from tests.samples.tensorflow import encode_field, encode_varint


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**63 - 1, 2**64 - 1])
def test_varint_round_trip(value: int) -> None:
    encoded = encode_varint(value)
    assert read_varint(encoded, 0) == (value, len(encoded))


def test_fields_of_every_wire_type() -> None:
    data = (
        encode_field(1, 150)
        + encode_field(2, "hi")
        + bytes([3 << 3 | 1])
        + (7).to_bytes(8, "little")
        + bytes([4 << 3 | 5])
        + (9).to_bytes(4, "little")
        + encode_field(5, encode_field(1, "nested"))
    )
    fields = list(iter_fields(data))
    assert [(f.number, f.wire_type) for f in fields] == [
        (1, WireType.VARINT),
        (2, WireType.LENGTH_DELIMITED),
        (3, WireType.FIXED64),
        (4, WireType.FIXED32),
        (5, WireType.LENGTH_DELIMITED),
    ]
    assert fields[0].value == 150
    assert field_string(fields[1]) == "hi"
    assert fields[2].value == 7 and fields[3].value == 9
    (inner,) = iter_fields(fields[4].data)
    assert field_string(inner) == "nested"


def test_string_limit_and_bad_utf8() -> None:
    (field,) = iter_fields(encode_field(1, b"ab\xffcd" * 100))
    text = field_string(field, limit=10)
    assert len(text) == 10 and "\ufffd" in text


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x08", "truncated varint"),
        (b"\x08" + b"\xff" * 11, "longer than 10"),
        (b"\x12\x05ab", "declares 5 bytes"),
        (b"\x19\x00\x00", "truncated fixed64"),
        (b"\x1d\x00", "truncated fixed32"),
        (b"\x0b", "wire type 3"),
        (b"\x00\x00", "field number 0"),
    ],
)
def test_malformed_input_raises_a_format_error(data: bytes, why: str) -> None:
    with pytest.raises(ProtobufError, match=why) as info:
        list(iter_fields(data))
    assert isinstance(info.value, FormatError)


def test_varint_on_length_delimited_access_is_refused() -> None:
    (field,) = iter_fields(encode_field(1, 5))
    with pytest.raises(ProtobufError):
        _ = field.data


def test_depth_is_bounded() -> None:
    assert list(message(b"", MAX_DEPTH)) == []
    with pytest.raises(ProtobufError, match="nested deeper"):
        message(b"", MAX_DEPTH + 1)


def test_huge_declared_length_is_refused_without_allocating() -> None:
    data = encode_varint(1 << 3 | 2) + encode_varint(2**62) + b"x"
    with pytest.raises(ProtobufError, match="declares"):
        list(iter_fields(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_fuzz_only_protobuf_errors(data: bytes) -> None:
    try:
        for field in iter_fields(data):
            if field.wire_type == WireType.LENGTH_DELIMITED:
                assert len(field.data) <= len(data)
                list(iter_fields(field.data))
    except ProtobufError:
        pass
