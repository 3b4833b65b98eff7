"""One router per resource; ``app.create_app`` mounts them all under ``/v1``."""

from __future__ import annotations

__all__ = ["ROUTERS"]

#: Router modules, each exposing ``router``.
ROUTERS: tuple[str, ...] = (
    "namespaces",
    "models",
    "versions",
    "tags",
    "uploads",
    "blobs",
    "tokens",
    "keys",
    "log",
)
