"""Namespaces: list, create (site admins), show, and manage members' roles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from modelseal.registry.auth import (
    AdminNamespace,
    MaybePrincipal,
    ReadNamespace,
    RequiredPrincipal,
    SessionDep,
    allowed_actions,
    record_refusal,
)
from modelseal.registry.db.models import Namespace
from modelseal.registry.errors import ForbiddenError
from modelseal.registry.identity import create_namespace, get_user, set_role
from modelseal.registry.routers._shared import page, page_params
from modelseal.registry.services.catalog import readable_namespaces

__all__ = ["router"]

router = APIRouter(prefix="/namespaces", tags=["namespaces"])


class NamespaceIn(BaseModel):
    """A new namespace."""

    name: str
    public: bool = False
    scan_threshold: str = "low"
    require_signature: bool = True


class RoleIn(BaseModel):
    """A member's role; ``null`` removes the member."""

    role: str | None = Field(None, description="reader, publisher, admin or null")


def _doc(namespace: Namespace, actions: set[str]) -> dict[str, Any]:
    return {
        "name": namespace.name,
        "public": namespace.public,
        "scan_threshold": namespace.scan_threshold,
        "require_signature": namespace.require_signature,
        "your_actions": sorted(actions),
        "created_at": namespace.created_at.isoformat(),
    }


@router.get("")
def list_namespaces(
    session: SessionDep,
    principal: MaybePrincipal,
    paging: Annotated[tuple[int, int], Depends(page_params)],
) -> dict[str, Any]:
    """Namespaces the caller can read."""
    limit, cursor = paging
    items, next_cursor = readable_namespaces(session, principal, cursor, limit)
    return page([_doc(namespace, actions) for namespace, actions in items], next_cursor)


@router.post("", status_code=201)
def new_namespace(
    body: NamespaceIn, request: Request, session: SessionDep, principal: RequiredPrincipal
) -> dict[str, Any]:
    """Create a namespace (site admins only); the creator becomes its admin."""
    if not principal.is_admin or not principal.credential_allows(body.name, "admin"):
        record_refusal(
            request, "forbidden", f"{principal.name} create namespace", principal.user_id
        )
        raise ForbiddenError("only site admins may create namespaces")
    owner = get_user(session, principal.name)
    namespace = create_namespace(
        session,
        body.name,
        public=body.public,
        scan_threshold=body.scan_threshold,
        require_signature=body.require_signature,
        owner=owner,
    )
    return _doc(namespace, allowed_actions(session, principal, namespace))


@router.get("/{namespace}")
def show_namespace(
    row: ReadNamespace, session: SessionDep, principal: MaybePrincipal
) -> dict[str, Any]:
    """One namespace."""
    return _doc(row, allowed_actions(session, principal, row))


@router.put("/{namespace}/members/{user}")
def set_member(
    row: AdminNamespace,
    user: str,
    body: RoleIn,
    session: SessionDep,
    principal: RequiredPrincipal,
) -> dict[str, Any]:
    """Give a user a role in the namespace (namespace admins)."""
    set_role(session, row, get_user(session, user), body.role)
    return {"namespace": row.name, "user": user, "role": body.role}
