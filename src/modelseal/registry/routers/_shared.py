"""Helpers shared by the routers: lookups, pagination, the version document."""

from __future__ import annotations

from typing import Any

from fastapi import Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from modelseal.registry.db.models import Model, Namespace, Tag, Version
from modelseal.registry.errors import NotFoundError
from modelseal.registry.names import check_name

__all__ = ["Page", "get_model", "page_params", "require_full_view", "version_doc"]

Page = dict[str, Any]


def page_params(
    limit: int = Query(50, ge=1, le=500, description="Items per page."),
    cursor: int = Query(0, ge=0, description="The `next` value of the previous page."),
) -> tuple[int, int]:
    """Cursor pagination: items with an id above ``cursor``, ``limit`` at a time."""
    return limit, cursor


def page(items: list[dict[str, Any]], ids: list[int], limit: int) -> Page:
    """``{"items", "next"}``; ``next`` is ``None`` on the last page."""
    more = len(items) > limit
    return {"items": items[:limit], "next": ids[limit - 1] if more else None}


def get_model(session: Session, namespace: Namespace, name: str) -> Model:
    """The model ``name`` in ``namespace`` or 404."""
    check_name(name, "model name")
    model = session.scalars(
        select(Model).where(Model.namespace_id == namespace.id, Model.name == name)
    ).one_or_none()
    if model is None:
        raise NotFoundError(f"no model {namespace.name}/{name}")
    return model


def version_doc(session: Session, version: Version, *, show_reasons: bool) -> dict[str, Any]:
    """The JSON document of a version (reasons only for callers who may push).

    Of a quarantined version, callers who may not push see only the state: no reasons,
    files, digests of its files, signature, SBOM or scan summary (the file digests would
    let them name the quarantined bytes).
    """
    tags = session.scalars(select(Tag.name).where(Tag.version_id == version.id)).all()
    model = version.model
    doc = {
        "namespace": model.namespace.name,
        "model": model.name,
        "version": version.name,
        "serial": version.id,
        "digest": version.digest,
        "state": version.state,
        "reasons": list(version.reasons) if show_reasons else [],
        "files": list(version.files),
        "total_size": version.total_size,
        "signature_digest": version.signature_digest,
        "signed_by": version.signed_by,
        "unsigned_files": list(version.unsigned_files or []),
        "sbom_digest": version.sbom_digest,
        "scan_verdict": version.scan_verdict,
        "scan_summary": (version.scan_report or {}).get("summary", {}),
        "scan_threshold": model.namespace.scan_threshold,
        "parent": version.parent,
        "uploader": version.uploader.name if version.uploader else None,
        "created_at": version.created_at.isoformat(),
        "tags": sorted(tags),
    }
    if version.state != "published" and not show_reasons:
        doc.update(
            files=[],
            signature_digest=None,
            sbom_digest=None,
            scan_summary={},
            signed_by=None,
        )
    return doc


def require_full_view(version: Version, may_push: bool, what: str) -> None:
    """404 for the scan report or SBOM of a quarantined version to a caller who may not
    push (readers see only the state of quarantined versions)."""
    if version.state != "published" and not may_push:
        raise NotFoundError(
            f"the {what} of a quarantined version is shown only to its publishers",
            advice="ask a publisher of the namespace",
        )
