"""Per-tensor manifests: the fixed leaf definition, verify --tensors, lazy verified reads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import blake3
import numpy as np
import pytest

from modelseal.errors import UsageError
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
from modelseal.integrity.tensors import TensorFileManifest, merkle_root
from tests.samples.models import write_safetensors

SHARD1 = "model-00001-of-00002.safetensors"


def test_leaf_definition_is_exactly_the_documented_one() -> None:
    data = np.arange(6, dtype=np.float32).tobytes()
    digest = tensor_data_digest(data)  # the default for new manifests: BLAKE3-256
    assert digest == blake3.blake3(data).digest()
    expected = hashlib.sha256(
        b"modelseal.tensor.v2\x00blake3\x00w\x00float32\x002,3\x00" + digest
    ).digest()
    assert tensor_leaf("w", "float32", (2, 3), digest) == expected
    assert tensor_leaf("w", "float32", (3, 2), digest) != expected


def test_original_sha256_leaf_definition_is_unchanged() -> None:
    data = np.arange(6, dtype=np.float32).tobytes()
    digest = tensor_data_digest(data, "sha256")
    assert digest == hashlib.sha256(data).digest()
    expected = hashlib.sha256(b"modelseal.tensor.v1\x00w\x00float32\x002,3\x00" + digest).digest()
    assert tensor_leaf("w", "float32", (2, 3), digest, "sha256") == expected
    # The tag names the algorithm: the same 32 bytes never make the same leaf under both.
    assert tensor_leaf("w", "float32", (2, 3), digest, "blake3") != expected


def test_unknown_leaf_hash_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown tensor hash"):
        tensor_leaf("w", "float32", (1,), b"\x00" * 32, "md5")
    with pytest.raises(ValueError, match="unknown hash"):
        TensorFileManifest.from_json(
            "f", {"format": "safetensors", "tensor_hash": "md5", "root": "00", "tensors": []}
        )


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
    assert manifests[SHARD1].algorithm == weight.algorithm == "blake3"
    assert weight.digest == blake3.blake3(array.tobytes()).hexdigest()


def test_sha256_leaves_on_request(model: Path, tmp_path: Path, ec_keys: KeyPair) -> None:
    sig = tmp_path / "m.sig"
    sign(model, key=ec_keys.private_key, output=sig, tensor_hash="sha256")
    weight = read_tensor_manifest(sig, key=ec_keys.public_key)[SHARD1].by_name()[
        "layers.0.attn.weight"
    ]
    data = open_verified(model / SHARD1, signature=sig, key=ec_keys.public_key).read_bytes(
        weight.name
    )
    assert (weight.algorithm, weight.digest) == ("sha256", hashlib.sha256(data).hexdigest())


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
        assert blake3.blake3(data).hexdigest() == record.digest


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
    assert records["token_embd.weight"].digest == blake3.blake3(embd).hexdigest()
    reader = open_verified(root / "tiny.gguf", signature=sig, key=ec_keys.public_key)
    assert reader.read_bytes("token_embd.weight") == embd


DATA = Path(__file__).parent / "data"


def _old_model(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A copy of the model signed before BLAKE3 leaves existed (sha256 leaves, no tensor_hash)."""
    import shutil

    model = tmp_path / "v1-model"
    shutil.copytree(DATA / "v1-model", model)
    return model, DATA / "v1-model.sig", DATA / "v1-model.pub"


def test_signature_with_sha256_leaves_still_verifies(tmp_path: Path) -> None:
    model, sig, pub = _old_model(tmp_path)
    assert b"tensor_hash" not in sig.read_bytes()  # really the original format
    assert verify(model, key=pub, signature=sig, tensors=True).ok
    manifest = read_tensor_manifest(sig, key=pub)[SHARD1]
    assert manifest.algorithm == "sha256"
    reader = open_verified(model / SHARD1, signature=sig, key=pub)
    data = reader.read_bytes("layers.0.attn.weight")
    assert manifest.by_name()["layers.0.attn.weight"].digest == hashlib.sha256(data).hexdigest()
    assert set(load_safetensors(model / SHARD1, signature=sig, key=pub)) == set(reader)


def test_sha256_leaf_signature_still_names_a_changed_tensor(tmp_path: Path) -> None:
    model, sig, pub = _old_model(tmp_path)
    _flip_tensor_byte(model / SHARD1, "layers.0.mlp.weight")
    result = verify(model, key=pub, signature=sig, tensors=True)
    assert not result.ok
    assert [(c.name, c.kind) for c in result.tensor_changes] == [("layers.0.mlp.weight", "changed")]
    reader = open_verified(model / SHARD1, signature=sig, key=pub)
    reader.read_bytes("layers.0.attn.weight")  # the others still read
    with pytest.raises(TensorVerificationError, match=r"layers\.0\.mlp\.weight"):
        reader.read_bytes("layers.0.mlp.weight")


def test_resigning_from_an_old_signature_keeps_each_files_leaf_hash(
    tmp_path: Path, ec_keys: KeyPair
) -> None:
    first, second = tmp_path / "old.sig", tmp_path / "new.sig"
    model, _, _ = _old_model(tmp_path)
    sign(model, key=ec_keys.private_key, output=first, tensor_hash="sha256")
    _flip_tensor_byte(model / SHARD1, "layers.0.mlp.weight")
    sign(model, key=ec_keys.private_key, output=second, previous=first)
    manifests = read_tensor_manifest(second, key=ec_keys.public_key)
    # The unchanged shard reuses its signed sha256 manifest; the re-hashed one gets blake3.
    assert manifests[SHARD1].algorithm == "blake3"
    assert manifests["model-00002-of-00002.safetensors"].algorithm == "sha256"
    assert verify(model, key=ec_keys.public_key, signature=second, tensors=True).ok
    for name, manifest in manifests.items():
        reader = open_verified(model / name, signature=second, key=ec_keys.public_key)
        assert all(reader.read_bytes(t.name) is not None for t in manifest.tensors)
