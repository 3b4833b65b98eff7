"""Pydantic models of the registry's wire documents (API v1).

The client parses every answer it relies on through these models, strictly: a missing
field, a field of the wrong type (``"serial": "9"``) or an unknown ``resolved_by`` is a
malformed answer and refused (:func:`parse`), never guessed around. Unknown extra
fields are ignored, so a newer server can add fields without breaking older clients.
The server uses the same models as ``response_model`` where they describe its answer.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelseal.errors import ModelsealError, RegistryError

__all__ = [
    "ChunkDoc",
    "FileDoc",
    "KeyEntriesDoc",
    "LogEntriesPage",
    "LogKeyDoc",
    "LogListItem",
    "ModelDoc",
    "Page",
    "ProvenEntryDoc",
    "ResolvedVersionDoc",
    "TrustedKeyDoc",
    "UploadBlobDoc",
    "UploadDoc",
    "VersionDoc",
    "WhoAmIDoc",
    "parse",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class _Doc(BaseModel):
    """Strict, frozen, extra fields ignored; also a read-only mapping of its JSON form
    (``doc["version"]``, ``dict(doc)``), as the dict documents of earlier releases were."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    def keys(self) -> list[str]:
        """The field names."""
        return list(type(self).model_fields)

    def __getitem__(self, name: str) -> Any:
        if name not in type(self).model_fields:
            raise KeyError(name)
        return self.model_dump(mode="json", include={name})[name]

    def get(self, name: str, default: Any = None) -> Any:
        """The JSON value of field ``name``, or ``default``."""
        return self[name] if name in type(self).model_fields else default


class FileDoc(_Doc):
    """One file of a version."""

    path: str
    digest: str
    size: int = Field(ge=0)


class VersionDoc(_Doc):
    """A version (``GET .../versions``, the answer to a commit)."""

    namespace: str
    model: str
    version: str
    serial: int
    digest: str
    state: str
    reasons: list[str] = []
    files: list[FileDoc] = []
    total_size: int | None = None
    signature_digest: str | None = None
    signed_by: str | None = None
    sbom_digest: str | None = None
    scan_verdict: str | None = None
    scan_summary: dict[str, Any] = {}
    scan_threshold: str = "low"
    parent: str | None = None
    uploader: str | None = None
    created_at: str = ""
    tags: list[str] = []
    #: Git metadata files (`.gitattributes`, `.gitignore`) published unsigned because the
    #: signature itself leaves them out (the OpenSSF reference's ignore set).
    unsigned_files: list[str] = []

    @property
    def subject(self) -> str:
        """``ns/model:version``."""
        return f"{self.namespace}/{self.model}:{self.version}"


class ResolvedVersionDoc(VersionDoc):
    """The answer to ``GET .../resolve/{ref}``: a version and how the reference was read."""

    resolved_by: Literal["version", "tag", "digest"]


class ModelDoc(_Doc):
    """A model with its tags and newest published version."""

    namespace: str
    model: str
    description: str = ""
    latest_version: str | None = None
    tags: dict[str, str] = {}
    created_at: str = ""


class Page(_Doc, Generic[T]):
    """A page of a listing; ``next`` is the cursor of the following page."""

    items: list[T]
    next: int | None = None


class TrustedKeyDoc(_Doc):
    """A key (or certificate identity) a namespace trusts."""

    name: str = ""
    kind: str
    fingerprint: str
    public_key_pem: str | None = None
    identity: str | None = None
    issuer: str | None = None


class WhoAmIDoc(_Doc):
    """The identity behind a token."""

    user: str


class UploadBlobDoc(_Doc):
    """How much of one blob of an upload the server has."""

    digest: str
    size: int = Field(ge=0)
    offset: int = Field(ge=0)
    complete: bool


class UploadDoc(_Doc):
    """An upload session."""

    id: str
    state: str
    blobs: list[UploadBlobDoc]
    missing: list[str] = []


class ChunkDoc(_Doc):
    """The answer to one uploaded chunk."""

    digest: str
    offset: int = Field(ge=0)
    complete: bool


class LogKeyDoc(_Doc):
    """The transparency log's public key."""

    key_id: str
    public_key_pem: str


class ProvenEntryDoc(_Doc):
    """A log entry's canonical text with its index (and audit path) in a tree size."""

    index: int = Field(ge=0)
    entry: str
    tree_size: int = Field(ge=1)
    audit_path: list[str] = []


class KeyEntriesDoc(_Doc):
    """A key's newest ``key-trust`` entry and newest ``key-revoke`` entry (if any)."""

    trust: ProvenEntryDoc
    revoke: ProvenEntryDoc | None = None


class LogListItem(_Doc):
    """An entry in a listing: its text, or only its leaf hash when hidden from the caller."""

    index: int = Field(ge=0)
    leaf_hash: str
    hidden: bool = False
    entry: str | None = None


class LogEntriesPage(_Doc):
    """A page of ``GET /log/entries``."""

    tree_size: int = Field(ge=0)
    items: list[LogListItem]
    next: int | None = None


def parse(
    model: type[M], data: Any, what: str, *, error: type[ModelsealError] = RegistryError
) -> M:
    """``data`` as ``model``; a malformed answer is one clear ``error`` (a
    :class:`RegistryError` unless the caller relies on the answer for trust)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise error(
            f"the registry's answer to {what} is malformed ({where}: {first['msg']})",
            advice="the registry (or something between it and you) sent an unexpected "
            "document; nothing was trusted from it",
        ) from None
