"""The user docs stay in step with the code."""

from __future__ import annotations

from pathlib import Path

from modelseal.scan.rules import rule_catalog

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_scan_rule_is_documented() -> None:
    text = (DOCS / "scanning.md").read_text()
    missing = sorted(rule_id for rule_id in rule_catalog() if f"`{rule_id}`" not in text)
    assert not missing, f"add these rules to docs/scanning.md: {missing}"
