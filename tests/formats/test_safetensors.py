"""Strict safetensors header reading."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from modelseal.errors import FormatError, LimitExceededError
from modelseal.formats import describe_tensors, tensor_array, walk


def _write(path: Path, header: dict, data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def _entry(path: Path):
    return next(iter(walk([path])))


def test_reads_real_safetensors_files(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    tensors = {
        "w": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "h": torch.ones(4, dtype=torch.float16),
        "b": torch.full((2,), 2.0, dtype=torch.bfloat16),
    }
    save_file(tensors, tmp_path / "m.safetensors", metadata={"format": "pt"})
    infos = {t.name: t for t in describe_tensors(_entry(tmp_path / "m.safetensors"))}
    assert infos["w"].dtype == "float32" and infos["w"].shape == (2, 3)
    assert infos["h"].dtype == "float16"
    assert infos["b"].dtype == "bfloat16"
    np.testing.assert_array_equal(tensor_array(infos["w"]), tensors["w"].numpy())
    # bfloat16 comes back as its raw 16-bit patterns.
    assert tensor_array(infos["b"]).tolist() == [0x4000, 0x4000]


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "needs 8"),
        (
            {
                "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]},
            },
            b"\0" * 6,
            "overlaps",
        ),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "gap"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 12, "holds 12"),
        ({"a": {"dtype": "X9", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "unknown dtype"),
        ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "shape"),
        ({"__metadata__": {"k": 1}}, b"", "strings to strings"),
        ({"a": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "exactly dtype"),
    ],
)
def test_malformed_headers_are_errors(
    tmp_path: Path, header: dict, data: bytes, message: str
) -> None:
    path = _write(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(FormatError, match=message):
        describe_tensors(_entry(path))


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    one = '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    raw = f'{{"a": {one}, "a": {one}}}'.encode()
    path = tmp_path / "dup.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)
    with pytest.raises(FormatError, match="duplicate key"):
        describe_tensors(_entry(path))


def test_huge_header_length_is_refused_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.safetensors"
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", 200_000_000) + b"{")
        handle.truncate(200_000_100)  # sparse: claims a 200 MB header
    with pytest.raises(LimitExceededError, match="limit"):
        describe_tensors(_entry(path))
