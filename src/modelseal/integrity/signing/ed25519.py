"""Ed25519 (a modelseal extension: model-signing 1.1 cannot verify it)."""

from __future__ import annotations

from typing import Any

from modelseal.integrity.signing.interface import KeyScheme

__all__ = ["Ed25519Scheme"]


class Ed25519Scheme(KeyScheme):
    """Pure Ed25519 over the DSSE pre-authentication encoding."""

    name = "ed25519"

    def supports(self, key: Any) -> bool:
        """Ed25519 keys."""
        from cryptography.hazmat.primitives.asymmetric import ed25519

        return isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey)

    def sign(self, private_key: Any, data: bytes) -> bytes:
        """64-byte signature."""
        signature: bytes = private_key.sign(data)
        return signature

    def verify(self, public_key: Any, signature: bytes, data: bytes) -> bool:
        """Check a signature."""
        from cryptography.exceptions import InvalidSignature

        try:
            public_key.verify(signature, data)
        except InvalidSignature:
            return False
        return True
