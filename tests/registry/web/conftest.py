"""Web-page fixtures: a seeded app behind FastAPI's TestClient, and signing in."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.samples.registry_web import WebData, seed_web_data


@dataclass
class WebApp:
    """A seeded registry app and its data."""

    app: Any
    data: WebData
    data_dir: Path

    def client(self) -> Any:
        """A fresh browser-like client (own cookies), over HTTPS so Secure cookies flow."""
        from fastapi.testclient import TestClient

        return TestClient(self.app, base_url="https://testserver", follow_redirects=False)

    def signed_in(self, user: str) -> Any:
        """A client signed in as ``user`` through the login form."""
        client = self.client()
        response = login(client, self.data.tokens[user])
        assert response.status_code == 303, response.text
        return client


def csrf_of(html: str) -> str:
    """The CSRF field of the first form on a page."""
    found = re.search(r'name="csrf" value="([^"]*)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def login(client: Any, token: str, next_page: str = "/") -> Any:
    """Post the sign-in form like a browser would (form page first, for the CSRF cookie)."""
    form = client.get("/login")
    return client.post(
        "/login", data={"token": token, "csrf": csrf_of(form.text), "next": next_page}
    )


def server_ms(response: Any) -> float:
    """The server's own time for a response, from its ``Server-Timing`` header."""
    found = re.fullmatch(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
    assert found, f"no Server-Timing on {response.url}"
    return float(found.group(1))


def _make(root: Path, **options: Any) -> Iterator[WebApp]:
    from modelseal.registry.app import create_app
    from modelseal.registry.db.session import migrate
    from modelseal.registry.settings import RegistrySettings

    settings = RegistrySettings(data_dir=root, **options)
    migrate(settings.database_url)
    app = create_app(settings)
    data = seed_web_data(app.state.sessions, app.state.store)
    yield WebApp(app, data, root)
    app.state.engine.dispose()


@contextlib.contextmanager
def _database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """``None`` (SQLite under the data directory) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    import sqlalchemy as sa

    server: str = request.getfixturevalue("postgres_server_url")
    name = f"modelseal_web_{secrets.token_hex(4)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server.rpartition('/')[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def web(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebApp]:
    """A seeded app shared by the read-only tests of a module (SQLite, then PostgreSQL)."""
    with _database(request) as url:
        yield from _make(tmp_path_factory.mktemp("web"), db_url=url)


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_web(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WebApp]:
    """A seeded app of one's own, for tests that revoke tokens or count failures."""
    with _database(request) as url:
        yield from _make(tmp_path / "web", db_url=url)
