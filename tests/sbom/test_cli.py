"""``modelseal sbom``: generate (default), audit and diff; exit codes and stderr warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelseal.cli import main
from tests.samples.sbom import osv, write_model
from tests.sbom.validators import cyclonedx_errors, spdx_errors


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_generate_is_the_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_model(tmp_path / "m")
    code, _, err = run(["sbom", str(root), "-o", str(tmp_path / "bom.json")], capsys)
    assert code == 0 and err == ""
    bom = json.loads((tmp_path / "bom.json").read_text())
    assert bom["specVersion"] == "1.6" and cyclonedx_errors(bom, "1.6") == []
    code, out, _ = run(["sbom", "--spec-version", "1.7", "--no-scan", str(root)], capsys)
    assert code == 0 and cyclonedx_errors(json.loads(out), "1.7") == []
    code, out, _ = run(["sbom", "generate", str(root), "--format", "spdx3"], capsys)
    assert code == 0 and spdx_errors(json.loads(out)) == []


def test_warnings_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_model(tmp_path / "m", card=None, config="{bad")
    code, out, err = run(["sbom", str(root), "--no-scan"], capsys)
    assert code == 0
    assert "warning: no README.md" in err and "config.json: invalid JSON" in err
    assert json.loads(out)["bomFormat"] == "CycloneDX"


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["sbom", str(tmp_path / "missing")], capsys)
    assert code == 2 and "no such file" in err
    root = write_model(tmp_path / "m")
    code, _, err = run(["sbom", str(root), "--format", "spdx3", "--spec-version", "1.7"], capsys)
    assert code == 2 and "CycloneDX only" in err
    assert not list(tmp_path.glob("*.json"))


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["sbom", "--help"], capsys)
    assert code == 0 and "audit" in out and "diff" in out and "--spec-version" in out


def test_audit_exit_codes_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_model(tmp_path / "m")
    bom = tmp_path / "bom.json"
    run(["sbom", str(root), "--no-scan", "-o", str(bom)], capsys)
    advisories = tmp_path / "osv.json"
    advisories.write_text(
        json.dumps(
            [
                osv(
                    "GHSA-aaaa-bbbb-cccc",
                    ecosystem="PyPI",
                    name="transformers",
                    ranges=[
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "4.36"}]}
                    ],
                )
            ]
        )
    )
    code, out, _ = run(["sbom", "audit", str(bom), "--advisories", str(advisories)], capsys)
    assert code == 1
    assert "ADVISORY" in out and "GHSA-aaaa-bbbb-cccc" in out and "transformers" in out
    advisories.write_text(json.dumps([osv("GHSA-x", ecosystem="PyPI", name="not-used")]))
    code, out, _ = run(["sbom", "audit", str(bom), "--advisories", str(advisories)], capsys)
    assert code == 0 and "no advisory matches" in out
    code, _, err = run(
        ["sbom", "audit", str(tmp_path / "m" / "README.md"), "--advisories", str(advisories)],
        capsys,
    )
    assert code == 2 and "not a JSON document" in err


def test_diff_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_model(tmp_path / "m")
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    run(["sbom", str(root), "--no-scan", "-o", str(old)], capsys)
    run(["sbom", str(root), "--no-scan", "--format", "spdx3", "-o", str(new)], capsys)
    code, out, _ = run(["sbom", "diff", str(old), str(new)], capsys)
    assert (code, out.strip()) == (0, "no differences")
    (root / "config.json").write_text("{}")
    run(["sbom", str(root), "--no-scan", "-o", str(new)], capsys)
    code, out, _ = run(["sbom", "diff", str(old), str(new), "--format", "json"], capsys)
    assert code == 1
    changes = json.loads(out)["changes"]
    assert {"kind": "file", "name": "config.json", "change": "changed"}.items() <= changes[
        0
    ].items()
