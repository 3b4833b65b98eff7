"""Offline audit of an exported log, and `modelseal log verify` (exit codes 0/1/2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelseal import cli as cli_module
from modelseal.cli import main
from modelseal.transparency.audit import audit_export, load_export
from modelseal.transparency.errors import LogError
from modelseal.transparency.log import TransparencyLog
from modelseal.transparency.sth import TreeHeadSigner
from tests.samples.transparency import grow_and_sign, mixed_entries, publish_entry, signer

SIZES = (1, 4, 7, 20, 33)


def _export(tree_signer: TreeHeadSigner, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    log = TransparencyLog.in_memory()
    heads = grow_and_sign(log, tree_signer, sizes)
    return log.export(heads)


def _where(report: Any) -> list[str]:
    return [p.where for p in report.problems]


def test_intact_log_passes() -> None:
    s = signer()
    report = audit_export(_export(s), s.public_key)
    assert report.ok, report.problems
    assert (report.entries, report.tree_heads) == (33, 5)
    assert report.latest is not None and report.latest.tree_size == 33
    assert report.root_hash == report.latest.root_hash
    assert report.to_json()["ok"] is True


def test_every_kind_of_entry_audits() -> None:
    s = signer()
    log = TransparencyLog.in_memory(mixed_entries(25))
    report = audit_export(log.export([s.sign(25, log.root(), timestamp=1)]), s.public_key)
    assert report.ok, report.problems


def test_tampered_entry_breaks_every_later_root() -> None:
    s = signer()
    export = _export(s)
    export["entries"][5] = export["entries"][5].replace('"1.5"', '"6.6"')
    report = audit_export(export, s.public_key)
    assert not report.ok
    # Heads of sizes 1 and 4 do not cover entry 5; 7, 20 and 33 do.
    assert _where(report) == ["tree head 2", "tree head 3", "tree head 4"]
    assert all("not the root of the exported entries" in p.message for p in report.problems)


def test_removed_entry_is_detected() -> None:
    s = signer()
    export = _export(s)
    del export["entries"][10]
    report = audit_export(export, s.public_key)
    assert "tree head 4" in _where(report)  # signs 33 entries, only 32 left
    assert any("export holds only 32" in p.message for p in report.problems)
    assert "tree head 3" in _where(report)  # size 20 root changed


def test_non_canonical_entry_is_named() -> None:
    s = signer()
    log = TransparencyLog.in_memory()
    log.append(publish_entry(0))
    log.append(b'{"kind": "publish"}', validate=False)
    report = audit_export(log.export([s.sign(2, log.root(), timestamp=1)]), s.public_key)
    assert _where(report) == ["entry 1"]


def test_wrong_key_fails_every_head() -> None:
    s = signer()
    report = audit_export(_export(s), signer().public_key)
    assert len(report.problems) == len(SIZES)
    assert all("expected" in p.message for p in report.problems)


def test_forged_signature_is_detected() -> None:
    s = signer()
    export = _export(s)
    export["tree_heads"][2]["signature"] = export["tree_heads"][1]["signature"]
    report = audit_export(export, s.public_key)
    assert _where(report) == ["tree head 2"]
    assert "invalid signature" in report.problems[0].message


def test_head_of_a_rewritten_history_is_detected() -> None:
    """The server signed size 7 over one history, then rewrote entry 2 and kept going."""
    s = signer()
    old = TransparencyLog.in_memory([publish_entry(i) for i in range(7)])
    old_head = s.sign(7, old.root(), timestamp=1)
    rewritten = TransparencyLog.in_memory(
        [publish_entry(i) for i in range(2)] + [publish_entry(i + 50) for i in range(2, 12)]
    )
    new_head = s.sign(12, rewritten.root(), timestamp=2)
    report = audit_export(rewritten.export([old_head, new_head]), s.public_key)
    assert _where(report) == ["tree head 0"]
    assert "signed another history" in report.problems[0].message


def test_heads_that_shrink_over_time_are_detected() -> None:
    s = signer()
    log = TransparencyLog.in_memory([publish_entry(i) for i in range(9)])
    heads = [s.sign(9, log.root(9), timestamp=1), s.sign(5, log.root(5), timestamp=2)]
    report = audit_export(log.export(heads), s.public_key)
    assert _where(report) == ["tree heads 0 and 1"]
    assert "shrank from 9 to 5" in report.problems[0].message


def test_malformed_head_is_reported_not_raised() -> None:
    s = signer()
    export = _export(s)
    export["tree_heads"][0] = {"tree_size": "one"}
    report = audit_export(export, s.public_key)
    assert _where(report) == ["tree head 0"]


def test_load_export_refuses_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{")
    with pytest.raises(LogError, match="not JSON"):
        load_export(bad)
    bad.write_text(json.dumps({"entries": [], "tree_heads": []}))
    with pytest.raises(LogError, match="not an exported"):
        load_export(bad)
    with pytest.raises(LogError, match="cannot read"):
        load_export(tmp_path / "missing.json")


# -- the command ------------------------------------------------------------------------


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    # Registered the way the lead will register it in cli/__init__.py.
    monkeypatch.setitem(
        cli_module._COMMANDS,
        "log",
        ("modelseal.cli.log:log_group", "Audit the registry's transparency log."),
    )

    def _run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as info:
            main(["log", *args])
        out, err = capsys.readouterr()
        return int(info.value.code or 0), out, err

    return _run


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    s = TreeHeadSigner.in_directory(tmp_path / "server")
    export = _export(s)
    path = tmp_path / "log.json"
    path.write_text(json.dumps(export))
    return path, TreeHeadSigner.public_key_file(tmp_path / "server"), export


def test_cli_intact_log_exits_zero(run: Any, files: tuple[Path, Path, dict[str, Any]]) -> None:
    path, key, _ = files
    code, out, _ = run("verify", str(path), "--key", str(key))
    assert code == 0
    assert "log OK" in out and "entries:     33" in out
    code, out, _ = run("verify", str(path), "--key", str(key), "--format", "json")
    assert code == 0
    assert json.loads(out)["tree_heads"] == 5


def test_cli_tampered_log_exits_one(
    run: Any, files: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, key, export = files
    export["entries"][30] = export["entries"][30].replace("acme", "evil")
    path.write_text(json.dumps(export))
    report = tmp_path / "out" / "report.json"
    code, out, _ = run("verify", str(path), "--key", str(key), "-f", "json", "-o", str(report))
    assert code == 1
    assert out == ""
    doc = json.loads(report.read_text())
    assert doc["ok"] is False
    assert [p["where"] for p in doc["problems"]] == ["tree head 4"]
    code, out, _ = run("verify", str(path), "--key", str(key))
    assert code == 1 and "log INVALID: 1 problem(s)" in out


def test_cli_usage_errors_exit_two(
    run: Any, files: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, key, _ = files
    code, _, err = run("verify", str(tmp_path / "none.json"), "--key", str(key))
    assert code == 2 and "cannot read" in err and "Traceback" not in err
    code, _, err = run("verify", str(path), "--key", str(path))
    assert code == 2 and "not a PEM public key" in err
    code, _, err = run("verify", str(key), "--key", str(key))
    assert code == 2 and "not JSON" in err
    code, _, _ = run("verify", str(path))
    assert code == 2
