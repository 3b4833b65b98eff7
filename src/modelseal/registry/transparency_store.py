"""The registry's transparency log in its database: store, appends, signed tree heads.

Every change that matters to trust (publish, quarantine, tag move, key trust and
revocation, token revocation) is recorded with :func:`log_event` by the code that makes
it. The entry is appended **at commit, inside the same transaction** (a
``before_commit`` hook installed by :func:`install_log_hook` on the registry's session
factory), so the change and its log entry are committed together or not at all.

Appends are serialised across threads, processes and replicas by locking the single
``log_state`` row (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the ``UPDATE``
takes the database write lock) until the transaction ends. Taking that lock last, just
before the commit, keeps the lock order the same in every transaction (other rows
first, the log last), so log appends cannot deadlock with each other's row locks.

Tree heads are signed on demand by :class:`RegistryLog` with the server's own key and
kept in ``log_tree_heads`` (one per key and size), so an export carries every head the
server issued and an auditor can check them all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelseal.transparency.entries import EntryKind, LogEntry
from modelseal.transparency.errors import LogError
from modelseal.transparency.log import LogStore, SubtreeHash, TransparencyLog
from modelseal.transparency.sth import SignedTreeHead, TreeHeadSigner

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from modelseal.registry.settings import RegistrySettings

__all__ = [
    "TREE_HEAD_REFRESH_MS",
    "RegistryLog",
    "SqlLogStore",
    "backfill",
    "find_entry",
    "install_log_hook",
    "log_event",
    "open_log",
    "recent_tree_heads",
    "stored_tree_heads",
    "subject_of",
]

_PENDING = "modelseal.tlog.pending"
_HOOKED = "modelseal.tlog.hooked"


def subject_of(kind: EntryKind, fields: Mapping[str, Any]) -> str:
    """The lookup key of an entry: ``ns/model:version``, ``ns/model#tag``, ``ns key FP``..."""
    if kind in (EntryKind.PUBLISH, EntryKind.QUARANTINE):
        return f"{fields['namespace']}/{fields['model']}:{fields['version']}"
    if kind is EntryKind.TAG_MOVE:
        return f"{fields['namespace']}/{fields['model']}#{fields['tag']}"
    if kind in (EntryKind.KEY_TRUST, EntryKind.KEY_REVOKE):
        return f"{fields['namespace']} key {fields['fingerprint']}"
    return f"token {fields['token']}"


class SqlLogStore(LogStore):
    """Entries and complete-subtree hashes in the registry database, through one session.

    :meth:`append` must run with the log lock held (:func:`log_event` does that).
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def size(self) -> int:
        """The committed size (``log_state.size``)."""
        from modelseal.registry.db.models import LogState

        state = self._session.get(LogState, 1, populate_existing=True)
        if state is None:
            raise LogError(
                "the registry database has no transparency log",
                advice="run `modelseal admin migrate`",
            )
        return int(state.size)

    def append(self, index: int, entry: bytes, leaf: bytes, nodes: Sequence[SubtreeHash]) -> None:
        """Insert the entry and the subtree hashes it completes, and bump the size."""
        from sqlalchemy import insert, update

        from modelseal.registry.db.models import LogEntryRow, LogNodeRow, LogState

        size = self.size()
        if index != size:
            raise LogError(
                f"log append raced: slot {index} asked, size is {size}", advice="retry the change"
            )
        parsed = LogEntry.from_bytes(entry)
        self._session.execute(
            insert(LogEntryRow).values(
                idx=index,
                leaf_hash=leaf,
                kind=parsed.kind.value,
                subject=subject_of(parsed.kind, parsed.fields)[:400],
                data=entry,
            )
        )
        if nodes:
            self._session.execute(
                insert(LogNodeRow),
                [{"level": n.level, "idx": n.index, "hash": n.hash} for n in nodes],
            )
        self._session.execute(update(LogState).where(LogState.id == 1).values(size=index + 1))

    def entry(self, index: int) -> bytes:
        """The canonical bytes of entry ``index``."""
        from sqlalchemy import select

        from modelseal.registry.db.models import LogEntryRow

        value = self._session.scalar(select(LogEntryRow.data).where(LogEntryRow.idx == index))
        if value is None:
            raise LogError(f"log entry {index} is missing from the database")
        return bytes(value)

    def leaf_hash(self, index: int) -> bytes:
        """The stored leaf hash of entry ``index``."""
        from sqlalchemy import select

        from modelseal.registry.db.models import LogEntryRow

        value = self._session.scalar(select(LogEntryRow.leaf_hash).where(LogEntryRow.idx == index))
        if value is None:
            raise LogError(f"log entry {index} is missing from the database")
        return bytes(value)

    def subtree_hash(self, level: int, index: int) -> bytes | None:
        """A cached complete-subtree hash."""
        from sqlalchemy import select

        from modelseal.registry.db.models import LogNodeRow

        value = self._session.scalar(
            select(LogNodeRow.hash).where(LogNodeRow.level == level, LogNodeRow.idx == index)
        )
        return None if value is None else bytes(value)

    def entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``[start, end)`` in one query."""
        from sqlalchemy import select

        from modelseal.registry.db.models import LogEntryRow

        rows = self._session.scalars(
            select(LogEntryRow.data)
            .where(LogEntryRow.idx >= start, LogEntryRow.idx < end)
            .order_by(LogEntryRow.idx)
        ).all()
        if len(rows) != end - start:
            raise LogError(f"log entries {start}..{end - 1} are incomplete in the database")
        return [bytes(r) for r in rows]

    def find_leaf(self, leaf: bytes) -> int | None:
        """The first index with leaf hash ``leaf`` (indexed)."""
        from sqlalchemy import select

        from modelseal.registry.db.models import LogEntryRow

        value = self._session.scalar(
            select(LogEntryRow.idx)
            .where(LogEntryRow.leaf_hash == leaf)
            .order_by(LogEntryRow.idx)
            .limit(1)
        )
        return None if value is None else int(value)


def open_log(session: Session) -> TransparencyLog:
    """The registry's log read and written through ``session``."""
    return TransparencyLog(SqlLogStore(session))


# -- appends ---------------------------------------------------------------------------------


def log_event(session: Session, kind: EntryKind | str, /, **fields: Any) -> LogEntry:
    """Record a change to be appended when ``session`` commits (same transaction).

    The session must come from a factory prepared by :func:`install_log_hook` (the
    registry's :func:`~modelseal.registry.db.session.session_factory` is); otherwise
    the entry would be lost silently, so this raises instead.
    """
    if not session.info.get(_HOOKED):
        raise LogError(
            "this database session does not write the transparency log",
            advice="create sessions with modelseal.registry.db.session.session_factory",
        )
    entry = LogEntry.create(kind, **fields)
    session.info.setdefault(_PENDING, []).append(entry)
    return entry


def _lock_log(session: Session) -> None:
    """Take the log's write lock until the transaction ends (all dialects)."""
    from sqlalchemy import select, update

    from modelseal.registry.db.models import LogState

    # PostgreSQL: a row lock. SQLite ignores FOR UPDATE; its UPDATE below takes the write lock.
    session.execute(select(LogState.size).where(LogState.id == 1).with_for_update())
    session.execute(update(LogState).where(LogState.id == 1).values(size=LogState.size))


def _flush_pending(session: Session) -> None:
    pending: list[LogEntry] = session.info.pop(_PENDING, [])
    if not pending:
        return
    session.flush()
    _lock_log(session)
    log = open_log(session)
    for entry in pending:
        log.append(entry)


def _drop_pending(session: Session, *_args: Any) -> None:
    session.info.pop(_PENDING, None)


def install_log_hook(factory: sessionmaker[Session]) -> None:
    """Make sessions of ``factory`` append their :func:`log_event` entries at commit."""
    from sqlalchemy import event

    factory.kw.setdefault("info", {})[_HOOKED] = True
    event.listen(factory, "before_commit", _flush_pending)
    event.listen(factory, "after_soft_rollback", _drop_pending)


# -- reading ---------------------------------------------------------------------------------


def find_entry(
    session: Session, kind: EntryKind, subject: str, *, below: int | None = None
) -> tuple[int, bytes] | None:
    """The newest entry of ``kind`` about ``subject`` (with an index below ``below``):
    its index and bytes."""
    from sqlalchemy import select

    from modelseal.registry.db.models import LogEntryRow

    query = select(LogEntryRow.idx, LogEntryRow.data).where(
        LogEntryRow.kind == kind.value, LogEntryRow.subject == subject[:400]
    )
    if below is not None:
        query = query.where(LogEntryRow.idx < below)
    row = session.execute(query.order_by(LogEntryRow.idx.desc()).limit(1)).first()
    return None if row is None else (int(row[0]), bytes(row[1]))


def stored_tree_heads(
    session: Session, *, key_id: str | None = None, max_size: int | None = None
) -> Iterator[SignedTreeHead]:
    """The tree heads the server issued, oldest first (optionally one key, sizes <= max)."""
    from sqlalchemy import select

    from modelseal.registry.db.models import LogTreeHeadRow

    query = select(LogTreeHeadRow).order_by(LogTreeHeadRow.timestamp, LogTreeHeadRow.tree_size)
    if key_id is not None:
        query = query.where(LogTreeHeadRow.key_id == key_id)
    if max_size is not None:
        query = query.where(LogTreeHeadRow.tree_size <= max_size)
    for row in session.scalars(query):
        yield _row_head(row)


def recent_tree_heads(session: Session, key_id: str, limit: int) -> list[SignedTreeHead]:
    """The ``limit`` largest tree heads signed with ``key_id``, largest first."""
    from sqlalchemy import select

    from modelseal.registry.db.models import LogTreeHeadRow

    rows = session.scalars(
        select(LogTreeHeadRow)
        .where(LogTreeHeadRow.key_id == key_id)
        .order_by(LogTreeHeadRow.tree_size.desc())
        .limit(limit)
    )
    return [_row_head(row) for row in rows]


@dataclass
class _Cached:
    sth: SignedTreeHead | None = None


class RegistryLog:
    """The server side of the log: its signing key and the latest signed tree head.

    One per app (``app.state.log``). The key is ``settings.log_key`` if given (every
    replica behind a load balancer must use the same one), else ``DATA/log-key.priv.pem``,
    generated on first start.
    """

    def __init__(self, signer: TreeHeadSigner) -> None:
        self.signer = signer
        self._cache = _Cached()
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: RegistrySettings) -> RegistryLog:
        """The log service for ``settings`` (loads or creates the tree-head key)."""
        key: Path | None = getattr(settings, "log_key", None)
        if key is not None:
            return cls(TreeHeadSigner.from_file(key))
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(TreeHeadSigner.in_directory(settings.data_dir))

    def tree_head(self, session: Session) -> SignedTreeHead:
        """A signed head of the log as committed now (reused while the log does not grow
        and the head is younger than :data:`TREE_HEAD_REFRESH_MS`).

        A new head is signed under the log lock, so heads are issued in the order of
        their sizes with increasing timestamps, whichever replica signs them. A quiet
        log's head is re-signed with a fresh timestamp (same size and root, the stored
        head of that size replaced), so clients can refuse heads that are too old.
        """
        import time

        from sqlalchemy import func, select

        from modelseal.registry.db.models import LogTreeHeadRow

        size = open_log(session).size
        now = int(time.time() * 1000)
        with self._lock:
            cached = self._cache.sth
        if cached is not None and _reusable(cached, size, now):
            return cached
        row = session.get(LogTreeHeadRow, (self.signer.key_id, size))
        if row is None or not _reusable(_row_head(row), size, now):
            _lock_log(session)
            log = open_log(session)
            size = log.size
            key = (self.signer.key_id, size)
            row = session.get(LogTreeHeadRow, key, populate_existing=True)
            if row is None or not _reusable(_row_head(row), size, now):
                last = session.scalar(
                    select(func.max(LogTreeHeadRow.timestamp)).where(
                        LogTreeHeadRow.key_id == self.signer.key_id
                    )
                )
                stamp = max(int(time.time() * 1000), int(last or 0) + 1)
                signed = self.signer.sign(size, log.root(size), stamp)
                if row is None:
                    row = LogTreeHeadRow(key_id=signed.key_id, tree_size=size)
                    session.add(row)
                row.root_hash = signed.root_hash
                row.timestamp = signed.timestamp
                row.signature = signed.signature
            session.commit()
        sth = _row_head(row)
        with self._lock:
            if self._cache.sth is None or (
                self._cache.sth.tree_size,
                self._cache.sth.timestamp,
            ) <= (
                sth.tree_size,
                sth.timestamp,
            ):
                self._cache.sth = sth
        return sth


#: A served tree head is re-signed once it is older than this (ms); clients refuse heads
#: older than their ``max_log_age`` (default one day), which must stay well above it.
TREE_HEAD_REFRESH_MS = 10 * 60 * 1000


def _reusable(sth: SignedTreeHead | None, size: int, now_ms: int) -> bool:
    return (
        sth is not None and sth.tree_size == size and now_ms - sth.timestamp < TREE_HEAD_REFRESH_MS
    )


def _row_head(row: Any) -> SignedTreeHead:
    return SignedTreeHead(
        int(row.tree_size),
        bytes(row.root_hash),
        int(row.timestamp),
        row.key_id,
        bytes(row.signature),
    )


# -- what each change logs -------------------------------------------------------------------


def backfill(session: Session) -> int:
    """Append entries for everything a registry held before it had a log (migration 0002).

    Uses plain SQL on the 0001 schema (the ORM models may have moved on since).
    Returns the number of entries appended.
    """
    from sqlalchemy import text

    log = open_log(session)
    if log.size:
        return 0
    rows = session.execute(
        text(
            "SELECT v.id, n.name, m.name, v.name, v.digest, v.state, v.signed_by"
            " FROM versions v JOIN models m ON v.model_id = m.id"
            " JOIN namespaces n ON m.namespace_id = n.id ORDER BY v.id"
        )
    ).all()
    entries: list[LogEntry] = []
    for serial, namespace, model, version, digest, state, signed_by in rows:
        kind = EntryKind.PUBLISH if state == "published" else EntryKind.QUARANTINE
        fields = {"namespace": namespace, "model": model, "version": version, "digest": digest}
        entries.append(
            LogEntry.create(kind, **fields, serial=int(serial), signer=signed_by, backfill=True)
        )
    tags = session.execute(
        text(
            "SELECT n.name, m.name, t.name, v.name, v.digest FROM tags t"
            " JOIN models m ON t.model_id = m.id JOIN namespaces n ON m.namespace_id = n.id"
            " JOIN versions v ON t.version_id = v.id ORDER BY t.id"
        )
    ).all()
    for namespace, model, tag, version, digest in tags:
        entries.append(
            LogEntry.create(
                EntryKind.TAG_MOVE,
                namespace=namespace,
                model=model,
                tag=tag,
                version=version,
                digest=digest,
                backfill=True,
            )
        )
    keys = session.execute(
        text(
            "SELECT n.name, k.name, k.fingerprint, k.kind, k.revoked_at FROM trusted_keys k"
            " JOIN namespaces n ON k.namespace_id = n.id ORDER BY k.id"
        )
    ).all()
    for namespace, name, fingerprint, key_kind, revoked in keys:
        fields = {"namespace": namespace, "name": name, "fingerprint": fingerprint}
        entries.append(
            LogEntry.create(EntryKind.KEY_TRUST, **fields, key_kind=key_kind, backfill=True)
        )
        if revoked is not None:
            entries.append(LogEntry.create(EntryKind.KEY_REVOKE, **fields, backfill=True))
    tokens = session.execute(
        text(
            "SELECT t.id, u.name FROM tokens t JOIN users u ON t.user_id = u.id"
            " WHERE t.revoked_at IS NOT NULL ORDER BY t.id"
        )
    ).all()
    for token_id, user in tokens:
        entries.append(
            LogEntry.create(EntryKind.TOKEN_REVOKE, user=user, token=int(token_id), backfill=True)
        )
    for entry in entries:
        log.append(entry)
    return len(entries)
