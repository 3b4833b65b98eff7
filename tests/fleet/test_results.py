"""The results file: streamed in row groups, atomic, read back as written."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from modelseal.fleet import results
from modelseal.fleet.results import Row, RowWriter, model_rows, read_rows


def _row(i: int) -> Row:
    verdict = "malicious" if i % 7 == 0 else "clean"
    return Row(
        source="s", model=f"m{i % 10}", path=f"s/m{i % 10}/f{i}", sha256=f"{i:064x}", size=i,
        format="pickle", verdict=verdict, findings="[]", error=None, members="[]",
        scanner_version="v", options="{}", scanned_at="2026-12-04T00:00:00+00:00",
        cached=i % 2 == 0,
    )  # fmt: skip


def test_rows_stream_in_row_groups_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "ROW_GROUP", 50)
    out = tmp_path / "r.parquet"
    writer = RowWriter(out)
    rows = [_row(i) for i in range(120)]
    for row in rows:
        writer.add(row)
    assert not out.exists()  # only complete files appear
    summary = writer.finish()
    assert pq.ParquetFile(out).metadata.num_row_groups == 3
    assert read_rows(out) == rows
    assert summary.to_dict()["summary"] == {
        "models": 10, "files": 120, "scanned": 60, "cached": 60,
        "clean": 102, "suspicious": 0, "malicious": 18, "error": 0,
    }  # fmt: skip
    assert model_rows(rows)[0].verdict == "malicious"


def test_an_aborted_writer_leaves_nothing(tmp_path: Path) -> None:
    writer = RowWriter(tmp_path / "r.parquet")
    writer.add(_row(1))
    writer.abort(KeyboardInterrupt())
    assert list(tmp_path.iterdir()) == []
