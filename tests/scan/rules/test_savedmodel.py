"""SavedModel graph scanning, on protobufs written by field number."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry, walk_files
from modelseal.scan.engine import scan
from modelseal.scan.interface import ScanOptions
from modelseal.scan.model import Finding, Severity, Verdict
from modelseal.scan.rules import all_rules
from modelseal.scan.rules.savedmodel import (
    DANGEROUS_OPS,
    SavedModelRule,
    graph_ops,
)
from tests.samples.containers import plain_zip
from tests.samples.tensorflow import (
    BENIGN_OPS,
    encode_field,
    node_def,
    saved_model,
    write_saved_model,
)

_RULE = SavedModelRule()


def _entry(path: Path) -> Entry:
    (entry,) = walk_files(path)
    return entry


def _check(path: Path) -> list[Finding]:
    entry = _entry(path)
    assert entry.format == Format.TF_SAVEDMODEL
    return list(_RULE.check(entry, ScanOptions()))


def test_rule_is_registered() -> None:
    assert any(isinstance(rule, SavedModelRule) for rule in all_rules())


def test_deny_table_is_well_formed() -> None:
    ids = {info.id for info in SavedModelRule.infos}
    for op, risk in DANGEROUS_OPS.items():
        assert op and op[0].isupper(), op
        assert risk.rule.id in ids and risk.reason
    for op in (
        "PyFunc",
        "EagerPyFunc",
        "PyFuncStateless",
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
    ):
        assert op in DANGEROUS_OPS
    for op in ("SaveV2", "RestoreV2", "ReadVariableOp", "MatMul"):
        assert op not in DANGEROUS_OPS


def test_graph_ops_walks_graph_and_library() -> None:
    data = saved_model([("x", "Placeholder")], [("__inference_f_12", [("call", "EagerPyFunc")])])
    ops = list(graph_ops(data))
    assert [(o.op, o.node, o.scope) for o in ops] == [
        ("Placeholder", "x", "meta_graphs[0]/graph"),
        ("EagerPyFunc", "call", "meta_graphs[0]/function/__inference_f_12"),
    ]


def test_ordinary_model_is_clean(tmp_path: Path) -> None:
    path = write_saved_model(tmp_path / "model", saved_model(BENIGN_OPS, [("f", BENIGN_OPS)]))
    assert _check(path) == []
    assert scan([tmp_path / "model"]).results[0].verdict == Verdict.CLEAN


def test_file_read_and_write_ops(tmp_path: Path) -> None:
    nodes = [*BENIGN_OPS, ("steal", "ReadFile"), ("drop", "WriteFile"), ("ls", "MatchingFiles")]
    findings = _check(write_saved_model(tmp_path / "m", saved_model(nodes)))
    got = {(f.location, f.rule, f.severity) for f in findings}
    assert got == {
        ("meta_graphs[0]/graph/node/steal", "MS-TF-FILE-READ", Severity.HIGH),
        ("meta_graphs[0]/graph/node/drop", "MS-TF-FILE-WRITE", Severity.CRITICAL),
        ("meta_graphs[0]/graph/node/ls", "MS-TF-FILE-READ", Severity.HIGH),
    }


@pytest.mark.parametrize("op", ["PyFunc", "EagerPyFunc", "PyFuncStateless"])
def test_python_ops_in_library_functions_are_malicious(tmp_path: Path, op: str) -> None:
    data = saved_model(BENIGN_OPS, [("__inference_serve_99", [("py", op)])], meta_graphs=2)
    path = write_saved_model(tmp_path / "m", data)
    findings = _check(path)
    assert [f.location for f in findings] == [
        "meta_graphs[0]/function/__inference_serve_99/node/py",
        "meta_graphs[1]/function/__inference_serve_99/node/py",
    ]
    assert {f.rule for f in findings} == {"MS-TF-PYTHON-OP"}
    assert scan([path]).results[0].verdict == Verdict.MALICIOUS


def test_saved_model_inside_a_zip(tmp_path: Path) -> None:
    data = saved_model([("x", "PyFunc")])
    archive = tmp_path / "model.zip"
    archive.write_bytes(plain_zip({"export/saved_model.pb": data}))
    report = scan([archive])
    assert report.results[0].verdict == Verdict.MALICIOUS
    assert any(r.path.endswith("!export/saved_model.pb") for r in report.results)


def test_malformed_node_is_an_error_not_clean(tmp_path: Path) -> None:
    broken_node = node_def("a", "Relu")[:-3] + b"\x12\x7f"  # op field claims 127 bytes
    graph = encode_field(1, broken_node)
    data = encode_field(1, 1) + encode_field(2, encode_field(2, graph))
    path = write_saved_model(tmp_path / "m", data)
    result = scan([path]).results[0]
    assert result.format == "tf-savedmodel"
    assert result.verdict == Verdict.ERROR
    assert "declares" in (result.error or "")


def test_deeply_nested_garbage_does_not_crash(tmp_path: Path) -> None:
    data = b"x"
    for _ in range(300):
        data = encode_field(2, data)
    path = write_saved_model(tmp_path / "m", encode_field(1, 1) + data)
    result = scan([path]).results[0]
    assert result.verdict in (Verdict.CLEAN, Verdict.ERROR)  # walks only known fields
    assert not result.findings


def test_truncated_saved_model_is_an_error(tmp_path: Path) -> None:
    data = saved_model(BENIGN_OPS, [("f", BENIGN_OPS)])
    path = write_saved_model(tmp_path / "m", data[: len(data) // 2])
    assert _entry(path).format == Format.TF_SAVEDMODEL
    result = scan([path]).results[0]
    assert result.verdict == Verdict.ERROR


def test_truncated_protobuf_with_another_name_is_not_a_saved_model(tmp_path: Path) -> None:
    data = saved_model()
    path = tmp_path / "graph.pb"
    path.write_bytes(data[: len(data) // 2])
    assert _entry(path).format != Format.TF_SAVEDMODEL
