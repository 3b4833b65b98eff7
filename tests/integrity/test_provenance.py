"""Training provenance: signed, bound to the weights, matched against expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelseal.errors import UsageError
from modelseal.integrity import attest, sign, verify
from modelseal.integrity.signing.keys import KeyPair

BASE = "meta/llama-3-8b@sha256:" + "ab" * 32
DATA = "squad@" + "cd" * 32


@pytest.fixture
def attested(model: Path, tmp_path: Path, ec_keys: KeyPair) -> tuple[Path, Path]:
    sig = tmp_path / "m.sig"
    sign(model, key=ec_keys.private_key, output=sig)
    prov = tmp_path / "m.provenance.sig"
    result = attest(
        model,
        key=ec_keys.private_key,
        output=prov,
        base_model=BASE,
        datasets=[DATA],
        code="https://github.com/acme/train@0123456789abcdef0123456789abcdef01234567",
        params=["lr=3e-4", "epochs=3"],
    )
    assert result.provenance.parameters == {"lr": "3e-4", "epochs": "3"}
    return sig, prov


def test_provenance_verifies_and_matches(model: Path, attested, ec_keys: KeyPair) -> None:  # type: ignore[no-untyped-def]
    sig, prov = attested
    result = verify(
        model,
        key=ec_keys.public_key,
        signature=sig,
        provenance=prov,
        expect_base_model="meta/llama-3-8b",
        expect_dataset=["squad"],
    )
    assert result.ok, result.reasons
    assert result.provenance is not None
    assert result.provenance.base_models == ("meta/llama-3-8b@sha256:" + "ab" * 32,)
    assert ("lr", "3e-4") in result.provenance.parameters


def test_wrong_expectations_fail(model: Path, attested, ec_keys: KeyPair) -> None:  # type: ignore[no-untyped-def]
    sig, prov = attested
    result = verify(
        model,
        key=ec_keys.public_key,
        signature=sig,
        provenance=prov,
        expect_base_model="mistral/7b",
        expect_dataset=["squad@" + "00" * 32],
    )
    assert not result.ok
    assert any("base model" in r for r in result.reasons)
    assert any("dataset squad@" in r for r in result.reasons)


def test_provenance_of_other_weights_fails(
    model: Path,
    tmp_path: Path,
    attested,
    ec_keys: KeyPair,  # type: ignore[no-untyped-def]
) -> None:
    sig, prov = attested
    (model / "config.json").write_text('{"retrained": 1}')
    sign(model, key=ec_keys.private_key, output=sig)  # a valid new signature...
    result = verify(model, key=ec_keys.public_key, signature=sig, provenance=prov)
    assert not result.ok  # ...but the provenance describes the old weights
    assert any("binds other weights" in r for r in result.reasons)


def test_provenance_signed_by_other_key_fails(
    model: Path, tmp_path: Path, ec_keys: KeyPair, other_keys: KeyPair
) -> None:
    sig = tmp_path / "m.sig"
    sign(model, key=ec_keys.private_key, output=sig)
    prov = tmp_path / "p.sig"
    attest(model, key=other_keys.private_key, output=prov, base_model=BASE)
    result = verify(model, key=ec_keys.public_key, signature=sig, provenance=prov)
    assert not result.ok and any("wrong key" in r for r in result.reasons)


def test_bad_reference_is_usage_error(model: Path, tmp_path: Path, ec_keys: KeyPair) -> None:
    with pytest.raises(UsageError):
        attest(model, key=ec_keys.private_key, output=tmp_path / "p", base_model="no-digest")
