"""Refusals: every one with a clear error, nothing stored that should not be, and logged."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest

from modelseal.errors import IntegrityError, VerificationError
from modelseal.registry.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    QuarantinedError,
    RollbackError,
    TooLargeError,
    UnauthenticatedError,
)
from tests.samples.registry import write_model, write_pickle_model

AUDIT = "modelseal.registry.audit"


@pytest.fixture
def org(registry: Any, keypair: Any) -> Any:
    """Namespace ``acme`` (trusts ``keypair``) with a publisher, a reader and an outsider."""
    registry.user("root", admin=True)
    registry.namespace("acme")
    registry.user("pub", roles={"acme": "publisher"})
    registry.user("reader", roles={"acme": "reader"})
    registry.user("outsider")
    registry.trust("acme", keypair.public_key)
    return registry


def _events(registry: Any, kind: str) -> list[Any]:
    from sqlalchemy import select

    from modelseal.registry.db.models import AuthEvent

    with registry.session() as session:
        return list(session.scalars(select(AuthEvent).where(AuthEvent.kind == kind)).all())


def _published(registry: Any, keypair: Any, tmp_path: Path, ref: str = "acme/m:1.0") -> dict:
    with registry.client(registry.token("pub")) as client:
        result = client.push(
            write_model(tmp_path / "model"), ref, key=keypair.private_key, tags=["latest"]
        )
    return dict(result.version)


def test_push_without_token_is_refused_and_logged(
    org: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=AUDIT)
    with org.client(None) as client, pytest.raises(UnauthenticatedError, match="needs a token"):
        client.push(write_model(tmp_path / "m"), "acme/m:1.0")
    assert "refused POST /v1/namespaces/acme/models/m/uploads" in caplog.text
    assert _events(org, "anonymous") and not _events(org, "unauthenticated")


def test_anonymous_read_of_private_namespace_is_refused(
    org: Any, keypair: Any, tmp_path: Path
) -> None:
    _published(org, keypair, tmp_path)
    with org.client(None) as client, pytest.raises(UnauthenticatedError):
        client.pull("acme/m:1.0", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_token_for_another_namespace_is_refused(
    org: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=AUDIT)
    scoped = org.token("pub", namespaces=("pub",))
    with (
        org.client(scoped) as client,
        pytest.raises(NotFoundError, match=r"not visible|no namespace"),
    ):
        client.push(write_model(tmp_path / "m"), "acme/m:1.0")
    with org.client(org.token("outsider")) as client, pytest.raises(NotFoundError):
        client.push(write_model(tmp_path / "m2"), "acme/m:1.0")
    assert "forbidden" in caplog.text
    assert len(_events(org, "forbidden")) == 2


def test_reader_cannot_push_and_read_only_token_cannot_push(
    org: Any, keypair: Any, tmp_path: Path
) -> None:
    with org.client(org.token("reader")) as client, pytest.raises(ForbiddenError, match="push"):
        client.push(write_model(tmp_path / "m"), "acme/m:1.0", key=keypair.private_key)
    read_only = org.token("pub", actions=("read",))
    with org.client(read_only) as client, pytest.raises(ForbiddenError):
        client.push(write_model(tmp_path / "m2"), "acme/m:1.0", key=keypair.private_key)
    with org.client(org.token("reader")) as client, pytest.raises(NotFoundError):
        client.info("acme/m")  # reading works; the model just does not exist


def test_revoked_and_expired_tokens_are_refused(org: Any) -> None:
    from sqlalchemy import select

    from modelseal.registry import identity
    from modelseal.registry.db.models import Token, utcnow

    token = org.token("pub")
    with org.client(token) as client:
        assert client.whoami()["user"] == "pub"
    with org.session() as session:
        row = session.scalars(
            select(Token).where(Token.token_hash == identity.hash_token(token))
        ).one()
        identity.revoke_token(session, row.id)
    with org.client(token) as client, pytest.raises(UnauthenticatedError, match="revoked"):
        client.whoami()
    expiring = org.token("pub", expires_in=dt.timedelta(seconds=60))
    with org.session() as session:
        row = session.scalars(
            select(Token).where(Token.token_hash == identity.hash_token(expiring))
        ).one()
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
        session.commit()
    with org.client(expiring) as client, pytest.raises(UnauthenticatedError, match="expired"):
        client.whoami()
    assert len(_events(org, "unauthenticated")) == 2


def test_unsigned_push_is_quarantined_with_reasons_for_publisher_only(
    org: Any, tmp_path: Path
) -> None:
    with org.client(org.token("pub")) as client, pytest.raises(QuarantinedError) as caught:
        client.push(write_model(tmp_path / "m"), "acme/m:1.0")
    assert "unsigned" in caught.value.message
    with org.http(org.token("pub")) as http:
        doc = http.get("/namespaces/acme/models/m/resolve/1.0").json()
        assert doc["state"] == "quarantined" and any("unsigned" in r for r in doc["reasons"])
        blob = doc["files"][0]["digest"]
    with org.http(org.token("reader")) as http:
        doc = http.get("/namespaces/acme/models/m/resolve/1.0").json()
        assert doc["state"] == "quarantined" and doc["reasons"] == []
        assert doc["files"] == [] and doc["signature_digest"] is None  # only the state
        assert http.get(f"/namespaces/acme/blobs/{blob}").status_code == 404
        scan = http.get("/namespaces/acme/models/m/versions/1.0/scan")
        assert scan.status_code == 404 and "publishers" in scan.json()["error"]["message"]
    with org.client(org.token("reader")) as client, pytest.raises(QuarantinedError):
        client.pull("acme/m:1.0", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_signature_by_untrusted_key_is_quarantined(
    org: Any, other_keypair: Any, tmp_path: Path
) -> None:
    with org.client(org.token("pub")) as client, pytest.raises(QuarantinedError) as caught:
        client.push(write_model(tmp_path / "m"), "acme/m:1.0", key=other_keypair.private_key)
    assert "does not verify with any key trusted" in caught.value.message


def test_signature_of_other_content_is_quarantined(org: Any, keypair: Any, tmp_path: Path) -> None:
    from modelseal.integrity import sign

    signed = write_model(tmp_path / "signed", seed=1)
    sign(signed, key=keypair.private_key, output=tmp_path / "model.sig")
    pushed = write_model(tmp_path / "pushed", seed=2)  # same names, other bytes
    with org.client(org.token("pub")) as client, pytest.raises(QuarantinedError) as caught:
        client.push(pushed, "acme/m:1.0", signature=tmp_path / "model.sig")
    assert "does not verify" in caught.value.message


def test_malicious_pickle_is_quarantined(org: Any, keypair: Any, tmp_path: Path) -> None:
    model = write_pickle_model(tmp_path / "evil")
    with org.client(org.token("pub")) as client, pytest.raises(QuarantinedError) as caught:
        client.push(model, "acme/evil:1.0", key=keypair.private_key)
    assert "pytorch_model.bin" in caught.value.message
    assert "critical" in caught.value.message
    with org.http(org.token("pub")) as http:
        doc = http.get("/namespaces/acme/models/evil/resolve/1.0").json()
    assert doc["scan_verdict"] == "malicious" and doc["signed_by"] is not None


def test_tampered_blob_in_storage_is_detected_on_pull(
    org: Any, keypair: Any, tmp_path: Path
) -> None:
    doc = _published(org, keypair, tmp_path)
    weights = next(f for f in doc["files"] if f["path"] == "model.safetensors")
    stored = org.app.state.store.local_path(weights["digest"])
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))
    with org.client(org.token("reader")) as client, pytest.raises(IntegrityError, match="digest"):
        client.pull("acme/m:1.0", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if ".pull-" in p.name]


def test_replaced_signature_is_detected_on_pull(
    org: Any, keypair: Any, other_keypair: Any, tmp_path: Path
) -> None:
    from sqlalchemy import select

    from modelseal.integrity import sign
    from modelseal.registry.db.models import Blob, Version, VersionBlob

    doc = _published(org, keypair, tmp_path)
    # An attacker with database access swaps in a signature by their own key.
    sign(tmp_path / "model", key=other_keypair.private_key, output=tmp_path / "evil.sig")
    forged = (tmp_path / "evil.sig").read_bytes()
    digest = hashlib.sha256(forged).hexdigest()
    org.app.state.store.put_bytes(digest, forged)
    with org.session() as session:
        version = session.scalars(select(Version).where(Version.digest == doc["digest"])).one()
        session.add(Blob(digest=digest, size=len(forged)))
        session.add(VersionBlob(version_id=version.id, digest=digest))
        version.signature_digest = digest
        session.commit()
    with (
        org.client(org.token("reader")) as client,
        pytest.raises(VerificationError, match="does not verify with any trusted key"),
    ):
        client.pull("acme/m:1.0", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pinned_key_must_match(org: Any, keypair: Any, other_keypair: Any, tmp_path: Path) -> None:
    _published(org, keypair, tmp_path)
    with org.client(org.token("reader")) as client:
        with pytest.raises(VerificationError):
            client.pull("acme/m:1.0", tmp_path / "out", keys=[other_keypair.public_key])
        client.pull("acme/m:1.0", tmp_path / "ok", keys=[keypair.public_key])


def test_tag_rollback_is_refused(org: Any, keypair: Any, tmp_path: Path) -> None:
    with org.client(org.token("pub")) as client:
        client.push(
            write_model(tmp_path / "v1", seed=1),
            "acme/m:1.0",
            key=keypair.private_key,
            tags=["latest"],
        )
        client.push(
            write_model(tmp_path / "v2", seed=2),
            "acme/m:2.0",
            key=keypair.private_key,
            tags=["latest"],
        )
    home = tmp_path / "reader-home"
    with org.client(org.token("reader"), home=home) as client:
        assert client.pull("acme/m:latest", tmp_path / "a").version["version"] == "2.0"
    with org.http(org.token("pub")) as http:  # the tag is moved back (e.g. by an attacker)
        assert (
            http.put("/namespaces/acme/models/m/tags/latest", json={"version": "1.0"}).status_code
            == 200
        )
    with org.client(org.token("reader"), home=home) as client:
        with pytest.raises(RollbackError, match="older"):
            client.pull("acme/m:latest", tmp_path / "b")
        assert not (tmp_path / "b").exists()
        assert (
            client.pull("acme/m:latest", tmp_path / "c", allow_rollback=True).version["version"]
            == "1.0"
        )
    with org.client(org.token("reader"), home=tmp_path / "fresh-home") as client:
        client.pull("acme/m:latest", tmp_path / "d")  # a new client has seen nothing


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "path",
    [
        "../evil",
        "a/../../evil",
        "/etc/passwd",
        "a//b",
        "./a",
        "a\\b",
        "C:evil",
        "bad\x00name",
        "new\nline",
        "",
        "con",
        "weights/CON.txt",
        "aux.tar.gz",
        "lpt1",
        "model\uff0esafetensors",
        "a\u2024\u2024/b",
        "evil\u202egnp.exe",
        "trailing.",
        "trailing ",
    ],
)
def test_bad_file_paths_are_refused(org: Any, path: str) -> None:
    body = {"version": "1.0", "files": [{"path": path, "digest": "a" * 64, "size": 1}]}
    with org.http(org.token("pub")) as http:
        response = http.post("/namespaces/acme/models/m/uploads", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unicode_normalisation_twins_are_refused(org: Any) -> None:
    twins = ["caf\u00e9.bin", "cafe\u0301.bin"]  # NFC and NFD of one name
    files = [{"path": p, "digest": f"{i}" * 64, "size": 1} for i, p in enumerate(twins)]
    with org.http(org.token("pub")) as http:
        response = http.post(
            "/namespaces/acme/models/m/uploads", json={"version": "1.0", "files": files}
        )
    assert response.status_code == 400 and "NFC/NFD" in response.json()["error"]["message"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("namespace", "model", "version"),
    [
        ("acme", "Bad", "1.0"),
        ("acme", "a..b", "1.0"),
        ("acme", "m", "1..0"),
        ("acme", "m", "-1"),
        ("acme", "m" * 70, "1.0"),
        ("acme", "ünï", "1.0"),
    ],
)
def test_odd_names_are_refused(org: Any, namespace: str, model: str, version: str) -> None:
    body = {"version": version, "files": [{"path": "a", "digest": "a" * 64, "size": 1}]}
    with org.http(org.token("pub")) as http:
        response = http.post(f"/namespaces/{namespace}/models/{model}/uploads", json=body)
    assert response.status_code == 400, response.text
    assert "invalid" in response.json()["error"]["message"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_client_refuses_odd_references_before_sending(org: Any, tmp_path: Path) -> None:
    with org.client(org.token("pub")) as client:
        for ref in ("acme/../x:1", "acme/m:1/../../2", "nonamespace:1", "acme/m@sha256:zz"):
            with pytest.raises(BadRequestError):
                client.push(write_model(tmp_path / "m"), ref)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_symlinks_are_not_pushed(org: Any, tmp_path: Path) -> None:
    model = write_model(tmp_path / "m")
    (tmp_path / "secret").write_text("do not upload")
    (model / "link").symlink_to(tmp_path / "secret")
    with org.client(org.token("pub")) as client, pytest.raises(BadRequestError, match="symlink"):
        client.push(model, "acme/m:1.0")


def test_oversized_uploads_are_refused(make_registry: Any, tmp_path: Path) -> None:
    registry = make_registry(max_file_bytes=1000)
    registry.user("pub")
    token = registry.token("pub")
    model = write_model(tmp_path / "m", size=1000)  # 4 kB of weights
    with registry.client(token) as client, pytest.raises(TooLargeError, match="limit"):
        client.push(model, "pub/m:1.0")
    small = b"0123456789"
    digest = hashlib.sha256(small).hexdigest()
    body = {"version": "1.0", "files": [{"path": "f", "digest": digest, "size": len(small)}]}
    with registry.http(token) as http:
        upload = http.post("/namespaces/pub/models/m/uploads", json=body).json()
        sent = http.patch(
            f"/uploads/{upload['id']}/blobs/{digest}", params={"offset": 0}, content=small * 3
        )
        assert sent.status_code == 413
        status = http.get(f"/uploads/{upload['id']}").json()
        assert status["blobs"][0]["offset"] == 0


def test_wrong_bytes_for_a_digest_are_refused(registry: Any) -> None:
    registry.user("pub")
    token = registry.token("pub")
    claimed = hashlib.sha256(b"good bytes").hexdigest()
    body = {"version": "1.0", "files": [{"path": "f", "digest": claimed, "size": 9}]}
    with registry.http(token) as http:
        upload = http.post("/namespaces/pub/models/m/uploads", json=body).json()
        sent = http.patch(
            f"/uploads/{upload['id']}/blobs/{claimed}", params={"offset": 0}, content=b"bad bytes"
        )
        assert sent.status_code == 400 and "SHA-256" in sent.json()["error"]["message"]
        assert not registry.app.state.store.exists(claimed)
        commit = http.post(f"/uploads/{upload['id']}/commit", json={})
        assert commit.status_code == 409 and "not uploaded" in commit.json()["error"]["message"]
        assert http.get("/namespaces/pub/models/m/resolve/1.0").status_code == 404


def test_failed_authentication_is_rate_limited(make_registry: Any) -> None:
    registry = make_registry(auth_failures_allowed=3)
    registry.user("pub")
    good = registry.token("pub")
    with registry.http("msk_not-a-real-token") as http:
        codes = [http.get("/whoami").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    with registry.http(good) as http:  # the same address is now limited, even with a good token
        response = http.get("/whoami")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert len(_events(registry, "unauthenticated")) == 3


def test_tokens_created_over_the_api_cannot_widen_scope(registry: Any) -> None:
    registry.user("pub")
    manager = registry.token("pub", actions=("read", "admin"))
    with registry.http(manager) as http:
        wider = http.post("/tokens", json={"actions": ["read", "push"]})
        assert wider.status_code == 403
        same = http.post("/tokens", json={"actions": ["read"], "expires_in_days": 1})
        assert same.status_code == 201 and same.json()["token"].startswith("msk_")
    with registry.http(same.json()["token"]) as http:
        assert http.get("/whoami").json()["actions"] == ["read"]
    with registry.http(manager) as http:
        assert http.delete(f"/tokens/{same.json()['id']}").status_code == 204
    with registry.http(same.json()["token"]) as http:
        assert http.get("/whoami").status_code == 401
