"""The CLI contract: exit codes, formats, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelseal.cli import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_clean_scan_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    code, out, _ = _run(["scan", str(tmp_path), "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["results"][0]["verdict"] == "clean"


def test_unparseable_file_exits_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    link = tmp_path / "loop"
    link.symlink_to(link)
    code, out, _ = _run(["scan", str(tmp_path), "--format", "json"], capsys)
    assert code == 1
    verdicts = {Path(r["path"]).name: r["verdict"] for r in json.loads(out)["results"]}
    assert verdicts["loop"] == "error"


def test_usage_errors_exit_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["scan", str(tmp_path / "missing")], capsys)
    assert code == 2
    assert "no such file" in err
    assert "Traceback" not in err
    code, _, err = _run(["scan", "--format", "xml", str(tmp_path)], capsys)
    assert code == 2
    code, _, err = _run(["scan"], capsys)
    assert code == 2 and "no PATH" in err


def test_output_file_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    out_file = tmp_path / "out" / "report.sarif"
    code, out, _ = _run(
        ["scan", str(tmp_path / "notes.txt"), "-f", "sarif", "-o", str(out_file)], capsys
    )
    assert code == 0 and out == ""
    assert json.loads(out_file.read_text())["version"] == "2.1.0"


def test_help_and_version_start_without_heavy_imports() -> None:
    code = (
        "import sys; from modelseal.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'numpy', 'onnx', 'h5py', 'fastapi', 'sqlalchemy', 'jinja2') "
        "if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "Commands:" in result.stdout
    assert result.stdout.strip().endswith("[]")


def test_deep_scan_inspects_weight_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import struct

    import numpy as np

    values = np.random.default_rng(0).standard_normal(4096).astype(np.float32) * 0.02
    values[100] = np.nan
    header = json.dumps({"w": {"dtype": "F32", "shape": [4096], "data_offsets": [0, 16384]}})
    raw = header.encode() + b" " * (-len(header) % 8)
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + values.tobytes())
    code, _, _ = _run(["scan", str(path), "-f", "json"], capsys)
    assert code == 0
    code, out, _ = _run(["scan", str(path), "--deep", "-f", "json"], capsys)
    assert code == 1
    rules = {f["rule"] for r in json.loads(out)["results"] for f in r["findings"]}
    assert "MS-WEIGHTS-NONFINITE" in rules


def test_unreadable_path_is_an_error_result_not_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root, where chmod 000 does not deny reads: make the OS say no.
    good = tmp_path / "config.json"
    good.write_text('{"model_type": "bert"}')
    locked = tmp_path / "locked" / "model.pt"
    locked.parent.mkdir()
    locked.write_bytes(b"x")
    real_lstat = Path.lstat

    def lstat(self: Path) -> object:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_lstat(self)

    monkeypatch.setattr(Path, "lstat", lstat)
    code, out, err = _run(["scan", str(good), str(locked), "--format", "json"], capsys)
    assert code == 1 and "Traceback" not in err
    results = {Path(r["path"]).name: r for r in json.loads(out)["results"]}
    assert results["config.json"]["verdict"] == "clean"
    assert results["model.pt"]["verdict"] == "error"
    assert results["model.pt"]["error"] == "cannot read: Permission denied"


def test_unlistable_directory_is_an_error_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    (tmp_path / "ok.txt").write_text("notes\n")
    hidden = tmp_path / "private"
    hidden.mkdir()
    (hidden / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if Path(str(path)) == hidden:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "scandir", scandir)
    code, out, _ = _run(["scan", str(tmp_path), "--format", "json"], capsys)
    assert code == 1
    results = {Path(r["path"]).name: r for r in json.loads(out)["results"]}
    assert results["ok.txt"]["verdict"] == "clean"
    assert results["private"]["verdict"] == "error"
    assert "cannot list directory: Permission denied" in results["private"]["error"]


def test_fifo_and_dangling_link_are_error_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)
    dangling = tmp_path / "weights.bin"
    dangling.symlink_to(tmp_path / "missing")
    good = tmp_path / "config.json"
    good.write_text("{}")
    code, out, _ = _run(["scan", str(fifo), str(dangling), str(good), "--format", "json"], capsys)
    assert code == 1
    verdicts = [(Path(r["path"]).name, r["verdict"]) for r in json.loads(out)["results"]]
    assert verdicts == [("model.pt", "error"), ("weights.bin", "error"), ("config.json", "clean")]
