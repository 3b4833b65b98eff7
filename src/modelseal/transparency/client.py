"""Client-side log checks: remember the last tree head, demand consistency, check inclusion.

A client that talks to a registry keeps the last signed tree head (STH) it
accepted from that registry. On the next contact it fetches the newest STH, checks
its signature, and demands a consistency proof from the remembered size to the new
one. A server that rewrote, dropped or forked its history (showing different
clients different logs: a *split view*) cannot produce that proof, and the client
raises :class:`~modelseal.transparency.errors.SplitViewError`. Whatever the client
pulls is then checked to be in the log with an inclusion proof against the STH it
accepted.

The transport is abstract (:class:`LogSource`): the registry client implements it
over HTTP, tests implement it in memory.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modelseal._io import atomic_write
from modelseal.transparency.entries import LogEntry
from modelseal.transparency.errors import LogError, LogVerificationError, SplitViewError
from modelseal.transparency.merkle import leaf_hash, verify_consistency, verify_inclusion
from modelseal.transparency.sth import SignedTreeHead, verify_tree_head

__all__ = [
    "DEFAULT_MAX_AGE",
    "STATE_KEY",
    "LogMonitor",
    "LogSource",
    "TreeHeadState",
    "VerifiedEntry",
]

#: Default oldest acceptable tree head, in seconds (the registry re-signs a quiet
#: log's head every 10 minutes, so one day leaves room for clock skew and outages).
DEFAULT_MAX_AGE = 24 * 3600.0
#: How far in the future a tree head's timestamp may be (clock skew), in seconds.
_FUTURE_SKEW = 300.0

#: Key under each registry URL in the client state file.
STATE_KEY = "transparency-log"


class LogSource(Protocol):
    """What a log server offers a client."""

    def tree_head(self) -> SignedTreeHead:
        """The newest signed tree head."""

    def consistency_proof(self, old_size: int, new_size: int) -> Sequence[bytes]:
        """``PROOF(old_size, D[new_size])``."""

    def inclusion_proof(self, index: int, tree_size: int) -> Sequence[bytes]:
        """``PATH(index, D[tree_size])``."""


class TreeHeadState:
    """The last accepted STH per registry, kept in a JSON file.

    Layout: ``{URL: {"transparency-log": {"tree_head": {...}}}}``, the layout of the
    registry client's ``registry-state.json``, so both can share that file. Writes are
    atomic (:func:`modelseal._io.atomic_write`) and leave other keys untouched; pass the
    ``lock`` of the other writer of the same file so read-modify-writes do not interleave.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock: threading.Lock | None = None) -> None:
        self.path = Path(path)
        self._lock = lock or threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise LogError(
                f"{self.path}: unreadable client state ({exc})",
                advice="fix it; deleting it forgets every tree head seen (trust on first use)",
            ) from None
        if not isinstance(data, dict):
            raise LogError(f"{self.path}: client state is not a JSON object")
        return data

    def get(self, registry: str) -> SignedTreeHead | None:
        """The last STH accepted from ``registry``, or None (first contact)."""
        section = self._read().get(registry)
        record = section.get(STATE_KEY) if isinstance(section, dict) else None
        if record is None:
            return None
        if not isinstance(record, dict) or "tree_head" not in record:
            raise LogError(f"{self.path}: malformed {STATE_KEY} record for {registry}")
        return SignedTreeHead.from_json(record["tree_head"])

    def put(self, registry: str, sth: SignedTreeHead) -> None:
        """Remember ``sth`` as the last accepted tree head of ``registry``."""
        with self._lock:
            data = self._read()
            section = data.setdefault(registry, {})
            if not isinstance(section, dict):
                raise LogError(f"{self.path}: malformed record for {registry}")
            section[STATE_KEY] = {"tree_head": sth.to_json()}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(data, indent=2, sort_keys=True), mode=0o600)


@dataclass(frozen=True)
class VerifiedEntry:
    """An entry proven to be in the log under an accepted tree head."""

    index: int
    entry: LogEntry
    tree_head: SignedTreeHead


class LogMonitor:
    """Checks one registry's log from the client side.

    ``public_key`` is the log's STH key; ``state`` remembers tree heads between runs
    under the name ``registry`` (usually its URL). A tree head older than ``max_age``
    seconds (``None``: any age) is refused: a server that froze its log, or a
    man in the middle replaying an old head, cannot hide newer entries for longer.
    """

    def __init__(
        self,
        source: LogSource,
        public_key: Any,
        state: TreeHeadState,
        registry: str,
        *,
        max_age: float | None = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._key = public_key
        self._state = state
        self._registry = registry
        self._max_age = max_age
        self._clock = clock
        self._current: SignedTreeHead | None = None

    @property
    def tree_head(self) -> SignedTreeHead | None:
        """The tree head accepted in this session (None before :meth:`update`)."""
        return self._current

    def update(self) -> SignedTreeHead:
        """Fetch the newest STH, check it against the remembered one, remember it.

        Raises :class:`SplitViewError` if the new head does not extend the old one,
        :class:`LogVerificationError` if its signature is bad. The state is only
        written after every check passed.
        """
        new = self._source.tree_head()
        verify_tree_head(new, self._key)
        self._check_fresh(new)
        old = self._state.get(self._registry)
        if old is not None:
            if new.timestamp < old.timestamp:
                raise LogVerificationError(
                    f"the registry's tree head (size {new.tree_size}) is older than the one "
                    f"this client accepted before (size {old.tree_size}): a replayed tree head",
                    advice="do not trust this registry's content; report it to its operators",
                )
            self._check_extends(old, new)
        self._state.put(self._registry, new)
        self._current = new
        return new

    def _check_fresh(self, sth: SignedTreeHead) -> None:
        now = self._clock()
        age = now - sth.timestamp / 1000
        if self._max_age is not None and age > self._max_age:
            raise LogVerificationError(
                f"the registry's newest tree head is {age / 3600:.1f} h old (the limit is "
                f"{self._max_age / 3600:.1f} h): its log may be frozen to hide newer entries",
                advice="retry later, or raise --max-log-age if the registry is known to be "
                "offline for that long",
            )
        if age < -_FUTURE_SKEW:
            raise LogVerificationError(
                f"the registry's tree head is dated {-age:.0f} s in the future",
                advice="check this machine's clock",
            )

    def _check_extends(self, old: SignedTreeHead, new: SignedTreeHead) -> None:
        if new.tree_size < old.tree_size:
            raise SplitViewError(
                f"the log shrank from {old.tree_size} to {new.tree_size} entries since last seen: "
                "its history was rewritten",
                advice="do not trust this registry's content; report it to its operators",
            )
        if new.tree_size == old.tree_size:
            if new.root_hash != old.root_hash:
                raise SplitViewError(
                    f"two different logs of size {new.tree_size}: the registry showed another "
                    "history before (split view or rewrite)",
                    advice="do not trust this registry's content; report it to its operators",
                )
            return
        proof = self._source.consistency_proof(old.tree_size, new.tree_size)
        try:
            verify_consistency(
                old.tree_size, new.tree_size, old.root_hash, new.root_hash, list(proof)
            )
        except LogVerificationError as exc:
            raise SplitViewError(
                f"the log of size {new.tree_size} does not extend the one of size "
                f"{old.tree_size} seen before ({exc.message}): split view or rewritten history",
                advice="do not trust this registry's content; report it to its operators",
            ) from None

    def verify_entry(self, entry: LogEntry | bytes, index: int) -> VerifiedEntry:
        """Check that ``entry`` is entry ``index`` of the log under the accepted STH.

        Calls :meth:`update` first if no STH was accepted in this session. Raises
        :class:`LogVerificationError` if the entry is not in the log.
        """
        sth = self._current or self.update()
        data = entry.to_bytes() if isinstance(entry, LogEntry) else bytes(entry)
        parsed = entry if isinstance(entry, LogEntry) else LogEntry.from_bytes(data)
        if not 0 <= index < sth.tree_size:
            raise LogVerificationError(
                f"log entry {index} is not covered by the signed tree head (size {sth.tree_size})"
            )
        proof = self._source.inclusion_proof(index, sth.tree_size)
        try:
            verify_inclusion(leaf_hash(data), index, sth.tree_size, list(proof), sth.root_hash)
        except LogVerificationError as exc:
            raise LogVerificationError(
                f"{parsed.kind.value} entry {index} is not in the registry's log ({exc.message})",
                advice="the registry serves something it did not log; do not use it",
            ) from None
        return VerifiedEntry(index, parsed, sth)
