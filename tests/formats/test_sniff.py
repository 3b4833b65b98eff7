"""Format detection by content, never by name."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from modelseal.formats import Format, detect
from modelseal.formats.sniff import classify_tar_names, classify_zip_names


def _detect_file(path: Path) -> Format:
    data = path.read_bytes()
    return detect(
        data[:65536], name=str(path), size=len(data), open_stream=lambda: open(path, "rb")
    )


def _safetensors_bytes() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\x00" * 8


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (pickle.dumps({"a": 1}, protocol=2), Format.PICKLE),
        (pickle.dumps({"a": 1}, protocol=5), Format.PICKLE),
        (pickle.dumps([1, 2, 3], protocol=0), Format.PICKLE),
        (b"GGUF\x03\x00\x00\x00" + b"\x00" * 16, Format.GGUF),
        (b"\x93NUMPY\x01\x00" + b"\x00" * 10, Format.NUMPY),
        (b"\x89HDF\r\n\x1a\n" + b"\x00" * 20, Format.HDF5),
        (gzip.compress(b"hello", mtime=0), Format.GZIP),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", Format.SEVEN_ZIP),
        (b"\x04\x22\x4d\x18\x64\x40\xa7" + b"\x00" * 8, Format.LZ4),
        (b'{"architectures": ["Bert"]}', Format.JSON),
        (b"just some words\n", Format.TEXT),
        (b"\x00\x01\x02\x03garbage\xff\xfe", Format.UNKNOWN),
        (b"", Format.EMPTY),
    ],
)
def test_detects_by_content(tmp_path: Path, payload: bytes, expected: Format) -> None:
    # A misleading extension must not matter.
    path = tmp_path / "model.bin"
    path.write_bytes(payload)
    assert _detect_file(path) == expected


def test_safetensors_needs_consistent_header_length(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(_safetensors_bytes())
    assert _detect_file(path) == Format.SAFETENSORS
    path.write_bytes(struct.pack("<Q", 10**9) + b"{}")  # claims more bytes than the file has
    assert _detect_file(path) != Format.SAFETENSORS


def test_python_source_by_name_or_shebang(tmp_path: Path) -> None:
    code = tmp_path / "modeling_custom.py"
    code.write_text("import torch\n")
    assert _detect_file(code) == Format.PYTHON
    script = tmp_path / "run"
    script.write_text("#!/usr/bin/env python3\nprint('hi')\n")
    assert _detect_file(script) == Format.PYTHON


def test_zip_kinds_by_member_names() -> None:
    assert classify_zip_names(["archive/data.pkl", "archive/data/0"]) == Format.PYTORCH_ZIP
    assert (
        classify_zip_names(["m/data.pkl", "m/constants.pkl", "m/code/__torch__/x.py"])
        == Format.TORCHSCRIPT
    )
    assert classify_zip_names(["a.npy", "b.npy"]) == Format.NUMPY_NPZ
    assert classify_zip_names(["config.json", "metadata.json", "model.weights.h5"]) == Format.KERAS
    assert classify_zip_names(["readme.txt"]) == Format.ZIP


def test_zip_and_tar_files(tmp_path: Path) -> None:
    archive = tmp_path / "x.dat"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({}))
    assert _detect_file(archive) == Format.PYTORCH_ZIP

    tar_path = tmp_path / "legacy.tar"
    with tarfile.open(tar_path, "w") as tar:
        for name in ("sys_info", "pickle", "storages", "tensors"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    assert _detect_file(tar_path) == Format.PYTORCH_LEGACY_TAR
    assert classify_tar_names(["a.txt"]) == Format.TAR


def test_broken_zip_is_still_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    assert _detect_file(path) == Format.ZIP


def test_torch_checkpoints_are_recognised(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(2, 2)
    torch.save(model.state_dict(), tmp_path / "new.pt")
    torch.save(model.state_dict(), tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(model), tmp_path / "script.pt")
    assert _detect_file(tmp_path / "new.pt") == Format.PYTORCH_ZIP
    assert _detect_file(tmp_path / "old.pt") == Format.PYTORCH_LEGACY
    assert _detect_file(tmp_path / "script.pt") == Format.TORCHSCRIPT


def test_is_protobuf() -> None:
    from modelseal.formats.sniff import is_protobuf

    message = b"\x0a\x05hello\x12\x02hi"
    assert is_protobuf(message, len(message))
    assert not is_protobuf(b"\xff\xff\xff\xff", 4)
    assert not is_protobuf(b"\x0a\x50short", 7)  # a field that runs past the file
    # keras_metadata.pb is one repeated field; a head can end inside a field's key.
    # keras_metadata.pb is one repeated field; a head can end inside a length varint.
    head = b"\x0a\x7f" + b"A" * 127 + b"\x0a\x80"
    assert is_protobuf(head, 10_000)
    assert not is_protobuf(head, len(head))  # ...but not at the end of the file
