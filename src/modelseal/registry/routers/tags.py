"""Tags: movable names for published versions, with an append-only history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from modelseal.registry.auth import PushNamespace, ReadNamespace, RequiredPrincipal, SessionDep
from modelseal.registry.services import tags
from modelseal.registry.services.catalog import get_model, resolve_version

__all__ = ["router"]

router = APIRouter(prefix="/namespaces/{namespace}/models/{model}/tags", tags=["tags"])


class TagIn(BaseModel):
    """Where a tag should point: a version name or ``sha256:DIGEST``."""

    version: str


@router.get("")
def list_tags(row: ReadNamespace, model: str, session: SessionDep) -> dict[str, Any]:
    """Every tag of the model and its version."""
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
    row: PushNamespace,
    model: str,
    tag: str,
    body: TagIn,
    session: SessionDep,
    principal: RequiredPrincipal,
) -> dict[str, Any]:
    """Move a tag (publishers)."""
    found = get_model(session, row, model)
    version, _ = resolve_version(session, found.id, body.version)
    tags.move_tag(session, version, tag, principal.user_id)
    session.commit()
    return {"tag": tag, "version": version.name, "serial": version.id}


@router.get("/{tag}/history")
def tag_history(
    row: ReadNamespace,
    model: str,
    tag: str,
    session: SessionDep,
) -> dict[str, Any]:
    """Every move of a tag, oldest first."""
    found = get_model(session, row, model)
    return {
        "items": [
            {"version": m.version, "serial": m.serial, "at": m.at}
            for m in tags.tag_history(session, found, tag)
        ]
    }
