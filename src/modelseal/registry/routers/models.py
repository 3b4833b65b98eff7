"""Models: list a namespace's models, show one, search across namespaces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from modelseal.registry.auth import MaybePrincipal, ReadNamespace, SessionDep
from modelseal.registry.routers._shared import page, page_params
from modelseal.registry.schemas import ModelDoc
from modelseal.registry.services import catalog

__all__ = ["router"]

router = APIRouter(tags=["models"])


@router.get("/namespaces/{namespace}/models")
def list_models(
    row: ReadNamespace,
    session: SessionDep,
    paging: Annotated[tuple[int, int], Depends(page_params)],
) -> dict[str, Any]:
    """The models of a namespace."""
    limit, cursor = paging
    models, next_cursor = catalog.list_models(session, row, cursor, limit)
    return page([catalog.model_doc(session, m) for m in models], next_cursor)


@router.get("/namespaces/{namespace}/models/{model}", response_model=ModelDoc)
def show_model(model: str, row: ReadNamespace, session: SessionDep) -> dict[str, Any]:
    """One model with its tags and latest published version."""
    return catalog.model_doc(session, catalog.get_model(session, row, model))


@router.get("/search")
def search(
    session: SessionDep,
    principal: MaybePrincipal,
    paging: Annotated[tuple[int, int], Depends(page_params)],
    q: str = Query("", max_length=100, description="Substring of the model name."),
) -> dict[str, Any]:
    """Models whose name contains ``q``, in namespaces the caller can read."""
    limit, cursor = paging
    models, next_cursor = catalog.search_models(session, principal, q, cursor, limit)
    return page([catalog.model_doc(session, m) for m in models], next_cursor)
