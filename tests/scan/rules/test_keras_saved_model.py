"""Keras inside TensorFlow SavedModels: ``keras_metadata.pb`` (protobuf holding layer JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelseal.scan.engine import scan
from modelseal.scan.model import FileResult, Severity, Verdict
from tests.samples.keras import legacy_lambda, legacy_sequential
from tests.samples.tensorflow import (
    keras_metadata,
    keras_object_graph,
    keras_saved_model_nodes,
    saved_model,
    write_saved_model,
)


def _saved_model_dir(tmp_path: Path, extra_layers: list[dict[str, Any]] | None = None) -> Path:
    directory = tmp_path / "export"
    write_saved_model(directory, saved_model())
    nodes = keras_saved_model_nodes(legacy_sequential(extra_layers))
    (directory / "keras_metadata.pb").write_bytes(keras_metadata(nodes))
    (directory / "fingerprint.pb").write_bytes(b"\x08\x96\x01\x10\x02")
    return directory


def _metadata_result(directory: Path) -> FileResult:
    (result,) = [r for r in scan([directory]).results if r.path.endswith("keras_metadata.pb")]
    return result


def test_plain_dense_saved_model_is_clean(tmp_path: Path) -> None:
    report = scan([_saved_model_dir(tmp_path)])
    metadata = next(r for r in report.results if r.path.endswith("keras_metadata.pb"))
    assert metadata.format == "keras-metadata"
    assert all(r.verdict is Verdict.CLEAN for r in report.results)
    assert not [f for r in report.results for f in r.findings]


def test_dangerous_lambda_is_malicious_and_reported_once(tmp_path: Path) -> None:
    result = _metadata_result(_saved_model_dir(tmp_path, [legacy_lambda()]))
    assert result.verdict is Verdict.MALICIOUS
    (finding,) = result.findings  # root config, model_config and the layer node: one object
    assert finding.rule == "MS-KERAS-LAMBDA"
    assert finding.severity is Severity.CRITICAL
    assert "os" in finding.message and "system" in finding.message
    assert finding.location.startswith("root/Sequential(sequential)/layers[2]/Lambda(lambda)")


def test_any_lambda_is_high_by_default(tmp_path: Path) -> None:
    result = _metadata_result(_saved_model_dir(tmp_path, [legacy_lambda("lambda x: x * 2")]))
    assert [(f.rule, f.severity) for f in result.findings] == [("MS-KERAS-LAMBDA", Severity.HIGH)]
    assert result.verdict is Verdict.SUSPICIOUS


def test_lambda_only_in_a_layer_node_is_found(tmp_path: Path) -> None:
    directory = tmp_path / "export"
    write_saved_model(directory, saved_model())
    nodes = keras_saved_model_nodes(legacy_sequential())
    lam = legacy_lambda()
    nodes.append(("root.layer-9", "_tf_keras_layer", {"class_name": "Lambda", **lam}))
    (directory / "keras_metadata.pb").write_bytes(keras_metadata(nodes))
    result = _metadata_result(directory)
    assert result.verdict is Verdict.MALICIOUS
    assert result.findings[0].location.startswith("root.layer-9/Lambda(lambda)")


def test_foreign_modules_and_classes_are_reported(tmp_path: Path) -> None:
    foreign = {"module": "evil_layers", "class_name": "Backdoor", "config": {"name": "bd"}}
    registered = {"class_name": "evil_pkg>Hook", "config": {"name": "hook"}}
    dotted = {"class_name": "subprocess.check_output", "config": {"name": "run"}}
    result = _metadata_result(_saved_model_dir(tmp_path, [foreign, registered, dotted]))
    found = {(f.rule, f.severity, f.location.rsplit("/", 1)[-1]) for f in result.findings}
    assert ("MS-KERAS-CUSTOM-OBJECT", Severity.MEDIUM, "Backdoor(bd)") in found  # module named
    assert ("MS-KERAS-CUSTOM-OBJECT", Severity.LOW, "Backdoor(bd)") in found  # layer node
    assert ("MS-KERAS-CUSTOM-OBJECT", Severity.MEDIUM, "evil_pkg>Hook(hook)") in found
    assert ("MS-KERAS-DANGEROUS-OBJECT", Severity.CRITICAL, "subprocess.check_output(run)") in found
    assert result.verdict is Verdict.MALICIOUS


def test_broken_keras_metadata_is_an_error(tmp_path: Path) -> None:
    directory = _saved_model_dir(tmp_path, [legacy_lambda("lambda x: x")])
    path = directory / "keras_metadata.pb"
    path.write_bytes(path.read_bytes()[:-7])
    result = _metadata_result(directory)
    assert result.verdict is Verdict.ERROR
    assert result.error


def test_keras_objects_inside_an_older_saved_model_pb_are_checked(tmp_path: Path) -> None:
    # TF 2.0-2.4 kept each layer's metadata in saved_model.pb's object graph.
    for name, layers in (("bad", [legacy_lambda()]), ("good", None)):
        nodes = keras_saved_model_nodes(legacy_sequential(layers))
        write_saved_model(tmp_path / name, saved_model(object_graph=keras_object_graph(nodes)))
    results = {Path(r.path).parent.name: r for r in scan([tmp_path]).results}
    bad, good = results["bad"], results["good"]
    assert bad.format == "tf-savedmodel" and bad.verdict is Verdict.MALICIOUS
    (finding,) = bad.findings
    assert finding.rule == "MS-KERAS-LAMBDA"
    assert finding.location.startswith("object_graph/node[0]/Sequential(sequential)/layers[2]")
    assert good.verdict is Verdict.CLEAN and not good.findings
