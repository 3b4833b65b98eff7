"""The view objects behind the pages: signature status, scan findings, SBOM summary."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

from modelseal.registry.web import views


def test_signature_status_names_the_key_and_flags_revocation_and_failures() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc)
    keys = {
        "f1": SimpleNamespace(name="release", revoked_at=None),
        "f2": SimpleNamespace(name="old", revoked_at=when),
    }
    ok = views.signature_status({"signed_by": "f1"}, keys, require_signature=True)  # type: ignore[arg-type]
    assert (ok.state, ok.label, ok.key_name) == ("verified", "Signature verified", "release")
    revoked = views.signature_status({"signed_by": "f2"}, keys, require_signature=True)  # type: ignore[arg-type]
    assert revoked.label == "Signed by a revoked key" and "2026-01-02 03:04" in revoked.detail
    failed = views.signature_status(
        {"signed_by": None, "signature_digest": "d"},
        keys,
        require_signature=True,  # type: ignore[arg-type]
    )
    assert failed.state == "failed"
    unsigned = views.signature_status({}, keys, require_signature=False)  # type: ignore[arg-type]
    assert unsigned.state == "unsigned" and "does not require" in unsigned.detail


def test_scan_view_sorts_findings_and_survives_malformed_reports() -> None:
    report = {
        "results": [
            {
                "path": "a.bin",
                "format": "pickle",
                "verdict": "malicious",
                "findings": [
                    {"rule": "r1", "severity": "low", "message": "m", "location": "a.bin"},
                    {"rule": "r2", "severity": "critical", "message": "m", "location": "a.bin"},
                    "not a finding",
                ],
            },
            {"path": "b.bin", "format": "?", "verdict": "error", "error": "truncated"},
            42,
        ]
    }
    view = views.scan_view(report, "malicious")
    assert [f.severity for f in view.findings] == ["critical", "low"]
    assert view.by_severity == (("critical", 1), ("low", 1))
    assert [(f.path, f.findings, f.error) for f in view.files] == [
        ("a.bin", 2, None),
        ("b.bin", 0, "truncated"),
    ]
    empty = views.scan_view(None, "error")
    assert empty.files == () and empty.total_findings == 0


def test_sbom_view_reads_cyclonedx_and_refuses_anything_else() -> None:
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {"component": {"name": "m"}},
        "components": [
            {"name": "w.bin", "type": "file", "hashes": [{"alg": "SHA-256", "content": "ab"}]}
        ],
    }
    view = views.sbom_view(json.dumps(doc).encode())
    assert view.error is None and view.spec == "CycloneDX 1.6"
    assert [(c.name, c.sha256) for c in view.components] == [("w.bin", "ab")]
    for data in (b"\xff\xfe", b"[]", b'{"spdxVersion": "SPDX-2.3"}'):
        assert views.sbom_view(data).error == "not a CycloneDX JSON document"


def test_urls_quote_every_part() -> None:
    assert views.version_url("ns", "m", "1.0+local") == "/n/ns/m/v/1.0%2Blocal"
