"""Certificate mode: sign with an X.509 certificate and its chain; verify against trusted roots.

The bundle carries the chain (leaf first, DER) in ``x509CertificateChain``, as
model-signing's ``sign certificate`` writes it. Verification walks the chain
to a trusted root, checks every signature, basic constraints of issuers,
every certificate's validity at verification time (model-signing checks only at
the leaf's ``notBefore``; an expired certificate is refused here), and that the
leaf may sign code: KeyUsage digitalSignature and, when present, ExtendedKeyUsage
codeSigning.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelseal.errors import SignatureError, UsageError, VerificationError
from modelseal.integrity.bundle import (
    Bundle,
    Envelope,
    EnvelopeSignature,
    VerificationMaterial,
    pae,
)
from modelseal.integrity.signing.interface import Signer, Verifier
from modelseal.integrity.signing.keys import scheme_for

__all__ = ["CertificateSigner", "CertificateVerifier", "load_certificates"]

_MAX_DEPTH = 8


def load_certificates(paths: Sequence[str | os.PathLike[str]]) -> list[Any]:
    """All PEM certificates in ``paths`` (raises :class:`SignatureError` if none)."""
    from cryptography import x509

    certs: list[Any] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read certificates ({exc.strerror})") from exc
        try:
            certs.extend(x509.load_pem_x509_certificates(data))
        except ValueError as exc:
            raise SignatureError(f"{path}: no PEM certificate in it") from exc
    return certs


class CertificateSigner(Signer):
    """Signs with a private key whose certificate (and chain) go into the bundle."""

    def __init__(self, private_key: Any, certificate: Any, chain: Sequence[Any] = ()) -> None:
        if certificate.public_key() != private_key.public_key():
            raise SignatureError("the certificate's public key does not match the private key")
        self._key = private_key
        self._scheme = scheme_for(private_key)
        self._chain = [certificate, *chain]

    @property
    def public_key(self) -> Any:
        """The matching public key."""
        return self._key.public_key()

    def sign(self, payload: bytes, payload_type: str) -> Bundle:
        """A bundle carrying the certificate chain."""
        from cryptography.hazmat.primitives import serialization

        signature = self._scheme.sign(self._key, pae(payload_type, payload))
        chain = tuple(c.public_bytes(serialization.Encoding.DER) for c in self._chain)
        return Bundle(
            VerificationMaterial(certificates=chain),
            Envelope(payload, payload_type, (EnvelopeSignature(signature),)),
        )


class CertificateVerifier(Verifier):
    """Verifies bundles signed in certificate mode against trusted root certificates."""

    def __init__(self, roots: Sequence[Any], *, at: _dt.datetime | None = None) -> None:
        if not roots:
            raise UsageError("no trusted root certificate given")
        self._roots = list(roots)
        self._at = at

    def verify(self, bundle: Bundle) -> tuple[str, bytes]:
        """The authenticated (payload type, payload)."""
        leaf = self._check_chain(bundle.verification_material)
        key = leaf.public_key()
        try:
            scheme = scheme_for(key)
        except SignatureError as exc:
            raise VerificationError(f"signing certificate has an unsupported key: {exc}") from exc
        envelope = bundle.envelope
        signed = pae(envelope.payload_type, envelope.payload)
        if not any(scheme.verify(key, s.sig, signed) for s in envelope.signatures):
            raise VerificationError("invalid signature: the payload was altered after signing")
        return envelope.payload_type, envelope.payload

    def describe(self, bundle: Bundle) -> str:
        """The leaf certificate's subject."""
        from cryptography import x509

        leaf = x509.load_der_x509_certificate(bundle.verification_material.certificates[0])
        return f"certificate {leaf.subject.rfc4514_string()}"

    def _check_chain(self, material: VerificationMaterial) -> Any:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        if not material.certificates:
            raise VerificationError(
                "signature was made with a bare key, not a certificate",
                advice="verify it with --key PUB.pem",
            )
        try:
            chain = [x509.load_der_x509_certificate(c) for c in material.certificates]
        except ValueError as exc:
            raise VerificationError(f"signature carries a malformed certificate ({exc})") from exc
        now = self._at or _dt.datetime.now(_dt.timezone.utc)
        for cert in chain:
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                state = "expired" if now > cert.not_valid_after_utc else "not yet valid"
                raise VerificationError(
                    f"certificate {cert.subject.rfc4514_string()} is {state} "
                    f"(valid {cert.not_valid_before_utc:%Y-%m-%d} to "
                    f"{cert.not_valid_after_utc:%Y-%m-%d})"
                )
        leaf = chain[0]
        _check_code_signing(leaf)
        trusted = {r.fingerprint(hashes.SHA256()) for r in self._roots}
        current, pool = leaf, chain[1:]
        for _ in range(_MAX_DEPTH):
            if current.fingerprint(hashes.SHA256()) in trusted:
                return leaf
            for root in self._roots:
                if _issued_by(current, root):
                    if not root.not_valid_before_utc <= now <= root.not_valid_after_utc:
                        raise VerificationError(
                            f"trusted root {root.subject.rfc4514_string()} is not valid now"
                        )
                    return leaf
            issuer = next((c for c in pool if _issued_by(current, c) and _is_ca(c)), None)
            if issuer is None:
                raise VerificationError(
                    f"certificate chain of {leaf.subject.rfc4514_string()} does not lead to a "
                    "trusted root",
                    advice="pass the issuing root with --trust-root",
                )
            current = issuer
        raise VerificationError("certificate chain is too long")


def _issued_by(cert: Any, issuer: Any) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, Exception):  # InvalidSignature and friends
        return False
    return True


def _is_ca(cert: Any) -> bool:
    from cryptography import x509

    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_code_signing(leaf: Any) -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    try:
        extended = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        extended = None
    if usage is None and extended is None:
        raise VerificationError("signing certificate states no key usage (needs code signing)")
    if usage is not None and not usage.digital_signature:
        raise VerificationError("signing certificate may not make digital signatures (KeyUsage)")
    if extended is not None and ExtendedKeyUsageOID.CODE_SIGNING not in extended:
        raise VerificationError("signing certificate is not for code signing (ExtendedKeyUsage)")
