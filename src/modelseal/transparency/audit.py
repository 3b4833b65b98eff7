"""Offline audit of an exported log: every entry, every root, every tree head.

The export (``TransparencyLog.export``) holds the entries as canonical JSON text
and the signed tree heads (STHs) the server issued. The audit

* parses every entry and checks it is canonical and of a known kind,
* rebuilds the tree and recomputes the root of every size a tree head signs,
* checks every STH's signature with the server's public key and that its root is
  the recomputed root of its size (so every STH describes this very history),
* checks that STHs ordered by time never shrink, and verifies an RFC 9162
  consistency proof between each pair of successive heads (the proofs a client
  would be shown: a cross-check of the proof code itself, since heads whose roots
  match one list of entries are consistent by construction).

Problems are collected as data (:class:`AuditReport`), not raised: one audit reports
everything wrong with a log.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelseal.transparency.entries import LogEntry
from modelseal.transparency.errors import LogError, LogVerificationError
from modelseal.transparency.log import EXPORT_FORMAT, MemoryLogStore, TransparencyLog
from modelseal.transparency.merkle import verify_consistency
from modelseal.transparency.sth import SignedTreeHead, verify_tree_head

__all__ = ["AuditProblem", "AuditReport", "audit_export", "load_export"]


@dataclass(frozen=True)
class AuditProblem:
    """One thing wrong with the log: where (``entry 12``, ``tree head 3``) and what."""

    where: str
    message: str


@dataclass(frozen=True)
class AuditReport:
    """The outcome of an audit."""

    entries: int
    tree_heads: int
    root_hash: bytes
    problems: tuple[AuditProblem, ...]
    latest: SignedTreeHead | None

    @property
    def ok(self) -> bool:
        """True if nothing is wrong."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """JSON form (stable)."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "tree_heads": self.tree_heads,
            "root_hash": self.root_hash.hex(),
            "latest_tree_head": self.latest.to_json() if self.latest else None,
            "problems": [{"where": p.where, "message": p.message} for p in self.problems],
        }


def load_export(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an exported log (raises :class:`LogError` if it is not one)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise LogError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise LogError(f"{path}: not JSON ({exc})") from None
    _check_shape(data, str(path))
    return data  # type: ignore[no-any-return]


def _check_shape(data: Any, name: str) -> None:
    if not isinstance(data, Mapping) or data.get("format") != EXPORT_FORMAT:
        raise LogError(
            f"{name}: not an exported modelseal transparency log",
            advice=f'expected a JSON object with "format": "{EXPORT_FORMAT}"',
        )
    if not isinstance(data.get("entries"), list) or not isinstance(data.get("tree_heads"), list):
        raise LogError(f"{name}: an exported log needs lists 'entries' and 'tree_heads'")
    if not all(isinstance(e, str) for e in data["entries"]):
        raise LogError(f"{name}: every entry must be its canonical JSON text")


def audit_export(export: Mapping[str, Any], public_key: Any) -> AuditReport:
    """Audit an exported log against the server's tree-head public key."""
    _check_shape(export, "export")
    problems: list[AuditProblem] = []
    entries: list[bytes] = [e.encode("utf-8") for e in export["entries"]]

    heads: list[tuple[int, SignedTreeHead]] = []
    for i, raw in enumerate(export["tree_heads"]):
        try:
            heads.append((i, SignedTreeHead.from_json(raw)))
        except LogError as exc:
            problems.append(AuditProblem(f"tree head {i}", exc.message))
    wanted: dict[int, list[tuple[int, SignedTreeHead]]] = {}
    for i, sth in heads:
        if sth.tree_size > len(entries):
            problems.append(
                AuditProblem(
                    f"tree head {i}",
                    f"signs {sth.tree_size} entries but the export holds only {len(entries)}",
                )
            )
        else:
            wanted.setdefault(sth.tree_size, []).append((i, sth))

    log = TransparencyLog(MemoryLogStore())
    for index, data in enumerate(entries):
        try:
            LogEntry.from_bytes(data)
        except LogError as exc:
            problems.append(AuditProblem(f"entry {index}", exc.message))
        log.append(data, validate=False)
    # The root of every signed size, recomputed from the entries themselves.
    for size, group in sorted(wanted.items()):
        root = log.root(size)
        for i, sth in group:
            try:
                verify_tree_head(sth, public_key)
            except LogVerificationError as exc:
                problems.append(AuditProblem(f"tree head {i}", exc.message))
            if sth.root_hash != root:
                problems.append(
                    AuditProblem(
                        f"tree head {i}",
                        f"root hash of size {size} is not the root of the exported entries: "
                        "the entries were altered, or the server signed another history",
                    )
                )
    flagged = {p.where for p in problems}
    problems.extend(_check_sequence(heads, log, flagged))
    latest = max((sth for _, sth in heads), key=lambda s: (s.tree_size, s.timestamp), default=None)
    return AuditReport(len(entries), len(heads), log.root(), tuple(problems), latest)


def _check_sequence(
    heads: list[tuple[int, SignedTreeHead]], log: TransparencyLog, flagged: set[str]
) -> list[AuditProblem]:
    """Heads in time order never shrink; each is consistent with the one before.

    Heads already found wrong (``flagged``) are not checked against each other again.
    """
    problems: list[AuditProblem] = []
    ordered = sorted(heads, key=lambda item: (item[1].timestamp, item[1].tree_size))
    for (i, old), (j, new) in itertools.pairwise(ordered):
        where = f"tree heads {i} and {j}"
        if new.tree_size < old.tree_size:
            problems.append(
                AuditProblem(
                    where,
                    f"the log shrank from {old.tree_size} to {new.tree_size} entries "
                    "between these signed heads (history rewritten)",
                )
            )
            continue
        if {f"tree head {i}", f"tree head {j}"} & flagged:
            continue
        try:
            proof = log.consistency_proof(old.tree_size, new.tree_size)
            verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof)
        except LogVerificationError as exc:
            problems.append(AuditProblem(where, f"not consistent: {exc.message}"))
    return problems
