"""Registry fixtures: an app on SQLite or PostgreSQL served over real HTTP on loopback.

PostgreSQL tests need ``MODELSEAL_TEST_POSTGRES_URL`` (``scripts/start-postgres.sh``
prints one); without it they are skipped with that reason, or fail when
``MODELSEAL_REQUIRE_POSTGRES=1`` (CI sets it, so they can never be skipped there).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from modelseal.registry.settings import RegistrySettings

POSTGRES_ENV = "MODELSEAL_TEST_POSTGRES_URL"


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    """Wait (bounded) until something listens on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The PostgreSQL server given by the environment (skip without it)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url and os.environ.get("MODELSEAL_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{POSTGRES_ENV} is not set but MODELSEAL_REQUIRE_POSTGRES=1 (CI)")
    if not url:
        pytest.skip(
            f"{POSTGRES_ENV} is not set: run `export {POSTGRES_ENV}=$(scripts/start-postgres.sh)`"
        )
    return url


@pytest.fixture(scope="session")
def postgres_database(postgres_server_url: str) -> Iterator[str]:
    """A fresh database for this test session, dropped at the end."""
    import sqlalchemy as sa

    name = f"modelseal_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base, _, _ = postgres_server_url.rpartition("/")
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated-from-scratch database URL: SQLite in tmp_path, or a clean PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    import sqlalchemy as sa

    url: str = request.getfixturevalue("postgres_database")
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@dataclass
class Registry:
    """A running registry app with helpers to create users and tokens directly."""

    settings: RegistrySettings
    app: Any
    url: str
    tmp: Path
    _tokens: dict[str, str] = field(default_factory=dict)

    def session(self) -> Any:
        """A database session of the app."""
        return self.app.state.sessions()

    def user(self, name: str, *, admin: bool = False, roles: dict[str, str] | None = None) -> None:
        """Create a user (with a namespace of its own) and give it roles elsewhere."""
        from modelseal.registry import identity

        with self.session() as session:
            user = identity.create_user(session, name, admin=admin)
            for namespace, role in (roles or {}).items():
                identity.set_role(session, identity.get_namespace(session, namespace), user, role)

    def namespace(self, name: str, **options: Any) -> None:
        """Create a namespace."""
        from modelseal.registry import identity

        with self.session() as session:
            identity.create_namespace(session, name, **options)

    def token(
        self,
        user: str,
        *,
        namespaces: tuple[str, ...] = ("*",),
        actions: tuple[str, ...] = ("read", "push", "admin"),
        expires_in: dt.timedelta | None = dt.timedelta(days=1),
    ) -> str:
        """A new token for ``user``."""
        from modelseal.registry import identity

        with self.session() as session:
            _, secret = identity.create_token(
                session,
                identity.get_user(session, user),
                namespaces=namespaces,
                actions=actions,
                expires_in=expires_in,
            )
        return secret

    def trust(self, namespace: str, public_key: Path) -> str:
        """Trust a public key for ``namespace``; returns its fingerprint."""
        from modelseal.registry import identity

        with self.session() as session:
            key = identity.trust_key(
                session,
                identity.get_namespace(session, namespace),
                public_key.read_text(),
                public_key.stem,
            )
        return key.fingerprint

    def client(self, token: str | None, **kwargs: Any) -> Any:
        """A RegistryClient with its own client state directory."""
        from modelseal.registry.client import ClientState, RegistryClient

        home = kwargs.pop("home", None) or self.tmp / f"client-{secrets.token_hex(3)}"
        return RegistryClient(self.url, token, state=ClientState(home), **kwargs)

    def http(self, token: str | None = None) -> Any:
        """A plain httpx client on the API (for raw protocol tests)."""
        import httpx

        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url + "/v1", headers=headers, timeout=30)


def _serve(app: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise TimeoutError("uvicorn did not start")
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def make_registry(tmp_path: Path, db_url: str) -> Iterator[Any]:
    """A factory of running registries: ``make_registry(**settings)``."""
    from modelseal.registry.app import create_app
    from modelseal.registry.db.session import migrate

    running: list[tuple[Any, threading.Thread, Any]] = []

    def make(**options: Any) -> Registry:
        options.setdefault("data_dir", tmp_path / f"data-{len(running)}")
        settings = RegistrySettings(db_url=db_url, **options)
        migrate(settings.database_url)
        app = create_app(settings)
        server, thread, url = _serve(app)
        running.append((server, thread, app))
        return Registry(settings, app, url, tmp_path)

    yield make
    for server, thread, app in running:
        server.should_exit = True
        thread.join(10)
        app.state.engine.dispose()


@pytest.fixture
def registry(make_registry: Any) -> Registry:
    """A running registry with default settings."""
    registry: Registry = make_registry()
    return registry


@pytest.fixture(scope="session")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A trusted signing key pair (EC P-256)."""
    from modelseal.integrity import generate_keypair

    return generate_keypair(tmp_path_factory.mktemp("keys") / "release")


@pytest.fixture(scope="session")
def other_keypair(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A key pair nobody trusts."""
    from modelseal.integrity import generate_keypair

    return generate_keypair(tmp_path_factory.mktemp("keys") / "mallory")


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback for one test (bounded start)."""
    exe = Path(sys.executable).with_name("moto_server")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    port = free_port()
    process = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy AWS credentials (moto checks none); never the user's real ones."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
