"""Interoperability with the real reference, model_signing 1.1.1, in both directions."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelseal.integrity import sign, verify
from modelseal.integrity.signing.keys import KeyPair

model_signing = pytest.importorskip("model_signing")

_CLI = Path(sys.executable).with_name("model_signing")


def _reference_sign(model: Path, keys: KeyPair, out: Path, method: str) -> None:
    from model_signing import hashing, signing

    hashing_config = hashing.Config()
    if method == "shards":
        hashing_config = hashing_config.use_shard_serialization(shard_size=300)
    signing.Config().use_elliptic_key_signer(private_key=keys.private_key).set_hashing_config(
        hashing_config
    ).sign(model, out)


def _reference_verify(model: Path, keys: KeyPair, sig: Path) -> None:
    from model_signing import verifying

    verifying.Config().use_elliptic_key_verifier(public_key=keys.public_key).verify(model, sig)


@pytest.mark.parametrize("method", ["files", "shards"])
def test_we_verify_reference_signatures(
    model: Path, tmp_path: Path, ec_keys: KeyPair, method: str
) -> None:
    sig = tmp_path / "ref.sig"
    _reference_sign(model, ec_keys, sig, method)
    result = verify(model, key=ec_keys.public_key, signature=sig)
    assert result.ok, result.reasons
    assert result.method == method
    (model / "config.json").write_text("{}")
    tampered = verify(model, key=ec_keys.public_key, signature=sig)
    assert not tampered.ok
    assert [c.path for c in tampered.changed] == ["config.json"]


@pytest.mark.parametrize("method", ["files", "shards"])
def test_reference_verifies_our_signatures(
    model: Path, tmp_path: Path, ec_keys: KeyPair, method: str
) -> None:
    sig = tmp_path / "ours.sig"
    sign(model, key=ec_keys.private_key, output=sig, method=method, shard_size=300)
    _reference_verify(model, ec_keys, sig)
    (model / "README.md").write_text("changed")
    with pytest.raises(ValueError, match=r"README\.md"):
        _reference_verify(model, ec_keys, sig)


def test_reference_cli_verifies_ours_and_same_root_digest(
    model: Path, tmp_path: Path, ec_keys: KeyPair
) -> None:
    ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
    sign(model, key=ec_keys.private_key, output=ours)
    done = subprocess.run(
        [str(_CLI), "verify", "key", str(model), "--public_key", str(ec_keys.public_key),
         "--signature", str(ours)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    _reference_sign(model, ec_keys, theirs, "files")

    def statement(path: Path) -> dict:
        bundle = json.loads(path.read_text())
        return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))

    a, b = statement(ours), statement(theirs)
    assert a["subject"] == b["subject"]  # same model name and root digest
    assert a["predicate"]["resources"] == b["predicate"]["resources"]
    assert a["predicateType"] == b["predicateType"] == "https://model_signing/signature/v1.0"
    assert sorted(a["predicate"]["serialization"]["ignore_paths"]) == sorted(
        b["predicate"]["serialization"]["ignore_paths"]
    )
    bundle_a, bundle_b = json.loads(ours.read_text()), json.loads(theirs.read_text())
    assert list(bundle_a) == list(bundle_b)
    assert bundle_a["verificationMaterial"] == bundle_b["verificationMaterial"]


def test_signature_inside_model_dir_is_ignored_by_both(model: Path, ec_keys: KeyPair) -> None:
    sig = model / "model.sig"
    sign(model, key=ec_keys.private_key, output=sig)
    _reference_verify(model, ec_keys, sig)
    result = verify(model, key=ec_keys.public_key, signature=sig)
    assert result.ok, result.reasons
    assert "model.sig" not in [u.path for u in result.unsigned]


def test_single_file_model_both_ways(model: Path, tmp_path: Path, ec_keys: KeyPair) -> None:
    from modelseal.integrity import open_verified

    weights = model / "model-00001-of-00002.safetensors"
    ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
    sign(weights, key=ec_keys.private_key, output=ours)
    _reference_verify(weights, ec_keys, ours)
    _reference_sign(weights, ec_keys, theirs, "files")
    assert verify(weights, key=ec_keys.public_key, signature=theirs).ok
    reader = open_verified(weights, signature=ours, key=ec_keys.public_key)
    assert reader["layers.0.attn.bias"].shape == (8,)


def test_other_hashes_interoperate(model: Path, tmp_path: Path, ec_keys: KeyPair) -> None:
    from model_signing import hashing, signing

    for algorithm in ("blake2", "blake3"):  # model_signing's names
        theirs = tmp_path / f"ref-{algorithm}.sig"
        config = hashing.Config().use_file_serialization(hashing_algorithm=algorithm)
        signing.Config().use_elliptic_key_signer(
            private_key=ec_keys.private_key
        ).set_hashing_config(config).sign(model, theirs)
        assert verify(model, key=ec_keys.public_key, signature=theirs).ok
    ours = tmp_path / "ours-blake3.sig"
    assert sign(model, key=ec_keys.private_key, output=ours, hash_algorithm="blake3").interoperable
    _reference_verify(model, ec_keys, ours)
