"""The registry's tables (SQLAlchemy 2 declarative models).

Versions are immutable rows: a version appears in one transaction at commit time,
already carrying its state (published or quarantined), file list, signature, scan
report and SBOM reference. Tags move; every move is appended to ``tag_events``.
``auth_events`` is an append-only audit of refused requests (it also drives the
failed-authentication rate limit, so it works across replicas). The transparency
log (``log_entries``, ``log_nodes``, ``log_state``, ``log_tree_heads``) is append-only
and written only through :mod:`modelseal.registry.transparency_store`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AuthEvent",
    "Base",
    "Blob",
    "LogEntryRow",
    "LogNodeRow",
    "LogState",
    "LogTreeHeadRow",
    "Membership",
    "Model",
    "Namespace",
    "Tag",
    "TagEvent",
    "Token",
    "TrustedKey",
    "Upload",
    "UploadBlob",
    "User",
    "Version",
    "VersionBlob",
    "utcnow",
]


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.timezone.utc)


class _UTCDateTime(TypeDecorator[dt.datetime]):
    """Stored as UTC; SQLite gives back naive values, which are re-labelled UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value


class Base(DeclarativeBase):
    """Declarative base of every registry table."""


class User(Base):
    """A person or a robot account."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Identity-provider subject for federated users (OIDC ``iss|sub``), unused for local users.
    external_id: Mapped[str | None] = mapped_column(String(512), unique=True, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(_UTCDateTime(), default=utcnow)


class Namespace(Base):
    """A user's or an organisation's space of models."""

    __tablename__ = "namespaces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Highest finding severity still published ("info".."critical"); above it: quarantined.
    scan_threshold: Mapped[str] = mapped_column(String(16), default="low")
    #: Whether versions must carry a signature by a trusted key to be published.
    require_signature: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(_UTCDateTime(), default=utcnow)


class Membership(Base):
    """A user's role in a namespace: reader, publisher or admin."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "namespace_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))


class Token(Base):
    """An API token: only its SHA-256 is stored; scoped, expiring, revocable."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The first characters of the token, to recognise it in listings.
    prefix: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(200), default="")
    #: Namespace names this token may act on; ``["*"]`` for all the user's namespaces.
    namespaces: Mapped[list[str]] = mapped_column(JSON)
    #: Actions: a subset of ``read``, ``push``, ``admin``.
    actions: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(_UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(_UTCDateTime(), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(_UTCDateTime(), nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(_UTCDateTime(), nullable=True)
    #: The token that created this one over the API: a child never outlives its parent
    #: (its expiry is clamped at creation, revoking the parent revokes it).
    parent_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    user: Mapped[User] = relationship()


class TrustedKey(Base):
    """A public key (or a certificate identity) whose signatures a namespace accepts."""

    __tablename__ = "trusted_keys"
    __table_args__ = (UniqueConstraint("namespace_id", "fingerprint"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    #: "key" (a PEM public key) or "identity" (a Sigstore certificate identity + issuer).
    kind: Mapped[str] = mapped_column(String(16), default="key")
    public_key_pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    identity: Mapped[str | None] = mapped_column(String(512), nullable=True)
    issuer: Mapped[str | None] = mapped_column(String(512), nullable=True)
    #: SHA-256 of the DER public key (or of "identity|issuer").
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(_UTCDateTime(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(_UTCDateTime(), nullable=True)


class Model(Base):
    """A named model inside a namespace."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("namespace_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(_UTCDateTime(), default=utcnow)
    namespace: Mapped[Namespace] = relationship()


class Blob(Base):
    """A stored file, by content: the same bytes are stored once for every version."""

    __tablename__ = "blobs"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(_UTCDateTime(), default=utcnow)


class Version(Base):
    """An immutable model version; its id orders versions (used for rollback checks)."""

    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("model_id", "name"),
        Index("ix_versions_digest", "digest"),
        Index("ix_versions_parent", "parent"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    #: SHA-256 of the canonical file list (see ``manifest.version_digest``).
    digest: Mapped[str] = mapped_column(String(64))
    #: "published" or "quarantined".
    state: Mapped[str] = mapped_column(String(16))
    #: Why the version is quarantined (empty when published).
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: ``[{"path", "digest", "size"}]`` sorted by path.
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    total_size: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The signature bundle (model-signing JSON), stored as a blob.
    signature_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: SHA-256 of the bundle's signature bytes: one bundle publishes one version (replay).
    bundle_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    #: Fingerprint of the trusted key that verified the signature.
    signed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Files the signature deliberately leaves out (``.gitattributes``, ``.gitignore``).
    unsigned_files: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    sbom_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The server's scan report (DESIGN.md JSON shape).
    scan_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    scan_verdict: Mapped[str] = mapped_column(String(16), default="error")
    #: Declared parent / base model, as ``ns/model:version`` or ``ns/model@sha256:...``.
    parent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    uploader_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(_UTCDateTime(), default=utcnow)
    model: Mapped[Model] = relationship()
    uploader: Mapped[User | None] = relationship()


class VersionBlob(Base):
    """Which blobs a version references (its files, signature and SBOM): access checks, GC."""

    __tablename__ = "version_blobs"
    __table_args__ = (
        UniqueConstraint("version_id", "digest"),
        Index("ix_version_blobs_digest", "digest"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64))


class Tag(Base):
    """A movable name for a version (``latest``, ``prod``...)."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("model_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    updated_at: Mapped[dt.datetime] = mapped_column(_UTCDateTime(), default=utcnow)
    version: Mapped[Version] = relationship()


class TagEvent(Base):
    """One move of a tag (append-only history)."""

    __tablename__ = "tag_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(128))
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("versions.id", ondelete="SET NULL"), nullable=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    at: Mapped[dt.datetime] = mapped_column(_UTCDateTime(), default=utcnow)


class Upload(Base):
    """An upload session: the declared file list of a version being pushed."""

    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"))
    model_name: Mapped[str] = mapped_column(String(64))
    version_name: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    parent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: "open", "committed" or "failed".
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(_UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(_UTCDateTime())


class UploadBlob(Base):
    """A blob whose bytes an upload sent (and the server hashed): it may be committed by that
    upload even when no version the uploader can read references it yet."""

    __tablename__ = "upload_blobs"
    upload_id: Mapped[str] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)


class AuthEvent(Base):
    """A refused request (bad token, forbidden action), append-only, for audit and rate limits."""

    __tablename__ = "auth_events"
    __table_args__ = (Index("ix_auth_events_client_at", "client", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(_UTCDateTime(), default=utcnow)
    client: Mapped[str] = mapped_column(String(100))
    #: "unauthenticated" (a bad credential: counts for rate limiting), "anonymous" (no
    #: credential: never counts), "forbidden", or the code of a refused upload/commit.
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(String(500))


class LogEntryRow(Base):
    """One entry of the transparency log: its canonical bytes and leaf hash (append-only)."""

    __tablename__ = "log_entries"
    __table_args__ = (
        Index("ix_log_entries_leaf_hash", "leaf_hash"),
        Index("ix_log_entries_kind_subject", "kind", "subject"),
    )
    #: Position in the log (0-based); assigned under the log lock, never reused.
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: SHA-256(0x00 || data).
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    kind: Mapped[str] = mapped_column(String(32))
    #: What the entry is about (``ns/model:version``, ``ns/model#tag``...), for lookups.
    subject: Mapped[str] = mapped_column(String(400))
    #: The canonical JSON bytes that are hashed into the log.
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LogNodeRow(Base):
    """The hash of a complete subtree of ``2**level`` entries (a cache; recomputable)."""

    __tablename__ = "log_nodes"
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogState(Base):
    """The single row (``id = 1``) holding the log size; locked by every append."""

    __tablename__ = "log_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger, default=0)


class LogTreeHeadRow(Base):
    """A signed tree head the server issued (kept for exports and audits)."""

    __tablename__ = "log_tree_heads"
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: Milliseconds since the Unix epoch.
    timestamp: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
