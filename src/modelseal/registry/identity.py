"""Who is calling, and the administration of users, namespaces, roles, tokens and keys.

Identity is pluggable: an :class:`IdentityProvider` turns a bearer credential into a
:class:`Principal`. :class:`TokenIdentityProvider` checks registry API tokens (random,
stored only as SHA-256 hashes, scoped to namespaces and actions, expiring, revocable);
an OIDC provider would verify an ID token and map ``iss|sub`` to
``User.external_id`` the same way.

The functions below work on a SQLAlchemy session and are shared by the HTTP API and
``modelseal admin``; they validate input and raise registry errors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelseal.registry.errors import BadRequestError, ConflictError, NotFoundError
from modelseal.registry.names import check_name
from modelseal.registry.transparency_store import log_event
from modelseal.transparency.entries import EntryKind

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelseal.registry.db.models import Namespace, Token, TrustedKey, User

__all__ = [
    "ACTIONS",
    "ROLES",
    "ROLE_ACTIONS",
    "IdentityProvider",
    "Principal",
    "TokenIdentityProvider",
    "create_namespace",
    "create_token",
    "create_user",
    "get_namespace",
    "get_user",
    "hash_token",
    "key_fingerprint",
    "principal_for_token",
    "revoke_key",
    "revoke_token",
    "set_role",
    "trust_identity",
    "trust_key",
]

#: Every action a token can be scoped to.
ACTIONS: frozenset[str] = frozenset({"read", "push", "admin"})
#: Roles a user can hold in a namespace, and what each allows.
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "reader": frozenset({"read"}),
    "publisher": frozenset({"read", "push"}),
    "admin": frozenset({"read", "push", "admin"}),
}
ROLES: tuple[str, ...] = tuple(ROLE_ACTIONS)
_TOKEN_PREFIX = "msk_"
_SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    user_id: int
    name: str
    is_admin: bool
    #: The token used, if any (``None`` for other identity providers).
    token_id: int | None
    #: Namespaces the credential is limited to; ``None`` means all of the user's.
    namespaces: frozenset[str] | None
    #: Actions the credential is limited to.
    actions: frozenset[str]

    def credential_allows(self, namespace: str, action: str) -> bool:
        """Whether the credential's own scope covers ``action`` on ``namespace``."""
        if action not in self.actions:
            return False
        return self.namespaces is None or namespace in self.namespaces


class IdentityProvider(ABC):
    """Turns a bearer credential into a principal (or ``None`` when it is not valid)."""

    @abstractmethod
    def authenticate(self, session: Session, credential: str) -> Principal | None:
        """The principal for ``credential``, or ``None`` if unknown, expired or revoked."""


class TokenIdentityProvider(IdentityProvider):
    """Registry API tokens (``msk_...``) looked up by their SHA-256."""

    def authenticate(self, session: Session, credential: str) -> Principal | None:
        """Check the token hash, expiry and revocation; record its last use."""
        from sqlalchemy import select

        from modelseal.registry.db.models import Token, utcnow

        if not credential.startswith(_TOKEN_PREFIX) or len(credential) > 200:
            return None
        token = session.scalars(
            select(Token).where(Token.token_hash == hash_token(credential))
        ).one_or_none()
        principal = principal_for_token(token) if token is not None else None
        if principal is not None and token is not None:
            token.last_used_at = utcnow()
            session.commit()
        return principal


_MAX_LINEAGE = 32


def _token_alive(token: Token, now: dt.datetime) -> bool:
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


def principal_for_token(token: Token) -> Principal | None:
    """Who ``token`` speaks for, or ``None`` once it or any token it was made from is
    revoked or expired (a child never outlives its parent)."""
    from sqlalchemy.orm import object_session

    from modelseal.registry.db.models import Token, utcnow

    now = utcnow()
    if not _token_alive(token, now):
        return None
    session = object_session(token)
    ancestor, depth = token, 0
    while ancestor.parent_id is not None and session is not None:
        depth += 1
        parent = session.get(Token, ancestor.parent_id)
        if parent is None or depth > _MAX_LINEAGE or not _token_alive(parent, now):
            return None
        ancestor = parent
    scope = None if "*" in token.namespaces else frozenset(token.namespaces)
    user = token.user
    return Principal(user.id, user.name, user.is_admin, token.id, scope, frozenset(token.actions))


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256 (tokens carry 256 random bits)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def get_user(session: Session, name: str) -> User:
    """The user called ``name``."""
    from sqlalchemy import select

    from modelseal.registry.db.models import User

    user = session.scalars(select(User).where(User.name == name)).one_or_none()
    if user is None:
        raise NotFoundError(
            f"no user {name!r}", advice="create it with `modelseal admin create-user`"
        )
    return user


def get_namespace(session: Session, name: str) -> Namespace:
    """The namespace called ``name``."""
    from sqlalchemy import select

    from modelseal.registry.db.models import Namespace

    namespace = session.scalars(select(Namespace).where(Namespace.name == name)).one_or_none()
    if namespace is None:
        raise NotFoundError(f"no namespace {name!r}")
    return namespace


def create_user(
    session: Session, name: str, *, admin: bool = False, namespace: bool = True
) -> User:
    """Create a user; by default also a private namespace of the same name they administer."""
    from sqlalchemy import select

    from modelseal.registry.db.models import User

    check_name(name, "user name")
    if session.scalars(select(User).where(User.name == name)).one_or_none() is not None:
        raise ConflictError(f"user {name!r} exists already")
    user = User(name=name, is_admin=admin)
    session.add(user)
    session.flush()
    if namespace:
        from modelseal.registry.db.models import Namespace

        if session.scalars(select(Namespace).where(Namespace.name == name)).one_or_none() is None:
            create_namespace(session, name, owner=user)
    session.commit()
    return user


def create_namespace(
    session: Session,
    name: str,
    *,
    public: bool = False,
    scan_threshold: str = "low",
    require_signature: bool = True,
    owner: User | None = None,
) -> Namespace:
    """Create a namespace; ``owner`` becomes its admin."""
    from sqlalchemy import select

    from modelseal.registry.db.models import Namespace

    check_name(name, "namespace")
    if scan_threshold not in _SEVERITIES:
        raise BadRequestError(
            f"invalid scan threshold {scan_threshold!r}",
            advice=f"use one of {', '.join(_SEVERITIES)}",
        )
    if session.scalars(select(Namespace).where(Namespace.name == name)).one_or_none() is not None:
        raise ConflictError(f"namespace {name!r} exists already")
    namespace = Namespace(
        name=name, public=public, scan_threshold=scan_threshold, require_signature=require_signature
    )
    session.add(namespace)
    session.flush()
    if owner is not None:
        set_role(session, namespace, owner, "admin")
    session.commit()
    return namespace


def set_role(session: Session, namespace: Namespace, user: User, role: str | None) -> None:
    """Give ``user`` ``role`` in ``namespace`` (``None`` removes the membership)."""
    from sqlalchemy import select

    from modelseal.registry.db.models import Membership

    if role is not None and role not in ROLE_ACTIONS:
        raise BadRequestError(f"invalid role {role!r}", advice=f"use one of {', '.join(ROLES)}")
    current = session.scalars(
        select(Membership).where(
            Membership.user_id == user.id, Membership.namespace_id == namespace.id
        )
    ).one_or_none()
    if role is None:
        if current is not None:
            session.delete(current)
    elif current is None:
        session.add(Membership(user_id=user.id, namespace_id=namespace.id, role=role))
    else:
        current.role = role
    session.commit()


def create_token(
    session: Session,
    user: User,
    *,
    namespaces: Iterable[str] = ("*",),
    actions: Iterable[str] = ("read", "push"),
    expires_in: dt.timedelta | None = dt.timedelta(days=90),
    description: str = "",
    parent: Token | None = None,
) -> tuple[Token, str]:
    """Create an API token; returns the row and the secret, which is shown only once.

    A token made with another (``parent``, over the API) expires no later than it and is
    revoked with it.
    """
    from modelseal.registry.db.models import Token, utcnow

    scope = sorted(set(namespaces))
    for name in scope:
        if name != "*":
            check_name(name, "namespace")
    if not scope:
        raise BadRequestError("a token needs at least one namespace (or '*')")
    wanted = sorted(set(actions))
    unknown = set(wanted) - ACTIONS
    if unknown or not wanted:
        raise BadRequestError(
            f"invalid token actions {sorted(unknown) or wanted}",
            advice=f"use some of {', '.join(sorted(ACTIONS))}",
        )
    if expires_in is not None and expires_in.total_seconds() <= 0:
        raise BadRequestError("a token's lifetime must be positive")
    expires_at = None if expires_in is None else utcnow() + expires_in
    if parent is not None and parent.expires_at is not None:
        expires_at = parent.expires_at if expires_at is None else min(expires_at, parent.expires_at)
    secret = _TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = Token(
        user_id=user.id,
        token_hash=hash_token(secret),
        prefix=secret[:12],
        description=description[:200],
        namespaces=scope,
        actions=wanted,
        expires_at=expires_at,
        parent_id=parent.id if parent is not None else None,
    )
    session.add(token)
    session.commit()
    return token, secret


def revoke_token(session: Session, token_id: int, *, user: User | None = None) -> Token:
    """Revoke a token (only the user's own when ``user`` is given)."""
    from sqlalchemy import select

    from modelseal.registry.db.models import Token, utcnow

    token = session.get(Token, token_id)
    if token is None or (user is not None and token.user_id != user.id):
        raise NotFoundError(f"no token {token_id}")
    now = utcnow()
    pending: list[Token] = [token]
    seen: set[int] = set()
    while pending and len(seen) < 10_000:  # the token and every token made from it
        current = pending.pop()
        if current.id in seen:
            continue
        seen.add(current.id)
        if current.revoked_at is None:
            current.revoked_at = now
            log_event(session, EntryKind.TOKEN_REVOKE, user=current.user.name, token=current.id)
        pending.extend(session.scalars(select(Token).where(Token.parent_id == current.id)))
    session.commit()
    return token


def key_fingerprint(public_key_pem: str) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo of a PEM public key (refused if not one)."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_public_key(public_key_pem.encode("utf-8"))
    except (ValueError, TypeError) as exc:
        raise BadRequestError(
            "not a PEM public key", advice="give the public half of a signing key pair"
        ) from exc
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def trust_key(session: Session, namespace: Namespace, public_key_pem: str, name: str) -> TrustedKey:
    """Trust signatures by this public key for ``namespace``."""
    from sqlalchemy import select

    from modelseal.registry.db.models import TrustedKey

    fingerprint = key_fingerprint(public_key_pem)
    existing = session.scalars(
        select(TrustedKey).where(
            TrustedKey.namespace_id == namespace.id, TrustedKey.fingerprint == fingerprint
        )
    ).one_or_none()
    if existing is not None:
        if existing.revoked_at is not None:
            existing.revoked_at = None
            _log_key(session, EntryKind.KEY_TRUST, namespace, existing)
            session.commit()
        return existing
    key = TrustedKey(
        namespace_id=namespace.id,
        name=name[:100] or fingerprint[:16],
        kind="key",
        public_key_pem=public_key_pem,
        fingerprint=fingerprint,
    )
    session.add(key)
    _log_key(session, EntryKind.KEY_TRUST, namespace, key)
    session.commit()
    return key


def trust_identity(
    session: Session, namespace: Namespace, identity: str, issuer: str, name: str = ""
) -> TrustedKey:
    """Trust Sigstore certificates for ``identity`` from OIDC ``issuer`` in ``namespace``."""
    from modelseal.registry.db.models import TrustedKey

    if not identity or not issuer:
        raise BadRequestError("a certificate identity needs both an identity and an issuer")
    fingerprint = hashlib.sha256(f"{identity}|{issuer}".encode()).hexdigest()
    key = TrustedKey(
        namespace_id=namespace.id,
        name=name[:100] or identity[:100],
        kind="identity",
        identity=identity,
        issuer=issuer,
        fingerprint=fingerprint,
    )
    session.add(key)
    _log_key(session, EntryKind.KEY_TRUST, namespace, key, identity=identity, issuer=issuer)
    session.commit()
    return key


def revoke_key(session: Session, namespace: Namespace, fingerprint: str) -> TrustedKey:
    """Stop trusting a key or identity in ``namespace``; versions it signed stay as they are."""
    from sqlalchemy import select

    from modelseal.registry.db.models import TrustedKey, utcnow

    key = session.scalars(
        select(TrustedKey).where(
            TrustedKey.namespace_id == namespace.id, TrustedKey.fingerprint == fingerprint[:64]
        )
    ).one_or_none()
    if key is None:
        raise NotFoundError(f"no trusted key {fingerprint[:16]} in {namespace.name!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        _log_key(session, EntryKind.KEY_REVOKE, namespace, key)
        session.commit()
    return key


def _log_key(
    session: Session, kind: EntryKind, namespace: Namespace, key: TrustedKey, **extra: str
) -> None:
    log_event(
        session,
        kind,
        namespace=namespace.name,
        name=key.name,
        fingerprint=key.fingerprint,
        key_kind=key.kind,
        **extra,
    )
