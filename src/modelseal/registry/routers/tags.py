"""Tags: movable names for published versions, with an append-only history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from modelseal.registry.auth import MaybePrincipal, RequiredPrincipal, SessionDep, authorize
from modelseal.registry.services import tags
from modelseal.registry.services.catalog import get_model, resolve_version

__all__ = ["router"]

router = APIRouter(prefix="/namespaces/{namespace}/models/{model}/tags", tags=["tags"])


class TagIn(BaseModel):
    """Where a tag should point: a version name or ``sha256:DIGEST``."""

    version: str


@router.get("")
def list_tags(
    namespace: str, model: str, request: Request, session: SessionDep, principal: MaybePrincipal
) -> dict[str, Any]:
    """Every tag of the model and its version."""
    row = authorize(request, session, principal, namespace, "read")
    found = get_model(session, row, model)
    return {
        "items": [
            {
                "tag": t.name,
                "version": t.version.name,
                "serial": t.version.id,
                "updated_at": t.updated_at.isoformat(),
            }
            for t in tags.list_tags(session, found)
        ]
    }


@router.put("/{tag}")
def set_tag(
    namespace: str,
    model: str,
    tag: str,
    body: TagIn,
    request: Request,
    session: SessionDep,
    principal: RequiredPrincipal,
) -> dict[str, Any]:
    """Move a tag (publishers)."""
    row = authorize(request, session, principal, namespace, "push")
    found = get_model(session, row, model)
    version, _ = resolve_version(session, found.id, body.version)
    tags.move_tag(session, version, tag, principal.user_id)
    session.commit()
    return {"tag": tag, "version": version.name, "serial": version.id}


@router.get("/{tag}/history")
def tag_history(
    namespace: str,
    model: str,
    tag: str,
    request: Request,
    session: SessionDep,
    principal: MaybePrincipal,
) -> dict[str, Any]:
    """Every move of a tag, oldest first."""
    row = authorize(request, session, principal, namespace, "read")
    found = get_model(session, row, model)
    return {
        "items": [
            {"version": m.version, "serial": m.serial, "at": m.at}
            for m in tags.tag_history(session, found, tag)
        ]
    }
