"""Versions: list, resolve (by version, tag or digest), scan report and SBOM."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from modelseal.registry.auth import MaybePrincipal, ReadNamespace, SessionDep, allowed_actions
from modelseal.registry.errors import NotFoundError
from modelseal.registry.routers._shared import page, page_params
from modelseal.registry.schemas import ResolvedVersionDoc
from modelseal.registry.services import catalog
from modelseal.registry.services.catalog import (
    get_model,
    require_full_view,
    resolve_version,
    version_doc,
)

__all__ = ["router"]

router = APIRouter(prefix="/namespaces/{namespace}/models/{model}", tags=["versions"])


@router.get("/versions")
def list_versions(
    row: ReadNamespace,
    model: str,
    session: SessionDep,
    principal: MaybePrincipal,
    paging: Annotated[tuple[int, int], Depends(page_params)],
) -> dict[str, Any]:
    """Versions of a model, oldest first."""
    limit, cursor = paging
    show = "push" in allowed_actions(session, principal, row)
    versions, next_cursor = catalog.list_versions(
        session, get_model(session, row, model), after=cursor, limit=limit
    )
    docs = [version_doc(session, v, show_reasons=show) for v in versions]
    for doc in docs:
        del doc["files"]
    return page(docs, next_cursor)


@router.get("/resolve/{ref:path}", response_model=ResolvedVersionDoc)
def resolve(
    row: ReadNamespace,
    model: str,
    ref: str,
    session: SessionDep,
    principal: MaybePrincipal,
) -> dict[str, Any]:
    """The version a reference points to, with ``resolved_by`` (version, tag or digest)."""
    found, kind = resolve_version(session, get_model(session, row, model).id, ref)
    show = "push" in allowed_actions(session, principal, row)
    return {**version_doc(session, found, show_reasons=show), "resolved_by": kind}


@router.get("/versions/{version}/scan")
def scan_report(
    row: ReadNamespace,
    model: str,
    version: str,
    session: SessionDep,
    principal: MaybePrincipal,
) -> dict[str, Any]:
    """The server's scan report for a version (DESIGN.md JSON shape)."""
    found, _ = resolve_version(session, get_model(session, row, model).id, version)
    require_full_view(found, "push" in allowed_actions(session, principal, row), "scan report")
    return found.scan_report or {}


@router.get("/versions/{version}/sbom")
def sbom(
    row: ReadNamespace,
    model: str,
    version: str,
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
) -> Response:
    """The SBOM stored for a version."""
    found, _ = resolve_version(session, get_model(session, row, model).id, version)
    require_full_view(found, "push" in allowed_actions(session, principal, row), "SBOM")
    if not found.sbom_digest:
        raise NotFoundError(f"version {version!r} has no SBOM")
    data = request.app.state.store.read_bytes(found.sbom_digest)
    return Response(data, media_type="application/json")
