"""Errors of the transparency log.

A log that cannot be read (a malformed export, an index out of range) is a
:class:`LogError` (a :class:`~modelseal.errors.RegistryError`, exit 2). A log whose
proofs, roots or signatures do not check is a :class:`LogVerificationError` (a
:class:`~modelseal.errors.VerificationError`, exit 1): the history is not what the
server claims. A history that was rewritten or forked behind a client's back is a
:class:`SplitViewError`.
"""

from __future__ import annotations

from modelseal.errors import RegistryError, VerificationError

__all__ = ["LogError", "LogVerificationError", "SplitViewError"]


class LogError(RegistryError):
    """The log, an entry, a proof request or an exported log cannot be used as given."""


class LogVerificationError(VerificationError):
    """A proof, root hash or tree-head signature does not verify."""


class SplitViewError(LogVerificationError):
    """The server showed a history inconsistent with one it showed before (rewritten or forked)."""
