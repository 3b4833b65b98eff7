"""Engines, sessions and migrations.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy
timeout, so the API and the admin CLI can use the same file at once. PostgreSQL
is reached through psycopg 3 (``postgresql+psycopg://...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelseal.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["create_engine_for", "migrate", "session_factory"]

_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_engine_for(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        if url.startswith("sqlite"):
            database = url.split(":///", 1)[-1]
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

            return engine
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(
            f"invalid database URL {url!r}: {exc}",
            advice="use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB",
        ) from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session maker whose objects stay readable after commit.

    Its sessions append the transparency-log entries recorded with
    :func:`~modelseal.registry.transparency_store.log_event` when they commit.
    """
    from sqlalchemy.orm import sessionmaker

    from modelseal.registry.transparency_store import install_log_hook

    factory = sessionmaker(engine, expire_on_commit=False)
    install_log_hook(factory)
    return factory


def migrate(url: str, revision: str = "head") -> str:
    """Bring the database at ``url`` to ``revision`` (Alembic); return the revision reached."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import OperationalError

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = create_engine_for(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() or "base"
    except OperationalError as exc:
        raise ConfigError(
            f"cannot reach the registry database: {exc.orig}",
            advice="check --db (is the server running, is the URL right?)",
        ) from exc
    finally:
        engine.dispose()
