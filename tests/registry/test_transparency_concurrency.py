"""Concurrent writers keep the transparency log consistent (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelseal.transparency.entries import EntryKind
from modelseal.transparency.log import TransparencyLog
from tests.samples.registry import write_model

THREADS = 4
COMMITS = 12


def _check_log(registry: Any) -> list[dict[str, Any]]:
    """Every index present once; stored entries, leaf hashes and subtree hashes agree with
    a log rebuilt from the entries alone, at every size."""
    from sqlalchemy import select

    from modelseal.registry.db.models import LogEntryRow
    from modelseal.registry.transparency_store import open_log

    with registry.session() as session:
        log = open_log(session)
        indices = list(session.scalars(select(LogEntryRow.idx).order_by(LogEntryRow.idx)))
        assert indices == list(range(log.size))
        datas = list(log.iter_entries())
        rebuilt = TransparencyLog.in_memory(datas)
        for size in range(1, log.size + 1):
            assert log.root(size) == rebuilt.root(size), f"root of size {size} differs"
    return [json.loads(d) for d in datas]


def test_concurrent_appends_are_serialised(registry: Any) -> None:
    from modelseal.registry.transparency_store import log_event

    def writer(thread: int) -> None:
        for i in range(COMMITS):
            with registry.session() as session:
                log_event(session, EntryKind.TOKEN_REVOKE, user=f"t{thread}", token=i)
                session.commit()

    def signer(_: int) -> None:
        for _round in range(COMMITS):
            with registry.session() as session:
                registry.app.state.log.tree_head(session)

    with ThreadPoolExecutor(THREADS + 2) as pool:
        list(pool.map(lambda job: job[0](job[1]), [(writer, t) for t in range(THREADS)]
                      + [(signer, t) for t in range(2)]))  # fmt: skip
    entries = _check_log(registry)
    assert len(entries) == THREADS * COMMITS
    # Heads signed while the log grew: issued in size order, each over the real history.
    from modelseal.registry.transparency_store import open_log, stored_tree_heads
    from modelseal.transparency.sth import verify_tree_head

    with registry.session() as session:
        registry.app.state.log.tree_head(session)  # the head of the final size
        heads = list(stored_tree_heads(session))
        log = open_log(session)
        assert len(heads) >= 2
        for sth in heads:
            verify_tree_head(sth, registry.app.state.log.signer.public_key)
            assert sth.root_hash == log.root(sth.tree_size)
    assert [h.tree_size for h in heads] == sorted({h.tree_size for h in heads})
    assert [h.timestamp for h in heads] == sorted({h.timestamp for h in heads})
    for thread in range(THREADS):  # each writer's own entries stay in its order
        mine = [e["token"] for e in entries if e["user"] == f"t{thread}"]
        assert mine == list(range(COMMITS))


def test_concurrent_pushes_and_tag_moves(registry: Any, keypair: Any, tmp_path: Path) -> None:
    registry.user("alice")
    registry.trust("alice", keypair.public_key)
    token = registry.token("alice")
    models = [write_model(tmp_path / f"m{i}", seed=i) for i in range(4)]

    def push(i: int) -> str:
        with registry.client(token) as client:
            result = client.push(
                models[i], f"alice/shared:{i}", key=keypair.private_key, tags=["latest"]
            )
            return str(result.version["digest"])

    with ThreadPoolExecutor(4) as pool:
        digests = list(pool.map(push, range(4)))

    def move(i: int) -> int:
        with registry.http(token) as http:
            answer = http.put(
                "/namespaces/alice/models/shared/tags/stable", json={"version": str(i % 4)}
            )
            return int(answer.status_code)

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(move, range(8))) == {200}
    entries = _check_log(registry)
    publishes = [e for e in entries if e["kind"] == "publish"]
    assert sorted((e["version"], e["digest"]) for e in publishes) == [
        (str(i), digests[i]) for i in range(4)
    ]
    moves = [e for e in entries if e["kind"] == "tag-move"]
    assert len([m for m in moves if m["tag"] == "latest"]) == 4
    assert len([m for m in moves if m["tag"] == "stable"]) == 8
    # The tag's final target is the one the log recorded last.
    with registry.http(token) as http:
        tags = {
            t["tag"]: t["version"]
            for t in http.get("/namespaces/alice/models/shared/tags").json()["items"]
        }
    assert tags["latest"] == [m for m in moves if m["tag"] == "latest"][-1]["version"]
    assert tags["stable"] == [m for m in moves if m["tag"] == "stable"][-1]["version"]
    with registry.client(token) as client:
        report = client.audit_log()
    assert report.ok, report.problems
    assert report.entries == len(entries)
