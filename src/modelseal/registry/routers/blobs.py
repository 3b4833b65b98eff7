"""Blob downloads: streamed from local storage, or a redirect to a presigned S3 URL."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse

from modelseal.registry.auth import MaybePrincipal, ReadNamespace, SessionDep
from modelseal.registry.errors import NotFoundError
from modelseal.registry.names import check_digest
from modelseal.registry.services.blobs import blob_readable_in

__all__ = ["router"]

router = APIRouter(tags=["blobs"])


class _BigChunkFileResponse(FileResponse):
    chunk_size = 4 * 1024 * 1024


@router.get("/namespaces/{namespace}/blobs/{digest}", response_model=None)
def get_blob(
    row: ReadNamespace,
    digest: str,
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
) -> Response:
    """A blob of a version in the namespace (quarantined versions: publishers only)."""
    digest = check_digest(digest)
    if not blob_readable_in(session, principal, row, digest):
        raise NotFoundError(f"no blob {digest[:12]} in namespace {row.name!r}")
    store = request.app.state.store
    url = store.download_url(digest)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    path = store.local_path(digest)
    if path is not None:
        return _BigChunkFileResponse(path, media_type="application/octet-stream")
    try:
        size = store.size(digest)
    except FileNotFoundError as exc:
        raise NotFoundError(f"blob {digest[:12]} is missing from storage") from exc
    return StreamingResponse(
        store.iter_bytes(digest),
        media_type="application/octet-stream",
        headers={"content-length": str(size)},
    )
