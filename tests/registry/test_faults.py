"""Faults: the server killed (-9) during concurrent uploads; damaged storage found by fsck.

After a kill -9 and a restart on the same data: no partial version exists, fsck finds
no damage (only the documented leftovers of a crash, as warnings), every upload resumes
where the server stopped and completes. A flipped byte in blob storage and a deleted
database row are reported by the real `modelseal admin fsck` command.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.bench_registry_load import (
    Published,
    RegistryServer,
    database_versions,
    fresh_database,
    prepare_registry,
    verify_log,
    verify_published,
    write_model,
)

from modelseal.registry.fsck import ProblemKind

pytestmark = [pytest.mark.slow, pytest.mark.load]

CLIENTS = 4
#: Leftovers a crash may leave that are garbage, not damage (docs/registry.md, "Operations").
CRASH_LEFTOVERS = {ProblemKind.ORPHAN_BLOB, ProblemKind.STALE_STAGING}


def staged_bytes(data: Path) -> int:
    """Bytes of partial uploads the server holds."""
    return sum(p.stat().st_size for p in (data / "staging").glob("*/*.part"))


@pytest.fixture
def served(postgres_server_url: str, keypair: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`modelseal serve` on a fresh PostgreSQL database (stopped at the end)."""
    with fresh_database(postgres_server_url) as db_url:
        tokens = prepare_registry(db_url, keypair.public_key, CLIENTS)
        server = RegistryServer(tmp_path / "data", db_url)
        server.start()
        try:
            yield {"server": server, "db": db_url, "tokens": tokens}
        finally:
            server.stop()


def test_kill_during_concurrent_uploads_then_resume(
    served: dict[str, Any], keypair: Any, tmp_path: Path
) -> None:
    from modelseal.registry.client import ClientState, RegistryClient
    from modelseal.registry.fsck import fsck_registry
    from modelseal.registry.settings import RegistrySettings

    server: RegistryServer = served["server"]
    settings = RegistrySettings(data_dir=server.data, db_url=served["db"])
    models = [
        write_model(tmp_path / f"m{n}", seed=n, values=3 * 1024 * 1024) for n in range(CLIENTS)
    ]  # 12 MiB of weights each
    refs = [f"load/big{n}:1.0" for n in range(CLIENTS)]

    def client(number: int) -> RegistryClient:
        return RegistryClient(
            server.url,
            served["tokens"][number],
            state=ClientState(tmp_path / f"home{number}"),
            chunk_size=512 * 1024,
            timeout=60,
        )

    # an auditor sees the log before the crash; afterwards it must be consistent with that
    auditor = tmp_path / "auditor"
    log_key = server.data / "log-key.pub.pem"
    with RegistryClient(
        server.url, served["tokens"][0], state=ClientState(auditor), log_key=log_key
    ) as watcher:
        assert watcher.log_tree_head().tree_size >= 1  # the trusted key's entry
    outcome: dict[int, str] = {}

    def push(number: int) -> None:
        try:
            with client(number) as c:
                c.push(models[number], refs[number], key=keypair.private_key)
            outcome[number] = "published"
        except Exception as exc:
            outcome[number] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=push, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while staged_bytes(server.data) < 8 * 1024 * 1024 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill()
    for thread in threads:
        thread.join(60)
    assert len(outcome) == CLIENTS, "every client returned"
    interrupted = [n for n, result in outcome.items() if result != "published"]
    assert interrupted, "the kill interrupted at least one upload"

    # after the crash: only whole versions, no damage
    in_db = database_versions(served["db"])
    for number in interrupted:
        assert refs[number] not in in_db, f"partial version {refs[number]} after a kill"
    report = fsck_registry(settings)
    assert report.ok, [p.to_json() for p in report.errors]
    assert {p.kind for p in report.warnings} <= CRASH_LEFTOVERS, report.to_json()

    # restart on the same data: each interrupted push resumes where the server stopped
    server.start()
    resumed = 0
    for number in interrupted:
        with client(number) as c:
            result = c.push(models[number], refs[number], key=keypair.private_key)
        assert result.version["state"] == "published"
        resumed += result.bytes_skipped > 1024 * 1024
    assert resumed >= 1, "at least one upload resumed instead of starting over"

    published = [
        Published(ref, database_versions(served["db"])[ref][1], _digests(models[n]))
        for n, ref in enumerate(refs)
    ]
    assert verify_published(server.url, served["tokens"][0], published, tmp_path / "v") == []
    # the log survived the kill: consistent with the head seen before it, every version in it
    assert verify_log(server.url, served["tokens"][0], published, auditor, log_key) == []
    server.stop()
    report = fsck_registry(settings)
    assert report.ok, [p.to_json() for p in report.errors]
    # a kill during a commit may leave its gate directory in staging (a warning); nothing else
    assert {p.kind for p in report.warnings} <= {ProblemKind.STALE_STAGING}, report.to_json()
    assert report.stats.versions == CLIENTS and report.stats.open_uploads == 0


def test_kill_during_concurrent_commits_leaves_whole_versions_or_none(
    served: dict[str, Any], keypair: Any, tmp_path: Path
) -> None:
    from modelseal.registry.client import ClientState, RegistryClient
    from modelseal.registry.fsck import fsck_registry
    from modelseal.registry.settings import RegistrySettings

    server: RegistryServer = served["server"]
    settings = RegistrySettings(data_dir=server.data, db_url=served["db"])
    rounds = 3  # each client pushes small versions back to back: commits overlap the kill
    models = {
        (n, r): write_model(tmp_path / f"m{n}-{r}", seed=10 * n + r, values=256 * 1024)
        for n in range(CLIENTS)
        for r in range(rounds)
    }
    outcome: dict[tuple[int, int], str] = {}

    def push(number: int) -> None:
        state = ClientState(tmp_path / f"home{number}")
        with RegistryClient(server.url, served["tokens"][number], state=state) as client:
            for r in range(rounds):
                try:
                    client.push(models[number, r], f"load/c{number}:{r}", key=keypair.private_key)
                    outcome[number, r] = "published"
                except Exception as exc:
                    outcome[number, r] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=push, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # a commit materialises its files in staging/gate-*
        if any((server.data / "staging").glob("gate-*/model/*")) and len(outcome) >= 1:
            break
        time.sleep(0.005)
    server.kill()
    for thread in threads:
        thread.join(60)
    failed = sorted(key for key, result in outcome.items() if result != "published")
    assert failed, "the kill interrupted at least one push"

    in_db = database_versions(served["db"])
    for (number, r), result in outcome.items():
        ref = f"load/c{number}:{r}"
        if result == "published":
            assert in_db.get(ref, ("",))[0] == "published", ref
    report = fsck_registry(settings)  # whole versions only: every blob, row and log entry there
    assert report.ok, [p.to_json() for p in report.errors]
    assert {p.kind for p in report.warnings} <= CRASH_LEFTOVERS, report.to_json()

    server.start()
    # a COMMIT the server sent just before dying may land in PostgreSQL a moment later
    in_db = database_versions(served["db"])
    for number, r in failed:  # push again what failed, unless its commit had landed
        ref = f"load/c{number}:{r}"
        if ref not in in_db:
            with RegistryClient(
                server.url, served["tokens"][number], state=ClientState(tmp_path / "retry")
            ) as client:
                client.push(models[number, r], ref, key=keypair.private_key)
    in_db = database_versions(served["db"])
    published = [
        Published(f"load/c{n}:{r}", in_db[f"load/c{n}:{r}"][1], _digests(models[n, r]))
        for n, r in models
    ]
    assert verify_published(server.url, served["tokens"][0], published, tmp_path / "v") == []
    server.stop()
    report = fsck_registry(settings)
    assert report.ok, [p.to_json() for p in report.errors]
    assert report.stats.versions == len(models)


def _digests(root: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def fsck_cli(registry: Any, *extra: str) -> subprocess.CompletedProcess[str]:
    """`modelseal admin --data DATA --db URL fsck ...` in a subprocess."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "modelseal",
            "admin",
            "--data",
            str(registry.settings.data_dir),
            "--db",
            registry.settings.database_url,
            "fsck",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_admin_fsck_reports_a_flipped_byte_and_a_deleted_row(
    registry: Any, keypair: Any, tmp_path: Path
) -> None:
    from sqlalchemy import delete

    from modelseal.registry.db.models import VersionBlob

    registry.user("alice", admin=True)
    registry.trust("alice", keypair.public_key)
    with registry.client(registry.token("alice")) as client:
        first = client.push(
            write_model(tmp_path / "a", seed=1, values=4096), "alice/m:1.0", key=keypair.private_key
        ).version
        second = client.push(
            write_model(tmp_path / "b", seed=2, values=64), "alice/m:2.0", key=keypair.private_key
        ).version

    healthy = fsck_cli(registry)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "registry OK" in healthy.stdout and "2 versions" in healthy.stdout

    stray = b"bytes an interrupted upload left"
    registry.app.state.store.put_bytes(hashlib.sha256(stray).hexdigest(), stray)
    garbage = fsck_cli(registry)
    assert garbage.returncode == 0 and "registry OK with 1 warning(s)" in garbage.stdout
    assert fsck_cli(registry, "--strict").returncode == 1
    registry.app.state.store.delete(hashlib.sha256(stray).hexdigest())

    weights = next(f["digest"] for f in first["files"] if f["path"] == "model.safetensors")
    blob = registry.app.state.store.local_path(weights)
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0x80]))
    with registry.session() as session:
        session.execute(delete(VersionBlob).where(VersionBlob.digest == second["sbom_digest"]))
        session.commit()

    damaged = fsck_cli(registry, "-f", "json")
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    doc = json.loads(damaged.stdout)
    found = {(p["kind"], p["subject"]) for p in doc["problems"]}
    assert found == {("corrupt-blob", weights), ("missing-version-blob", "alice/m:2.0")}
    assert doc["ok"] is False and doc["stats"]["blobs_hashed"] >= 7

    table = fsck_cli(registry)
    assert table.returncode == 1 and "registry DAMAGED: 2 error(s)" in table.stdout
    assert "corrupt-blob" in table.stdout and weights in table.stdout
    assert "Traceback" not in table.stderr

    usage = fsck_cli(registry, "--workers", "0")
    assert usage.returncode == 2
    elsewhere = subprocess.run(
        [sys.executable, "-m", "modelseal", "admin", "--data", str(tmp_path / "none"), "fsck"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert elsewhere.returncode == 2 and "no registry database" in elsewhere.stderr
    assert not (tmp_path / "none").exists(), "fsck created nothing"
