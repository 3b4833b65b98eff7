"""What the routers share: cursor pagination in the request and in the answer."""

from __future__ import annotations

from typing import Any

from fastapi import Query

__all__ = ["Page", "page", "page_params"]

Page = dict[str, Any]


def page_params(
    limit: int = Query(50, ge=1, le=500, description="Items per page."),
    cursor: int = Query(0, ge=0, description="The `next` value of the previous page."),
) -> tuple[int, int]:
    """Cursor pagination: items with an id above ``cursor``, ``limit`` at a time."""
    return limit, cursor


def page(items: list[dict[str, Any]], next_cursor: int | None) -> Page:
    """``{"items", "next"}``; ``next`` is ``None`` on the last page."""
    return {"items": items, "next": next_cursor}
