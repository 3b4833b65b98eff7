"""The Hugging Face Hub's download API under ``/hf``, for unmodified HF clients.

With ``HF_ENDPOINT=https://REGISTRY/hf`` the current ``huggingface_hub`` (and so
``transformers``, ``sentence-transformers``, ``diffusers``) reads published
versions: ``model_info`` (``/api/models/NS/MODEL[/revision/REV]``), the file listing
(``/api/models/NS/MODEL/tree/REV[/PATH]``) and files (``HEAD``/``GET
/NS/MODEL/resolve/REV/PATH``) with the headers the client checks: ``X-Repo-Commit``,
``ETag`` and ``X-Linked-Etag`` (the file's SHA-256), ``X-Linked-Size``, ranges for
resumed downloads. S3 blobs are a redirect to a presigned URL, local blobs are
streamed. Refusals carry ``X-Error-Code`` / ``X-Error-Message``, which the client
turns into its own exceptions and shows. Decisions live in
:mod:`modelseal.registry.services.hf`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.routing import APIRoute

from modelseal.errors import ModelsealError, RegistryError
from modelseal.registry.auth import MaybePrincipal, SessionDep
from modelseal.registry.errors import http_status
from modelseal.registry.services.hf import (
    HubError,
    HubRevision,
    hub_refs,
    model_document,
    resolve_file,
    resolve_hub_revision,
    tree_entries,
)

__all__ = ["router"]

_INVALID_TOKEN = "Invalid credentials in Authorization header"


def _header_text(text: str) -> str:
    """A message that fits in an HTTP header (one line of latin-1, bounded)."""
    line = " ".join(text.split())[:1000]
    return line.encode("latin-1", "replace").decode("latin-1")


def hub_error_response(request: Request, exc: ModelsealError) -> JSONResponse:
    """A refusal as the Hub sends it: status, ``X-Error-Code``, ``X-Error-Message``."""
    message = exc.message + (f" ({exc.advice})" if exc.advice else "")
    headers = {"X-Error-Message": _header_text(message)}
    if isinstance(exc, HubError):
        status, code = exc.status, exc.hub_code
        if exc.commit:
            headers["X-Repo-Commit"] = exc.commit
    else:
        status = http_status(exc) if isinstance(exc, RegistryError) else 400
        code = None
        if status == 401 and request.headers.get("authorization"):
            headers["X-Error-Message"] = _INVALID_TOKEN  # the client shows the body too
    if code:
        headers["X-Error-Code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _HubRoute(APIRoute):
    """Renders every modelseal error of this router (dependencies included) the Hub's way."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ModelsealError as exc:
                return hub_error_response(request, exc)

        return handle


router = APIRouter(prefix="/hf", tags=["hugging face"], route_class=_HubRoute)


class _BigChunkFileResponse(FileResponse):
    chunk_size = 4 * 1024 * 1024


def _info(
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
    namespace: str,
    model: str,
    revision: str | None,
) -> dict[str, Any]:
    found = resolve_hub_revision(request, session, principal, namespace, model, revision)
    return model_document(session, found)


@router.get("/api/models/{namespace}/{model}")
def model_info(
    namespace: str, model: str, request: Request, session: SessionDep, principal: MaybePrincipal
) -> dict[str, Any]:
    """``HfApi().model_info(repo)``: the default revision (``main``)."""
    return _info(request, session, principal, namespace, model, None)


@router.get("/api/models/{namespace}/{model}/revision/{revision}")
def model_info_at(
    namespace: str,
    model: str,
    revision: str,
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
) -> dict[str, Any]:
    """``HfApi().model_info(repo, revision=REV)``."""
    return _info(request, session, principal, namespace, model, revision)


@router.get("/api/models/{namespace}/{model}/refs")
def refs(
    namespace: str, model: str, request: Request, session: SessionDep, principal: MaybePrincipal
) -> dict[str, Any]:
    """``list_repo_refs``: tags as branches (with ``main``), version names as tags."""
    return hub_refs(request, session, principal, namespace, model)


@router.get("/api/models/{namespace}/{model}/tree/{revision}")
@router.get("/api/models/{namespace}/{model}/tree/{revision}/{path:path}")
def tree(
    namespace: str,
    model: str,
    revision: str,
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
    path: str = "",
    recursive: bool = Query(False),
) -> list[dict[str, Any]]:
    """``list_repo_tree`` / ``list_repo_files``: one page holding every entry."""
    found = resolve_hub_revision(request, session, principal, namespace, model, revision)
    return tree_entries(found, path, recursive=recursive)


def _file_headers(found: HubRevision, digest: str, size: int) -> dict[str, str]:
    return {
        "X-Repo-Commit": found.commit,
        "ETag": f'"{digest}"',
        "X-Linked-Etag": f'"{digest}"',
        "X-Linked-Size": str(size),
        "Accept-Ranges": "bytes",
        # Tags move and reads may need a token: no shared cache may keep the answer.
        "Cache-Control": "private, no-cache",
    }


_RESOLVE = "/{namespace}/{model}/resolve/{revision}/{path:path}"


@router.head(_RESOLVE, response_model=None, operation_id="hf_resolve_head")
@router.get(_RESOLVE, response_model=None, operation_id="hf_resolve")
def resolve(
    namespace: str,
    model: str,
    revision: str,
    path: str,
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
) -> Response:
    """A file of a published version: streamed (ranges honoured), or a redirect to a
    presigned URL when blobs are in S3."""
    found = resolve_hub_revision(request, session, principal, namespace, model, revision)
    entry = resolve_file(found, path)
    headers = _file_headers(found, entry.digest, entry.size)
    store = request.app.state.store
    url = store.download_url(entry.digest)
    if url is not None:
        return RedirectResponse(url, status_code=302, headers=headers)
    local = store.local_path(entry.digest)
    if local is not None:
        # FileResponse answers HEAD and single ``Range`` requests itself.
        del headers["Accept-Ranges"]
        return _BigChunkFileResponse(
            local,
            media_type="application/octet-stream",
            headers=headers,
            content_disposition_type="inline",
            filename=path.rsplit("/", 1)[-1],
        )
    if request.headers.get("range"):
        headers["Accept-Ranges"] = "none"
    body = store.iter_bytes(entry.digest) if request.method == "GET" else iter(())
    return StreamingResponse(
        body,
        media_type="application/octet-stream",
        headers={**headers, "Content-Length": str(entry.size)},
    )
