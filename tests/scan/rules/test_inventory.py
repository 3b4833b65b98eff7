"""Broken is never clean: a file whose name claims a model format and whose content does
not parse as that family is an ``error``; benign look-alikes stay clean."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modelseal.scan.engine import scan
from modelseal.scan.model import FileResult, Verdict
from tests.samples.models import write_safetensors
from tests.samples.pickles import payload_bytes

_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


def _result(path: Path) -> FileResult:
    return scan([path]).results[0]


def _safetensors_bytes(tmp_path: Path) -> bytes:
    path = write_safetensors(tmp_path / "src.safetensors", {"w": np.zeros(64, np.float32)})
    data = path.read_bytes()
    path.unlink()
    return data


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _torch_zip() -> bytes:
    """The layout ``torch.save`` writes, holding a pickle of plain data."""
    return _zip(
        {"archive/data.pkl": pickle.dumps({"step": 1}, 2), "archive/version": b"3\n"},
        zipfile.ZIP_STORED,
    )


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _legacy_tar_polyglot(payload: bytes | None = None) -> bytes:
    """A valid tar (legacy torch layout) whose first bytes are the legacy torch magic."""
    plain = pickle.dumps({"a": 1}, 2)
    data = bytearray(_tar({"sys_info": plain, "pickle": payload or plain, "storages": plain}))
    data[: len(_LEGACY_MAGIC)] = _LEGACY_MAGIC
    data[148:156] = b" " * 8  # the checksum is computed with its own field as spaces
    data[148:156] = f"{sum(data[:512]):06o}\0 ".encode()
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as archive:  # still a readable tar
        assert len(archive.getmembers()) == 3
    return bytes(data)


_BROKEN: dict[str, Callable[[Path], bytes]] = {
    "model.pt": lambda _: b"\x00\x01 neither a zip nor a legacy torch file " * 8,
    "weights.pth": lambda _: os.urandom(3000),
    "corrupt.pkl": lambda _: b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00\x8c\x05hel",
    "garbage.pkl": lambda _: b"this is not a pickle at all\n",
    "broken.zip": lambda _: b"PK\x03\x04" + os.urandom(200),
    "bad-member.zip": lambda _: _zip({"bad.pkl": os.urandom(512), "readme.txt": b"hi"}),
    "polyglot.pt": lambda _: _legacy_tar_polyglot(),
    "pytorch_model.bin": lambda _: os.urandom(4096),
    "pytorch_model-00001-of-00002.bin": lambda _: b"",
    "header-cut.safetensors": lambda tmp: _safetensors_bytes(tmp)[:40],
    "data-cut.safetensors": lambda tmp: _safetensors_bytes(tmp)[:-100],
    "model.safetensors": lambda _: b"",
    "model.onnx": lambda _: os.urandom(1000),
    "model.gguf": lambda _: b"not gguf" * 10,
    "x.npy": lambda _: b"\x00" * 100,
    "model.h5": lambda _: b"{}",
    "archive.7z": lambda _: b"PK\x05\x06" + bytes(18),
    "model.tar": lambda _: b"not a tar\n" * 100,
    "model.tar.gz": lambda _: gzip.compress(b"not a tar, only text\n" * 10),
    "weights.pkl.gz": lambda _: gzip.compress(os.urandom(300)),
    "nested.zip": lambda _: _zip({"inner/model.safetensors": b"\x08" + bytes(20)}),
    "zip-named.safetensors": lambda _: _zip({"a.txt": b"x"}),
    "text.safetensors": lambda _: b"just text\n",
    "model.pkl.lz4": lambda _: b"\x04\x22\x4d\x18" + bytes(30),
}


@pytest.mark.parametrize("name", sorted(_BROKEN))
def test_claimed_model_that_does_not_parse_is_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(_BROKEN[name](tmp_path))
    report = scan([path])
    assert report.results[0].verdict is Verdict.ERROR, report.results
    broken = [r for r in report.results if r.error is not None]
    assert broken and all("\n" not in (r.error or "") for r in broken)


def test_error_says_what_the_name_claims(tmp_path: Path) -> None:
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(os.urandom(256))
    error = _result(path).error or ""
    assert "named like a PyTorch weight file" in error and "detected: unknown" in error


def test_lfs_pointer_is_error_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 12345\n"
    )
    result = _result(path)
    assert result.verdict is Verdict.ERROR and result.findings == ()
    assert result.error == (
        f"{path}: named like a safetensors file, but it is a Git LFS pointer, not the file "
        "(run git lfs pull and scan again)"
    )


_BENIGN: dict[str, Callable[[Path], bytes]] = {
    "st.bin": _safetensors_bytes,
    "pytorch_model.bin": lambda _: _torch_zip(),
    "model.ckpt": lambda _: _torch_zip(),
    "vocab.txt": lambda _: b"hello\nworld\n",
    "config.json": lambda _: b'{"hidden_size": 8}',
    "README.md": lambda _: b"# A model\n",
    ".gitattributes": lambda _: b"",
    "plain.pkl": lambda _: pickle.dumps([1, 2, 3], 0),  # protocol 0: text, no PROTO
    "data.pkl.gz": lambda _: gzip.compress(pickle.dumps({"a": 1}, 4)),
    "graph.pb": lambda _: b"\x0a\x05hello\x12\x02hi",
    "group1-shard1of1.bin": lambda _: np.arange(64, dtype=np.float32).tobytes(),
    "ggml-base.en.bin": lambda _: b"lmgg" + np.arange(64, dtype=np.int32).tobytes(),
    "cc.en.300.bin": lambda _: b"\xba\x16\x4f\x2f\x0c\x00\x00\x00" + bytes(100),
}


@pytest.mark.parametrize("name", sorted(_BENIGN))
def test_benign_lookalike_is_clean(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(_BENIGN[name](tmp_path))
    report = scan([path])
    assert [r.verdict for r in report.results] == [Verdict.CLEAN], report.results


def test_safetensors_error_is_one_reason(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(_safetensors_bytes(tmp_path)[:40])
    error = _result(path).error or ""
    assert error.count(str(path)) == 1 and "header length" in error


@pytest.mark.parametrize("sibling", ["model.xml", "model.onnx"])
def test_raw_bin_described_by_a_sibling_is_not_claimed(tmp_path: Path, sibling: str) -> None:
    raw = tmp_path / "model.bin"
    raw.write_bytes(np.arange(100, dtype=np.float32).tobytes())
    assert _result(raw).verdict is Verdict.ERROR
    (tmp_path / sibling).write_bytes(b"<net/>" if sibling.endswith(".xml") else b"")
    assert _result(raw).verdict is Verdict.CLEAN


def test_polyglot_pickle_and_tar_scans_both_readings(tmp_path: Path) -> None:
    # torch.load opens a tar first: the payload in the tar's ``pickle`` member would run.
    path = tmp_path / "model.pt"
    path.write_bytes(_legacy_tar_polyglot(payload_bytes(2)))
    report = scan([path])
    assert report.results[0].format == "pytorch-legacy"
    assert report.results[0].verdict is Verdict.MALICIOUS
    assert any(r.path.endswith("model.pt!pickle") for r in report.results[1:])


def test_pickle_with_ustar_text_is_not_a_tar(tmp_path: Path) -> None:
    path = tmp_path / "data.pkl"
    data = pickle.dumps(["x" * 247 + "ustar" + "y" * 300], 2)
    assert data[257:262] == b"ustar"  # where a tar header has its magic
    path.write_bytes(data)
    report = scan([path])
    assert [r.verdict for r in report.results] == [Verdict.CLEAN]
