"""Fleet results: one Parquet row per scanned file, and views over them.

Columns: ``source, model, path, sha256, size, format, verdict, findings`` (JSON
text: the file's findings), ``error``, ``members`` (JSON text: results of archive
members that are not clean, as ``modelseal scan`` reports them),
``scanner_version, options, scanned_at`` and ``cached`` (whether this run reused a
stored result). pyarrow is imported only here, when results are written or read.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from modelseal._io import atomic_output
from modelseal.errors import UsageError
from modelseal.fleet.errors import FleetError
from modelseal.scan import FileResult, Finding, ScanReport, Severity, Verdict

__all__ = [
    "FleetSummary",
    "ModelRow",
    "Row",
    "RowWriter",
    "file_results",
    "make_row",
    "model_rows",
    "read_rows",
    "scan_report",
]

VERDICTS = tuple(v.value for v in Verdict)
#: Rows per Parquet row group (and the most a writer holds in memory).
ROW_GROUP = 8192


@dataclass(frozen=True)
class Row:
    """One scanned file."""

    source: str
    model: str
    path: str
    sha256: str
    size: int
    format: str
    verdict: str
    findings: str
    error: str | None
    members: str
    scanner_version: str
    options: str
    scanned_at: str
    cached: bool


@dataclass(frozen=True)
class FleetSummary:
    """What a fleet run did, in the shape of the JSON contract."""

    models: int
    files: int
    scanned: int
    cached: int
    by_verdict: dict[str, int]
    output: str

    @property
    def is_clean(self) -> bool:
        """True when every file is clean."""
        return self.by_verdict.get(Verdict.CLEAN.value, 0) == self.files

    def to_dict(self) -> dict[str, Any]:
        """``{"version": 1, "summary": {...}, "output": PATH}``."""
        counts = {v: self.by_verdict.get(v, 0) for v in VERDICTS}
        summary = {"models": self.models, "files": self.files, "scanned": self.scanned}
        return {
            "version": 1,
            "summary": {**summary, "cached": self.cached, **counts},
            "output": self.output,
        }


def make_row(base: dict[str, Any], results: Sequence[FileResult]) -> Row:
    """A row from a file's results (its own first, then its members')."""
    own, members = results[0], results[1:]
    return Row(
        **base,
        path=own.path,
        format=own.format,
        verdict=own.verdict.value,
        findings=json.dumps([f.to_dict() for f in own.findings]),
        error=own.error,
        members=json.dumps([_member_dict(m) for m in members]),
    )


def _member_dict(result: FileResult) -> dict[str, Any]:
    data = result.to_dict()
    data["own_verdict"] = result.own_verdict.value
    return data


def file_results(row: Row) -> list[FileResult]:
    """The scan results a row stands for (the file's, then its members')."""
    own_findings = _findings(json.loads(row.findings))
    members = []
    for data in json.loads(row.members):
        worst = None if data["verdict"] == data["own_verdict"] else Verdict(data["verdict"])
        members.append(
            FileResult(
                data["path"], data["format"], _findings(data["findings"]), data.get("error"), worst
            )
        )
    own = FileResult(row.path, row.format, own_findings, row.error)
    if own.own_verdict.value != row.verdict:
        own = FileResult(row.path, row.format, own_findings, row.error, Verdict(row.verdict))
    return [own, *members]


def _findings(items: Iterable[dict[str, Any]]) -> tuple[Finding, ...]:
    return tuple(
        Finding(f["rule"], Severity(f["severity"]), f["message"], f["location"]) for f in items
    )


def scan_report(rows: Iterable[Row]) -> ScanReport:
    """The rows as a ``modelseal scan`` report (for the JSON and SARIF renderers)."""
    from modelseal.scan.rules import rule_catalog

    return ScanReport(tuple(r for row in rows for r in file_results(row)), rule_catalog())


@dataclass(frozen=True)
class ModelRow:
    """One model in a report: its worst verdict and how many files have each verdict."""

    source: str
    model: str
    verdict: str
    files: int
    counts: dict[str, int]


def model_rows(rows: Iterable[Row]) -> list[ModelRow]:
    """Models, worst first (then by the number of bad files, then by name)."""
    grouped: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        grouped.setdefault((row.source, row.model), []).append(row)
    out = []
    for (source, model), members in grouped.items():
        counts = Counter(r.verdict for r in members)
        worst = max((Verdict(r.verdict) for r in members), key=lambda v: v.rank)
        out.append(ModelRow(source, model, worst.value, len(members), dict(counts)))
    return sorted(
        out,
        key=lambda m: (
            -Verdict(m.verdict).rank,
            -(m.files - m.counts.get(Verdict.CLEAN.value, 0)),
            m.source,
            m.model,
        ),
    )


def _schema() -> Any:
    import pyarrow as pa

    types = {int: pa.int64(), bool: pa.bool_()}
    return pa.schema(
        [
            pa.field(f.name, types.get(_base(f.type), pa.string()), nullable=f.name == "error")
            for f in fields(Row)
        ]
    )


def _base(annotation: Any) -> Any:
    return {"int": int, "bool": bool}.get(str(annotation), str)


class RowWriter:
    """Writes rows to Parquet as they come (row groups of :data:`ROW_GROUP` rows), so a
    run over millions of files never holds them all; the file appears, atomically, only
    when :meth:`finish` is called."""

    def __init__(self, output: Path) -> None:
        _pa, pq = _pyarrow()
        self.output = output
        self._buffer: list[Row] = []
        self._models: set[tuple[str, str]] = set()
        self._verdicts: Counter[str] = Counter()
        self._files = self._cached = 0
        self._atomic = atomic_output(output)
        handle = self._atomic.__enter__()
        self._writer = pq.ParquetWriter(handle, _schema(), compression="zstd")

    def add(self, row: Row) -> None:
        """Queue one row (written with the next full row group)."""
        self._buffer.append(row)
        self._models.add((row.source, row.model))
        self._verdicts[row.verdict] += 1
        self._files += 1
        self._cached += row.cached
        if len(self._buffer) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        pa, _pq = _pyarrow()
        names = [f.name for f in fields(Row)]
        rows = [{n: getattr(r, n) for n in names} for r in self._buffer]
        self._writer.write_table(pa.Table.from_pylist(rows, schema=_schema()))
        self._buffer = []

    def finish(self) -> FleetSummary:
        """Write what is left, put the file in place, and sum up."""
        if self._buffer or not self._files:
            self._flush()
        self._writer.close()
        self._atomic.__exit__(None, None, None)
        return FleetSummary(
            models=len(self._models),
            files=self._files,
            scanned=self._files - self._cached,
            cached=self._cached,
            by_verdict=dict(self._verdicts),
            output=str(self.output),
        )

    def abort(self, exc: BaseException) -> None:
        """Drop the partial file (nothing half-written is left behind)."""
        self._writer.close()
        self._atomic.__exit__(type(exc), exc, exc.__traceback__)


def read_rows(path: Path) -> list[Row]:
    """Rows from a results file written by :class:`RowWriter`."""
    _pa, pq = _pyarrow()
    try:
        table = pq.read_table(path)
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such file") from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
        raise UsageError(f"{path}: not a fleet results file ({exc})") from exc
    names = {f.name for f in fields(Row)}
    if not names <= set(table.column_names):
        missing = ", ".join(sorted(names - set(table.column_names)))
        raise UsageError(f"{path}: not a fleet results file (no column {missing})")
    return [Row(**{k: v for k, v in item.items() if k in names}) for item in table.to_pylist()]


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise FleetError(
            "fleet results need pyarrow", advice="pip install 'modelseal[fleet]'"
        ) from exc
    return pa, pq
