"""Every proof of every tree of 1..64 leaves against a naive RFC 6962 model; mutations fail."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelseal.transparency.errors import LogVerificationError
from modelseal.transparency.log import TransparencyLog
from modelseal.transparency.merkle import MemoryTree, verify_consistency, verify_inclusion
from tests.samples.transparency import mixed_entries

MAX = 64


# -- the naive model: RFC 6962 section 2.1 transcribed literally, over entry data ---------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: Sequence[bytes]) -> bytes:
    if len(d) == 0:
        return _h(b"")
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = _k(len(d))
    return _h(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return subproof(m, d, True)


DATA = tuple(f"entry-{i}".encode() for i in range(MAX))


@cache
def naive_root(n: int) -> bytes:
    return mth(DATA[:n])


@pytest.fixture(scope="module")
def memory_tree() -> MemoryTree:
    return MemoryTree.from_entries(DATA)


# -- mutations a forger might try ------------------------------------------------------


def _flip(b: bytes, bit: int = 0) -> bytes:
    return bytes([b[0] ^ (1 << bit)]) + b[1:]


def _mutations(p: list[bytes]) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    for i in range(len(p)):
        out.append([*p[:i], _flip(p[i]), *p[i + 1 :]])
        out.append(p[:i] + p[i + 1 :])  # dropped element
    if p:
        out.append([*p, p[-1]])  # extra element
        out.append([p[0], *p])
        if len(p) > 1:
            out.append(list(reversed(p)))
    out.append([*p, _h(b"extra")])
    return [m for m in out if m != p]


def _rejects(check: Callable[..., None], *args: Any) -> bool:
    try:
        check(*args)
    except LogVerificationError:
        return True
    return False


def test_roots_match_model(memory_tree: MemoryTree) -> None:
    for n in range(MAX + 1):
        assert memory_tree.root(n) == naive_root(n), n


def test_every_inclusion_proof(memory_tree: MemoryTree) -> None:
    checked = 0
    for n in range(1, MAX + 1):
        root = naive_root(n)
        for m in range(n):
            expected = path(m, DATA[:n])
            got = memory_tree.inclusion_proof(m, n)
            assert got == expected, (m, n)
            leaf = memory_tree.range_hash(m, m + 1)
            verify_inclusion(leaf, m, n, got, root)
            for bad in _mutations(got):
                assert _rejects(verify_inclusion, leaf, m, n, bad, root), (m, n, bad)
            # Right path, wrong claims.
            assert _rejects(verify_inclusion, _flip(leaf), m, n, got, root)
            assert _rejects(verify_inclusion, leaf, m, n, got, _flip(root))
            if n > 1:
                other = (m + 1) % n
                assert _rejects(verify_inclusion, leaf, other, n, got, root)
            if m < n - 1:
                assert _rejects(verify_inclusion, leaf, m, n - 1, got, naive_root(n - 1))
            checked += 1
    assert checked == MAX * (MAX + 1) // 2


def test_every_consistency_proof(memory_tree: MemoryTree) -> None:
    for n in range(1, MAX + 1):
        new_root = naive_root(n)
        for m in range(1, n + 1):
            expected = proof(m, DATA[:n]) if m < n else []
            got = memory_tree.consistency_proof(m, n)
            assert got == expected, (m, n)
            old_root = naive_root(m)
            verify_consistency(m, n, old_root, new_root, got)
            for bad in _mutations(got):
                assert _rejects(verify_consistency, m, n, old_root, new_root, bad), (
                    m,
                    n,
                    bad,
                )
            if m < n:
                # A forked history: another old root, or a new root over other data.
                assert _rejects(verify_consistency, m, n, _flip(old_root), new_root, got)
                assert _rejects(verify_consistency, m, n, old_root, _flip(new_root), got)
                # The proof for one pair of sizes does not prove another pair.
                if m > 1:
                    assert _rejects(verify_consistency, m - 1, n, naive_root(m - 1), new_root, got)
                if m + 1 < n:
                    assert _rejects(verify_consistency, m + 1, n, naive_root(m + 1), new_root, got)


def test_forked_tail_is_not_consistent() -> None:
    """A log that rewrote its last entry cannot prove it extends the old one."""
    for n in range(2, 33):
        honest = MemoryTree.from_entries(DATA[:n])
        forked = MemoryTree.from_entries([*DATA[: n - 1], b"rewritten", *DATA[n : n + 5]])
        for new in range(n, n + 6):
            p = forked.consistency_proof(n, new)
            assert _rejects(verify_consistency, n, new, honest.root(), forked.root(new), p)


def test_log_store_proofs_match_model() -> None:
    """The cached-subtree log gives the same roots and proofs as the naive model."""
    entries = [e.to_bytes() for e in mixed_entries(MAX)]
    log = TransparencyLog.in_memory(entries)
    naive = MemoryTree.from_entries(entries)
    for n in range(MAX + 1):
        assert log.root(n) == mth(entries[:n])
        for m in range(n):
            assert log.inclusion_proof(m, n) == naive.inclusion_proof(m, n)
        for m in range(n + 1):
            assert log.consistency_proof(m, n) == naive.consistency_proof(m, n)


@settings(max_examples=60, deadline=None)
@given(
    leaves=st.lists(st.binary(max_size=12), min_size=1, max_size=300),
    data=st.data(),
)
def test_property_proofs_verify(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MemoryTree.from_entries(leaves)
    n = len(leaves)
    size = data.draw(st.integers(1, n), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    old = data.draw(st.integers(1, size), label="old")
    verify_inclusion(
        tree.range_hash(index, index + 1),
        index,
        size,
        tree.inclusion_proof(index, size),
        tree.root(size),
    )
    verify_consistency(
        old, size, tree.root(old), tree.root(size), tree.consistency_proof(old, size)
    )


@settings(max_examples=60, deadline=None)
@given(
    leaves=st.lists(st.binary(max_size=8), min_size=2, max_size=200, unique=True),
    data=st.data(),
)
def test_property_changed_prefix_is_detected(leaves: list[bytes], data: st.DataObject) -> None:
    """Changing any entry below the old size breaks every consistency proof to a larger size."""
    n = len(leaves)
    old = data.draw(st.integers(1, n - 1), label="old")
    victim = data.draw(st.integers(0, old - 1), label="victim")
    honest = MemoryTree.from_entries(leaves[:old])
    rewritten = list(leaves)
    rewritten[victim] = rewritten[victim] + b"!"
    forked = MemoryTree.from_entries(rewritten)
    p = forked.consistency_proof(old, n)
    assert _rejects(verify_consistency, old, n, honest.root(), forked.root(), p)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5000), st.data())
def test_property_proof_lengths_are_logarithmic(size: int, data: st.DataObject) -> None:
    """Proof sizes are bounded by ceil(log2(size)) (+1 for consistency), like the RFC's."""
    tree = MemoryTree([i.to_bytes(32, "big") for i in range(size)])
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    bound = (size - 1).bit_length()
    assert len(tree.inclusion_proof(index, size)) <= bound
    assert len(tree.consistency_proof(old, size)) <= bound + 1
