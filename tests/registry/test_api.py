"""Push, gate, pull, tags, search and pagination over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelseal.registry.errors import ConflictError, NotFoundError
from tests.samples.registry import write_model


@pytest.fixture
def alice(registry: Any, keypair: Any) -> tuple[Any, str]:
    """User alice (site admin) whose namespace trusts ``keypair``; returns (registry, token)."""
    registry.user("alice", admin=True)
    registry.trust("alice", keypair.public_key)
    return registry, registry.token("alice")


def test_signed_push_is_published_and_pull_gets_identical_files(
    alice: tuple[Any, str], keypair: Any, tmp_path: Path
) -> None:
    registry, token = alice
    model = write_model(tmp_path / "model", extra={"sub/dir/tokenizer.json": b"{}"})
    with registry.client(token) as client:
        pushed = client.push(model, "alice/tiny:1.0", key=keypair.private_key, tags=["latest"])
        assert pushed.version["state"] == "published"
        assert pushed.version["signed_by"] is not None
        assert pushed.version["sbom_digest"] is not None
        assert pushed.version["scan_verdict"] == "clean"
        result = client.pull("alice/tiny:latest", tmp_path / "out")
    for name in ("model.safetensors", "config.json", "sub/dir/tokenizer.json"):
        assert (tmp_path / "out" / name).read_bytes() == (model / name).read_bytes()
    assert result.signed_by == pushed.version["signed_by"]
    assert any("signature verifies" in check for check in result.checks)
    assert not [p for p in tmp_path.iterdir() if ".pull-" in p.name], "temp dir left behind"


def test_second_version_reuses_stored_blobs(
    alice: tuple[Any, str], keypair: Any, tmp_path: Path
) -> None:
    registry, token = alice
    model = write_model(tmp_path / "model", size=4096)
    with registry.client(token) as client:
        first = client.push(model, "alice/tiny:1.0", key=keypair.private_key)
        (model / "config.json").write_text('{"model_type": "toy", "v": 2}')
        second = client.push(model, "alice/tiny:1.1", key=keypair.private_key)
    weights = (model / "model.safetensors").stat().st_size
    assert first.bytes_uploaded >= weights
    assert second.bytes_skipped >= weights  # the weights were not sent again
    assert second.bytes_uploaded < 100


def test_versions_are_immutable(alice: tuple[Any, str], keypair: Any, tmp_path: Path) -> None:
    registry, token = alice
    model = write_model(tmp_path / "model")
    with registry.client(token) as client:
        client.push(model, "alice/tiny:1.0", key=keypair.private_key)
        with pytest.raises(ConflictError, match="exists already"):
            client.push(
                write_model(tmp_path / "other", seed=3), "alice/tiny:1.0", key=keypair.private_key
            )


def test_pull_by_digest_and_unknown_digest(
    alice: tuple[Any, str], keypair: Any, tmp_path: Path
) -> None:
    registry, token = alice
    with registry.client(token) as client:
        doc = client.push(
            write_model(tmp_path / "m"), "alice/tiny:1.0", key=keypair.private_key
        ).version
        client.pull(f"alice/tiny@sha256:{doc['digest']}", tmp_path / "by-digest")
        assert (tmp_path / "by-digest" / "config.json").exists()
        with pytest.raises(NotFoundError):
            client.pull("alice/tiny@sha256:" + "0" * 64, tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_info_search_tags_history_and_pagination(
    alice: tuple[Any, str], keypair: Any, tmp_path: Path
) -> None:
    registry, token = alice
    with registry.client(token) as client:
        for number in range(3):
            client.push(
                write_model(tmp_path / f"m{number}", seed=number),
                f"alice/bert-{number}:1.0",
                key=keypair.private_key,
                tags=["prod"],
            )
        client.push(
            write_model(tmp_path / "m-next", seed=9),
            "alice/bert-0:2.0",
            key=keypair.private_key,
            tags=["prod"],
        )
        info = client.info("alice/bert-0")
        assert info["tags"] == {"prod": "2.0"} and info["latest_version"] == "2.0"
        version = client.info("alice/bert-0:1.0")
        assert version["uploader"] == "alice" and version["state"] == "published"
        assert {item["model"] for item in client.search("bert")} == {"bert-0", "bert-1", "bert-2"}
        assert client.search("nomatch") == []
    with registry.http(token) as http:
        page1 = http.get("/namespaces/alice/models", params={"limit": 2}).json()
        assert len(page1["items"]) == 2 and page1["next"] is not None
        page2 = http.get(
            "/namespaces/alice/models", params={"limit": 2, "cursor": page1["next"]}
        ).json()
        assert len(page2["items"]) == 1 and page2["next"] is None
        history = http.get("/namespaces/alice/models/bert-0/tags/prod/history").json()["items"]
        assert [h["version"] for h in history] == ["1.0", "2.0"]
        moved = http.put("/namespaces/alice/models/bert-0/tags/prod", json={"version": "1.0"})
        assert moved.status_code == 200
        assert http.get("/namespaces/alice/models/bert-0/resolve/prod").json()["version"] == "1.0"
        assert http.get("/namespaces/alice/models/bert-0/versions/1.0/sbom").status_code == 200
        scan = http.get("/namespaces/alice/models/bert-0/versions/1.0/scan").json()
        assert scan["summary"]["files"] == 2
        openapi = http.get(registry.url + "/openapi.json").json()
        assert "/v1/uploads/{upload_id}/commit" in openapi["paths"]


def test_public_namespace_is_readable_without_token(
    registry: Any, keypair: Any, tmp_path: Path
) -> None:
    registry.user("org-admin")
    registry.namespace("open", public=True)
    registry.user("pub", roles={"open": "publisher"})
    registry.trust("open", keypair.public_key)
    with registry.client(registry.token("pub")) as client:
        client.push(write_model(tmp_path / "m"), "open/tiny:1.0", key=keypair.private_key)
    with registry.client(None) as anonymous:
        anonymous.pull("open/tiny:1.0", tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").exists()
