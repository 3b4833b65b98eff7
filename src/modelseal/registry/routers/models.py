"""Models: list a namespace's models, show one, search across namespaces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from modelseal.registry.auth import MaybePrincipal, SessionDep, allowed_actions, authorize
from modelseal.registry.db.models import Model, Namespace, Tag, Version
from modelseal.registry.routers._shared import get_model, page, page_params
from modelseal.registry.schemas import ModelDoc

__all__ = ["router"]

router = APIRouter(tags=["models"])


def _doc(session: SessionDep, model: Model) -> dict[str, Any]:
    latest = session.scalars(
        select(Version)
        .where(Version.model_id == model.id, Version.state == "published")
        .order_by(Version.id.desc())
        .limit(1)
    ).one_or_none()
    tags = session.execute(
        select(Tag.name, Version.name)
        .join(Version, Tag.version_id == Version.id)
        .where(Tag.model_id == model.id)
    ).all()
    return {
        "namespace": model.namespace.name,
        "model": model.name,
        "description": model.description,
        "latest_version": latest.name if latest else None,
        "tags": {tag: version for tag, version in sorted(tags)},
        "created_at": model.created_at.isoformat(),
    }


@router.get("/namespaces/{namespace}/models")
def list_models(
    namespace: str,
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
    paging: Annotated[tuple[int, int], Depends(page_params)],
) -> dict[str, Any]:
    """The models of a namespace."""
    limit, cursor = paging
    row = authorize(request, session, principal, namespace, "read")
    models = session.scalars(
        select(Model)
        .where(Model.namespace_id == row.id, Model.id > cursor)
        .order_by(Model.id)
        .limit(limit + 1)
    ).all()
    return page([_doc(session, m) for m in models], [m.id for m in models], limit)


@router.get("/namespaces/{namespace}/models/{model}", response_model=ModelDoc)
def show_model(
    namespace: str, model: str, request: Request, session: SessionDep, principal: MaybePrincipal
) -> dict[str, Any]:
    """One model with its tags and latest published version."""
    row = authorize(request, session, principal, namespace, "read")
    return _doc(session, get_model(session, row, model))


@router.get("/search")
def search(
    session: SessionDep,
    principal: MaybePrincipal,
    paging: Annotated[tuple[int, int], Depends(page_params)],
    q: str = Query("", max_length=100, description="Substring of the model name."),
) -> dict[str, Any]:
    """Models whose name contains ``q``, in namespaces the caller can read."""
    limit, cursor = paging
    pattern = "%" + q.lower().replace("\\", "").replace("%", "").replace("_", "\\_") + "%"
    readable: dict[int, bool] = {}
    items: list[dict[str, Any]] = []
    ids: list[int] = []
    last = cursor
    while len(items) <= limit:
        batch = session.scalars(
            select(Model)
            .join(Namespace, Model.namespace_id == Namespace.id)
            .where(Model.id > last, Model.name.like(pattern, escape="\\"))
            .order_by(Model.id)
            .limit(200)
        ).all()
        if not batch:
            break
        for model in batch:
            last = model.id
            if model.namespace_id not in readable:
                readable[model.namespace_id] = "read" in allowed_actions(
                    session, principal, model.namespace
                )
            if readable[model.namespace_id]:
                items.append(_doc(session, model))
                ids.append(model.id)
    return page(items, ids, limit)
