"""Hub folders publish as they are: Git metadata files the signature leaves out, and
retrying a quarantined version name (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelseal.registry.errors import ConflictError, QuarantinedError
from tests.samples.registry import write_model, write_pickle_model

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


@pytest.fixture
def alice(registry: Any, keypair: Any) -> tuple[Any, str]:
    """User alice whose namespace trusts ``keypair``, and bob, a publisher there."""
    registry.user("alice")
    registry.user("bob", roles={"alice": "publisher"})
    registry.trust("alice", keypair.public_key)
    return registry, registry.token("alice")


def test_a_hub_folder_with_git_metadata_publishes_and_records_it_unsigned(
    alice: tuple[Any, str], keypair: Any, tmp_path: Path
) -> None:
    registry, token = alice
    extra = {".gitattributes": GITATTRIBUTES, ".gitignore": b"*.tmp\n", "sub/.gitattributes": b"x"}
    model = write_model(tmp_path / "hub-folder", extra=extra)
    with registry.client(token) as client:
        pushed = client.push(model, "alice/tiny:1.0", key=keypair.private_key)
        doc = pushed.version
        assert doc["state"] == "published", doc["reasons"]
        assert doc["unsigned_files"] == [".gitattributes", ".gitignore"]
        assert {f["path"] for f in doc["files"]} >= {".gitattributes", "sub/.gitattributes"}
        # The native pull verifies the same way: the files are there, the signature holds.
        client.pull("alice/tiny:1.0", tmp_path / "out")
    assert (tmp_path / "out" / ".gitattributes").read_bytes() == GITATTRIBUTES


def test_other_git_metadata_still_has_to_be_signed(
    alice: tuple[Any, str], keypair: Any, tmp_path: Path
) -> None:
    registry, token = alice
    extra = {".gitattributes": GITATTRIBUTES, ".github/workflows/ci.yml": b"on: push\n"}
    model = write_model(tmp_path / "m", extra=extra)
    with registry.client(token) as client, pytest.raises(QuarantinedError) as refused:
        client.push(model, "alice/tiny:1.0", key=keypair.private_key)
    message = str(refused.value) + " ".join(getattr(refused.value, "reasons", []))
    assert "not covered by the signature: .github/workflows/ci.yml" in message
    assert "not covered by the signature: .gitattributes" not in message


def test_the_uploader_may_retry_a_quarantined_version_name(
    alice: tuple[Any, str], keypair: Any, tmp_path: Path
) -> None:
    registry, token = alice
    evil = write_pickle_model(tmp_path / "evil")
    with registry.client(token) as client:
        with pytest.raises(QuarantinedError):
            client.push(evil, "alice/tiny:1.0", key=keypair.private_key)
        bob = registry.client(registry.token("bob"))
        with bob, pytest.raises(ConflictError, match="pushed by another user"):
            bob.push(write_model(tmp_path / "b"), "alice/tiny:1.0", key=keypair.private_key)
        fixed = client.push(write_model(tmp_path / "ok"), "alice/tiny:1.0", key=keypair.private_key)
        assert fixed.version["state"] == "published" and fixed.version["reasons"] == []
        client.pull("alice/tiny:1.0", tmp_path / "out")
        # Published versions stay immutable.
        with pytest.raises(ConflictError, match=r"exists already \(published\)"):
            client.push(
                write_model(tmp_path / "c", seed=5), "alice/tiny:1.0", key=keypair.private_key
            )
    with registry.http(token) as http:
        versions = http.get("/namespaces/alice/models/tiny/versions").json()["items"]
    assert [(v["version"], v["state"]) for v in versions] == [("1.0", "published")]
    from sqlalchemy import select

    from modelseal.registry.db.models import LogEntryRow

    with registry.session() as session:
        logged = session.execute(
            select(LogEntryRow.kind)
            .where(LogEntryRow.subject == "alice/tiny:1.0")
            .order_by(LogEntryRow.idx)
        ).scalars()
        assert list(logged) == ["quarantine", "publish"]  # the history stays in the log
