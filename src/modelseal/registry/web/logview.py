"""What the transparency-log pages show: tree heads, entries and their proofs.

Entries are shown only to viewers who may read what they are about (the entry's
namespace; a token revocation to its user and site admins); others see the entry's
position, kind and leaf hash, which is all a proof needs. Proofs are recomputed
from the registry's log (:mod:`modelseal.registry.transparency_store`) and checked
with the RFC 9162 verifiers of :mod:`modelseal.transparency.merkle`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelseal.registry.errors import BadRequestError
from modelseal.registry.services.log import LogVisibility, entry_fields
from modelseal.registry.transparency_store import SqlLogStore, find_entry, open_log
from modelseal.registry.web.views import model_url, namespace_url, version_url
from modelseal.transparency.entries import EntryKind
from modelseal.transparency.errors import LogVerificationError
from modelseal.transparency.merkle import leaf_hash, verify_consistency, verify_inclusion

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelseal.registry.identity import Principal
    from modelseal.transparency.sth import SignedTreeHead

__all__ = [
    "ConsistencyView",
    "EntryRow",
    "InclusionView",
    "TreeHeadView",
    "consistency",
    "entry_rows",
    "inclusion",
    "tree_head_view",
    "version_entry",
]

_KIND_LABELS = {
    "publish": "Published",
    "quarantine": "Quarantined",
    "tag-move": "Tag moved",
    "key-trust": "Key trusted",
    "key-revoke": "Key revoked",
    "token-revoke": "Token revoked",
}


@dataclass(frozen=True)
class TreeHeadView:
    """A signed tree head, ready to show."""

    tree_size: int
    root_hash: str
    when: dt.datetime
    key_id: str
    signature: str


def tree_head_view(sth: SignedTreeHead) -> TreeHeadView:
    """Hex root, UTC time and base64 signature of a tree head."""
    return TreeHeadView(
        sth.tree_size,
        sth.root_hash.hex(),
        dt.datetime.fromtimestamp(sth.timestamp / 1000, tz=dt.timezone.utc),
        sth.key_id,
        base64.b64encode(sth.signature).decode("ascii"),
    )


@dataclass(frozen=True)
class EntryRow:
    """One log entry as a viewer may see it."""

    index: int
    kind: str
    kind_label: str
    leaf_hash: str
    visible: bool
    label: str = ""
    url: str | None = None
    time: str = ""
    #: The canonical JSON text hashed into the log (only when visible).
    canonical: str = ""
    #: The same, indented for reading.
    pretty: str = ""


def _describe(fields: dict[str, Any]) -> tuple[str, str | None]:
    kind = fields.get("kind")
    ns, model = str(fields.get("namespace", "")), str(fields.get("model", ""))
    version = str(fields.get("version", ""))
    if kind in ("publish", "quarantine"):
        return f"{ns}/{model}:{version}", version_url(ns, model, version)
    if kind == "tag-move":
        return f"{ns}/{model} tag {fields.get('tag')} → {version}", version_url(ns, model, version)
    if kind in ("key-trust", "key-revoke"):
        fingerprint = str(fields.get("fingerprint", ""))[:16]
        return f"{ns}: key {fields.get('name')} ({fingerprint}…)", namespace_url(ns)
    if kind == "token-revoke":
        return f"token {fields.get('token')} of {fields.get('user')}", None
    return str(kind), model_url(ns, model) if ns and model else None


def _row(index: int, data: bytes, readable: LogVisibility) -> EntryRow:
    leaf = leaf_hash(data)  # from the bytes, not the stored hash: tampering shows
    fields = entry_fields(data)
    kind = str(fields.get("kind", "?"))
    label = _KIND_LABELS.get(kind, kind)
    if not readable.entry(fields):
        return EntryRow(index, kind, label, leaf.hex(), False)
    text, url = _describe(fields)
    return EntryRow(
        index,
        kind,
        label,
        leaf.hex(),
        True,
        text,
        url,
        str(fields.get("time", "")),
        data.decode("utf-8", "replace"),
        json.dumps(fields, indent=2, ensure_ascii=False, sort_keys=True),
    )


def entry_rows(session: Session, viewer: Principal | None, start: int, stop: int) -> list[EntryRow]:
    """Entries ``[start, stop)``, newest first, as ``viewer`` may see them."""
    store = SqlLogStore(session)
    stop = min(stop, store.size())
    if start >= stop:
        return []
    readable = LogVisibility(session, viewer)
    rows = list(enumerate(store.entries(start, stop), start))
    return [_row(index, data, readable) for index, data in reversed(rows)]


@dataclass(frozen=True)
class InclusionView:
    """An entry's audit path to a signed root and whether it leads there."""

    index: int
    tree_size: int
    leaf_hash: str
    path: tuple[str, ...]
    root_hash: str
    verified: bool
    error: str | None


def inclusion(session: Session, index: int, leaf: bytes, sth: SignedTreeHead) -> InclusionView:
    """The audit path of entry ``index`` in the tree of ``sth``, checked against its root."""
    path = open_log(session).inclusion_proof(index, sth.tree_size)
    error = None
    try:
        verify_inclusion(leaf, index, sth.tree_size, path, sth.root_hash)
    except LogVerificationError as exc:
        error = exc.message
    return InclusionView(
        index,
        sth.tree_size,
        leaf.hex(),
        tuple(h.hex() for h in path),
        sth.root_hash.hex(),
        error is None,
        error,
    )


@dataclass(frozen=True)
class ConsistencyView:
    """The proof that the tree of ``second`` entries extends the one of ``first``."""

    first: int
    second: int
    first_root: str
    second_root: str
    proof: tuple[str, ...]
    verified: bool
    error: str | None


def consistency(session: Session, first: int, second: int) -> ConsistencyView:
    """Both roots, the RFC 9162 consistency proof between them, and its check."""
    log = open_log(session)
    if not 0 <= first <= second <= log.size:
        raise BadRequestError(
            f"no consistency proof from size {first} to {second} in a log of {log.size} entries",
            advice=f"pick 0 <= first <= second <= {log.size}",
        )
    old_root, new_root = log.root(first), log.root(second)
    proof = log.consistency_proof(first, second)
    error = None
    try:
        verify_consistency(first, second, old_root, new_root, proof)
    except LogVerificationError as exc:
        error = exc.message
    return ConsistencyView(
        first,
        second,
        old_root.hex(),
        new_root.hex(),
        tuple(h.hex() for h in proof),
        error is None,
        error,
    )


def version_entry(session: Session, namespace: str, model: str, version: str) -> int | None:
    """The index of the newest publish or quarantine entry of a version, if logged."""
    subject = f"{namespace}/{model}:{version}"
    found = [
        find_entry(session, kind, subject) for kind in (EntryKind.PUBLISH, EntryKind.QUARANTINE)
    ]
    indexes = [f[0] for f in found if f is not None]
    return max(indexes) if indexes else None
