"""Fleet fixtures: a generated mirror, the `modelseal scan` oracle, and CLI runners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelseal.cli import main
from tests.registry.conftest import moto_endpoint, s3_env  # noqa: F401  (fixtures)
from tests.samples.fleet import build_mirror

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(autouse=True)
def _workers_find_modelseal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spawned pool and Ray workers import modelseal from this checkout."""
    paths = [str(SRC), str(SRC.parent), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh mirror (about 200 models) and the verdict every file must get."""
    root = tmp_path / "mirror"
    return root, build_mirror(root)


def scan_json(*paths: Path) -> list[dict[str, Any]]:
    """What `modelseal scan --format json` reports (a separate process), sorted by path."""
    out = subprocess.run(
        [sys.executable, "-m", "modelseal", "scan", *map(str, paths), "-f", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode in (0, 1), out.stderr
    results: list[dict[str, Any]] = json.loads(out.stdout)["results"]
    return sorted(results, key=lambda r: r["path"])


@pytest.fixture
def fleet(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run `modelseal fleet ...` in this process: (exit code, stdout, stderr)."""

    def run(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(["fleet", *map(str, args)])
        out, err = capsys.readouterr()
        code = exit_info.value.code
        return (code if isinstance(code, int) else 0), out, err

    return run


def report_json(fleet: Callable[..., tuple[int, str, str]], results: Path) -> list[Any]:
    """The fleet results as a `modelseal scan` JSON report, sorted by path."""
    _code, out, _err = fleet("report", results, "-f", "json")
    return sorted(json.loads(out)["results"], key=lambda r: r["path"])
