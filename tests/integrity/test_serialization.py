"""Serialization: incremental re-signing and files that change while hashed."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from modelseal.errors import SignatureError
from modelseal.integrity import FileChangedError, sign, verify
from modelseal.integrity.hashing import engine_for
from modelseal.integrity.serialization import FileStat, Serialization, hash_range, list_model
from modelseal.integrity.signing.keys import KeyPair

SHARD1 = "model-00001-of-00002.safetensors"


@pytest.mark.parametrize("method", ["files", "shards"])
def test_incremental_resign_reuses_only_unchanged(
    model: Path, tmp_path: Path, ec_keys: KeyPair, method: str
) -> None:
    old = tmp_path / "old.sig"
    full = sign(model, key=ec_keys.private_key, output=old, method=method, shard_size=256)
    assert full.reused == ()
    target = model / SHARD1
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    new = tmp_path / "new.sig"
    inc = sign(
        model, key=ec_keys.private_key, output=new, method=method, shard_size=256, previous=old
    )
    assert SHARD1 not in inc.reused
    assert len(inc.reused) == full.files - 1
    assert inc.bytes_hashed == target.stat().st_size
    assert verify(model, key=ec_keys.public_key, signature=new).ok
    fresh = sign(model, key=ec_keys.private_key, output=tmp_path / "f.sig", method=method,
                 shard_size=256)  # fmt: skip
    assert fresh.root_digest == inc.root_digest


def test_change_hidden_behind_same_mtime_is_caught_by_full_verify(
    model: Path, tmp_path: Path, ec_keys: KeyPair
) -> None:
    old = tmp_path / "old.sig"
    sign(model, key=ec_keys.private_key, output=old)
    target = model / "config.json"
    before = target.stat()
    with open(target, "r+b") as handle:  # same size, same inode
        handle.write(b"[")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    new = tmp_path / "new.sig"
    inc = sign(model, key=ec_keys.private_key, output=new, previous=old)
    assert "config.json" in inc.reused  # stats say unchanged: digest reused, as documented
    result = verify(model, key=ec_keys.public_key, signature=new)
    assert not result.ok
    assert [c.path for c in result.changed] == ["config.json"]


def test_previous_signed_by_another_key_is_refused(
    model: Path, tmp_path: Path, ec_keys: KeyPair, other_keys: KeyPair
) -> None:
    old = tmp_path / "old.sig"
    sign(model, key=other_keys.private_key, output=old)
    with pytest.raises(SignatureError, match="cannot reuse"):
        sign(model, key=ec_keys.private_key, output=tmp_path / "n.sig", previous=old)


def test_file_changing_while_hashed_fails_signing(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    target.write_bytes(os.urandom(9 * 1024 * 1024))
    stat = FileStat.of(target.stat())
    calls = []

    def grow(count: int) -> None:
        if not calls:
            with open(target, "ab") as handle:
                handle.write(b"more")
        calls.append(count)

    with pytest.raises(FileChangedError, match="changed while it was being hashed"):
        hash_range(target, 0, stat.size, engine_for("sha256"), expect=stat, progress=grow)


def test_file_changing_during_sign_leaves_no_signature(
    model: Path, tmp_path: Path, ec_keys: KeyPair
) -> None:
    out = tmp_path / "m.sig"
    done = []

    def touch(done_bytes: int, total: int) -> None:
        if not done:  # first progress report: the small files are still queued
            done.append(1)
            for name in ("README.md", "config.json", "tokenizer.json"):
                with open(model / name, "ab") as handle:
                    handle.write(b"x")

    with pytest.raises(FileChangedError):
        sign(model, key=ec_keys.private_key, output=out, progress=touch)
    assert not out.exists()


def test_listing_orders_and_ignores_like_model_signing(tmp_path: Path) -> None:
    root = tmp_path / "m"
    for name in ["a-c", "a/b", ".git/config", "x.tmp", "keep.txt"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    listing = list_model(root, ignore_paths=[".git"], ignore_globs=["*.tmp"])
    assert [f.name for f in listing.files] == ["a/b", "a-c", "keep.txt"]  # by path components
    assert listing.ignored == (".git/config", "x.tmp")


def test_serialization_parameters_round_trip() -> None:
    params = Serialization("shards", "sha256", 1000, False, (".git",))
    assert Serialization.from_json(params.to_json()) == params
    assert Serialization.from_json({**params.to_json(), "shard_size": 1000.0}) == params
    with pytest.raises(SignatureError):
        Serialization.from_json({"method": "bogus", "hash_type": "sha256"})


def test_blake3_and_blake2b_sign_and_verify(model: Path, tmp_path: Path, ec_keys: KeyPair) -> None:
    for algorithm in ("blake3", "blake2b"):
        sig = tmp_path / f"{algorithm}.sig"
        result = sign(model, key=ec_keys.private_key, output=sig, hash_algorithm=algorithm)
        assert result.hash_algorithm == algorithm
        assert verify(model, key=ec_keys.public_key, signature=sig).ok


@pytest.mark.parametrize(
    ("span_hash", "spare"),
    [
        ("sha256", None),  # the default: a helper thread when there are two cores
        ("blake3", lambda: False),  # every core busy: the reader hashes the spans itself
        ("blake3", itertools.cycle([True, False, False, True]).__next__),  # switching mid-file
    ],
)
def test_span_digests_match_across_chunk_boundaries(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    span_hash: str,
    spare: Callable[[], bool] | None,
) -> None:
    import hashlib
    import random

    from modelseal.integrity import serialization

    monkeypatch.setattr(serialization, "_CHUNK", 7)  # spans straddle many reads
    rng = random.Random(4)
    data = bytes(rng.randrange(256) for _ in range(500))
    target = tmp_path / "f.bin"
    target.write_bytes(data)
    cuts = sorted(rng.sample(range(1, 500), 30))
    spans = [(a, b) for a, b in zip([0, *cuts], [*cuts, 500], strict=True)][::2]
    spans.append((500, 500))  # an empty tensor at the very end
    engine = engine_for(span_hash)
    digest, digests = serialization.hash_range_spans(
        target, 0, 500, engine_for("sha256"), spans=spans, span_engine=engine, spare_core=spare
    )
    assert digest == hashlib.sha256(data).digest()
    assert digests == [engine.digest(data[a:b]).value for a, b in spans]
    only, again = serialization.hash_range_spans(
        target, 0, 500, None, spans=spans, span_engine=engine
    )
    assert (only, again) == (b"", digests)


def test_file_replaced_by_fifo_does_not_hang(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"data")
    stat = FileStat.of(target.stat())
    target.unlink()
    os.mkfifo(target)
    with pytest.raises(FileChangedError, match="no longer a regular file"):
        hash_range(target, 0, 4, engine_for("sha256"), expect=stat)
