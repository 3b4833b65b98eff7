"""RFC 6962 / Certificate Transparency test vectors: hashes, roots, proofs, verifiers."""

from __future__ import annotations

import hashlib

import pytest

from modelseal.transparency.errors import LogError, LogVerificationError
from modelseal.transparency.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    leaf_hash,
    node_hash,
    split_point,
    verify_consistency,
    verify_inclusion,
)
from tests.samples.transparency import CT_CONSISTENCY, CT_INCLUSION, CT_LEAVES, CT_ROOTS


@pytest.fixture(scope="module")
def tree() -> MemoryTree:
    return MemoryTree.from_entries(CT_LEAVES)


def test_hash_domain_separation() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    # The CT suites' leaf hash of the empty string and node hash of two empty leaves.
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert node_hash(b"N123", b"N456") == hashlib.sha256(b"\x01N123N456").digest()
    assert leaf_hash(b"L123456") == hashlib.sha256(b"\x00L123456").digest()
    # A leaf can never pose as a node: same bytes, different hashes.
    assert leaf_hash(b"\x01" + b"a" * 64) != node_hash(b"a" * 32, b"a" * 32)


def test_split_point() -> None:
    assert [split_point(n) for n in (2, 3, 4, 5, 8, 9, 1023, 1024, 1025)] == [
        1,
        2,
        2,
        4,
        4,
        8,
        512,
        512,
        1024,
    ]
    with pytest.raises(ValueError):
        split_point(1)


@pytest.mark.parametrize("size", range(1, 9))
def test_ct_roots(tree: MemoryTree, size: int) -> None:
    assert tree.root(size).hex() == CT_ROOTS[size - 1]


def test_empty_tree_root(tree: MemoryTree) -> None:
    assert tree.root(0) == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_ct_inclusion_proofs(
    tree: MemoryTree, index: int, size: int, path: tuple[str, ...]
) -> None:
    proof = tree.inclusion_proof(index, size)
    assert [p.hex() for p in proof] == list(path)
    root = bytes.fromhex(CT_ROOTS[size - 1])
    verify_inclusion(leaf_hash(CT_LEAVES[index]), index, size, proof, root)
    # The same path does not prove another leaf.
    with pytest.raises(LogVerificationError):
        verify_inclusion(leaf_hash(b"not in the tree"), index, size, proof, root)


@pytest.mark.parametrize(("old", "new", "proof_hex"), CT_CONSISTENCY)
def test_ct_consistency_proofs(
    tree: MemoryTree, old: int, new: int, proof_hex: tuple[str, ...]
) -> None:
    proof = tree.consistency_proof(old, new)
    assert [p.hex() for p in proof] == list(proof_hex)
    old_root, new_root = bytes.fromhex(CT_ROOTS[old - 1]), bytes.fromhex(CT_ROOTS[new - 1])
    verify_consistency(old, new, old_root, new_root, proof)
    if old != new:
        # Swapped roots, or a root from another size, must not verify.
        with pytest.raises(LogVerificationError):
            verify_consistency(old, new, new_root, old_root, proof)


def test_proof_requests_out_of_range(tree: MemoryTree) -> None:
    with pytest.raises(LogError):
        tree.inclusion_proof(8, 8)
    with pytest.raises(LogError):
        tree.inclusion_proof(0, 0)
    with pytest.raises(LogError):
        tree.consistency_proof(5, 3)
    assert tree.consistency_proof(0, 8) == []
    assert tree.consistency_proof(8, 8) == []


def test_trivial_consistency_cases() -> None:
    r3 = bytes.fromhex(CT_ROOTS[2])
    r5 = bytes.fromhex(CT_ROOTS[4])
    verify_consistency(0, 5, EMPTY_ROOT, r5, [])
    verify_consistency(5, 5, r5, r5, [])
    with pytest.raises(LogVerificationError, match="same tree size"):
        verify_consistency(5, 5, r5, r3, [])
    with pytest.raises(LogVerificationError, match="must be empty"):
        verify_consistency(5, 5, r5, r5, [r3])
    with pytest.raises(LogVerificationError, match="only grows"):
        verify_consistency(5, 3, r5, r3, [r3])
    with pytest.raises(LogVerificationError, match="empty"):
        verify_consistency(3, 5, r3, r5, [])
    with pytest.raises(LogVerificationError, match="32-byte"):
        verify_consistency(3, 5, r3[:31], r5, [r3])


def test_inclusion_verifier_rejects_bad_shapes() -> None:
    root = bytes.fromhex(CT_ROOTS[7])
    leaf = leaf_hash(CT_LEAVES[0])
    proof = MemoryTree.from_entries(CT_LEAVES).inclusion_proof(0, 8)
    with pytest.raises(LogVerificationError, match="outside"):
        verify_inclusion(leaf, 8, 8, proof, root)
    with pytest.raises(LogVerificationError, match="shorter"):
        verify_inclusion(leaf, 0, 8, proof[:-1], root)
    with pytest.raises(LogVerificationError, match="longer"):
        verify_inclusion(leaf, 0, 8, [*proof, root], root)
    with pytest.raises(LogVerificationError, match="32-byte"):
        verify_inclusion(leaf, 0, 8, [proof[0][:16], *proof[1:]], root)
