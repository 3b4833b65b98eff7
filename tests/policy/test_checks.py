"""Signature, license, SBOM and lineage checks of the gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelseal.demo import build_safe_model
from modelseal.integrity import KeyPair, generate_keypair, sign
from modelseal.policy import Policy, check


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return build_safe_model(tmp_path / "tiny")


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    return generate_keypair(tmp_path / "keys" / "publisher")


def _signature_policy(**extra: object) -> Policy:
    return Policy.from_mapping({"name": "signed", "signature": {"required": True, **extra}})


def test_signed_model_passes_and_one_byte_change_fails(
    model: Path, keys: KeyPair, tmp_path: Path
) -> None:
    sign(model, key=keys.private_key)
    policy = _signature_policy()
    decision = check(model, policy, keys=[keys.public_key])
    assert decision.allowed, decision.reasons
    weights = model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    denied = check(model, policy, keys=[keys.public_key])
    assert not denied.allowed
    assert any("model.safetensors" in r.message for _, r in denied.reasons)


def test_wrong_key_missing_signature_and_no_key(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    policy = _signature_policy()
    missing = check(model, policy, keys=[keys.public_key])
    assert not missing.allowed
    assert "no signature found" in missing.reasons[0][1].message
    sign(model, key=keys.private_key)
    other = generate_keypair(tmp_path / "keys" / "other")
    wrong = check(model, policy, keys=[other.public_key])
    assert not wrong.allowed
    assert check(model, policy, keys=[other.public_key, keys.public_key]).allowed
    no_key = check(model, policy)
    assert "names no trusted key" in no_key.reasons[0][1].message


def test_policy_file_keys(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    sign(model, key=keys.private_key)
    assert check(model, _signature_policy(keys=[str(keys.public_key)])).allowed


def test_license_rules(model: Path) -> None:
    assert check(model, Policy.from_mapping({"license": {"allow": ["apache-2.0"]}})).allowed
    denied = check(model, Policy.from_mapping({"license": {"deny": ["Apache-2.0"]}}))
    assert not denied.allowed
    assert "denied" in denied.reasons[0][1].message
    outside = check(model, Policy.from_mapping({"license": {"allow": ["MIT"]}}))
    assert "allow list" in outside.reasons[0][1].message
    (model / "README.md").write_text("# no card\n")
    unlicensed = check(model, Policy.from_mapping({"license": {"require": True}}))
    assert not unlicensed.allowed
    assert "no license" in unlicensed.reasons[0][1].message


def test_sbom_fields_and_lineage(model: Path) -> None:
    fields = Policy.from_mapping(
        {"sbom": {"required_fields": ["license", "base_model", "datasets", "architecture"]}}
    )
    assert check(model, fields).allowed
    lineage = Policy.from_mapping({"lineage": {"allowed_base_models": ["modelseal/*"]}})
    assert check(model, lineage).allowed
    strict_lineage = Policy.from_mapping({"lineage": {"allowed_base_models": ["meta-llama/*"]}})
    denied = check(model, strict_lineage)
    assert not denied.allowed
    assert "modelseal/tiny-base" in denied.reasons[0][1].message
    (model / "README.md").write_text("---\nlicense: mit\n---\n")
    missing = check(model, fields)
    assert {r.message for _, r in missing.reasons} == {
        "the SBOM has no base model",
        "the SBOM has no datasets",
    }


def test_required_origin_denies_a_model_that_was_not_pulled(model: Path) -> None:
    policy = Policy.from_mapping({"registry": {"required_origin": "http://127.0.0.1:8600/"}})
    decision = check(model, policy)
    assert not decision.allowed
    assert decision.reasons[0][1].message == (
        "not pulled from a registry (required: http://127.0.0.1:8600)"
    )
