"""Signing plug points: key schemes, signers and verifiers (one module per backend)."""

from __future__ import annotations

import abc
from typing import Any

from modelseal.integrity.bundle import Bundle

__all__ = ["KeyScheme", "Signer", "Verifier"]


class KeyScheme(abc.ABC):
    """A signature algorithm over one family of keys (EC, Ed25519, RSA-PSS)."""

    #: Short name shown to users (``ecdsa-p256``...).
    name: str
    #: Whether OpenSSF model-signing can verify signatures of this scheme.
    interoperable: bool = False

    @abc.abstractmethod
    def supports(self, key: Any) -> bool:
        """Whether ``key`` (private or public) belongs to this scheme."""

    @abc.abstractmethod
    def sign(self, private_key: Any, data: bytes) -> bytes:
        """Sign ``data``."""

    @abc.abstractmethod
    def verify(self, public_key: Any, signature: bytes, data: bytes) -> bool:
        """True if ``signature`` over ``data`` is valid for ``public_key``."""

    def describe(self, key: Any) -> str:
        """A user-facing name of the key's algorithm."""
        return self.name


class Signer(abc.ABC):
    """Turns a payload into a signed bundle."""

    @abc.abstractmethod
    def sign(self, payload: bytes, payload_type: str) -> Bundle:
        """Sign ``payload`` (DSSE) and wrap it in a Sigstore bundle."""

    @property
    @abc.abstractmethod
    def public_key(self) -> Any:
        """The public key matching this signer."""


class Verifier(abc.ABC):
    """Checks a bundle's signature and returns the authenticated payload."""

    @abc.abstractmethod
    def verify(self, bundle: Bundle) -> tuple[str, bytes]:
        """(payload type, payload) if the signature is valid.

        Raises :class:`~modelseal.errors.VerificationError` with a one-line reason otherwise.
        """

    @abc.abstractmethod
    def describe(self, bundle: Bundle) -> str:
        """Who signed, for reports (key fingerprint or certificate subject)."""
