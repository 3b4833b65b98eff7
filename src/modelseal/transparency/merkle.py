"""RFC 6962 / RFC 9162 Merkle tree algorithms.

Hashes follow RFC 6962 section 2.1 (SHA-256 with domain separation):

* leaf hash ``SHA-256(0x00 || data)``,
* node hash ``SHA-256(0x01 || left || right)``,
* the Merkle Tree Hash ``MTH(D[n])`` of ``n`` leaves splits at the largest power of
  two strictly smaller than ``n``; the empty tree hashes to ``SHA-256("")``.

The proof generators (audit path ``PATH(m, D[n])`` and consistency proof
``PROOF(m, D[n])`` via ``SUBPROOF``) are written over a *range hasher*: a callable
returning ``MTH`` of the leaves ``[start, end)``. A log backed by a store of cached
complete-subtree hashes answers each call with a handful of reads, so a proof costs
``O(log n)`` hash reads instead of ``O(n)``; :class:`MemoryTree` is a plain in-memory
hasher. The verifiers are the ones of RFC 9162 sections 2.1.3.2 and 2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from modelseal.transparency.errors import LogError, LogVerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryTree",
    "RangeHasher",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "split_point",
    "verify_consistency",
    "verify_inclusion",
]

#: Size of every hash in the tree (SHA-256).
HASH_SIZE = 32
#: ``MTH({})``: the root of the empty tree.
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: ``hasher(start, end)`` returns ``MTH`` of the leaves ``[start, end)`` (``start < end``).
RangeHasher = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one log entry."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    if n < 2:
        raise ValueError(f"split_point needs n >= 2, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


def _check_sizes(index: int, size: int, what: str) -> None:
    if size < 0 or index < 0:
        raise LogError(f"{what}: negative index or size ({index}, {size})")


def inclusion_proof(index: int, size: int, hasher: RangeHasher) -> list[bytes]:
    """The audit path ``PATH(index, D[size])`` of RFC 6962 section 2.1.1.

    Raises :class:`LogError` unless ``0 <= index < size``.
    """
    _check_sizes(index, size, "inclusion proof")
    if index >= size:
        raise LogError(
            f"inclusion proof: entry {index} is not in a tree of size {size}",
            advice="ask for an entry index below the tree size",
        )
    path: list[bytes] = []
    start, end = 0, size
    # Walk down from the root; siblings are collected top-down and returned bottom-up.
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append(hasher(start + k, end))
            end = start + k
        else:
            path.append(hasher(start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, hasher: RangeHasher) -> list[bytes]:
    """The consistency proof ``PROOF(old_size, D[new_size])`` of RFC 6962 section 2.1.2.

    Empty when ``old_size`` is 0 or equal to ``new_size`` (nothing to prove). Raises
    :class:`LogError` if ``old_size > new_size``.
    """
    _check_sizes(old_size, new_size, "consistency proof")
    if old_size > new_size:
        raise LogError(f"consistency proof: old size {old_size} is larger than new size {new_size}")
    if old_size in (0, new_size):
        return []
    # SUBPROOF(m, D[start:end], b), unrolled: each step appends one hash, the
    # recursion ends with either nothing (b true, m == n) or MTH(D[m]). ``complete``
    # is the RFC's b: the old tree is still a complete subtree of the node we are in.
    proof: list[bytes] = []
    m, start, end, complete = old_size, 0, new_size, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(hasher(start, end))
            break
        k = split_point(n)
        if m <= k:
            proof.append(hasher(start + k, end))
            end = start + k
        else:
            proof.append(hasher(start, start + k))
            m -= k
            start += k
            complete = False
    # The recursion emits the innermost subproof first: reverse the outer-first order.
    proof.reverse()
    return proof


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise LogVerificationError(f"{what} is not a {HASH_SIZE}-byte SHA-256 hash")


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root an audit path leads to (RFC 9162 section 2.1.3.2, steps 1-4).

    Raises :class:`LogVerificationError` if the path has the wrong shape for
    ``index`` and ``size``.
    """
    _check_hash(leaf, "leaf hash")
    if index < 0 or index >= size:
        raise LogVerificationError(f"inclusion proof: index {index} is outside tree size {size}")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        _check_hash(p, "inclusion proof element")
        if sn == 0:
            raise LogVerificationError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise LogVerificationError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is entry ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 section 2.1.3.2. Raises :class:`LogVerificationError` on failure.
    """
    _check_hash(root, "root hash")
    if root_from_inclusion(leaf, index, size, proof) != root:
        raise LogVerificationError(
            f"inclusion proof of entry {index} does not lead to the root of tree size {size}"
        )


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree of ``new_size`` extends the tree of ``old_size``.

    RFC 9162 section 2.1.4.2, plus the trivial cases (equal sizes need equal roots and
    an empty proof; a size-0 tree is a prefix of every tree). Raises
    :class:`LogVerificationError` on failure.
    """
    _check_hash(old_root, "old root hash")
    _check_hash(new_root, "new root hash")
    for c in proof:
        _check_hash(c, "consistency proof element")
    if old_size < 0 or new_size < old_size:
        raise LogVerificationError(
            f"consistency proof: tree size went from {old_size} to {new_size} (a log only grows)"
        )
    if old_size == new_size:
        if proof:
            raise LogVerificationError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise LogVerificationError(
                f"two different root hashes for the same tree size {old_size}"
            )
        return
    if old_size == 0:
        if proof:
            raise LogVerificationError("consistency proof from the empty tree must be empty")
        if old_root != EMPTY_ROOT:
            raise LogVerificationError("the root of the empty tree is not SHA-256('')")
        return
    # 1. An empty path cannot prove anything here.
    if not proof:
        raise LogVerificationError("consistency proof is empty")
    path = list(proof)
    # 2. If old_size is a power of two, its root is itself a node of the new tree.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3.-4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        if sn == 0:
            raise LogVerificationError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 7.
    if sn != 0:
        raise LogVerificationError("consistency proof is shorter than the tree is deep")
    if fr != old_root:
        raise LogVerificationError(
            f"consistency proof does not rebuild the root of tree size {old_size}: "
            "the old history was rewritten"
        )
    if sr != new_root:
        raise LogVerificationError(
            f"consistency proof does not lead to the root of tree size {new_size}"
        )


class MemoryTree:
    """A Merkle tree over leaf hashes held in memory (for small logs and tests).

    ``range_hash`` recomputes subtrees on each call: ``O(end - start)`` hashes.
    """

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self._leaves = list(leaf_hashes)

    @classmethod
    def from_entries(cls, entries: Sequence[bytes]) -> MemoryTree:
        """A tree whose leaves are the hashes of ``entries``."""
        return cls([leaf_hash(e) for e in entries])

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash."""
        self._leaves.append(leaf)

    def __len__(self) -> int:
        return len(self._leaves)

    def range_hash(self, start: int, end: int) -> bytes:
        """``MTH`` of the leaves ``[start, end)``."""
        if end - start == 1:
            return self._leaves[start]
        k = split_point(end - start)
        return node_hash(self.range_hash(start, start + k), self.range_hash(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        """``MTH`` of the first ``size`` leaves (default: all)."""
        size = len(self._leaves) if size is None else size
        return EMPTY_ROOT if size == 0 else self.range_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """``PATH(index, D[size])``."""
        size = len(self._leaves) if size is None else size
        return inclusion_proof(index, size, self.range_hash)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """``PROOF(old_size, D[new_size])``."""
        new_size = len(self._leaves) if new_size is None else new_size
        return consistency_proof(old_size, new_size, self.range_hash)
