"""The registry's transparency log: an append-only RFC 6962 Merkle log.

Public API:

* :mod:`~modelseal.transparency.merkle`: RFC 6962/9162 hashes, proofs and verifiers;
* :class:`LogEntry` / :class:`EntryKind`: the canonical JSON records the log holds;
* :class:`TransparencyLog` over a :class:`LogStore` (:class:`MemoryLogStore` in memory);
* :class:`SignedTreeHead`, :class:`TreeHeadSigner`, :func:`verify_tree_head`;
* :class:`LogMonitor` / :class:`TreeHeadState`: client-side consistency and inclusion checks;
* :func:`audit_export`: the offline audit behind ``modelseal log verify``.
"""

from modelseal.transparency.audit import AuditProblem, AuditReport, audit_export, load_export
from modelseal.transparency.client import LogMonitor, LogSource, TreeHeadState, VerifiedEntry
from modelseal.transparency.entries import EntryKind, LogEntry
from modelseal.transparency.errors import LogError, LogVerificationError, SplitViewError
from modelseal.transparency.log import (
    AppendResult,
    LogStore,
    MemoryLogStore,
    SubtreeHash,
    TransparencyLog,
)
from modelseal.transparency.sth import SignedTreeHead, TreeHeadSigner, verify_tree_head

__all__ = [
    "AppendResult",
    "AuditProblem",
    "AuditReport",
    "EntryKind",
    "LogEntry",
    "LogError",
    "LogMonitor",
    "LogSource",
    "LogStore",
    "LogVerificationError",
    "MemoryLogStore",
    "SignedTreeHead",
    "SplitViewError",
    "SubtreeHash",
    "TransparencyLog",
    "TreeHeadSigner",
    "TreeHeadState",
    "VerifiedEntry",
    "audit_export",
    "load_export",
    "verify_tree_head",
]
