"""Per-tensor manifests: the fixed leaf definition, verify --tensors, lazy verified reads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from modelseal.integrity import (
    TensorVerificationError,
    load_safetensors,
    open_verified,
    read_tensor_manifest,
    sign,
    tensor_data_digest,
    tensor_leaf,
    verify,
)
from modelseal.integrity.signing.keys import KeyPair
from modelseal.integrity.tensors import merkle_root
from tests.samples.models import write_safetensors

SHARD1 = "model-00001-of-00002.safetensors"


def test_leaf_definition_is_exactly_the_documented_one() -> None:
    data = np.arange(6, dtype=np.float32).tobytes()
    digest = tensor_data_digest(data)
    assert digest == hashlib.sha256(data).digest()
    expected = hashlib.sha256(b"modelseal.tensor.v1\x00w\x00float32\x002,3\x00" + digest).digest()
    assert tensor_leaf("w", "float32", (2, 3), digest) == expected
    assert tensor_leaf("w", "float32", (3, 2), digest) != expected


def test_merkle_root_is_rfc6962_shaped() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    node = lambda a, b: hashlib.sha256(b"\x01" + a + b).digest()  # noqa: E731
    assert merkle_root(leaves) == node(node(leaves[0], leaves[1]), leaves[2])
    assert merkle_root(leaves[:1]) == leaves[0]
    assert merkle_root([]) == hashlib.sha256(b"").digest()


def test_signature_commits_to_every_tensor(model: Path, tmp_path: Path, ec_keys: KeyPair) -> None:
    sig = tmp_path / "m.sig"
    result = sign(model, key=ec_keys.private_key, output=sig)
    assert result.tensor_files == (SHARD1, "model-00002-of-00002.safetensors")
    manifests = read_tensor_manifest(sig, key=ec_keys.public_key)
    records = manifests[SHARD1].by_name()
    assert set(records) == {"layers.0.attn.bias", "layers.0.attn.weight", "layers.0.mlp.weight"}
    weight = records["layers.0.attn.weight"]
    assert (weight.dtype, weight.shape) == ("float32", (16, 8))
    array = load_safetensors(model / SHARD1, signature=sig, key=ec_keys.public_key)[
        "layers.0.attn.weight"
    ]
    assert weight.digest == hashlib.sha256(array.tobytes()).hexdigest()


def _flip_tensor_byte(path: Path, tensor: str) -> None:
    from modelseal.formats.inventory import walk_files
    from modelseal.formats.tensors import describe_tensors

    info = {t.name: t for t in describe_tensors(next(iter(walk_files(path))))}[tensor]
    with open(path, "r+b") as handle:
        handle.seek(info.offset + 1)
        byte = handle.read(1)
        handle.seek(info.offset + 1)
        handle.write(bytes([byte[0] ^ 0x40]))


def test_verify_tensors_names_the_changed_tensor(
    model: Path, tmp_path: Path, ec_keys: KeyPair
) -> None:
    sig = tmp_path / "m.sig"
    sign(model, key=ec_keys.private_key, output=sig)
    _flip_tensor_byte(model / SHARD1, "layers.0.mlp.weight")
    result = verify(model, key=ec_keys.public_key, signature=sig, tensors=True)
    assert not result.ok
    assert [(t.file, t.name, t.kind) for t in result.tensor_changes] == [
        (SHARD1, "layers.0.mlp.weight", "changed")
    ]


def test_lazy_reader_verifies_each_tensor_on_read(
    model: Path, tmp_path: Path, ec_keys: KeyPair
) -> None:
    sig = tmp_path / "m.sig"
    sign(model, key=ec_keys.private_key, output=sig)
    _flip_tensor_byte(model / SHARD1, "layers.0.mlp.weight")
    reader = open_verified(model / SHARD1, signature=sig, key=ec_keys.public_key)
    assert reader["layers.0.attn.bias"].shape == (8,)  # untouched tensor reads fine
    with pytest.raises(TensorVerificationError, match=r"layers\.0\.mlp\.weight"):
        reader["layers.0.mlp.weight"]


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs /proc/self/io")
def test_lazy_verification_reads_only_that_tensor(tmp_path: Path, ec_keys: KeyPair) -> None:
    root = tmp_path / "big"
    big = np.ones((4 * 1024 * 1024,), dtype=np.float32)  # 16 MiB
    write_safetensors(root / "w.safetensors", {"big": big, "small": np.arange(4, dtype=np.int64)})
    sig = tmp_path / "big.sig"
    sign(root, key=ec_keys.private_key, output=sig)
    reader = open_verified(root / "w.safetensors", signature=sig, key=ec_keys.public_key)
    before = _rchar()
    assert reader["small"].tolist() == [0, 1, 2, 3]
    assert _rchar() - before < 64 * 1024


def test_header_retype_is_refused_at_open(model: Path, tmp_path: Path, ec_keys: KeyPair) -> None:
    sig = tmp_path / "m.sig"
    sign(model, key=ec_keys.private_key, output=sig)
    rng = np.random.default_rng(0)
    write_safetensors(
        model / SHARD1,
        {
            "layers.0.attn.weight": rng.standard_normal((8, 16)).astype(np.float32),
            "layers.0.attn.bias": rng.standard_normal(8).astype(np.float32),
            "layers.0.mlp.weight": rng.standard_normal((8, 16)).astype(np.float16),
        },
    )
    with pytest.raises(TensorVerificationError, match="signed as float32"):
        open_verified(model / SHARD1, signature=sig, key=ec_keys.public_key)


def test_tensor_digests_same_whatever_the_sharding(
    model: Path, tmp_path: Path, ec_keys: KeyPair
) -> None:
    whole, sharded = tmp_path / "files.sig", tmp_path / "shards.sig"
    sign(model, key=ec_keys.private_key, output=whole)
    sign(model, key=ec_keys.private_key, output=sharded, method="shards", shard_size=100)
    a = read_tensor_manifest(whole, key=ec_keys.public_key)
    b = read_tensor_manifest(sharded, key=ec_keys.public_key)
    assert a == b and a[SHARD1].root == b[SHARD1].root
    for record in a[SHARD1].tensors:  # independent check of every tensor digest
        data = open_verified(model / SHARD1, signature=whole, key=ec_keys.public_key).read_bytes(
            record.name
        )
        assert hashlib.sha256(data).hexdigest() == record.digest


def test_gguf_tensors_are_in_the_manifest(tmp_path: Path, ec_keys: KeyPair) -> None:
    pytest.importorskip("gguf")
    from tests.samples.gguf import write_gguf

    root = tmp_path / "llm"
    root.mkdir()
    write_gguf(root / "tiny.gguf")
    sig = tmp_path / "llm.sig"
    assert sign(root, key=ec_keys.private_key, output=sig).tensor_files == ("tiny.gguf",)
    records = read_tensor_manifest(sig, key=ec_keys.public_key)["tiny.gguf"].by_name()
    assert set(records) == {"token_embd.weight", "output_norm.weight", "blk.0.attn_q.weight"}
    embd = np.arange(32, dtype=np.float32).tobytes()
    assert records["token_embd.weight"].digest == hashlib.sha256(embd).hexdigest()
    reader = open_verified(root / "tiny.gguf", signature=sig, key=ec_keys.public_key)
    assert reader.read_bytes("token_embd.weight") == embd
