"""The bounded 7z reader on its own: listing, extraction, limits."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO

import pytest

from modelseal.errors import FormatError, LimitExceededError
from modelseal.formats.sevenzip import extract_7z, list_7z
from tests.samples.containers import seven_zip


def _opener(data: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(data)


def test_list_and_extract() -> None:
    data = seven_zip({"a.txt": b"alpha", "d/b.bin": b"\x00" * 5000, "empty": b""})
    listing = list_7z(_opener(data), "x.7z", 100)
    assert not listing.encrypted
    assert [(m.name, m.size) for m in listing.members] == [
        ("a.txt", 5),
        ("d/b.bin", 5000),
        ("empty", 0),
    ]
    members = extract_7z(_opener(data), "x.7z", max_member_bytes=10_000, max_total_bytes=20_000)
    size, opener = members["d/b.bin"]
    assert size == 5000
    with opener() as first, opener() as second:
        assert first.read(3) == b"\x00" * 3 and second.read() == b"\x00" * 5000
    with members["a.txt"][1]() as stream:
        assert stream.read() == b"alpha"


def test_limits_count_bytes_written_not_declared() -> None:
    data = seven_zip({"a.bin": b"\x01" * 3000, "b.bin": b"\x02" * 3000})
    with pytest.raises(LimitExceededError, match=r"a\.bin expands beyond the 2,000-byte limit"):
        extract_7z(_opener(data), "x.7z", max_member_bytes=2000, max_total_bytes=10_000)
    with pytest.raises(LimitExceededError, match="7z archive expands beyond the 5,000-byte"):
        extract_7z(_opener(data), "x.7z", max_member_bytes=4000, max_total_bytes=5000)
    with pytest.raises(LimitExceededError, match="member limit"):
        list_7z(_opener(data), "x.7z", 1)


@pytest.mark.parametrize("cut", [12, 40, -20])
def test_damaged_archive_is_a_format_error(cut: int) -> None:
    data = seven_zip({"a.txt": b"alpha" * 100})

    def read_all() -> None:
        list_7z(_opener(data[:cut]), "x.7z", 100)
        extract_7z(_opener(data[:cut]), "x.7z", max_member_bytes=10**6, max_total_bytes=10**6)

    with pytest.raises(FormatError):
        read_all()


def test_encrypted_archive_is_listed_as_encrypted() -> None:
    data = seven_zip({"a.txt": b"secret"}, password="pw")
    assert list_7z(_opener(data), "x.7z", 10).encrypted
    with pytest.raises(FormatError):
        extract_7z(_opener(data), "x.7z", max_member_bytes=10**6, max_total_bytes=10**6)
