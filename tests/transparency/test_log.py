"""The append-only log: canonical entries, the store contract, O(log n) proofs."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelseal.transparency.entries import EntryKind, LogEntry, canonical_json, utc_timestamp
from modelseal.transparency.errors import LogError
from modelseal.transparency.log import MemoryLogStore, SubtreeHash, TransparencyLog
from modelseal.transparency.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from tests.samples.transparency import mixed_entries, publish_entry

# -- entries ----------------------------------------------------------------------------


def test_entry_bytes_are_canonical_and_flat() -> None:
    entry = LogEntry.create(
        "publish", version="1.0", namespace="acme", model="bert", digest="ab" * 32
    )
    data = entry.to_bytes()
    assert data.startswith(b'{"digest":"abab')
    assert b" " not in data
    assert LogEntry.from_bytes(data) == entry
    assert entry.time.endswith("Z")
    assert entry.to_json()["kind"] == "publish"


def test_every_kind_round_trips() -> None:
    for entry in mixed_entries(len(EntryKind)):
        assert LogEntry.from_bytes(entry.to_bytes()) == entry


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"kind":"publish"}', "lacks"),
        (b'{"kind":"delete-everything","time":"x"}', "unknown log entry kind"),
        (b"\xff\xfe", "not JSON"),
        (b"[1,2]", "not an object"),
        # A valid entry, but padded: another byte string, hence another leaf hash.
        (
            b'{"digest":"d", "kind":"publish","model":"m","namespace":"n",'
            b'"time":"2026-01-01T00:00:00Z","version":"v"}',
            "canonical",
        ),
        # Keys out of order.
        (
            b'{"kind":"publish","digest":"d","model":"m","namespace":"n","time":"2026-01-01T00:00:00Z","version":"v"}',
            "canonical",
        ),
        (b'{"digest":"d","kind":"publish","model":"m","namespace":"n","version":"v"}', "canonical"),
        (
            b'{"digest":1.5,"kind":"publish","model":"m","namespace":"n","time":"2026-01-01T00:00:00Z","version":"v"}',
            "floats",
        ),
    ],
)
def test_malformed_entries_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(LogError, match=message):
        LogEntry.from_bytes(data)


def test_entry_fields_are_checked() -> None:
    with pytest.raises(LogError, match="may not be named"):
        LogEntry(EntryKind.TOKEN_REVOKE, {"user": "a", "token": "t", "time": "now"})
    with pytest.raises(LogError, match="cannot be logged"):
        LogEntry(EntryKind.TOKEN_REVOKE, {"user": "a", "token": object()})
    with pytest.raises(LogError, match="RFC 3339"):
        LogEntry(EntryKind.TOKEN_REVOKE, {"user": "a", "token": "t"}, "yesterday")
    with pytest.raises(LogError, match="timezone-aware"):
        utc_timestamp(dt.datetime(2026, 1, 1))
    assert canonical_json({"b": [1, {"z": None, "a": True}], "a": "é"}) == (
        '{"a":"é","b":[1,{"a":true,"z":null}]}'.encode()
    )


# -- the log ----------------------------------------------------------------------------


def test_empty_log() -> None:
    log = TransparencyLog.in_memory()
    assert log.size == 0
    assert log.root() == EMPTY_ROOT
    assert log.consistency_proof(0) == []
    with pytest.raises(LogError, match="not in a log"):
        log.inclusion_proof(0)


def test_append_and_read_back() -> None:
    log = TransparencyLog.in_memory()
    results = [log.append(e) for e in mixed_entries(10)]
    assert [r.index for r in results] == list(range(10))
    assert results[-1].tree_size == 10
    assert log.entry(3) == mixed_entries(10)[3]
    assert log.find(mixed_entries(10)[7]) == 7
    assert log.find(publish_entry(999)) is None
    assert list(log.iter_entries(2, 5, page=2)) == [e.to_bytes() for e in mixed_entries(10)[2:5]]
    with pytest.raises(LogError, match="not between"):
        log.root(11)
    with pytest.raises(LogError, match="not between"):
        log.inclusion_proof(0, -1)
    with pytest.raises(LogError, match="no consistency proof"):
        log.consistency_proof(5, 3)


def test_append_refuses_non_canonical_bytes() -> None:
    log = TransparencyLog.in_memory()
    data = publish_entry(0).to_bytes()
    with pytest.raises(LogError):
        log.append(data + b" ")
    assert log.size == 0
    log.append(data)
    assert log.entry_bytes(0) == data


def test_store_refuses_a_raced_slot() -> None:
    store = MemoryLogStore()
    data = publish_entry(0).to_bytes()
    store.append(0, data, leaf_hash(data), [])
    with pytest.raises(LogError, match="raced"):
        store.append(0, data, leaf_hash(data), [])
    assert store.size() == 1


def test_concurrent_appends_keep_every_entry() -> None:
    log = TransparencyLog.in_memory()
    entries = [publish_entry(i, time=f"2026-01-01T00:00:00.{i:06d}Z") for i in range(200)]

    def worker(chunk: Sequence[LogEntry]) -> None:
        for entry in chunk:
            log.append(entry)

    threads = [threading.Thread(target=worker, args=(entries[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.size == 200
    stored = [log.entry_bytes(i) for i in range(200)]
    assert sorted(stored) == sorted(e.to_bytes() for e in entries)
    assert log.root() == MemoryTree.from_entries(stored).root()


class _CountingStore(MemoryLogStore):
    """Counts hash reads, to check proofs cost O(log n) of them."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def leaf_hash(self, index: int) -> bytes:
        self.reads += 1
        return super().leaf_hash(index)

    def subtree_hash(self, level: int, index: int) -> bytes | None:
        self.reads += 1
        return super().subtree_hash(level, index)

    def append(self, index: int, entry: bytes, leaf: bytes, nodes: Sequence[SubtreeHash]) -> None:
        # Every completed subtree is handed over with its leaf.
        assert len(nodes) == ((index + 1) & -(index + 1)).bit_length() - 1
        super().append(index, entry, leaf, nodes)


def test_large_log_proofs_need_logarithmic_reads() -> None:
    store = _CountingStore()
    log = TransparencyLog(store)
    n = 5000
    entries = [publish_entry(i, time=f"2026-01-01T00:00:00.{i:06d}Z") for i in range(n)]
    for entry in entries:
        log.append(entry)
    depth = (n - 1).bit_length()  # 13
    for size in (n, 4097, 4096, 1234):
        store.reads = 0
        root = log.root(size)
        assert store.reads <= depth
        for index in (0, size // 3, size - 1):
            store.reads = 0
            path = log.inclusion_proof(index, size)
            assert store.reads <= 2 * depth, (index, size, store.reads)
            verify_inclusion(leaf_hash(entries[index].to_bytes()), index, size, path, root)
        for old in (1, size // 2, size - 1):
            store.reads = 0
            proof = log.consistency_proof(old, size)
            assert store.reads <= 3 * depth, (old, size, store.reads)
            verify_consistency(old, size, log.root(old), root, proof)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None)
@given(extra=st.dictionaries(st.text(min_size=1, max_size=10), _json_values, max_size=5))
def test_property_entries_round_trip_byte_exact(extra: dict[str, object]) -> None:
    fields = {k: v for k, v in extra.items() if k not in ("kind", "time")}
    fields.update(user="alice", token="ms_1")
    entry = LogEntry(EntryKind.TOKEN_REVOKE, fields, "2026-01-01T00:00:00Z")
    data = entry.to_bytes()
    again = LogEntry.from_bytes(data)
    assert again == entry
    assert again.to_bytes() == data
