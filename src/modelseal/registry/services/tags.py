"""Tags: movable names for published versions, with an append-only history."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from modelseal.registry.db.models import Model, Tag, TagEvent, Version, utcnow
from modelseal.registry.errors import ConflictError
from modelseal.registry.names import check_version
from modelseal.registry.transparency_store import log_event
from modelseal.transparency.entries import EntryKind

__all__ = ["TagMove", "list_tags", "move_tag", "tag_history"]


@dataclass(frozen=True)
class TagMove:
    """One move of a tag: the version it was pointed at (``None`` if since deleted)."""

    version: str | None
    serial: int | None
    at: str


def move_tag(session: Session, version: Version, tag: str, user_id: int | None) -> None:
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


def list_tags(session: Session, model: Model) -> list[Tag]:
    """Every tag of the model, by name."""
    return list(session.scalars(select(Tag).where(Tag.model_id == model.id).order_by(Tag.name)))


def tag_history(session: Session, model: Model, tag: str) -> list[TagMove]:
    """Every move of a tag, oldest first."""
    events = session.execute(
        select(TagEvent, Version.name)
        .join(Version, TagEvent.version_id == Version.id, isouter=True)
        .where(TagEvent.model_id == model.id, TagEvent.tag == check_version(tag, "tag"))
        .order_by(TagEvent.id)
    ).all()
    return [TagMove(name, event.version_id, event.at.isoformat()) for event, name in events]
