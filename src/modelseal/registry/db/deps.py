"""FastAPI dependencies for the database (imported by the server only)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["get_session"]


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, rolled back if not committed."""
    factory: sessionmaker[Session] = request.app.state.sessions
    with factory() as session:
        yield session
