"""Registry v2 regressions: each test performs an attack from the security review against a
registry served over HTTP on loopback and checks it is refused, clearly, and logged."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest

from modelseal.registry.errors import QuarantinedError
from modelseal.registry.manifest import walk_model
from tests.samples.registry import write_model, write_pickle_model

AUDIT = "modelseal.registry.audit"


@pytest.fixture
def org(registry: Any, keypair: Any) -> Any:
    """``acme`` (private, trusts ``keypair``) with a publisher and a reader; ``mallory``
    has no rights in it and a namespace of her own."""
    registry.user("root", admin=True)
    registry.namespace("acme")
    registry.user("pub", roles={"acme": "publisher"})
    registry.user("reader", roles={"acme": "reader"})
    registry.user("mallory")
    registry.trust("acme", keypair.public_key)
    return registry


def _events(registry: Any, kind: str) -> list[Any]:
    from sqlalchemy import select

    from modelseal.registry.db.models import AuthEvent

    with registry.session() as session:
        return list(session.scalars(select(AuthEvent).where(AuthEvent.kind == kind)).all())


def _files(model: Path) -> list[dict[str, Any]]:
    return [e.to_dict() for e in walk_model(model)]


def _upload(http: Any, where: str, files: list[dict[str, Any]], version: str = "1.0") -> Any:
    namespace, _, model = where.partition("/")
    body = {"version": version, "files": files}
    return http.post(f"/namespaces/{namespace}/models/{model}/uploads", json=body)


# -- hole 3: blobs by digest -------------------------------------------------------------------


def test_a_digest_of_another_namespace_is_neither_reused_nor_revealed(
    org: Any, keypair: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=AUDIT)
    secret = write_model(tmp_path / "secret", seed=42)
    with org.client(org.token("pub")) as client:
        client.push(secret, "acme/secret:1.0", key=keypair.private_key)
    stolen = _files(secret)
    never_stored = [
        {"path": "x.bin", "digest": hashlib.sha256(b"nothing like it").hexdigest(), "size": 15}
    ]
    with org.http(org.token("mallory")) as http:
        upload = _upload(http, "mallory/loot", stolen).json()
        other = _upload(http, "mallory/probe", never_stored).json()
        # No existence oracle: a stored digest looks exactly like one never seen.
        assert all(not b["complete"] and b["offset"] == 0 for b in upload["blobs"])
        assert len(upload["missing"]) == len(stolen)
        assert [b["complete"] for b in other["blobs"]] == [False]
        # Claiming the chunk is done does not work either: the bytes are required.
        first = stolen[0]["digest"]
        chunk = http.patch(f"/uploads/{upload['id']}/blobs/{first}", params={"offset": 0})
        assert chunk.json()["complete"] is False
        commit = http.post(f"/uploads/{upload['id']}/commit", json={})
        assert commit.status_code == 409
        assert "not uploaded yet" in commit.json()["error"]["message"]
        assert http.get("/namespaces/mallory/models/loot/resolve/1.0").status_code == 404
        assert http.get(f"/namespaces/mallory/blobs/{first}").status_code == 404
    assert "commit" in caplog.text and "not uploaded yet" in caplog.text
    assert [e for e in _events(org, "conflict") if "not uploaded yet" in e.detail]


def test_a_reader_reuses_a_published_blob_but_must_declare_its_real_size(
    org: Any, keypair: Any, tmp_path: Path
) -> None:
    model = write_model(tmp_path / "m", seed=7)
    with org.client(org.token("pub")) as client:
        client.push(model, "acme/m:1.0", key=keypair.private_key)
    files = _files(model)
    with org.http(org.token("reader")) as http:
        mounted = _upload(http, "reader/copy", files).json()
        assert all(b["complete"] for b in mounted["blobs"])  # a cross-namespace mount
        small = min(files, key=lambda f: f["size"])
        lie = [{**small, "size": 1024**3}]  # the 53-byte blob declared as 1 GiB
        refused = _upload(http, "reader/big", lie, version="2.0")
        assert refused.status_code == 400
        assert "stored blob with that digest has" in refused.json()["error"]["message"]
    assert [e for e in _events(org, "bad_request") if "declared as" in e.detail]


def test_a_reader_cannot_reattach_a_quarantined_blob(org: Any, tmp_path: Path) -> None:
    evil = write_pickle_model(tmp_path / "evil")
    with org.client(org.token("pub")) as client, pytest.raises(QuarantinedError):
        client.push(evil, "acme/evil:1.0")
    with org.http(org.token("reader")) as http:
        doc = http.get("/namespaces/acme/models/evil/resolve/1.0").json()
        assert doc["state"] == "quarantined" and doc["files"] == []  # no digests to name
        files = _files(evil)  # the attacker knows the bytes' digests some other way
        upload = _upload(http, "reader/evil", files).json()
        assert all(not b["complete"] for b in upload["blobs"])
        assert http.post(f"/uploads/{upload['id']}/commit", json={}).status_code == 409


def test_uploads_over_the_users_quota_are_refused(make_registry: Any) -> None:
    registry = make_registry(max_user_upload_bytes=10_000)
    registry.user("pub")
    digest = hashlib.sha256(b"x").hexdigest()
    with registry.http(registry.token("pub")) as http:
        first = _upload(http, "pub/a", [{"path": "a", "digest": digest, "size": 6_000}])
        assert first.status_code == 201
        other = hashlib.sha256(b"y").hexdigest()
        second = _upload(http, "pub/b", [{"path": "b", "digest": other, "size": 6_000}])
        assert second.status_code == 413 and "quota" in second.json()["error"]["message"]
        http.delete(f"/uploads/{first.json()['id']}")
        assert _upload(http, "pub/b", [{"path": "b", "digest": other, "size": 6_000}]).is_success
    assert [e for e in _events(registry, "too_large") if "quota" in e.detail]


# -- hole 5: tokens ----------------------------------------------------------------------------


def _expire(registry: Any, token_id: int) -> None:
    from modelseal.registry.db.models import Token, utcnow

    with registry.session() as session:
        row = session.get(Token, token_id)
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
        session.commit()


def _token_id(registry: Any, secret: str) -> int:
    from sqlalchemy import select

    from modelseal.registry.db.models import Token
    from modelseal.registry.identity import hash_token

    with registry.session() as session:
        return int(session.scalar(select(Token.id).where(Token.token_hash == hash_token(secret))))


def test_a_child_token_never_outlives_its_parent(registry: Any) -> None:
    registry.user("pub")
    parent = registry.token("pub", expires_in=dt.timedelta(seconds=60))
    with registry.http(parent) as http:
        made = http.post("/tokens", json={"actions": ["read"], "expires_in_days": None})
        assert made.status_code == 201
        child = made.json()
        assert child["expires_at"] is not None  # clamped to the parent's expiry
        grandchild = http.post("/tokens", json={"actions": ["read"]}).json()
    with registry.http(child["token"]) as http:
        assert http.get("/whoami").status_code == 200
    _expire(registry, _token_id(registry, parent))
    for secret in (child["token"], grandchild["token"]):
        with registry.http(secret) as http:
            assert http.get("/whoami").status_code == 401


def test_revoking_a_token_revokes_every_token_made_from_it(
    registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    registry.user("pub")
    manager = registry.token("pub", actions=("read", "push", "admin"))
    with registry.http(manager) as http:
        middle = http.post("/tokens", json={"actions": ["read", "admin"]}).json()
    with registry.http(middle["token"]) as http:
        leaf = http.post("/tokens", json={"actions": ["read"]}).json()
    with registry.http(manager) as http:
        assert http.delete(f"/tokens/{middle['id']}").status_code == 204
        listed = {t["id"]: t["revoked"] for t in http.get("/tokens").json()["items"]}
    assert listed[middle["id"]] and listed[leaf["id"]]
    with registry.http(leaf["token"]) as http:
        assert http.get("/whoami").status_code == 401
    with registry.http(registry.token("pub", actions=("read", "admin"))) as http:
        entries = [i["entry"] for i in http.get("/log/entries").json()["items"]]
    revoked = [e for e in entries if e and '"token-revoke"' in e]
    assert len(revoked) == 2


def test_narrow_tokens_cannot_manage_tokens(
    registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=AUDIT)
    registry.user("root", admin=True)
    registry.user("pub")
    victim = registry.token("pub")
    victim_id = _token_id(registry, victim)
    read_only = registry.token("pub", namespaces=("pub",), actions=("read",))
    admin_narrow = registry.token("root", namespaces=("root",), actions=("read", "admin"))
    for secret in (read_only, admin_narrow):
        with registry.http(secret) as http:
            refused = http.delete(f"/tokens/{victim_id}")
            assert refused.status_code == 403
            assert "admin action" in refused.json()["error"]["message"]
            assert http.post("/tokens", json={"actions": ["read"]}).status_code == 403
    with registry.http(victim) as http:
        assert http.get("/whoami").status_code == 200
    assert "with a narrow token" in caplog.text
    assert len([e for e in _events(registry, "forbidden") if "narrow token" in e.detail]) == 4
    with registry.http(registry.token("root")) as http:  # an unscoped admin token may
        assert http.delete(f"/tokens/{victim_id}").status_code == 204


# -- hole 4: the log API -----------------------------------------------------------------------


def test_the_log_api_hides_private_entries_but_proofs_still_verify(
    org: Any, keypair: Any, tmp_path: Path
) -> None:
    from modelseal.transparency.merkle import leaf_hash, root_from_inclusion

    with org.client(org.token("pub")) as client:
        client.push(write_model(tmp_path / "m"), "acme/secret-model:1.0", key=keypair.private_key)
    with org.http(org.token("mallory")) as http:
        items = http.get("/log/entries").json()["items"]
        assert items and all(i["hidden"] and i["entry"] is None for i in items)
        assert "secret-model" not in http.get("/log/entries").text
        head = http.get("/log/tree-head").json()
        one = http.get(
            f"/log/entries/{items[-1]['index']}", params={"tree_size": head["tree_size"]}
        ).json()
        assert one["entry"] is None and "acme" not in str(one)
    path = [bytes.fromhex(h) for h in one["audit_path"]]
    root = root_from_inclusion(
        bytes.fromhex(one["leaf_hash"]), one["index"], one["tree_size"], path
    )
    assert root.hex() == head["root_hash"]
    with org.http(org.token("reader")) as http:
        seen = http.get("/log/entries").json()["items"]
    publish = [i for i in seen if i["entry"] and "secret-model" in i["entry"]]
    assert publish and leaf_hash(publish[0]["entry"].encode()).hex() == publish[0]["leaf_hash"]
