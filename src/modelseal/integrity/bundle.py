"""Wire types: Sigstore bundle v0.3 holding a DSSE envelope (no network, no protobuf library).

The JSON written is the one OpenSSF model-signing 1.x writes in key and
certificate mode::

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {"publicKey": {"hint": SHA256-HEX-OF-PEM-SPKI},   # key mode
                              # or "x509CertificateChain":
                              #      {"certificates": [{"rawBytes": B64-DER}...]}
                              "tlogEntries": []},
     "dsseEnvelope": {"payload": B64, "payloadType": "application/vnd.in-toto+json",
                      "signatures": [{"sig": B64, "keyid": ""}]}}

Each type owns ``from_json``/``to_json``; parse failures are :class:`BundleError`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from modelseal.errors import SignatureError

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "IN_TOTO_PAYLOAD_TYPE",
    "Bundle",
    "BundleError",
    "Envelope",
    "EnvelopeSignature",
    "VerificationMaterial",
    "pae",
]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class BundleError(SignatureError):
    """A signature file is not a well-formed Sigstore bundle."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the bytes actually signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def _b64decode(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleError(f"signature bundle: {what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError(f"signature bundle: {what} is not valid base64") from exc


@dataclass(frozen=True)
class EnvelopeSignature:
    """One DSSE signature."""

    sig: bytes
    keyid: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"sig": base64.b64encode(self.sig).decode("ascii"), "keyid": self.keyid}

    @classmethod
    def from_json(cls, data: Any) -> EnvelopeSignature:
        """Parse (raises :class:`BundleError`)."""
        if not isinstance(data, dict):
            raise BundleError("signature bundle: a DSSE signature is not an object")
        keyid = data.get("keyid", "")
        return cls(
            _b64decode(data.get("sig"), "DSSE signature"), keyid if isinstance(keyid, str) else ""
        )


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope."""

    payload: bytes
    payload_type: str
    signatures: tuple[EnvelopeSignature, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [s.to_json() for s in self.signatures],
        }

    @classmethod
    def from_json(cls, data: Any) -> Envelope:
        """Parse (raises :class:`BundleError`)."""
        if not isinstance(data, dict):
            raise BundleError("signature bundle has no DSSE envelope")
        payload_type = data.get("payloadType")
        if not isinstance(payload_type, str):
            raise BundleError("signature bundle: DSSE envelope has no payloadType")
        signatures = data.get("signatures")
        if not isinstance(signatures, list) or not signatures:
            raise BundleError("signature bundle: DSSE envelope has no signatures")
        return cls(
            _b64decode(data.get("payload"), "DSSE payload"),
            payload_type,
            tuple(EnvelopeSignature.from_json(s) for s in signatures),
        )


@dataclass(frozen=True)
class VerificationMaterial:
    """Who signed: a public-key hint (key mode) or a certificate chain (DER, leaf first)."""

    public_key_hint: str | None = None
    certificates: tuple[bytes, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {}
        if self.certificates:
            out["x509CertificateChain"] = {
                "certificates": [
                    {"rawBytes": base64.b64encode(c).decode("ascii")} for c in self.certificates
                ]
            }
        else:
            out["publicKey"] = {"hint": self.public_key_hint or ""}
        out["tlogEntries"] = []
        return out

    @classmethod
    def from_json(cls, data: Any) -> VerificationMaterial:
        """Parse (raises :class:`BundleError`)."""
        if not isinstance(data, dict):
            raise BundleError("signature bundle has no verificationMaterial")
        chain = data.get("x509CertificateChain")
        if chain is not None:
            certs = chain.get("certificates") if isinstance(chain, dict) else None
            if not isinstance(certs, list) or not certs:
                raise BundleError("signature bundle: empty x509CertificateChain")
            return cls(
                certificates=tuple(
                    _b64decode(c.get("rawBytes") if isinstance(c, dict) else None, "certificate")
                    for c in certs
                )
            )
        key = data.get("publicKey")
        if isinstance(key, dict):
            hint = key.get("hint")
            return cls(public_key_hint=hint if isinstance(hint, str) and hint else None)
        if "certificate" in data:
            raw = data["certificate"]
            return cls(
                certificates=(
                    _b64decode(
                        raw.get("rawBytes") if isinstance(raw, dict) else None, "certificate"
                    ),
                )
            )
        raise BundleError("signature bundle: verificationMaterial has no key or certificate")


@dataclass(frozen=True)
class Bundle:
    """A Sigstore bundle v0.3 with a DSSE envelope."""

    verification_material: VerificationMaterial
    envelope: Envelope
    media_type: str = BUNDLE_MEDIA_TYPE

    def to_json(self) -> str:
        """Compact JSON, keys in model-signing's order."""
        return json.dumps(
            {
                "mediaType": self.media_type,
                "verificationMaterial": self.verification_material.to_json(),
                "dsseEnvelope": self.envelope.to_json(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Bundle:
        """Parse a bundle (raises :class:`BundleError` with a one-line reason)."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleError(f"signature file is not JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise BundleError("signature file is not a Sigstore bundle (not a JSON object)")
        media_type = data.get("mediaType")
        if media_type != BUNDLE_MEDIA_TYPE:
            raise BundleError(
                f"signature file has media type {media_type!r}, expected {BUNDLE_MEDIA_TYPE}"
            )
        if "dsseEnvelope" not in data:
            raise BundleError(
                "signature bundle has no dsseEnvelope (message signatures unsupported)"
            )
        return cls(
            VerificationMaterial.from_json(data.get("verificationMaterial")),
            Envelope.from_json(data.get("dsseEnvelope")),
            media_type,
        )
