"""Many concurrent clients against `modelseal serve` on PostgreSQL: nothing lost, nothing wrong.

The CI version of ``bench/bench_registry_load.py`` (same driver, 20 clients for 15 s
instead of 50 for 60 s). Select it with ``-m slow``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.bench_registry_load import (
    LoadConfig,
    RegistryServer,
    database_versions,
    fresh_database,
    prepare_registry,
    run_load,
    summarise,
    verify_log,
    verify_published,
    write_model,
)

pytestmark = [pytest.mark.slow, pytest.mark.load]


@pytest.fixture
def served(postgres_server_url: str, keypair: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`modelseal serve` on a fresh PostgreSQL database, with 20 client tokens."""
    with fresh_database(postgres_server_url) as db_url:
        tokens = prepare_registry(db_url, keypair.public_key, 20)
        with RegistryServer(tmp_path / "data", db_url) as server:
            yield {"server": server, "db": db_url, "tokens": tokens}


def test_concurrent_clients_lose_and_corrupt_nothing(
    served: dict[str, Any], keypair: Any, tmp_path: Path
) -> None:
    from modelseal.registry.fsck import fsck_registry
    from modelseal.registry.settings import RegistrySettings

    server: RegistryServer = served["server"]
    settings = RegistrySettings(data_dir=server.data, db_url=served["db"])
    config = LoadConfig(clients=20, seconds=15.0, midway_after=5)
    # fsck on the live registry once 5 versions are published (progress, not the clock: on a
    # busy machine the first pushes may take longer than half the load)
    result = run_load(
        server.url,
        served["tokens"],
        keypair.private_key,
        tmp_path / "w",
        config,
        midway=lambda: fsck_registry(settings),
    )
    summary = summarise(result)
    assert result.errors == [], result.errors[:5]
    assert result.mismatches == [], result.mismatches[:5]
    for op in ("push", "push_shared", "pull", "info"):
        assert summary["operations"][op]["count"] >= 5, summary  # the mix really ran
    shared = [p for p in result.published if p.ref.startswith("load/shared:")]
    assert len(shared) >= 5 and len({p.files["model.safetensors"] for p in shared}) == 1

    # every version a client was told is published is there, whole, with the pushed bytes
    assert verify_published(server.url, served["tokens"][0], result.published, tmp_path / "v") == []
    in_db = database_versions(served["db"])
    assert in_db == {p.ref: ("published", p.digest) for p in result.published}
    # ... and in the transparency log: the log audits clean with the server's key and
    # every published version's entry is proven included
    log_key = server.data / "log-key.pub.pem"
    auditor = tmp_path / "auditor"
    assert verify_log(server.url, served["tokens"][0], result.published, auditor, log_key) == []

    during = result.midway
    assert during is not None and result.midway_published >= config.midway_after
    assert during.ok, [p.to_json() for p in during.errors]
    assert during.stats.versions >= result.midway_published, during.to_json()["stats"]
    server.stop()
    report = fsck_registry(settings)
    assert report.clean, [p.to_json() for p in report.problems]
    assert report.stats.versions == len(result.published)


def test_concurrent_first_pushes_of_a_new_model_all_succeed(
    served: dict[str, Any], keypair: Any, tmp_path: Path
) -> None:
    """Regression: the models row of a new model name used to race (HTTP 500 for all but one)."""
    from modelseal.registry.client import ClientState, RegistryClient

    server: RegistryServer = served["server"]
    clients = 6
    barrier = threading.Barrier(clients)
    errors: list[str] = []

    def push(number: int) -> None:
        model = write_model(tmp_path / f"m{number}", seed=number, values=64)
        state = ClientState(tmp_path / f"home{number}")
        with RegistryClient(server.url, served["tokens"][number], state=state) as client:
            barrier.wait(30)
            try:
                client.push(model, f"load/fresh:{number}", key=keypair.private_key)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=push, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
