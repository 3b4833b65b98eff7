"""Which blobs a caller may read, and so which an upload may reuse without sending them.

A blob is readable through a namespace when a version there references it and the
caller may read that version's bytes: published versions for readers, quarantined
ones too for those who may push there. Upload dedup uses the same rule across every
namespace (like an OCI cross-repository mount): a digest the uploader cannot already
read must be sent, byte for byte, so that declaring a digest proves nothing and
reveals nothing about whether the server holds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import select

from modelseal.registry.auth import allowed_actions
from modelseal.registry.db.models import Model, Namespace, UploadBlob, Version, VersionBlob

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelseal.registry.identity import Principal

__all__ = ["blob_readable_in", "mountable_digests", "received_digests"]


def _states(session: Session, principal: Principal | None, namespace: Namespace) -> set[str]:
    actions = allowed_actions(session, principal, namespace)
    states = {"published"} if "read" in actions else set()
    if "push" in actions:
        states.add("quarantined")
    return states


def blob_readable_in(
    session: Session, principal: Principal | None, namespace: Namespace, digest: str
) -> bool:
    """Whether ``principal`` may download ``digest`` through ``namespace``."""
    states = _states(session, principal, namespace)
    if not states:
        return False
    found = session.scalar(
        select(VersionBlob.id)
        .join(Version, VersionBlob.version_id == Version.id)
        .join(Model, Version.model_id == Model.id)
        .where(
            VersionBlob.digest == digest,
            Model.namespace_id == namespace.id,
            Version.state.in_(sorted(states)),
        )
        .limit(1)
    )
    return found is not None


def mountable_digests(
    session: Session, principal: Principal | None, digests: Iterable[str]
) -> set[str]:
    """The digests of ``digests`` that ``principal`` can already read in some namespace."""
    wanted = sorted(set(digests))
    if not wanted:
        return set()
    rows = session.execute(
        select(VersionBlob.digest, Model.namespace_id, Version.state)
        .join(Version, VersionBlob.version_id == Version.id)
        .join(Model, Version.model_id == Model.id)
        .where(VersionBlob.digest.in_(wanted))
        .distinct()
    ).all()
    states: dict[int, set[str]] = {}
    readable: set[str] = set()
    for digest, namespace_id, state in rows:
        if namespace_id not in states:
            namespace = session.get(Namespace, namespace_id)
            states[namespace_id] = (
                _states(session, principal, namespace) if namespace is not None else set()
            )
        if state in states[namespace_id]:
            readable.add(digest)
    return readable


def received_digests(session: Session, upload_id: str) -> set[str]:
    """The digests whose bytes this upload sent and the server verified."""
    return set(session.scalars(select(UploadBlob.digest).where(UploadBlob.upload_id == upload_id)))
