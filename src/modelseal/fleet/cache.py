"""The incremental cache: a local SQLite file.

``results`` maps (content SHA-256, scanner version, options, layout context) to a
stored result, so the same bytes in the same model layout are scanned once.
``listing`` maps a location (``source`` + path) with its size and stamp (mtime on
disk, ETag on S3) to the SHA-256 last computed for it, so a file whose listing is
unchanged is not even read. Every finished batch is committed at once: a run that
is interrupted resumes from what it had finished.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from modelseal.fleet.errors import FleetError

__all__ = ["Cache", "CachedResult"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    sha256 TEXT NOT NULL,
    scanner_version TEXT NOT NULL,
    options TEXT NOT NULL,
    context TEXT NOT NULL,
    format TEXT NOT NULL,
    payload TEXT NOT NULL,
    scanned_at TEXT NOT NULL,
    PRIMARY KEY (sha256, scanner_version, options, context)
);
CREATE TABLE IF NOT EXISTS listing (
    location TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    stamp TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class CachedResult:
    """A stored scan outcome (paths are placeholders, see :mod:`modelseal.fleet.work`)."""

    format: str
    payload: str
    scanned_at: str


class Cache:
    """The SQLite cache; ``Cache(None)`` is an empty in-memory one (no ``--cache``)."""

    def __init__(self, path: Path | None) -> None:
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(":memory:" if path is None else str(path))
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise FleetError(f"{path}: cannot open the cache ({exc})") from exc

    def known_sha256(self, location: str, size: int, stamp: str) -> str | None:
        """The SHA-256 recorded for ``location`` when its size and stamp are unchanged."""
        row = self._db.execute(
            "SELECT sha256 FROM listing WHERE location = ? AND size = ? AND stamp = ?",
            (location, size, stamp),
        ).fetchone()
        return None if row is None else str(row[0])

    def lookup(
        self, sha256: str, scanner_version: str, options: str, context: str
    ) -> CachedResult | None:
        """The stored result for this content, scanner, options and layout, if any."""
        row = self._db.execute(
            "SELECT format, payload, scanned_at FROM results WHERE sha256 = ? AND "
            "scanner_version = ? AND options = ? AND context = ?",
            (sha256, scanner_version, options, context),
        ).fetchone()
        return None if row is None else CachedResult(str(row[0]), str(row[1]), str(row[2]))

    def store(
        self,
        results: Iterable[tuple[str, str, str, str, CachedResult]],
        listings: Iterable[tuple[str, int, str, str]],
    ) -> None:
        """Record ``(sha256, version, options, context, result)`` rows and
        ``(location, size, stamp, sha256)`` listings in one transaction."""
        try:
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(*key, r.format, r.payload, r.scanned_at) for *key, r in results],
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO listing VALUES (?, ?, ?, ?)", list(listings)
                )
        except sqlite3.Error as exc:
            raise FleetError(f"cannot write the cache ({exc})") from exc

    def close(self) -> None:
        """Close the database."""
        self._db.close()
