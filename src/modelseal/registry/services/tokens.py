"""API tokens as their owners see them (never their secrets)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelseal.registry.db.models import Token

__all__ = ["token_doc", "user_tokens"]


def user_tokens(session: Session, user_id: int) -> list[Token]:
    """A user's tokens in the order they were made, revoked and expired ones included."""
    return list(session.scalars(select(Token).where(Token.user_id == user_id).order_by(Token.id)))


def token_doc(token: Token) -> dict[str, Any]:
    """The JSON document of a token."""
    return {
        "id": token.id,
        "prefix": token.prefix,
        "description": token.description,
        "namespaces": token.namespaces,
        "actions": token.actions,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "revoked": token.revoked_at is not None,
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
    }
