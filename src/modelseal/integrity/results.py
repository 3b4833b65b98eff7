"""Result types of signing and verification (frozen; rendering is the caller's job)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from modelseal.integrity.tensors import TensorChange

__all__ = [
    "ChangeKind",
    "FileChange",
    "ProvenanceCheck",
    "SignResult",
    "UnsignedFile",
    "VerifyResult",
]


class ChangeKind(str, enum.Enum):
    """How a file differs from its signature."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    RENAMED = "renamed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class FileChange:
    """A file that does not match the signature."""

    path: str
    kind: ChangeKind
    #: Signed digest (hex; shard digests joined by ``,``), None for added files.
    expected: str | None = None
    #: Digest found on disk, None for removed files.
    actual: str | None = None
    #: For renamed files: the name it was signed under.
    renamed_from: str | None = None


@dataclass(frozen=True)
class UnsignedFile:
    """A file on disk that the signature deliberately leaves out (ignored path or glob)."""

    path: str
    #: True for code (Python, scripts, native libraries, pickles...): fails unless allowed.
    is_code: bool
    reason: str = "ignored path"


@dataclass(frozen=True)
class ProvenanceCheck:
    """The outcome of checking a provenance attestation against the verified model."""

    ok: bool
    reasons: tuple[str, ...]
    builder: str | None = None
    base_models: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SignResult:
    """What ``sign`` wrote."""

    signature_path: Path
    model_name: str
    root_digest: str
    method: str
    hash_algorithm: str
    signer: str
    files: int
    bytes_hashed: int
    #: Files whose digests were reused from ``--previous`` (provably unchanged).
    reused: tuple[str, ...] = ()
    bytes_reused: int = 0
    #: Files left out of the signature (ignored paths and globs).
    ignored: tuple[str, ...] = ()
    #: Weight files with a per-tensor manifest.
    tensor_files: tuple[str, ...] = ()
    seconds: float = 0.0
    #: Whether model-signing can verify this signature (EC key or certificate; sha256 or blake3).
    interoperable: bool = True


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of ``verify``: ``ok`` and, when not, every reason and difference."""

    ok: bool
    reasons: tuple[str, ...]
    model_name: str | None = None
    root_digest: str | None = None
    signer: str | None = None
    method: str | None = None
    hash_algorithm: str | None = None
    files_checked: int = 0
    added: tuple[FileChange, ...] = ()
    removed: tuple[FileChange, ...] = ()
    changed: tuple[FileChange, ...] = ()
    renamed: tuple[FileChange, ...] = ()
    unsigned: tuple[UnsignedFile, ...] = ()
    symlinks: tuple[str, ...] = ()
    tensor_changes: tuple[TensorChange, ...] = ()
    provenance: ProvenanceCheck | None = None
    #: Ignore paths recorded in the signature.
    ignore_paths: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changes(self) -> tuple[FileChange, ...]:
        """Every file difference, in one tuple."""
        return self.added + self.removed + self.changed + self.renamed
