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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelseal.registry.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    TooLargeError,
)
from modelseal.registry.manifest import FileEntry, check_file_list, version_digest
from modelseal.registry.names import check_name, check_version

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelseal.registry.db.models import Model, Namespace, Upload, Version
    from modelseal.registry.identity import Principal
    from modelseal.registry.settings import RegistrySettings
    from modelseal.registry.storage.interface import BlobStore

__all__ = ["Staging", "commit_upload", "expire_uploads", "start_upload", "upload_status"]

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
            raise ConflictError(
                f"{namespace.name}/{model}:{version} exists already ({taken.state})",
                advice="versions are immutable: push under a new version",
            )
    wire = [e.to_dict() for e in entries]
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


def upload_status(session: Session, staging: Staging, upload: Upload) -> dict[str, Any]:
    """The upload document: every distinct blob with how much the server has of it."""
    from sqlalchemy import select

    from modelseal.registry.db.models import Blob

    digests = {f["digest"]: f["size"] for f in upload.files}
    stored = set(session.scalars(select(Blob.digest).where(Blob.digest.in_(list(digests)))).all())
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


def record_blob(session: Session, store: BlobStore, digest: str, path: Path, size: int) -> None:
    """Move a verified staged file into the store and record it (idempotent)."""
    from sqlalchemy.exc import IntegrityError

    from modelseal.registry.db.models import Blob

    store.put_file(digest, path)
    if session.get(Blob, digest) is None:
        session.add(Blob(digest=digest, size=size))
        try:
            session.commit()
        except IntegrityError:
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


def commit_upload(
    session: Session,
    store: BlobStore,
    staging: Staging,
    settings: RegistrySettings,
    upload: Upload,
    principal: Principal,
    signature: bytes | None,
) -> Version:
    """Run the publish gate over a complete upload and create its version in one transaction."""
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from modelseal.registry.db.models import (
        Blob,
        Namespace,
        TrustedKey,
        Version,
        VersionBlob,
    )
    from modelseal.registry.gate import TrustedKeyInfo, run_gate
    from modelseal.registry.routers.tags import move_tag
    from modelseal.registry.transparency_store import log_event
    from modelseal.transparency.entries import EntryKind

    if upload.state != "open":
        raise ConflictError(f"upload {upload.id} is {upload.state}")
    if signature is not None and len(signature) > settings.max_signature_bytes:
        raise TooLargeError(f"the signature bundle is over {settings.max_signature_bytes} bytes")
    digests = {f["digest"] for f in upload.files}
    stored = set(session.scalars(select(Blob.digest).where(Blob.digest.in_(list(digests)))).all())
    missing = sorted(digests - stored)
    if missing:
        raise ConflictError(
            f"{len(missing)} blob(s) are not uploaded yet: "
            + ", ".join(d[:12] for d in missing[:5]),
            advice="upload every missing blob, then commit again",
        )
    namespace = session.get(Namespace, upload.namespace_id)
    if namespace is None:
        raise NotFoundError("the upload's namespace was deleted")
    keys = [
        TrustedKeyInfo(k.fingerprint, k.kind, k.public_key_pem, k.identity, k.issuer)
        for k in session.scalars(
            select(TrustedKey).where(
                TrustedKey.namespace_id == namespace.id, TrustedKey.revoked_at.is_(None)
            )
        ).all()
    ]
    staging.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gate-", dir=staging.root) as tmp:
        model_dir = Path(tmp) / "model"
        model_dir.mkdir()
        _materialise(store, upload.files, model_dir)
        result = run_gate(
            model_dir,
            files=[FileEntry.from_dict(f) for f in upload.files],
            signature=signature,
            trusted_keys=keys,
            scan_threshold=namespace.scan_threshold,
            require_signature=namespace.require_signature,
            require_sbom=settings.require_sbom,
        )
    model = _get_or_create_model(session, namespace.id, upload.model_name)
    entries = [FileEntry.from_dict(f) for f in upload.files]
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
        signed_by=result.signed_by,
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
    for digest in sorted(digests | {d for d in (signature_digest, sbom_digest) if d}):
        session.add(VersionBlob(version_id=version.id, digest=digest))
    if result.published:
        for tag in upload.tags:
            move_tag(session, version, tag, principal.user_id)
    upload.state = "committed"
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(
            f"{namespace.name}/{upload.model_name}:{upload.version_name} exists already",
            advice="versions are immutable: push under a new version",
        ) from exc
    with contextlib.suppress(OSError):
        staging.discard(upload.id)
    return version
