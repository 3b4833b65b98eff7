"""`modelseal.registry.fsck`: each kind of damage is found, a healthy registry is clean."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from modelseal.registry.fsck import (
    SEVERITIES,
    FsckReport,
    ProblemKind,
    Severity,
    fsck,
    fsck_registry,
    list_store,
)
from tests.samples.registry import write_model


@pytest.fixture
def filled(registry: Any, keypair: Any, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """A registry with two signed versions sharing their weights, and a tag."""
    registry.user("alice", admin=True)
    registry.trust("alice", keypair.public_key)
    token = registry.token("alice")
    model = write_model(tmp_path / "model", size=2048)
    with registry.client(token) as client:
        first = client.push(model, "alice/m:1.0", key=keypair.private_key).version
        (model / "config.json").write_text('{"model_type": "toy", "v": 2}')
        second = client.push(model, "alice/m:1.1", key=keypair.private_key, tags=["latest"])
    return registry, {"1.0": first, "1.1": second.version}


def run_fsck(registry: Any, **options: Any) -> FsckReport:
    with registry.session() as session:
        return fsck(session, registry.app.state.store, **options)


def kinds(report: FsckReport) -> set[ProblemKind]:
    return {p.kind for p in report.problems}


def weights_digest(doc: dict[str, Any]) -> str:
    return next(f["digest"] for f in doc["files"] if f["path"] == "model.safetensors")


def test_every_kind_has_a_severity() -> None:
    assert set(SEVERITIES) == set(ProblemKind)
    assert SEVERITIES[ProblemKind.CORRUPT_BLOB] is Severity.ERROR
    assert SEVERITIES[ProblemKind.ORPHAN_BLOB] is Severity.WARNING


def test_healthy_registry_is_clean_and_every_blob_is_hashed(
    filled: tuple[Any, dict[str, Any]],
) -> None:
    registry, _ = filled
    seen: list[tuple[int, int]] = []
    report = run_fsck(registry, progress=lambda done, total: seen.append((done, total)))
    assert report.clean and report.ok, report.problems
    stats = report.stats
    assert stats.versions == 2 and stats.tags == 1
    # weights (shared), 2 configs, 2 signatures, 2 SBOMs
    assert stats.blob_rows == stats.stored_objects == stats.blobs_hashed == 7
    assert seen[-1][0] == seen[-1][1] == stats.bytes_hashed > 2048 * 4


def test_flipped_byte_is_a_corrupt_blob(filled: tuple[Any, dict[str, Any]]) -> None:
    registry, docs = filled
    digest = weights_digest(docs["1.0"])
    path = registry.app.state.store.local_path(digest)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = run_fsck(registry)
    assert not report.ok
    [problem] = report.problems
    assert problem.kind is ProblemKind.CORRUPT_BLOB and problem.subject == digest
    assert "alice/m:1.0" in problem.message and "alice/m:1.1" in problem.message
    # --quick does not hash, so a same-size flip goes unseen there (documented)
    assert run_fsck(registry, verify_bytes=False).clean


def test_truncated_and_missing_blobs(filled: tuple[Any, dict[str, Any]]) -> None:
    registry, docs = filled
    store = registry.app.state.store
    weights = weights_digest(docs["1.0"])
    os.chmod(store.local_path(weights), 0o644)
    with open(store.local_path(weights), "r+b") as handle:
        handle.truncate(10)
    store.delete(docs["1.1"]["sbom_digest"])
    report = run_fsck(registry, verify_bytes=False)
    found = {(p.kind, p.subject) for p in report.problems}
    assert found == {
        (ProblemKind.CORRUPT_BLOB, weights),
        (ProblemKind.MISSING_BLOB, docs["1.1"]["sbom_digest"]),
    }


def test_deleted_rows_are_reported(filled: tuple[Any, dict[str, Any]]) -> None:
    from sqlalchemy import delete

    from modelseal.registry.db.models import Blob, VersionBlob

    registry, docs = filled
    config = next(f["digest"] for f in docs["1.0"]["files"] if f["path"] == "config.json")
    with registry.session() as session:
        session.execute(delete(Blob).where(Blob.digest == config))
        session.execute(
            delete(VersionBlob).where(VersionBlob.digest == docs["1.1"]["signature_digest"])
        )
        session.commit()
    report = run_fsck(registry)
    found = {(p.kind, p.subject) for p in report.problems}
    assert (ProblemKind.MISSING_BLOB_ROW, config) in found
    assert (ProblemKind.MISSING_VERSION_BLOB, "alice/m:1.1") in found
    # the config's bytes now have no row: an orphan (a warning)
    assert (ProblemKind.ORPHAN_BLOB, config) in found
    assert not report.ok


def test_tampered_file_list_breaks_the_version_digest(filled: tuple[Any, dict[str, Any]]) -> None:
    from sqlalchemy import update

    from modelseal.registry.db.models import Version

    registry, docs = filled
    files = [dict(f) for f in docs["1.0"]["files"]]
    files[0]["size"] += 1
    with registry.session() as session:
        session.execute(update(Version).where(Version.name == "1.0").values(files=files))
        session.commit()
    report = run_fsck(registry)
    assert [(p.kind, p.subject) for p in report.errors] == [
        (ProblemKind.VERSION_DIGEST, "alice/m:1.0")
    ]


def test_garbage_is_a_warning_not_damage(
    filled: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    import datetime as dt

    from sqlalchemy import update

    from modelseal.registry.db.models import Blob, Upload

    registry, _ = filled
    store = registry.app.state.store
    stray = b"left by an interrupted upload"
    store.put_bytes(hashlib.sha256(stray).hexdigest(), stray)
    unreferenced = b"a failed upload's blob"
    digest = hashlib.sha256(unreferenced).hexdigest()
    store.put_bytes(digest, unreferenced)
    with registry.session() as session:
        session.add(Blob(digest=digest, size=len(unreferenced)))
        session.commit()
    token = registry.token("alice")
    with registry.http(token) as http:
        files = [{"path": "a.bin", "digest": "ab" * 32, "size": 3}]
        upload = http.post(
            "/namespaces/alice/models/x/uploads", json={"version": "1", "files": files}
        ).json()
    with registry.session() as session:
        past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        session.execute(update(Upload).where(Upload.id == upload["id"]).values(expires_at=past))
        session.commit()
    leftover = registry.settings.staging_dir / "gate-leftover"
    leftover.mkdir(parents=True)
    (registry.settings.staging_dir / "gate-in-flight").mkdir()  # recent: not reported
    os.utime(leftover, (time.time() - 3600, time.time() - 3600))
    report = run_fsck(registry, staging_dir=registry.settings.staging_dir)
    assert report.ok and not report.clean
    assert kinds(report) == {
        ProblemKind.ORPHAN_BLOB,
        ProblemKind.UNREFERENCED_BLOB,
        ProblemKind.ABANDONED_UPLOAD,
        ProblemKind.STALE_STAGING,
    }
    assert report.stats.open_uploads == 1
    assert [p.subject for p in report.warnings if p.kind is ProblemKind.STALE_STAGING] == [
        str(leftover)
    ]


def test_fsck_registry_refuses_an_empty_database(tmp_path: Path) -> None:
    from modelseal.errors import ConfigError
    from modelseal.registry.settings import RegistrySettings

    with pytest.raises(ConfigError, match="no registry database"):
        fsck_registry(RegistrySettings(data_dir=tmp_path))
    assert not (tmp_path / "registry.db").exists(), "fsck creates nothing"
    (tmp_path / "registry.db").touch()  # an empty SQLite database
    with pytest.raises(ConfigError, match="holds no registry"):
        fsck_registry(RegistrySettings(data_dir=tmp_path))


def test_list_store_skips_temporary_files(tmp_path: Path) -> None:
    from modelseal.registry.storage.local import LocalBlobStore

    store = LocalBlobStore(tmp_path)
    digest = hashlib.sha256(b"x").hexdigest()
    store.put_bytes(digest, b"x")
    (tmp_path / "sha256" / digest[:2] / f".{digest}.123.tmp").write_bytes(b"half")
    assert list(list_store(store)) == [(digest, 1)]


def test_registry_on_s3_is_listed_and_checked(
    make_registry: Any, moto_endpoint: str, s3_env: None, keypair: Any, tmp_path: Path
) -> None:
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, config=Config(signature_version="s3v4"))
    s3.create_bucket(Bucket="fsck")
    registry = make_registry(blobs="s3://fsck/reg", s3_endpoint_url=moto_endpoint)
    registry.user("alice", admin=True)
    registry.trust("alice", keypair.public_key)
    with registry.client(registry.token("alice")) as client:
        doc = client.push(
            write_model(tmp_path / "m"), "alice/m:1.0", key=keypair.private_key
        ).version
    s3.put_object(Bucket="fsck", Key="reg/sha256/not-a-digest.tmp", Body=b"?")
    report = fsck_registry(registry.settings)
    assert report.clean and report.stats.stored_objects == report.stats.blobs_hashed == 4
    weights = weights_digest(doc)
    size = s3.head_object(Bucket="fsck", Key=f"reg/sha256/{weights}")["ContentLength"]
    s3.put_object(Bucket="fsck", Key=f"reg/sha256/{weights}", Body=b"X" * size)
    report = fsck_registry(registry.settings)
    assert [(p.kind, p.subject) for p in report.problems] == [(ProblemKind.CORRUPT_BLOB, weights)]


def test_log_is_checked_against_versions_and_tags(filled: tuple[Any, dict[str, Any]]) -> None:
    registry, _ = filled
    report = run_fsck(registry)
    # key trust, two publishes, one tag move
    assert report.clean and report.stats.log_entries == 4


def test_rewritten_log_entry_breaks_the_signed_root(filled: tuple[Any, dict[str, Any]]) -> None:
    from sqlalchemy import select, update

    from modelseal.registry.db.models import LogEntryRow
    from modelseal.transparency.entries import LogEntry
    from modelseal.transparency.merkle import leaf_hash

    registry, _ = filled
    with registry.session() as session:
        registry.app.state.log.tree_head(session)  # a head the server signed and kept
        idx, data = session.execute(
            select(LogEntryRow.idx, LogEntryRow.data).where(LogEntryRow.subject == "alice/m:1.0")
        ).one()
        entry = LogEntry.from_bytes(bytes(data))
        forged = LogEntry(entry.kind, {**entry.fields, "digest": "0" * 64}, entry.time).to_bytes()
        session.execute(  # a careful forger also fixes the stored leaf hash
            update(LogEntryRow)
            .where(LogEntryRow.idx == idx)
            .values(data=forged, leaf_hash=leaf_hash(forged))
        )
        session.commit()
    report = run_fsck(registry, log_public_key=registry.app.state.log.signer.public_key)
    found = {(p.kind, p.subject) for p in report.problems}
    assert (ProblemKind.LOG_TREE_HEAD, "tree head 4") in found
    assert (ProblemKind.LOG_MISSING_ENTRY, "alice/m:1.0") in found  # digest differs from the DB


def test_tampered_log_hashes_and_a_deleted_version(filled: tuple[Any, dict[str, Any]]) -> None:
    from sqlalchemy import delete, update

    from modelseal.registry.db.models import LogEntryRow, LogNodeRow, Version

    registry, _ = filled
    with registry.session() as session:
        session.execute(
            update(LogEntryRow).where(LogEntryRow.idx == 0).values(leaf_hash=b"\0" * 32)
        )
        session.execute(
            update(LogNodeRow)
            .where(LogNodeRow.level == 1, LogNodeRow.idx == 1)
            .values(hash=b"\1" * 32)
        )
        session.execute(delete(Version).where(Version.name == "1.1"))  # cascades to its tag
        session.commit()
    report = run_fsck(registry)
    errors = {(p.kind, p.subject) for p in report.errors}
    assert errors == {
        (ProblemKind.LOG_HASH, "log entry 0"),
        (ProblemKind.LOG_HASH, "log node 1/1"),
        (ProblemKind.LOGGED_VERSION_MISSING, "alice/m:1.1"),
    }
    assert {p.kind for p in report.warnings} == {ProblemKind.UNREFERENCED_BLOB}
