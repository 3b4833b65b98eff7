"""The incremental cache: a local SQLite file, or a Parquet dataset on S3.

``results`` maps (content SHA-256, scanner version, options, layout context) to a
stored result, so the same bytes in the same model layout are scanned once.
``listing`` maps a location (``source`` + path) with its size and stamp (mtime on
disk, ETag on S3) to the SHA-256 last computed for it, so a file whose listing is
unchanged is not even read. Every finished batch is committed at once: a run that
is interrupted resumes from what it had finished.

An ``s3://bucket/prefix`` cache is the same two tables as ``results.parquet`` and
``listing.parquet`` under the prefix: loaded into memory when the run starts,
written back every minute and when the run ends (also when it is interrupted).
Two runs sharing one S3 cache at the same time: the last to write wins.
"""

from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelseal.fleet.errors import FleetError

__all__ = ["CONTENT_STAMP", "Cache", "CachedResult", "S3Cache", "open_cache"]

_TABLES = ("results", "listing")
#: Stamps that name content, not a moment (see :meth:`Cache.known_sha256`).
CONTENT_STAMP = "etag:"
#: Seconds between write-backs of an S3 cache.
FLUSH_SECONDS = 60.0

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
CREATE INDEX IF NOT EXISTS listing_by_content ON listing (stamp, size);
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
        """The SHA-256 recorded for ``location`` when its size and stamp are unchanged.

        A content stamp (an S3 ETag, ``etag:...``: the MD5 of a single-part upload, a
        digest of the part digests otherwise) identifies content wherever it is, so a
        copy of known content at a new location is not read either.
        """
        row = self._db.execute(
            "SELECT sha256 FROM listing WHERE location = ? AND size = ? AND stamp = ?",
            (location, size, stamp),
        ).fetchone()
        if row is None and stamp.startswith(CONTENT_STAMP):
            row = self._db.execute(
                "SELECT sha256 FROM listing WHERE stamp = ? AND size = ? LIMIT 1", (stamp, size)
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


class S3Cache(Cache):
    """The cache as a Parquet dataset under ``s3://bucket/prefix`` (see the module docs)."""

    def __init__(self, url: str, endpoint_url: str | None) -> None:
        from modelseal.fleet.sources import parse_source, s3_client

        super().__init__(None)
        spec = parse_source(url, endpoint_url)
        self._bucket, self._prefix = spec.root, spec.prefix
        self._client: Any = s3_client(endpoint_url)
        self._url = url
        self._dirty = False
        self._flushed = time.monotonic()
        for table in _TABLES:
            self._load(table)

    def _key(self, table: str) -> str:
        return f"{self._prefix}{table}.parquet"

    def _load(self, table: str) -> None:
        import pyarrow.parquet as pq

        try:
            body = self._client.get_object(Bucket=self._bucket, Key=self._key(table))["Body"]
            data = pq.read_table(io.BytesIO(body.read()))
        except self._client.exceptions.NoSuchKey:
            return  # a new cache
        except Exception as exc:
            raise FleetError(f"{self._url}: cannot read the cache ({exc})") from exc
        columns = data.column_names
        marks = ", ".join("?" for _ in columns)
        rows = zip(*(data.column(c).to_pylist() for c in columns), strict=True)
        with self._db:
            self._db.executemany(
                f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )

    def store(
        self,
        results: Iterable[tuple[str, str, str, str, CachedResult]],
        listings: Iterable[tuple[str, int, str, str]],
    ) -> None:
        super().store(results, listings)
        self._dirty = True
        if time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write both tables back to S3 (each object is replaced atomically by S3)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        for table in _TABLES:
            cursor = self._db.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            columns = list(zip(*cursor.fetchall(), strict=True)) or [() for _ in names]
            data = pa.table({n: list(c) for n, c in zip(names, columns, strict=True)})
            buffer = io.BytesIO()
            pq.write_table(data, buffer, compression="zstd")
            try:
                self._client.put_object(
                    Bucket=self._bucket, Key=self._key(table), Body=buffer.getvalue()
                )
            except Exception as exc:
                raise FleetError(f"{self._url}: cannot write the cache ({exc})") from exc
        self._dirty = False
        self._flushed = time.monotonic()

    def close(self) -> None:
        try:
            if self._dirty:
                self.flush()
        finally:
            super().close()


def open_cache(location: str | None, endpoint_url: str | None = None) -> Cache:
    """The cache at ``location`` (a file path or ``s3://bucket/prefix``), or an empty one."""
    if location is None:
        return Cache(None)
    if location.startswith("s3://"):
        return S3Cache(location, endpoint_url)
    return Cache(Path(location))
