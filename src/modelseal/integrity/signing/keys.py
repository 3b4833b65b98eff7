"""Key files: load PEM keys (with passphrases), generate key pairs, name keys."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelseal._io import atomic_write
from modelseal.errors import SignatureError, UsageError
from modelseal.integrity.signing.ec_key import CURVES, EcScheme
from modelseal.integrity.signing.ed25519 import Ed25519Scheme
from modelseal.integrity.signing.interface import KeyScheme
from modelseal.integrity.signing.rsa_pss import RsaPssScheme

__all__ = [
    "KEY_TYPES",
    "PASSPHRASE_ENV",
    "KeyPair",
    "generate_keypair",
    "key_hint",
    "load_private_key",
    "load_public_key",
    "public_key_from_pem",
    "scheme_for",
]

#: Environment variable read for private-key passphrases.
PASSPHRASE_ENV = "MODELSEAL_KEY_PASSPHRASE"
#: Key types ``keygen`` writes.
KEY_TYPES = ("ec-p256", "ec-p384", "ec-p521", "ed25519", "rsa-pss")

_SCHEMES: tuple[KeyScheme, ...] = (EcScheme(), Ed25519Scheme(), RsaPssScheme())


def scheme_for(key: Any) -> KeyScheme:
    """The scheme that signs with ``key`` (raises :class:`SignatureError` if none)."""
    for scheme in _SCHEMES:
        if scheme.supports(key):
            return scheme
    raise SignatureError(
        f"unsupported key type {type(key).__name__}",
        advice="use an EC P-256/384/521 key (interoperable), Ed25519, or RSA >= 2048 bits",
    )


def key_hint(public_key: Any) -> str:
    """SHA-256 (hex) of the PEM SubjectPublicKeyInfo: model-signing's key hint."""
    from cryptography.hazmat.primitives import serialization

    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what} ({exc.strerror})") from exc


def load_private_key(path: str | os.PathLike[str], passphrase: str | bytes | None = None) -> Any:
    """Load a PEM private key; ``passphrase`` defaults to ``$MODELSEAL_KEY_PASSPHRASE``."""
    from cryptography.hazmat.primitives import serialization

    data = _read(path, "private key")
    if passphrase is None and os.environ.get(PASSPHRASE_ENV):
        passphrase = os.environ[PASSPHRASE_ENV]
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    try:
        key = serialization.load_pem_private_key(data, secret)
    except TypeError as exc:
        if secret is None:
            raise SignatureError(
                f"{path}: private key is encrypted",
                advice=f"give its passphrase (prompt, --passphrase-env or ${PASSPHRASE_ENV})",
            ) from exc
        raise SignatureError(f"{path}: private key is not encrypted; give no passphrase") from exc
    except ValueError as exc:
        if secret is not None and b"ENCRYPTED" in data:
            raise SignatureError(f"{path}: wrong passphrase for the private key") from exc
        raise SignatureError(
            f"{path}: not a PEM private key",
            advice="give the private key (keygen writes NAME.priv.pem)",
        ) from exc
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm and others
        raise SignatureError(f"{path}: cannot load private key ({exc})") from exc
    scheme_for(key)
    return key


def load_public_key(path: str | os.PathLike[str]) -> Any:
    """Load a PEM public key (or take the public key of a PEM private key or certificate)."""
    return public_key_from_pem(_read(path, "public key"), str(path))


def public_key_from_pem(data: bytes | str, what: str = "public key") -> Any:
    """A PEM public key (or a PEM certificate's public key) held in memory."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    data = data.encode("utf-8") if isinstance(data, str) else data
    key: Any
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise SignatureError(
            f"{what}: not a PEM public key", advice="give the public key (NAME.pub.pem)"
        ) from exc
    scheme_for(key)
    return key


@dataclass(frozen=True)
class KeyPair:
    """Where ``generate_keypair`` wrote the keys."""

    private_key: Path
    public_key: Path
    key_type: str
    hint: str
    encrypted: bool


def generate_keypair(
    prefix: str | os.PathLike[str],
    *,
    key_type: str = "ec-p256",
    passphrase: str | bytes | None = None,
    rsa_bits: int = 3072,
    overwrite: bool = False,
) -> KeyPair:
    """Write ``PREFIX.priv.pem`` (PKCS#8, encrypted if ``passphrase``) and ``PREFIX.pub.pem``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if key_type not in KEY_TYPES:
        raise UsageError(
            f"unknown key type {key_type!r}", advice=f"use one of {', '.join(KEY_TYPES)}"
        )
    base = str(prefix)
    private_path, public_path = Path(base + ".priv.pem"), Path(base + ".pub.pem")
    if not overwrite and (private_path.exists() or public_path.exists()):
        raise UsageError(f"{private_path} or {public_path} already exists", advice="use --force")
    key: Any
    if key_type.startswith("ec-"):
        key = ec.generate_private_key(getattr(ec, CURVES[key_type[3:]])())
    elif key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    encryption: Any = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    atomic_write(private_path, private_pem, mode=0o600)
    atomic_write(public_path, public_pem)
    return KeyPair(private_path, public_path, key_type, key_hint(key.public_key()), bool(secret))
