"""``modelseal admin fsck``: check the registry's blob storage against its database.

:func:`fsck` compares what the database says the registry holds with what is really
stored, and reports every difference as a typed :class:`FsckProblem`:

* blobs the database records (or a version references) whose bytes are gone;
* blobs whose bytes no longer hash to their SHA-256 (streamed, in bounded memory,
  on several threads, with a progress callback) or whose size changed;
* versions that reference rows which are gone (a deleted ``blobs`` or
  ``version_blobs`` row, a missing model), or whose version digest does not match
  their file list; tags pointing at missing versions (or another model's);
* the transparency log, when the registry has one: every stored entry and
  subtree hash recomputes, the latest signed tree head matches, and every
  published (and quarantined) version has its entry;
* garbage that is not damage (warnings): blob objects no row records (orphans),
  blob rows nothing references, open upload sessions past their expiry, and
  staging directories of no open upload untouched for 10 minutes.

It never changes anything. It is safe on a live registry: store objects are listed
*before* the database is read, the database is read as one snapshot, and candidate
missing or orphan blobs are checked again before they are reported, so an upload
finishing meanwhile is not reported as damage.
"""

from __future__ import annotations

import enum
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelseal.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelseal.registry.settings import RegistrySettings
    from modelseal.registry.storage.interface import BlobStore

__all__ = [
    "SEVERITIES",
    "FsckProblem",
    "FsckProgress",
    "FsckReport",
    "FsckStats",
    "ProblemKind",
    "Severity",
    "fsck",
    "fsck_registry",
    "list_store",
]

#: Called with (bytes hashed so far, bytes to hash in total); from worker threads.
FsckProgress = Callable[[int, int], None]

_READ = 4 * 1024 * 1024
_BATCH = 500
#: Staging younger than this may belong to a commit or an upload still in flight.
_STAGING_GRACE_SECONDS = 600


class Severity(str, enum.Enum):
    """How bad a problem is: ``error`` is damage, ``warning`` is garbage or staleness."""

    ERROR = "error"
    WARNING = "warning"


class ProblemKind(str, enum.Enum):
    """What kind of inconsistency was found."""

    MISSING_BLOB = "missing-blob"
    CORRUPT_BLOB = "corrupt-blob"
    MISSING_BLOB_ROW = "missing-blob-row"
    MISSING_VERSION_BLOB = "missing-version-blob"
    DANGLING_VERSION_BLOB = "dangling-version-blob"
    VERSION_DIGEST = "version-digest-mismatch"
    ORPHAN_VERSION = "orphan-version"
    DANGLING_TAG = "dangling-tag"
    LOG_HASH = "log-hash-mismatch"
    LOG_ENTRY = "log-entry-invalid"
    LOG_TREE_HEAD = "log-tree-head-mismatch"
    LOG_MISSING_ENTRY = "log-missing-entry"
    LOGGED_VERSION_MISSING = "logged-version-missing"
    ORPHAN_BLOB = "orphan-blob"
    UNREFERENCED_BLOB = "unreferenced-blob"
    ABANDONED_UPLOAD = "abandoned-upload"
    STALE_STAGING = "stale-staging"


#: The severity of each kind (typed data; a test checks every kind has one).
SEVERITIES: Mapping[ProblemKind, Severity] = {
    **{kind: Severity.ERROR for kind in ProblemKind},
    ProblemKind.ORPHAN_BLOB: Severity.WARNING,
    ProblemKind.UNREFERENCED_BLOB: Severity.WARNING,
    ProblemKind.ABANDONED_UPLOAD: Severity.WARNING,
    ProblemKind.STALE_STAGING: Severity.WARNING,
}


@dataclass(frozen=True)
class FsckProblem:
    """One inconsistency: its kind, what it is about (a digest, ``ns/model:version``…)."""

    kind: ProblemKind
    subject: str
    message: str

    @property
    def severity(self) -> Severity:
        """Error (damage) or warning (garbage)."""
        return SEVERITIES[self.kind]

    def to_json(self) -> dict[str, str]:
        """A JSON object ``{"kind", "severity", "subject", "message"}``."""
        return {
            "kind": self.kind.value,
            "severity": self.severity.value,
            "subject": self.subject,
            "message": self.message,
        }


@dataclass(frozen=True)
class FsckStats:
    """What was looked at."""

    versions: int = 0
    blob_rows: int = 0
    stored_objects: int = 0
    blobs_hashed: int = 0
    bytes_hashed: int = 0
    tags: int = 0
    open_uploads: int = 0
    #: Entries in the transparency log; ``None`` when the registry has no log.
    log_entries: int | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class FsckReport:
    """The result of :func:`fsck`: problems (errors first) and statistics."""

    problems: tuple[FsckProblem, ...]
    stats: FsckStats
    #: Whether blob bytes were hashed (``False`` with ``verify_bytes=False``: sizes only).
    bytes_verified: bool = True

    @property
    def errors(self) -> tuple[FsckProblem, ...]:
        """Problems that are damage."""
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[FsckProblem, ...]:
        """Problems that are garbage or staleness."""
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """No damage (warnings allowed)."""
        return not self.errors

    @property
    def clean(self) -> bool:
        """Nothing at all to report."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The report as JSON: ``{"version": 1, "ok", "clean", "stats", "problems"}``."""
        stats = self.stats
        return {
            "version": 1,
            "ok": self.ok,
            "clean": self.clean,
            "bytes_verified": self.bytes_verified,
            "stats": {
                "versions": stats.versions,
                "blob_rows": stats.blob_rows,
                "stored_objects": stats.stored_objects,
                "blobs_hashed": stats.blobs_hashed,
                "bytes_hashed": stats.bytes_hashed,
                "tags": stats.tags,
                "open_uploads": stats.open_uploads,
                "log_entries": stats.log_entries,
                "seconds": round(stats.seconds, 3),
            },
            "problems": [p.to_json() for p in self.problems],
        }


# -- blob store listing ---------------------------------------------------------------------


def list_store(store: BlobStore) -> Iterator[tuple[str, int]]:
    """Every ``(digest, size)`` object in a blob store (temporary files are skipped)."""
    return store.iter_digests()


# -- the check ------------------------------------------------------------------------------


class _Problems:
    """Collects problems (thread-safe)."""

    def __init__(self) -> None:
        self._items: list[FsckProblem] = []
        self._lock = threading.Lock()

    def add(self, kind: ProblemKind, subject: str, message: str) -> None:
        with self._lock:
            self._items.append(FsckProblem(kind, subject, message))

    def has(self, kind: ProblemKind) -> bool:
        with self._lock:
            return any(p.kind is kind for p in self._items)

    def sorted(self) -> tuple[FsckProblem, ...]:
        order = list(ProblemKind)
        return tuple(
            sorted(
                self._items,
                key=lambda p: (p.severity is Severity.WARNING, order.index(p.kind), p.subject),
            )
        )


@dataclass
class _Refs:
    """Which digests each version references (files, signature, SBOM)."""

    by_digest: dict[str, list[str]] = field(default_factory=dict)

    def add(self, digest: str, who: str) -> None:
        holders = self.by_digest.setdefault(digest, [])
        if len(holders) < 3:
            holders.append(who)

    def who(self, digest: str) -> str:
        return ", ".join(self.by_digest.get(digest, ()))


def fsck(
    session: Session,
    store: BlobStore,
    *,
    staging_dir: Path | None = None,
    verify_bytes: bool = True,
    workers: int = 4,
    progress: FsckProgress | None = None,
    log_public_key: Any = None,
) -> FsckReport:
    """Check ``store`` against the database behind ``session``; change nothing.

    ``verify_bytes=False`` checks presence and sizes only (no hashing). ``staging_dir``
    (the server's ``--data/staging``) adds a check for staged uploads of no open session.
    ``log_public_key`` (the server's tree-head key) also checks the signatures of the
    stored tree heads; without it their roots are still recomputed.
    """
    started = time.perf_counter()
    problems = _Problems()
    stored = dict(list_store(store))  # listed before the DB is read: see the module doc
    _snapshot(session)
    model_names = _model_names(session)
    refs = _Refs()
    seen = _Seen()
    versions = _check_versions(session, model_names, refs, problems, seen)
    blob_rows = _blob_rows(session)
    referenced = set(refs.by_digest)
    open_uploads, upload_digests = _check_uploads(session, staging_dir, problems)
    tags = _check_tags(session, model_names, problems, seen)

    for digest in sorted(referenced - set(blob_rows)):
        problems.add(
            ProblemKind.MISSING_BLOB_ROW,
            digest,
            f"referenced by {refs.who(digest)} but its blobs row is gone",
        )
    candidates = sorted((set(blob_rows) | referenced) - set(stored))
    for digest in candidates:
        if store.exists(digest):  # stored since the listing
            stored[digest] = store.size(digest)
            continue
        holders = refs.who(digest) or "no version (an upload's blob)"
        problems.add(
            ProblemKind.MISSING_BLOB, digest, f"bytes are not in blob storage; used by {holders}"
        )
    orphans = [d for d in stored if d not in blob_rows]
    if orphans:
        recorded = _recorded_since(session, orphans)
        blob_rows.update(recorded)
        for digest in sorted(set(orphans) - set(recorded)):
            problems.add(
                ProblemKind.ORPHAN_BLOB,
                digest,
                f"{stored[digest]} bytes stored but no blobs row records them "
                "(left by an interrupted upload; safe to delete)",
            )
    for digest in sorted(set(blob_rows) - referenced - upload_digests):
        if digest in stored:
            problems.add(
                ProblemKind.UNREFERENCED_BLOB,
                digest,
                "no version or open upload references this blob (garbage of a failed upload)",
            )

    to_check = []
    for digest in sorted(set(blob_rows) & set(stored)):
        expected = blob_rows[digest]
        if stored[digest] != expected:
            problems.add(
                ProblemKind.CORRUPT_BLOB,
                digest,
                f"stored size {stored[digest]} differs from the recorded {expected} bytes",
            )
        elif verify_bytes:
            to_check.append((digest, expected))
    hashed, hashed_bytes = _verify_blobs(store, to_check, refs, problems, workers, progress)
    log_entries = _check_log(session, problems, seen, log_public_key)
    stats = FsckStats(
        versions=versions,
        blob_rows=len(blob_rows),
        stored_objects=len(stored),
        blobs_hashed=hashed,
        bytes_hashed=hashed_bytes,
        tags=tags,
        open_uploads=open_uploads,
        log_entries=log_entries,
        seconds=time.perf_counter() - started,
    )
    return FsckReport(problems.sorted(), stats, bytes_verified=verify_bytes)


def fsck_registry(
    settings: RegistrySettings,
    *,
    verify_bytes: bool = True,
    workers: int = 4,
    progress: FsckProgress | None = None,
) -> FsckReport:
    """:func:`fsck` of the registry ``settings`` describe (database, blobs, staging)."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import OperationalError

    from modelseal.registry.db.session import create_engine_for, session_factory
    from modelseal.registry.storage import open_store

    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
        raise ConfigError(
            f"no registry database at {url[len('sqlite:///') :]}",
            advice="point --data (or --db) at the registry's data",
        )
    engine = create_engine_for(url)
    try:
        try:
            tables = set(inspect(engine).get_table_names())
        except OperationalError as exc:
            raise ConfigError(
                f"cannot reach the registry database: {exc.orig}",
                advice="check --db (is the server running, is the URL right?)",
            ) from exc
        if not {"versions", "blobs", "version_blobs", "tags"} <= tables:
            raise ConfigError(
                f"{settings.database_url.split('@')[-1]} holds no registry",
                advice="point --data/--db at the registry, or run `modelseal admin migrate`",
            )
        store = open_store(
            settings.blob_location,
            endpoint_url=settings.s3_endpoint_url,
            presign_seconds=settings.presign_seconds,
        )
        staging = settings.staging_dir if settings.staging_dir.is_dir() else None
        with session_factory(engine)() as session:
            return fsck(
                session,
                store,
                staging_dir=staging,
                verify_bytes=verify_bytes,
                workers=workers,
                progress=progress,
                log_public_key=_log_public_key(settings),
            )
    finally:
        engine.dispose()


def _log_public_key(settings: RegistrySettings) -> Any:
    """The server's tree-head public key, when this machine has it."""
    from modelseal.integrity.signing.keys import load_public_key
    from modelseal.transparency.sth import TreeHeadSigner

    log_key: Path | None = getattr(settings, "log_key", None)
    if log_key is not None:
        return TreeHeadSigner.from_file(log_key).public_key
    public = TreeHeadSigner.public_key_file(settings.data_dir)
    return load_public_key(public) if public.is_file() else None


@dataclass
class _Seen:
    """What the log must account for: versions (subject -> state, digest), current tags."""

    versions: dict[str, tuple[str, str]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def _snapshot(session: Session) -> None:
    """Read the whole database as of one instant (PostgreSQL: REPEATABLE READ; SQLite's
    read transaction is a snapshot already), so versions, tags and log agree."""
    if session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        return
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _recorded_since(session: Session, digests: list[str]) -> dict[str, int]:
    """Blob rows committed after the snapshot was taken (read on a fresh connection)."""
    from sqlalchemy.orm import Session as _Session

    with _Session(bind=session.get_bind()) as fresh:
        return _blob_rows(fresh, digests)


def _model_names(session: Session) -> dict[int, str]:
    from sqlalchemy import select

    from modelseal.registry.db.models import Model, Namespace

    rows = session.execute(
        select(Model.id, Model.name, Namespace.name).outerjoin(
            Namespace, Namespace.id == Model.namespace_id
        )
    ).all()
    return {mid: f"{ns or '?'}/{name}" for mid, name, ns in rows}


def _blob_rows(session: Session, only: Iterable[str] | None = None) -> dict[str, int]:
    from sqlalchemy import select

    from modelseal.registry.db.models import Blob

    if only is None:
        return {d: int(s) for d, s in session.execute(select(Blob.digest, Blob.size)).all()}
    wanted = list(only)
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _BATCH):
        batch = wanted[start : start + _BATCH]
        query = select(Blob.digest, Blob.size).where(Blob.digest.in_(batch))
        found.update((d, int(s)) for d, s in session.execute(query).all())
    return found


def _check_versions(
    session: Session,
    model_names: Mapping[int, str],
    refs: _Refs,
    problems: _Problems,
    seen: _Seen,
) -> int:
    """Per version: its model exists, its digest matches its files, and every blob it
    uses has a ``version_blobs`` row. Also ``version_blobs`` rows of no version."""
    from sqlalchemy import select

    from modelseal.registry.db.models import Version, VersionBlob
    from modelseal.registry.manifest import FileEntry, version_digest

    links: dict[int, set[str]] = {}
    for version_id, digest in session.execute(select(VersionBlob.version_id, VersionBlob.digest)):
        links.setdefault(version_id, set()).add(digest)
    count = 0
    query = select(
        Version.id,
        Version.model_id,
        Version.name,
        Version.digest,
        Version.files,
        Version.signature_digest,
        Version.sbom_digest,
        Version.state,
    ).execution_options(yield_per=_BATCH)
    for vid, model_id, name, digest, files, signature, sbom, state in session.execute(query):
        count += 1
        subject = f"{model_names.get(model_id, f'model#{model_id}')}:{name}"
        seen.versions[subject] = (state, digest)
        if model_id not in model_names:
            problems.add(ProblemKind.ORPHAN_VERSION, subject, f"its model row {model_id} is gone")
        try:
            entries = [FileEntry.from_dict(f) for f in files or ()]
            computed = version_digest(entries)
        except Exception as exc:  # a damaged JSON column is a finding, not a crash
            problems.add(ProblemKind.VERSION_DIGEST, subject, f"unreadable file list: {exc}")
            entries, computed = [], None
        if computed is not None and computed != digest:
            problems.add(
                ProblemKind.VERSION_DIGEST,
                subject,
                f"version digest {digest[:16]}… does not match its file list ({computed[:16]}…)",
            )
        used = {e.digest for e in entries} | {d for d in (signature, sbom) if d}
        for blob in used:
            refs.add(blob, subject)
        missing = sorted(used - links.pop(vid, set()))
        for blob in missing:
            problems.add(
                ProblemKind.MISSING_VERSION_BLOB,
                subject,
                f"uses blob {blob[:16]}… but its version_blobs row is gone",
            )
    for vid, digests in sorted(links.items()):
        problems.add(
            ProblemKind.DANGLING_VERSION_BLOB,
            f"version#{vid}",
            f"{len(digests)} version_blobs row(s) of a version that does not exist",
        )
    return count


def _check_tags(
    session: Session, model_names: Mapping[int, str], problems: _Problems, seen: _Seen
) -> int:
    from sqlalchemy import select

    from modelseal.registry.db.models import Tag, Version

    rows = session.execute(
        select(
            Tag.model_id, Tag.name, Tag.version_id, Version.id, Version.model_id, Version.name
        ).outerjoin(Version, Version.id == Tag.version_id)
    ).all()
    for model_id, tag, target, found, version_model, version_name in rows:
        subject = f"{model_names.get(model_id, f'model#{model_id}')}#{tag}"
        if found is not None:
            seen.tags[subject] = version_name
        if found is None:
            problems.add(ProblemKind.DANGLING_TAG, subject, f"points at missing version #{target}")
        elif version_model != model_id:
            problems.add(
                ProblemKind.DANGLING_TAG,
                subject,
                f"points at version #{target} of another model "
                f"({model_names.get(version_model, version_model)})",
            )
    return len(rows)


def _check_uploads(
    session: Session, staging_dir: Path | None, problems: _Problems
) -> tuple[int, set[str]]:
    """Open uploads past expiry (warnings) and staging of no open upload; returns the number
    of open uploads and the digests they declare (their blobs are not garbage)."""
    from sqlalchemy import select

    from modelseal.registry.db.models import Upload, utcnow

    now = utcnow()
    digests: set[str] = set()
    open_ids: set[str] = set()
    query = select(Upload.id, Upload.files, Upload.expires_at, Upload.model_name).where(
        Upload.state.in_(("open", "checking"))
    )
    for upload_id, files, expires_at, model in session.execute(query):
        open_ids.add(upload_id)
        digests.update(f.get("digest", "") for f in files or () if isinstance(f, dict))
        if expires_at <= now:
            problems.add(
                ProblemKind.ABANDONED_UPLOAD,
                upload_id,
                f"upload of {model} expired at {expires_at.isoformat()} and was never committed "
                "(the server marks it failed and frees its staging)",
            )
    if staging_dir is not None and staging_dir.is_dir():
        recent = time.time() - _STAGING_GRACE_SECONDS
        for child in sorted(staging_dir.iterdir()):
            if child.is_dir() and child.name not in open_ids and child.stat().st_mtime < recent:
                problems.add(
                    ProblemKind.STALE_STAGING,
                    str(child),
                    "staged data of no open upload, untouched for 10 minutes "
                    "(an interrupted commit); safe to delete",
                )
    return len(open_ids), digests


def _verify_blobs(
    store: BlobStore,
    blobs: list[tuple[str, int]],
    refs: _Refs,
    problems: _Problems,
    workers: int,
    progress: FsckProgress | None,
) -> tuple[int, int]:
    """Hash every blob in streamed chunks on ``workers`` threads (hashlib releases the GIL)."""
    total = sum(size for _, size in blobs)
    lock = threading.Lock()
    done = [0]

    def advance(amount: int) -> None:
        with lock:
            done[0] += amount
            value = done[0]
        if progress is not None:
            progress(value, total)

    def check(digest: str) -> None:
        hasher = hashlib.sha256()
        length = 0
        try:
            for chunk in store.iter_bytes(digest, _READ):
                hasher.update(chunk)
                length += len(chunk)
                advance(len(chunk))
        except FileNotFoundError:
            problems.add(ProblemKind.MISSING_BLOB, digest, "bytes vanished while being checked")
            return
        except OSError as exc:
            problems.add(ProblemKind.MISSING_BLOB, digest, f"bytes cannot be read: {exc}")
            return
        actual = hasher.hexdigest()
        if actual != digest:
            holders = refs.who(digest) or "no version"
            problems.add(
                ProblemKind.CORRUPT_BLOB,
                digest,
                f"bytes hash to {actual[:16]}… ({length} bytes), not their name; used by {holders}",
            )

    if progress is not None:
        progress(0, total)
    slots = threading.BoundedSemaphore(max(1, workers) * 4)  # bounded queue of tasks
    failures: list[BaseException] = []

    def finished(future: Any) -> None:
        slots.release()
        if future.exception() is not None:
            failures.append(future.exception())

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for digest, _ in blobs:
            slots.acquire()
            if failures:
                break
            pool.submit(check, digest).add_done_callback(finished)
    if failures:
        raise failures[0]
    return len(blobs), done[0]


def _check_log(session: Session, problems: _Problems, seen: _Seen, public_key: Any) -> int | None:
    """The transparency log: stored leaf and subtree hashes recompute from the entries,
    stored tree heads match the recomputed roots (and verify with ``public_key``), every
    version has its publish/quarantine entry, every tag's latest move names its version,
    and every logged version exists. ``None`` when this registry has no log."""
    from sqlalchemy import inspect, select

    from modelseal.transparency.entries import EntryKind, LogEntry
    from modelseal.transparency.errors import LogError
    from modelseal.transparency.merkle import leaf_hash

    if "log_state" not in inspect(session.connection()).get_table_names():
        return None
    from modelseal.registry.db.models import LogEntryRow, LogState
    from modelseal.registry.transparency_store import subject_of

    state = session.get(LogState, 1)
    size = 0 if state is None else int(state.size)
    leaves: list[bytes] = []
    logged: dict[str, tuple[str, str]] = {}
    tag_moves: dict[str, str] = {}
    query = (
        select(LogEntryRow.idx, LogEntryRow.leaf_hash, LogEntryRow.kind, LogEntryRow.subject)
        .add_columns(LogEntryRow.data)
        .order_by(LogEntryRow.idx)
        .execution_options(yield_per=_BATCH)
    )
    for idx, stored_leaf, kind, subject, data in session.execute(query):
        where = f"log entry {idx}"
        if idx != len(leaves):
            problems.add(
                ProblemKind.LOG_ENTRY, where, f"entries {len(leaves)}..{idx - 1} are missing"
            )
            break
        leaf = leaf_hash(bytes(data))
        leaves.append(leaf)
        if bytes(stored_leaf) != leaf:
            problems.add(ProblemKind.LOG_HASH, where, "its stored leaf hash does not recompute")
        try:
            entry = LogEntry.from_bytes(bytes(data))
        except LogError as exc:
            problems.add(ProblemKind.LOG_ENTRY, where, f"not a canonical entry: {exc}")
            continue
        if entry.kind.value != kind or subject_of(entry.kind, entry.fields)[:400] != subject:
            problems.add(ProblemKind.LOG_ENTRY, where, "its kind/subject columns disagree")
        fields = entry.fields
        if entry.kind in (EntryKind.PUBLISH, EntryKind.QUARANTINE):
            state_name = "published" if entry.kind is EntryKind.PUBLISH else "quarantined"
            logged[subject] = (state_name, str(fields["digest"]))
        elif entry.kind is EntryKind.TAG_MOVE:
            tag_moves[subject] = str(fields["version"])
    if len(leaves) != size and not problems.has(ProblemKind.LOG_ENTRY):
        problems.add(
            ProblemKind.LOG_ENTRY,
            "log",
            f"the log size is {size} but {len(leaves)} entries are stored",
        )
    levels = _check_log_nodes(session, leaves, problems)
    _check_tree_heads(session, levels, len(leaves), problems, public_key)
    for subject, (state_name, digest) in sorted(seen.versions.items()):
        entry_state = logged.get(subject)
        if entry_state is None:
            problems.add(ProblemKind.LOG_MISSING_ENTRY, subject, f"{state_name} but never logged")
        elif entry_state != (state_name, digest):
            problems.add(
                ProblemKind.LOG_MISSING_ENTRY,
                subject,
                f"the log records it {entry_state[0]} with digest {entry_state[1][:16]}…, "
                f"the database {state_name} with {digest[:16]}…",
            )
    for subject in sorted(set(logged) - set(seen.versions)):
        problems.add(
            ProblemKind.LOGGED_VERSION_MISSING,
            subject,
            f"the log records it {logged[subject][0]} but its version row is gone",
        )
    for subject, version in sorted(seen.tags.items()):
        if tag_moves.get(subject) != version:
            problems.add(
                ProblemKind.LOG_MISSING_ENTRY,
                subject,
                f"points at {version} but the log's last move of it names "
                f"{tag_moves.get(subject, 'nothing')}",
            )
    return len(leaves)


def _check_log_nodes(
    session: Session, leaves: list[bytes], problems: _Problems
) -> list[list[bytes]]:
    """Recompute every complete subtree level from the leaves; compare the cached ones."""
    from sqlalchemy import select

    from modelseal.registry.db.models import LogNodeRow
    from modelseal.transparency.merkle import node_hash

    stored: dict[tuple[int, int], bytes] = {
        (int(level), int(idx)): bytes(value)
        for level, idx, value in session.execute(
            select(LogNodeRow.level, LogNodeRow.idx, LogNodeRow.hash)
        )
    }
    levels = [leaves]
    while len(levels[-1]) >= 2:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    for (level, idx), value in sorted(stored.items()):
        if level >= len(levels) or idx >= len(levels[level]):
            problems.add(
                ProblemKind.LOG_HASH, f"log node {level}/{idx}", "a subtree beyond the log's end"
            )
        elif levels[level][idx] != value:
            problems.add(
                ProblemKind.LOG_HASH,
                f"log node {level}/{idx}",
                f"cached hash of entries {idx << level}..{((idx + 1) << level) - 1} "
                "does not recompute",
            )
    return levels


def _check_tree_heads(
    session: Session, levels: list[list[bytes]], size: int, problems: _Problems, public_key: Any
) -> None:
    from modelseal.registry.transparency_store import stored_tree_heads
    from modelseal.transparency.errors import LogVerificationError
    from modelseal.transparency.merkle import EMPTY_ROOT, node_hash, split_point
    from modelseal.transparency.sth import verify_tree_head

    def range_hash(start: int, end: int) -> bytes:
        width = end - start
        if width & (width - 1) == 0 and start % width == 0:
            level = width.bit_length() - 1
            return levels[level][start >> level]
        k = split_point(width)
        return node_hash(range_hash(start, start + k), range_hash(start + k, end))

    key_id = None
    if public_key is not None:
        from modelseal.integrity.signing.keys import key_hint

        key_id = key_hint(public_key)
    for sth in stored_tree_heads(session):
        where = f"tree head {sth.tree_size}"
        if sth.tree_size > size:
            problems.add(ProblemKind.LOG_TREE_HEAD, where, f"larger than the log ({size})")
            continue
        root = EMPTY_ROOT if sth.tree_size == 0 else range_hash(0, sth.tree_size)
        if root != sth.root_hash:
            problems.add(
                ProblemKind.LOG_TREE_HEAD,
                where,
                "its signed root differs from the root of the stored entries: "
                "the log was rewritten after this head was issued",
            )
        if key_id is not None and sth.key_id == key_id:
            try:
                verify_tree_head(sth, public_key)
            except LogVerificationError as exc:
                problems.add(ProblemKind.LOG_TREE_HEAD, where, str(exc))
