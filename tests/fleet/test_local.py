"""`modelseal fleet scan --engine local`: same verdicts as `modelseal scan`, incremental."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from modelseal.fleet import FleetOptions, read_rows, run_fleet
from tests.fleet.conftest import report_json, scan_json
from tests.samples.fleet import EVIL_PICKLE

Fleet = Callable[..., tuple[int, str, str]]


def _summary(out: str) -> dict[str, int]:
    data = json.loads(out)
    assert data["version"] == 1
    summary: dict[str, int] = data["summary"]
    return summary


def test_results_equal_modelseal_scan(
    fleet: Fleet, mirror: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, expected = mirror
    results = tmp_path / "r.parquet"
    code, out, _ = fleet("scan", root, "-o", results, "--workers", "2", "-f", "json")
    assert code == 1
    summary = _summary(out)
    counts = Counter(expected.values())
    assert summary == {
        "models": 180 + 20,
        "files": len(expected),
        "scanned": len(expected),
        "cached": 0,
        **{v: counts.get(v, 0) for v in ("clean", "suspicious", "malicious", "error")},
    }
    rows = read_rows(results)
    assert {Path(r.path).relative_to(root).as_posix(): r.verdict for r in rows} == expected
    assert all(len(r.sha256) == 64 and r.scanner_version and r.options for r in rows)
    zipped = next(r for r in rows if r.path.endswith("weights.zip"))
    assert json.loads(zipped.members)[0]["path"].endswith("weights.zip!data.pkl")
    # The very same report, file by file and member by member, as one `modelseal scan`.
    assert report_json(fleet, results) == scan_json(root)


def test_rerun_is_fully_cached_and_changes_are_rescanned(
    fleet: Fleet, mirror: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, expected = mirror
    results, cache = tmp_path / "r.parquet", tmp_path / "cache.db"
    args = ("scan", root, "-o", results, "--cache", cache, "--workers", "2", "-f", "json")
    fleet(*args)
    first = sorted(read_rows(results), key=lambda r: r.path)

    _, out, _ = fleet(*args)
    assert _summary(out)["scanned"] == 0
    assert _summary(out)["cached"] == len(expected)
    again = sorted(read_rows(results), key=lambda r: r.path)
    assert [(r.path, r.sha256, r.verdict, r.findings) for r in again] == [
        (r.path, r.sha256, r.verdict, r.findings) for r in first
    ]
    _, table, _ = fleet(*args[:-2])
    assert "scanned 0" in table

    # A changed file is read and scanned again, and nothing else is.
    changed = root / "hub/org5/model005/model.safetensors"
    changed.write_bytes(EVIL_PICKLE)
    # A model that loses its custom code: its config.json keeps its bytes and listing,
    # but what the scanner says about it depends on the layout.
    (root / "hub/org1/model001/modeling_tiny.py").unlink()
    _, out, _ = fleet(*args)
    model001 = [p for p in expected if p.startswith("hub/org1/model001/") and "modeling" not in p]
    assert _summary(out)["scanned"] == 1 + len(model001)
    rows = {Path(r.path).relative_to(root).as_posix(): r for r in read_rows(results)}
    assert rows["hub/org5/model005/model.safetensors"].verdict == "malicious"
    assert rows["hub/org1/model001/config.json"].verdict == "suspicious"
    assert report_json(fleet, results) == scan_json(root)


def test_interrupted_run_resumes_and_a_killed_worker_loses_nothing(
    mirror: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, expected = mirror
    options = FleetOptions(workers=2, cache=str(tmp_path / "c.db"), batch_files=8)
    calls: list[int] = []

    def interrupt(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fleet([str(root)], tmp_path / "r.parquet", options, progress=interrupt)
    assert not (tmp_path / "r.parquet").exists()

    killed: list[int] = []

    def kill_a_worker(done: int, total: int) -> None:
        if not killed:
            children = psutil.Process().children(recursive=True)
            workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
            assert workers
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(workers[0].pid)

    summary = run_fleet([str(root)], tmp_path / "r.parquet", options, progress=kill_a_worker)
    assert killed
    assert summary.cached >= calls[-1] > 0
    assert summary.scanned == len(expected) - summary.cached
    rows = read_rows(tmp_path / "r.parquet")
    assert {Path(r.path).relative_to(root).as_posix(): r.verdict for r in rows} == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("scan", "{root}", "-o", "{out}", "--address", "auto"), "--address needs --engine ray"),
        (("scan", "{root}/missing", "-o", "{out}"), "not a directory"),
        (("scan", "-o", "{out}"), "no SOURCE given"),
        (("scan", "ftp://host/x", "-o", "{out}"), "unsupported source"),
        (("scan", "{root}", "-o", "{out}", "--workers", "0"), "--workers must be at least 1"),
        (("report", "{out}"), "no such file"),
        (("report", "{root}/loose/notes02.txt"), "not a fleet results file"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_line(
    fleet: Fleet,
    mirror: tuple[Path, dict[str, str]],
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    root, _ = mirror
    out = tmp_path / "r.parquet"
    code, _out, stderr = fleet(*(a.format(root=root, out=out) for a in args))
    assert code == 2
    assert message in stderr
    assert len(stderr.strip().splitlines()) <= 2  # the message, maybe a hint
    assert "Traceback" not in stderr and not out.exists()


def test_report_worst_models_first_and_subsets(
    fleet: Fleet, mirror: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, expected = mirror
    results = tmp_path / "r.parquet"
    fleet("scan", root, "-o", results, "--workers", "2")
    code, table, _ = fleet("report", results)
    assert code == 1
    lines = table.splitlines()[1:-1]
    verdicts = [line.split()[0] for line in lines]
    order = ["malicious", "error", "suspicious", "clean"]
    assert verdicts == sorted(verdicts, key=order.index)
    bad_models = {str(Path(p).parent) for p, v in expected.items() if v == "malicious"}
    bad_models = {m.split("/extra")[0] for m in bad_models if m.startswith("hub/")}
    assert lines[0].split()[-1] == min(bad_models)  # ties: by name
    sarif = tmp_path / "bad.sarif"
    code, _, _ = fleet("report", results, "--verdict", "malicious", "-f", "sarif", "-o", sarif)
    assert code == 1
    doc = json.loads(sarif.read_text())
    located = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in doc["runs"][0]["results"]
    }
    bad = {p for p, v in expected.items() if v == "malicious"}
    assert {Path(u.split("!")[0]).name for u in located} == {Path(p).name for p in bad}
    code, out, _ = fleet("report", results, "--model", "hub/org2/*", "--verdict", "clean")
    assert code == 0 and "hub/org2/model002" in out and "model003" not in out


@pytest.mark.parametrize("args", [["--help"], ["fleet", "--help"], ["fleet", "scan", "--help"]])
def test_help_imports_neither_ray_nor_pyarrow(args: list[str]) -> None:
    code = (
        "import sys; from modelseal.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('ray', 'pyarrow', 'boto3') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage:" in done.stdout
    assert done.stdout.strip().endswith("[]")
