"""Namespaces, models and versions as readers see them: lookups, listings, documents.

The API routers, the web pages, the Hub download API and the publish path all find a
model, resolve a reference and describe a version through these functions, so what a
reader may see of a quarantined version, or which namespaces a listing shows, is
decided here once. Listings page by id: they return one page and the id to continue
after (``None`` on the last page).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, joinedload

from modelseal.registry.auth import allowed_actions
from modelseal.registry.db.models import Model, Namespace, Tag, TrustedKey, User, Version
from modelseal.registry.errors import NotFoundError
from modelseal.registry.identity import Principal
from modelseal.registry.names import check_digest, check_name, check_version

__all__ = [
    "LatestVersion",
    "derived_versions",
    "find_namespace",
    "get_model",
    "latest_published",
    "list_models",
    "list_versions",
    "model_counts",
    "model_doc",
    "newest_versions",
    "quarantine_count",
    "quarantined_versions",
    "readable_namespaces",
    "require_full_view",
    "resolve_version",
    "search_models",
    "trusted_keys",
    "user_names",
    "version_counts",
    "version_doc",
]

_T = TypeVar("_T")
_BATCH = 200


def _page(rows: Sequence[_T], limit: int, key: Callable[[_T], int]) -> tuple[list[_T], int | None]:
    """The first ``limit`` of ``rows`` (fetched as ``limit + 1``) and the id to go on after."""
    more = len(rows) > limit
    items = list(rows[:limit])
    return items, (key(items[-1]) if more and items else None)


# --- namespaces ---------------------------------------------------------------------


def find_namespace(session: Session, name: str) -> Namespace | None:
    """The namespace called ``name``, or ``None``."""
    return session.scalars(select(Namespace).where(Namespace.name == name)).one_or_none()


def readable_namespaces(
    session: Session, principal: Principal | None, after: int, limit: int
) -> tuple[list[tuple[Namespace, set[str]]], int | None]:
    """Namespaces ``principal`` can read, with its actions in each, by id after ``after``."""
    items: list[tuple[Namespace, set[str]]] = []
    last = after
    while len(items) <= limit:
        batch = session.scalars(
            select(Namespace).where(Namespace.id > last).order_by(Namespace.id).limit(_BATCH)
        ).all()
        if not batch:
            break
        for namespace in batch:
            last = namespace.id
            actions = allowed_actions(session, principal, namespace)
            if "read" in actions:
                items.append((namespace, actions))
    return _page(items, limit, lambda item: item[0].id)


def model_counts(session: Session, namespace_ids: Sequence[int]) -> dict[int, int]:
    """How many models each namespace holds."""
    rows = session.execute(
        select(Model.namespace_id, func.count(Model.id))
        .where(Model.namespace_id.in_(namespace_ids))
        .group_by(Model.namespace_id)
    ).all()
    return {int(ns): int(count) for ns, count in rows}


def trusted_keys(session: Session, namespace: Namespace, *, revoked: bool) -> list[TrustedKey]:
    """The namespace's keys in the order they were added (``revoked``: those too)."""
    query = select(TrustedKey).where(TrustedKey.namespace_id == namespace.id)
    if not revoked:
        query = query.where(TrustedKey.revoked_at.is_(None))
    return list(session.scalars(query.order_by(TrustedKey.id)).all())


# --- models -------------------------------------------------------------------------


def get_model(session: Session, namespace: Namespace, name: str) -> Model:
    """The model ``name`` in ``namespace`` or 404."""
    check_name(name, "model name")
    model = session.scalars(
        select(Model).where(Model.namespace_id == namespace.id, Model.name == name)
    ).one_or_none()
    if model is None:
        raise NotFoundError(f"no model {namespace.name}/{name}")
    return model


def model_doc(session: Session, model: Model) -> dict[str, Any]:
    """The JSON document of a model: its tags and newest published version."""
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


def list_models(
    session: Session, namespace: Namespace, after: int, limit: int
) -> tuple[list[Model], int | None]:
    """The namespace's models by id after ``after``."""
    rows = session.scalars(
        select(Model)
        .where(Model.namespace_id == namespace.id, Model.id > after)
        .order_by(Model.id)
        .limit(limit + 1)
    ).all()
    return _page(rows, limit, lambda m: m.id)


def search_models(
    session: Session, principal: Principal | None, text: str, after: int, limit: int
) -> tuple[list[Model], int | None]:
    """Models whose name contains ``text`` (case-insensitive, no wildcards), in
    namespaces ``principal`` can read."""
    pattern = "%" + text.lower().replace("\\", "").replace("%", "").replace("_", "\\_") + "%"
    readable: dict[int, bool] = {}
    items: list[Model] = []
    last = after
    while len(items) <= limit:
        batch = session.scalars(
            select(Model)
            .join(Namespace, Model.namespace_id == Namespace.id)
            .where(Model.id > last, Model.name.like(pattern, escape="\\"))
            .order_by(Model.id)
            .limit(_BATCH)
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
                items.append(model)
    return _page(items, limit, lambda m: m.id)


# --- versions -----------------------------------------------------------------------


def resolve_version(session: Session, model_id: int, ref: str) -> tuple[Version, str]:
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


def list_versions(
    session: Session, model: Model, *, after: int = 0, limit: int
) -> tuple[list[Version], int | None]:
    """A page of the model's versions, oldest first, by id after ``after``."""
    rows = session.scalars(
        select(Version)
        .where(Version.model_id == model.id, Version.id > after)
        .order_by(Version.id)
        .limit(limit + 1)
    ).all()
    return _page(rows, limit, lambda v: v.id)


def newest_versions(
    session: Session, model: Model, *, before: int = 0, limit: int
) -> tuple[list[Version], int | None]:
    """A page of the model's versions, newest first, by id below ``before`` (0: from the newest)."""
    query = select(Version).where(Version.model_id == model.id)
    if before:
        query = query.where(Version.id < before)
    rows = session.scalars(query.order_by(Version.id.desc()).limit(limit + 1)).all()
    return _page(rows, limit, lambda v: v.id)


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


class LatestVersion(NamedTuple):
    """A model's newest published version."""

    name: str
    created_at: dt.datetime


def latest_published(session: Session, model_ids: Sequence[int]) -> dict[int, LatestVersion]:
    """The newest published version of each model (one query for all)."""
    if not model_ids:
        return {}
    newest = (
        select(Version.model_id, func.max(Version.id).label("vid"))
        .where(Version.model_id.in_(model_ids), Version.state == "published")
        .group_by(Version.model_id)
        .subquery()
    )
    rows = session.execute(
        select(Version.model_id, Version.name, Version.created_at).join(
            newest, Version.id == newest.c.vid
        )
    ).all()
    return {int(model_id): LatestVersion(name, created) for model_id, name, created in rows}


def version_counts(session: Session, model_ids: Sequence[int]) -> dict[int, int]:
    """How many versions (any state) each model has."""
    rows = session.execute(
        select(Version.model_id, func.count(Version.id))
        .where(Version.model_id.in_(model_ids))
        .group_by(Version.model_id)
    ).all()
    return {int(model_id): int(count) for model_id, count in rows}


def _quarantine_query(
    namespace: Namespace, principal: Principal | None, actions: set[str]
) -> Select[Version]:
    where = [Model.namespace_id == namespace.id, Version.state == "quarantined"]
    if "admin" not in actions:
        where.append(Version.uploader_id == (principal.user_id if principal else -1))
    return select(Version).join(Model, Version.model_id == Model.id).where(*where)


def quarantined_versions(
    session: Session,
    namespace: Namespace,
    principal: Principal | None,
    *,
    before: int = 0,
    limit: int,
) -> tuple[list[Version], int | None]:
    """Quarantined versions of a namespace, newest first: all of them for its admins,
    their own uploads for publishers (``principal`` must be able to push there)."""
    actions = allowed_actions(session, principal, namespace)
    query = _quarantine_query(namespace, principal, actions)
    if before:
        query = query.where(Version.id < before)
    rows = session.scalars(query.order_by(Version.id.desc()).limit(limit + 1)).all()
    return _page(rows, limit, lambda v: v.id)


def quarantine_count(session: Session, namespace: Namespace, principal: Principal | None) -> int:
    """How many quarantined versions :func:`quarantined_versions` would list in all."""
    actions = allowed_actions(session, principal, namespace)
    query = _quarantine_query(namespace, principal, actions)
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def derived_versions(session: Session, parents: Sequence[str], limit: int) -> list[Version]:
    """Versions whose declared parent is one of ``parents``, oldest first (any namespace:
    the caller filters by what the viewer may read)."""
    rows = session.scalars(
        select(Version)
        .options(joinedload(Version.model).joinedload(Model.namespace))
        .where(Version.parent.in_(parents))
        .order_by(Version.id)
        .limit(limit)
    ).all()
    return list(rows)


def user_names(session: Session, user_ids: set[int]) -> dict[int, str]:
    """User names by id."""
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all()
    return {int(i): name for i, name in rows}
