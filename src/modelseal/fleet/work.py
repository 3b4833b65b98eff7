"""The unit of work: a batch of files, scanned by the ordinary scanner in one task.

Batches keep tiny files from costing a task each. A worker hashes each file
(SHA-256, the cache key), runs :func:`modelseal.scan.scan` on it with the run's
options (the same rules and limits as ``modelseal scan``) and returns the result
with its paths replaced by placeholders, so one stored result can serve every
copy of the same content in the same layout.

S3 objects are streamed to a temporary directory in 1 MiB chunks (bounded
memory); the model's other files appear there as sparse placeholders of their
real size, so checks that look at siblings (``auto_map`` files, ONNX external
data locations) see the model's layout.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from modelseal.fleet.sources import SourceSpec, s3_client
from modelseal.scan import FileResult, Finding, ScanOptions, Severity, Verdict, scan

__all__ = [
    "Batch",
    "ModelWork",
    "ScannedFile",
    "decode_results",
    "make_batches",
    "scan_batch",
]

_CHUNK = 1024 * 1024
_PATH = "<<modelseal:path>>"
_DIR = "<<modelseal:dir>>"
#: Default batch bounds: whichever is reached first closes a batch.
BATCH_FILES = 32
BATCH_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ModelWork:
    """The files of one model that need scanning, with the model's full listing."""

    #: (path relative to the source, size) of every file of the model.
    listing: tuple[tuple[str, int], ...]
    #: Paths (relative to the source) to scan.
    files: tuple[str, ...]


@dataclass(frozen=True)
class Batch:
    """What one task scans."""

    source: SourceSpec
    options: ScanOptions
    models: tuple[ModelWork, ...]


@dataclass(frozen=True)
class ScannedFile:
    """One file's outcome as a worker returns it (paths are placeholders in ``payload``)."""

    #: The source's name (as given by the user) and the path relative to it.
    source: str
    relpath: str
    sha256: str
    size: int
    format: str
    #: JSON of the file's result and its archive members' (see :func:`decode_results`).
    payload: str


def make_batches(
    source: SourceSpec,
    options: ScanOptions,
    work: Iterable[ModelWork],
    *,
    max_files: int = BATCH_FILES,
    max_bytes: int = BATCH_BYTES,
) -> Iterator[Batch]:
    """Pack models' files into batches of at most ``max_files`` files / ``max_bytes`` bytes.

    A big model is split across batches; each part carries the model's listing.
    """
    current: list[ModelWork] = []
    count = size = 0
    for model in work:
        sizes = dict(model.listing)
        part: list[str] = []
        for relpath in model.files:
            if count and (count >= max_files or size + sizes[relpath] > max_bytes):
                if part:
                    current.append(ModelWork(model.listing, tuple(part)))
                    part = []
                yield Batch(source, options, tuple(current))
                current, count, size = [], 0, 0
            part.append(relpath)
            count += 1
            size += sizes[relpath]
        if part:
            current.append(ModelWork(model.listing, tuple(part)))
    if current:
        yield Batch(source, options, tuple(current))


def scan_batch(batch: Batch) -> list[ScannedFile]:
    """Scan every file of ``batch`` (runs in a worker process; must stay picklable)."""
    if batch.source.kind == "s3":
        return _scan_s3(batch)
    out: list[ScannedFile] = []
    for model in batch.models:
        for relpath in model.files:
            path = Path(batch.source.display(relpath))
            digest = _sha256_file(path)
            out.append(_scan_file(batch.source.name, relpath, path, digest, batch.options))
    return out


def _scan_s3(batch: Batch) -> list[ScannedFile]:
    client = s3_client(batch.source.endpoint_url)
    out: list[ScannedFile] = []
    with tempfile.TemporaryDirectory(prefix="modelseal-fleet-") as tmp:
        root = Path(tmp)
        for model in batch.models:
            # The whole layout first: a file scanned early must see siblings fetched later.
            for relpath, size in model.listing:
                if _safe(relpath):
                    _placeholder(root / relpath, size)
            for relpath in model.files:
                if not _safe(relpath):
                    out.append(_refused(batch.source.name, relpath, dict(model.listing)[relpath]))
                    continue
                local = root / relpath
                key = batch.source.prefix + relpath
                digest = _download(client, batch.source.root, key, local)
                out.append(_scan_file(batch.source.name, relpath, local, digest, batch.options))
                local.unlink()
                _placeholder(local, dict(model.listing)[relpath])
    return out


def _safe(relpath: str) -> bool:
    """Whether an object key stays inside the temporary directory once used as a path."""
    parts = PurePosixPath(relpath).parts
    return bool(parts) and not relpath.startswith("/") and ".." not in parts


def _refused(source: str, relpath: str, size: int) -> ScannedFile:
    """An object whose key would escape the scan directory: an error, never clean."""
    error = FileResult(_PATH, "unknown", (), "object key leaves its prefix (..); not scanned")
    return ScannedFile(source, relpath, "", size, "unknown", encode_results([error], _PATH))


def _placeholder(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(size)


def _download(client: Any, bucket: str, key: str, target: Path) -> str:
    """Stream an object to ``target`` in bounded memory; its SHA-256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    with open(target, "wb") as handle:
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _scan_file(
    source: str, relpath: str, path: Path, digest: str, options: ScanOptions
) -> ScannedFile:
    report = scan([path], options=options)
    own = report.results[0]
    payload = encode_results(report.results, str(path))
    return ScannedFile(source, relpath, digest, path.stat().st_size, own.format, payload)


def encode_results(results: Iterable[FileResult], path: str) -> str:
    """A file's result and its members' as JSON, ``path`` and its directory as placeholders."""
    parent = str(PurePosixPath(path).parent)

    def hide(text: str) -> str:
        text = text.replace(path, _PATH)
        return text.replace(parent + "/", _DIR + "/") if parent != "." else text

    rows = [
        {
            "path": hide(r.path),
            "format": r.format,
            "findings": [{**f.to_dict(), "message": hide(f.message)} for f in r.findings],
            "error": None if r.error is None else hide(r.error),
            "worst_member": None if r.worst_member is None else r.worst_member.value,
        }
        for r in results
    ]
    return json.dumps(rows, sort_keys=True, separators=(",", ":"))


def decode_results(payload: str, path: str) -> list[FileResult]:
    """The results :func:`encode_results` stored, shown under ``path``."""
    parent = str(PurePosixPath(path).parent)

    def show(text: str) -> str:
        return text.replace(_PATH, path).replace(_DIR + "/", parent + "/")

    results = []
    for row in json.loads(payload):
        findings = tuple(
            Finding(f["rule"], Severity(f["severity"]), show(f["message"]), f["location"])
            for f in row["findings"]
        )
        error = None if row["error"] is None else show(row["error"])
        worst = None if row["worst_member"] is None else Verdict(row["worst_member"])
        results.append(FileResult(show(row["path"]), row["format"], findings, error, worst))
    return results
