"""Registry versions as Hugging Face Hub repositories: the decisions behind ``/hf``.

A Hub repo id ``NS/MODEL`` is a registry model; a Hub revision is a version name, a
tag, a version digest (``sha256:HEX`` or bare), or the commit id this module gives a
version. ``main`` (the Hub's default) is the tag ``main`` when it exists, else the
newest published version. The commit id is the first 40 hex digits of the version
digest, so it is stable per version and the client's cache keeps one snapshot folder
per version. Only published versions are served: a quarantined one is refused with
its reasons for those who may push (readers learn only that it is quarantined, as in
the native API). Authorisation is :func:`modelseal.registry.auth.authorize`.

The refusal of a quarantined version uses the Hub's ``GatedRepo`` code: it is the one
access refusal that ``huggingface_hub`` raises at once (others make it fall back to
its cache and report a connection problem) and that ``transformers`` shows with the
server's message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelseal.errors import ModelsealError
from modelseal.registry.auth import allowed_actions, authorize, record_refusal
from modelseal.registry.db.models import Tag, Version
from modelseal.registry.errors import NotFoundError
from modelseal.registry.services.catalog import get_model, resolve_version

if TYPE_CHECKING:
    from fastapi import Request
    from sqlalchemy.orm import Session

    from modelseal.registry.db.models import Model, Namespace
    from modelseal.registry.identity import Principal

__all__ = [
    "HubError",
    "HubFile",
    "HubRevision",
    "commit_id",
    "hub_date",
    "hub_refs",
    "model_document",
    "resolve_file",
    "resolve_hub_revision",
    "sibling",
    "tree_entries",
]

_COMMIT = re.compile(r"[0-9a-f]{40}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
#: Git LFS pointer files are about this long; the client only displays it.
_POINTER_SIZE = 134


class HubError(ModelsealError):
    """A refusal in the Hub's terms: an HTTP status, the ``X-Error-Code`` the client maps
    to its exception classes, and (for missing files) the commit, which the client uses
    to remember that the file does not exist in that snapshot."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        hub_code: str | None,
        commit: str | None = None,
        advice: str | None = None,
    ) -> None:
        super().__init__(message, advice=advice)
        self.status = status
        self.hub_code = hub_code
        self.commit = commit


@dataclass(frozen=True)
class HubRevision:
    """A published version as a Hub revision."""

    repo_id: str
    version: Version
    commit: str
    private: bool


@dataclass(frozen=True)
class HubFile:
    """One file of a revision: its path, SHA-256 and size."""

    path: str
    digest: str
    size: int


def commit_id(version_digest: str) -> str:
    """The 40-hex commit id the client sees for a version."""
    return version_digest[:40]


def hub_date(moment: dt.datetime) -> str:
    """ISO-8601 in UTC with milliseconds and ``Z``: the only form the client parses."""
    utc = moment.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def resolve_hub_revision(
    request: Request,
    session: Session,
    principal: Principal | None,
    namespace: str,
    model: str,
    revision: str | None,
) -> HubRevision:
    """The published version ``revision`` names in ``namespace/model`` (read right checked
    and refusals logged by ``authorize``; a quarantined version is refused and logged)."""
    repo_id = f"{namespace}/{model}"
    row, found = _readable_model(request, session, principal, namespace, model)
    version = _find_version(session, found, revision or "main")
    _refuse_quarantined(request, session, principal, row, repo_id, version)
    return HubRevision(repo_id, version, commit_id(version.digest), not row.public)


def _readable_model(
    request: Request, session: Session, principal: Principal | None, namespace: str, model: str
) -> tuple[Namespace, Model]:
    """The namespace and model if the caller may read them, else a ``RepoNotFound``
    refusal (401 for anonymous callers, as the Hub answers for private repos)."""
    try:
        row = authorize(request, session, principal, namespace, "read")
        return row, get_model(session, row, model)
    except NotFoundError as exc:
        raise HubError(exc.message, status=404, hub_code="RepoNotFound") from exc
    except ModelsealError as exc:
        if getattr(exc, "status", None) == 401:
            raise HubError(exc.message, status=401, hub_code="RepoNotFound") from exc
        raise


def _refuse_quarantined(
    request: Request,
    session: Session,
    principal: Principal | None,
    row: Namespace,
    repo_id: str,
    version: Version,
) -> None:
    if version.state != "published":
        may_push = "push" in allowed_actions(session, principal, row)
        why = (
            "; ".join(version.reasons)
            if may_push and version.reasons
            else "the reasons are shown to its publishers"
        )
        record_refusal(
            request,
            "quarantined",
            f"hf read of quarantined {repo_id}:{version.name}",
            principal.user_id if principal else None,
        )
        raise HubError(
            f"{repo_id}:{version.name} is quarantined by the registry's publish gate: {why}",
            status=403,
            hub_code="GatedRepo",
            advice="use a published version",
        )


def hub_refs(
    request: Request, session: Session, principal: Principal | None, namespace: str, model: str
) -> dict[str, Any]:
    """``list_repo_refs``: registry tags (they move) as branches, with ``main``; published
    version names (immutable) as tags."""
    _, found = _readable_model(request, session, principal, namespace, model)
    branches = {
        name: commit_id(digest)
        for name, digest in session.execute(
            select(Tag.name, Version.digest)
            .join(Version, Tag.version_id == Version.id)
            .where(Tag.model_id == found.id, Version.state == "published")
        )
    }
    versions = session.execute(
        select(Version.name, Version.digest)
        .where(Version.model_id == found.id, Version.state == "published")
        .order_by(Version.id)
    ).all()
    if "main" not in branches and versions:
        branches["main"] = commit_id(versions[-1][1])
    return {
        "branches": [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": commit}
            for name, commit in sorted(branches.items())
        ],
        "converts": [],
        "tags": [
            {"name": name, "ref": f"refs/tags/{name}", "targetCommit": commit_id(digest)}
            for name, digest in versions
        ],
    }


def _find_version(session: Session, model: Model, revision: str) -> Version:
    """The version for a revision string, else a ``RevisionNotFound`` refusal."""
    query = select(Version).where(Version.model_id == model.id)
    found: Version | None = None
    try:
        found, _ = resolve_version(session, model.id, revision)
    except ModelsealError:
        found = None
    if found is None and revision == "main":
        found = session.scalars(
            query.where(Version.state == "published").order_by(Version.id.desc()).limit(1)
        ).first()
    if found is None and _DIGEST.fullmatch(revision):
        found = session.scalars(query.where(Version.digest == revision)).first()
    if found is None and _COMMIT.fullmatch(revision):
        found = session.scalars(query.where(Version.digest.startswith(revision))).first()
    if found is None:
        raise HubError(
            f"no published version, tag or commit {revision!r} in "
            f"{model.namespace.name}/{model.name}",
            status=404,
            hub_code="RevisionNotFound",
        )
    return found


def resolve_file(revision: HubRevision, path: str) -> HubFile:
    """A file of the revision, else an ``EntryNotFound`` refusal carrying the commit."""
    for entry in revision.version.files:
        if entry["path"] == path:
            return HubFile(entry["path"], entry["digest"], int(entry["size"]))
    raise HubError(
        f"{revision.repo_id}@{revision.version.name} has no file {path!r}",
        status=404,
        hub_code="EntryNotFound",
        commit=revision.commit,
    )


def _folder_id(commit: str, path: str) -> str:
    """A stable 40-hex id for a folder of a snapshot (the client only displays it)."""
    return hashlib.sha1(f"{commit}:{path}".encode(), usedforsecurity=False).hexdigest()


def _lfs(entry: dict[str, Any]) -> dict[str, Any]:
    return {"oid": entry["digest"], "size": entry["size"], "pointerSize": _POINTER_SIZE}


def sibling(entry: dict[str, Any]) -> dict[str, Any]:
    """A file as ``model_info`` lists it. Every file is presented as an LFS file, whose
    id is its real SHA-256 (the registry does not keep Git blob ids)."""
    return {
        "rfilename": entry["path"],
        "size": entry["size"],
        "blobId": entry["digest"][:40],
        "lfs": {"sha256": entry["digest"], "size": entry["size"], "pointerSize": _POINTER_SIZE},
    }


def tree_entries(revision: HubRevision, under: str, *, recursive: bool) -> list[dict[str, Any]]:
    """The ``/tree`` listing of folder ``under`` ("" for the root), folders first."""
    prefix = f"{under.strip('/')}/" if under.strip("/") else ""
    folders: set[str] = set()
    files: list[dict[str, Any]] = []
    found = False
    for entry in revision.version.files:
        path: str = entry["path"]
        if not path.startswith(prefix):
            continue
        found = True
        rest = path[len(prefix) :].split("/")
        for depth in range(1, len(rest)):
            folders.add(prefix + "/".join(rest[:depth]))
            if not recursive:
                break
        if recursive or len(rest) == 1:
            files.append(
                {
                    "type": "file",
                    "oid": entry["digest"][:40],
                    "size": entry["size"],
                    "path": path,
                    "lfs": _lfs(entry),
                }
            )
    if prefix and not found:
        raise HubError(
            f"{revision.repo_id}@{revision.version.name} has no folder {under!r}",
            status=404,
            hub_code="EntryNotFound",
            commit=revision.commit,
        )
    listed = [
        {"type": "directory", "oid": _folder_id(revision.commit, f), "path": f}
        for f in sorted(folders)
    ]
    return listed + sorted(files, key=lambda f: f["path"])


def model_document(session: Session, revision: HubRevision) -> dict[str, Any]:
    """The ``model_info`` JSON of a revision."""
    version = revision.version
    tags = sorted(session.scalars(select(Tag.name).where(Tag.version_id == version.id)))
    created = hub_date(version.model.created_at)
    return {
        "_id": revision.commit[:24],
        "id": revision.repo_id,
        "modelId": revision.repo_id,
        "author": version.model.namespace.name,
        "sha": revision.commit,
        "lastModified": hub_date(version.created_at),
        "createdAt": created,
        "private": revision.private,
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": [f"modelseal-version:{version.name}", *(f"modelseal-tag:{t}" for t in tags)],
        "siblings": [sibling(entry) for entry in version.files],
        "usedStorage": version.total_size,
        "modelseal": {
            "version": version.name,
            "digest": version.digest,
            "serial": version.id,
            "signed_by": version.signed_by,
            "scan_verdict": version.scan_verdict,
        },
    }
