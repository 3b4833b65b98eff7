"""An append-only RFC 6962 log over a pluggable store.

:class:`TransparencyLog` appends canonical entries and answers roots, audit paths
and consistency proofs. Its :class:`LogStore` keeps the entries, their leaf hashes
and the hash of every *complete* subtree (``2**level`` leaves starting at a multiple
of ``2**level``). Any ``MTH(D[start:end])`` the RFC algorithms need is the hash of a
complete subtree or splits into ``O(log n)`` of them, so a root or a proof of a
log of any size costs ``O(log n)`` hash reads, and an append writes ``O(1)``
hashes amortised (at most ``log2 n``).
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from modelseal.transparency.entries import LogEntry
from modelseal.transparency.errors import LogError
from modelseal.transparency.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    split_point,
)

__all__ = [
    "EXPORT_FORMAT",
    "AppendResult",
    "LogStore",
    "MemoryLogStore",
    "SubtreeHash",
    "TransparencyLog",
]

#: ``format`` field of an exported log (see :meth:`TransparencyLog.export`).
EXPORT_FORMAT = "modelseal-transparency-log/v1"


@dataclass(frozen=True)
class SubtreeHash:
    """The hash of the complete subtree of ``2**level`` leaves starting at ``index * 2**level``."""

    level: int
    index: int
    hash: bytes


class LogStore(abc.ABC):
    """Where a log keeps its entries and cached subtree hashes.

    Implementations must make :meth:`append` atomic (the entry and the subtree hashes
    it completes are stored together or not at all) and must refuse an append whose
    index is not the current size (two writers racing for the same slot). A store
    shared by several processes must also serialise writers from :meth:`size` to the
    end of the append (a database lock held until commit), since
    :class:`TransparencyLog`'s own lock only covers one process.
    """

    @abc.abstractmethod
    def size(self) -> int:
        """Number of entries stored."""

    @abc.abstractmethod
    def append(self, index: int, entry: bytes, leaf: bytes, nodes: Sequence[SubtreeHash]) -> None:
        """Store ``entry`` (leaf hash ``leaf``) at ``index`` and the subtree hashes it completes.

        Raises :class:`~modelseal.transparency.errors.LogError` if ``index != size()``.
        """

    @abc.abstractmethod
    def entry(self, index: int) -> bytes:
        """The stored bytes of entry ``index``."""

    @abc.abstractmethod
    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash of entry ``index``."""

    def subtree_hash(self, level: int, index: int) -> bytes | None:
        """A cached complete-subtree hash (``level >= 1``), or None if not cached."""
        return None

    def entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``[start, end)`` (override for a single query)."""
        return [self.entry(i) for i in range(start, end)]

    def find_leaf(self, leaf: bytes) -> int | None:
        """The first index whose leaf hash is ``leaf`` (override with an indexed lookup)."""
        for i in range(self.size()):
            if self.leaf_hash(i) == leaf:
                return i
        return None


class MemoryLogStore(LogStore):
    """A store in memory (tests, offline audits, small tools). Thread-safe."""

    def __init__(self) -> None:
        self._entries: list[bytes] = []
        self._leaves: list[bytes] = []
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._by_leaf: dict[bytes, int] = {}
        self._lock = threading.Lock()

    def size(self) -> int:
        """Number of entries."""
        return len(self._entries)

    def append(self, index: int, entry: bytes, leaf: bytes, nodes: Sequence[SubtreeHash]) -> None:
        """Append one entry and its completed subtrees."""
        with self._lock:
            if index != len(self._entries):
                raise LogError(
                    f"log append raced: slot {index} asked, size is {len(self._entries)}",
                    advice="retry the change",
                )
            self._entries.append(entry)
            self._leaves.append(leaf)
            self._by_leaf.setdefault(leaf, index)
            for node in nodes:
                self._nodes[(node.level, node.index)] = node.hash

    def entry(self, index: int) -> bytes:
        """Entry bytes."""
        return self._entries[index]

    def leaf_hash(self, index: int) -> bytes:
        """Leaf hash."""
        return self._leaves[index]

    def subtree_hash(self, level: int, index: int) -> bytes | None:
        """Cached subtree hash."""
        return self._nodes.get((level, index))

    def find_leaf(self, leaf: bytes) -> int | None:
        """Indexed lookup."""
        return self._by_leaf.get(leaf)


@dataclass(frozen=True)
class AppendResult:
    """Where an entry landed: its index, its leaf hash, and the tree size after it."""

    index: int
    leaf_hash: bytes
    tree_size: int


class TransparencyLog:
    """An append-only Merkle log of :class:`~modelseal.transparency.entries.LogEntry` records."""

    def __init__(self, store: LogStore) -> None:
        self._store = store
        self._lock = threading.Lock()

    @property
    def store(self) -> LogStore:
        """The underlying store."""
        return self._store

    @classmethod
    def in_memory(cls, entries: Sequence[LogEntry | bytes] = ()) -> TransparencyLog:
        """A log in memory, optionally pre-filled."""
        log = cls(MemoryLogStore())
        for entry in entries:
            log.append(entry)
        return log

    # -- writing -----------------------------------------------------------------------

    def append(self, entry: LogEntry | bytes, *, validate: bool = True) -> AppendResult:
        """Append an entry (a :class:`LogEntry` or canonical entry bytes).

        Bytes are refused unless they parse as a canonical :class:`LogEntry`;
        ``validate=False`` takes them as they are (rebuilding someone else's log to audit it).
        """
        if isinstance(entry, LogEntry):
            data = entry.to_bytes()
        else:
            if validate:
                LogEntry.from_bytes(entry)
            data = bytes(entry)
        with self._lock:
            index = self._store.size()
            leaf = leaf_hash(data)
            self._store.append(index, data, leaf, self._completed_nodes(index, leaf))
        return AppendResult(index, leaf, index + 1)

    def _completed_nodes(self, index: int, leaf: bytes) -> list[SubtreeHash]:
        """Subtree hashes completed by putting ``leaf`` at ``index``."""
        nodes: list[SubtreeHash] = []
        size, right, level = index + 1, leaf, 0
        while size % (2 << level) == 0:
            left = self._complete_hash(level, (size >> level) - 2)
            right = node_hash(left, right)
            level += 1
            nodes.append(SubtreeHash(level, (size >> level) - 1, right))
        return nodes

    # -- reading -----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of entries."""
        return self._store.size()

    def entry(self, index: int) -> LogEntry:
        """Entry ``index`` parsed."""
        return LogEntry.from_bytes(self.entry_bytes(index))

    def entry_bytes(self, index: int) -> bytes:
        """The stored bytes of entry ``index``."""
        self._check_index(index, self.size)
        return self._store.entry(index)

    def find(self, entry: LogEntry | bytes) -> int | None:
        """The index of an entry (by its leaf hash), or None."""
        data = entry.to_bytes() if isinstance(entry, LogEntry) else entry
        return self._store.find_leaf(leaf_hash(data))

    def root(self, size: int | None = None) -> bytes:
        """``MTH`` of the first ``size`` entries (default: all)."""
        size = self._size_arg(size)
        return EMPTY_ROOT if size == 0 else self._hasher()(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of entry ``index`` in the tree of ``size`` entries."""
        size = self._size_arg(size)
        self._check_index(index, size)
        return inclusion_proof(index, size, self._hasher())

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The proof that the tree of ``new_size`` entries extends the one of ``old_size``."""
        new_size = self._size_arg(new_size)
        if old_size < 0 or old_size > new_size:
            raise LogError(
                f"no consistency proof from size {old_size} to {new_size}",
                advice="the old size must be between 0 and the new size",
            )
        return consistency_proof(old_size, new_size, self._hasher())

    def iter_entries(
        self, start: int = 0, end: int | None = None, *, page: int = 1000
    ) -> Iterator[bytes]:
        """Entry bytes ``[start, end)``, read a page at a time."""
        end = self._size_arg(end)
        for first in range(start, end, page):
            yield from self._store.entries(first, min(first + page, end))

    def export(self, tree_heads: Sequence[Any] = ()) -> dict[str, Any]:
        """The whole log as a JSON document for :func:`modelseal.transparency.audit.audit_export`.

        ``tree_heads`` are :class:`~modelseal.transparency.sth.SignedTreeHead` objects the
        server issued; entries are their canonical JSON text.
        """
        return {
            "format": EXPORT_FORMAT,
            "entries": [e.decode("utf-8") for e in self.iter_entries()],
            "tree_heads": [t.to_json() for t in tree_heads],
        }

    # -- internals ---------------------------------------------------------------------

    def _size_arg(self, size: int | None) -> int:
        current = self._store.size()
        if size is None:
            return current
        if size < 0 or size > current:
            raise LogError(
                f"tree size {size} is not between 0 and the log size {current}",
                advice="ask for a size the log has reached",
            )
        return size

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if index < 0 or index >= size:
            raise LogError(
                f"entry {index} is not in a log of size {size}",
                advice="ask for an index below the tree size",
            )

    def _complete_hash(self, level: int, index: int) -> bytes:
        """Hash of a complete subtree, from the cache, else recomputed from its halves."""
        if level == 0:
            return self._store.leaf_hash(index)
        cached = self._store.subtree_hash(level, index)
        if cached is not None:
            return cached
        return node_hash(
            self._complete_hash(level - 1, 2 * index), self._complete_hash(level - 1, 2 * index + 1)
        )

    def _hasher(self) -> Any:
        memo: dict[tuple[int, int], bytes] = {}

        def range_hash(start: int, end: int) -> bytes:
            width = end - start
            if width & (width - 1) == 0 and start % width == 0:
                level = width.bit_length() - 1
                return self._complete_hash(level, start >> level)
            key = (start, end)
            if key not in memo:
                k = split_point(width)
                memo[key] = node_hash(range_hash(start, start + k), range_hash(start + k, end))
            return memo[key]

        return range_hash
