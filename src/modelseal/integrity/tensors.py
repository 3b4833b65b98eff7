"""Per-tensor Merkle manifests for safetensors (and GGUF, once its reader exists).

A file digest says *that* a weight file changed; a tensor manifest says *which
tensors* changed, and lets a reader verify one tensor by reading only its bytes.

Definitions (fixed: the runtime monitor and lazy loading rely on them). Each file
manifest records its leaf hash ``H`` (``tensor_hash``); manifests without it are
the original ``sha256`` ones::

    data_digest = H(tensor bytes exactly as stored, little-endian;
                    bfloat16 as its 2-byte patterns, GGML blocks as stored)
    leaf        = SHA-256(TAG[H] + name + b"\x00" + dtype + b"\x00"
                          + ",".join(shape) + b"\x00" + data_digest)
    TAG[sha256] = b"modelseal.tensor.v1\x00"            (signatures before issue 16)
    TAG[blake3] = b"modelseal.tensor.v2\x00blake3\x00"  (the default since: BLAKE3-256)
    node        = SHA-256(b"\x01" + left + right)
    root        = RFC 6962 Merkle tree hash over the leaves sorted by tensor name:
                  MTH([]) = SHA-256(b""), MTH([l]) = l,
                  MTH(L) = node(MTH(L[:k]), MTH(L[k:])) with k the largest power of two < len(L)

BLAKE3 is the default data hash because the file digest must stay SHA-256 (what
model-signing verifies): both are computed from the same buffer in one read, and
BLAKE3 costs about a third of a second SHA-256 pass. The tag names the
algorithm, so a leaf of one kind can never pass for the other, nor for an
interior node. ``dtype`` is the canonical name from
:mod:`modelseal.formats.tensors` (``float32``, ``bfloat16``...; GGML types such
as ``q4_0``). Each signed tensor file records its leaf hash, its root and every
tensor's (name, dtype, shape, data digest); the signature covers all of it (see
:mod:`modelseal.integrity.manifest`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelseal.errors import FormatError, UsageError

if TYPE_CHECKING:
    from modelseal.formats.tensors import TensorInfo

__all__ = [
    "DEFAULT_TENSOR_HASH",
    "LEAF_TAGS",
    "TENSOR_HASHES",
    "TensorChange",
    "TensorFileManifest",
    "TensorRecord",
    "build_tensor_manifest",
    "describe_weight_file",
    "diff_tensors",
    "manifest_from_digests",
    "merkle_root",
    "tensor_data_digest",
    "tensor_leaf",
    "tensor_spans",
]

#: Domain tag prefixed to every leaf, by data-digest algorithm.
LEAF_TAGS: Mapping[str, bytes] = {
    "sha256": b"modelseal.tensor.v1\x00",
    "blake3": b"modelseal.tensor.v2\x00blake3\x00",
}
#: Data-digest algorithms a tensor manifest may use.
TENSOR_HASHES: tuple[str, ...] = tuple(LEAF_TAGS)
#: What new manifests use (see the module docstring for why).
DEFAULT_TENSOR_HASH = "blake3"


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in LEAF_TAGS:
        raise UsageError(
            f"unknown tensor hash {algorithm!r}", advice=f"choose one of {', '.join(TENSOR_HASHES)}"
        )


def tensor_data_digest(
    data: bytes | bytearray | memoryview, algorithm: str = DEFAULT_TENSOR_HASH
) -> bytes:
    """The ``algorithm`` digest of a tensor's raw bytes as stored."""
    from modelseal.integrity.hashing import engine_for

    _check_algorithm(algorithm)
    hasher = engine_for(algorithm).new()
    hasher.update(data)
    return hasher.digest()


def tensor_leaf(
    name: str,
    dtype: str,
    shape: Sequence[int],
    data_digest: bytes,
    algorithm: str = DEFAULT_TENSOR_HASH,
) -> bytes:
    """The Merkle leaf of one tensor whose data digest is by ``algorithm``."""
    _check_algorithm(algorithm)
    return hashlib.sha256(
        LEAF_TAGS[algorithm]
        + name.encode("utf-8")
        + b"\x00"
        + dtype.encode("utf-8")
        + b"\x00"
        + ",".join(map(str, shape)).encode("ascii")
        + b"\x00"
        + data_digest
    ).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash over ``leaves`` (already hashed, tagged leaves)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    left, right = merkle_root(leaves[:split]), merkle_root(leaves[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass(frozen=True)
class TensorRecord:
    """One tensor in a tensor manifest."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    #: Digest of the tensor's bytes (hex), by ``algorithm``.
    digest: str
    #: The data-digest algorithm (a key of :data:`LEAF_TAGS`).
    algorithm: str = "sha256"

    @property
    def leaf(self) -> bytes:
        """This tensor's Merkle leaf."""
        return tensor_leaf(
            self.name, self.dtype, self.shape, bytes.fromhex(self.digest), self.algorithm
        )

    def matches(self, data: bytes | bytearray | memoryview) -> bool:
        """Whether ``data`` are this tensor's signed bytes."""
        return tensor_data_digest(data, self.algorithm).hex() == self.digest


@dataclass(frozen=True)
class TensorFileManifest:
    """The tensors of one weight file, sorted by name, and their Merkle root."""

    file: str
    format: str
    tensors: tuple[TensorRecord, ...]
    #: The data-digest algorithm of every record.
    algorithm: str = "sha256"

    @property
    def root(self) -> str:
        """The Merkle root over the tensors' leaves (hex)."""
        return merkle_root([t.leaf for t in self.tensors]).hex()

    def by_name(self) -> dict[str, TensorRecord]:
        """Tensors keyed by name."""
        return {t.name: t for t in self.tensors}

    def to_json(self) -> dict[str, Any]:
        """JSON form stored in the signature."""
        out: dict[str, Any] = {"format": self.format}
        if self.algorithm != "sha256":  # the original format had no such key
            out["tensor_hash"] = self.algorithm
        return {
            **out,
            "root": self.root,
            "tensors": [[t.name, t.dtype, list(t.shape), t.digest] for t in self.tensors],
        }

    @classmethod
    def from_json(cls, file: str, data: Any) -> TensorFileManifest:
        """Parse and check the stored root (raises ``ValueError`` if inconsistent)."""
        algorithm = str(data.get("tensor_hash", "sha256"))
        if algorithm not in LEAF_TAGS:
            raise ValueError(f"tensor manifest of {file} uses an unknown hash {algorithm!r}")
        tensors = tuple(
            TensorRecord(str(n), str(d), tuple(int(x) for x in s), str(g).lower(), algorithm)
            for n, d, s, g in data["tensors"]
        )
        manifest = cls(file, str(data["format"]), tensors, algorithm)
        if manifest.root != str(data["root"]).lower():
            raise ValueError(f"tensor Merkle root of {file} does not match its tensors")
        return manifest


@dataclass(frozen=True)
class TensorChange:
    """A tensor that differs from its signed record."""

    file: str
    name: str
    #: ``changed``, ``added``, ``removed`` or ``retyped`` (dtype/shape differ).
    kind: str
    expected: str | None
    actual: str | None


def describe_weight_file(path: Path) -> tuple[str, Sequence[TensorInfo]] | None:
    """(format, tensors) of a safetensors/GGUF file, or None if it holds no tensors we read."""
    from modelseal.formats import Format
    from modelseal.formats.inventory import walk_files
    from modelseal.formats.tensors import describe_tensors

    entry = next(iter(walk_files(path)))
    if entry.format not in (Format.SAFETENSORS, Format.GGUF):
        return None
    try:
        return entry.format.value, describe_tensors(entry)
    except (FormatError, ImportError):
        return None


def tensor_spans(infos: Sequence[TensorInfo]) -> list[tuple[int, int]]:
    """The distinct (offset, offset + nbytes) byte ranges of ``infos``, sorted."""
    return sorted({(i.offset, i.offset + i.nbytes) for i in infos})


def manifest_from_digests(
    name: str,
    fmt: str,
    infos: Sequence[TensorInfo],
    digests: Mapping[tuple[int, int], bytes],
    algorithm: str = DEFAULT_TENSOR_HASH,
) -> TensorFileManifest:
    """A tensor manifest from tensor infos and the ``algorithm`` digest of each byte range."""
    _check_algorithm(algorithm)
    records = (
        TensorRecord(
            i.name,
            i.dtype,
            tuple(i.shape),
            digests[(i.offset, i.offset + i.nbytes)].hex(),
            algorithm,
        )
        for i in infos
    )
    return TensorFileManifest(name, fmt, tuple(sorted(records, key=lambda t: t.name)), algorithm)


def build_tensor_manifest(
    path: Path, name: str, algorithm: str = DEFAULT_TENSOR_HASH
) -> TensorFileManifest | None:
    """The tensor manifest of the weight file at ``path`` (its own read pass), or None."""
    from modelseal.integrity.hashing import engine_for
    from modelseal.integrity.serialization import hash_range_spans

    _check_algorithm(algorithm)
    described = describe_weight_file(path)
    if described is None:
        return None
    fmt, infos = described
    spans = tensor_spans(infos)
    if not spans:
        return TensorFileManifest(name, fmt, (), algorithm)
    engine = engine_for(algorithm)
    _, digests = hash_range_spans(
        path, spans[0][0], spans[-1][1], None, spans=spans, span_engine=engine
    )
    return manifest_from_digests(
        name, fmt, infos, dict(zip(spans, digests, strict=True)), algorithm
    )


def diff_tensors(expected: TensorFileManifest, actual: TensorFileManifest) -> list[TensorChange]:
    """Tensors added, removed, retyped or changed between two manifests of one file."""
    if expected.algorithm != actual.algorithm:
        raise ValueError("tensor manifests with different leaf hashes cannot be compared")
    want, have = expected.by_name(), actual.by_name()
    changes = []
    for name in sorted(set(want) | set(have)):
        old, new = want.get(name), have.get(name)
        if old is None:
            assert new is not None
            changes.append(TensorChange(expected.file, name, "added", None, new.digest))
        elif new is None:
            changes.append(TensorChange(expected.file, name, "removed", old.digest, None))
        elif (old.dtype, old.shape) != (new.dtype, new.shape):
            changes.append(TensorChange(expected.file, name, "retyped", old.digest, new.digest))
        elif old.digest != new.digest:
            changes.append(TensorChange(expected.file, name, "changed", old.digest, new.digest))
    return changes
