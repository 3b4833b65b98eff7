"""Signed tree heads: the server's signed statement of the log's size and root.

The signed bytes are the RFC 6962 ``TreeHeadSignature`` structure (section 3.5):
``version(1)=0 || signature_type(1)=1 || timestamp(8) || tree_size(8) ||
sha256_root_hash(32)``, big-endian, timestamp in milliseconds since the epoch. They
are signed with the server's own key (EC P-256 by default; any key scheme of
:mod:`modelseal.integrity.signing.keys` works), named by its key hint (SHA-256 of
its PEM public key, as in model-signing bundles).
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelseal.integrity.signing.keys import (
    generate_keypair,
    key_hint,
    load_private_key,
    scheme_for,
)
from modelseal.transparency.errors import LogError, LogVerificationError
from modelseal.transparency.merkle import HASH_SIZE

__all__ = ["SignedTreeHead", "TreeHeadSigner", "tree_head_bytes", "verify_tree_head"]

_MAX_U64 = (1 << 64) - 1
#: Base name of the server's log key pair under its data directory.
_KEY_NAME = "log-key"


@dataclass(frozen=True)
class SignedTreeHead:
    """A tree size and root hash at a time, signed by the log's key."""

    tree_size: int
    root_hash: bytes
    timestamp: int  # milliseconds since the Unix epoch
    key_id: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        """The RFC 6962 ``TreeHeadSignature`` bytes the signature covers."""
        return tree_head_bytes(self.tree_size, self.root_hash, self.timestamp)

    def to_json(self) -> dict[str, Any]:
        """JSON form: hex root hash, base64 signature."""
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_json(cls, obj: Any) -> SignedTreeHead:
        """Parse the JSON form (raises :class:`LogError` if malformed)."""
        if not isinstance(obj, Mapping):
            raise LogError("signed tree head is not a JSON object")
        try:
            size, stamp = obj["tree_size"], obj["timestamp"]
            key_id, root, sig = obj["key_id"], obj["root_hash"], obj["signature"]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (size, stamp)):
                raise TypeError("tree_size and timestamp must be integers")
            if not all(isinstance(v, str) for v in (key_id, root, sig)):
                raise TypeError("key_id, root_hash and signature must be strings")
            root_hash = bytes.fromhex(root)
            signature = base64.b64decode(sig, validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise LogError(f"malformed signed tree head ({exc})") from None
        if len(root_hash) != HASH_SIZE:
            raise LogError("malformed signed tree head (root_hash is not 32 bytes)")
        if not (0 <= size <= _MAX_U64 and 0 <= stamp <= _MAX_U64):
            raise LogError("malformed signed tree head (size or timestamp out of range)")
        return cls(size, root_hash, stamp, key_id, signature)


def tree_head_bytes(tree_size: int, root_hash: bytes, timestamp: int) -> bytes:
    """RFC 6962 ``TreeHeadSignature``: ``0, 1, timestamp, tree_size, root_hash``."""
    if len(root_hash) != HASH_SIZE:
        raise LogError("root hash must be 32 bytes")
    return struct.pack(">BBQQ", 0, 1, timestamp, tree_size) + root_hash


def verify_tree_head(sth: SignedTreeHead, public_key: Any) -> None:
    """Check ``sth``'s signature with the log's public key.

    Raises :class:`LogVerificationError` if the head names another key or the
    signature does not match.
    """
    expected = key_hint(public_key)
    if sth.key_id != expected:
        raise LogVerificationError(
            f"tree head signed by key {sth.key_id[:16]}..., expected {expected[:16]}...",
            advice="check that you use the registry's current transparency-log public key",
        )
    if not scheme_for(public_key).verify(public_key, sth.signature, sth.signed_bytes()):
        raise LogVerificationError(
            f"invalid signature on the tree head of size {sth.tree_size}: "
            "the tree head was altered or not signed by the log"
        )


class TreeHeadSigner:
    """Signs tree heads with the server's private key."""

    def __init__(self, private_key: Any) -> None:
        self._key = private_key
        self._scheme = scheme_for(private_key)
        self._key_id = key_hint(private_key.public_key())

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TreeHeadSigner:
        """Load the private key from a PEM file (``$MODELSEAL_KEY_PASSPHRASE`` if encrypted)."""
        return cls(load_private_key(path))

    @classmethod
    def in_directory(cls, directory: str | os.PathLike[str]) -> TreeHeadSigner:
        """Load ``DIR/log-key.priv.pem``, generating an EC P-256 pair on first use."""
        prefix = Path(directory) / _KEY_NAME
        private = Path(str(prefix) + ".priv.pem")
        if not private.exists():
            generate_keypair(prefix, key_type="ec-p256")
        return cls(load_private_key(private))

    @staticmethod
    def public_key_file(directory: str | os.PathLike[str]) -> Path:
        """Where :meth:`in_directory` keeps the public key."""
        return Path(directory) / f"{_KEY_NAME}.pub.pem"

    @property
    def public_key(self) -> Any:
        """The public key that verifies this signer's tree heads."""
        return self._key.public_key()

    @property
    def key_id(self) -> str:
        """SHA-256 hex of the public key PEM."""
        return self._key_id

    def public_key_pem(self) -> str:
        """The public key as PEM text (for clients)."""
        from cryptography.hazmat.primitives import serialization

        pem: bytes = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode("ascii")

    def sign(
        self, tree_size: int, root_hash: bytes, timestamp: int | None = None
    ) -> SignedTreeHead:
        """A signed tree head for ``tree_size`` and ``root_hash`` (timestamp: now, in ms)."""
        stamp = int(time.time() * 1000) if timestamp is None else timestamp
        signature = self._scheme.sign(self._key, tree_head_bytes(tree_size, root_hash, stamp))
        return SignedTreeHead(tree_size, root_hash, stamp, self._key_id, signature)
