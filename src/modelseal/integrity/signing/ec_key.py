"""ECDSA over NIST P-256/384/521 (interoperable with OpenSSF model-signing).

The hash follows the curve, as model-signing and Sigstore do: SHA-256 for
P-256, SHA-384 for P-384, SHA-512 for P-521. Signatures are DER-encoded.
"""

from __future__ import annotations

from typing import Any

from modelseal.integrity.signing.interface import KeyScheme

__all__ = ["CURVES", "EcScheme"]

#: Curve names accepted by ``keygen`` -> cryptography curve class names.
CURVES = {"p256": "SECP256R1", "p384": "SECP384R1", "p521": "SECP521R1"}


def _hash_for(key: Any) -> Any:
    from cryptography.hazmat.primitives import hashes

    size = key.curve.key_size
    return hashes.SHA256() if size == 256 else hashes.SHA384() if size == 384 else hashes.SHA512()


class EcScheme(KeyScheme):
    """ECDSA with the curve's matching SHA-2 hash."""

    name = "ecdsa"
    interoperable = True

    def supports(self, key: Any) -> bool:
        """EC keys on P-256, P-384 or P-521."""
        from cryptography.hazmat.primitives.asymmetric import ec

        return isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and (
            key.curve.name in ("secp256r1", "secp384r1", "secp521r1")
        )

    def sign(self, private_key: Any, data: bytes) -> bytes:
        """DER ECDSA signature."""
        from cryptography.hazmat.primitives.asymmetric import ec

        signature: bytes = private_key.sign(data, ec.ECDSA(_hash_for(private_key)))
        return signature

    def verify(self, public_key: Any, signature: bytes, data: bytes) -> bool:
        """Check a DER ECDSA signature."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            public_key.verify(signature, data, ec.ECDSA(_hash_for(public_key)))
        except InvalidSignature:
            return False
        return True

    def describe(self, key: Any) -> str:
        """``ecdsa-p256`` and so on."""
        return f"ecdsa-p{key.curve.key_size}"
