"""Schema and upload housekeeping on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest


def test_migrations_match_the_models_and_are_idempotent(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from modelseal.registry.db.models import Base
    from modelseal.registry.db.session import create_engine_for, migrate

    assert migrate(db_url) == "0005"
    assert migrate(db_url) == "0005"
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_a_bad_database_url_is_a_config_error() -> None:
    from modelseal.errors import ConfigError
    from modelseal.registry.db.session import migrate

    with pytest.raises(ConfigError, match="database"):
        migrate("nosuchdialect://x")
    with pytest.raises(ConfigError, match="cannot reach"):
        migrate("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_expired_uploads_are_discarded(registry: Any) -> None:
    from modelseal.registry.db.models import Upload, utcnow

    registry.user("pub")
    token = registry.token("pub")
    data = b"partial upload"
    digest = hashlib.sha256(data).hexdigest()
    body = {"version": "1.0", "files": [{"path": "f", "digest": digest, "size": len(data)}]}
    with registry.http(token) as http:
        upload = http.post("/namespaces/pub/models/m/uploads", json=body).json()
        http.patch(
            f"/uploads/{upload['id']}/blobs/{digest}", params={"offset": 0}, content=data[:5]
        )
        staged = registry.settings.staging_dir / upload["id"]
        assert staged.exists()
        with registry.session() as session:
            row = session.get(Upload, upload["id"])
            row.expires_at = utcnow() - dt.timedelta(seconds=1)
            session.commit()
        assert http.get(f"/uploads/{upload['id']}").status_code == 404
        fresh = http.post("/namespaces/pub/models/m/uploads", json=body)
        assert fresh.status_code == 201 and fresh.json()["id"] != upload["id"]
        assert fresh.json()["blobs"][0]["offset"] == 0
    assert not staged.exists()
