"""Signed tree heads: RFC 6962 signed bytes, JSON form, wrong keys and altered heads."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest

from modelseal.integrity.signing.keys import generate_keypair, load_public_key
from modelseal.transparency.errors import LogError, LogVerificationError
from modelseal.transparency.sth import SignedTreeHead, TreeHeadSigner, verify_tree_head
from tests.samples.transparency import CT_ROOTS, signer

ROOT = bytes.fromhex(CT_ROOTS[7])


def test_signed_bytes_are_rfc6962_tree_head_signature() -> None:
    sth = signer().sign(8, ROOT, timestamp=1_234)
    assert sth.signed_bytes() == b"\x00\x01" + struct.pack(">QQ", 1_234, 8) + ROOT


def test_sign_verify_round_trip() -> None:
    s = signer()
    sth = s.sign(8, ROOT)
    verify_tree_head(sth, s.public_key)
    again = SignedTreeHead.from_json(sth.to_json())
    assert again == sth
    verify_tree_head(again, s.public_key)
    assert sth.key_id == s.key_id and len(sth.key_id) == 64
    assert "BEGIN PUBLIC KEY" in s.public_key_pem()


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": 9},
        {"root_hash": bytes(32)},
        {"timestamp": 99},
        {"signature": b"\x30\x06\x02\x01\x01\x02\x01\x01"},
    ],
)
def test_altered_heads_fail(change: dict[str, object]) -> None:
    s = signer()
    sth = dataclasses.replace(s.sign(8, ROOT, timestamp=5), **change)  # type: ignore[arg-type]
    with pytest.raises(LogVerificationError, match="invalid signature"):
        verify_tree_head(sth, s.public_key)


def test_head_from_another_key_fails() -> None:
    ours, theirs = signer(), signer()
    forged = theirs.sign(8, ROOT)
    with pytest.raises(LogVerificationError, match="expected"):
        verify_tree_head(forged, ours.public_key)
    # Even when it claims our key id, the signature gives it away.
    relabelled = dataclasses.replace(forged, key_id=ours.key_id)
    with pytest.raises(LogVerificationError, match="invalid signature"):
        verify_tree_head(relabelled, ours.public_key)


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {},
        {"tree_size": "8", "root_hash": ROOT.hex(), "timestamp": 1, "key_id": "k", "signature": ""},
        {"tree_size": 8, "root_hash": "zz", "timestamp": 1, "key_id": "k", "signature": ""},
        {"tree_size": 8, "root_hash": "00" * 31, "timestamp": 1, "key_id": "k", "signature": ""},
        {"tree_size": 8, "root_hash": ROOT.hex(), "timestamp": 1, "key_id": "k", "signature": "!"},
        {"tree_size": -1, "root_hash": ROOT.hex(), "timestamp": 1, "key_id": "k", "signature": ""},
        {
            "tree_size": True,
            "root_hash": ROOT.hex(),
            "timestamp": 1,
            "key_id": "k",
            "signature": "",
        },
    ],
)
def test_malformed_json_heads(doc: object) -> None:
    with pytest.raises(LogError, match="signed tree head"):
        SignedTreeHead.from_json(doc)


def test_server_key_is_generated_once_in_data_dir(tmp_path: Path) -> None:
    first = TreeHeadSigner.in_directory(tmp_path)
    second = TreeHeadSigner.in_directory(tmp_path)
    assert first.key_id == second.key_id
    assert (tmp_path / "log-key.priv.pem").stat().st_mode & 0o777 == 0o600
    public = load_public_key(TreeHeadSigner.public_key_file(tmp_path))
    verify_tree_head(second.sign(1, ROOT), public)


def test_given_key_file_and_other_schemes(tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "ed", key_type="ed25519")
    s = TreeHeadSigner.from_file(pair.private_key)
    verify_tree_head(s.sign(3, ROOT), load_public_key(pair.public_key))
