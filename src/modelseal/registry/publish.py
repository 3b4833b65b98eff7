"""Uploads and commits: staging chunks, checking digests, making a version appear atomically.

Blobs of an upload are staged under ``STAGING/<upload id>/<digest>.part`` and appended
to strictly in order (the client sends ``offset``; a mismatch is refused with the
server's offset, which is what makes uploads resumable across cut connections and
server restarts). When a blob is complete its SHA-256 is checked, then it moves into
the blob store. A version row is created only by :func:`commit_upload`, in one
transaction, after every blob is present and the publish gate has run, so a crash
at any point leaves either no version or a whole one. Its ``publish`` (or
``quarantine``) transparency-log entry is appended in that same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelseal.registry.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    TooLargeError,
)
from modelseal.registry.gate import GateResult, TrustedKeyInfo
from modelseal.registry.manifest import FileEntry, check_file_list, version_digest
from modelseal.registry.names import check_name, check_version

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelseal.registry.db.models import Model, Namespace, Upload, Version
    from modelseal.registry.identity import Principal
    from modelseal.registry.settings import RegistrySettings
    from modelseal.registry.storage.interface import BlobStore

__all__ = [
    "PreparedCommit",
    "Staging",
    "commit_upload",
    "expire_uploads",
    "finish_commit",
    "prepare_commit",
    "present_digests",
    "record_blob",
    "reopen_interrupted_commits",
    "reopen_upload",
    "start_upload",
    "upload_status",
]

_HASH_CHUNK = 4 * 1024 * 1024


class Staging:
    """Partial blobs on local disk, with the running SHA-256 of each kept in memory.

    After a restart the running hash is rebuilt by re-reading the partial file.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._hashers: dict[tuple[str, str], tuple[int, Any]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._guard = threading.Lock()

    def part(self, upload_id: str, digest: str) -> Path:
        """The partial file of one blob of one upload."""
        return self.root / upload_id / f"{digest}.part"

    def offset(self, upload_id: str, digest: str) -> int:
        """How many bytes of the blob the server has."""
        try:
            return self.part(upload_id, digest).stat().st_size
        except FileNotFoundError:
            return 0

    def discard(self, upload_id: str) -> None:
        """Remove everything staged for an upload."""
        with self._guard:
            for key in [k for k in self._hashers if k[0] == upload_id]:
                del self._hashers[key]
        shutil.rmtree(self.root / upload_id, ignore_errors=True)

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        with self._guard:
            return self._locks.setdefault(key, asyncio.Lock())

    async def append(
        self,
        upload_id: str,
        digest: str,
        size: int,
        offset: int,
        chunks: AsyncIterator[bytes],
    ) -> tuple[int, Path | None]:
        """Append a request body at ``offset``; return the new offset and, when the blob is
        complete and its digest checked, the path of the finished file."""
        key = (upload_id, digest)
        lock = self._lock(key)
        if lock.locked():
            raise ConflictError(
                f"blob {digest[:12]} is being uploaded by another request",
                advice="retry after it finishes",
            )
        async with lock:
            path = self.part(upload_id, digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            current = self.offset(upload_id, digest)
            if offset != current:
                raise ConflictError(
                    f"offset {offset} does not match the {current} bytes the server has",
                    advice=f"resume at offset {current}",
                )
            cached = self._hashers.pop(key, None)
            if cached is not None and cached[0] == current:
                hasher = cached[1]
            else:
                hasher = await asyncio.to_thread(_hash_prefix, path, current)
            written = current
            sink = _Sink(path, hasher)
            try:
                pending: list[bytes] = []
                pending_size = 0
                async for chunk in chunks:
                    if written + pending_size + len(chunk) > size:
                        sink.close()
                        os.truncate(path, current)
                        written, hasher = current, _hash_prefix(path, current)
                        raise TooLargeError(
                            f"blob {digest[:12]} is declared as {size} bytes; the upload sent more",
                            advice="upload exactly the declared bytes",
                        )
                    pending.append(chunk)
                    pending_size += len(chunk)
                    if pending_size >= _SINK_CHUNK:
                        sink.put(pending)
                        written += pending_size
                        pending, pending_size = [], 0
                if pending:
                    sink.put(pending)
                    written += pending_size
            finally:
                await asyncio.to_thread(sink.close)
                self._hashers[key] = (written, hasher)
            if written < size:
                return written, None
            self._hashers.pop(key, None)
            if hasher.hexdigest() != digest:
                path.unlink()
                raise BadRequestError(
                    f"the bytes uploaded for {digest[:12]} have SHA-256 {hasher.hexdigest()[:12]}",
                    advice="the file changed during upload or was corrupted; push again",
                )
            return written, path


_SINK_CHUNK = 1024 * 1024


class _Sink:
    """Hashes and appends chunks in a worker thread, so the event loop keeps parsing."""

    def __init__(self, path: Path, hasher: Any) -> None:
        import queue

        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=8)
        self._hasher = hasher
        self._handle = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by close()
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunks := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                for chunk in chunks:
                    self._hasher.update(chunk)
                    self._handle.write(chunk)
            except BaseException as exc:
                self._error = exc

    def put(self, chunks: list[bytes]) -> None:
        """Queue chunks (blocks briefly when the worker is behind)."""
        self._queue.put(chunks)

    def close(self) -> None:
        """Wait until every queued chunk is hashed and written; re-raise a write error."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._handle.close()
        if self._error is not None:
            raise self._error


def _hash_prefix(path: Path, length: int) -> Any:
    hasher = hashlib.sha256()
    if length == 0:
        return hasher
    with open(path, "rb") as handle:
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(_HASH_CHUNK, remaining))
            if not chunk:
                break
            hasher.update(chunk)
            remaining -= len(chunk)
    return hasher


def start_upload(
    session: Session,
    settings: RegistrySettings,
    namespace: Namespace,
    principal: Principal,
    model: str,
    version: str,
    files: list[dict[str, Any]],
    *,
    parent: str | None = None,
    tags: list[str] | None = None,
) -> tuple[Upload, bool]:
    """Open an upload session (or return the caller's open one for the same content).

    Returns the upload and whether it was newly created.
    """
    from sqlalchemy import select

    from modelseal.registry.db.models import Model, Upload, Version, utcnow

    check_name(model, "model name")
    check_version(version)
    for tag in tags or ():
        check_version(tag, "tag")
    if parent is not None and len(parent) > 300:
        raise BadRequestError("the parent reference is too long")
    entries = sorted((FileEntry.from_dict(f) for f in files), key=lambda f: f.path)
    check_file_list(entries, max_files=settings.max_files, max_file_bytes=settings.max_file_bytes)
    existing_model = session.scalars(
        select(Model).where(Model.namespace_id == namespace.id, Model.name == model)
    ).one_or_none()
    if existing_model is not None:
        taken = session.scalars(
            select(Version).where(Version.model_id == existing_model.id, Version.name == version)
        ).one_or_none()
        if taken is not None:
            _check_replaceable(session, principal, namespace, taken)
    wire = [e.to_dict() for e in entries]
    _check_declared_sizes(session, principal, entries)
    now = utcnow()
    same = session.scalars(
        select(Upload).where(
            Upload.namespace_id == namespace.id,
            Upload.model_name == model,
            Upload.version_name == version,
            Upload.user_id == principal.user_id,
            Upload.state == "open",
        )
    ).all()
    for upload in same:
        if upload.files == wire and upload.expires_at > now:
            upload.parent, upload.tags = parent, list(tags or [])
            session.commit()
            return upload, False
    import datetime as dt

    _check_quota(session, settings, principal, entries)
    upload = Upload(
        id=secrets.token_urlsafe(18),
        namespace_id=namespace.id,
        model_name=model,
        version_name=version,
        user_id=principal.user_id,
        files=wire,
        parent=parent,
        tags=list(tags or []),
        expires_at=now + dt.timedelta(seconds=settings.upload_ttl_seconds),
    )
    session.add(upload)
    session.commit()
    return upload, True


def _check_replaceable(
    session: Session, principal: Principal, namespace: Namespace, taken: Version
) -> None:
    """Refuse to reuse an existing version name, except a quarantined version that the
    caller pushed (or administers the namespace of): that one may be pushed again, and
    the new commit replaces it (the log keeps the quarantine entry and adds the new one).
    Published versions are immutable."""
    from modelseal.registry.auth import allowed_actions

    name = f"{namespace.name}/{taken.model.name}:{taken.name}"
    if taken.state != "quarantined":
        raise ConflictError(
            f"{name} exists already ({taken.state})",
            advice="versions are immutable: push under a new version",
        )
    if taken.uploader_id != principal.user_id and "admin" not in allowed_actions(
        session, principal, namespace
    ):
        raise ConflictError(
            f"{name} exists already (quarantined, pushed by another user)",
            advice="only its uploader or a namespace admin may push it again; "
            "or push under a new version",
        )


def _replace_quarantined(
    session: Session, principal: Principal, namespace: Namespace, model: Model, upload: Upload
) -> None:
    """Remove the quarantined version this commit replaces (same transaction).

    Only an upload opened after that version appeared replaces it (a deliberate retry);
    two racing commits of one new name still end in one version and a 409.
    """
    from sqlalchemy import delete, select

    from modelseal.registry.db.models import Version, VersionBlob

    taken = session.scalars(
        select(Version).where(Version.model_id == model.id, Version.name == upload.version_name)
    ).one_or_none()
    if taken is None or taken.created_at >= upload.created_at:
        return
    _check_replaceable(session, principal, namespace, taken)
    session.execute(delete(VersionBlob).where(VersionBlob.version_id == taken.id))
    session.execute(delete(Version).where(Version.id == taken.id, Version.state == "quarantined"))
    session.expunge(taken)


def _check_declared_sizes(session: Session, principal: Principal, entries: list[FileEntry]) -> None:
    """Refuse a declared size that differs from a stored blob the uploader can read.

    Blobs the uploader cannot read are not looked at: their bytes must be sent, and a
    wrong size then fails the digest check, so nothing is revealed about them.
    """
    from sqlalchemy import select

    from modelseal.registry.db.models import Blob
    from modelseal.registry.services.blobs import mountable_digests

    declared = {e.digest: e.size for e in entries}
    readable = mountable_digests(session, principal, declared)
    if not readable:
        return
    stored = session.execute(
        select(Blob.digest, Blob.size).where(Blob.digest.in_(sorted(readable)))
    ).all()
    for digest, size in stored:
        if declared[digest] != size:
            raise BadRequestError(
                f"blob {digest[:12]} is declared as {declared[digest]} bytes "
                f"but the stored blob with that digest has {size}",
                advice="declare each file's real size",
            )


def _check_quota(
    session: Session, settings: RegistrySettings, principal: Principal, entries: list[FileEntry]
) -> None:
    """Refuse an upload whose declared bytes would take the user's open uploads over quota."""
    from sqlalchemy import select

    from modelseal.registry.db.models import Upload, utcnow

    wanted = sum({e.digest: e.size for e in entries}.values())
    open_files = session.scalars(
        select(Upload.files).where(
            Upload.user_id == principal.user_id,
            Upload.state == "open",
            Upload.expires_at > utcnow(),
        )
    ).all()
    held = sum(sum({f["digest"]: f["size"] for f in files}.values()) for files in open_files)
    if held + wanted > settings.max_user_upload_bytes:
        raise TooLargeError(
            f"this upload declares {wanted} bytes; with your open uploads ({held} bytes) that "
            f"is over the quota of {settings.max_user_upload_bytes} bytes per user",
            advice="finish or abort (DELETE) your open uploads first",
        )


def expire_uploads(session: Session, staging: Staging, *, limit: int = 100) -> int:
    """Mark open uploads past their expiry as failed and free their staged bytes."""
    from sqlalchemy import select

    from modelseal.registry.db.models import Upload, utcnow

    expired = session.scalars(
        select(Upload).where(Upload.state == "open", Upload.expires_at <= utcnow()).limit(limit)
    ).all()
    for upload in expired:
        upload.state = "failed"
        staging.discard(upload.id)
    if expired:
        session.commit()
    return len(expired)


def present_digests(session: Session, principal: Principal, upload: Upload) -> set[str]:
    """The upload's digests the server holds *for this upload*: those it sent, and those
    the uploader can already read elsewhere (never any other stored blob)."""
    from sqlalchemy import select

    from modelseal.registry.db.models import Blob
    from modelseal.registry.services.blobs import mountable_digests, received_digests

    digests = {f["digest"] for f in upload.files}
    usable = (received_digests(session, upload.id) & digests) | mountable_digests(
        session, principal, digests
    )
    if not usable:
        return set()
    return set(session.scalars(select(Blob.digest).where(Blob.digest.in_(sorted(usable)))))


def upload_status(
    session: Session, staging: Staging, upload: Upload, principal: Principal
) -> dict[str, Any]:
    """The upload document: every distinct blob with how much the server has of it."""
    digests = {f["digest"]: f["size"] for f in upload.files}
    stored = present_digests(session, principal, upload)
    blobs = []
    for digest, size in sorted(digests.items()):
        have = size if digest in stored else min(staging.offset(upload.id, digest), size)
        blobs.append({"digest": digest, "size": size, "offset": have, "complete": digest in stored})
    return {
        "id": upload.id,
        "model": upload.model_name,
        "version": upload.version_name,
        "state": upload.state,
        "expires_at": upload.expires_at.isoformat(),
        "blobs": blobs,
        "missing": [b["digest"] for b in blobs if not b["complete"]],
    }


def record_blob(
    session: Session, store: BlobStore, upload_id: str, digest: str, path: Path, size: int
) -> None:
    """Move a verified staged file into the store, record it, and record that this upload
    sent it (idempotent)."""
    from sqlalchemy.exc import IntegrityError

    from modelseal.registry.db.models import Blob, UploadBlob

    store.put_file(digest, path)
    for row in (Blob(digest=digest, size=size), UploadBlob(upload_id=upload_id, digest=digest)):
        key = (row.digest,) if isinstance(row, Blob) else (upload_id, digest)
        if session.get(type(row), key) is None:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # a concurrent request recorded it first
                session.rollback()


def _store_small(session: Session, store: BlobStore, data: bytes) -> str:
    from modelseal.registry.db.models import Blob

    digest = hashlib.sha256(data).hexdigest()
    store.put_bytes(digest, data)
    if session.get(Blob, digest) is None:
        session.add(Blob(digest=digest, size=len(data)))
    return digest


def _materialise(store: BlobStore, files: list[dict[str, Any]], target: Path) -> None:
    """Lay the version's files out under ``target`` (hard links when the store is local)."""
    for entry in files:
        destination = target / entry["path"]
        destination.parent.mkdir(parents=True, exist_ok=True)
        source = store.local_path(entry["digest"])
        if source is not None:
            try:
                os.link(source, destination)
                continue
            except OSError:
                pass
        with open(destination, "wb") as handle:
            for chunk in store.iter_bytes(entry["digest"]):
                handle.write(chunk)


def _get_or_create_model(session: Session, namespace_id: int, name: str) -> Model:
    """The model row, created in its own short transaction if missing.

    Concurrent first pushes of one model would otherwise race on the unique
    (namespace, name) row and all but one fail at commit.
    """
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session as PlainSession

    from modelseal.registry.db.models import Model

    query = select(Model).where(Model.namespace_id == namespace_id, Model.name == name)
    model = session.scalars(query).one_or_none()
    if model is not None:
        return model
    with PlainSession(session.get_bind()) as own:
        own.add(Model(namespace_id=namespace_id, name=name))
        try:
            own.commit()
        except IntegrityError:  # another push created it first
            own.rollback()
    return session.scalars(query).one()


@dataclass(frozen=True)
class PreparedCommit:
    """A claimed upload (state ``checking``) and the gate run it needs."""

    upload_id: str
    job: _GateJob
    scan_bytes: int
    bundle_id: str | None


def prepare_commit(
    session: Session,
    settings: RegistrySettings,
    upload: Upload,
    principal: Principal,
    signature: bytes | None,
) -> PreparedCommit:
    """Check a complete upload and claim it for the gate, in one short transaction.

    Committing is three steps so that no database connection is held while the gate
    scans: this one; the gate (:meth:`_GateJob.run`, over the blob store only, on the
    app's bounded :class:`~modelseal.registry.services.gate_queue.GateQueue`); then
    :func:`finish_commit`. If the gate or that step fails, :func:`reopen_upload` makes
    the upload committable again.
    """
    from sqlalchemy import select, update

    from modelseal.registry.db.models import Blob, Namespace, TrustedKey, Upload
    from modelseal.registry.gate import scan_plan
    from modelseal.registry.services.versions import (
        bundle_identity,
        check_bundle_unused,
        parent_reasons,
    )

    if upload.state != "open":
        raise ConflictError(f"upload {upload.id} is {upload.state}")
    if signature is not None and len(signature) > settings.max_signature_bytes:
        raise TooLargeError(f"the signature bundle is over {settings.max_signature_bytes} bytes")
    declared = {f["digest"]: f["size"] for f in upload.files}
    present = present_digests(session, principal, upload)
    missing = sorted(set(declared) - present)
    if missing:
        raise ConflictError(
            f"{len(missing)} blob(s) are not uploaded yet: "
            + ", ".join(d[:12] for d in missing[:5]),
            advice="upload every missing blob, then commit again",
        )
    for digest, size in session.execute(
        select(Blob.digest, Blob.size).where(Blob.digest.in_(sorted(declared)))
    ):
        if declared[digest] != size:
            raise BadRequestError(f"blob {digest[:12]} is declared as {declared[digest]} bytes")
    namespace = session.get(Namespace, upload.namespace_id)
    if namespace is None:
        raise NotFoundError("the upload's namespace was deleted")
    bundle_id = bundle_identity(signature) if signature else None
    if bundle_id is not None:
        check_bundle_unused(
            session, bundle_id, namespace.id, upload.model_name, upload.version_name
        )
    entries = [FileEntry.from_dict(f) for f in upload.files]
    scanned, duplicates = scan_plan(entries)
    scan_bytes = sum(e.size for e in scanned)
    if scan_bytes > settings.max_scan_bytes_per_commit:
        raise TooLargeError(
            f"this version has {scan_bytes} bytes of distinct files to scan, over the "
            f"server's limit of {settings.max_scan_bytes_per_commit} per commit",
            advice="split the model, or ask the registry admin to raise the limit",
        )
    job = _GateJob(
        files=list(upload.files),
        scanned=scanned,
        duplicates=duplicates,
        signature=signature,
        keys=[
            TrustedKeyInfo(k.fingerprint, k.kind, k.public_key_pem, k.identity, k.issuer)
            for k in session.scalars(
                select(TrustedKey).where(
                    TrustedKey.namespace_id == namespace.id, TrustedKey.revoked_at.is_(None)
                )
            ).all()
        ],
        threshold=namespace.scan_threshold,
        require_signature=namespace.require_signature,
        require_sbom=settings.require_sbom,
        extra_reasons=parent_reasons(session, upload.parent),
    )
    upload_id = upload.id
    claimed = session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.state == "open")
        .values(state="checking")
        .execution_options(synchronize_session=False)
    )
    session.commit()  # the connection goes back to the pool for the gate's duration
    if getattr(claimed, "rowcount", 1) != 1:
        raise ConflictError(
            f"upload {upload_id} is being committed by another request",
            advice="wait for that commit to finish",
        )
    return PreparedCommit(upload_id, job, scan_bytes, bundle_id)


def reopen_upload(session: Session, upload_id: str) -> None:
    """Make an upload whose gate run or version transaction failed committable again."""
    from sqlalchemy import update

    from modelseal.registry.db.models import Upload

    session.rollback()
    session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.state == "checking")
        .values(state="open")
        .execution_options(synchronize_session=False)
    )
    session.commit()


def reopen_interrupted_commits(session: Session) -> int:
    """At server start: uploads left ``checking`` by a crash are open again."""
    from sqlalchemy import update

    from modelseal.registry.db.models import Upload

    result = session.execute(update(Upload).where(Upload.state == "checking").values(state="open"))
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def commit_upload(
    session: Session,
    store: BlobStore,
    staging: Staging,
    settings: RegistrySettings,
    upload: Upload,
    principal: Principal,
    signature: bytes | None,
) -> Version:
    """Prepare, gate and finish a commit inline (no queue: for callers without an app)."""
    prepared = prepare_commit(session, settings, upload, principal, signature)
    try:
        result = prepared.job.run(store, staging.root)
        return finish_commit(session, store, staging, prepared, principal, signature, result)
    except BaseException:
        reopen_upload(session, prepared.upload_id)
        raise


def finish_commit(
    session: Session,
    store: BlobStore,
    staging: Staging,
    prepared: PreparedCommit,
    principal: Principal,
    signature: bytes | None,
    result: GateResult,
) -> Version:
    """Create the gated version and free the upload's staged bytes."""
    version = _create_version(
        session, store, prepared.upload_id, principal, signature, prepared.bundle_id, result
    )
    with contextlib.suppress(OSError):
        staging.discard(prepared.upload_id)
    return version


@dataclass(frozen=True)
class _GateJob:
    """Everything one gate run needs, read from the database before it starts."""

    files: list[dict[str, Any]]
    scanned: list[FileEntry]
    duplicates: dict[str, str]
    signature: bytes | None
    keys: list[TrustedKeyInfo]
    threshold: str
    require_signature: bool
    require_sbom: bool
    extra_reasons: list[str]

    def run(self, store: BlobStore, scratch: Path) -> GateResult:
        """Lay the files out (once per distinct file for the scan) and run the gate."""
        from modelseal.registry.gate import run_gate

        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="gate-", dir=scratch) as tmp:
            model_dir, scan_dir = Path(tmp) / "model", Path(tmp) / "scan"
            model_dir.mkdir()
            scan_dir.mkdir()
            _materialise(store, self.files, model_dir)
            _materialise(store, [e.to_dict() for e in self.scanned], scan_dir)
            return run_gate(
                model_dir,
                files=[FileEntry.from_dict(f) for f in self.files],
                signature=self.signature,
                trusted_keys=self.keys,
                scan_threshold=self.threshold,
                require_signature=self.require_signature,
                require_sbom=self.require_sbom,
                scan_dir=scan_dir,
                duplicates=self.duplicates,
                extra_reasons=self.extra_reasons,
            )


def _create_version(
    session: Session,
    store: BlobStore,
    upload_id: str,
    principal: Principal,
    signature: bytes | None,
    bundle_id: str | None,
    result: GateResult,
) -> Version:
    """The version row, its blobs, tags and log entry, in one transaction (409 on a race)."""
    from sqlalchemy.exc import IntegrityError

    from modelseal.registry.db.models import Namespace, Upload, Version, VersionBlob
    from modelseal.registry.services.tags import move_tag
    from modelseal.registry.transparency_store import log_event
    from modelseal.transparency.entries import EntryKind

    upload = session.get(Upload, upload_id, populate_existing=True)
    if upload is None or upload.state != "checking":
        raise ConflictError(f"upload {upload_id} was aborted during the gate")
    namespace = session.get(Namespace, upload.namespace_id)
    if namespace is None:
        raise NotFoundError("the upload's namespace was deleted")
    model = _get_or_create_model(session, namespace.id, upload.model_name)
    entries = [FileEntry.from_dict(f) for f in upload.files]
    try:
        _replace_quarantined(session, principal, namespace, model, upload)
        signature_digest = _store_small(session, store, signature) if signature else None
        sbom_digest = _store_small(session, store, result.sbom) if result.sbom else None
        version = Version(
            model_id=model.id,
            name=upload.version_name,
            digest=version_digest(entries),
            state="published" if result.published else "quarantined",
            reasons=list(result.reasons),
            files=list(upload.files),
            total_size=sum(e.size for e in entries),
            signature_digest=signature_digest,
            bundle_id=bundle_id,
            signed_by=result.signed_by,
            unsigned_files=list(result.unsigned),
            sbom_digest=sbom_digest,
            scan_report=result.scan_report,
            scan_verdict=result.scan_verdict,
            parent=upload.parent,
            uploader_id=principal.user_id,
        )
        session.add(version)
        session.flush()
        log_event(
            session,
            EntryKind.PUBLISH if result.published else EntryKind.QUARANTINE,
            namespace=namespace.name,
            model=model.name,
            version=version.name,
            digest=version.digest,
            serial=version.id,
            signer=version.signed_by,
            uploader=principal.name,
        )
        blobs = {e.digest for e in entries} | {d for d in (signature_digest, sbom_digest) if d}
        for digest in sorted(blobs):
            session.add(VersionBlob(version_id=version.id, digest=digest))
        if result.published:
            for tag in upload.tags:
                move_tag(session, version, tag, principal.user_id)
        upload.state = "committed"
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(
            f"{namespace.name}/{upload.model_name}:{upload.version_name} exists already "
            "(another commit created it first)",
            advice="versions are immutable: push under a new version",
        ) from exc
    return version
