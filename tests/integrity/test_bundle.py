"""Wire types: round trips, and malformed input always gives a one-line parse error."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from modelseal.errors import SignatureError
from modelseal.integrity.bundle import (
    BUNDLE_MEDIA_TYPE,
    Bundle,
    BundleError,
    Envelope,
    EnvelopeSignature,
    VerificationMaterial,
    pae,
)
from modelseal.integrity.manifest import Manifest

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def test_pae_is_dsse_v1() -> None:
    assert pae("application/vnd.in-toto+json", b"{}") == (
        b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
    )


def test_round_trip_key_and_certificate_material() -> None:
    envelope = Envelope(b'{"a": 1}', "application/vnd.in-toto+json", (EnvelopeSignature(b"sig"),))
    for material in (VerificationMaterial(public_key_hint="ab" * 32),
                     VerificationMaterial(certificates=(b"der1", b"der2"))):  # fmt: skip
        bundle = Bundle(material, envelope)
        assert Bundle.from_json(bundle.to_json()) == bundle
        assert json.loads(bundle.to_json())["mediaType"] == BUNDLE_MEDIA_TYPE


@settings(max_examples=80, deadline=None)
@given(_json)
def test_any_json_is_a_bundle_or_a_bundle_error(value: object) -> None:
    text = json.dumps({"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": value,
                       "dsseEnvelope": value})  # fmt: skip
    try:
        Bundle.from_json(text)
    except BundleError as exc:
        assert exc.message and "\n" not in exc.message


@settings(max_examples=80, deadline=None)
@given(_json)
def test_any_payload_is_a_manifest_or_a_signature_error(value: object) -> None:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "predicateType": "https://model_signing/signature/v1.0",
        "subject": value if isinstance(value, list) else [{"name": "m", "digest": value}],
        "predicate": {"resources": value, "serialization": value, "modelseal": value},
    }
    try:
        Manifest.from_payload(json.dumps(statement).encode())
    except SignatureError as exc:
        assert exc.message


def test_bad_base64_signature_is_refused() -> None:
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": "x"}},
        "dsseEnvelope": {
            "payload": base64.b64encode(b"{}").decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": "not base64!"}],
        },
    }
    try:
        Bundle.from_json(json.dumps(bundle))
    except BundleError as exc:
        assert "base64" in exc.message
    else:
        raise AssertionError("accepted a signature that is not base64")
