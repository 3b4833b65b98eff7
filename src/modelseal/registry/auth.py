"""Authentication and authorisation as FastAPI dependencies.

A request's bearer token becomes a :class:`~modelseal.registry.identity.Principal`
through the app's identity provider. What it may do in a namespace is the
intersection of the credential's scope and the user's role there (site admins have
every role; anyone may read a public namespace). Every refusal is logged on the
``modelseal.registry.audit`` logger and stored in ``auth_events``; a client address
that presented too many bad credentials in the window is refused with 429 before its
credential is even looked at (anonymous refusals are logged but never count).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelseal.registry.db.deps import get_session
from modelseal.registry.db.models import AuthEvent, Membership, Namespace, utcnow
from modelseal.registry.errors import (
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    UnauthenticatedError,
)
from modelseal.registry.identity import ROLE_ACTIONS, IdentityProvider, Principal
from modelseal.registry.settings import RegistrySettings, get_settings

__all__ = [
    "AdminNamespace",
    "MaybePrincipal",
    "PushNamespace",
    "ReadNamespace",
    "RequiredPrincipal",
    "SessionDep",
    "SettingsDep",
    "allowed_actions",
    "authorize",
    "check_rate_limit",
    "current_principal",
    "record_refusal",
    "require_principal",
]

_audit = logging.getLogger("modelseal.registry.audit")

SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[RegistrySettings, Depends(get_settings)]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def record_refusal(request: Request, kind: str, detail: str, user_id: int | None = None) -> None:
    """Log a refused request and append it to ``auth_events`` (own transaction)."""
    client = _client(request)
    _audit.warning(
        "refused %s %s from %s: %s (%s)", request.method, request.url.path, client, kind, detail
    )
    with request.app.state.sessions() as session:
        session.add(AuthEvent(client=client[:100], kind=kind, user_id=user_id, detail=detail[:500]))
        session.commit()


def check_rate_limit(request: Request, session: Session, settings: RegistrySettings) -> None:
    """429 once this address presented too many bad credentials in the window.

    Only failed credentials count (kind ``unauthenticated``): anonymous requests are
    logged as ``anonymous`` and never count, so nobody can lock out an address by
    sending it unauthenticated reads. The address is the TCP peer unless
    ``modelseal serve --trusted-proxy`` names the proxy in front.
    """
    since = utcnow() - dt.timedelta(seconds=settings.auth_failure_window_seconds)
    failures = session.scalar(
        select(func.count(AuthEvent.id)).where(
            AuthEvent.client == _client(request)[:100],
            AuthEvent.kind == "unauthenticated",
            AuthEvent.at >= since,
        )
    )
    if (failures or 0) >= settings.auth_failures_allowed:
        _audit.warning(
            "rate limited %s after %d failed authentications", _client(request), failures
        )
        raise RateLimitedError(
            "too many failed authentications from this address",
            advice=f"wait {settings.auth_failure_window_seconds} s, then use a valid token",
        )


def current_principal(
    request: Request, session: SessionDep, settings: SettingsDep
) -> Principal | None:
    """The authenticated caller, ``None`` for anonymous requests; 401 for a bad credential."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    check_rate_limit(request, session, settings)
    scheme, _, credential = header.partition(" ")
    principal: Principal | None = None
    if scheme.lower() == "bearer" and credential:
        provider: IdentityProvider = request.app.state.identity
        principal = provider.authenticate(session, credential.strip())
    if principal is None:
        record_refusal(request, "unauthenticated", "unknown, expired or revoked token")
        raise UnauthenticatedError(
            "the token is unknown, expired or revoked",
            advice="run `modelseal login` with a valid token (ask an admin for a new one)",
        )
    request.state.principal = principal
    return principal


MaybePrincipal = Annotated[Principal | None, Depends(current_principal)]


def require_principal(request: Request, principal: MaybePrincipal) -> Principal:
    """Like :func:`current_principal` but anonymous callers get 401."""
    if principal is None:
        record_refusal(request, "anonymous", "no token")
        raise UnauthenticatedError(
            "this needs a token", advice="run `modelseal login URL --token TOKEN` first"
        )
    return principal


RequiredPrincipal = Annotated[Principal, Depends(require_principal)]


def allowed_actions(
    session: Session, principal: Principal | None, namespace: Namespace
) -> set[str]:
    """What ``principal`` may do in ``namespace`` (role ∩ credential scope, + public read,
    for anonymous callers only while the server's ``allow_anonymous_read`` is on)."""
    actions: set[str] = set()
    if principal is not None:
        if principal.is_admin:
            role_actions: set[str] = set(ROLE_ACTIONS["admin"])
        else:
            role = session.scalar(
                select(Membership.role).where(
                    Membership.user_id == principal.user_id,
                    Membership.namespace_id == namespace.id,
                )
            )
            role_actions = set(ROLE_ACTIONS.get(role or "", ()))
        actions = {a for a in role_actions if principal.credential_allows(namespace.name, a)}
    if namespace.public and (
        principal is not None or session.info.get("allow_anonymous_read", True)
    ):
        actions.add("read")
    return actions


def authorize(
    request: Request,
    session: Session,
    principal: Principal | None,
    namespace_name: str,
    action: str,
) -> Namespace:
    """The namespace if ``principal`` may do ``action`` in it; else 401/403/404 (logged).

    Private namespaces the caller cannot read are reported as not found, so their
    names do not leak.
    """
    namespace = session.scalars(
        select(Namespace).where(Namespace.name == namespace_name)
    ).one_or_none()
    actions = allowed_actions(session, principal, namespace) if namespace is not None else set()
    if namespace is not None and action in actions:
        return namespace
    who = principal.name if principal else "anonymous"
    user_id = principal.user_id if principal else None
    if principal is None:
        record_refusal(request, "anonymous", f"anonymous {action} on {namespace_name}")
        raise UnauthenticatedError(
            f"{action} on namespace {namespace_name!r} needs a token",
            advice="run `modelseal login URL --token TOKEN` first",
        )
    record_refusal(request, "forbidden", f"{who} {action} on {namespace_name}", user_id)
    if namespace is None or "read" not in actions:
        raise NotFoundError(
            f"no namespace {namespace_name!r} visible to {who}",
            advice="check the name, or ask its admin for access",
        )
    raise ForbiddenError(
        f"{who} may not {action} in namespace {namespace_name!r}",
        advice="ask a namespace admin for the publisher/admin role, or use a token scoped to it",
    )


def _namespace_allowing(action: str) -> Callable[..., Namespace]:
    """A dependency: the ``{namespace}`` of the path, if the caller may ``action`` there."""

    def dependency(
        namespace: str, request: Request, session: SessionDep, principal: MaybePrincipal
    ) -> Namespace:
        return authorize(request, session, principal, namespace, action)

    dependency.__name__ = f"namespace_allowing_{action}"
    return dependency


#: The path's namespace, once the caller is allowed to read / push / administer it
#: there (else 401, 403 or 404 through :func:`authorize`, logged).
ReadNamespace = Annotated[Namespace, Depends(_namespace_allowing("read"))]
PushNamespace = Annotated[Namespace, Depends(_namespace_allowing("push"))]
AdminNamespace = Annotated[Namespace, Depends(_namespace_allowing("admin"))]
