"""Trusted signing keys (and certificate identities) of a namespace."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from modelseal.registry.auth import AdminNamespace, ReadNamespace, RequiredPrincipal, SessionDep
from modelseal.registry.db.models import TrustedKey
from modelseal.registry.errors import BadRequestError
from modelseal.registry.identity import revoke_key, trust_identity, trust_key
from modelseal.registry.services.catalog import trusted_keys

__all__ = ["router"]

router = APIRouter(prefix="/namespaces/{namespace}/keys", tags=["keys"])


class KeyIn(BaseModel):
    """A PEM public key, or a certificate identity with its OIDC issuer."""

    name: str = Field("", max_length=100)
    public_key_pem: str | None = Field(None, max_length=20_000)
    identity: str | None = Field(None, max_length=512)
    issuer: str | None = Field(None, max_length=512)


def _doc(key: TrustedKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "kind": key.kind,
        "fingerprint": key.fingerprint,
        "public_key_pem": key.public_key_pem,
        "identity": key.identity,
        "issuer": key.issuer,
        "created_at": key.created_at.isoformat(),
    }


@router.get("")
def list_keys(row: ReadNamespace, session: SessionDep) -> dict[str, Any]:
    """The keys whose signatures the namespace currently trusts."""
    return {"items": [_doc(k) for k in trusted_keys(session, row, revoked=False)]}


@router.post("", status_code=201)
def add_key(
    row: AdminNamespace,
    body: KeyIn,
    session: SessionDep,
    principal: RequiredPrincipal,
) -> dict[str, Any]:
    """Trust a key or identity (namespace admins)."""
    if body.public_key_pem:
        return _doc(trust_key(session, row, body.public_key_pem, body.name))
    if body.identity and body.issuer:
        return _doc(trust_identity(session, row, body.identity, body.issuer, body.name))
    raise BadRequestError("give public_key_pem, or identity and issuer")


@router.delete("/{fingerprint}", status_code=204)
def remove_key(
    row: AdminNamespace,
    fingerprint: str,
    session: SessionDep,
    principal: RequiredPrincipal,
) -> Response:
    """Stop trusting a key (namespace admins); versions it signed stay as they are."""
    revoke_key(session, row, fingerprint)
    return Response(status_code=204)
