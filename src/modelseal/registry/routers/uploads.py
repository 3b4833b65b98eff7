"""Uploads: open a session, send blobs in resumable chunks, commit through the publish gate."""

from __future__ import annotations

import base64
import binascii
import functools
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from modelseal.errors import RegistryError
from modelseal.registry.auth import (
    RequiredPrincipal,
    SessionDep,
    SettingsDep,
    authorize,
    record_refusal,
)
from modelseal.registry.db.models import Namespace, Upload, utcnow
from modelseal.registry.errors import (
    BadRequestError,
    NotFoundError,
    TooLargeError,
    UnavailableError,
)
from modelseal.registry.gate import GateResult
from modelseal.registry.identity import Principal
from modelseal.registry.names import check_digest
from modelseal.registry.publish import (
    PreparedCommit,
    expire_uploads,
    finish_commit,
    prepare_commit,
    present_digests,
    record_blob,
    reopen_upload,
    start_upload,
    upload_status,
)
from modelseal.registry.services.catalog import version_doc

__all__ = ["router"]

router = APIRouter(tags=["uploads"])


class FileIn(BaseModel):
    """One file of the version being pushed."""

    path: str
    digest: str
    size: int


class UploadIn(BaseModel):
    """A new upload: the version's complete file list."""

    version: str
    files: list[FileIn] = Field(max_length=100_000)
    parent: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)


class CommitIn(BaseModel):
    """The signature bundle (base64 of the model-signing JSON), if the version is signed."""

    signature: str | None = None


def _upload_for(request: Request, session: Session, principal: Principal, upload_id: str) -> Upload:
    """The caller's own open upload; the push right is checked again on every request."""
    upload = session.get(Upload, upload_id[:64])
    if upload is None or upload.user_id != principal.user_id:
        raise NotFoundError(f"no upload {upload_id!r} of yours")
    namespace = session.get(Namespace, upload.namespace_id)
    authorize(request, session, principal, namespace.name if namespace else "", "push")
    if upload.state == "open" and upload.expires_at <= utcnow():
        raise NotFoundError(f"upload {upload_id!r} expired", advice="push again")
    return upload


@router.post("/namespaces/{namespace}/models/{model}/uploads", status_code=201)
def create_upload(
    namespace: str,
    model: str,
    body: UploadIn,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: RequiredPrincipal,
) -> dict[str, Any]:
    """Open an upload (or resume the caller's open upload of the same files)."""
    row = authorize(request, session, principal, namespace, "push")
    expire_uploads(session, request.app.state.staging)
    try:
        upload, created = start_upload(
            session,
            settings,
            row,
            principal,
            model,
            body.version,
            [f.model_dump() for f in body.files],
            parent=body.parent,
            tags=body.tags,
        )
    except RegistryError as exc:
        record_refusal(
            request,
            getattr(exc, "code", "refused"),
            f"upload to {namespace}: {exc.message}",
            principal.user_id,
        )
        raise
    if not created:
        response.status_code = 200
    return upload_status(session, request.app.state.staging, upload, principal)


@router.get("/uploads/{upload_id}")
def show_upload(
    upload_id: str, request: Request, session: SessionDep, principal: RequiredPrincipal
) -> dict[str, Any]:
    """How much of each blob the server has (resume from ``offset``)."""
    upload = _upload_for(request, session, principal, upload_id)
    return upload_status(session, request.app.state.staging, upload, principal)


@router.patch("/uploads/{upload_id}/blobs/{digest}")
async def upload_chunk(
    upload_id: str,
    digest: str,
    request: Request,
    session: SessionDep,
    principal: RequiredPrincipal,
    offset: int = Query(..., ge=0, description="Where this chunk starts in the blob."),
) -> dict[str, Any]:
    """Append the request body to a blob at ``offset``; the blob is stored once complete."""
    upload = _upload_for(request, session, principal, upload_id)
    digest = check_digest(digest)
    sizes = {f["digest"]: f["size"] for f in upload.files}
    if digest not in sizes:
        raise NotFoundError(f"blob {digest[:12]} is not part of upload {upload_id}")
    size = sizes[digest]
    if digest in present_digests(session, principal, upload):
        return {"digest": digest, "offset": size, "complete": True}
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and offset + int(declared) > size:
        raise TooLargeError(
            f"chunk ends at {offset + int(declared)}, "
            f"past the declared size {size} of {digest[:12]}",
            advice="upload exactly the declared bytes",
        )
    staging = request.app.state.staging
    written, finished = await staging.append(upload_id, digest, size, offset, request.stream())
    if finished is not None:
        import anyio

        await anyio.to_thread.run_sync(
            record_blob, session, request.app.state.store, upload.id, digest, finished, size
        )
    return {"digest": digest, "offset": written, "complete": finished is not None}


@router.post("/uploads/{upload_id}/commit", status_code=201)
async def commit(
    upload_id: str,
    body: CommitIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: RequiredPrincipal,
) -> dict[str, Any]:
    """Check every blob, run the publish gate and create the version (published or quarantined).

    The request waits for the gate as a coroutine: it holds no worker thread and no
    database connection while the bounded gate pool scans.
    """
    import anyio

    state = request.app.state
    signature = None
    if body.signature is not None:
        if len(body.signature) > settings.max_signature_bytes * 2:
            raise TooLargeError("the signature bundle is too large")
        try:
            signature = base64.b64decode(body.signature, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequestError("the signature must be base64") from exc

    def prepare() -> PreparedCommit:
        upload = _upload_for(request, session, principal, upload_id)
        return prepare_commit(session, settings, upload, principal, signature)

    def finish(result: GateResult) -> dict[str, Any]:
        version = finish_commit(
            session, state.store, state.staging, prepared, principal, signature, result
        )
        return version_doc(session, version, show_reasons=True)

    try:
        prepared = await anyio.to_thread.run_sync(prepare)
        try:
            with anyio.fail_after(settings.gate_timeout_seconds):
                result = await state.gate.run(
                    principal.user_id,
                    prepared.scan_bytes,
                    functools.partial(prepared.job.run, state.store, state.staging.root),
                )
            return await anyio.to_thread.run_sync(finish, result)
        except BaseException:
            await anyio.to_thread.run_sync(reopen_upload, session, prepared.upload_id)
            raise
    except TimeoutError as exc:
        raise UnavailableError(
            f"the publish gate did not finish within {settings.gate_timeout_seconds} s",
            advice="commit again later",
        ) from exc
    except RegistryError as exc:
        detail = f"commit {upload_id}: {exc.message}"
        await anyio.to_thread.run_sync(
            record_refusal, request, getattr(exc, "code", "refused"), detail, principal.user_id
        )
        raise


@router.delete("/uploads/{upload_id}", status_code=204)
def abort(
    upload_id: str, request: Request, session: SessionDep, principal: RequiredPrincipal
) -> Response:
    """Abandon an upload and free its staged bytes."""
    upload = _upload_for(request, session, principal, upload_id)
    if upload.state == "open":
        upload.state = "failed"
        session.commit()
    request.app.state.staging.discard(upload.id)
    return Response(status_code=204)
