"""The registry database: models, engine and session helpers, migrations."""

from modelseal.registry.db.session import create_engine_for, migrate, session_factory

__all__ = ["create_engine_for", "migrate", "session_factory"]
