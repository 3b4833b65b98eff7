"""Client-side checks: consistency on every contact, inclusion of pulls, split views."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from modelseal.transparency.client import LogMonitor, TreeHeadState
from modelseal.transparency.entries import LogEntry
from modelseal.transparency.errors import LogError, LogVerificationError, SplitViewError
from modelseal.transparency.log import TransparencyLog
from modelseal.transparency.sth import SignedTreeHead, TreeHeadSigner
from tests.samples.transparency import publish_entry, signer

URL = "https://registry.example"


class FakeServer:
    """A log server in memory; tests make it lie."""

    def __init__(self, log: TransparencyLog, tree_signer: TreeHeadSigner) -> None:
        self.log = log
        self.signer = tree_signer
        self.calls: list[str] = []
        self.proof_override: list[bytes] | None = None

    def tree_head(self) -> SignedTreeHead:
        self.calls.append("sth")
        return self.signer.sign(self.log.size, self.log.root())

    def consistency_proof(self, old_size: int, new_size: int) -> Sequence[bytes]:
        self.calls.append(f"consistency {old_size} {new_size}")
        if self.proof_override is not None:
            return self.proof_override
        return self.log.consistency_proof(old_size, new_size)

    def inclusion_proof(self, index: int, tree_size: int) -> Sequence[bytes]:
        self.calls.append(f"inclusion {index} {tree_size}")
        return self.log.inclusion_proof(index, tree_size)


def _log(n: int, *, start: int = 0) -> TransparencyLog:
    return TransparencyLog.in_memory([publish_entry(i) for i in range(start, start + n)])


@pytest.fixture
def state(tmp_path: Path) -> TreeHeadState:
    return TreeHeadState(tmp_path / "home" / "registry-state.json")


def test_first_contact_then_growth(state: TreeHeadState) -> None:
    s = signer()
    server = FakeServer(_log(5), s)
    first = LogMonitor(server, s.public_key, state, URL).update()
    assert first.tree_size == 5
    assert state.get(URL) == first
    assert server.calls == ["sth"]  # trust on first use: nothing to be consistent with

    for i in range(5, 12):
        server.log.append(publish_entry(i))
    server.calls.clear()
    monitor = LogMonitor(server, s.public_key, state, URL)
    second = monitor.update()
    assert second.tree_size == 12
    assert server.calls == ["sth", "consistency 5 12"]
    assert state.get(URL) == second
    # Same size again: no proof needed, but the root must match.
    server.calls.clear()
    LogMonitor(server, s.public_key, state, URL).update()
    assert server.calls == ["sth"]


def test_state_file_shares_the_registry_client_layout(state: TreeHeadState) -> None:
    state.path.parent.mkdir(parents=True)
    state.path.write_text(json.dumps({URL: {"acme/bert:latest": {"serial": 3}}}))
    s = signer()
    LogMonitor(FakeServer(_log(2), s), s.public_key, state, URL).update()
    data = json.loads(state.path.read_text())
    assert data[URL]["acme/bert:latest"] == {"serial": 3}
    assert data[URL]["transparency-log"]["tree_head"]["tree_size"] == 2
    assert state.path.stat().st_mode & 0o777 == 0o600


def test_rewritten_history_is_a_split_view(state: TreeHeadState) -> None:
    s = signer()
    LogMonitor(FakeServer(_log(6), s), s.public_key, state, URL).update()
    remembered = state.get(URL)
    # The server now shows a history where entry 3 was rewritten, then grew.
    forked = TransparencyLog.in_memory(
        [publish_entry(i) for i in range(3)] + [publish_entry(i + 100) for i in range(3, 9)]
    )
    with pytest.raises(SplitViewError, match="does not extend") as info:
        LogMonitor(FakeServer(forked, s), s.public_key, state, URL).update()
    assert "report it" in (info.value.advice or "")
    assert info.value.exit_code == 1
    # Nothing is learned from a failed check.
    assert state.get(URL) == remembered


def test_fork_of_the_same_size_is_a_split_view(state: TreeHeadState) -> None:
    s = signer()
    LogMonitor(FakeServer(_log(6), s), s.public_key, state, URL).update()
    with pytest.raises(SplitViewError, match="two different logs of size 6"):
        LogMonitor(FakeServer(_log(6, start=50), s), s.public_key, state, URL).update()


def test_shrunk_log_is_a_split_view(state: TreeHeadState) -> None:
    s = signer()
    LogMonitor(FakeServer(_log(6), s), s.public_key, state, URL).update()
    with pytest.raises(SplitViewError, match="shrank from 6 to 4"):
        LogMonitor(FakeServer(_log(4), s), s.public_key, state, URL).update()


def test_bogus_consistency_proof_is_a_split_view(state: TreeHeadState) -> None:
    s = signer()
    server = FakeServer(_log(6), s)
    LogMonitor(server, s.public_key, state, URL).update()
    server.log.append(publish_entry(6))
    server.proof_override = [bytes(32)] * 3
    with pytest.raises(SplitViewError):
        LogMonitor(server, s.public_key, state, URL).update()
    server.proof_override = []
    with pytest.raises(SplitViewError, match="empty"):
        LogMonitor(server, s.public_key, state, URL).update()


def test_tree_head_from_another_key_is_refused(state: TreeHeadState) -> None:
    ours, impostor = signer(), signer()
    with pytest.raises(LogVerificationError, match="expected"):
        LogMonitor(FakeServer(_log(3), impostor), ours.public_key, state, URL).update()
    assert state.get(URL) is None


def test_inclusion_of_pulled_entries(state: TreeHeadState) -> None:
    s = signer()
    server = FakeServer(_log(9), s)
    monitor = LogMonitor(server, s.public_key, state, URL)
    verified = monitor.verify_entry(publish_entry(4), 4)
    assert verified.index == 4 and verified.tree_head.tree_size == 9
    assert verified.entry.fields["version"] == "1.4"
    assert server.calls == ["sth", "inclusion 4 9"]
    # Raw bytes work too.
    monitor.verify_entry(publish_entry(8).to_bytes(), 8)


def test_entry_not_in_the_log_is_refused(state: TreeHeadState) -> None:
    s = signer()
    monitor = LogMonitor(FakeServer(_log(9), s), s.public_key, state, URL)
    tampered = LogEntry(publish_entry(4).kind, {**publish_entry(4).fields, "digest": "0" * 64})
    with pytest.raises(LogVerificationError, match="not in the registry's log"):
        monitor.verify_entry(tampered, 4)
    with pytest.raises(LogVerificationError, match="not in the registry's log"):
        monitor.verify_entry(publish_entry(4), 5)  # right entry, wrong place
    with pytest.raises(LogVerificationError, match="not covered"):
        monitor.verify_entry(publish_entry(4), 9)


def test_unreadable_state_is_a_clear_error(state: TreeHeadState) -> None:
    state.path.parent.mkdir(parents=True)
    state.path.write_text("{not json")
    with pytest.raises(LogError, match="unreadable client state"):
        state.get(URL)
    state.path.write_text(json.dumps({URL: {"transparency-log": {"tree_head": {"x": 1}}}}))
    with pytest.raises(LogError, match="malformed signed tree head"):
        state.get(URL)
