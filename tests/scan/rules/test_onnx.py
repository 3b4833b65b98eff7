"""ONNX scanning: external data escapes, custom domains, nested graphs and functions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry, walk_files
from modelseal.scan.engine import scan
from modelseal.scan.interface import ScanOptions
from modelseal.scan.model import Finding, Verdict
from modelseal.scan.rules import all_rules
from modelseal.scan.rules.onnx import STANDARD_DOMAINS, OnnxRule
from tests.samples.containers import plain_zip
from tests.samples.onnx_models import external_tensor, if_model, linear_model, save
from tests.samples.tensorflow import encode_field

onnx = pytest.importorskip("onnx")
helper = onnx.helper
_RULE = OnnxRule()


def _entry(path: Path) -> Entry:
    (entry,) = walk_files(path)
    return entry


def _check(path: Path) -> list[Finding]:
    entry = _entry(path)
    assert entry.format == Format.ONNX
    return list(_RULE.check(entry, ScanOptions()))


def test_rule_is_registered_and_domains_are_standard() -> None:
    assert any(isinstance(rule, OnnxRule) for rule in all_rules())
    assert {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"} <= STANDARD_DOMAINS


def test_normal_model_is_clean(tmp_path: Path) -> None:
    path = save(linear_model(), tmp_path / "model.onnx")
    onnx.checker.check_model(str(path))
    assert _check(path) == []
    assert scan([path]).results[0].verdict == Verdict.CLEAN


def test_microsoft_contrib_ops_and_ml_domain_are_clean(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Gelu", ["y"], ["g"], domain="com.microsoft", name="gelu"),
        helper.make_node("Normalizer", ["y"], ["n"], domain="ai.onnx.ml", name="norm"),
    ]
    model = linear_model(extra_nodes=nodes, opsets=[("com.microsoft", 1), ("ai.onnx.ml", 3)])
    assert _check(save(model, tmp_path / "m.onnx")) == []


def test_external_data_inside_the_model_directory_is_clean(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "extra.bin").write_bytes(bytes(16))
    model = linear_model(initializers=[external_tensor("E", "weights/extra.bin")])
    assert _check(save(model, tmp_path / "m.onnx")) == []


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("../../../../etc/passwd", "climbs out"),
        ("weights/../../secret.bin", "climbs out"),
        ("/etc/passwd", "absolute"),
        ("C:\\Windows\\win.ini", "absolute"),
    ],
)
def test_external_data_escapes(tmp_path: Path, location: str, why: str) -> None:
    model = linear_model(initializers=[external_tensor("stolen", location)])
    findings = _check(save(model, tmp_path / "m.onnx"))
    assert [f.rule for f in findings] == ["MS-ONNX-EXTERNAL-DATA-ESCAPE"]
    assert why in findings[0].message and findings[0].location == "graph/initializer/stolen"


def test_external_data_through_an_escaping_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(bytes(16))
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    os.symlink(outside / "secret", model_dir / "weights.bin")
    path = save(
        linear_model(initializers=[external_tensor("E", "weights.bin")]), model_dir / "m.onnx"
    )
    findings = _check(path)
    assert [f.rule for f in findings] == ["MS-ONNX-EXTERNAL-DATA-ESCAPE"]
    assert "symlink" in findings[0].message


def test_in_tree_symlink_is_clean(tmp_path: Path) -> None:
    (tmp_path / "real.bin").write_bytes(bytes(16))
    os.symlink("real.bin", tmp_path / "weights.bin")
    model = linear_model(initializers=[external_tensor("E", "weights.bin")])
    assert _check(save(model, tmp_path / "m.onnx")) == []


def test_custom_domain(tmp_path: Path) -> None:
    node = helper.make_node("RunShell", ["y"], ["z"], domain="evil.ops", name="shell")
    findings = _check(
        save(linear_model(extra_nodes=[node], opsets=[("evil.ops", 1)]), tmp_path / "m.onnx")
    )
    assert [(f.rule, f.location) for f in findings] == [
        ("MS-ONNX-CUSTOM-OP", "graph/node[3](shell)")
    ]
    assert scan([tmp_path / "m.onnx"]).results[0].verdict == Verdict.SUSPICIOUS


def test_nested_if_branches_are_walked(tmp_path: Path) -> None:
    custom = helper.make_node("Exfil", [], ["y"], domain="evil.ops", name="deep")
    escape = external_tensor("leak", "/etc/shadow")
    findings = _check(save(if_model([custom], [escape]), tmp_path / "m.onnx"))
    locations = {(f.rule, f.location) for f in findings}
    prefix = "graph/node[0](outer_if)/then_branch/node[0](inner_if)/then_branch"
    assert locations == {
        ("MS-ONNX-CUSTOM-OP", f"{prefix}/node[0](deep)"),
        ("MS-ONNX-EXTERNAL-DATA-ESCAPE", f"{prefix}/initializer/leak"),
    }


def test_nested_clean_branches(tmp_path: Path) -> None:
    assert _check(save(if_model([]), tmp_path / "m.onnx")) == []


def test_local_functions_are_not_custom_ops_but_are_walked(tmp_path: Path) -> None:
    body = [helper.make_node("Relu", ["a"], ["b"], name="inner_relu")]
    fn = helper.make_function(
        "my.funcs", "MyRelu", ["a"], ["b"], body, [helper.make_opsetid("", 17)]
    )
    call = helper.make_node("MyRelu", ["y"], ["z"], domain="my.funcs", name="call")
    model = linear_model(extra_nodes=[call], functions=[fn], opsets=[("my.funcs", 1)])
    assert _check(save(model, tmp_path / "ok.onnx")) == []
    bad_body = [helper.make_node("Popen", ["a"], ["b"], domain="evil.ops", name="p")]
    bad = helper.make_function(
        "my.funcs", "MyRelu", ["a"], ["b"], bad_body, [helper.make_opsetid("evil.ops", 1)]
    )
    model = linear_model(extra_nodes=[call], functions=[bad], opsets=[("my.funcs", 1)])
    findings = _check(save(model, tmp_path / "bad.onnx"))
    assert [(f.rule, f.location) for f in findings] == [
        ("MS-ONNX-CUSTOM-OP", "function/my.funcs.MyRelu/node[0](p)")
    ]


def test_onnx_inside_a_zip_is_checked(tmp_path: Path) -> None:
    model = linear_model(initializers=[external_tensor("E", "../../x")])
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(plain_zip({"model/model.onnx": model.SerializeToString()}))
    report = scan([archive])
    member = next(r for r in report.results if r.path.endswith("!model/model.onnx"))
    assert [f.rule for f in member.findings] == ["MS-ONNX-EXTERNAL-DATA-ESCAPE"]
    assert report.results[0].verdict == Verdict.SUSPICIOUS


def test_damaged_model_is_an_error(tmp_path: Path) -> None:
    # Top-level fields are intact (so it is sniffed as ONNX); the graph inside is garbage.
    opset = encode_field(1, "") + encode_field(2, 17)
    data = encode_field(1, 8) + encode_field(8, opset) + encode_field(7, b"\x0a\xff\xff\xff\x0f")
    path = tmp_path / "broken.onnx"
    path.write_bytes(data)
    assert _entry(path).format == Format.ONNX
    result = scan([path]).results[0]
    assert result.verdict == Verdict.ERROR
    assert "not a readable ONNX model" in (result.error or "")


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_model_is_an_error(tmp_path: Path, keep: float) -> None:
    data = linear_model(initializers=[external_tensor("E", "w.bin")]).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * keep)])
    assert _entry(path).format == Format.ONNX
    result = scan([path]).results[0]
    assert result.verdict == Verdict.ERROR


def test_unrelated_binary_named_onnx_is_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "x.onnx"
    path.write_bytes(b"\x00\x01\x02 not a protobuf at all")
    assert _entry(path).format != Format.ONNX


def test_graph_split_across_repeated_fields_is_merged_like_protobuf(tmp_path: Path) -> None:
    # Protobuf merges a singular message that occurs twice; ONNX Runtime sees both halves.
    custom = helper.make_node("Backdoor", ["y"], ["z"], domain="evil.ops", name="bd")
    extra = helper.make_graph([custom], "g", [], [])
    data = linear_model().SerializeToString() + encode_field(7, extra.SerializeToString())
    merged = onnx.load_model_from_string(data)
    assert [n.op_type for n in merged.graph.node][-1] == "Backdoor"
    path = tmp_path / "split.onnx"
    path.write_bytes(data)
    findings = _check(path)
    assert [(f.rule, f.location) for f in findings] == [
        ("MS-ONNX-CUSTOM-OP", f"graph/node[{len(merged.graph.node) - 1}](bd)")
    ]


@pytest.mark.parametrize(("domains", "flagged"), [(("evil.ops", ""), False), (("", "evil"), True)])
def test_last_scalar_occurrence_wins_like_protobuf(
    tmp_path: Path, domains: tuple[str, str], flagged: bool
) -> None:
    node = helper.make_node("Relu", ["y"], ["r"], name="relu")
    node_bytes = node.SerializeToString() + b"".join(encode_field(7, d) for d in domains)
    graph = encode_field(1, node_bytes) + encode_field(2, "g")
    model = linear_model()
    model.ClearField("graph")
    data = model.SerializeToString() + encode_field(7, graph)
    assert onnx.load_model_from_string(data).graph.node[0].domain == domains[-1]
    path = tmp_path / "dup.onnx"
    path.write_bytes(data)
    assert bool(_check(path)) is flagged
