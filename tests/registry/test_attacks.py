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


# -- hole 1: the publish gate ------------------------------------------------------------------


def _raw_push(http: Any, where: str, blobs: dict[str, bytes], version: str = "1.0") -> Any:
    """Upload ``{path: bytes}`` over the raw API and commit (no signature)."""
    files = [
        {"path": p, "digest": hashlib.sha256(b).hexdigest(), "size": len(b)}
        for p, b in blobs.items()
    ]
    upload = _upload(http, where, files, version).json()
    by_digest = {f["digest"]: blobs[f["path"]] for f in files}
    for digest in upload["missing"]:
        http.patch(
            f"/uploads/{upload['id']}/blobs/{digest}",
            params={"offset": 0},
            content=by_digest[digest],
        ).raise_for_status()
    return upload["id"]


def test_one_blob_under_many_paths_is_scanned_once(
    registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelseal.scan

    scanned: list[int] = []
    real_scan = modelseal.scan.scan

    def counting_scan(paths: Any, *args: Any, **kwargs: Any) -> Any:
        scanned.append(sum(1 for p in paths for f in Path(p).rglob("*") if f.is_file()))
        return real_scan(paths, *args, **kwargs)

    monkeypatch.setattr(modelseal.scan, "scan", counting_scan)
    registry.user("pub")
    payload = write_pickle_model(registry.tmp / "evil") / "pytorch_model.bin"
    blobs = {f"copies/{i:03}.bin": payload.read_bytes() for i in range(50)}
    with registry.http(registry.token("pub")) as http:
        upload_id = _raw_push(http, "pub/many", blobs)
        version = http.post(f"/uploads/{upload_id}/commit", json={}).json()
        assert version["state"] == "quarantined"
        report = http.get("/namespaces/pub/models/many/versions/1.0/scan").json()
    assert scanned == [1]  # one distinct file scanned, not fifty
    flagged = {r["path"] for r in report["results"] if r["verdict"] == "malicious"}
    assert flagged == set(blobs)  # and every path carries the finding
    assert report["summary"]["files"] == 50


def test_a_commit_over_the_scan_budget_is_refused_before_scanning(
    make_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelseal.scan

    registry = make_registry(max_scan_bytes_per_commit=1000)
    monkeypatch.setattr(modelseal.scan, "scan", lambda *a, **k: pytest.fail("scanned"))
    registry.user("pub")
    blobs = {f"f{i}.bin": bytes([i]) * 600 for i in range(2)}
    with registry.http(registry.token("pub")) as http:
        upload_id = _raw_push(http, "pub/big", blobs)
        refused = http.post(f"/uploads/{upload_id}/commit", json={})
        assert refused.status_code == 413
        assert "distinct files to scan" in refused.json()["error"]["message"]
        assert http.get(f"/uploads/{upload_id}").json()["state"] == "open"
    assert [e for e in _events(registry, "too_large") if "to scan" in e.detail]


def test_the_gate_holds_no_database_connection_and_same_version_commits_get_409(
    registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import modelseal.registry.gate as gate

    started = threading.Barrier(3, timeout=60)
    checked_out: list[int] = []
    real_gate = gate.run_gate

    def slow_gate(*args: Any, **kwargs: Any) -> Any:
        started.wait()  # both commits are in the gate now
        started.wait()  # the test has looked at the pool
        return real_gate(*args, **kwargs)

    monkeypatch.setattr(gate, "run_gate", slow_gate)
    registry.user("pub")
    token = registry.token("pub")
    with registry.http(token) as http:
        uploads = [
            _raw_push(http, "pub/race", {"w.bin": bytes([i]) * 64}, version="1.0") for i in range(2)
        ]

    def commit(upload_id: str) -> int:
        with registry.http(token) as http:
            return int(http.post(f"/uploads/{upload_id}/commit", json={}).status_code)

    with ThreadPoolExecutor(2) as pool:
        results = pool.map(commit, uploads)
        started.wait()
        checked_out.append(registry.app.state.engine.pool.checkedout())
        started.wait()
        codes = sorted(results)
    assert checked_out == [0]  # two gates running, no connection held by either request
    assert codes == [201, 409]  # not a 500 from the unique constraint
    assert [e for e in _events(registry, "conflict") if "exists already" in e.detail]


def test_the_gate_queue_bounds_work_per_user_and_in_total() -> None:
    import asyncio
    import threading

    from modelseal.registry.errors import RateLimitedError, UnavailableError
    from modelseal.registry.services.gate_queue import GateQueue

    queue = GateQueue(workers=2, capacity=3, per_user=1, user_bytes_per_hour=100)
    running: list[int] = []
    most = [0]
    lock = threading.Lock()
    release = threading.Event()

    def job() -> str:
        with lock:
            running.append(1)
            most[0] = max(most[0], len(running))
        release.wait(30)
        with lock:
            running.pop()
        return "done"

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(queue.run(1, 10, job))
        second = asyncio.ensure_future(queue.run(1, 10, job))  # waits: one run per user
        third = asyncio.ensure_future(queue.run(2, 10, job))
        await asyncio.sleep(0.2)
        errors = []
        for user, size in ((3, 10), (4, 1000)):
            try:
                await queue.run(user, size, job)
            except (UnavailableError, RateLimitedError) as exc:
                errors.append(type(exc).__name__)
        release.set()
        return [*await asyncio.gather(first, second, third), *errors]

    outcome = asyncio.run(scenario())
    assert outcome == ["done", "done", "done", "UnavailableError", "RateLimitedError"]
    assert most[0] == 2  # users 1 and 2 ran at once, user 1's second commit waited
    assert queue.admitted == 0
    queue.shutdown()


def test_a_version_built_on_a_quarantined_parent_is_quarantined(
    org: Any, keypair: Any, tmp_path: Path
) -> None:
    with org.client(org.token("pub")) as client:
        with pytest.raises(QuarantinedError):
            client.push(write_pickle_model(tmp_path / "evil"), "acme/base:1.0")
        with pytest.raises(
            QuarantinedError, match=r"declared parent acme/base:1\.0 is quarantined"
        ):
            client.push(
                write_model(tmp_path / "child"),
                "acme/child:1.0",
                key=keypair.private_key,
                parent="acme/base:1.0",
            )


# -- low: signature replay, anonymous reads, headers, /docs -------------------------------------


def _malleate(bundle: bytes) -> bytes:
    """The same bundle with its ECDSA signature's s replaced by n - s (still valid)."""
    import base64
    import json

    from cryptography.hazmat.primitives.asymmetric.utils import (
        decode_dss_signature,
        encode_dss_signature,
    )

    p256_order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    doc = json.loads(bundle)
    sig = doc["dsseEnvelope"]["signatures"][0]
    r, s = decode_dss_signature(base64.b64decode(sig["sig"]))
    sig["sig"] = base64.b64encode(encode_dss_signature(r, p256_order - s)).decode()
    return json.dumps(doc, indent=2).encode()


def test_a_signature_bundle_cannot_publish_a_second_version(
    org: Any, keypair: Any, tmp_path: Path
) -> None:
    import base64

    model = write_model(tmp_path / "m")
    with org.client(org.token("pub")) as client:
        first = client.push(model, "acme/m:1.0", key=keypair.private_key).version
    files = _files(model)
    with org.http(org.token("pub")) as http:
        bundle = http.get(f"/namespaces/acme/blobs/{first['signature_digest']}").content
        for name, replayed in (("2.0", bundle), ("3.0", _malleate(bundle))):
            upload = _upload(http, "acme/m", files, version=name).json()
            signature = base64.b64encode(replayed).decode()
            refused = http.post(f"/uploads/{upload['id']}/commit", json={"signature": signature})
            assert refused.status_code == 409, name
            assert "already used to publish another version (acme/m:1.0)" in refused.text
            assert http.get(f"/namespaces/acme/models/m/resolve/{name}").status_code == 404
    assert len([e for e in _events(org, "conflict") if "signature bundle" in e.detail]) == 2
    with org.client(org.token("pub")) as client:  # signing again for the new version works
        assert client.push(model, "acme/m:2.0", key=keypair.private_key).version["state"] == (
            "published"
        )


def test_anonymous_reads_can_be_switched_off(
    make_registry: Any, keypair: Any, tmp_path: Path
) -> None:
    registry = make_registry(allow_anonymous_read=False)
    registry.user("pub")
    registry.namespace("open", public=True)
    from modelseal.registry import identity

    with registry.session() as session:
        identity.set_role(
            session, identity.get_namespace(session, "open"), identity.get_user(session, "pub"),
            "publisher",
        )  # fmt: skip
    registry.trust("open", keypair.public_key)
    with registry.client(registry.token("pub")) as client:
        client.push(write_model(tmp_path / "m"), "open/m:1.0", key=keypair.private_key)
    with registry.http() as http:
        refused = http.get("/namespaces/open/models/m/resolve/1.0")
        assert refused.status_code == 401
    with registry.http(registry.token("pub")) as http:
        assert http.get("/namespaces/open/models/m/resolve/1.0").status_code == 200
    assert _events(registry, "anonymous")


def test_api_and_docs_send_security_headers_and_docs_work_offline(registry: Any) -> None:
    import re

    import httpx

    with httpx.Client(base_url=registry.url, timeout=30) as http:
        for path in ("/docs", "/v1/whoami", "/openapi.json", "/health"):
            response = http.get(path)
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers["x-frame-options"] == "DENY", path
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        page = http.get("/docs").text
        sources = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert sources and all(s.startswith("/") for s in sources)  # nothing from a CDN
        for source in sources:
            assert http.get(source).status_code == 200, source
        assert "SwaggerUIBundle" in http.get("/docs/assets/swagger-ui-bundle.js").text[:200_000]
