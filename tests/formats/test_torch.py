"""TorchZipReader: tensors of a torch zip checkpoint, read without unpickling."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from modelseal.errors import FormatError
from modelseal.formats.format import Format
from modelseal.formats.inventory import walk_files
from modelseal.formats.tensors import describe_tensors, tensor_array
from modelseal.formats.torch import TorchZipReader

torch = pytest.importorskip("torch")


def _entry(path: Path):  # type: ignore[no-untyped-def]
    (entry,) = walk_files(path)
    return entry


def _as_numpy(tensor) -> np.ndarray:  # type: ignore[no-untyped-def]
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(np.uint16)
    return tensor.numpy()


def test_state_dict_nested_names_dtypes_and_values(tmp_path: Path) -> None:
    state = {
        "a": torch.arange(6.0).reshape(2, 3),
        "b": {"c": torch.ones(4, dtype=torch.bfloat16)[1:], "d": [torch.tensor([1, 2])]},
        "h": torch.arange(5, dtype=torch.float16),
        "i8": torch.tensor([-1, 2], dtype=torch.int8),
        "flag": torch.tensor([True, False]),
        "f64": torch.linspace(0, 1, 7, dtype=torch.float64),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
    }
    path = tmp_path / "sd.pt"
    torch.save(state, path)
    entry = _entry(path)
    assert entry.format is Format.PYTORCH_ZIP
    infos = {t.name: t for t in describe_tensors(entry)}
    expected = {
        "a": state["a"],
        "b.c": state["b"]["c"],
        "b.d.0": state["b"]["d"][0],
        "h": state["h"],
        "i8": state["i8"],
        "flag": state["flag"],
        "f64": state["f64"],
        "scalar": state["scalar"],
        "empty": state["empty"],
    }
    assert set(infos) == set(expected)
    dtypes = {"b.c": "bfloat16", "h": "float16", "i8": "int8", "flag": "bool", "b.d.0": "int64"}
    for name, tensor in expected.items():
        info = infos[name]
        assert info.shape == tuple(tensor.shape)
        assert info.dtype == dtypes.get(name, str(tensor.dtype).removeprefix("torch."))
        assert info.nbytes == tensor.numel() * tensor.element_size()
        assert info.file == path
        np.testing.assert_array_equal(tensor_array(info), _as_numpy(tensor))


def test_module_checkpoint_uses_state_dict_names(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.BatchNorm1d(3))
    path = tmp_path / "net.pt"
    torch.save(net, path)
    infos = {t.name: t for t in TorchZipReader().tensors(_entry(path))}
    state = net.state_dict()
    assert set(infos) == set(state)
    for name, tensor in state.items():
        np.testing.assert_array_equal(tensor_array(infos[name]), tensor.numpy())


def test_non_contiguous_tensors_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "t.pt"
    torch.save({"t": torch.arange(12.0).reshape(3, 4).t(), "ok": torch.ones(2)}, path)
    assert [t.name for t in describe_tensors(_entry(path))] == ["ok"]


def test_overrunning_storage_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "t.pt"
    torch.save({"w": torch.ones(8)}, path)
    broken = tmp_path / "broken.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("data/0"):
                data = data[:8]
            dst.writestr(info, data)
    with pytest.raises(FormatError, match="overruns"):
        describe_tensors(_entry(broken))


def test_missing_data_pkl_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x/data/0", b"\x00" * 4)
    entry = _entry(path).with_format(Format.PYTORCH_ZIP)
    with pytest.raises(FormatError, match=r"no data\.pkl"):
        TorchZipReader().tensors(entry)


def test_reader_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    path = tmp_path / "t.pt"
    torch.save({"w": torch.ones(2)}, path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("unpickling")

    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    assert [t.name for t in describe_tensors(_entry(path))] == ["w"]
