"""Keras scanning: Lambda layers, dangerous and custom config objects, nested models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelseal.config import Settings
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry, walk_files
from modelseal.scan.engine import scan
from modelseal.scan.interface import ScanOptions
from modelseal.scan.model import Finding, Severity, Verdict
from modelseal.scan.rules import all_rules
from modelseal.scan.rules.keras import KERAS_CLASSES, KerasRule
from tests.samples.containers import plain_zip
from tests.samples.keras import (
    dense_layer,
    functional,
    keras3_lambda,
    legacy_lambda,
    legacy_sequential,
    sequential,
    write_h5,
    write_keras,
)

_RULE = KerasRule()
_EXEC_ACTIVATION = {
    "module": "builtins",
    "class_name": "function",
    "config": "exec",
    "registered_name": "function",
}


def _entry(path: Path) -> Entry:
    (entry,) = walk_files(path)
    return entry


def _check(path: Path, options: ScanOptions | None = None) -> list[Finding]:
    entry = _entry(path)
    assert entry.format in (Format.KERAS, Format.HDF5)
    return list(_RULE.check(entry, options or ScanOptions()))


def _keras(tmp_path: Path, config: dict[str, Any], name: str = "m.keras") -> Path:
    return write_keras(tmp_path / name, config)


def test_rule_is_registered() -> None:
    assert any(isinstance(rule, KerasRule) for rule in all_rules())
    assert {"Dense", "Lambda", "Sequential", "Functional"} <= KERAS_CLASSES


# -- benign look-alikes ----------------------------------------------------------------


def test_dense_only_keras_v3_is_clean(tmp_path: Path) -> None:
    path = _keras(tmp_path, sequential([dense_layer("d1", 8), dense_layer("lambda", 2)]))
    assert _entry(path).format == Format.KERAS
    assert _check(path) == []
    report = scan([path])
    assert [r.verdict for r in report.results] == [Verdict.CLEAN]


def test_dense_only_legacy_h5_is_clean(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "m.h5", legacy_sequential())
    assert _entry(path).format == Format.HDF5
    assert _check(path) == []
    assert scan([path]).results[0].verdict == Verdict.CLEAN


def test_weights_only_hdf5_is_not_a_model(tmp_path: Path) -> None:
    assert _check(write_h5(tmp_path / "w.h5", None)) == []


def test_keras_hub_objects_are_keras_own(tmp_path: Path) -> None:
    layer = {
        "module": "keras_hub.src.models.bert.bert_backbone",
        "class_name": "BertBackbone",
        "config": {"name": "bert"},
        "registered_name": "keras_hub>BertBackbone",
    }
    assert _check(_keras(tmp_path, sequential([layer]))) == []


# -- Lambda layers ---------------------------------------------------------------------


def test_dangerous_lambda_in_keras_v3(tmp_path: Path) -> None:
    path = _keras(tmp_path, sequential([dense_layer(), keras3_lambda()]))
    (finding,) = _check(path)
    assert finding.rule == "MS-KERAS-LAMBDA" and finding.severity == Severity.CRITICAL
    assert "os.system" in finding.message and "__import__" in finding.message
    assert "marshal" in finding.message
    assert finding.location == "Sequential(sequential)/layers[2]/Lambda(lambda)"
    assert scan([path]).results[0].verdict == Verdict.MALICIOUS


def test_harmless_lambda_is_still_reported_as_code(tmp_path: Path) -> None:
    path = _keras(tmp_path, sequential([keras3_lambda("lambda x: x * 2 + abs(x)")]))
    (finding,) = _check(path)
    assert (finding.rule, finding.severity) == ("MS-KERAS-LAMBDA", Severity.HIGH)
    assert "abs" in finding.message
    assert scan([path]).results[0].verdict == Verdict.SUSPICIOUS


def test_dangerous_lambda_in_legacy_h5(tmp_path: Path) -> None:
    source = "lambda x: eval(\"print('hi')\") or x"
    path = write_h5(tmp_path / "m.h5", legacy_sequential([legacy_lambda(source)]))
    (finding,) = _check(path)
    assert finding.severity == Severity.CRITICAL and "eval" in finding.message
    assert finding.location == "Sequential(sequential)/layers[2]/Lambda(lambda)"


def test_lambda_nested_in_submodels(tmp_path: Path) -> None:
    inner = functional([dense_layer("in_dense"), keras3_lambda(name="hidden")], name="inner")
    middle = sequential([inner], name="middle")
    path = _keras(tmp_path, sequential([dense_layer(), middle], name="outer"))
    (finding,) = _check(path)
    assert finding.severity == Severity.CRITICAL
    assert finding.location == (
        "Sequential(outer)/layers[2]/Sequential(middle)/layers[1]/Functional(inner)"
        "/layers[1]/Lambda(hidden)"
    )


def test_legacy_lambda_referencing_a_named_function(tmp_path: Path) -> None:
    layer = legacy_lambda()
    layer["config"].update(function="system", function_type="function", module="os")
    path = write_h5(tmp_path / "m.h5", legacy_sequential([layer]))
    (finding,) = _check(path)
    assert finding.severity == Severity.CRITICAL and "os.system" in finding.message


def test_undecodable_lambda_code_is_still_reported(tmp_path: Path) -> None:
    layer = keras3_lambda()
    layer["config"]["function"]["config"]["code"] = (
        "bm90IG1hcnNoYWwgZGF0YQ==\n"  # "not marshal data"
    )
    (finding,) = _check(_keras(tmp_path, sequential([layer])))
    assert finding.rule == "MS-KERAS-LAMBDA" and "strings" in finding.message


# -- objects outside Keras -------------------------------------------------------------


def test_builtins_exec_activation(tmp_path: Path) -> None:
    path = _keras(tmp_path, sequential([dense_layer(activation=_EXEC_ACTIVATION)]))
    (finding,) = _check(path)
    assert (finding.rule, finding.severity) == ("MS-KERAS-DANGEROUS-OBJECT", Severity.CRITICAL)
    assert "builtins.exec" in finding.message
    assert finding.location == "Sequential(sequential)/layers[1]/Dense(dense)/activation/function"


def test_os_system_object_in_legacy_config(tmp_path: Path) -> None:
    layer = {"class_name": "os.system", "config": {"name": "boom"}}
    (finding,) = _check(write_h5(tmp_path / "m.h5", legacy_sequential([layer])))
    assert finding.rule == "MS-KERAS-DANGEROUS-OBJECT"


def test_custom_object_from_another_package(tmp_path: Path) -> None:
    layer = {
        "module": "my_package.layers",
        "class_name": "MyDense",
        "config": {"name": "mine"},
        "registered_name": "MyPackage>MyDense",
    }
    (finding,) = _check(_keras(tmp_path, sequential([layer])))
    assert (finding.rule, finding.severity) == ("MS-KERAS-CUSTOM-OBJECT", Severity.MEDIUM)
    assert "my_package.layers" in finding.message


def test_custom_registered_name_with_keras_module(tmp_path: Path) -> None:
    layer = dense_layer()
    layer["registered_name"] = "Evil>Dense"
    (finding,) = _check(_keras(tmp_path, sequential([layer])))
    assert finding.rule == "MS-KERAS-CUSTOM-OBJECT"


def test_unknown_legacy_class_is_low(tmp_path: Path) -> None:
    layer = {"class_name": "AttentionWithContext", "config": {"name": "att"}}
    (finding,) = _check(write_h5(tmp_path / "m.h5", legacy_sequential([layer])))
    assert (finding.rule, finding.severity) == ("MS-KERAS-CUSTOM-OBJECT", Severity.LOW)


def test_user_dangerous_globals_apply(tmp_path: Path) -> None:
    layer = {"module": "corp.internal", "class_name": "Wipe", "config": {}}
    path = _keras(tmp_path, sequential([layer]))
    assert _check(path)[0].severity == Severity.MEDIUM
    options = ScanOptions(settings=Settings(dangerous_globals={"corp.internal": "*"}))
    assert _check(path, options)[0].rule == "MS-KERAS-DANGEROUS-OBJECT"


def _training(loss: Any) -> dict[str, Any]:
    return {
        "loss": loss,
        "metrics": ["mae"],
        "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001}},
    }


def test_legacy_training_config_is_checked(tmp_path: Path) -> None:
    clean = write_h5(tmp_path / "ok.h5", legacy_sequential(), _training("mse"))
    assert _check(clean) == []
    bad_loss = {"class_name": "subprocess.run", "config": {}}
    path = write_h5(tmp_path / "bad.h5", legacy_sequential(), _training(bad_loss))
    (finding,) = _check(path)
    assert finding.rule == "MS-KERAS-DANGEROUS-OBJECT"
    assert finding.location == "training_config/loss/subprocess.run"


# -- containers and bad input ----------------------------------------------------------


def test_keras_inside_a_zip(tmp_path: Path) -> None:
    inner = _keras(tmp_path, sequential([keras3_lambda()]), name="inner.keras")
    outer = tmp_path / "bundle.zip"
    outer.write_bytes(plain_zip({"models/m.keras": inner.read_bytes()}))
    report = scan([outer])
    assert report.results[0].verdict == Verdict.MALICIOUS


@pytest.mark.parametrize("config", ["{not json", "[" * 100_000 + "]" * 100_000])
def test_broken_config_is_an_error(tmp_path: Path, config: str) -> None:
    path = write_keras(tmp_path / "bad.keras", config)
    result = scan([path]).results[0]
    assert result.verdict == Verdict.ERROR


def test_broken_h5_model_config_is_an_error(tmp_path: Path) -> None:
    result = scan([write_h5(tmp_path / "bad.h5", "{oops")]).results[0]
    assert result.verdict == Verdict.ERROR and "model_config" in (result.error or "")


def test_truncated_h5_is_an_error(tmp_path: Path) -> None:
    good = write_h5(tmp_path / "m.h5", legacy_sequential()).read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(good[:600])
    result = scan([path]).results[0]
    assert result.verdict == Verdict.ERROR
