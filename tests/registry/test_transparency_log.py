"""The registry's transparency log: what is appended, the API, and what clients detect.

Runs on SQLite and PostgreSQL (the ``registry`` fixture is parametrised).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from modelseal.transparency.entries import EntryKind, LogEntry
from modelseal.transparency.errors import LogError, LogVerificationError, SplitViewError
from modelseal.transparency.merkle import leaf_hash, verify_consistency, verify_inclusion
from modelseal.transparency.sth import SignedTreeHead, verify_tree_head
from tests.samples.registry import write_model, write_pickle_model


def _entries(registry: Any, token: str) -> list[dict[str, Any]]:
    with registry.http(token) as http:
        page = http.get("/log/entries", params={"limit": 1000})
        assert page.status_code == 200, page.text
    return [json.loads(item["entry"]) for item in page.json()["items"]]


def _public_key(registry: Any) -> Any:
    from cryptography.hazmat.primitives import serialization

    with registry.http() as http:
        served = http.get("/log/key").json()
    return serialization.load_pem_public_key(served["public_key_pem"].encode())


def _rewrite_log(registry: Any, change: Any) -> None:
    """Rewrite the server's history in its database, recomputing every hash (an insider
    with database access), and drop the tree heads it had signed."""
    from sqlalchemy import delete, select, update

    from modelseal.registry.db.models import LogEntryRow, LogNodeRow, LogState, LogTreeHeadRow
    from modelseal.registry.transparency_store import open_log

    with registry.session() as session:
        datas = [bytes(d) for d in session.scalars(select(LogEntryRow.data).order_by("idx"))]
        entries = change([LogEntry.from_bytes(d) for d in datas])
        for table in (LogEntryRow, LogNodeRow, LogTreeHeadRow):
            session.execute(delete(table))
        session.execute(update(LogState).values(size=0))
        log = open_log(session)
        for entry in entries:
            log.append(entry)
        session.commit()
    registry.app.state.log._cache.sth = None


@pytest.fixture
def alice(registry: Any, keypair: Any) -> str:
    registry.user("alice")
    registry.trust("alice", keypair.public_key)
    return str(registry.token("alice"))


def test_every_trust_change_is_appended(
    registry: Any, alice: str, keypair: Any, tmp_path: Path
) -> None:
    model = write_model(tmp_path / "m")
    with registry.client(alice) as client:
        v1 = client.push(model, "alice/tiny:1.0", key=keypair.private_key, tags=["latest"])
        with pytest.raises(Exception, match="QUARANTINED"):
            client.push(write_pickle_model(tmp_path / "bad"), "alice/bad:1.0")
        v2 = client.push(
            write_model(tmp_path / "m2", seed=2), "alice/tiny:1.1", key=keypair.private_key
        )
    fingerprint = v1.version["signed_by"]
    with registry.http(alice) as http:
        assert http.put(
            "/namespaces/alice/models/tiny/tags/prod", json={"version": "1.0"}
        ).is_success
        assert http.delete(f"/namespaces/alice/keys/{fingerprint}").status_code == 204
        spare = http.post("/tokens", json={"actions": ["read"]}).json()
        assert http.delete(f"/tokens/{spare['id']}").status_code == 204
    entries = _entries(registry, alice)
    assert [e["kind"] for e in entries] == [
        "key-trust",
        "publish",
        "tag-move",
        "quarantine",
        "publish",
        "tag-move",
        "key-revoke",
        "token-revoke",
    ]
    key_trust, publish, tag, quarantine, publish2, prod, revoke, token = entries
    assert key_trust["fingerprint"] == fingerprint == revoke["fingerprint"]
    assert (publish["namespace"], publish["model"], publish["version"]) == ("alice", "tiny", "1.0")
    assert publish["digest"] == v1.version["digest"] and publish["signer"] == fingerprint
    assert publish2["digest"] == v2.version["digest"]
    assert (tag["tag"], tag["version"], prod["tag"], prod["version"]) == (
        "latest",
        "1.0",
        "prod",
        "1.0",
    )
    assert quarantine["model"] == "bad" and "reasons" not in quarantine
    assert token == {**token, "user": "alice", "token": spare["id"]}
    # The push itself checked that its publish entry was logged.
    assert "publish entry 1 is in the transparency log" in v1.logged
    # Revoking twice or re-trusting an active key changes nothing, so logs nothing.
    with registry.http(alice) as http:
        assert http.delete(f"/tokens/{spare['id']}").status_code == 204
    registry.trust("alice", keypair.public_key)
    assert len(_entries(registry, alice)) == 9  # the re-trust of the revoked key
    assert _entries(registry, alice)[-1]["kind"] == "key-trust"


def test_a_change_and_its_entry_commit_together(registry: Any) -> None:
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from modelseal.registry.db.models import User
    from modelseal.registry.transparency_store import log_event, open_log

    registry.user("bob")
    with registry.session() as session:
        before = open_log(session).size
        log_event(session, EntryKind.TOKEN_REVOKE, user="bob", token=1)
        session.add(User(name="bob"))  # violates the unique name: the commit fails
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        assert open_log(session).size == before
        log_event(session, EntryKind.TOKEN_REVOKE, user="bob", token=2)
        session.rollback()  # dropped with the transaction
        session.commit()
        assert open_log(session).size == before
    with Session(registry.app.state.engine) as plain, pytest.raises(LogError, match="session"):
        log_event(plain, EntryKind.TOKEN_REVOKE, user="bob", token=3)


def test_tree_head_and_proofs_over_the_api(
    registry: Any, alice: str, keypair: Any, tmp_path: Path
) -> None:
    key = _public_key(registry)
    with registry.client(alice) as client:
        for i in range(3):
            client.push(
                write_model(tmp_path / f"m{i}", seed=i), f"alice/m:{i}", key=keypair.private_key
            )
    entries = [e.encode() for e in _raw_entries(registry, alice)]
    assert len(entries) == 4
    with registry.http() as http:  # anonymous: hashes and signatures are public
        sth = SignedTreeHead.from_json(http.get("/log/tree-head").json())
        verify_tree_head(sth, key)
        assert sth.tree_size == 4
        assert http.get("/log/tree-head").json() == sth.to_json()  # cached while the log is still
        for index, data in enumerate(entries):
            answer = http.get(
                "/log/proof/inclusion", params={"index": index, "tree_size": 4}
            ).json()
            path = [bytes.fromhex(h) for h in answer["audit_path"]]
            verify_inclusion(leaf_hash(data), index, 4, path, sth.root_hash)
        heads = [SignedTreeHead.from_json(h) for h in http.get("/log/tree-heads").json()["items"]]
        assert heads[-1] == sth and all(h.tree_size <= 4 for h in heads)
        old = heads[0]
        proof = http.get("/log/proof/consistency", params={"first": old.tree_size, "second": 4})
        verify_consistency(
            old.tree_size,
            4,
            old.root_hash,
            sth.root_hash,
            [bytes.fromhex(h) for h in proof.json()["proof"]],
        )
        for bad in ({"index": 4, "tree_size": 4}, {"index": 0, "tree_size": 9}):
            answer = http.get("/log/proof/inclusion", params=bad)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_request"
        assert (
            http.get("/log/proof/consistency", params={"first": 3, "second": 2}).status_code == 400
        )
        assert http.get("/log/entries").status_code == 401
        assert http.get("/log/versions/alice/m/0").status_code in (401, 404)  # private namespace
    with registry.http(alice) as http:
        found = http.get("/log/versions/alice/m/1").json()
        assert found["index"] == 2 and json.loads(found["entry"])["version"] == "1"
        assert http.get("/log/versions/alice/m/9").status_code == 404
        one = http.get("/log/entries/3", params={"tree_size": 4}).json()
        verify_inclusion(
            leaf_hash(one["entry"].encode()),
            3,
            4,
            [bytes.fromhex(h) for h in one["audit_path"]],
            sth.root_hash,
        )
        page = http.get("/log/entries", params={"start": 1, "limit": 2}).json()
        assert [i["index"] for i in page["items"]] == [1, 2] and page["next"] == 3


def _raw_entries(registry: Any, token: str) -> list[str]:
    with registry.http(token) as http:
        return [i["entry"] for i in http.get("/log/entries").json()["items"]]


def test_the_log_key_is_created_once_or_given(make_registry: Any, tmp_path: Path) -> None:
    from modelseal.integrity import generate_keypair
    from modelseal.integrity.signing.keys import key_hint, load_public_key

    first = make_registry(data_dir=tmp_path / "d")
    key_file = tmp_path / "d" / "log-key.priv.pem"
    assert key_file.exists()
    with first.http() as http:
        served = http.get("/log/key").json()
    assert served["key_id"] == key_hint(load_public_key(tmp_path / "d" / "log-key.pub.pem"))
    again = make_registry(data_dir=tmp_path / "d")  # a restart keeps the key
    with again.http() as http:
        assert http.get("/log/key").json()["key_id"] == served["key_id"]
    pair = generate_keypair(tmp_path / "ops-log-key")
    given = make_registry(data_dir=tmp_path / "e", log_key=pair.private_key)
    with given.http() as http:
        assert http.get("/log/key").json()["key_id"] == key_hint(load_public_key(pair.public_key))
        sth = SignedTreeHead.from_json(http.get("/log/tree-head").json())
    verify_tree_head(sth, load_public_key(pair.public_key))
    assert not (tmp_path / "e" / "log-key.priv.pem").exists()


def test_pull_checks_inclusion_and_keeps_the_tree_head(
    registry: Any, alice: str, keypair: Any, tmp_path: Path
) -> None:
    with registry.client(alice) as client:
        client.push(write_model(tmp_path / "m"), "alice/tiny:1.0", key=keypair.private_key)
    home = tmp_path / "reader-home"
    with registry.client(alice, home=home) as reader:
        result = reader.pull("alice/tiny:1.0", tmp_path / "out")
        assert any("publish entry 1 is in the transparency log" in c for c in result.checks)
        state = json.loads(reader.state.state_path.read_text())[registry.url]
        assert state["transparency-log"]["tree_head"]["tree_size"] == 2
        assert "BEGIN PUBLIC KEY" in state["transparency-log-key"]


def test_a_version_swapped_in_the_database_fails_the_log_check(
    registry: Any, alice: str, keypair: Any, tmp_path: Path
) -> None:
    from sqlalchemy import select

    from modelseal.registry.db.models import Version
    from modelseal.registry.manifest import FileEntry, version_digest

    with registry.client(alice) as client:
        client.push(write_model(tmp_path / "m"), "alice/tiny:1.0", key=keypair.private_key)
        other = client.push(
            write_model(tmp_path / "m2", seed=5), "alice/tiny:2.0", key=keypair.private_key
        )
    with registry.session() as session:
        row = session.scalars(select(Version).where(Version.name == "1.0")).one()
        row.files = list(other.version["files"])
        row.digest = version_digest([FileEntry.from_dict(f) for f in row.files])
        session.commit()
    with (
        registry.client(alice) as reader,
        pytest.raises(LogVerificationError, match="not the publication"),
    ):
        reader.pull("alice/tiny:1.0", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_rewritten_history_is_detected_by_the_next_pull_and_by_log_verify(
    registry: Any, alice: str, keypair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelseal.cli import main
    from modelseal.registry.client import ClientState

    home = tmp_path / "home"
    ClientState(home).save_login(registry.url, alice, "alice")
    monkeypatch.setenv("MODELSEAL_HOME", str(home))
    with registry.client(alice, home=home) as client:
        client.push(write_model(tmp_path / "m"), "alice/tiny:1.0", key=keypair.private_key)
        client.pull("alice/tiny:1.0", tmp_path / "first")
        assert client.audit_log().ok
    with pytest.raises(SystemExit) as ok:
        main(["log", "verify", "--registry", registry.url])
    assert ok.value.code == 0

    # An insider rewrites the history (the version's publish entry gets another digest)...
    def forge(entries: list[LogEntry]) -> list[LogEntry]:
        publish = entries[1]
        entries[1] = LogEntry(publish.kind, {**publish.fields, "digest": "0" * 64}, publish.time)
        return entries

    _rewrite_log(registry, forge)
    # ... and the log goes on growing: new heads are signed over the forged history.
    with registry.client(alice, home=tmp_path / "fresh") as other:
        other.push(write_model(tmp_path / "m2", seed=3), "alice/tiny:2.0", key=keypair.private_key)
    with registry.client(alice, home=home) as client:
        with pytest.raises(SplitViewError, match="does not extend"):
            client.pull("alice/tiny:2.0", tmp_path / "second")
        assert not (tmp_path / "second").exists()
        report = client.audit_log()
    assert not report.ok
    assert any("does not extend" in p.message for p in report.problems)
    with pytest.raises(SystemExit) as bad:
        main(["log", "verify", "--registry", registry.url])
    assert bad.value.code == 1


def test_a_same_size_fork_is_detected(
    registry: Any, alice: str, keypair: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with registry.client(alice, home=home) as client:
        client.push(write_model(tmp_path / "m"), "alice/tiny:1.0", key=keypair.private_key)
        client.log_tree_head()

    def drop_key_trust(entries: list[LogEntry]) -> list[LogEntry]:
        first = entries[0]
        return [LogEntry(first.kind, {**first.fields, "name": "forged"}, first.time), *entries[1:]]

    _rewrite_log(registry, drop_key_trust)
    with (
        registry.client(alice, home=home) as client,
        pytest.raises(SplitViewError, match="two different logs"),
    ):
        client.log_tree_head()


def test_export_then_offline_verify(
    registry: Any, alice: str, keypair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelseal.cli import main
    from modelseal.registry.client import ClientState

    home = tmp_path / "home"
    ClientState(home).save_login(registry.url, alice, "alice")
    monkeypatch.setenv("MODELSEAL_HOME", str(home))
    with registry.client(alice, home=home) as client:
        for i in range(2):
            client.push(
                write_model(tmp_path / f"m{i}", seed=i), f"alice/m:{i}", key=keypair.private_key
            )
    export = tmp_path / "log.json"
    with pytest.raises(SystemExit) as done:
        main(["log", "export", "--registry", registry.url, "-o", str(export)])
    assert done.value.code == 0
    document = json.loads(export.read_text())
    assert len(document["entries"]) == 3 and document["tree_heads"]
    pem = tmp_path / "log.pub.pem"
    pem.write_text(
        json.loads((home / "registry-state.json").read_text())[registry.url]["transparency-log-key"]
    )
    with pytest.raises(SystemExit) as ok:
        main(["log", "verify", str(export), "--key", str(pem)])
    assert ok.value.code == 0
    tampered = dict(
        document, entries=[document["entries"][0], document["entries"][2], document["entries"][1]]
    )
    export.write_text(json.dumps(tampered))
    with pytest.raises(SystemExit) as bad:
        main(["log", "verify", str(export), "--key", str(pem)])
    assert bad.value.code == 1
    with pytest.raises(SystemExit) as usage:
        main(["log", "verify"])
    assert usage.value.code == 2


def _insert(conn: Any, table: str, **values: Any) -> None:
    import sqlalchemy as sa

    names = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({params})"), values)


def test_migration_logs_what_the_registry_held_before(db_url: str) -> None:

    from modelseal.registry.db.session import create_engine_for, migrate
    from modelseal.registry.transparency_store import open_log
    from modelseal.transparency.log import TransparencyLog

    migrate(db_url, "0001")
    engine = create_engine_for(db_url)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    with engine.begin() as conn:
        _insert(conn, "namespaces", id=1, name="acme", public=False, scan_threshold="low",
                require_signature=True, created_at=now)  # fmt: skip
        _insert(conn, "models", id=1, namespace_id=1, name="bert", description="", created_at=now)
        for vid, name, state in ((1, "1.0", "published"), (2, "1.1", "quarantined")):
            _insert(conn, "versions", id=vid, model_id=1, name=name, digest=str(vid) * 64,
                    state=state, reasons="[]", files="[]", total_size=0, scan_verdict="clean",
                    created_at=now)  # fmt: skip
        _insert(conn, "tags", id=1, model_id=1, name="latest", version_id=1, updated_at=now)
    migrate(db_url)
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        log = open_log(session)
        entries = [LogEntry.from_bytes(e) for e in log.iter_entries()]
        root = log.root()
    engine.dispose()
    assert [(e.kind, e.fields.get("version")) for e in entries] == [
        (EntryKind.PUBLISH, "1.0"),
        (EntryKind.QUARANTINE, "1.1"),
        (EntryKind.TAG_MOVE, "1.0"),
    ]
    assert all(e.fields["backfill"] is True for e in entries)
    assert entries[0].fields["digest"] == "1" * 64
    assert TransparencyLog.in_memory([e.to_bytes() for e in entries]).root() == root
