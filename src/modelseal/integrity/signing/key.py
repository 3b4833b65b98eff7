"""Key mode: sign with a private key, verify with the matching public key."""

from __future__ import annotations

from typing import Any

from modelseal.errors import VerificationError
from modelseal.integrity.bundle import (
    Bundle,
    Envelope,
    EnvelopeSignature,
    VerificationMaterial,
    pae,
)
from modelseal.integrity.signing.interface import Signer, Verifier
from modelseal.integrity.signing.keys import key_hint, scheme_for

__all__ = ["KeySigner", "KeyVerifier"]


class KeySigner(Signer):
    """Signs with a private key; the bundle carries the public key's hint."""

    def __init__(self, private_key: Any) -> None:
        self._key = private_key
        self._scheme = scheme_for(private_key)

    @property
    def public_key(self) -> Any:
        """The matching public key."""
        return self._key.public_key()

    def sign(self, payload: bytes, payload_type: str) -> Bundle:
        """A bundle whose DSSE envelope signs ``payload``."""
        signature = self._scheme.sign(self._key, pae(payload_type, payload))
        return Bundle(
            VerificationMaterial(public_key_hint=key_hint(self.public_key)),
            Envelope(payload, payload_type, (EnvelopeSignature(signature),)),
        )


class KeyVerifier(Verifier):
    """Verifies bundles made by :class:`KeySigner` (or model-signing ``sign key``)."""

    def __init__(self, public_key: Any) -> None:
        self._key = public_key
        self._scheme = scheme_for(public_key)
        self._hint = key_hint(public_key)

    def verify(self, bundle: Bundle) -> tuple[str, bytes]:
        """The authenticated (payload type, payload)."""
        material = bundle.verification_material
        if material.certificates:
            raise VerificationError(
                "signature was made with a certificate, not a bare key",
                advice="verify it with --trust-root ROOTS.pem",
            )
        if material.public_key_hint and material.public_key_hint != self._hint:
            raise VerificationError(
                "wrong key: the signature does not match this key (the bundle names key "
                f"sha256:{material.public_key_hint[:16]}, this is key sha256:{self._hint[:16]})",
                advice="verify with the public key of the signer the bundle names",
            )
        envelope = bundle.envelope
        signed = pae(envelope.payload_type, envelope.payload)
        if not any(self._scheme.verify(self._key, s.sig, signed) for s in envelope.signatures):
            raise VerificationError(
                "invalid signature: the payload was altered or signed by another key"
            )
        return envelope.payload_type, envelope.payload

    def describe(self, bundle: Bundle) -> str:
        """The key's algorithm and hint."""
        return f"{self._scheme.describe(self._key)} key sha256:{self._hint[:16]}"
