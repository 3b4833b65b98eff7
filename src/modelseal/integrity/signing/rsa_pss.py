"""RSA-PSS with SHA-256 (a modelseal extension: model-signing 1.1 cannot verify it)."""

from __future__ import annotations

from typing import Any

from modelseal.integrity.signing.interface import KeyScheme

__all__ = ["RsaPssScheme"]

#: Smallest RSA modulus accepted.
MIN_BITS = 2048


def _padding() -> Any:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


class RsaPssScheme(KeyScheme):
    """RSASSA-PSS, MGF1-SHA256, salt length = 32, for keys of 2048 bits or more."""

    name = "rsa-pss"

    def supports(self, key: Any) -> bool:
        """RSA keys of at least 2048 bits."""
        from cryptography.hazmat.primitives.asymmetric import rsa

        return isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) and key.key_size >= MIN_BITS

    def sign(self, private_key: Any, data: bytes) -> bytes:
        """PSS signature."""
        from cryptography.hazmat.primitives import hashes

        signature: bytes = private_key.sign(data, _padding(), hashes.SHA256())
        return signature

    def verify(self, public_key: Any, signature: bytes, data: bytes) -> bool:
        """Check a PSS signature."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes

        try:
            public_key.verify(signature, data, _padding(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    def describe(self, key: Any) -> str:
        """``rsa-pss-3072`` and so on."""
        return f"rsa-pss-{key.key_size}"
