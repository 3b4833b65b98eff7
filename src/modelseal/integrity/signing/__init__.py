"""Signers and verifiers: key mode (EC, Ed25519, RSA-PSS) and certificate mode."""

from modelseal.integrity.signing.interface import KeyScheme, Signer, Verifier

__all__ = ["KeyScheme", "Signer", "Verifier"]
