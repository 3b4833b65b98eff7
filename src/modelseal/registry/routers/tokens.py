"""API tokens of the calling user: create (within the caller's own scope), list, revoke."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from modelseal.registry.auth import RequiredPrincipal, SessionDep, record_refusal
from modelseal.registry.db.models import Token, User
from modelseal.registry.errors import ForbiddenError
from modelseal.registry.identity import Principal, create_token, revoke_token
from modelseal.registry.services.tokens import token_doc, user_tokens

__all__ = ["router"]

router = APIRouter(tags=["tokens"])


class TokenIn(BaseModel):
    """A new token's scope and lifetime."""

    namespaces: list[str] = Field(default_factory=lambda: ["*"], max_length=100)
    actions: list[str] = Field(default_factory=lambda: ["read"], max_length=3)
    expires_in_days: float | None = Field(30, gt=0, le=3650)
    description: str = Field("", max_length=200)


@router.get("/whoami")
def whoami(principal: RequiredPrincipal) -> dict[str, Any]:
    """The caller's identity and the scope of the credential used."""
    return {
        "user": principal.name,
        "admin": principal.is_admin,
        "namespaces": sorted(principal.namespaces) if principal.namespaces is not None else ["*"],
        "actions": sorted(principal.actions),
    }


def _require_manager(request: Request, principal: Principal, what: str) -> None:
    """Managing tokens needs an unscoped token with the ``admin`` action."""
    if principal.namespaces is None and "admin" in principal.actions:
        return
    record_refusal(
        request, "forbidden", f"{principal.name} {what} with a narrow token", principal.user_id
    )
    raise ForbiddenError(
        f"{what} needs a token for all your namespaces with the admin action",
        advice="use a token made with `modelseal admin token create NAME -a admin ...`",
    )


@router.post("/tokens", status_code=201)
def new_token(
    body: TokenIn, request: Request, session: SessionDep, principal: RequiredPrincipal
) -> dict[str, Any]:
    """Create a token no broader, and living no longer, than the one making the request;
    the secret is shown once."""
    _require_manager(request, principal, "creating tokens")
    wider_ns = principal.namespaces is not None and not set(body.namespaces) <= principal.namespaces
    if wider_ns or not set(body.actions) <= principal.actions:
        record_refusal(
            request, "forbidden", f"{principal.name} token wider than its own", principal.user_id
        )
        raise ForbiddenError(
            "a new token cannot have more namespaces or actions than the token creating it"
        )
    user = session.get(User, principal.user_id)
    assert user is not None
    expires = None if body.expires_in_days is None else dt.timedelta(days=body.expires_in_days)
    parent = session.get(Token, principal.token_id) if principal.token_id is not None else None
    token, secret = create_token(
        session,
        user,
        namespaces=body.namespaces,
        actions=body.actions,
        expires_in=expires,
        description=body.description,
        parent=parent,
    )
    return {**token_doc(token), "token": secret}


@router.get("/tokens")
def list_tokens(session: SessionDep, principal: RequiredPrincipal) -> dict[str, Any]:
    """The caller's tokens (never their secrets)."""
    return {"items": [token_doc(t) for t in user_tokens(session, principal.user_id)]}


@router.delete("/tokens/{token_id}", status_code=204)
def delete_token(
    token_id: int, request: Request, session: SessionDep, principal: RequiredPrincipal
) -> Response:
    """Revoke one of the caller's tokens (site admins: any token), and every token made
    from it."""
    _require_manager(request, principal, "revoking tokens")
    owner = None if principal.is_admin else session.get(User, principal.user_id)
    revoke_token(session, token_id, user=owner)
    return Response(status_code=204)
