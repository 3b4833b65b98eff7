"""One fleet run: list sources, skip what the cache knows, scan the rest, write results."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelseal import __version__
from modelseal.fleet.cache import Cache, CachedResult, open_cache
from modelseal.fleet.engines import Engine, open_engine
from modelseal.fleet.errors import FleetError
from modelseal.fleet.results import FleetSummary, Row, RowWriter, make_row
from modelseal.fleet.sources import FileRef, Model, SourceSpec, list_models, parse_source
from modelseal.fleet.work import BATCH_BYTES, BATCH_FILES, ModelWork, decode_results, make_batches
from modelseal.scan import ScanOptions

__all__ = ["FleetOptions", "options_key", "run_fleet", "scanner_version"]

#: Called after each finished batch with (files done, files to scan).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FleetOptions:
    """How a fleet run is carried out (what is scanned is in ``scan``)."""

    scan: ScanOptions = field(default_factory=ScanOptions)
    engine: str = "local"
    address: str | None = None
    workers: int | None = None
    #: A SQLite file path or ``s3://bucket/prefix`` (a Parquet dataset); None: no cache.
    cache: str | None = None
    s3_endpoint: str | None = None
    batch_files: int = BATCH_FILES
    batch_bytes: int = BATCH_BYTES


@functools.cache
def scanner_version() -> str:
    """The modelseal version plus a digest of the scanner's code, so a changed rule
    invalidates stored results even before a release."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for sub in ("scan", "formats", "weights"):
        for path in sorted((package / sub).rglob("*.py")):
            digest.update(path.relative_to(package).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def options_key(options: ScanOptions) -> str:
    """The scan options as canonical JSON (part of the cache key and of every row)."""

    def table(globs: object) -> dict[str, object]:
        items = dict(globs)  # type: ignore[call-overload]
        return {k: v if v == "*" else sorted(v) for k, v in sorted(items.items())}

    return json.dumps(
        {
            "strict": options.strict,
            "deep": options.deep,
            "max_depth": options.limits.max_depth,
            "max_member_bytes": options.limits.max_member_bytes,
            "max_spool_bytes": options.limits.max_spool_bytes,
            "max_members": options.limits.max_members,
            "dangerous_globals": table(options.settings.dangerous_globals),
            "safe_globals": table(options.settings.safe_globals),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def _contexts(model: Model) -> list[str]:
    """Per file of ``model``, what of the layout its result may depend on: its own place
    and its siblings' names and sizes (``auto_map`` files, ONNX external data)."""
    inner = [model.inner(f) for f in model.files]
    layout = json.dumps(sorted(zip(inner, (f.size for f in model.files), strict=True)))
    return [hashlib.sha256(f"{name}\0{layout}".encode()).hexdigest() for name in inner]


def run_fleet(
    sources: Sequence[str],
    output: Path,
    options: FleetOptions | None = None,
    *,
    progress: Progress | None = None,
) -> FleetSummary:
    """Scan every model under ``sources`` and write one Parquet row per file to ``output``."""
    options = options or FleetOptions()
    specs = [parse_source(s, options.s3_endpoint) for s in sources]
    engine = open_engine(options.engine, workers=options.workers, address=options.address)
    with engine:
        cache = open_cache(options.cache, options.s3_endpoint)
        try:
            writer = RowWriter(output)
            try:
                _run(specs, options, engine, cache, writer.add, progress)
            except BaseException as exc:
                writer.abort(exc)
                raise
        finally:
            cache.close()
    return writer.finish()


@dataclass(frozen=True)
class _Pending:
    spec: SourceSpec
    model: Model
    ref: FileRef
    context: str


def _run(
    specs: Sequence[SourceSpec],
    options: FleetOptions,
    engine: Engine,
    cache: Cache,
    emit: Callable[[Row], None],
    progress: Progress | None,
) -> None:
    """Emit a row for every file of ``specs``: stored ones first, then as batches finish."""
    version, opts = scanner_version(), options_key(options.scan)
    pending: dict[tuple[str, str], _Pending] = {}
    work: dict[str, list[ModelWork]] = {}
    for spec in specs:
        for model in list_models(spec):
            todo = []
            for ref, context in zip(model.files, _contexts(model), strict=True):
                location = spec.display(ref.relpath)
                sha = cache.known_sha256(location, ref.size, ref.stamp)
                hit = None if sha is None else cache.lookup(sha, version, opts, context)
                if sha is not None and hit is not None:
                    base = _base(spec, model, sha, ref.size, version, opts, hit, cached=True)
                    emit(_row(base, hit.payload, location))
                else:
                    pending[(spec.name, ref.relpath)] = _Pending(spec, model, ref, context)
                    todo.append(ref.relpath)
            if todo:
                listing = tuple((f.relpath, f.size) for f in model.files)
                work.setdefault(spec.name, []).append(ModelWork(listing, tuple(todo)))
    batches = [
        batch
        for spec in specs
        for batch in make_batches(
            spec,
            options.scan,
            work.get(spec.name, []),
            max_files=options.batch_files,
            max_bytes=options.batch_bytes,
        )
    ]
    done = 0
    for result in engine.run(batches):
        stored, listings = [], []
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        for scanned in result:
            item = pending[(scanned.source, scanned.relpath)]
            hit = CachedResult(scanned.format, scanned.payload, now)
            location = item.spec.display(item.ref.relpath)
            base = _base(
                item.spec,
                item.model,
                scanned.sha256,
                scanned.size,
                version,
                opts,
                hit,
                cached=False,
            )
            emit(_row(base, hit.payload, location))
            if scanned.sha256:
                stored.append((scanned.sha256, version, opts, item.context, hit))
                listings.append((location, item.ref.size, item.ref.stamp, scanned.sha256))
        cache.store(stored, listings)
        done += len(result)
        if progress is not None:
            progress(done, len(pending))
    if done != len(pending):
        raise FleetError(f"{len(pending) - done} files came back from no worker (an engine bug)")


def _base(
    spec: SourceSpec,
    model: Model,
    sha256: str,
    size: int,
    version: str,
    opts: str,
    hit: CachedResult,
    *,
    cached: bool,
) -> dict[str, Any]:
    return {
        "source": spec.name,
        "model": model.name,
        "sha256": sha256,
        "size": size,
        "scanner_version": version,
        "options": opts,
        "scanned_at": hit.scanned_at,
        "cached": cached,
    }


def _row(base: dict[str, Any], payload: str, location: str) -> Row:
    results = decode_results(payload, location)
    return make_row(base, results)
