"""Verdicts and the JSON contract of results."""

from __future__ import annotations

from modelseal.scan import FileResult, Finding, ScanReport, Severity, Verdict


def _f(severity: Severity) -> Finding:
    return Finding("R", severity, "m", "here")


def test_verdict_follows_the_worst_finding() -> None:
    assert FileResult("p", "pickle").verdict is Verdict.CLEAN
    assert FileResult("p", "pickle", (_f(Severity.LOW),)).verdict is Verdict.CLEAN
    assert FileResult("p", "pickle", (_f(Severity.MEDIUM),)).verdict is Verdict.SUSPICIOUS
    assert FileResult("p", "pickle", (_f(Severity.HIGH),)).verdict is Verdict.SUSPICIOUS
    assert FileResult("p", "pickle", (_f(Severity.CRITICAL),)).verdict is Verdict.MALICIOUS


def test_error_is_never_clean_but_malicious_wins() -> None:
    assert FileResult("p", "pickle", (), error="cut").verdict is Verdict.ERROR
    assert FileResult("p", "pickle", (_f(Severity.HIGH),), error="cut").verdict is Verdict.ERROR
    assert (
        FileResult("p", "pickle", (_f(Severity.CRITICAL),), error="cut").verdict
        is Verdict.MALICIOUS
    )


def test_json_contract_shape() -> None:
    report = ScanReport((FileResult("a.pt", "pytorch-zip", (_f(Severity.HIGH),)),))
    doc = report.to_dict()
    assert doc["version"] == 1
    (result,) = doc["results"]
    assert set(result) == {"path", "format", "verdict", "findings"}
    assert result["verdict"] == "suspicious"
    assert result["findings"] == [
        {"rule": "R", "severity": "high", "message": "m", "location": "here"}
    ]
    assert doc["summary"]["suspicious"] == 1
