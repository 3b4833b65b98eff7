"""Key types, passphrases and certificate mode."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from modelseal.errors import SignatureError, UsageError
from modelseal.integrity import generate_keypair, sign, verify
from modelseal.integrity.signing.keys import PASSPHRASE_ENV


@pytest.mark.parametrize("key_type", ["ec-p384", "ec-p521", "ed25519", "rsa-pss"])
def test_other_key_types_round_trip(model: Path, tmp_path: Path, key_type: str) -> None:
    keys = generate_keypair(tmp_path / key_type, key_type=key_type)
    result = sign(model, key=keys.private_key, output=tmp_path / "m.sig", tensors=False)
    assert result.interoperable == key_type.startswith("ec-")
    assert verify(model, key=keys.public_key, signature=tmp_path / "m.sig").ok
    (model / "README.md").write_text("x")
    assert not verify(model, key=keys.public_key, signature=tmp_path / "m.sig").ok


def test_passphrase_protected_key(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = generate_keypair(tmp_path / "enc", passphrase="s3cret")
    assert b"ENCRYPTED" in keys.private_key.read_bytes()
    with pytest.raises(SignatureError, match="encrypted"):
        sign(model, key=keys.private_key, output=tmp_path / "a.sig")
    with pytest.raises(SignatureError, match="wrong passphrase"):
        sign(model, key=keys.private_key, output=tmp_path / "a.sig", passphrase="nope")
    assert not (tmp_path / "a.sig").exists()  # nothing half-written
    sign(model, key=keys.private_key, output=tmp_path / "a.sig", passphrase="s3cret")
    monkeypatch.setenv(PASSPHRASE_ENV, "s3cret")
    sign(model, key=keys.private_key, output=tmp_path / "b.sig")
    assert verify(model, key=keys.public_key, signature=tmp_path / "b.sig").ok


def test_keygen_refuses_overwrite_and_bad_type(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "k")
    with pytest.raises(UsageError):
        generate_keypair(tmp_path / "k")
    with pytest.raises(UsageError):
        generate_keypair(tmp_path / "z", key_type="dsa")


def test_public_key_given_as_private_key_file_is_refused(model: Path, tmp_path: Path) -> None:
    keys = generate_keypair(tmp_path / "k")
    with pytest.raises(SignatureError, match="not a PEM private key"):
        sign(model, key=keys.public_key, output=tmp_path / "a.sig")


# --- certificate mode ---------------------------------------------------------------------


def _cert(subject: str, key, issuer_name: str, issuer_key, *, ca: bool, days=(-1, 30), code=True):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
        )
        eku = ExtendedKeyUsageOID.CODE_SIGNING if code else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    else:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(path: Path, *objs) -> Path:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    out = b""
    for obj in objs:
        if hasattr(obj, "private_bytes"):
            out += obj.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        else:
            out += obj.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(out)
    return path


@pytest.fixture
def pki(tmp_path: Path):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import ec

    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert("Root", root_key, "Root", root_key, ca=True, days=(-10, 3650))
    mid = _cert("Intermediate", mid_key, "Root", root_key, ca=True, days=(-10, 365))

    def leaf(**kw):  # type: ignore[no-untyped-def]
        return _cert("Release signer", leaf_key, "Intermediate", mid_key, ca=False, **kw)

    return {
        "root": _pem(tmp_path / "root.pem", root),
        "mid": _pem(tmp_path / "mid.pem", mid),
        "key": _pem(tmp_path / "leaf.key", leaf_key),
        "leaf": lambda name, **kw: _pem(tmp_path / name, leaf(**kw)),
        "other_root": _pem(
            tmp_path / "other.pem",
            _cert("Other", mid_key, "Other", mid_key, ca=True, days=(-1, 10)),
        ),
    }


def _sign_cert(model: Path, tmp_path: Path, pki, cert: Path) -> Path:  # type: ignore[no-untyped-def]
    sig = tmp_path / "cert.sig"
    sign(model, key=pki["key"], certificate=cert, chain=[pki["mid"]], output=sig, tensors=False)
    return sig


def test_certificate_chain_valid(model: Path, tmp_path: Path, pki) -> None:  # type: ignore[no-untyped-def]
    sig = _sign_cert(model, tmp_path, pki, pki["leaf"]("leaf.pem"))
    result = verify(model, signature=sig, trust_roots=[pki["root"]])
    assert result.ok, result.reasons
    assert result.signer == "certificate CN=Release signer"
    untrusted = verify(model, signature=sig, trust_roots=[pki["other_root"]])
    assert not untrusted.ok and "trusted root" in untrusted.reasons[0]


def test_certificate_mode_interoperates_with_reference(model: Path, tmp_path: Path, pki) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("OpenSSL")
    from model_signing import verifying

    sig = _sign_cert(model, tmp_path, pki, pki["leaf"]("leaf.pem"))
    verifying.Config().use_certificate_verifier(certificate_chain=[pki["root"]]).verify(model, sig)


def test_expired_certificate_fails(model: Path, tmp_path: Path, pki) -> None:  # type: ignore[no-untyped-def]
    sig = _sign_cert(model, tmp_path, pki, pki["leaf"]("old.pem", days=(-30, -1)))
    result = verify(model, signature=sig, trust_roots=[pki["root"]])
    assert not result.ok
    assert "expired" in result.reasons[0]


def test_certificate_without_code_signing_fails(model: Path, tmp_path: Path, pki) -> None:  # type: ignore[no-untyped-def]
    sig = _sign_cert(model, tmp_path, pki, pki["leaf"]("tls.pem", code=False))
    result = verify(model, signature=sig, trust_roots=[pki["root"]])
    assert not result.ok
    assert "code signing" in result.reasons[0]


def test_incremental_resign_in_certificate_mode(model: Path, tmp_path: Path, pki) -> None:  # type: ignore[no-untyped-def]
    cert = pki["leaf"]("leaf.pem")
    old = _sign_cert(model, tmp_path, pki, cert)
    new = tmp_path / "new.sig"
    result = sign(model, key=pki["key"], certificate=cert, chain=[pki["mid"]], output=new,
                  previous=old, tensors=False)  # fmt: skip
    assert len(result.reused) == result.files
    assert verify(model, signature=new, trust_roots=[pki["root"]]).ok


def test_we_verify_reference_certificate_signatures(model: Path, tmp_path: Path, pki) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("OpenSSL")
    from model_signing import signing

    sig = tmp_path / "ref-cert.sig"
    signing.Config().use_certificate_signer(
        private_key=pki["key"], signing_certificate=pki["leaf"]("leaf.pem"),
        certificate_chain=[pki["mid"]],
    ).sign(model, sig)  # fmt: skip
    result = verify(model, signature=sig, trust_roots=[pki["root"]])
    assert result.ok, result.reasons
    assert result.signer == "certificate CN=Release signer"
