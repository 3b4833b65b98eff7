"""`modelseal info` renders a registry document as a field table, never as Python or raw JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelseal.cli import main
from tests.samples.registry import write_model


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def _fields(text: str) -> dict[str, str]:
    """``label  value`` rows (two spaces of indent) -> {label: value}."""
    rows = [line[2:] for line in text.splitlines() if line.startswith("  ") and "  " in line[2:]]
    return {label.strip(): value.strip() for label, _, value in (r.partition("  ") for r in rows)}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_info_renders_versions_and_models_as_tables(
    registry: Any, keypair: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.user("alice", admin=True)
    registry.trust("alice", keypair.public_key)
    token = registry.token("alice")
    key = keypair.private_key
    with registry.client(token) as client:
        client.push(write_model(tmp_path / "a"), "alice/bert:1.0", key=key, tags=["latest"])
        client.push(
            write_model(tmp_path / "b", seed=3), "alice/bert:1.1", key=key, parent="alice/bert:1.0"
        )
    assert _run(["login", registry.url, "--token", token], capsys)[0] == 0

    outputs = {}
    for ref in ("alice/bert:1.0", "alice/bert:1.1", "alice/bert"):
        code, out, err = _run(["info", ref], capsys)
        assert code == 0, err
        assert out.splitlines()[0] == ref
        assert "None" not in out and not any(c in out for c in '{}[]"'), out
        outputs[ref] = out
    root, child, model = (_fields(outputs[r]) for r in outputs)
    assert root["parent"] == "none" and root["tags"] == "latest"
    assert child["parent"] == "alice/bert:1.0" and child["tags"] == "-"
    assert child["scan"] == "clean" and child["scan summary"] == "2 file(s), 0 finding(s)"
    assert child["digest"].startswith("sha256:") and child["created"].endswith(" UTC")
    assert "files (2)" in outputs["alice/bert:1.1"]
    assert model["latest version"] == "1.1" and model["tags"] == "latest -> 1.0"
    # the JSON form is the document itself
    code, out, _ = _run(["info", "alice/bert:1.1", "-f", "json"], capsys)
    assert code == 0 and json.loads(out)["parent"] == "alice/bert:1.0"
