"""Tags: movable names for published versions, with an append-only history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select, update

from modelseal.registry.auth import MaybePrincipal, RequiredPrincipal, SessionDep, authorize
from modelseal.registry.db.models import Model, Tag, TagEvent, Version, utcnow
from modelseal.registry.errors import ConflictError
from modelseal.registry.names import check_version
from modelseal.registry.routers._shared import get_model
from modelseal.registry.routers.versions import resolve_version
from modelseal.registry.transparency_store import log_event
from modelseal.transparency.entries import EntryKind

__all__ = ["move_tag", "router"]

router = APIRouter(prefix="/namespaces/{namespace}/models/{model}/tags", tags=["tags"])


class TagIn(BaseModel):
    """Where a tag should point: a version name or ``sha256:DIGEST``."""

    version: str


def move_tag(session: SessionDep, version: Version, tag: str, user_id: int | None) -> None:
    """Point ``tag`` at ``version`` (published only) and record the move (tag history and
    a ``tag-move`` transparency-log entry, committed with the caller's transaction)."""
    check_version(tag, "tag")
    if version.state != "published":
        raise ConflictError(
            f"version {version.name!r} is {version.state}; only published versions can be tagged"
        )
    # Serialise tag moves of one model until commit (PostgreSQL: this row lock; SQLite:
    # the write lock), so concurrent moves neither race to create the tag nor reach
    # the log in another order than the one they were applied in.
    session.execute(
        update(Model).where(Model.id == version.model_id).values(description=Model.description)
    )
    existing = session.scalars(
        select(Tag).where(Tag.model_id == version.model_id, Tag.name == tag)
    ).one_or_none()
    if existing is None:
        session.add(Tag(model_id=version.model_id, name=tag, version_id=version.id))
    else:
        existing.version_id = version.id
        existing.updated_at = utcnow()
    session.add(
        TagEvent(model_id=version.model_id, tag=tag, version_id=version.id, user_id=user_id)
    )
    model = version.model
    log_event(
        session,
        EntryKind.TAG_MOVE,
        namespace=model.namespace.name,
        model=model.name,
        tag=tag,
        version=version.name,
        digest=version.digest,
        serial=version.id,
    )


@router.get("")
def list_tags(
    namespace: str, model: str, request: Request, session: SessionDep, principal: MaybePrincipal
) -> dict[str, Any]:
    """Every tag of the model and its version."""
    row = authorize(request, session, principal, namespace, "read")
    found = get_model(session, row, model)
    tags = session.scalars(select(Tag).where(Tag.model_id == found.id).order_by(Tag.name)).all()
    return {
        "items": [
            {
                "tag": t.name,
                "version": t.version.name,
                "serial": t.version.id,
                "updated_at": t.updated_at.isoformat(),
            }
            for t in tags
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
    move_tag(session, version, tag, principal.user_id)
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
    events = session.execute(
        select(TagEvent, Version.name)
        .join(Version, TagEvent.version_id == Version.id, isouter=True)
        .where(TagEvent.model_id == found.id, TagEvent.tag == check_version(tag, "tag"))
        .order_by(TagEvent.id)
    ).all()
    return {
        "items": [
            {"version": name, "serial": event.version_id, "at": event.at.isoformat()}
            for event, name in events
        ]
    }
