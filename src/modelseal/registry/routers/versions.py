"""Versions: list, resolve (by version, tag or digest), scan report and SBOM."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from modelseal.registry.auth import MaybePrincipal, SessionDep, allowed_actions, authorize
from modelseal.registry.db.models import Tag, Version
from modelseal.registry.errors import NotFoundError
from modelseal.registry.names import check_digest, check_version
from modelseal.registry.routers._shared import (
    get_model,
    page,
    page_params,
    require_full_view,
    version_doc,
)
from modelseal.registry.schemas import ResolvedVersionDoc

__all__ = ["resolve_version", "router"]

router = APIRouter(prefix="/namespaces/{namespace}/models/{model}", tags=["versions"])


def resolve_version(session: SessionDep, model_id: int, ref: str) -> tuple[Version, str]:
    """``ref`` as a version name (first: versions are immutable), a tag, or ``sha256:DIGEST``.

    Returns the version and how it was resolved: "version", "tag" or "digest".
    """
    if ref.startswith("sha256:"):
        digest = check_digest(ref)
        found = session.scalars(
            select(Version).where(Version.model_id == model_id, Version.digest == digest)
        ).first()
        kind = "digest"
    else:
        check_version(ref, "version or tag")
        found = session.scalars(
            select(Version).where(Version.model_id == model_id, Version.name == ref)
        ).one_or_none()
        kind = "version"
        if found is None:
            tag = session.scalars(
                select(Tag).where(Tag.model_id == model_id, Tag.name == ref)
            ).one_or_none()
            found = tag.version if tag is not None else None
            kind = "tag"
    if found is None:
        raise NotFoundError(f"no version, tag or digest {ref!r}")
    return found, kind


@router.get("/versions")
def list_versions(
    namespace: str,
    model: str,
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
    paging: Annotated[tuple[int, int], Depends(page_params)],
) -> dict[str, Any]:
    """Versions of a model, oldest first."""
    limit, cursor = paging
    row = authorize(request, session, principal, namespace, "read")
    show = "push" in allowed_actions(session, principal, row)
    found = get_model(session, row, model)
    versions = session.scalars(
        select(Version)
        .where(Version.model_id == found.id, Version.id > cursor)
        .order_by(Version.id)
        .limit(limit + 1)
    ).all()
    docs = [version_doc(session, v, show_reasons=show) for v in versions]
    for doc in docs:
        del doc["files"]
    return page(docs, [v.id for v in versions], limit)


@router.get("/resolve/{ref:path}", response_model=ResolvedVersionDoc)
def resolve(
    namespace: str,
    model: str,
    ref: str,
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
) -> dict[str, Any]:
    """The version a reference points to, with ``resolved_by`` (version, tag or digest)."""
    row = authorize(request, session, principal, namespace, "read")
    found, kind = resolve_version(session, get_model(session, row, model).id, ref)
    show = "push" in allowed_actions(session, principal, row)
    return {**version_doc(session, found, show_reasons=show), "resolved_by": kind}


@router.get("/versions/{version}/scan")
def scan_report(
    namespace: str,
    model: str,
    version: str,
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
) -> dict[str, Any]:
    """The server's scan report for a version (DESIGN.md JSON shape)."""
    row = authorize(request, session, principal, namespace, "read")
    found, _ = resolve_version(session, get_model(session, row, model).id, version)
    require_full_view(found, "push" in allowed_actions(session, principal, row), "scan report")
    return found.scan_report or {}


@router.get("/versions/{version}/sbom")
def sbom(
    namespace: str,
    model: str,
    version: str,
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
) -> Response:
    """The SBOM stored for a version."""
    row = authorize(request, session, principal, namespace, "read")
    found, _ = resolve_version(session, get_model(session, row, model).id, version)
    require_full_view(found, "push" in allowed_actions(session, principal, row), "SBOM")
    if not found.sbom_digest:
        raise NotFoundError(f"version {version!r} has no SBOM")
    data = request.app.state.store.read_bytes(found.sbom_digest)
    return Response(data, media_type="application/json")
