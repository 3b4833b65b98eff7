"""The user docs stay in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelseal.scan.rules import rule_catalog

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_scan_rule_is_documented() -> None:
    text = (DOCS / "scanning.md").read_text()
    missing = sorted(rule_id for rule_id in rule_catalog() if f"`{rule_id}`" not in text)
    assert not missing, f"add these rules to docs/scanning.md: {missing}"


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelseal.guard
    from modelseal.demo import build_safe_model

    readme = (DOCS.parent / "README.md").read_text()
    block = re.search(r"## Python API.*?```python\n(.*?)```", readme, re.S)
    assert block is not None
    monkeypatch.chdir(tmp_path)
    build_safe_model(tmp_path / "path" / "to" / "model")
    namespace: dict[str, object] = {}
    try:
        exec(compile(block.group(1), "README.md", "exec"), namespace)
    finally:
        modelseal.guard.uninstall()
    assert namespace["decision"].allowed  # type: ignore[attr-defined]
    assert set(namespace["state"]) == {  # type: ignore[call-overload]
        "classifier.bias",
        "classifier.weight",
        "encoder.bias",
        "encoder.weight",
    }
